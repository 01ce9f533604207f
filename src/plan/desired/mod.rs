//! Desired state: what the swarm should hold for an environment, as Engine API specs. Built
//! from the same render context as the stack template, so `twip up` and
//! `docker stack deploy -c build/ENV/stack.yml` describe the same services.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::engine::model::{self, ServiceSpec};
use sha2::{Digest, Sha256};

use crate::manifest::Environment;
use crate::render::context::{self, ServiceCtx, LABEL_ENV, LABEL_MANAGED, LABEL_PROJECT};
use crate::render::inputs::Inputs;
use crate::render::{self, Output, MONITORING_FILE, PROXY_FILE};

mod running;
mod spec;
pub use running::{as_running, running_service};

pub use crate::labels::{
    MANIFEST_REPLICAS as LABEL_MANIFEST_REPLICAS, NAMESPACE as LABEL_NAMESPACE,
    SPEC_HASH as LABEL_SPEC_HASH, STACK_IMAGE as LABEL_STACK_IMAGE,
};

#[derive(Debug, Clone)]
pub struct Desired {
    pub env: String,
    pub stack: String,
    pub networks: Vec<DesiredNetwork>,
    pub configs: Vec<DesiredObject>,
    pub secrets: Vec<DesiredObject>,
    pub services: Vec<DesiredService>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DesiredNetwork {
    pub name: String,
    pub driver: String,
    pub attachable: bool,
    pub internal: bool,
    pub external: bool,
    pub labels: HashMap<String, String>,
}

/// A config or secret. `data` is never printed (Debug redacts it).
#[derive(Clone, PartialEq)]
pub struct DesiredObject {
    pub key: String,
    pub name: String,
    pub data: Vec<u8>,
    pub external: bool,
    pub labels: HashMap<String, String>,
}

impl fmt::Debug for DesiredObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DesiredObject")
            .field("name", &self.name)
            .field("data", &format_args!("<{} bytes>", self.data.len()))
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct DesiredService {
    /// Short name in the manifest (`web`).
    pub short: String,
    /// Full name on the swarm (`training_web`).
    pub name: String,
    pub spec: ServiceSpec,
    pub spec_hash: String,
    /// `None` for global services.
    pub manifest_replicas: Option<u64>,
}

impl Desired {
    pub fn service(&self, name: &str) -> Option<&DesiredService> {
        self.services
            .iter()
            .find(|s| s.name == name || s.short == name)
    }

    /// Sets a label on SERVICE's containers (and the spec hash), as `pin_digests` does with the
    /// id of a locally built image: a rebuild under the same tag then changes the spec.
    pub fn set_container_label(&mut self, service: &str, key: &str, value: &str) -> bool {
        self.change(service, |spec| {
            if let Some(cs) = spec
                .task_template
                .as_mut()
                .and_then(|t| t.container_spec.as_mut())
            {
                cs.labels
                    .get_or_insert_with(HashMap::new)
                    .insert(key.to_string(), value.to_string());
            }
        })
    }

    /// Desired state with another image for one service (`twip update --image`, a pinned
    /// digest). The hash is recomputed, so the change plans as an update; a later `up` returns
    /// to the manifest.
    pub fn set_image(&mut self, service: &str, image: &str) -> bool {
        self.change(service, |spec| {
            if let Some(cs) = spec
                .task_template
                .as_mut()
                .and_then(|t| t.container_spec.as_mut())
            {
                cs.image = Some(image.to_string());
            }
            spec.labels
                .get_or_insert_with(HashMap::new)
                .insert(LABEL_STACK_IMAGE.into(), image.to_string());
        })
    }

    /// Applies `f` to SERVICE's spec (by full or short name) and hashes the spec again.
    fn change(&mut self, service: &str, f: impl FnOnce(&mut ServiceSpec)) -> bool {
        let Some(s) = self
            .services
            .iter_mut()
            .find(|s| s.name == service || s.short == service)
        else {
            return false;
        };
        f(&mut s.spec);
        s.spec_hash = hash_spec(&s.spec);
        if let Some(labels) = s.spec.labels.as_mut() {
            labels.insert(LABEL_SPEC_HASH.into(), s.spec_hash.clone());
        }
        true
    }
}

fn ns(d: &str) -> i64 {
    humantime::parse_duration(d).map_or(0, |d| d.as_nanos() as i64)
}

pub fn stack_labels(env: &Environment) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_NAMESPACE.to_string(), env.stack().to_string()),
        (LABEL_ENV.to_string(), env.name.clone()),
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_PROJECT.to_string(), env.project().to_string()),
    ])
}

