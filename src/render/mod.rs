//! Rendering: the stack file, the HAProxy config and the Prometheus config of an environment,
//! through minijinja templates. Built-in templates are embedded in the binary; a project's
//! `templates/NAME` overrides the built-in of the same name. Undefined variables are errors.
//! Output is deterministic byte for byte: the same manifest and templates give the same files.

pub mod context;

use std::path::{Component, Path, PathBuf};

use anyhow::Context as _;
use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment as Jinja, UndefinedBehavior, Value};
use sha2::{Digest, Sha256};

use crate::manifest::Environment;
use context::{FileObjCtx, ObjectNames};

pub const STACK_TEMPLATE: &str = "stack.yml.j2";
pub const PROXY_TEMPLATE: &str = "haproxy.cfg.j2";
pub const MONITORING_TEMPLATE: &str = "prometheus.yml.j2";
pub const BOOTSTRAP_TEMPLATE: &str = "bootstrap.sh.j2";

pub const STACK_FILE: &str = "stack.yml";
pub const PROXY_FILE: &str = "haproxy.cfg";
pub const MONITORING_FILE: &str = "prometheus.yml";

/// The built-in templates (the files in the repository's `templates/`).
pub const BUILTIN: &[(&str, &str)] = &[
    (STACK_TEMPLATE, include_str!("../../templates/stack.yml.j2")),
    (
        PROXY_TEMPLATE,
        include_str!("../../templates/haproxy.cfg.j2"),
    ),
    (
        MONITORING_TEMPLATE,
        include_str!("../../templates/prometheus.yml.j2"),
    ),
    (
        BOOTSTRAP_TEMPLATE,
        include_str!("../../templates/bootstrap.sh.j2"),
    ),
];

/// One rendered file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub name: String,
    pub content: String,
}

/// Everything `render` produces for an environment, in a fixed order (stack first).
#[derive(Debug, Clone)]
pub struct Output {
    pub files: Vec<Rendered>,
}

impl Output {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.files
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.content.as_str())
    }
}

/// A template problem: which template, and what minijinja said (with its line).
#[derive(Debug, thiserror::Error)]
#[error("template {name}: {detail}")]
pub struct TemplateError {
    pub name: String,
    pub detail: String,
}

fn template_error(name: &str, e: minijinja::Error) -> anyhow::Error {
    let mut detail = e.to_string();
    if let Some(line) = e.line() {
        if !detail.contains("line") {
            detail = format!("line {line}: {detail}");
        }
    }
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        detail.push_str(&format!(": {s}"));
        source = s.source();
    }
    anyhow::Error::new(TemplateError {
        name: name.to_string(),
        detail,
    })
}

/// YAML double-quoted scalar; `$` doubled so `docker stack deploy` does not interpolate it.
fn yq(v: Value) -> String {
    let s = if let Some(s) = v.as_str() {
        s.to_string()
    } else {
        v.to_string()
    };
    let quoted = serde_json::to_string(&s).unwrap_or_else(|_| "\"\"".into());
    quoted.replace('$', "$$")
}

/// A flow list of YAML double-quoted scalars.
fn yqlist(v: Value) -> Result<String, minijinja::Error> {
    let items: Vec<String> = v.try_iter()?.map(yq).collect();
    Ok(format!("[{}]", items.join(", ")))
}

pub fn content_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().take(5).map(|b| format!("{b:02x}")).collect()
}

/// The template environment: custom delimiters (`[[ ]]`, `[% %]`, `[# #]`) so that Swarm's
/// `{{.Task.Slot}}` survives, strict undefined, trimmed blocks.
pub fn jinja(project_templates: Option<&Path>) -> anyhow::Result<Jinja<'static>> {
    let mut env = Jinja::new();
    let syntax = SyntaxConfig::builder()
        .block_delimiters("[%", "%]")
        .variable_delimiters("[[", "]]")
        .comment_delimiters("[#", "#]")
        .build()
        .context("template syntax")?;
    env.set_syntax(syntax);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    env.add_filter("yq", yq);
    env.add_filter("yqlist", yqlist);
    for (name, builtin) in BUILTIN {
        let text = match project_templates.map(|d| d.join(name)) {
            Some(p) if p.is_file() => std::fs::read_to_string(&p)
                .with_context(|| format!("reading template {}", p.display()))?,
            _ => builtin.to_string(),
        };
        env.add_template_owned(name.to_string(), text)
            .map_err(|e| template_error(name, e))?;
    }
    Ok(env)
}

