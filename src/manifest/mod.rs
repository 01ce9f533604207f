//! Loading an environment: read, parse with positions, follow `extends` (deep merge),
//! interpolate `${VAR}`, deserialize strictly, then check what types cannot express.
//! Every problem is collected and reported at once.

pub mod de;
pub mod diag;
pub mod interp;
pub mod model;
pub mod names;
pub mod validate;
pub mod yaml;

use std::path::{Path, PathBuf};

pub use diag::{Diagnostic, Diagnostics, Problem, Sources};
pub use model::Manifest;
use yaml::{Kind, Node, Span};

/// How many files one `extends` chain may hold (a longer chain is refused: each level merges
/// the whole tree again, so a chain of hundreds of tiny files would take seconds).
pub const MAX_EXTENDS: usize = 16;
/// A loaded, valid environment.
#[derive(Debug, Clone)]
pub struct Environment {
    /// The environment's name (its file's stem).
    pub name: String,
    /// The file it was read from, as shown to the user.
    pub file: PathBuf,
    pub manifest: Manifest,
    /// The merged, interpolated tree (for positions).
    pub root: Node,
    pub sources: Sources,
    /// What is valid but deserves attention (a certificate close to expiry), as
    /// `FILE:LINE:COLUMN: key: message` lines.
    pub warnings: Vec<String>,
}

impl Environment {
    /// The stack (namespace) name on the swarm.
    pub fn stack(&self) -> &str {
        self.manifest.stack.as_deref().unwrap_or(&self.name)
    }

    pub fn project(&self) -> &str {
        self.manifest.project.as_deref().unwrap_or("twip")
    }
}

/// How to find files: the project directory, and the directory of environments.
#[derive(Debug, Clone)]
pub struct Loader {
    pub project_dir: PathBuf,
    pub vars: interp::Vars,
}

impl Loader {
    pub fn env_dir(&self) -> PathBuf {
        self.project_dir.join("environments")
    }

    /// The file of environment `name`, if there is one (`NAME.yaml` or `NAME.yml`).
    pub fn env_file(&self, name: &str) -> Option<PathBuf> {
        ["yaml", "yml"]
            .iter()
            .map(|ext| self.env_dir().join(format!("{name}.{ext}")))
            // A dangling or unreadable link is still this environment's file: loading it
            // reports the problem for this environment only.
            .find(|p| {
                p.is_file()
                    || p.symlink_metadata()
                        .is_ok_and(|m| m.file_type().is_symlink())
            })
    }

    /// Loads and validates an environment from a file. `Err(Diagnostics)` lists every problem.
    pub fn load_file(&self, name: &str, path: &Path) -> Result<Environment, Diagnostics> {
        let mut sources = Sources::default();
        let mut problems = Vec::new();
        let mut chain = Vec::new();
        if let Err(rule) = names::environment_name(name) {
            let file = sources.add(self.display(path));
            let top = Span {
                file,
                line: 1,
                col: 1,
            };
            return Err(sources.resolve(vec![Problem::at(
                top,
                "",
                format!("the file name is not a valid environment name: {rule}"),
            )]));
        }
        let root = match self.load_tree(path, &mut chain, &mut sources) {
            Ok(root) => root,
            Err(p) => return Err(sources.resolve(p)),
        };
        let mut root = root;
        let mut record = Vec::new();
        interp::interpolate(
            &mut root,
            &self.vars,
            &mut Vec::new(),
            &mut problems,
            &mut record,
        );
        sources.interpolated = record;
        if !problems.is_empty() {
            return Err(sources.resolve(problems));
        }
        let manifest = match deserialize(&root, &mut problems) {
            Some(m) if problems.is_empty() => m,
            _ => return Err(sources.resolve(problems)),
        };
        validate::check(&manifest, name, &root, &self.project_dir, &mut problems);
        if !problems.is_empty() {
            return Err(sources.resolve(problems));
        }
        let warned = validate::warnings(&manifest, &root, &self.project_dir, crate::tls::now());
        let warnings = sources.resolve(warned).lines();
        Ok(Environment {
            warnings,
            name: name.to_string(),
            file: self.display(path),
            manifest,
            root,
            sources,
        })
    }

