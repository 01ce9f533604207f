//! Escaping per output language: the second wall after validation. Every value a template
//! prints goes through one of these functions (the template environment's formatter picks it
//! from the template's name, see [`super::jinja`]), so a value validation let through, or a
//! field added later, can change a rendered file's data but never its structure.
//!
//! - HAProxy configuration: [`haproxy_arg`] (one argument: bare when plainly safe, else in
//!   double quotes with `\"`, `\\`, `\$`; control characters refused).
//! - YAML: [`yaml_scalar`] (a double-quoted scalar) and [`compose_scalar`] (the same with `$`
//!   doubled, for files `docker stack deploy` interpolates).
//! - POSIX shell: [`shell_word`] (one word: bare when plainly safe, else single-quoted with
//!   `'\''`; control characters and Unicode line separators refused).
//! - Comments of any of these: [`comment`] (control, line-breaking, bidi and invisible
//!   characters replaced by visible `\u{..}` escapes: a value cannot end the comment).
//! - HTTP: [`request_target`] (an RFC 9112 origin-form request target, validated).
//! - File names of rendered files: [`file_name`] (one plain path component).

use std::borrow::Cow;
use std::fmt::Write as _;

/// A value that cannot be written in the output language at all (rendering stops).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} `{value}` {problem}")]
pub struct EscapeError {
    /// What the value was to be (`a HAProxy argument`, `a shell word`, ...).
    pub what: &'static str,
    /// The value, neutralised (see [`comment`]) and shortened: safe to print.
    pub value: String,
    pub problem: String,
}

fn error(what: &'static str, value: &str, problem: impl Into<String>) -> EscapeError {
    let mut shown: String = value.chars().take(80).collect();
    if shown.len() < value.len() {
        shown.push('…');
    }
    EscapeError {
        what,
        value: comment(&shown).into_owned(),
        problem: problem.into(),
    }
}

/// Characters that end a line in some reader: YAML 1.1 (cloud-init's PyYAML) breaks lines at
/// NEL, LS and PS as well as CR and LF.
fn line_breaking(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Bidirectional controls and invisible characters: harmless to parsers, but they make what a
/// reader sees differ from what a program reads ("trojan source").
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{61c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{feff}'
            | '\u{fffe}'
            | '\u{ffff}'
    )
}

/// Control characters (C0, DEL, C1) and line-breaking characters.
fn control(c: char) -> bool {
    c.is_control() || line_breaking(c)
}

fn describe(c: char) -> String {
    match c {
        '\n' => "a newline (LF)".into(),
        '\r' => "a carriage return (CR)".into(),
        '\t' => "a tab".into(),
        '\0' => "a NUL character".into(),
        c => format!("the control character U+{:04X}", c as u32),
    }
}

/// One HAProxy configuration argument (HAProxy 2.x quoting, section 2.2 of its manual): bare
/// when it holds only `A-Z a-z 0-9 . _ / : -`, else in double quotes with `"`, `\` and `$`
/// escaped (inside double quotes HAProxy expands `$VAR`; `#`, spaces and `'` are literal).
/// Control characters (CR, LF, NUL, tab, ...) are refused: no argument needs one, and a CR or
/// LF in a path or a health-check request is an injection.
///
/// Quoting makes a value one argument; it does not stop an argument that starts with `-` from
/// being read as an ACL flag: templates put `--` before ACL patterns.
pub fn haproxy_arg(s: &str) -> Result<Cow<'_, str>, EscapeError> {
    if let Some(c) = s.chars().find(|&c| control(c)) {
        return Err(error(
            "a HAProxy argument",
            s,
            format!(
                "contains {}, which a HAProxy configuration cannot hold",
                describe(c)
            ),
        ));
    }
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b':' | b'-'))
    {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if matches!(c, '"' | '\\' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Ok(Cow::Owned(out))
}

/// A YAML double-quoted scalar (YAML 1.1 and 1.2 read it the same): `"` and `\` escaped,
/// control, line-breaking, bidi and invisible characters written as escapes, so the scalar is
/// one line whatever the value holds.
pub fn yaml_scalar(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if control(c) || invisible(c) => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// [`yaml_scalar`] with `$` doubled: for files that `docker stack deploy` (or Prometheus'
/// external labels) interpolate, so the value arrives as written.
pub fn compose_scalar(s: &str) -> String {
    yaml_scalar(s).replace('$', "$$")
}

/// One POSIX shell word: bare when it holds only `A-Z a-z 0-9 . _ / : @ % + , -`, else in single
/// quotes (a `'` written `'\''`), where nothing is interpreted (`$()`, backticks, `;`, `#`).
/// Control characters and Unicode line separators are refused: a word must stay on its line
/// (the script is also embedded in cloud-init user-data, whose YAML reader breaks lines at
/// them).
pub fn shell_word(s: &str) -> Result<Cow<'_, str>, EscapeError> {
    if let Some(c) = s.chars().find(|&c| control(c)) {
        return Err(error(
            "a shell word",
            s,
            format!("contains {}, which a script line cannot hold", describe(c)),
        ));
    }
    if !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'.' | b'_' | b'/' | b':' | b'@' | b'%' | b'+' | b',' | b'-'
                )
        })
    {
        return Ok(Cow::Borrowed(s));
    }
    Ok(Cow::Owned(format!("'{}'", s.replace('\'', r"'\''"))))
}