/// Renders every file of `env`. `out_dir` is where the files will be written: file paths in
/// the stack (configs, secrets) are made relative to it. `project_dir` holds the manifest's
/// relative paths.
pub fn render(env: &Environment, project_dir: &Path, out_dir: &Path) -> anyhow::Result<Output> {
    let templates = project_dir.join("templates");
    let jinja = jinja(Some(&templates))?;
    let m = &env.manifest;
    let stack = env.stack();
    let mut files = Vec::new();
    let mut configs = Vec::new();
    let mut secrets = Vec::new();

    let render_one = |name: &str, ctx: Value| -> anyhow::Result<String> {
        jinja
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| template_error(name, e))
    };

    let mut proxy_key = None;
    if let Some(p) = &m.proxy {
        let text = render_one(
            PROXY_TEMPLATE,
            Value::from_serialize(context::proxy_ctx(env, p)),
        )?;
        configs.push(FileObjCtx {
            key: "haproxy".into(),
            name: format!("{stack}_haproxy_{}", content_hash(text.as_bytes())),
            file: Some(format!("./{PROXY_FILE}")),
            external: false,
        });
        proxy_key = Some("haproxy");
        files.push(Rendered {
            name: PROXY_FILE.into(),
            content: text,
        });
    }
    let mut mon_key = None;
    if let Some(mon) = m.monitoring.as_ref().filter(|x| x.enabled) {
        let text = render_one(
            MONITORING_TEMPLATE,
            Value::from_serialize(context::monitoring_ctx(env, mon)),
        )?;
        configs.push(FileObjCtx {
            key: "prometheus".into(),
            name: format!("{stack}_prometheus_{}", content_hash(text.as_bytes())),
            file: Some(format!("./{MONITORING_FILE}")),
            external: false,
        });
        mon_key = Some("prometheus");
        files.push(Rendered {
            name: MONITORING_FILE.into(),
            content: text,
        });
    }
    for (key, c) in &m.configs {
        if c.external {
            configs.push(FileObjCtx {
                key: key.clone(),
                name: key.clone(),
                file: None,
                external: true,
            });
            continue;
        }
        let (file, bytes) = match (&c.file, &c.content) {
            (Some(f), _) => {
                let path = project_dir.join(f);
                let bytes = std::fs::read(&path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                (relative_to(out_dir, &path), bytes)
            }
            (None, Some(content)) => {
                let name = format!("config.{key}");
                files.push(Rendered {
                    name: name.clone(),
                    content: content.clone(),
                });
                (format!("./{name}"), content.as_bytes().to_vec())
            }
            (None, None) => continue,
        };
        configs.push(FileObjCtx {
            key: key.clone(),
            name: format!("{stack}_{key}_{}", content_hash(&bytes)),
            file: Some(file),
            external: false,
        });
    }
    for (key, s) in &m.secrets {
        if s.external {
            secrets.push(FileObjCtx {
                key: key.clone(),
                name: key.clone(),
                file: None,
                external: true,
            });
            continue;
        }
        if let Some(f) = &s.file {
            let path = project_dir.join(f);
            let bytes = std::fs::read(&path)
                .with_context(|| format!("reading secret file {}", path.display()))?;
            secrets.push(FileObjCtx {
                key: key.clone(),
                name: format!("{stack}_{key}_{}", content_hash(&bytes)),
                file: Some(relative_to(out_dir, &path)),
                external: false,
            });
        } else if let Some(var) = &s.environment {
            // The value never goes into a file: `twip up` creates the secret through the API.
            let value = std::env::var(var).map_err(|_| {
                crate::exit::invalid(format!(
                    "secret `{key}` is read from the environment variable {var}, which is not set"
                ))
            })?;
            secrets.push(FileObjCtx {
                key: key.clone(),
                name: format!("{stack}_{key}_{}", content_hash(value.as_bytes())),
                file: None,
                external: true,
            });
        }
    }
    let objects = ObjectNames { configs, secrets };
    let ctx = context::stack_ctx(env, objects, proxy_key, mon_key);
    let stack_text = render_one(STACK_TEMPLATE, Value::from_serialize(&ctx))?;
    files.insert(
        0,
        Rendered {
            name: STACK_FILE.into(),
            content: stack_text,
        },
    );
    Ok(Output { files })
}

/// `to` as a path relative to the directory `from` (both made absolute first), with `/`.
pub fn relative_to(from: &Path, to: &Path) -> String {
    let abs = |p: &Path| -> PathBuf {
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir().unwrap_or_default().join(p)
        };
        normalize(&p)
    };
    let from = abs(from);
    let to = abs(to);
    let f: Vec<Component> = from.components().collect();
    let t: Vec<Component> = to.components().collect();
    let common = f.iter().zip(t.iter()).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = Vec::new();
    for _ in common..f.len() {
        parts.push("..".into());
    }
    for c in &t[common..] {
        parts.push(c.as_os_str().to_string_lossy().to_string());
    }
    let joined = parts.join("/");
    if joined.starts_with("..") {
        joined
    } else {
        format!("./{joined}")
    }
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yq_quotes_and_doubles_dollars() {
        assert_eq!(yq(Value::from("a$b")), "\"a$$b\"");
        assert_eq!(yq(Value::from("say \"hi\"")), "\"say \\\"hi\\\"\"");
        assert_eq!(
            yq(Value::from("web-{{.Task.Slot}}")),
            "\"web-{{.Task.Slot}}\""
        );
    }

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_to(Path::new("/p/build/x"), Path::new("/p/secrets/a")),
            "../../secrets/a"
        );
        assert_eq!(relative_to(Path::new("/p"), Path::new("/p/a/b")), "./a/b");
    }

    #[test]
    fn strict_templates_reject_undefined_variables() {
        let mut env = jinja(None).unwrap();
        env.add_template_owned("t".to_string(), "[[ nope ]]".to_string())
            .unwrap();
        let err = env
            .get_template("t")
            .unwrap()
            .render(minijinja::context! {})
            .unwrap_err();
        assert!(err.to_string().contains("undefined"), "{err}");
    }

    #[test]
    fn swarm_placeholders_survive() {
        let mut env = jinja(None).unwrap();
        env.add_template_owned(
            "t".to_string(),
            "hostname: \"{{.Node.Hostname}}-[[ x ]]\"".to_string(),
        )
        .unwrap();
        let out = env
            .get_template("t")
            .unwrap()
            .render(minijinja::context! { x => 1 })
            .unwrap();
        assert_eq!(out, "hostname: \"{{.Node.Hostname}}-1\"");
    }
}
