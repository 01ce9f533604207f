//! Rendering: the stack file, the HAProxy config and the Prometheus config of an environment,
//! through minijinja templates. Built-in templates are embedded in the binary; a project's
//! `templates/NAME` overrides the built-in of the same name. Undefined variables are errors.
//! Output is deterministic byte for byte: the same manifest and templates give the same files.

pub mod context;
pub mod escape;
pub mod inputs;
pub mod names;

use std::path::{Component, Path, PathBuf};

use anyhow::Context as _;
use minijinja::syntax::SyntaxConfig;
use minijinja::value::ValueKind;
use minijinja::{
    AutoEscape, Environment as Jinja, Output as JinjaOutput, State, UndefinedBehavior, Value,
};
use sha2::{Digest, Sha256};

use crate::manifest::Environment;
use context::{FileObjCtx, ObjectNames};

pub const STACK_TEMPLATE: &str = "stack.yml.j2";
pub const PROXY_TEMPLATE: &str = "haproxy.cfg.j2";
pub const MONITORING_TEMPLATE: &str = "prometheus.yml.j2";
pub const BOOTSTRAP_TEMPLATE: &str = "bootstrap.sh.j2";
pub const VIP_TEMPLATE: &str = "keepalived.conf.j2";

pub const STACK_FILE: &str = "stack.yml";
pub const PROXY_FILE: &str = "haproxy.cfg";
pub const MONITORING_FILE: &str = "prometheus.yml";
pub const VIP_FILE: &str = "keepalived.conf";
/// The in-cluster agent's config (`twip agent` reads it), when the stack runs the agent.
pub const AGENT_FILE: &str = "agent.json";
/// The proxy's addresses, for a load balancer or DNS in front (multi-node environments).
pub const ENTRYPOINTS_FILE: &str = "entrypoints.txt";
/// The config key of the rendered keepalived config in the stack.
pub const VIP_CONFIG_KEY: &str = "keepalived";

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
    (
        VIP_TEMPLATE,
        include_str!("../../templates/keepalived.conf.j2"),
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

/// The escaping of a template's output language, from its name. Every template twip loads is
/// one of [`BUILTIN`] (a project's override has the same name), so each one gets an escaping;
/// any other name (tests) gets plain YAML.
pub fn escaping_for(name: &str) -> AutoEscape {
    let name = name.strip_suffix(".j2").unwrap_or(name);
    if name == STACK_FILE || name.ends_with(".compose.yml") {
        AutoEscape::Custom(ESC_COMPOSE)
    } else if name.ends_with(".cfg") {
        AutoEscape::Custom(ESC_HAPROXY)
    } else if name.ends_with(".sh") {
        AutoEscape::Custom(ESC_SHELL)
    } else if name == VIP_FILE {
        AutoEscape::Custom(ESC_KEEPALIVED)
    } else {
        AutoEscape::Custom(ESC_YAML)
    }
}

/// Names of the escapings (minijinja's custom auto-escape modes).
pub const ESC_HAPROXY: &str = "haproxy";
pub const ESC_COMPOSE: &str = "compose";
pub const ESC_YAML: &str = "yaml";
pub const ESC_SHELL: &str = "shell";
pub const ESC_KEEPALIVED: &str = "keepalived";

fn invalid_value(e: escape::EscapeError) -> minijinja::Error {
    minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
}

/// `value` as text in the escaping `mode`. Numbers and booleans are printed as they are (no
/// value of those types can change a file's structure); everything else is escaped.
pub fn escape_value(mode: &str, value: &Value) -> Result<String, minijinja::Error> {
    if value.is_safe() {
        return Ok(value.as_str().unwrap_or_default().to_string());
    }
    match value.kind() {
        ValueKind::Number => return Ok(value.to_string()),
        ValueKind::Bool => return Ok(if value.is_true() { "true" } else { "false" }.into()),
        ValueKind::None | ValueKind::Undefined => {
            return Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                "a missing value (none) cannot be printed; guard it with [% if %]",
            ))
        }
        _ => {}
    }
    let text = match value.as_str() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(value.to_string()),
    };
    Ok(match mode {
        ESC_HAPROXY => escape::haproxy_arg(&text)
            .map_err(invalid_value)?
            .into_owned(),
        ESC_SHELL => escape::shell_word(&text)
            .map_err(invalid_value)?
            .into_owned(),
        ESC_COMPOSE => escape::compose_scalar(&text),
        ESC_KEEPALIVED => escape::keepalived_word(&text)
            .map_err(invalid_value)?
            .to_string(),
        _ => escape::yaml_scalar(&text),
    })
}

