//! The proxy and Prometheus: their configs' contexts and the services twip adds for them.

use std::collections::BTreeMap;

use super::service::{base_labels, placement_parts, restart_ctx, update_ctx};
use super::types::*;
use super::{dur, image_ref, ms, PROMETHEUS_CONFIG_PATH, PROXY_CONFIG_PATH, PROXY_LISTEN_PORT};
use crate::manifest::model::*;
use crate::manifest::validate::{MONITORING_SERVICE, PROXY_SERVICE};
use crate::manifest::Environment;

/// Networks of the routed services: the proxy joins all of them to reach its backends.
fn proxy_networks(m: &Manifest, p: &Proxy) -> Vec<String> {
    let mut nets: Vec<String> = Vec::new();
    for r in &p.routes {
        if let Some(s) = m.services.get(&r.service) {
            if s.networks.is_empty() {
                nets.push("default".into());
            } else {
                nets.extend(s.networks.iter().cloned());
            }
        }
    }
    nets.sort();
    nets.dedup();
    if nets.is_empty() {
        nets.push("default".into());
    }
    nets
}

/// The proxy's secrets: its certificates and, with the runtime API, that API's credentials.
fn proxy_secrets(p: &Proxy) -> Vec<RefCtx> {
    let mode = || Some(crate::render::Raw::octal_mode(0o400));
    let mut out: Vec<RefCtx> = super::tls_secrets(p)
        .into_iter()
        .map(|s| RefCtx {
            source: s.key,
            target: Some(s.target),
            mode: mode(),
        })
        .collect();
    if super::runtime_api(p) {
        out.extend(
            super::RUNTIME_PROXY_SECRETS
                .iter()
                .map(|(key, target, _)| RefCtx {
                    source: key.to_string(),
                    target: Some(target.to_string()),
                    mode: mode(),
                }),
        );
    }
    out
}

pub(super) fn proxy_service(env: &Environment, p: &Proxy, config_key: &str) -> ServiceCtx {
    let m = &env.manifest;
    let mode = if p.publish_mode == Some(PublishMode::Ingress) {
        "ingress"
    } else {
        "host"
    };
    let mut ports = vec![PortCtx {
        target: PROXY_LISTEN_PORT,
        published: Some(p.port.unwrap_or(80)),
        protocol: "tcp",
        mode,
    }];
    if let Some(t) = &p.tls {
        ports.push(PortCtx {
            target: super::HTTPS_LISTEN_PORT,
            published: Some(t.port.unwrap_or(443)),
            protocol: "tcp",
            mode,
        });
    }
    if let Some(st) = stats(p) {
        ports.push(PortCtx {
            target: st.port,
            published: Some(st.port),
            protocol: "tcp",
            mode,
        });
    }
    let (constraints, preferences, max_per_node) = placement_parts(p.placement.as_ref());
    let host_ports = mode == "host";
    ServiceCtx {
        name: PROXY_SERVICE.to_string(),
        image: image_ref(env, p.image.as_deref().unwrap_or("proxy")),
        mode: if p.mode == Mode::Global {
            "global"
        } else {
            "replicated"
        },
        replicas: (p.mode == Mode::Replicated).then(|| p.replicas.unwrap_or(1)),
        command: None,
        entrypoint: None,
        environment: BTreeMap::new(),
        env_file: Vec::new(),
        ports,
        volumes: Vec::new(),
        networks: {
            let mut n = proxy_networks(m, p);
            if super::runtime_api(p) {
                n.push(super::CONTROL_NETWORK.to_string());
            }
            n
        },
        cap_add: Vec::new(),
        healthcheck: None,
        limits: None,
        reservations: None,
        constraints,
        preferences,
        max_replicas_per_node: max_per_node,
        update: update_ctx(None, host_ports, false),
        rollback: update_ctx(None, host_ports, true),
        restart: restart_ctx(None),
        labels: base_labels(env, PROXY_SERVICE),
        secrets: proxy_secrets(p),
        configs: vec![RefCtx {
            source: config_key.to_string(),
            target: Some(PROXY_CONFIG_PATH.to_string()),
            mode: None,
        }],
        stop_grace_period: "10s".into(),
        endpoint_mode: if mode == "ingress" { "vip" } else { "dnsrr" },
        hostname: None,
        user: None,
        working_dir: None,
    }
}