    fn display(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.project_dir)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| path.to_path_buf())
    }

    /// Reads one file and the chain it extends, merged. Problems point at their own file.
    fn load_tree(
        &self,
        path: &Path,
        chain: &mut Vec<PathBuf>,
        sources: &mut Sources,
    ) -> Result<Node, Vec<Problem>> {
        let file = sources.add(self.display(path));
        let top = Span {
            file,
            line: 1,
            col: 1,
        };
        let bytes = read_bounded(path).map_err(|msg| vec![Problem::at(top, "", msg)])?;
        // A UTF-8 byte order mark (some editors write one) is not part of the text.
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let span = yaml::utf8_error_span(bytes, e.valid_up_to(), file);
                let byte = bytes[e.valid_up_to()];
                return Err(vec![Problem::at(
                    span,
                    "",
                    format!("the file is not UTF-8 text (byte 0x{byte:02X}); save it as UTF-8"),
                )]);
            }
        };
        let mut root = match yaml::parse(text, file) {
            Ok(Some(n)) => n,
            Ok(None) => {
                return Err(vec![Problem::at(
                    top,
                    "",
                    "the manifest is empty; it needs at least `services:` (see `twip init` for an example)",
                )])
            }
            Err(p) => return Err(vec![p]),
        };
        if !matches!(root.kind, Kind::Map(_)) {
            return Err(vec![Problem::at(
                root.span,
                "",
                format!(
                    "a manifest is a mapping of keys (services:, proxy:, ...), not {}",
                    root.type_name()
                ),
            )]);
        }
        chain.push(path.to_path_buf());
        let Some(ext) = root.remove("extends") else {
            return Ok(root);
        };
        let Some(base_name) = ext.as_str().map(str::to_string) else {
            return Err(vec![Problem::at(
                ext.span,
                "extends",
                "expected the name of an environment to extend",
            )]);
        };
        let base_path = self.resolve_extends(path, &base_name).ok_or_else(|| {
            let known = self.environment_names(true);
            let hint = diag::suggest(&base_name, known.iter().map(String::as_str))
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_else(|| format!("; known: {}", known.join(", ")));
            vec![Problem::at(
                ext.span,
                "extends",
                format!("no environment `{base_name}` to extend{hint}"),
            )]
        })?;
        if let Err(e) = validate::stays_in_project(
            &self.project_dir,
            &self.project_dir,
            &base_path.to_string_lossy(),
            &[],
        ) {
            return Err(vec![Problem::at(
                ext.span,
                "extends",
                format!("the file to extend {e} (extends never leaves the project)"),
            )]);
        }
        if chain.len() >= MAX_EXTENDS {
            return Err(vec![Problem::at(
                ext.span,
                "extends",
                format!("`extends` chains hold at most {MAX_EXTENDS} files; merge some of them"),
            )]);
        }
        if chain.iter().any(|p| same_file(p, &base_path)) {
            return Err(vec![Problem::at(
                ext.span,
                "extends",
                format!("`extends: {base_name}` makes a cycle"),
            )]);
        }
        let base = self.load_tree(&base_path, chain, sources)?;
        Ok(merge(base, root))
    }

    fn resolve_extends(&self, from: &Path, name: &str) -> Option<PathBuf> {
        if name.ends_with(".yaml") || name.ends_with(".yml") {
            let p = from.parent().unwrap_or(Path::new(".")).join(name);
            return p.is_file().then_some(p);
        }
        self.env_file(name)
    }

    /// Environment names in `environments/` (with `_partials` when asked), sorted.
    pub fn environment_names(&self, with_partials: bool) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.env_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let p = e.path();
                let ext = p.extension()?.to_str()?;
                if ext != "yaml" && ext != "yml" {
                    return None;
                }
                let stem = p.file_stem()?.to_str()?.to_string();
                (with_partials || !stem.starts_with('_')).then_some(stem)
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Reads a manifest file, refusing one larger than [`yaml::limits::MAX_FILE_BYTES`] before
/// reading it all (and stopping there for files whose size is not known in advance).
fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let max = yaml::limits::MAX_FILE_BYTES;
    let too_big = |n: u64| {
        format!(
            "the file is {n} bytes; a manifest may have at most {max} bytes ({} MiB)",
            max >> 20
        )
    };
    let f = std::fs::File::open(path).map_err(|e| format!("cannot read the file: {e}"))?;
    if let Ok(meta) = f.metadata() {
        if !meta.is_file() {
            return Err("not a regular file".into());
        }
        if meta.len() > max {
            return Err(too_big(meta.len()));
        }
    }
    let mut bytes = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if bytes.len() as u64 > max {
        return Err(format!(
            "the file is more than {max} bytes; a manifest may have at most {} MiB",
            max >> 20
        ));
    }
    Ok(bytes)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Deep merge: mappings merge key by key, a `null` in the overlay removes the key, anything
