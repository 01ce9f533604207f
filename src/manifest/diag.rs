//! Problems found in manifests, each with its file, line, column and key path, reported all
//! at once as `FILE:LINE:COLUMN: path.to.key: what is wrong`.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use super::interp::Interpolated;
use super::yaml::Span;

/// A problem before its file is resolved to a path.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub span: Span,
    /// Dotted key path (`services.web.ports[0]`); empty for problems of the document itself.
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn at(span: Span, path: &str, message: impl Into<String>) -> Self {
        Problem {
            span,
            path: path.to_string(),
            message: message.into(),
        }
    }
}

/// The files a manifest was read from (an environment and the bases it extends).
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Paths as shown to the user (relative to the project directory where possible).
    pub files: Vec<PathBuf>,
    /// For each file, whether it lies outside the project directory (allowed by
    /// `allow_paths_outside_project`): values quoted from it are not shown.
    pub foreign: Vec<bool>,
    /// The scalars `${VAR}` interpolation changed: messages show their text as written.
    pub interpolated: Vec<Interpolated>,
}

/// Values of variables shorter than this are hidden only in problems about the value that
/// used them (elsewhere they would hide digits and words of the message itself).
const HIDE_EVERYWHERE_FROM: usize = 4;

impl Sources {
    pub fn add(&mut self, path: PathBuf) -> usize {
        self.add_file(path, false)
    }

    pub fn add_file(&mut self, path: PathBuf, foreign: bool) -> usize {
        self.files.push(path);
        self.foreign.push(foreign);
        self.files.len() - 1
    }

    /// The values of the variables interpolation read, each with the text shown instead
    /// (`${NAME}`), longest first, without the short ones (under [`HIDE_EVERYWHERE_FROM`]
    /// characters they would hide digits and words of a message).
    pub fn variable_values(&self) -> Vec<(String, String)> {
        let mut global: Vec<(String, String)> = Vec::new();
        for rec in &self.interpolated {
            for (name, value) in &rec.used {
                if value.chars().count() >= HIDE_EVERYWHERE_FROM {
                    global.push((value.clone(), format!("${{{name}}}")));
                }
            }
        }
        global.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        global.dedup_by(|a, b| a.0 == b.0);
        global
    }

    /// Resolves file ids to paths, and makes each message safe to print: values that came
    /// from variables are replaced by the text as written (`${NAME}`), values quoted from a
    /// file outside the project are hidden, and control characters (terminal escapes, bidi
    /// overrides) are shown as `\u{..}`.
    pub fn resolve(&self, problems: Vec<Problem>) -> Diagnostics {
        // Everywhere: the longer values of every variable that was read.
        let global = self.variable_values();
        let mut items: Vec<Diagnostic> = problems
            .into_iter()
            .map(|p| {
                let mut message = p.message;
                let own: Vec<&Interpolated> = self
                    .interpolated
                    .iter()
                    .filter(|r| r.span == p.span)
                    .collect();
                if !own.is_empty() {
                    let mut needles: Vec<(String, String)> = Vec::new();
                    for r in &own {
                        if !r.value.is_empty() {
                            needles.push((r.value.clone(), r.raw.clone()));
                        }
                        for (name, value) in &r.used {
                            if !value.is_empty() {
                                needles.push((value.clone(), format!("${{{name}}}")));
                            }
                        }
                    }
                    needles.extend(global.iter().cloned());
                    needles.sort_by_key(|b| std::cmp::Reverse(b.0.len()));
                    message = replace_all(&message, &needles);
                } else if !global.is_empty() {
                    message = replace_all(&message, &global);
                }
                if self.foreign.get(p.span.file).copied().unwrap_or(false) {
                    message = hide_quoted(&message);
                }
                Diagnostic {
                    file: neutralise(
                        &self
                            .files
                            .get(p.span.file)
                            .map(|f| f.display().to_string())
                            .unwrap_or_default(),
                    ),
                    line: p.span.line,
                    column: p.span.col,
                    path: neutralise(&p.path),
                    message: neutralise(&message),
                }
            })
            .collect();
        items.sort_by(|a, b| {
            (&a.file, a.line, a.column, &a.path).cmp(&(&b.file, b.line, b.column, &b.path))
        });
        items.dedup();
        Diagnostics(items)
    }
}

/// One problem, resolved: what `--json` prints for each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub path: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        } else {
            write!(
                f,
                "{}:{}:{}: {}: {}",
                self.file, self.line, self.column, self.path, self.message
            )
        }
    }
}

/// Every problem found in one load; the error type of manifest loading (exit code 2).
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn lines(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }

    pub fn summary(&self) -> String {
        let n = self.0.len();
        let files: std::collections::BTreeSet<&str> =
            self.0.iter().map(|d| d.file.as_str()).collect();
        let files: Vec<&str> = files.into_iter().collect();
        format!(
            "{n} problem{} in {}",
            if n == 1 { "" } else { "s" },
            files.join(", ")
        )
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Replaces, in one left-to-right pass, each occurrence of a needle in any case of its ASCII
/// letters (longest first where several match) by its replacement; replacements are not
/// searched again.
pub(crate) fn replace_all(text: &str, needles: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    'outer: while i < text.len() {
        for (needle, repl) in needles {
            // In any case of ASCII letters: a tool may quote a value in capitals (croner
            // does, refusing a schedule).
            let n = needle.len();
            if n > 0
                && text.len() - i >= n
                && text.as_bytes()[i..i + n].eq_ignore_ascii_case(needle.as_bytes())
            {
                out.push_str(repl);
                i += needle.len();
                continue 'outer;
            }
        }
        let ch = text[i..].chars().next().unwrap_or('\0');
        out.push(ch);
        i += ch.len_utf8().max(1);
    }
    out
}

/// Hides what a message quotes between backticks (values of a file outside the project).
fn hide_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut parts = text.split('`');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    for (i, part) in parts.enumerate() {
        out.push('`');
        if i % 2 == 0 {
            out.push_str("(hidden: a value from a file outside the project)");
        } else {
            out.push_str(part);
        }
    }
    out
}

/// Characters that must not reach a terminal raw in a message: C0 controls (newlines and
/// escapes included), DEL, C1 controls, bidi overrides and isolates, zero-width characters.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// A message made safe for a terminal: unsafe characters are written as `\u{1b}`.
pub fn neutralise(text: &str) -> String {
    if !text.chars().any(is_unsafe_char) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

pub use crate::suggest::suggest;

/// Joins a key path for messages: `services.web.ports[0]`.
pub fn join_path(path: &[String]) -> String {
    let mut out = String::new();
    for seg in path {
        if seg.parse::<usize>().is_ok() {
            out.push('[');
            out.push_str(seg);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_with_indices() {
        let p: Vec<String> = ["services", "web", "ports", "0", "published"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(join_path(&p), "services.web.ports[0].published");
    }

    #[test]
    fn replace_all_finds_a_value_in_any_ascii_case() {
        let needles = vec![
            ("s3cr3t-value".to_string(), "${S}".to_string()),
            ("s3cr3t".to_string(), "${T}".to_string()),
        ];
        assert_eq!(
            replace_all("a *S3CR3T-VALUE b s3cr3t-value s3Cr3T é", &needles),
            "a *${S} b ${S} ${T} é"
        );
    }
}