pub(super) fn monitoring_service(
    env: &Environment,
    mon: &Monitoring,
    config_key: &str,
) -> ServiceCtx {
    let m = &env.manifest;
    let mut nets: Vec<String> = m
        .services
        .values()
        .flat_map(|s| {
            if s.networks.is_empty() {
                vec!["default".to_string()]
            } else {
                s.networks.clone()
            }
        })
        .collect();
    nets.push("default".into());
    nets.sort();
    nets.dedup();
    ServiceCtx {
        name: MONITORING_SERVICE.to_string(),
        image: image_ref(env, &mon.image),
        mode: "replicated",
        replicas: Some(1),
        command: None,
        entrypoint: None,
        environment: BTreeMap::new(),
        env_file: Vec::new(),
        ports: vec![PortCtx {
            target: 9090,
            published: Some(mon.port.unwrap_or(9090)),
            protocol: "tcp",
            mode: "host",
        }],
        volumes: Vec::new(),
        networks: nets,
        cap_add: Vec::new(),
        healthcheck: None,
        limits: None,
        reservations: None,
        constraints: vec!["node.role == manager".to_string()],
        preferences: Vec::new(),
        max_replicas_per_node: None,
        update: update_ctx(None, true, false),
        rollback: update_ctx(None, true, true),
        restart: restart_ctx(None),
        labels: base_labels(env, MONITORING_SERVICE),
        secrets: Vec::new(),
        configs: vec![RefCtx {
            source: config_key.to_string(),
            target: Some(PROMETHEUS_CONFIG_PATH.to_string()),
            mode: None,
        }],
        stop_grace_period: "10s".into(),
        endpoint_mode: "dnsrr",
        hostname: None,
        user: None,
        working_dir: None,
    }
}

fn stats(p: &Proxy) -> Option<StatsCtx> {
    match &p.stats {
        Some(s) if !s.enabled => None,
        s => Some(StatsCtx {
            port: s.as_ref().and_then(|s| s.port).unwrap_or(1936),
            uri: s
                .as_ref()
                .and_then(|s| s.uri.clone())
                .unwrap_or_else(|| "/".into()),
            refresh: dur(s.as_ref().and_then(|s| s.refresh), 5),
        }),
    }
}

pub fn proxy_ctx(env: &Environment, p: &Proxy) -> ProxyCtx {
    let m = &env.manifest;
    let stack = env.stack().to_string();
    let health = p.health.clone().unwrap_or_default();
    let timeouts = p.timeouts.clone().unwrap_or_default();
    let mut backends: Vec<BackendCtx> = Vec::new();
    let mut routes = Vec::new();
    for (i, r) in p.routes.iter().enumerate() {
        let port = r.port.unwrap_or(80);
        let name = if p
            .routes
            .iter()
            .any(|o| o.service == r.service && o.port.unwrap_or(80) != port)
        {
            format!("{}_{port}", r.service)
        } else {
            r.service.clone()
        };
        if !backends.iter().any(|b| b.name == name) {
            let svc = m.services.get(&r.service);
            let slots = svc.map_or(10, |s| match s.mode {
                Mode::Global => 10.max(m.nodes.len() as u64),
                Mode::Replicated => 10
                    .max(s.replicas.unwrap_or(1))
                    .max(s.autoscale.as_ref().map_or(0, |a| a.max)),
            });
            backends.push(BackendCtx {
                name: name.clone(),
                service: r.service.clone(),
                dns: format!("tasks.{stack}_{}", r.service),
                port,
                slots,
                health_path: r
                    .health
                    .clone()
                    .or_else(|| health.path.clone())
                    .unwrap_or_else(|| "/healthz".into()),
            });
        }
        routes.push(RouteCtx {
            index: i,
            path: r.path.clone().filter(|p| p != "/"),
            host: r.host.clone(),
            backend: name,
            https_redirect: p.tls.as_ref().is_some_and(|t| super::route_redirects(t, r)),
        });
    }
    ProxyCtx {
        stack,
        listen_port: PROXY_LISTEN_PORT,
        keepalive: p.keepalive.unwrap_or(true),
        timeout_connect: dur(timeouts.connect, 5),
        timeout_client: dur(timeouts.client, 30),
        timeout_server: dur(timeouts.server, 30),
        stats: stats(p),
        health_interval: ms(health
            .interval
            .unwrap_or(Duration(std::time::Duration::from_secs(1)))),
        health_fall: health.fall.unwrap_or(1),
        health_rise: health.rise.unwrap_or(1),
        routes,
        backends,
        tls: super::tls_ctx(p),
    }
}

pub fn monitoring_ctx(env: &Environment, mon: &Monitoring) -> MonitoringCtx {
    let stack = env.stack().to_string();
    let proxy_port = env.manifest.proxy.as_ref().and_then(stats).map(|s| s.port);
    let proxy_dns = proxy_port.map(|_| format!("tasks.{stack}_{PROXY_SERVICE}"));
    MonitoringCtx {
        env: env.name.clone(),
        scrape_interval: dur(mon.scrape_interval, 15),
        proxy_dns,
        proxy_port,
        targets: mon
            .targets
            .iter()
            .map(|t| ScrapeCtx {
                job: t.service.clone(),
                dns: format!("tasks.{stack}_{}", t.service),
                port: t.port,
                path: t.path.clone().unwrap_or_else(|| "/metrics".into()),
            })
            .collect(),
        stack,
    }
}
