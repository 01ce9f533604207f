//! One service's Engine API spec, built from its render context ([`ServiceCtx`]) one part at a
//! time: labels, container, resources, placement, restart policy, networks, update and
//! rollback settings, mode and endpoint.

use std::collections::{BTreeMap, HashMap};

use crate::engine::model::*;
use crate::render::context::{self, RefCtx, ServiceCtx, UpdateCtx};

use super::{ns, LABEL_STACK_IMAGE};

/// What a service spec refers to outside the service: the stack's names for networks,
/// configs, secrets and volumes, and the labels on everything twip makes.
pub(super) struct Scope<'a> {
    pub stack: &'a str,
    pub base: &'a HashMap<String, String>,
    pub net_name: &'a dyn Fn(&str) -> String,
    pub config_names: &'a BTreeMap<String, String>,
    pub secret_names: &'a BTreeMap<String, String>,
    pub external_volumes: &'a [&'a str],
    /// The stack's volumes made with a driver or its options: (driver, options) by key.
    pub volume_drivers: &'a BTreeMap<String, (String, HashMap<String, String>)>,
}

pub(super) fn service_spec(scope: &Scope, s: &ServiceCtx) -> ServiceSpec {
    ServiceSpec {
        name: Some(format!("{}_{}", scope.stack, s.name)),
        labels: Some(service_labels(scope.base, s)),
        task_template: Some(TaskSpec {
            container_spec: Some(container_spec(scope, s)),
            resources: resources(s),
            restart_policy: Some(restart_policy(s)),
            placement: Some(placement(s)),
            networks: Some(network_attachments(scope, s)),
            ..Default::default()
        }),
        mode: Some(service_mode(s)),
        update_config: Some(update_config(&s.update)),
        rollback_config: Some(rollback_config(&s.rollback)),
        endpoint_spec: Some(endpoint_spec(s)),
        ..Default::default()
    }
}

/// The stack's labels, the service's own, and the image it was deployed with.
fn service_labels(base: &HashMap<String, String>, s: &ServiceCtx) -> HashMap<String, String> {
    let mut labels = container_labels(base, s);
    labels.insert(LABEL_STACK_IMAGE.into(), s.image.clone());
    labels
}

/// The stack's labels and the service's own.
fn container_labels(base: &HashMap<String, String>, s: &ServiceCtx) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = base.clone();
    for (k, v) in &s.labels {
        labels.insert(k.clone(), v.clone());
    }
    labels
}

fn container_spec(scope: &Scope, s: &ServiceCtx) -> TaskSpecContainerSpec {
    let env_vars: Vec<String> = s
        .environment
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mounts = mounts(scope, s);
    let configs = config_refs(scope.config_names, &s.configs);
    let secrets = secret_refs(scope.secret_names, &s.secrets);
    TaskSpecContainerSpec {
        image: Some(s.image.clone()),
        labels: Some(container_labels(scope.base, s)),
        command: s.entrypoint.clone(),
        args: s.command.clone(),
        hostname: s.hostname.clone(),
        env: (!env_vars.is_empty()).then_some(env_vars),
        dir: s.working_dir.clone(),
        user: s.user.clone(),
        mounts: (!mounts.is_empty()).then_some(mounts),
        stop_grace_period: Some(ns(&s.stop_grace_period)),
        health_check: health_check(s),
        configs: (!configs.is_empty()).then_some(configs),
        secrets: (!secrets.is_empty()).then_some(secrets),
        capability_add: (!s.cap_add.is_empty()).then(|| s.cap_add.clone()),
        ..Default::default()
    }
}

