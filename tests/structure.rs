//! The layering rules of docs/design.md, checked on the source tree (no build, no daemon):
//! only `src/engine/` imports the Engine API client, commands do not import each other, lower
//! layers do not import upper ones, files stay under 800 lines and a function over 120 lines
//! says why. A rule broken here is a design decision to discuss, not a test to loosen.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 800;
const MAX_FN_LINES: usize = 120;

fn sources() -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p: PathBuf = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p
                    .strip_prefix(env!("CARGO_MANIFEST_DIR"))
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    assert!(
        out.len() > 50,
        "expected the whole source tree, found {} files",
        out.len()
    );
    out
}

/// The code of a file without its comments' text (so a doc comment may name a module).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(i, l)| {
        let t = l.trim_start();
        (!t.starts_with("//")).then_some((i + 1, l))
    })
}

#[test]
fn only_the_engine_module_imports_the_api_client() {
    let offenders: Vec<String> = sources()
        .iter()
        .filter(|(p, _)| !p.starts_with("src/engine/"))
        .flat_map(|(p, text)| {
            code_lines(text)
                .filter(|(_, l)| l.contains("bollard"))
                .map(move |(n, l)| format!("{p}:{n}: {}", l.trim()))
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "bollard outside src/engine/:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn commands_do_not_import_each_other() {
    let files = sources();
    let commands: Vec<&String> = files
        .keys()
        .filter(|p| p.starts_with("src/commands/") && !p.ends_with("/mod.rs"))
        .collect();
    assert!(
        commands.len() >= 15,
        "found only {} command files",
        commands.len()
    );
    let mut offenders = Vec::new();
    for p in commands {
        // A command may be a folder (`commands/bench.rs` + `commands/bench/*.rs`): its own
        // files may use each other.
        let rest = p.trim_start_matches("src/commands/");
        let own = rest.split(['/', '.']).next().unwrap();
        let nested = rest.contains('/');
        for (n, l) in code_lines(&files[p]) {
            if in_tests(&files[p], n) {
                continue;
            }
            let other_command = l
                .match_indices("crate::commands::")
                .any(|(i, m)| !l[i + m.len()..].starts_with(own));
            let up = if nested {
                l.contains("super::super::")
            } else {
                l.contains("super::") && !l.contains(&format!("super::{own}"))
            };
            if other_command || up {
                offenders.push(format!("{p}:{n}: {}", l.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "a command imports another:\n{}",
        offenders.join("\n")
    );
}

/// Whether line `n` is inside the file's `mod tests` (whose `super::` is the file itself).
fn in_tests(text: &str, n: usize) -> bool {
    text.lines()
        .position(|l| l.trim_start().starts_with("mod tests"))
        .is_some_and(|start| n > start)
}

/// Which top-level modules each layer may not import (docs/design.md, "Who may import whom").
/// Lower layers never reach up: the pure core knows nothing of the engine's client, of
/// commands or of the terminal.
#[rustfmt::skip]
const FORBIDDEN: &[(&str, &[&str])] = &[
    ("src/manifest/", &["commands", "lifecycle", "context", "engine", "load", "lab", "build", "cli", "ui", "http", "plan", "render"]),
    ("src/render/", &["commands", "lifecycle", "context", "engine", "load", "lab", "build", "cli", "ui", "http", "plan"]),
    ("src/plan/", &["commands", "lifecycle", "context", "load", "lab", "build", "cli", "ui", "http"]),
    // The engine never prints: it reports events that the lifecycle renders.
    ("src/engine/", &["commands", "lifecycle", "context", "load", "cli", "ui", "build"]),
    // exec shows a build's live lines and redacts what it prints (`ui::clean`, `ui::redact`).
    ("src/exec/", &["commands", "lifecycle", "context", "engine", "load", "cli"]),
    // TLS for twip itself (certificates read, the bench client's configuration): nothing of twip.
    ("src/tls/", &["commands", "lifecycle", "context", "engine", "load", "lab", "build", "cli", "ui", "http", "plan", "render", "manifest", "exec"]),
    ("src/http/", &["commands", "lifecycle", "context", "engine", "load", "lab", "build", "cli", "plan", "render", "manifest"]),
    ("src/load/", &["commands", "lifecycle", "context", "engine", "lab", "build", "cli", "plan", "render", "manifest"]),
    ("src/lifecycle/", &["commands", "cli"]),
    // The in-cluster agent: beside the lifecycle, below the commands; it is given no target.
    ("src/agent/", &["commands", "cli", "context", "ui"]),
    ("src/lab/", &["commands", "cli", "lifecycle"]),
    ("src/build/", &["commands", "cli", "lifecycle"]),
    // A context is opened from the global options (`--project-dir`, `--host`).
    ("src/context.rs", &["commands", "lifecycle"]),
    // exec's tasks and sessions: below the commands, beside the lifecycle.
    ("src/tasks.rs", &["commands", "lifecycle", "cli"]),
    ("src/session.rs", &["commands", "lifecycle", "context", "cli"]),
    // ui prints errors, manifest diagnostics among them.
    ("src/ui.rs", &["commands", "lifecycle", "context", "cli", "load", "engine", "plan"]),
    ("src/cli.rs", &["commands", "lifecycle", "context", "load", "engine"]),
    ("src/cli/", &["commands", "lifecycle", "context", "load", "engine"]),
];

#[test]
fn lower_layers_do_not_import_upper_ones() {
    let files = sources();
    let mut offenders = Vec::new();
    let mut checked = 0;
    for (p, text) in &files {
        for (prefix, forbidden) in FORBIDDEN {
            if !p.starts_with(prefix) {
                continue;
            }
            checked += 1;
            for (n, l) in code_lines(text) {
                for m in *forbidden {
                    // `engine::model` is the one door for the API's data types (see design.md).
                    if *m == "engine" && l.contains("crate::engine::model") {
                        continue;
                    }
                    if l.contains(&format!("crate::{m}::"))
                        || l.contains(&format!("crate::{m};"))
                        || l.contains(&format!("crate::{m}::{{"))
                    {
                        offenders.push(format!("{p}:{n}: imports {m}: {}", l.trim()));
                    }
                }
            }
        }
    }
    assert!(checked >= 30, "only {checked} files were checked");
    assert!(
        offenders.is_empty(),
        "a layer imports one above it:\n{}",
        offenders.join("\n")
    );
}

/// A command is wiring: it opens a context and calls a layer below. What grows past this
/// belongs in the layer below (`lifecycle/`, `lab/`, `build/`, `load/`, ...).
const MAX_COMMAND_LINES: usize = 200;

#[test]
fn commands_are_wiring() {
    let files = sources();
    let big: Vec<String> = files
        .iter()
        .filter(|(p, _)| p.starts_with("src/commands/"))
        .map(|(p, t)| (p, t.lines().count()))
        .filter(|(_, n)| *n > MAX_COMMAND_LINES)
        .map(|(p, n)| format!("{p}: {n} lines"))
        .collect();
    assert!(
        big.is_empty(),
        "command files over {MAX_COMMAND_LINES} lines:\n{}",
        big.join("\n")
    );
}

#[test]
fn no_source_file_is_over_800_lines() {
    let big: Vec<String> = sources()
        .iter()
        .map(|(p, t)| (p, t.lines().count()))
        .filter(|(_, n)| *n > MAX_FILE_LINES)
        .map(|(p, n)| format!("{p}: {n} lines"))
        .collect();
    assert!(
        big.is_empty(),
        "files over {MAX_FILE_LINES} lines:\n{}",
        big.join("\n")
    );
}

/// Functions (`fn` at the start of a line, any indentation, with a body) and their length in
/// lines, from the signature to the closing brace at the same indentation.
fn functions(text: &str) -> Vec<(usize, usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        let t = t
            .strip_prefix("pub(crate) ")
            .or_else(|| t.strip_prefix("pub "))
            .unwrap_or(t);
        let t = t.strip_prefix("async ").unwrap_or(t);
        let t = t.strip_prefix("const ").unwrap_or(t);
        let t = t.strip_prefix("unsafe ").unwrap_or(t);
        let Some(rest) = t.strip_prefix("fn ") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let indent = l.len() - l.trim_start().len();
        let close = " ".repeat(indent) + "}";
        // A declaration without a body (a trait's) ends with `;` before any `{`.
        let mut j = i;
        while j < lines.len() && !lines[j].contains('{') && !lines[j].trim_end().ends_with(';') {
            j += 1;
        }
        if j >= lines.len() || !lines[j].contains('{') {
            continue;
        }
        if lines[j].trim_end().ends_with('}')
            && lines[j].matches('{').count() == lines[j].matches('}').count()
        {
            continue; // one line
        }
        if let Some(end) = (j + 1..lines.len()).find(|&k| {
            lines[k].starts_with(&close)
                && lines[k].trim().starts_with('}')
                && lines[k].len() - lines[k].trim_start().len() == indent
        }) {
            out.push((i + 1, end - i + 1, name));
        }
    }
    out
}

/// A long function's comment says why: a `//` or `///` line above its signature (attributes
/// may sit between) that contains the word "long".
fn says_why(text: &str, line: usize) -> bool {
    let lines: Vec<&str> = text.lines().collect();
    lines[..line - 1]
        .iter()
        .rev()
        .map(|l| l.trim_start())
        .take_while(|l| l.starts_with("//") || l.starts_with("#["))
        .any(|l| l.starts_with("//") && l.to_lowercase().contains("long"))
}

#[test]
fn long_functions_say_why() {
    let files = sources();
    let mut seen = 0;
    let mut offenders = Vec::new();
    for (p, text) in &files {
        for (line, len, name) in functions(text) {
            seen += 1;
            if len > MAX_FN_LINES && !says_why(text, line) {
                offenders.push(format!("{p}:{line}: fn {name} is {len} lines"));
            }
        }
    }
    assert!(
        seen > 500,
        "found only {seen} functions: the scanner is broken"
    );
    assert!(
        offenders.is_empty(),
        "functions over {MAX_FN_LINES} lines without a comment saying why (a comment line above \
         the signature containing the word \"long\"):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_function_scanner_measures_what_it_should() {
    let text = "fn a() {\n    x();\n}\n\n    pub async fn b(\n        y: u8,\n    ) -> u8 {\n        y\n    }\nfn c() -> u8 { 1 }\n";
    let f = functions(text);
    assert_eq!(f, vec![(1, 3, "a".to_string()), (5, 5, "b".to_string())]);
    let doc = "/// Long: one table.\n#[allow(x)]\nfn t() {\n}\n";
    assert!(says_why(doc, 3));
    assert!(!says_why("/// Short.\nfn t() {\n}\n", 2));
}
