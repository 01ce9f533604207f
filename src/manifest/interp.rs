//! `${VAR}` interpolation in manifest values, as compose does it: `${VAR}`, `$VAR`,
//! `${VAR:-default}` (unset or empty), `${VAR-default}` (unset), `${VAR:?message}` and
//! `${VAR?message}` (required), `${VAR:+alt}` / `${VAR+alt}`, and `$$` for a literal `$`.
//! Values come from the process environment, then from the project's `.env` file.
//! Unlike compose, a variable that is unset and has no default is an error, not "".

use std::collections::BTreeMap;
use std::path::Path;

use super::diag::{join_path, Problem};
use super::yaml::limits::MAX_SCALAR_BYTES;
use super::yaml::{Kind, Node, Span};

/// Where variables are looked up.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    /// From `.env`; the process environment wins over these.
    pub dotenv: BTreeMap<String, String>,
    /// Set by tests instead of the process environment.
    pub overrides: Option<BTreeMap<String, String>>,
}

impl Vars {
    pub fn get(&self, name: &str) -> Option<String> {
        if let Some(o) = &self.overrides {
            return o
                .get(name)
                .cloned()
                .or_else(|| self.dotenv.get(name).cloned());
        }
        std::env::var(name)
            .ok()
            .or_else(|| self.dotenv.get(name).cloned())
    }

    /// Reads `DIR/.env` when it exists: `KEY=VALUE` lines, `#` comments, optional `export `,
    /// optional single or double quotes around the value.
    pub fn from_project(dir: &Path) -> anyhow::Result<Vars> {
        let path = dir.join(".env");
        let mut dotenv = BTreeMap::new();
        if let Ok(text) = std::fs::read_to_string(&path) {
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let line = line.strip_prefix("export ").unwrap_or(line);
                let Some((k, v)) = line.split_once('=') else {
                    return Err(crate::exit::invalid(format!(
                        "{}:{}: expected KEY=VALUE",
                        path.display(),
                        i + 1
                    )));
                };
                let v = v.trim();
                let v = if v.len() >= 2
                    && ((v.starts_with('"') && v.ends_with('"'))
                        || (v.starts_with('\'') && v.ends_with('\'')))
                {
                    &v[1..v.len() - 1]
                } else {
                    v
                };
                dotenv.insert(k.trim().to_string(), v.to_string());
            }
        }
        Ok(Vars {
            dotenv,
            overrides: None,
        })
    }
}

/// Deepest nesting of `${...}` inside a default, alternative or message.
pub const MAX_DEPTH: usize = 8;

/// One interpolated scalar, kept so that problems found later can be told without the values
/// that came from variables: `raw` is the text as written in the file (`${NAME}` and all),
/// `used` the variables it read and their values.
#[derive(Debug, Clone, PartialEq)]
pub struct Interpolated {
    pub span: Span,
    pub raw: String,
    pub value: String,
    pub used: Vec<(String, String)>,
}

/// Interpolates every scalar value of the tree (keys are left alone). Collects every problem,
/// and records every interpolated scalar in `record`.
pub fn interpolate(
    node: &mut Node,
    vars: &Vars,
    path: &mut Vec<String>,
    out: &mut Vec<Problem>,
    record: &mut Vec<Interpolated>,
) {
    match &mut node.kind {
        Kind::Scalar(s, _) => {
            if s.contains('$') {
                let mut used = Vec::new();
                match expand_in(s, vars, 0, &mut used) {
                    Ok(v) if v.len() > MAX_SCALAR_BYTES => out.push(Problem::at(
                        node.span,
                        &join_path(path),
                        format!(
                            "after interpolation this value is {} bytes long; the limit is {MAX_SCALAR_BYTES}",
                            v.len()
                        ),
                    )),
                    Ok(v) => {
                        record.push(Interpolated {
                            span: node.span,
                            raw: std::mem::replace(s, v.clone()),
                            value: v,
                            used,
                        });
                    }
                    Err(msg) => out.push(Problem::at(node.span, &join_path(path), msg)),
                }
            }
        }
        Kind::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                interpolate(item, vars, path, out, record);
                path.pop();
            }
        }
        Kind::Map(entries) => {
            for (k, v) in entries.iter_mut() {
                path.push(k.name.clone());
                interpolate(v, vars, path, out, record);
                path.pop();
            }
        }
        Kind::Null => {}
    }
}

/// Expands one string.
pub fn expand(s: &str, vars: &Vars) -> Result<String, String> {
    expand_in(s, vars, 0, &mut Vec::new())
}

/// The raw text shown in a message, shortened.
fn excerpt(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        return s.to_string();
    }
    let head: String = s.chars().take(MAX).collect();
    format!("{head}...")
}

/// Error messages name variables and show the text as written, never a variable's value.
fn expand_in(
    s: &str,
    vars: &Vars,
    depth: usize,
    used: &mut Vec<(String, String)>,
) -> Result<String, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "`${{...}}` is nested more than {MAX_DEPTH} deep inside defaults"
        ));
    }
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if out.len() > MAX_SCALAR_BYTES {
            return Err(format!(
                "after interpolation this value is more than {MAX_SCALAR_BYTES} bytes long"
            ));
        }
        if b[i] != b'$' {
            let ch = s[i..].chars().next().unwrap_or('\0');
            out.push(ch);
            i += ch.len_utf8();
            continue;
        }
        // b[i] == '$'
        match b.get(i + 1) {
            Some(b'$') => {
                out.push('$');
                i += 2;
            }
            Some(b'{') => {
                let close = find_close(s, i + 2)
                    .ok_or_else(|| format!("unclosed `${{` in `{}`", excerpt(s)))?;
                let inner = &s[i + 2..close];
                out.push_str(&expand_braced(inner, vars, depth, used)?);
                i = close + 1;
            }
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                let start = i + 1;
                let mut end = start;
                while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                    end += 1;
                }
                let name = &s[start..end];
                out.push_str(&lookup(name, vars, used)?);
                i = end;
            }
            _ => {
                return Err(format!(
                    "a lone `$` in `{}`: write `$$` for a literal dollar sign, or `${{NAME}}`",
                    excerpt(s)
                ))
            }
        }
    }
    Ok(out)
}