/// Desired state of `env`, from its rendered output (for the contents of the proxy's and
/// Prometheus's configs) and the `inputs` gathered for it ([`render::inputs::gather`]: config
/// files, secret values, the secret-name key). Reads no files and no environment: the same
/// arguments give the same specs. Secret values stay in memory only.
pub fn desired(env: &Environment, out: &Output, inputs: &Inputs) -> anyhow::Result<Desired> {
    let stack = env.stack().to_string();
    let m = &env.manifest;
    let base = stack_labels(env);
    let configs = desired_configs(env, out, inputs, &base)?;
    let secrets = desired_secrets(env, inputs, &base)?;

    let names: BTreeMap<String, String> = configs
        .iter()
        .map(|c| (c.key.clone(), c.name.clone()))
        .collect();
    let secret_names: BTreeMap<String, String> = secrets
        .iter()
        .map(|c| (c.key.clone(), c.name.clone()))
        .collect();
    let objects = context::ObjectNames {
        configs: Vec::new(),
        secrets: Vec::new(),
    };
    let proxy_key = m.proxy.as_ref().map(|_| "haproxy");
    let mon_key = m
        .monitoring
        .as_ref()
        .filter(|x| x.enabled)
        .map(|_| "prometheus");
    let agent = out.get(render::AGENT_FILE).map(|text| {
        context::agent::needs_of(text).ok_or_else(|| {
            anyhow::anyhow!(
                "the agent's rendered config ({}) does not parse",
                render::AGENT_FILE
            )
        })
    });
    let agent = agent.transpose()?;
    let ctx = context::stack_ctx(env, objects, proxy_key, mon_key, agent.as_ref());

    let networks: Vec<DesiredNetwork> = ctx
        .networks
        .iter()
        .map(|n| DesiredNetwork {
            name: if n.external {
                n.key.clone()
            } else {
                format!("{stack}_{}", n.key)
            },
            driver: n.driver.clone(),
            attachable: n.attachable,
            internal: n.internal,
            external: n.external,
            labels: base.clone(),
        })
        .collect();
    let net_name = |key: &str| -> String {
        networks
            .iter()
            .zip(ctx.networks.iter())
            .find(|(_, c)| c.key == key)
            .map_or_else(|| format!("{stack}_{key}"), |(d, _)| d.name.clone())
    };
    let external_volumes: Vec<&str> = ctx
        .volumes
        .iter()
        .filter(|v| v.external)
        .map(|v| v.key.as_str())
        .collect();
    let volume_drivers: BTreeMap<String, (String, HashMap<String, String>)> = ctx
        .volumes
        .iter()
        .filter(|v| !v.external && (v.driver.is_some() || !v.driver_opts.is_empty()))
        .map(|v| {
            let driver = v.driver.clone().unwrap_or_else(|| "local".into());
            let opts = v.driver_opts.clone().into_iter().collect();
            (v.key.clone(), (driver, opts))
        })
        .collect();
    let scope = spec::Scope {
        stack: &stack,
        base: &base,
        net_name: &net_name,
        config_names: &names,
        secret_names: &secret_names,
        external_volumes: &external_volumes,
        volume_drivers: &volume_drivers,
    };
    let services = ctx
        .services
        .iter()
        .chain(context::job_ctxs(env).iter())
        .map(|s| desired_service(&scope, s))
        .collect();
    Ok(Desired {
        env: env.name.clone(),
        stack,
        networks,
        configs,
        secrets,
        services,
    })
}

/// A service's spec, labelled with its hash and the replica count the manifest asked for.
fn desired_service(scope: &spec::Scope, s: &ServiceCtx) -> DesiredService {
    let mut spec = spec::service_spec(scope, s);
    let spec_hash = hash_spec(&spec);
    let labels = spec.labels.get_or_insert_with(HashMap::new);
    labels.insert(LABEL_SPEC_HASH.into(), spec_hash.clone());
    if let Some(r) = s.replicas {
        labels.insert(LABEL_MANIFEST_REPLICAS.into(), r.to_string());
    }
    DesiredService {
        short: s.name.clone(),
        name: format!("{}_{}", scope.stack, s.name),
        spec,
        spec_hash,
        manifest_replicas: s.replicas,
    }
}

