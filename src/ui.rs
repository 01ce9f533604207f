//! Everything twip says to a person goes through here: stderr only, colour only on a terminal
//! and never when `NO_COLOR` is set or `--no-color` is given. Data goes to stdout elsewhere.
//!
//! Every message is passed through [`clean`] on its way out: credentials in URLs and
//! `--password` values are replaced ([`redact`]) and control characters, terminal escape
//! sequences and invisible bidi/zero-width characters are shown as escapes ([`sanitize`]),
//! whatever a manifest, the engine or a subprocess put in them.

pub mod term;

use console::{Style, Term};

#[derive(Debug, Clone)]
pub struct Ui {
    pub verbose: u8,
    pub quiet: bool,
    pub color: bool,
    /// stderr is a terminal: live progress (spinners, tables) is allowed.
    pub interactive: bool,
}

impl Ui {
    /// The UI for `verbose` (`-v` count), `quiet` and `no_color` (`--no-color`; colour is
    /// also off without a terminal or with `NO_COLOR`).
    pub fn new(verbose: u8, quiet: bool, no_color: bool) -> Self {
        let term = Term::stderr();
        let interactive = term.is_term();
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = interactive && !no_color && !no_color_env;
        console::set_colors_enabled_stderr(color);
        console::set_colors_enabled(color && Term::stdout().is_term());
        Ui {
            verbose,
            quiet,
            color,
            interactive,
        }
    }

    /// A plain UI for tests and library callers: no colour, not interactive.
    pub fn plain() -> Self {
        Ui {
            verbose: 0,
            quiet: false,
            color: false,
            interactive: false,
        }
    }

    fn style(&self, s: Style) -> Style {
        if self.color {
            s.force_styling(true)
        } else {
            s.force_styling(false)
        }
    }

    /// A finished step: `✓ message`.
    pub fn ok(&self, msg: &str) {
        if !self.quiet {
            let mark = self.style(Style::new().green()).apply_to("✓");
            eprintln!("{mark} {}", clean(msg));
        }
    }

    /// Progress or information.
    pub fn info(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{}", clean(msg));
        }
    }

    /// Detail shown with `-v`.
    pub fn debug(&self, msg: &str) {
        if self.verbose > 0 && !self.quiet {
            let s = self.style(Style::new().dim()).apply_to(clean(msg));
            eprintln!("{s}");
        }
    }

    pub fn warn(&self, msg: &str) {
        if !self.quiet {
            let w = self
                .style(Style::new().yellow().bold())
                .apply_to("warning:");
            eprintln!("{w} {}", clean(msg));
        }
    }

    pub fn error(&self, msg: &str) {
        let e = self.style(Style::new().red().bold()).apply_to("error:");
        eprintln!("{e} {}", clean_foreign(msg));
    }

    /// Prints an error: its message, then (with `-v`) the chain of causes. Never a backtrace.
    pub fn report_error(&self, err: &anyhow::Error) {
        if let Some(d) = err.downcast_ref::<crate::manifest::Diagnostics>() {
            for line in d.lines() {
                eprintln!("{}", clean(&line));
            }
            let e = self.style(Style::new().red().bold()).apply_to("error:");
            eprintln!("{e} {}", clean(&d.summary()));
            return;
        }
        let mut msg = err.to_string();
        let causes: Vec<String> = err.chain().skip(1).map(|c| c.to_string()).collect();
        if self.verbose > 0 {
            self.error(&msg);
            for c in causes {
                eprintln!("  caused by: {}", clean_foreign(&c));
            }
        } else {
            // Without -v, still say the innermost cause when it adds something.
            if let Some(last) = causes.last() {
                if !msg.contains(last.as_str()) {
                    msg = format!("{msg}: {last}");
                }
            }
            self.error(&msg);
        }
    }
}

