//! Desired state: what the swarm should hold for an environment, as Engine API specs. Built
//! from the same render context as the stack template, so `twip up` and
//! `docker stack deploy -c build/ENV/stack.yml` describe the same services.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::engine::model::*;
use sha2::{Digest, Sha256};

use crate::manifest::Environment;
use crate::render::context::{self, ServiceCtx, LABEL_ENV, LABEL_MANAGED, LABEL_PROJECT};
use crate::render::{self, Output, MONITORING_FILE, PROXY_FILE};

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

/// Desired state of `env`, from its rendered output (for the config contents). Secret values
/// are read here (files, environment variables) and kept only in memory.
pub fn desired(
    env: &Environment,
    project_dir: &std::path::Path,
    out: &Output,
) -> anyhow::Result<Desired> {
    let stack = env.stack().to_string();
    let m = &env.manifest;
    let base = stack_labels(env);

    // Configs and secrets, named by content hash, exactly as the stack file names them.
    let mut configs = Vec::new();
    if m.proxy.is_some() {
        let data = out.get(PROXY_FILE).unwrap_or_default().as_bytes().to_vec();
        configs.push(object(
            "haproxy",
            format!("{stack}_haproxy_{}", render::content_hash(&data)),
            data,
            &base,
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
            &base,
        ));
    }
    for (key, c) in &m.configs {
        if c.external {
            configs.push(DesiredObject {
                key: key.clone(),
                name: key.clone(),
                data: Vec::new(),
                external: true,
                labels: HashMap::new(),
            });
            continue;
        }
        let data = match (&c.file, &c.content) {
            (Some(f), _) => std::fs::read(project_dir.join(f))?,
            (None, Some(s)) => s.as_bytes().to_vec(),
            (None, None) => continue,
        };
        configs.push(object(
            key,
            format!("{stack}_{key}_{}", render::content_hash(&data)),
            data,
            &base,
        ));
    }
    // Secrets: named by a keyed hash (render::names), never a plain hash of the value.
    let mut secrets = Vec::new();
    let mut name_key: Option<render::names::NameKey> = None;
    for (key, s) in &m.secrets {
        if s.external {
            secrets.push(DesiredObject {
                key: key.clone(),
                name: key.clone(),
                data: Vec::new(),
                external: true,
                labels: HashMap::new(),
            });
            continue;
        }
        let data = if let Some(f) = &s.file {
            std::fs::read(project_dir.join(f))?
        } else if let Some(var) = &s.environment {
            std::env::var(var)
                .map_err(|_| {
                    crate::exit::invalid(format!(
                        "secret `{key}` reads the environment variable {var}, which is not set"
                    ))
                })?
                .into_bytes()
        } else {
            continue;
        };
        if name_key.is_none() {
            name_key = Some(render::names::NameKey::for_project(project_dir)?);
        }
        let k = name_key.as_ref().expect("set above");
        secrets.push(object(
            key,
            render::names::secret_name(&stack, key, &data, k),
            data,
            &base,
        ));
    }

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
    let ctx = context::stack_ctx(env, objects, proxy_key, mon_key);

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

    let mut services = Vec::new();
    for s in &ctx.services {
        let spec = service_spec(
            env,
            s,
            &base,
            &net_name,
            &names,
            &secret_names,
            &external_volumes,
        );
        let spec_hash = hash_spec(&spec);
        let mut spec = spec;
        let labels = spec.labels.get_or_insert_with(HashMap::new);
        labels.insert(LABEL_SPEC_HASH.into(), spec_hash.clone());
        if let Some(r) = s.replicas {
            labels.insert(LABEL_MANIFEST_REPLICAS.into(), r.to_string());
        }
        services.push(DesiredService {
            short: s.name.clone(),
            name: format!("{stack}_{}", s.name),
            spec,
            spec_hash,
            manifest_replicas: s.replicas,
        });
    }
    Ok(Desired {
        env: env.name.clone(),
        stack,
        networks,
        configs,
        secrets,
        services,
    })
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

/// The hash of a spec with its replica count left out (scaling is not a spec change).
pub fn hash_spec(spec: &ServiceSpec) -> String {
    let mut s = spec.clone();
    if let Some(mode) = s.mode.as_mut() {
        if let Some(r) = mode.replicated.as_mut() {
            r.replicas = None;
        }
    }
    if let Some(l) = s.labels.as_mut() {
        l.remove(LABEL_SPEC_HASH);
        l.remove(LABEL_MANIFEST_REPLICAS);
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

#[allow(clippy::too_many_arguments)]
fn service_spec(
    env: &Environment,
    s: &ServiceCtx,
    base: &HashMap<String, String>,
    net_name: &dyn Fn(&str) -> String,
    config_names: &BTreeMap<String, String>,
    secret_names: &BTreeMap<String, String>,
    external_volumes: &[&str],
) -> ServiceSpec {
    let stack = env.stack();
    let mut labels: HashMap<String, String> = base.clone();
    for (k, v) in &s.labels {
        labels.insert(k.clone(), v.clone());
    }
    labels.insert(LABEL_STACK_IMAGE.into(), s.image.clone());
    let mut container_labels: HashMap<String, String> = base.clone();
    for (k, v) in &s.labels {
        container_labels.insert(k.clone(), v.clone());
    }
    let env_vars: Vec<String> = s
        .environment
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mounts: Vec<Mount> = s
        .volumes
        .iter()
        .map(|v| {
            let (typ, source) = match v.kind {
                "bind" => (MountType::BIND, v.source.clone()),
                "tmpfs" => (MountType::TMPFS, None),
                _ => (
                    MountType::VOLUME,
                    v.source.as_ref().map(|src| {
                        if external_volumes.contains(&src.as_str()) {
                            src.clone()
                        } else {
                            format!("{stack}_{src}")
                        }
                    }),
                ),
            };
            Mount {
                target: Some(v.target.clone()),
                source,
                typ: Some(typ),
                read_only: Some(v.read_only),
                volume_options: (typ == MountType::VOLUME).then(|| MountVolumeOptions {
                    labels: Some(base.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect();
    let health_check = s.healthcheck.as_ref().map(|h| {
        if h.disable {
            HealthConfig {
                test: Some(vec!["NONE".into()]),
                ..Default::default()
            }
        } else {
            HealthConfig {
                test: Some(h.test.clone()),
                interval: h.interval.as_deref().map(ns),
                timeout: h.timeout.as_deref().map(ns),
                retries: h.retries.map(|r| r as i64),
                start_period: h.start_period.as_deref().map(ns),
                ..Default::default()
            }
        }
    });
    let configs: Vec<TaskSpecContainerSpecConfigs> = s
        .configs
        .iter()
        .map(|r| TaskSpecContainerSpecConfigs {
            file: Some(TaskSpecContainerSpecFile1 {
                name: Some(r.target.clone().unwrap_or_else(|| format!("/{}", r.source))),
                uid: Some("0".into()),
                gid: Some("0".into()),
                mode: Some(
                    r.mode
                        .as_deref()
                        .and_then(|m| u32::from_str_radix(m, 8).ok())
                        .unwrap_or(0o444),
                ),
            }),
            config_name: Some(
                config_names
                    .get(&r.source)
                    .cloned()
                    .unwrap_or_else(|| r.source.clone()),
            ),
            config_id: None,
            ..Default::default()
        })
        .collect();
    let secrets: Vec<TaskSpecContainerSpecSecrets> = s
        .secrets
        .iter()
        .map(|r| TaskSpecContainerSpecSecrets {
            file: Some(TaskSpecContainerSpecFile {
                name: Some(r.target.clone().unwrap_or_else(|| r.source.clone())),
                uid: Some("0".into()),
                gid: Some("0".into()),
                mode: Some(
                    r.mode
                        .as_deref()
                        .and_then(|m| u32::from_str_radix(m, 8).ok())
                        .unwrap_or(0o444),
                ),
            }),
            secret_name: Some(
                secret_names
                    .get(&r.source)
                    .cloned()
                    .unwrap_or_else(|| r.source.clone()),
            ),
            secret_id: None,
        })
        .collect();
    let container_spec = TaskSpecContainerSpec {
        image: Some(s.image.clone()),
        labels: Some(container_labels),
        command: s.entrypoint.clone(),
        args: s.command.clone(),
        hostname: s.hostname.clone(),
        env: (!env_vars.is_empty()).then_some(env_vars),
        dir: s.working_dir.clone(),
        user: s.user.clone(),
        mounts: (!mounts.is_empty()).then_some(mounts),
        stop_grace_period: Some(ns(&s.stop_grace_period)),
        health_check,
        configs: (!configs.is_empty()).then_some(configs),
        secrets: (!secrets.is_empty()).then_some(secrets),
        ..Default::default()
    };
    let res = |r: &Option<context::ResCtx>| -> Option<(Option<i64>, Option<i64>)> {
        r.as_ref().map(|r| {
            (
                r.cpus
                    .as_deref()
                    .and_then(|c| c.parse::<f64>().ok())
                    .map(|c| (c * 1e9) as i64),
                r.memory
                    .as_deref()
                    .and_then(crate::manifest::model::Size::parse)
                    .map(|m| m as i64),
            )
        })
    };
    let resources = match (res(&s.limits), res(&s.reservations)) {
        (None, None) => None,
        (l, r) => Some(TaskSpecResources {
            limits: l.map(|(c, m)| Limit {
                nano_cpus: c,
                memory_bytes: m,
                ..Default::default()
            }),
            reservations: r.map(|(c, m)| ResourceObject {
                nano_cpus: c,
                memory_bytes: m,
                ..Default::default()
            }),
            ..Default::default()
        }),
    };
    let placement = TaskSpecPlacement {
        constraints: (!s.constraints.is_empty()).then(|| s.constraints.clone()),
        preferences: (!s.preferences.is_empty()).then(|| {
            s.preferences
                .iter()
                .map(|p| TaskSpecPlacementPreferences {
                    spread: Some(TaskSpecPlacementSpread {
                        spread_descriptor: Some(p.clone()),
                    }),
                })
                .collect()
        }),
        max_replicas: s.max_replicas_per_node.map(|n| n as i64),
        ..Default::default()
    };
    let restart = TaskSpecRestartPolicy {
        condition: Some(match s.restart.condition {
            "none" => TaskSpecRestartPolicyConditionEnum::NONE,
            "on-failure" => TaskSpecRestartPolicyConditionEnum::ON_FAILURE,
            _ => TaskSpecRestartPolicyConditionEnum::ANY,
        }),
        delay: Some(ns(&s.restart.delay)),
        max_attempts: Some(s.restart.max_attempts.unwrap_or(0) as i64),
        window: Some(s.restart.window.as_deref().map_or(0, ns)),
    };
    let networks: Vec<NetworkAttachmentConfig> = s
        .networks
        .iter()
        .map(|n| NetworkAttachmentConfig {
            target: Some(net_name(n)),
            aliases: Some(vec![s.name.clone()]),
            ..Default::default()
        })
        .collect();
    let u = &s.update;
    let update_config = ServiceSpecUpdateConfig {
        parallelism: Some(u.parallelism as i64),
        delay: Some(ns(&u.delay)),
        failure_action: Some(match u.failure_action {
            "pause" => ServiceSpecUpdateConfigFailureActionEnum::PAUSE,
            "continue" => ServiceSpecUpdateConfigFailureActionEnum::CONTINUE,
            _ => ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK,
        }),
        monitor: Some(ns(&u.monitor)),
        max_failure_ratio: Some(u.max_failure_ratio.parse().unwrap_or(0.0)),
        order: Some(if u.order == "start-first" {
            ServiceSpecUpdateConfigOrderEnum::START_FIRST
        } else {
            ServiceSpecUpdateConfigOrderEnum::STOP_FIRST
        }),
    };
    let r = &s.rollback;
    let rollback_config = ServiceSpecRollbackConfig {
        parallelism: Some(r.parallelism as i64),
        delay: Some(ns(&r.delay)),
        failure_action: Some(if r.failure_action == "continue" {
            ServiceSpecRollbackConfigFailureActionEnum::CONTINUE
        } else {
            ServiceSpecRollbackConfigFailureActionEnum::PAUSE
        }),
        monitor: Some(ns(&r.monitor)),
        max_failure_ratio: Some(r.max_failure_ratio.parse().unwrap_or(0.0)),
        order: Some(if r.order == "start-first" {
            ServiceSpecRollbackConfigOrderEnum::START_FIRST
        } else {
            ServiceSpecRollbackConfigOrderEnum::STOP_FIRST
        }),
    };
    let ports: Vec<EndpointPortConfig> = s
        .ports
        .iter()
        .map(|p| EndpointPortConfig {
            protocol: Some(if p.protocol == "udp" {
                EndpointPortConfigProtocolEnum::UDP
            } else {
                EndpointPortConfigProtocolEnum::TCP
            }),
            target_port: Some(i64::from(p.target)),
            published_port: p.published.map(i64::from),
            publish_mode: Some(if p.mode == "ingress" {
                EndpointPortConfigPublishModeEnum::INGRESS
            } else {
                EndpointPortConfigPublishModeEnum::HOST
            }),
            ..Default::default()
        })
        .collect();
    ServiceSpec {
        name: Some(format!("{stack}_{}", s.name)),
        labels: Some(labels),
        task_template: Some(TaskSpec {
            container_spec: Some(container_spec),
            resources,
            restart_policy: Some(restart),
            placement: Some(placement),
            networks: Some(networks),
            ..Default::default()
        }),
        mode: Some(if s.mode == "global" {
            ServiceSpecMode {
                global: Some(HashMap::new()),
                ..Default::default()
            }
        } else {
            ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated {
                    replicas: s.replicas.map(|r| r as i64),
                }),
                ..Default::default()
            }
        }),
        update_config: Some(update_config),
        rollback_config: Some(rollback_config),
        endpoint_spec: Some(EndpointSpec {
            mode: Some(if s.endpoint_mode == "vip" {
                EndpointSpecModeEnum::VIP
            } else {
                EndpointSpecModeEnum::DNSRR
            }),
            ports: (!ports.is_empty()).then_some(ports),
        }),
        ..Default::default()
    }
}
