//! Grammars of names and values (see `names`), and the characters of every key and value.

use super::{is_full_reference, Checker};
use crate::manifest::diag::{join_path, Problem};
use crate::manifest::model::*;
use crate::manifest::names;
use crate::manifest::yaml::Node;

impl Checker<'_> {
    /// Reports `what` at `path` when `check` refuses `value`: `` `VALUE` is not a valid
    /// WHAT: RULE ``. Values that came from variables are shown as written when the problem
    /// is printed (see `Sources::resolve`).
    fn grammar(
        &mut self,
        path: &[&str],
        value: &str,
        what: &str,
        check: fn(&str) -> Result<(), String>,
    ) {
        if let Err(rule) = check(value) {
            // A value with refused characters is reported by the character check; do not
            // quote it here.
            if names::check_line(value).is_ok() {
                self.err(path, format!("`{value}` is not a valid {what}: {rule}"));
            }
        }
    }
}

pub(super) fn check_grammars(m: &Manifest, c: &mut Checker) {
    object_grammars(m, c);
    image_grammars(m, c);
    service_grammars(m, c);
    node_grammars(m, c);
    proxy_grammars(m, c);
}

/// Names of volumes, configs and secrets, secrets' variables, the registry's namespace.
fn object_grammars(m: &Manifest, c: &mut Checker) {
    use names::*;
    for name in m.volumes.keys() {
        c.grammar(&["volumes", name], name, "volume name", object_name);
    }
    for name in m.configs.keys() {
        c.grammar(&["configs", name], name, "config name", object_name);
    }
    for name in m.secrets.keys() {
        c.grammar(&["secrets", name], name, "secret name", object_name);
        if let Some(var) = &m.secrets[name].environment {
            c.grammar(
                &["secrets", name, "environment"],
                var,
                "variable name",
                env_var_name,
            );
        }
    }
    if let Some(reg) = &m.registry {
        if let Some(ns) = &reg.namespace {
            c.grammar(&["registry", "namespace"], ns, "namespace", repository);
        }
    }
}

/// Image references, repositories, build paths, stages and argument names.
fn image_grammars(m: &Manifest, c: &mut Checker) {
    use names::*;
    for (name, img) in &m.images {
        if let Some(r) = &img.reference {
            if !r.is_empty() {
                c.grammar(
                    &["images", name, "ref"],
                    r,
                    "image reference",
                    image_reference,
                );
            }
        }
        if let Some(r) = &img.repository {
            c.grammar(&["images", name, "repository"], r, "repository", repository);
        }
        if let Some(b) = &img.build {
            c.grammar(
                &["images", name, "build", "context"],
                &b.context,
                "path",
                file_path,
            );
            if let Some(df) = &b.dockerfile {
                c.grammar(
                    &["images", name, "build", "dockerfile"],
                    df,
                    "path",
                    file_path,
                );
            }
            if let Some(t) = &b.target {
                c.grammar(
                    &["images", name, "build", "target"],
                    t,
                    "build stage",
                    object_name,
                );
            }
            for k in b.args.keys() {
                c.grammar(
                    &["images", name, "build", "args", k],
                    k,
                    "build argument name",
                    env_var_name,
                );
            }
        }
    }
}

/// Service images, variable names, label keys, env files and file modes.
fn service_grammars(m: &Manifest, c: &mut Checker) {
    use names::*;
    for (name, s) in &m.services {
        if is_full_reference(&s.image) {
            c.grammar(
                &["services", name, "image"],
                &s.image,
                "image reference",
                image_reference,
            );
        }
        for k in s.environment.0.keys() {
            c.grammar(
                &["services", name, "environment", k],
                k,
                "variable name",
                env_var_name,
            );
        }
        for k in s.labels.keys() {
            c.grammar(&["services", name, "labels", k], k, "label key", label_key);
        }
        if let Some(files) = &s.env_file {
            for f in files.to_vec() {
                c.grammar(&["services", name, "env_file"], &f, "path", file_path);
            }
        }
        for (i, r) in s.secrets.iter().chain(s.configs.iter()).enumerate() {
            if let Some(mode) = r.mode {
                if mode > 0o777 {
                    let (key, idx) = if i < s.secrets.len() {
                        ("secrets", i)
                    } else {
                        ("configs", i - s.secrets.len())
                    };
                    let idx = idx.to_string();
                    c.err(
                        &["services", name, key, &idx, "mode"],
                        format!("{mode} is not a file mode (0 to 511, i.e. 0o777)"),
                    );
                }
            }
        }
    }
}