/// Text for a comment line (`# ...` in YAML, HAProxy, shell): control, line-breaking, bidi and
/// invisible characters replaced by a visible `\u{..}`, so a value can neither end the comment
/// nor hide what follows it.
pub fn comment(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| control(c) || invisible(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if control(c) || invisible(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Checks that `s` is an HTTP request target in origin-form (RFC 9112 section 3.2.1:
/// `/path[?query]`, RFC 3986 characters only, `%` followed by two hex digits): no space, no
/// control character, no `#`, nothing that is not ASCII. Used for `twip test`'s requests and for
/// the paths HAProxy sends in health checks.
pub fn request_target(s: &str) -> Result<&str, EscapeError> {
    const WHAT: &str = "a request target";
    if !s.starts_with('/') {
        return Err(error(WHAT, s, "does not start with `/`"));
    }
    if s.len() > 8000 {
        return Err(error(WHAT, s, "is longer than 8000 bytes"));
    }
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let ok = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
                    | b'/'
                    | b'?'
            );
        if c == b'%' {
            let hex = |j: usize| b.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return Err(error(
                    WHAT,
                    s,
                    "has a `%` that is not followed by two hex digits",
                ));
            }
            i += 3;
            continue;
        }
        if !ok {
            let ch = s[i..].chars().next().unwrap_or('?');
            let problem = match ch {
                ' ' => "contains a space (write it %20)".to_string(),
                '#' => "contains `#` (a fragment is never sent; write it %23)".to_string(),
                c if control(c) => format!("contains {}", describe(c)),
                c if !c.is_ascii() => {
                    format!("contains `{c}`, which is not ASCII (percent-encode its UTF-8 bytes)")
                }
                c => format!(
                    "contains `{c}`, which a request target cannot hold (percent-encode it)"
                ),
            };
            return Err(error(WHAT, s, problem));
        }
        i += 1;
    }
    Ok(s)
}

/// A keepalived configuration word (an address, an interface, a path): keepalived's parser
/// splits on blanks and has no quoting that holds a blank, `#`, `!`, `{` or `}`, so a word is
/// printed only when it is 1 to 255 of `A-Za-z0-9._:/-`, and stops the render otherwise.
pub fn keepalived_word(s: &str) -> Result<&str, EscapeError> {
    const WHAT: &str = "a keepalived word";
    if s.is_empty() || s.len() > 255 {
        return Err(error(WHAT, s, "must have 1 to 255 characters"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '/' | '-')))
    {
        return Err(error(
            WHAT,
            s,
            format!(
                "contains `{}`; keepalived's configuration cannot quote it",
                comment(&c.to_string())
            ),
        ));
    }
    Ok(s)
}

/// Checks that `s` can be the name of a rendered file inside the output folder: one path
/// component of `A-Z a-z 0-9 . _ -`, not starting with `.`, at most 200 bytes.
pub fn file_name(s: &str) -> Result<&str, EscapeError> {
    const WHAT: &str = "a file name";
    if s.is_empty() || s.len() > 200 {
        return Err(error(WHAT, s, "must have 1 to 200 characters"));
    }
    if s.starts_with('.') {
        return Err(error(WHAT, s, "must not start with `.`"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(error(
            WHAT,
            s,
            format!(
                "contains `{}`; a rendered file's name holds only letters, digits, `.`, `_` and `-`",
                comment(&c.to_string())
            ),
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalived_words_are_plain_or_refused() {
        for ok in ["10.0.0.100", "eth0", "/usr/local/bin/x", "br-1.2_3:a"] {
            assert_eq!(keepalived_word(ok).unwrap(), ok);
        }
        for bad in [
            "",
            "a b",
            "a#b",
            "a!b",
            "}",
            "{",
            "a\nb",
            "a\"b",
            "x;y",
            &"a".repeat(256),
        ] {
            assert!(keepalived_word(bad).is_err(), "{bad:?}");
        }
    }

    /// Hostile values every escaper is tried with.
    const HOSTILE: &[&str] = &[
        "a\nb",
        "a\r\nb",
        "a\tb",
        "a#b",
        "a\"b",
        "a'b",
        "a\\b",
        "$(touch /tmp/x)",
        "`id`",
        "-oProxyCommand=x",
        "a\u{202e}b",
        "a\u{200b}b",
        "a\u{2028}b",
        "a\u{85}b",
        "a\0b",
        "a b",
        "${HOME}",
        "",
    ];

    #[test]
    fn haproxy_args_are_bare_quoted_or_refused() {
        let table: &[(&str, Option<&str>)] = &[
            ("/api", Some("/api")),
            ("tasks.training_web", Some("tasks.training_web")),
            ("5s", Some("5s")),
            ("/a b", Some("\"/a b\"")),
            ("/a#b", Some("\"/a#b\"")),
            ("a\"b", Some("\"a\\\"b\"")),
            ("a\\b", Some("\"a\\\\b\"")),
            ("/$HOME", Some("\"/\\$HOME\"")),
            ("it's", Some("\"it's\"")),
            ("`id`", Some("\"`id`\"")),
            ("$(id)", Some("\"\\$(id)\"")),
            ("-f", Some("-f")),
            ("a\u{202e}b", Some("\"a\u{202e}b\"")),
            ("", Some("\"\"")),
            ("a\nserver evil 1.2.3.4:80", None),
            ("a\r\nb", None),
            ("a\tb", None),
            ("a\0b", None),
            ("a\u{7f}b", None),
            ("a\u{2028}b", None),
        ];
        for (input, want) in table {
            let got = haproxy_arg(input);
            match want {
                Some(w) => assert_eq!(got.as_deref(), Ok(*w), "{input:?}"),
                None => {
                    let e = got.unwrap_err();
                    assert!(e.to_string().contains("cannot hold"), "{e}");
                    // The message shows the value neutralised, on one line.
                    assert!(!e.to_string().contains('\n'), "{e}");
                }
            }
        }
    }

    #[test]
    fn yaml_scalars_are_one_line_and_escape_what_readers_break_on() {
        let table: &[(&str, &str)] = &[
            ("web", "\"web\""),
            ("a\nb", "\"a\\nb\""),
            ("a\r\nb", "\"a\\r\\nb\""),
            ("a\tb", "\"a\\tb\""),
            ("a#b", "\"a#b\""),
            ("a\"b", "\"a\\\"b\""),
            ("a\\b", "\"a\\\\b\""),
            ("a'b", "\"a'b\""),
            ("$(id) `id`", "\"$(id) `id`\""),
            ("-x", "\"-x\""),
            ("a\u{202e}b", "\"a\\u202eb\""),
            ("a\u{200b}b", "\"a\\u200bb\""),
            ("a\u{2028}b", "\"a\\u2028b\""),
            ("a\u{85}b", "\"a\\u0085b\""),
            ("a\0b", "\"a\\u0000b\""),
            ("a\u{7f}b", "\"a\\u007fb\""),
            ("{{.Task.Slot}}", "\"{{.Task.Slot}}\""),
            ("é", "\"é\""),
        ];
        for (input, want) in table {
            assert_eq!(yaml_scalar(input), *want, "{input:?}");
        }
        assert_eq!(compose_scalar("a$b"), "\"a$$b\"");
        assert_eq!(compose_scalar("${X}"), "\"$${X}\"");
        for h in HOSTILE {
            let y = yaml_scalar(h);
            assert!(!y.contains(['\n', '\r', '\u{2028}', '\u{85}']), "{y:?}");
            let parsed = yaml_rust2::YamlLoader::load_from_str(&format!("k: {y}\n")).unwrap();
            assert_eq!(parsed[0]["k"].as_str(), Some(*h), "{h:?}");
        }
    }

    #[test]
    fn shell_words_are_bare_single_quoted_or_refused() {
        let table: &[(&str, Option<&str>)] = &[
            ("training", Some("training")),
            ("2377/tcp", Some("2377/tcp")),
            ("10.0.0.1:2377", Some("10.0.0.1:2377")),
            ("-n", Some("-n")),
            ("a b", Some("'a b'")),
            ("a#b", Some("'a#b'")),
            ("it's", Some("'it'\\''s'")),
            ("a\"b", Some("'a\"b'")),
            ("a\\b", Some("'a\\b'")),
            ("$(touch /tmp/x)", Some("'$(touch /tmp/x)'")),
            ("`id`", Some("'`id`'")),
            ("a;b", Some("'a;b'")),
            ("A=b", Some("'A=b'")),
            ("~root", Some("'~root'")),
            ("a\u{202e}b", Some("'a\u{202e}b'")),
            ("", Some("''")),
            ("a\nreboot", None),
            ("a\r\nb", None),
            ("a\tb", None),
            ("a\0b", None),
            ("a\u{2028}b", None),
            ("a\u{85}b", None),
        ];
        for (input, want) in table {
            let got = shell_word(input);
            match want {
                Some(w) => assert_eq!(got.as_deref(), Ok(*w), "{input:?}"),
                None => assert!(got.is_err(), "{input:?}: {got:?}"),
            }
        }
    }

    #[test]
    fn shell_words_survive_a_real_shell() {
        let Ok(sh) = which::which("sh") else {
            panic!("no sh on PATH");
        };
        let mut tried = 0;
        for h in HOSTILE {
            let Ok(w) = shell_word(h) else { continue };
            let out = std::process::Command::new(&sh)
                .arg("-c")
                .arg(format!("printf '%s' {w}"))
                .output()
                .unwrap();
            assert!(out.status.success(), "{w}");
            assert_eq!(String::from_utf8_lossy(&out.stdout), *h, "{w}");
            tried += 1;
        }
        assert!(tried >= 10, "{tried}");
    }

    #[test]
    fn comments_cannot_be_ended_or_hidden() {
        assert_eq!(comment("training"), "training");
        assert_eq!(comment("a\nb"), "a\\u{a}b");
        assert_eq!(comment("a\r\nbootcmd:"), "a\\u{d}\\u{a}bootcmd:");
        assert_eq!(comment("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(comment("a\u{200b}b"), "a\\u{200b}b");
        assert_eq!(comment("a#b'\"$"), "a#b'\"$");
        for h in HOSTILE {
            let c = comment(h);
            assert!(!c.chars().any(|c| control(c) || invisible(c)), "{c:?}");
        }
    }

    #[test]
    fn request_targets_are_origin_form() {
        for ok in [
            "/",
            "/healthz",
            "/api/v1?x=1&y=%20",
            "/a;csv",
            "/~u/@x:1",
            "/a?b?c",
        ] {
            assert_eq!(request_target(ok), Ok(ok));
        }
        for (bad, says) in [
            ("", "start with `/`"),
            ("api", "start with `/`"),
            ("/a b", "space"),
            ("/a\r\nHost: evil", "carriage return"),
            ("/a\nb", "newline"),
            ("/a\tb", "tab"),
            ("/a#b", "fragment"),
            ("/a%2", "two hex digits"),
            ("/a%zz", "two hex digits"),
            ("/é", "not ASCII"),
            ("/a\u{202e}", "not ASCII"),
            ("/a\"b", "`\"`"),
            ("/a\\b", "`\\`"),
            ("/a<b", "`<`"),
        ] {
            let e = request_target(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad:?}: {e}");
            assert!(!e.contains(['\n', '\r']), "{e}");
        }
    }

    #[test]
    fn file_names_are_one_plain_component() {
        for ok in ["stack.yml", "config.app", "config.my-app_1.conf"] {
            assert_eq!(file_name(ok), Ok(ok));
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "config.x/../../f",
            "a/b",
            "a\\b",
            "a\nb",
            "a b",
            "é",
            "/etc/passwd",
        ] {
            assert!(file_name(bad).is_err(), "{bad:?}");
        }
    }
}