/// An object made outside twip: used by its own name, never created.
fn external_object(key: &str) -> DesiredObject {
    DesiredObject {
        key: key.to_string(),
        name: key.to_string(),
        data: Vec::new(),
        external: true,
        labels: HashMap::new(),
    }
}

/// Configs, named by content hash exactly as the stack file names them: the proxy's and
/// Prometheus's (rendered), then the manifest's (inline, or a file's content from `inputs`).
fn desired_configs(
    env: &Environment,
    out: &Output,
    inputs: &Inputs,
    base: &HashMap<String, String>,
) -> anyhow::Result<Vec<DesiredObject>> {
    let stack = env.stack();
    let m = &env.manifest;
    let mut configs = Vec::new();
    if m.proxy.is_some() {
        let data = out.get(PROXY_FILE).unwrap_or_default().as_bytes().to_vec();
        configs.push(object(
            "haproxy",
            format!("{stack}_haproxy_{}", render::content_hash(&data)),
            data,
            base,
        ));
    }
    if m.proxy.as_ref().is_some_and(|p| p.vip.is_some()) {
        let data = out
            .get(render::VIP_FILE)
            .unwrap_or_default()
            .as_bytes()
            .to_vec();
        configs.push(object(
            render::VIP_CONFIG_KEY,
            format!(
                "{stack}_{}_{}",
                render::VIP_CONFIG_KEY,
                render::content_hash(&data)
            ),
            data,
            base,
        ));
    }
    if m.monitoring.as_ref().is_some_and(|x| x.enabled) {
        let data = out
            .get(MONITORING_FILE)
            .unwrap_or_default()
            .as_bytes()
            .to_vec();
        configs.push(object(
            "prometheus",
            format!("{stack}_prometheus_{}", render::content_hash(&data)),
            data,
            base,
        ));
    }
    if let Some(text) = out.get(render::AGENT_FILE) {
        let data = text.as_bytes().to_vec();
        let key = context::agent::AGENT_CONFIG_KEY;
        let name = format!("{stack}_{key}_{}", render::content_hash(&data));
        configs.push(object(key, name, data, base));
    }
    for (key, c) in &m.configs {
        if c.external {
            configs.push(external_object(key));
            continue;
        }
        let data = match (&c.file, &c.content) {
            (Some(_), _) => inputs.config_files.get(key).cloned().ok_or_else(|| {
                anyhow::anyhow!("config `{key}`: its file's content was not read")
            })?,
            (None, Some(s)) => s.as_bytes().to_vec(),
            (None, None) => continue,
        };
        configs.push(object(
            key,
            format!("{stack}_{key}_{}", render::content_hash(&data)),
            data,
            base,
        ));
    }
    Ok(configs)
}