/// Volumes are the stack's (`STACK_NAME`) unless external; binds and tmpfs as written.
fn mounts(scope: &Scope, s: &ServiceCtx) -> Vec<Mount> {
    s.volumes
        .iter()
        .map(|v| {
            let (typ, source) = match v.kind {
                "bind" => (MountType::BIND, v.source.clone()),
                "tmpfs" => (MountType::TMPFS, None),
                _ => (
                    MountType::VOLUME,
                    v.source.as_ref().map(|src| {
                        if scope.external_volumes.contains(&src.as_str()) {
                            src.clone()
                        } else {
                            format!("{}_{src}", scope.stack)
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
                    labels: Some(scope.base.clone()),
                    // How each node makes the volume on first use (NFS through `local`).
                    driver_config: v
                        .source
                        .as_ref()
                        .and_then(|src| scope.volume_drivers.get(src))
                        .map(|(name, options)| MountVolumeOptionsDriverConfig {
                            name: Some(name.clone()),
                            options: (!options.is_empty()).then(|| options.clone()),
                        }),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect()
}

fn health_check(s: &ServiceCtx) -> Option<HealthConfig> {
    s.healthcheck.as_ref().map(|h| {
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
    })
}

/// A config's or secret's file mode: the octal text of the manifest, else 0444.
fn file_mode(r: &RefCtx) -> u32 {
    r.mode
        .as_deref()
        .and_then(|m| u32::from_str_radix(m, 8).ok())
        .unwrap_or(0o444)
}

/// Configs by their deployed name (with the content hash); mounted at `/KEY` by default.
fn config_refs(
    names: &BTreeMap<String, String>,
    refs: &[RefCtx],
) -> Vec<TaskSpecContainerSpecConfigs> {
    refs.iter()
        .map(|r| TaskSpecContainerSpecConfigs {
            file: Some(TaskSpecContainerSpecFile1 {
                name: Some(r.target.clone().unwrap_or_else(|| format!("/{}", r.source))),
                uid: Some("0".into()),
                gid: Some("0".into()),
                mode: Some(file_mode(r)),
            }),
            config_name: Some(
                names
                    .get(&r.source)
                    .cloned()
                    .unwrap_or_else(|| r.source.clone()),
            ),
            config_id: None,
            ..Default::default()
        })
        .collect()
}

/// Secrets by their deployed name (with the keyed hash); the file is named by the key.
fn secret_refs(
    names: &BTreeMap<String, String>,
    refs: &[RefCtx],
) -> Vec<TaskSpecContainerSpecSecrets> {
    refs.iter()
        .map(|r| TaskSpecContainerSpecSecrets {
            file: Some(TaskSpecContainerSpecFile {
                name: Some(r.target.clone().unwrap_or_else(|| r.source.clone())),
                uid: Some("0".into()),
                gid: Some("0".into()),
                mode: Some(file_mode(r)),
            }),
            secret_name: Some(
                names
                    .get(&r.source)
                    .cloned()
                    .unwrap_or_else(|| r.source.clone()),
            ),
            secret_id: None,
        })
        .collect()
}

/// CPUs in nano-CPUs and memory in bytes, for limits or reservations.
fn cpu_and_memory(r: &Option<context::ResCtx>) -> Option<(Option<i64>, Option<i64>)> {
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
}

fn resources(s: &ServiceCtx) -> Option<TaskSpecResources> {
    match (cpu_and_memory(&s.limits), cpu_and_memory(&s.reservations)) {
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
    }
}

fn placement(s: &ServiceCtx) -> TaskSpecPlacement {
    TaskSpecPlacement {
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
    }
}

fn restart_policy(s: &ServiceCtx) -> TaskSpecRestartPolicy {
    TaskSpecRestartPolicy {
        condition: Some(match s.restart.condition {
            "none" => TaskSpecRestartPolicyConditionEnum::NONE,
            "on-failure" => TaskSpecRestartPolicyConditionEnum::ON_FAILURE,
            _ => TaskSpecRestartPolicyConditionEnum::ANY,
        }),
        delay: Some(ns(&s.restart.delay)),
        max_attempts: Some(s.restart.max_attempts.unwrap_or(0) as i64),
        window: Some(s.restart.window.as_deref().map_or(0, ns)),
    }
}

/// Each network by its name on the swarm, with the service's short name as an alias.
fn network_attachments(scope: &Scope, s: &ServiceCtx) -> Vec<NetworkAttachmentConfig> {
    s.networks
        .iter()
        .map(|n| NetworkAttachmentConfig {
            target: Some((scope.net_name)(n)),
            // The node's own network has no service names.
            aliases: (n != context::vip::HOST_NETWORK).then(|| vec![s.name.clone()]),
            ..Default::default()
        })
        .collect()
}

fn update_config(u: &UpdateCtx) -> ServiceSpecUpdateConfig {
    ServiceSpecUpdateConfig {
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
    }
}

/// A rollback cannot itself roll back: its failure action is pause (default) or continue.
fn rollback_config(r: &UpdateCtx) -> ServiceSpecRollbackConfig {
    ServiceSpecRollbackConfig {
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
    }
}

fn service_mode(s: &ServiceCtx) -> ServiceSpecMode {
    if s.mode == "global" {
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
    }
}

fn endpoint_spec(s: &ServiceCtx) -> EndpointSpec {
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
    EndpointSpec {
        mode: Some(if s.endpoint_mode == "vip" {
            EndpointSpecModeEnum::VIP
        } else {
            EndpointSpecModeEnum::DNSRR
        }),
        ports: (!ports.is_empty()).then_some(ports),
    }
}
