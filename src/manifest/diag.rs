//! Problems found in manifests, each with its file, line, column and key path, reported all
//! at once as `FILE:LINE:COLUMN: path.to.key: what is wrong`.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

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
}

impl Sources {
    pub fn add(&mut self, path: PathBuf) -> usize {
        self.files.push(path);
        self.files.len() - 1
    }

    pub fn resolve(&self, problems: Vec<Problem>) -> Diagnostics {
        let mut items: Vec<Diagnostic> = problems
            .into_iter()
            .map(|p| Diagnostic {
                file: self
                    .files
                    .get(p.span.file)
                    .map(|f| f.display().to_string())
                    .unwrap_or_default(),
                line: p.span.line,
                column: p.span.col,
                path: p.path,
                message: p.message,
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

/// `did you mean` for a misspelt name among the known ones.
pub fn suggest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(&str, f64)> = None;
    for k in known {
        let score = strsim::jaro_winkler(name, k);
        if score > 0.8 && best.is_none_or(|(_, s)| score > s) {
            best = Some((k, score));
        }
    }
    best.map(|(k, _)| k)
}

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
    fn suggestions_find_close_names() {
        assert_eq!(suggest("imag", ["image", "replicas"]), Some("image"));
        assert_eq!(suggest("replica", ["image", "replicas"]), Some("replicas"));
        assert_eq!(suggest("zzz", ["image", "replicas"]), None);
    }

    #[test]
    fn paths_join_with_indices() {
        let p: Vec<String> = ["services", "web", "ports", "0", "published"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(join_path(&p), "services.web.ports[0].published");
    }
}