/// Secrets, named by a keyed hash of their value (render::names), never a plain hash.
fn desired_secrets(
    env: &Environment,
    inputs: &Inputs,
    base: &HashMap<String, String>,
) -> anyhow::Result<Vec<DesiredObject>> {
    let stack = env.stack();
    let mut secrets = Vec::new();
    for (key, s) in &env.manifest.secrets {
        if s.external {
            secrets.push(external_object(key));
            continue;
        }
        if s.file.is_none() && s.environment.is_none() {
            continue;
        }
        let data = inputs
            .secrets
            .get(key)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("secret `{key}`: its value was not read"))?;
        let name_key = inputs
            .name_key
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("secret `{key}`: no key to name secrets with"))?;
        secrets.push(object(
            key,
            render::names::secret_name(stack, key, &data, name_key),
            data,
            base,
        ));
    }
    for t in env.manifest.proxy.iter().flat_map(context::tls_secrets) {
        let data = inputs
            .secrets
            .get(&t.key)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("certificate file {}: not read", t.file))?;
        let name_key = inputs
            .name_key
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no key to name secrets with"))?;
        let name = render::names::secret_name(stack, &t.key, &data, name_key);
        secrets.push(object(&t.key, name, data, base));
    }
    // The proxy's runtime-API credentials, derived from the name key (the same on every
    // operator's machine, so their names do not change from one `up` to the next).
    if env
        .manifest
        .proxy
        .as_ref()
        .is_some_and(context::runtime_api)
    {
        let name_key = inputs
            .name_key
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no key to name secrets with"))?;
        let creds = crate::tls::runtime::credentials(name_key.as_bytes())
            .map_err(|e| anyhow::anyhow!("the runtime API's credentials: {e}"))?;
        for (key, part) in context::RUNTIME_SECRETS {
            let data = part.of(&creds).as_bytes().to_vec();
            let name = render::names::secret_name(stack, key, &data, name_key);
            secrets.push(object(key, name, data, base));
        }
    }
    if env
        .manifest
        .proxy
        .as_ref()
        .is_some_and(context::tls::has_acme)
    {
        // A new placeholder; a deploy keeps what the proxy already serves (adopt_acme).
        let key = context::tls::ACME_SECRET_KEY;
        let data = inputs
            .acme_placeholder
            .clone()
            .ok_or_else(|| anyhow::anyhow!("the ACME placeholder certificate was not made"))?;
        let name = format!("{stack}_acme-{}", render::content_hash(&data));
        let mut labels = base.clone();
        labels.insert(
            crate::labels::ACME_CERT.to_string(),
            "placeholder".to_string(),
        );
        secrets.push(DesiredObject {
            key: key.to_string(),
            name,
            data,
            external: false,
            labels,
        });
    }
    Ok(secrets)
}

fn object(key: &str, name: String, data: Vec<u8>, base: &HashMap<String, String>) -> DesiredObject {
    DesiredObject {
        key: key.to_string(),
        name,
        data,
        external: false,
        labels: base.clone(),
    }
}

/// Keeps the ACME certificate the proxies serve now, and how they got it. Pure.
///
/// When the observed proxy service mounts a secret at the ACME certificate's place, the
/// desired proxy mounts that same secret (it is the agent's, or the placeholder of an earlier
/// deploy) rather than a new placeholder, so a deploy never replaces the proxy's tasks for a
/// certificate. When the agent swapped a newer one in live (the proxy service's label
/// [`crate::labels::ACME_SERVED`]), the label is kept, the agent's service mounts the served
/// secret (at [`context::tls::ACME_AGENT_TARGET`]: it re-swaps it into tasks started later),
/// and both secrets stay (neither is removed as unused).
pub fn adopt_acme(desired: &mut Desired, observed: &super::Observed) {
    let target = context::tls::ACME_SECRET_TARGET;
    let proxy = format!(
        "{}_{}",
        desired.stack,
        crate::manifest::validate::PROXY_SERVICE
    );
    let agent = format!(
        "{}_{}",
        desired.stack,
        crate::manifest::validate::AGENT_SERVICE
    );
    let exists = |n: &String| observed.secrets.iter().any(|o| &o.name == n);
    let Some(observed_proxy) = observed.services.iter().find(|s| s.name == proxy) else {
        return;
    };
    let Some(mounted) = model::secret_at(&observed_proxy.spec, target)
        .and_then(|r| r.secret_name.clone())
        .filter(exists)
    else {
        return;
    };
    let served = observed_proxy
        .label(crate::labels::ACME_SERVED)
        .map(str::to_string)
        .filter(exists);
    let Some(obj) = desired
        .secrets
        .iter_mut()
        .find(|o| o.key == context::tls::ACME_SECRET_KEY)
    else {
        return;
    };
    let current = served.clone().unwrap_or_else(|| mounted.clone());
    obj.name = current.clone();
    obj.data = Vec::new();
    obj.external = true;
    if current != mounted {
        desired.secrets.push(DesiredObject {
            key: format!("{}_mounted", context::tls::ACME_SECRET_KEY),
            name: mounted.clone(),
            data: Vec::new(),
            external: true,
            labels: HashMap::new(),
        });
    }
    for s in desired.services.iter_mut() {
        if s.name == proxy {
            model::point_secret_at(&mut s.spec, target, &mounted, None);
            if let Some(v) = &served {
                s.spec
                    .labels
                    .get_or_insert_with(HashMap::new)
                    .insert(crate::labels::ACME_SERVED.to_string(), v.clone());
            }
        } else if s.name == agent {
            model::point_secret_at(&mut s.spec, context::tls::ACME_AGENT_TARGET, &current, None);
        }
    }
}