/// Text from outside twip (names from a manifest or the engine, engine and subprocess error
/// text) made safe to print on a terminal: control characters (C0 except newline and tab,
/// DEL, C1: so every escape sequence, `\r` and backspace) and the invisible characters that
/// reorder or hide text (bidi controls, zero-width characters) are shown as escapes
/// (`\x1b`, `\u{202e}`) instead of being sent to the terminal. Borrowed when nothing changes.
pub fn sanitize(s: &str) -> std::borrow::Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c,
                '\u{200b}'..='\u{200f}' // zero-width space/joiners, LRM, RLM
                | '\u{2028}'..='\u{202e}' // line/paragraph separators, bidi embeddings, overrides
                | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
                | '\u{2066}'..='\u{2069}' // bidi isolates
                | '\u{feff}' // zero-width no-break space (BOM)
                | '\u{061c}' // Arabic letter mark
            )
    }
    if !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            if (c as u32) < 0x100 {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// What is shown instead of a credential.
pub const REDACTED: &str = "***";

/// Values that came from `${VAR}` interpolation, each with what is shown instead (`${VAR}`),
/// longest first: see [`hide_variable_values`].
static HIDDEN: std::sync::RwLock<Vec<(String, String)>> = std::sync::RwLock::new(Vec::new());

/// From now on [`redact_foreign`] (every error, every line of a subprocess's output and every
/// command line twip prints) shows `${NAME}` instead of the value of a variable a loaded
/// manifest read, as the manifest's own problems do: a variable may carry a credential (a path
/// to a key, a token in a value) and twip cannot tell which does, nor what a subprocess or
/// the engine quotes. twip's own plan and progress lines show values (`image web:1.0 →
/// web:2.0`): that is what they are for. `pairs` are (value, shown), as
/// [`crate::manifest::diag::Sources::variable_values`] gives them.
pub fn hide_variable_values(pairs: Vec<(String, String)>) {
    let mut hidden = HIDDEN.write().unwrap_or_else(|e| e.into_inner());
    hidden.extend(pairs);
    hidden.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
    hidden.dedup_by(|a, b| a.0 == b.0);
}

/// [`redact`], and the values of variables shown as `${NAME}` ([`hide_variable_values`]; in any
/// ASCII case: a tool may quote a value in capitals): for errors and what subprocesses print.
pub fn redact_foreign(s: &str) -> std::borrow::Cow<'_, str> {
    let hidden = HIDDEN.read().unwrap_or_else(|e| e.into_inner());
    let hides = !hidden.is_empty() && {
        let lower = s.to_ascii_lowercase();
        hidden
            .iter()
            .any(|(v, _)| lower.contains(&v.to_ascii_lowercase()))
    };
    if !hides {
        return redact(s);
    }
    let shown = crate::manifest::diag::replace_all(s, &hidden);
    std::borrow::Cow::Owned(redact(&shown).into_owned())
}

/// [`redact_foreign`] then [`sanitize`]: errors and subprocess output before they are printed.
pub fn clean_foreign(s: &str) -> String {
    sanitize(&redact_foreign(s)).into_owned()
}

/// Text that may carry a credential with the credential replaced by [`REDACTED`]: the user
/// information of every URL (`https://user:pass@host/` becomes `https://***@host/`) and the
/// value of a `--password` option (`--password VALUE`, `--password=VALUE`). Every error and
/// every line of a subprocess's output that twip prints goes through it. Borrowed when nothing
/// changes.
pub fn redact(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains("://") && !s.contains("--password") {
        return std::borrow::Cow::Borrowed(s);
    }
    let out = redact_password_options(&redact_url_userinfo(s));
    if out == s {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(out)
    }
}

/// Ends an URL's authority (or a word): `/ ? #`, white space, quotes and brackets.
fn ends_authority(c: char) -> bool {
    c.is_whitespace() || "/?#\"'`<>()[]{}|\\,;".contains(c)
}

/// `USER`, `USER_NAME`: capitals and `_` only (no digit, so no access key id).
fn is_placeholder(userinfo: &str) -> bool {
    !userinfo.is_empty() && userinfo.chars().all(|c| c.is_ascii_uppercase() || c == '_')
}

