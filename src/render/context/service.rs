//! The context of one service of the manifest: every default applied.

use std::collections::BTreeMap;

use super::types::*;
use super::{cpus, dur, image_ref, memory, LABEL_ENV, LABEL_MANAGED, LABEL_PROJECT, LABEL_SERVICE};
use crate::manifest::model::*;
use crate::manifest::Environment;
use crate::render::Raw;

fn order_str(o: Order) -> &'static str {
    match o {
        Order::StartFirst => "start-first",
        Order::StopFirst => "stop-first",
    }
}

fn action_str(a: FailureAction) -> &'static str {
    match a {
        FailureAction::Rollback => "rollback",
        FailureAction::Pause => "pause",
        FailureAction::Continue => "continue",
    }
}

/// Explicit update settings, never the API's zero defaults. Safe defaults: one task at a
/// time, start-first (stop-first when the service binds host ports, which two tasks on one
/// node cannot share), roll back on failure, watch each task 10s.
pub(super) fn update_ctx(u: Option<&UpdateConfig>, host_ports: bool, rollback: bool) -> UpdateCtx {
    let d = UpdateConfig::default();
    let u = u.unwrap_or(&d);
    let default_order = if host_ports {
        Order::StopFirst
    } else {
        Order::StartFirst
    };
    let default_action = if rollback {
        FailureAction::Pause
    } else {
        FailureAction::Rollback
    };
    UpdateCtx {
        parallelism: u.parallelism.unwrap_or(1),
        delay: dur(u.delay, 0),
        order: order_str(u.order.unwrap_or(default_order)),
        failure_action: action_str(u.failure_action.unwrap_or(default_action)),
        monitor: dur(u.monitor, 10),
        max_failure_ratio: Raw::float(u.max_failure_ratio.unwrap_or(0.0)),
    }
}

pub(super) fn restart_ctx(r: Option<&RestartPolicy>) -> RestartCtx {
    RestartCtx {
        condition: match r.and_then(|r| r.condition).unwrap_or(RestartCondition::Any) {
            RestartCondition::None => "none",
            RestartCondition::OnFailure => "on-failure",
            RestartCondition::Any => "any",
        },
        delay: dur(r.and_then(|r| r.delay), 5),
        max_attempts: r.and_then(|r| r.max_attempts),
        window: r.and_then(|r| r.window).map(|w| w.compose()),
    }
}

pub(super) fn base_labels(env: &Environment, service: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_ENV.to_string(), env.name.clone()),
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_PROJECT.to_string(), env.project().to_string()),
        (LABEL_SERVICE.to_string(), service.to_string()),
    ])
}

pub(super) fn placement_parts(p: Option<&Placement>) -> (Vec<String>, Vec<String>, Option<u64>) {
    match p {
        Some(p) => (
            p.constraints.clone(),
            p.spread.clone(),
            p.max_replicas_per_node,
        ),
        None => (Vec::new(), Vec::new(), None),
    }
}

pub(super) fn service_ctx(env: &Environment, name: &str, s: &Service) -> ServiceCtx {
    let ports: Vec<PortCtx> = s
        .ports
        .iter()
        .map(|p| PortCtx {
            target: p.target,
            published: p.published,
            protocol: if p.protocol == Protocol::Udp {
                "udp"
            } else {
                "tcp"
            },
            mode: if p.mode == Some(PublishMode::Ingress) {
                "ingress"
            } else {
                "host"
            },
        })
        .collect();
    let host_ports = ports
        .iter()
        .any(|p| p.mode == "host" && p.published.is_some());
    let ingress = ports.iter().any(|p| p.mode == "ingress");
    let endpoint_mode = match s.endpoint_mode {
        Some(EndpointMode::Vip) => "vip",
        Some(EndpointMode::Dnsrr) => "dnsrr",
        None if ingress => "vip",
        None => "dnsrr",
    };
    let mut labels = base_labels(env, name);
    for (k, v) in &s.labels {
        labels.insert(k.clone(), v.0.clone());
    }
    let (constraints, preferences, max_per_node) = placement_parts(s.placement.as_ref());
    let res = s.resources.as_ref();
    let res_ctx = |r: Option<&ResourceSpec>| {
        r.map(|r| ResCtx {
            cpus: r.cpus.map(cpus),
            memory: r.memory.map(|m| memory(m.0)),
        })
    };
    ServiceCtx {
        name: name.to_string(),
        image: image_ref(env, &s.image),
        mode: if s.mode == Mode::Global {
            "global"
        } else {
            "replicated"
        },
        replicas: (s.mode == Mode::Replicated).then(|| s.replicas.unwrap_or(1)),
        command: s.command.as_ref().map(StringOrList::to_vec),
        entrypoint: s.entrypoint.as_ref().map(StringOrList::to_vec),
        environment: s.environment.0.clone(),
        env_file: s
            .env_file
            .as_ref()
            .map(StringOrList::to_vec)
            .unwrap_or_default(),
        ports,
        cap_add: Vec::new(),
        volumes: s
            .volumes
            .iter()
            .map(|v| MountCtx {
                kind: match v.kind() {
                    MountKind::Volume => "volume",
                    MountKind::Bind => "bind",
                    MountKind::Tmpfs => "tmpfs",
                },
                source: v.source.clone(),
                target: v.target.clone(),
                read_only: v.read_only,
            })
            .collect(),
        networks: if s.networks.is_empty() {
            vec!["default".to_string()]
        } else {
            s.networks.clone()
        },
        healthcheck: s.healthcheck.as_ref().map(|h| HealthCtx {
            disable: h.disable,
            test: match &h.test {
                Some(StringOrList::String(cmd)) => vec!["CMD-SHELL".to_string(), cmd.clone()],
                Some(StringOrList::List(l)) => l.clone(),
                None => vec!["NONE".to_string()],
            },
            interval: h.interval.map(|d| d.compose()),
            timeout: h.timeout.map(|d| d.compose()),
            retries: h.retries,
            start_period: h.start_period.map(|d| d.compose()),
        }),
        limits: res_ctx(res.and_then(|r| r.limits.as_ref())),
        reservations: res_ctx(res.and_then(|r| r.reservations.as_ref())),
        constraints,
        preferences,
        max_replicas_per_node: max_per_node,
        update: update_ctx(s.update.as_ref(), host_ports, false),
        rollback: update_ctx(s.rollback.as_ref(), host_ports, true),
        restart: restart_ctx(s.restart.as_ref()),
        labels,
        secrets: refs(&s.secrets),
        configs: refs(&s.configs),
        stop_grace_period: dur(s.stop_grace_period, 10),
        endpoint_mode,
        hostname: s.hostname.clone(),
        user: s.user.clone(),
        working_dir: s.working_dir.clone(),
    }
}

fn refs(r: &[FileRef]) -> Vec<RefCtx> {
    r.iter()
        .map(|f| RefCtx {
            source: f.source.clone(),
            target: f.target.clone(),
            mode: f.mode.map(Raw::octal_mode),
        })
        .collect()
}