/// The hash of a spec with its replica count left out (scaling is not a spec change), and
/// without the name of the ACME certificate's secret (in the proxy's and the agent's spec)
/// and the label naming the one served live (the agent changes them, not a deploy).
pub fn hash_spec(spec: &ServiceSpec) -> String {
    let mut s = spec.clone();
    if let Some(refs) = s
        .task_template
        .as_mut()
        .and_then(|t| t.container_spec.as_mut())
        .and_then(|c| c.secrets.as_mut())
    {
        for r in refs.iter_mut() {
            let target = r.file.as_ref().and_then(|f| f.name.as_deref());
            if target == Some(context::tls::ACME_SECRET_TARGET)
                || target == Some(context::tls::ACME_AGENT_TARGET)
            {
                r.secret_name = None;
                r.secret_id = None;
            }
        }
    }
    if let Some(mode) = s.mode.as_mut() {
        if let Some(r) = mode.replicated.as_mut() {
            r.replicas = None;
        }
    }
    if let Some(l) = s.labels.as_mut() {
        l.remove(LABEL_SPEC_HASH);
        l.remove(LABEL_MANIFEST_REPLICAS);
        l.remove(crate::labels::ACME_SERVED);
    }
    // serde_json with sorted maps: the JSON is canonical enough to hash.
    let value = serde_json::to_value(&s).unwrap_or_default();
    let text = canonical(&value);
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// JSON with object keys sorted, so HashMap order does not change the hash.
fn canonical(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        serde_json::to_string(k).unwrap_or_default(),
                        canonical(&m[*k])
                    )
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        serde_json::Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::names::{secret_name, NameKey};

    const MANIFEST: &str = "\
services:
  app:
    image: nginx:1.25
    replicas: 2
    configs: [motd, banner]
    secrets: [token]
configs:
  motd:
    file: motd.txt
  banner:
    content: hello
  shared:
    external: true
secrets:
  token:
    file: token.txt
";

    /// An environment `demo` whose files on disk say `on disk`: what `desired` is given in
    /// its inputs must be what it uses.
    fn environment() -> (tempfile::TempDir, Environment) {
        crate::project::scratch(
            "demo",
            MANIFEST,
            &[("motd.txt", b"on disk"), ("token.txt", b"on disk")],
        )
    }

    fn inputs(motd: &str, token: &str) -> Inputs {
        Inputs {
            config_files: BTreeMap::from([("motd".to_string(), motd.as_bytes().to_vec())]),
            secrets: BTreeMap::from([("token".to_string(), token.as_bytes().to_vec())]),
            name_key: Some(NameKey::from_bytes(&[7u8; 32])),
            acme_placeholder: None,
        }
    }

    fn no_output() -> Output {
        Output { files: Vec::new() }
    }

    fn object<'a>(list: &'a [DesiredObject], key: &str) -> &'a DesiredObject {
        list.iter().find(|o| o.key == key).unwrap()
    }

    #[test]
    fn the_same_inputs_give_the_same_desired_state() {
        let (_dir, env) = environment();
        let a = desired(&env, &no_output(), &inputs("motd", "s3cret")).unwrap();
        let b = desired(&env, &no_output(), &inputs("motd", "s3cret")).unwrap();
        assert_eq!(a.services.len(), 1);
        assert_eq!(b.services.len(), 1);
        assert_eq!(a.services[0].spec_hash, b.services[0].spec_hash);
        assert_eq!(
            serde_json::to_value(&a.services[0].spec).unwrap(),
            serde_json::to_value(&b.services[0].spec).unwrap()
        );
        assert_eq!(a.configs, b.configs);
        assert_eq!(a.secrets, b.secrets);
        assert_eq!(a.networks, b.networks);
    }

    #[test]
    fn a_secret_given_in_the_inputs_is_named_by_its_keyed_hash() {
        let (_dir, env) = environment();
        let d = desired(&env, &no_output(), &inputs("motd", "s3cret")).unwrap();
        let token = object(&d.secrets, "token");
        let key = NameKey::from_bytes(&[7u8; 32]);
        assert_eq!(token.name, secret_name("demo", "token", b"s3cret", &key));
        assert_ne!(token.name, secret_name("demo", "token", b"on disk", &key));
        assert_eq!(token.data, b"s3cret");
        let app = d.service("app").unwrap();
        let refs = app
            .spec
            .task_template
            .as_ref()
            .and_then(|t| t.container_spec.as_ref())
            .and_then(|c| c.secrets.as_ref())
            .unwrap();
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].secret_name.as_deref(), Some(token.name.as_str()));
    }

    #[test]
    fn a_config_file_given_in_the_inputs_is_named_by_its_content_hash() {
        let (_dir, env) = environment();
        let d = desired(&env, &no_output(), &inputs("from inputs", "s3cret")).unwrap();
        let motd = object(&d.configs, "motd");
        let hash = render::content_hash(b"from inputs");
        assert_eq!(motd.name, format!("demo_motd_{hash}"));
        assert_eq!(motd.data, b"from inputs");
        let banner = object(&d.configs, "banner");
        assert_eq!(banner.data, b"hello");
        let shared = object(&d.configs, "shared");
        assert!(shared.external);
        assert_eq!(shared.name, "shared");
    }

    #[test]
    fn other_content_changes_the_names_and_the_service_hash() {
        let (_dir, env) = environment();
        let a = desired(&env, &no_output(), &inputs("motd", "s3cret")).unwrap();
        let b = desired(&env, &no_output(), &inputs("motd 2", "s3cret 2")).unwrap();
        assert_ne!(
            object(&a.configs, "motd").name,
            object(&b.configs, "motd").name
        );
        assert_ne!(
            object(&a.secrets, "token").name,
            object(&b.secrets, "token").name
        );
        assert_ne!(a.services[0].spec_hash, b.services[0].spec_hash);
    }

    #[test]
    fn a_volume_on_shared_storage_carries_its_driver_and_options() {
        let manifest = "\
services:
  db:
    image: postgres:16
    volumes: [\"data:/var/lib/postgresql/data\", \"scratch:/tmp/scratch\"]
volumes:
  data:
    driver_opts: {type: nfs, o: \"addr=10.0.0.5,rw,nfsvers=4\", device: \":/exports/db\"}
  scratch:
";
        let (_dir, env) = crate::project::scratch("demo", manifest, &[]);
        let d = desired(&env, &no_output(), &inputs("motd", "s3cret")).unwrap();
        let mounts = d.services[0]
            .spec
            .task_template
            .as_ref()
            .and_then(|t| t.container_spec.as_ref())
            .and_then(|c| c.mounts.clone())
            .unwrap();
        assert_eq!(mounts.len(), 2);
        let config = |target: &str| {
            mounts
                .iter()
                .find(|m| m.target.as_deref() == Some(target))
                .and_then(|m| m.volume_options.as_ref())
                .and_then(|o| o.driver_config.clone())
        };
        let nfs = config("/var/lib/postgresql/data").expect("a driver config");
        assert_eq!(nfs.name.as_deref(), Some("local"));
        let opts = nfs.options.unwrap();
        assert_eq!(opts["type"], "nfs");
        assert_eq!(opts["o"], "addr=10.0.0.5,rw,nfsvers=4");
        assert_eq!(opts["device"], ":/exports/db");
        assert!(
            config("/tmp/scratch").is_none(),
            "a plain volume has no driver config"
        );
    }

    #[test]
    fn content_missing_from_the_inputs_is_an_error_not_a_read() {
        let (_dir, env) = environment();
        let mut no_secret = inputs("motd", "s3cret");
        no_secret.secrets.clear();
        let e = desired(&env, &no_output(), &no_secret).unwrap_err();
        assert!(e.to_string().contains("secret `token`"), "{e}");
        let mut no_config = inputs("motd", "s3cret");
        no_config.config_files.clear();
        let e = desired(&env, &no_output(), &no_config).unwrap_err();
        assert!(e.to_string().contains("config `motd`"), "{e}");
        let mut no_key = inputs("motd", "s3cret");
        no_key.name_key = None;
        assert!(desired(&env, &no_output(), &no_key).is_err());
    }
}