/// Finds the `}` that closes a `${` whose content starts at `from`, allowing nesting.
fn find_close(s: &str, from: usize) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = 1;
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'$' if b.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 2;
                continue;
            }
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn expand_braced(
    inner: &str,
    vars: &Vars,
    depth: usize,
    used: &mut Vec<(String, String)>,
) -> Result<String, String> {
    let name_end = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let name = &inner[..name_end];
    if !valid_name(name) {
        return Err(format!(
            "`${{{}}}` is not a variable reference; use `${{NAME}}`",
            excerpt(inner)
        ));
    }
    let rest = &inner[name_end..];
    let value = vars.get(name);
    if let Some(v) = &value {
        used.push((name.to_string(), v.clone()));
    }
    let (op, arg) = if let Some(a) = rest.strip_prefix(":-") {
        (":-", a)
    } else if let Some(a) = rest.strip_prefix(":?") {
        (":?", a)
    } else if let Some(a) = rest.strip_prefix(":+") {
        (":+", a)
    } else if let Some(a) = rest.strip_prefix('-') {
        ("-", a)
    } else if let Some(a) = rest.strip_prefix('?') {
        ("?", a)
    } else if let Some(a) = rest.strip_prefix('+') {
        ("+", a)
    } else if rest.is_empty() {
        ("", "")
    } else {
        return Err(format!(
            "`${{{name}...}}`: unknown modifier `{}`; use :-, -, :?, ?, :+ or +",
            excerpt(rest)
        ));
    };
    let set = value.is_some();
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    let deeper = depth + 1;
    match op {
        "" => value.ok_or_else(|| unset_message(name)),
        ":-" => {
            if non_empty {
                Ok(value.unwrap_or_default())
            } else {
                expand_in(arg, vars, deeper, used)
            }
        }
        "-" => {
            if set {
                Ok(value.unwrap_or_default())
            } else {
                expand_in(arg, vars, deeper, used)
            }
        }
        ":?" | "?" => {
            let ok = if op == ":?" { non_empty } else { set };
            if ok {
                Ok(value.unwrap_or_default())
            } else {
                // The message is shown as written: expanding it could print another
                // variable's value (`${X:?no X, token is ${TOKEN}}`).
                Err(if arg.is_empty() {
                    format!("required variable {name} is not set")
                } else {
                    format!("required variable {name} is not set: {}", excerpt(arg))
                })
            }
        }
        ":+" => {
            if non_empty {
                expand_in(arg, vars, deeper, used)
            } else {
                Ok(String::new())
            }
        }
        "+" => {
            if set {
                expand_in(arg, vars, deeper, used)
            } else {
                Ok(String::new())
            }
        }
        _ => unreachable!("all operators are matched above"),
    }
}

fn lookup(name: &str, vars: &Vars, used: &mut Vec<(String, String)>) -> Result<String, String> {
    let v = vars.get(name).ok_or_else(|| unset_message(name))?;
    used.push((name.to_string(), v.clone()));
    Ok(v)
}

fn unset_message(name: &str) -> String {
    format!(
        "variable {name} is not set; set it in the environment or in .env, or give a default: ${{{name}:-value}}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        Vars {
            dotenv: BTreeMap::new(),
            overrides: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        }
    }

    #[test]
    fn expands_the_compose_forms() {
        let v = vars(&[("A", "x"), ("E", "")]);
        assert_eq!(expand("${A}", &v).unwrap(), "x");
        assert_eq!(expand("$A-$A", &v).unwrap(), "x-x");
        assert_eq!(expand("${B:-d}", &v).unwrap(), "d");
        assert_eq!(expand("${E:-d}", &v).unwrap(), "d");
        assert_eq!(expand("${E-d}", &v).unwrap(), "");
        assert_eq!(expand("${B-${A}}", &v).unwrap(), "x");
        assert_eq!(expand("${A:+alt}", &v).unwrap(), "alt");
        assert_eq!(expand("${B:+alt}", &v).unwrap(), "");
        assert_eq!(expand("cost: $$5", &v).unwrap(), "cost: $5");
        assert_eq!(expand("héllo ${A}", &v).unwrap(), "héllo x");
    }

    #[test]
    fn reports_what_is_wrong() {
        let v = vars(&[]);
        assert!(expand("${NOPE}", &v)
            .unwrap_err()
            .contains("NOPE is not set"));
        assert!(expand("${NOPE:?needed for TLS}", &v)
            .unwrap_err()
            .contains("needed for TLS"));
        assert!(expand("${A", &v).unwrap_err().contains("unclosed"));
        assert!(expand("a $ b", &v).unwrap_err().contains("lone `$`"));
        assert!(expand("${1A}", &v).unwrap_err().contains("not a variable"));
        assert!(expand("${A%x}", &v)
            .unwrap_err()
            .contains("unknown modifier"));
    }
}