/// Volume label keys, and node names, addresses, SSH users and identity files.
fn node_grammars(m: &Manifest, c: &mut Checker) {
    use names::*;
    for (name, v) in &m.volumes {
        if let Some(v) = v {
            for k in v.labels.keys() {
                c.grammar(&["volumes", name, "labels", k], k, "label key", label_key);
            }
            for k in v.driver_opts.keys() {
                c.grammar(
                    &["volumes", name, "driver_opts", k],
                    k,
                    "driver option",
                    driver_option,
                );
            }
        }
    }
    for (i, n) in m.nodes.iter().enumerate() {
        let idx = i.to_string();
        c.grammar(&["nodes", &idx, "name"], &n.name, "node name", node_name);
        if !n.address.is_empty() && !n.address.contains(['/', ' ']) {
            c.grammar(
                &["nodes", &idx, "address"],
                &n.address,
                "host address",
                host_name,
            );
        }
        if let Some(u) = n.ssh.as_ref().and_then(|s| s.user.as_ref()) {
            c.grammar(&["nodes", &idx, "ssh", "user"], u, "user name", ssh_user);
        }
        if let Some(f) = n.ssh.as_ref().and_then(|s| s.identity_file.as_ref()) {
            c.grammar(
                &["nodes", &idx, "ssh", "identity_file"],
                f,
                "path",
                file_path,
            );
        }
        for k in n.labels.keys() {
            c.grammar(&["nodes", &idx, "labels", k], k, "label key", label_key);
        }
    }
}

/// The proxy's image, route paths and hosts, health and stats paths; Prometheus's.
fn proxy_grammars(m: &Manifest, c: &mut Checker) {
    use names::*;
    if let Some(p) = &m.proxy {
        if let Some(img) = &p.image {
            if is_full_reference(img) {
                c.grammar(&["proxy", "image"], img, "image reference", image_reference);
            }
        }
        for (i, r) in p.routes.iter().enumerate() {
            let idx = i.to_string();
            if let Some(path) = &r.path {
                if path.starts_with('/') {
                    c.grammar(
                        &["proxy", "routes", &idx, "path"],
                        path,
                        "route path",
                        request_path,
                    );
                }
            }
            if let Some(h) = &r.host {
                if !h.is_empty() && !h.contains(['/', ' ', ':']) {
                    c.grammar(&["proxy", "routes", &idx, "host"], h, "host", host_port);
                }
            }
            for (key, v) in [("health", &r.health), ("probe", &r.probe)] {
                if let Some(v) = v {
                    if v.starts_with('/') {
                        c.grammar(
                            &["proxy", "routes", &idx, key],
                            v,
                            "request path",
                            request_target,
                        );
                    }
                }
            }
        }
        if let Some(h) = p.health.as_ref().and_then(|h| h.path.as_ref()) {
            if h.starts_with('/') {
                c.grammar(
                    &["proxy", "health", "path"],
                    h,
                    "request path",
                    request_target,
                );
            }
        }
        if let Some(u) = p.stats.as_ref().and_then(|s| s.uri.as_ref()) {
            if u.starts_with('/') {
                c.grammar(&["proxy", "stats", "uri"], u, "stats uri", request_path);
            }
        }
    }
    if let Some(mon) = &m.monitoring {
        if is_full_reference(&mon.image) {
            c.grammar(
                &["monitoring", "image"],
                &mon.image,
                "image reference",
                image_reference,
            );
        }
        for (i, t) in mon.targets.iter().enumerate() {
            if let Some(p) = &t.path {
                let idx = i.to_string();
                c.grammar(
                    &["monitoring", "targets", &idx, "path"],
                    p,
                    "metrics path",
                    request_path,
                );
            }
        }
    }
}

/// Paths whose values are free text (multi-line, any printable character): config
/// content, descriptions, environment values, commands, healthcheck tests, build
/// arguments. Everything else (keys included) is a name or a single-line value.
fn is_free_text(path: &[String]) -> bool {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    matches!(
        p.as_slice(),
        ["description"]
            | ["configs", _, "content"]
            | ["services", _, "environment", _]
            | ["services", _, "command" | "entrypoint", ..]
            | ["services", _, "healthcheck", "test", ..]
            | ["images", _, "build", "args", _]
    )
}

/// Every key and every scalar of the (interpolated) tree: no control, bidi or zero-width
/// characters in names and single-line values; no control characters but tab and line
/// breaks in free text. Walks with an explicit stack (the depth is bounded by the parser).
pub(super) fn check_characters(root: &Node, out: &mut Vec<Problem>) {
    use crate::manifest::yaml::Kind;
    let mut todo: Vec<(&Node, Vec<String>)> = vec![(root, Vec::new())];
    while let Some((node, path)) = todo.pop() {
        match &node.kind {
            Kind::Scalar(s, _) => {
                let r = if is_free_text(&path) {
                    names::check_text(s)
                } else {
                    names::check_line(s)
                };
                if let Err(e) = r {
                    out.push(Problem::at(
                        node.span,
                        &join_path(&path),
                        format!("the value {e}"),
                    ));
                }
            }
            Kind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let mut p = path.clone();
                    p.push(i.to_string());
                    todo.push((item, p));
                }
            }
            Kind::Map(entries) => {
                for (k, v) in entries {
                    let mut p = path.clone();
                    p.push(k.name.clone());
                    if let Err(e) = names::check_line(&k.name) {
                        out.push(Problem::at(k.span, &join_path(&p), format!("the key {e}")));
                    }
                    todo.push((v, p));
                }
            }
            Kind::Null => {}
        }
    }
}