/// else in the overlay (scalars, lists) replaces what the base had.
pub fn merge(base: Node, overlay: Node) -> Node {
    match (base.kind, overlay.kind) {
        (Kind::Map(b), Kind::Map(o)) => {
            // Linear in the size of both mappings: base entries are looked up by name.
            let mut slots: Vec<Option<(yaml::Key, Node)>> = b.into_iter().map(Some).collect();
            let index: std::collections::HashMap<String, usize> = slots
                .iter()
                .enumerate()
                .filter_map(|(i, e)| e.as_ref().map(|(k, _)| (k.name.clone(), i)))
                .collect();
            let mut added = Vec::new();
            for (k, v) in o {
                match index.get(&k.name).copied() {
                    Some(i) if v.kind == Kind::Null => slots[i] = None,
                    Some(i) => {
                        slots[i] = match slots[i].take() {
                            Some((_, old)) => Some((k, merge(old, v))),
                            None => Some((k, v)),
                        }
                    }
                    None if v.kind == Kind::Null => {}
                    None => added.push((k, v)),
                }
            }
            let mut entries: Vec<(yaml::Key, Node)> = slots.into_iter().flatten().collect();
            entries.extend(added);
            Node {
                kind: Kind::Map(entries),
                span: overlay.span,
            }
        }
        (_, kind) => Node {
            kind,
            span: overlay.span,
        },
    }
}

/// Deserializes the whole manifest; on a type error, deserializes each section and each
/// named entry on its own so that one run reports a problem in every place that has one.
fn deserialize(root: &Node, problems: &mut Vec<Problem>) -> Option<Manifest> {
    let sink = de::Sink::default();
    let result = de::from_node::<Manifest>(root, Vec::new(), &sink);
    let manifest = match result {
        Ok(m) => Some(m),
        Err(e) => {
            problems.push(e.into_problem(root.span));
            check_sections(root, &sink, problems);
            None
        }
    };
    problems.extend(sink.problems.into_inner());
    manifest
}

/// Deserializes one node on its own, recording its problem.
type Check = fn(&Node, Vec<String>, &de::Sink, &mut Vec<Problem>);