/// The formatter of every `[[ value ]]`: the escaping of the template's language.
fn formatter(out: &mut JinjaOutput, state: &State, value: &Value) -> Result<(), minijinja::Error> {
    match state.auto_escape() {
        AutoEscape::Custom(mode) => {
            let text = escape_value(mode, value)?;
            out.write_str(&text).map_err(minijinja::Error::from)
        }
        // `[% autoescape false %]` in a template: its author's explicit choice.
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// `yq`: a YAML double-quoted scalar with `$` doubled (stack files, Prometheus external labels:
/// both interpolate `$`). Already escaped, so printed as is.
fn yq(v: Value) -> Value {
    let s = match v.as_str() {
        Some(s) => s.to_string(),
        None => v.to_string(),
    };
    Value::from_safe_string(escape::compose_scalar(&s))
}

/// `yqlist`: a flow list of [`yq`] scalars.
fn yqlist(v: Value) -> Result<Value, minijinja::Error> {
    let items: Vec<String> = v
        .try_iter()?
        .map(|x| yq(x).as_str().unwrap_or_default().to_string())
        .collect();
    Ok(Value::from_safe_string(format!("[{}]", items.join(", "))))
}

/// `comment`: text for a comment line (see [`escape::comment`]).
fn comment_filter(v: Value) -> Value {
    let s = match v.as_str() {
        Some(s) => s.to_string(),
        None => v.to_string(),
    };
    Value::from_safe_string(escape::comment(&s).into_owned())
}

/// `words`: each item escaped for the template's language, joined with spaces (several shell
/// words or HAProxy arguments).
fn words(state: &State, v: Value) -> Result<Value, minijinja::Error> {
    let mode = match state.auto_escape() {
        AutoEscape::Custom(m) => m,
        _ => ESC_YAML,
    };
    let items = v
        .try_iter()?
        .map(|x| escape_value(mode, &x))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Value::from_safe_string(items.join(" ")))
}

/// Text computed by twip from numbers or constants (an octal file mode, a ratio) that a
/// template prints as is, without quotes: serialized into the template context as a "safe"
/// value. Only constructed from numbers, so it cannot carry manifest text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw(String);

impl Raw {
    /// One of twip's own words (`replicated`, `host`, `start-first`).
    pub fn constant(s: &'static str) -> Raw {
        Raw(s.to_string())
    }

    /// A file mode as YAML reads it (`0400`).
    pub fn octal_mode(mode: u32) -> Raw {
        Raw(format!("0{mode:o}"))
    }

    /// A float as Rust prints it (`0`, `0.25`).
    pub fn float(f: f64) -> Raw {
        if f.is_finite() {
            Raw(format!("{f}"))
        } else {
            Raw("0".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq<&str> for Raw {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl std::ops::Deref for Raw {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for Raw {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Value::from_safe_string(self.0.clone()).serialize(s)
    }
}

pub fn content_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().take(5).map(|b| format!("{b:02x}")).collect()
}

/// The template environment: custom delimiters (`[[ ]]`, `[% %]`, `[# #]`) so that Swarm's
/// `{{.Task.Slot}}` survives, strict undefined, trimmed blocks, and every printed value escaped
/// for the template's language ([`escaping_for`], [`escape_value`]): the same for a project's
/// own `templates/` override.
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
    env.set_auto_escape_callback(escaping_for);
    env.set_formatter(formatter);
    env.add_filter("yq", yq);
    env.add_filter("yqlist", yqlist);
    env.add_filter("comment", comment_filter);
    env.add_filter("words", words);
    for (name, builtin) in BUILTIN {
        let text = match project_templates.map(|d| d.join(name)) {
            Some(p) if p.is_file() => {
                // A project's template never leaves the project (symlinks are followed), like
                // `extends`: its text becomes a config on every node.
                let dir = project_templates.unwrap_or(Path::new("."));
                let project = dir.parent().unwrap_or(dir);
                let inside = crate::manifest::validate::stays_in_project(project, dir, name, &[]);
                if inside.is_err() {
                    return Err(crate::exit::invalid(format!(
                        "template {} resolves outside the project (symlinks are followed); \
                         templates never leave it: copy the file into templates/",
                        p.display()
                    )));
                }
                std::fs::read_to_string(&p)
                    .with_context(|| format!("reading template {}", p.display()))?
            }
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
    if let Some(v) = m.proxy.as_ref().and_then(|p| p.vip.as_ref()) {
        let text = render_one(
            VIP_TEMPLATE,
            Value::from_serialize(context::vip::vip_ctx(env, v)),
        )?;
        configs.push(FileObjCtx {
            key: VIP_CONFIG_KEY.into(),
            name: format!("{stack}_{VIP_CONFIG_KEY}_{}", content_hash(text.as_bytes())),
            file: Some(format!("./{VIP_FILE}")),
            external: false,
        });
        files.push(Rendered {
            name: VIP_FILE.into(),
            content: text,
        });
    }
    let mut agent_needs = None;
    if let Some(config) = crate::agent::for_stack(env, project_dir)? {
        let text = context::agent::config_text(&config);
        let key = context::agent::AGENT_CONFIG_KEY;
        configs.push(FileObjCtx {
            key: key.into(),
            name: format!("{stack}_{key}_{}", content_hash(text.as_bytes())),
            file: Some(format!("./{AGENT_FILE}")),
            external: false,
        });
        agent_needs = Some(config.service_needs());
        files.push(Rendered {
            name: AGENT_FILE.into(),
            content: text,
        });
    }
    if let Some(text) = context::vip::entrypoints_file(env) {
        files.push(Rendered {
            name: ENTRYPOINTS_FILE.into(),
            content: text,
        });
    }
    configs.extend(manifest_configs(env, project_dir, out_dir, &mut files)?);
    let secrets = manifest_secrets(env, project_dir, out_dir)?;
    let objects = ObjectNames { configs, secrets };
    let ctx = context::stack_ctx(env, objects, proxy_key, mon_key, agent_needs.as_ref());
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

/// The manifest's configs as the stack file names them: a file's content is read (its path
/// made relative to `out_dir`); inline content becomes a file of the output, `config.KEY`.
fn manifest_configs(
    env: &Environment,
    project_dir: &Path,
    out_dir: &Path,
    files: &mut Vec<Rendered>,
) -> anyhow::Result<Vec<FileObjCtx>> {
    let stack = env.stack();
    let mut configs = Vec::new();
    for (key, c) in &env.manifest.configs {
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
                escape::file_name(&name).map_err(|e| {
                    crate::exit::invalid(format!("configs.{}: {e}", escape::comment(key)))
                })?;
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
    Ok(configs)
}

/// The manifest's secrets as the stack file names them (by a keyed hash of the value, read
/// from its file or its environment variable); the key is read when the first one needs it.
fn manifest_secrets(
    env: &Environment,
    project_dir: &Path,
    out_dir: &Path,
) -> anyhow::Result<Vec<FileObjCtx>> {
    let stack = env.stack();
    let mut secrets = Vec::new();
    let mut key_cache: Option<names::NameKey> = None;
    fn name_key<'a>(
        c: &'a mut Option<names::NameKey>,
        project_dir: &Path,
    ) -> anyhow::Result<&'a names::NameKey> {
        if c.is_none() {
            *c = Some(names::NameKey::for_project(project_dir)?);
        }
        Ok(c.as_ref().expect("set above"))
    }
    for (key, s) in &env.manifest.secrets {
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
                name: names::secret_name(
                    stack,
                    key,
                    &bytes,
                    name_key(&mut key_cache, project_dir)?,
                ),
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
                name: names::secret_name(
                    stack,
                    key,
                    value.as_bytes(),
                    name_key(&mut key_cache, project_dir)?,
                ),
                file: None,
                external: true,
            });
        }
    }
    // The proxy's certificates and keys: secrets pointing at the files in the project.
    for t in env.manifest.proxy.iter().flat_map(context::tls_secrets) {
        let path = project_dir.join(&t.file);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("reading certificate file {}", path.display()))?;
        secrets.push(FileObjCtx {
            name: names::secret_name(
                stack,
                &t.key,
                &bytes,
                name_key(&mut key_cache, project_dir)?,
            ),
            key: t.key,
            file: Some(relative_to(out_dir, &path)),
            external: false,
        });
    }
    // The proxy's runtime-API credentials, derived from the name key: never in a file,
    // `twip up` creates them through the API (as it does a secret from the environment).
    if env
        .manifest
        .proxy
        .as_ref()
        .is_some_and(context::runtime_api)
    {
        let k = name_key(&mut key_cache, project_dir)?;
        let creds = crate::tls::runtime::credentials(k.as_bytes())
            .map_err(|e| anyhow::anyhow!("the runtime API's credentials: {e}"))?;
        for (key, part) in context::RUNTIME_SECRETS {
            secrets.push(FileObjCtx {
                name: names::secret_name(stack, key, part.of(&creds).as_bytes(), k),
                key: key.to_string(),
                file: None,
                external: true,
            });
        }
    }
    Ok(secrets)
}

/// Writes `output` into `out_dir` and returns the paths written. Every file name must be one
/// plain path component ([`escape::file_name`]), checked again here, so nothing is written
/// outside `out_dir`. All files are first written into a temporary folder beside `out_dir`
/// (same file system); only when every write succeeded are they renamed into place (a new
/// `out_dir` is renamed as a whole), so an error leaves nothing half-written.
pub fn write_output(out_dir: &Path, output: &Output) -> anyhow::Result<Vec<PathBuf>> {
    for f in &output.files {
        escape::file_name(&f.name).map_err(|e| crate::exit::invalid(e.to_string()))?;
    }
    let parent = match out_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let base = out_dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "out".into());
    let tmp = parent.join(format!(".{base}.twip-render-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let written = (|| -> anyhow::Result<Vec<PathBuf>> {
        for f in &output.files {
            let p = tmp.join(&f.name);
            std::fs::write(&p, &f.content).with_context(|| format!("writing {}", p.display()))?;
        }
        if !out_dir.exists() {
            std::fs::rename(&tmp, out_dir)
                .with_context(|| format!("moving the rendered files to {}", out_dir.display()))?;
        } else {
            for f in &output.files {
                let to = out_dir.join(&f.name);
                std::fs::rename(tmp.join(&f.name), &to)
                    .with_context(|| format!("writing {}", to.display()))?;
            }
        }
        Ok(output.files.iter().map(|f| out_dir.join(&f.name)).collect())
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    written
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
        let y = |s: &str| yq(Value::from(s)).as_str().unwrap().to_string();
        assert_eq!(y("a$b"), "\"a$$b\"");
        assert_eq!(y("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(y("web-{{.Task.Slot}}"), "\"web-{{.Task.Slot}}\"");
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