fn redact_url_userinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(ends_authority).unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            // A placeholder of the docs and hints (`ssh://USER@HOST`) is no credential.
            Some(at) if is_placeholder(&authority[..at]) => out.push_str(authority),
            Some(at) => {
                out.push_str(REDACTED);
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn redact_password_options(s: &str) -> String {
    const OPT: &str = "--password";
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(OPT) {
        let (head, tail) = rest.split_at(i + OPT.len());
        out.push_str(head);
        // `--password-stdin` and other longer options are not `--password`.
        let sep = match tail.chars().next() {
            Some('=') => "=",
            Some(' ') => " ",
            _ => {
                rest = tail;
                continue;
            }
        };
        let value = tail[1..].trim_start_matches(' ');
        let skipped = tail.len() - 1 - value.len();
        // A quoted value ends at its closing quote; a bare one at white space.
        let len = match value.chars().next() {
            Some(q @ ('\'' | '"')) => value[1..].find(q).map_or(value.len(), |e| e + 2),
            Some(_) => value.find(char::is_whitespace).unwrap_or(value.len()),
            None => 0,
        };
        out.push_str(sep);
        out.push_str(&tail[1..1 + skipped]);
        if len > 0 {
            out.push_str(REDACTED);
        }
        rest = &value[len..];
    }
    out.push_str(rest);
    out
}

/// [`redact`] then [`sanitize`]: what every message from outside twip goes through before it
/// is printed for a person.
pub fn clean(s: &str) -> String {
    sanitize(&redact(s)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_foreign_shows_a_variables_value_as_its_name() {
        let secret = "x9-redact-test-value-Qz";
        let line = format!("cannot read /p/{secret}_key: no such file");
        assert_eq!(
            redact_foreign(&line),
            line,
            "nothing hidden before a manifest read it"
        );
        hide_variable_values(vec![(secret.to_string(), "${KEY_NAME}".to_string())]);
        assert_eq!(
            redact_foreign(&line),
            "cannot read /p/${KEY_NAME}_key: no such file"
        );
        assert_eq!(redact(&line), line, "twip's own lines keep values");
        assert_eq!(
            redact_foreign(&format!("refused '{}'", secret.to_uppercase())),
            "refused '${KEY_NAME}'",
            "in capitals too"
        );
        assert_eq!(
            redact_foreign(&format!("https://u:p@h/{secret}")),
            "https://***@h/${KEY_NAME}"
        );
    }

    #[test]
    fn sanitize_shows_control_and_invisible_characters_as_escapes() {
        assert!(matches!(
            sanitize("web.1 | ok\n\tnext"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(sanitize("a\u{1b}[2Jb"), "a\\x1b[2Jb");
        assert_eq!(sanitize("a\u{1b}]0;title\u{7}b"), "a\\x1b]0;title\\x07b");
        assert_eq!(sanitize("x\ry"), "x\\x0dy");
        assert_eq!(sanitize("x\u{8}y"), "x\\x08y");
        assert_eq!(sanitize("x\u{7f}y\u{9b}2J"), "x\\x7fy\\x9b2J");
        assert_eq!(sanitize("ab\u{202e}cd"), "ab\\u{202e}cd");
        assert_eq!(sanitize("a\u{200b}b\u{2066}c"), "a\\u{200b}b\\u{2066}c");
        // Letters of every script stay.
        assert_eq!(sanitize("nœud-東京"), "nœud-東京");
        // What it prints holds no control character but newline and tab.
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        let out = sanitize(&all);
        assert!(out
            .chars()
            .all(|c| !c.is_control() || c == '\n' || c == '\t'));
        assert!(!out.contains('\u{202e}'));
    }

    #[test]
    fn redact_hides_url_credentials_and_password_values() {
        assert!(matches!(
            redact("https://registry.example.com/v2/"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            redact("push to https://ci:s3cr3t@registry.example.com:5000/v2/x failed"),
            "push to https://***@registry.example.com:5000/v2/x failed"
        );
        assert_eq!(redact("https://token@h"), "https://***@h");
        assert_eq!(redact("https://AKIA0EXAMPLE@h"), "https://***@h");
        assert_eq!(redact("https://USER:PASS@h"), "https://***@h");
        // The placeholder of a hint stays.
        assert_eq!(redact("use ssh://USER@HOST"), "use ssh://USER@HOST");
        // The last `@` of the authority ends the user information.
        assert_eq!(redact("ssh://a@b:c@host:22/x"), "ssh://***@host:22/x");
        assert_eq!(
            redact("two: http://u:p@a/ and 'tcp://x:y@b'"),
            "two: http://***@a/ and 'tcp://***@b'"
        );
        // An image digest is not user information.
        assert_eq!(
            redact("localhost:5000/web@sha256:abc"),
            "localhost:5000/web@sha256:abc"
        );
        assert_eq!(
            redact("docker login --password s3cr3t -u ci r"),
            "docker login --password *** -u ci r"
        );
        assert_eq!(redact("--password=s3cr3t x"), "--password=*** x");
        assert_eq!(redact("--password='s3 cr3t' x"), "--password=*** x");
        assert_eq!(redact("--password-stdin x"), "--password-stdin x");
        assert_eq!(redact("end --password"), "end --password");
        for s in [
            "https://ci:s3cr3t@r",
            "--password s3cr3t",
            "--password=s3cr3t",
            "a https://x:s3cr3t@r/ b --password \"s3cr3t\"",
        ] {
            assert!(!redact(s).contains("s3cr3t"), "{s}");
        }
    }

    #[test]
    fn clean_redacts_then_sanitizes() {
        assert_eq!(
            clean("\u{1b}[31mhttps://u:p@h\u{1b}[0m"),
            "\\x1b[31mhttps://***@h\\x1b[0m"
        );
    }
}