fn check_sections(root: &Node, sink: &de::Sink, problems: &mut Vec<Problem>) {
    fn one<T: serde::de::DeserializeOwned>(
        node: &Node,
        path: Vec<String>,
        sink: &de::Sink,
        problems: &mut Vec<Problem>,
    ) {
        if let Err(e) = de::from_node::<T>(node, path, sink) {
            problems.push(e.into_problem(node.span));
        }
    }
    fn entries<T: serde::de::DeserializeOwned>(
        root: &Node,
        key: &str,
        sink: &de::Sink,
        problems: &mut Vec<Problem>,
    ) {
        match root.get(key).map(|n| &n.kind) {
            Some(Kind::Map(items)) => {
                for (k, v) in items {
                    one::<T>(v, vec![key.to_string(), k.name.clone()], sink, problems);
                }
            }
            Some(Kind::Seq(items)) => {
                for (i, v) in items.iter().enumerate() {
                    one::<T>(v, vec![key.to_string(), i.to_string()], sink, problems);
                }
            }
            _ => {}
        }
    }
    fn section<T: serde::de::DeserializeOwned>(
        root: &Node,
        key: &str,
        sink: &de::Sink,
        problems: &mut Vec<Problem>,
    ) {
        if let Some(n) = root.get(key) {
            one::<Option<T>>(n, vec![key.to_string()], sink, problems);
        }
    }
    entries::<model::Service>(root, "services", sink, problems);
    // Inside each service, its parts on their own: a type error in `healthcheck` does not hide
    // one in `resources`.
    if let Some(Kind::Map(services)) = root.get("services").map(|n| &n.kind) {
        for (name, svc) in services {
            let path = |k: &str| vec!["services".to_string(), name.name.clone(), k.to_string()];
            let parts: [(&str, Check); 9] = [
                ("healthcheck", one::<Option<model::Healthcheck>>),
                ("resources", one::<Option<model::Resources>>),
                ("placement", one::<Option<model::Placement>>),
                ("update", one::<Option<model::UpdateConfig>>),
                ("rollback", one::<Option<model::UpdateConfig>>),
                ("restart", one::<Option<model::RestartPolicy>>),
                ("autoscale", one::<Option<model::Autoscale>>),
                ("stop_grace_period", one::<Option<model::Duration>>),
                ("replicas", one::<Option<u64>>),
            ];
            for (key, check) in parts {
                if let Some(n) = svc.get(key) {
                    check(n, path(key), sink, problems);
                }
            }
            for key in ["ports", "volumes"] {
                if let Some(Kind::Seq(items)) = svc.get(key).map(|n| &n.kind) {
                    for (i, item) in items.iter().enumerate() {
                        let mut p = path(key);
                        p.push(i.to_string());
                        if key == "ports" {
                            one::<model::Port>(item, p, sink, problems);
                        } else {
                            one::<model::Mount>(item, p, sink, problems);
                        }
                    }
                }
            }
        }
    }
    entries::<model::Image>(root, "images", sink, problems);
    entries::<model::NodeSpec>(root, "nodes", sink, problems);
    entries::<Option<model::Network>>(root, "networks", sink, problems);
    entries::<Option<model::Volume>>(root, "volumes", sink, problems);
    entries::<model::SecretDef>(root, "secrets", sink, problems);
    entries::<model::ConfigDef>(root, "configs", sink, problems);
    section::<model::Engine>(root, "engine", sink, problems);
    section::<model::Registry>(root, "registry", sink, problems);
    section::<model::Proxy>(root, "proxy", sink, problems);
    section::<model::Monitoring>(root, "monitoring", sink, problems);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(s: &str) -> Node {
        yaml::parse(s, 0).unwrap().unwrap()
    }

    #[test]
    fn merge_is_deep_and_null_removes() {
        let base = node("a: {x: 1, y: 2}\nb: [1, 2]\nc: 3\n");
        let over = node("a: {y: 5, z: 6}\nb: [9]\nc: ~\n");
        let m = merge(base, over);
        let a = m.get("a").unwrap();
        assert_eq!(a.get("x").unwrap().as_str(), Some("1"));
        assert_eq!(a.get("y").unwrap().as_str(), Some("5"));
        assert_eq!(a.get("z").unwrap().as_str(), Some("6"));
        match &m.get("b").unwrap().kind {
            Kind::Seq(items) => assert_eq!(items.len(), 1),
            other => panic!("expected a list, got {other:?}"),
        }
        assert!(m.get("c").is_none());
    }
}
