//! The data templates see: derived from a validated environment with every default applied,
//! so templates only loop and print. Serializable, deterministic (sorted maps, fixed order).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::manifest::model::*;
use crate::manifest::validate::{is_full_reference, MONITORING_SERVICE, PROXY_SERVICE};
use crate::manifest::Environment;
use crate::render::Raw;

pub use crate::labels::{
    ENV as LABEL_ENV, MANAGED as LABEL_MANAGED, PROJECT as LABEL_PROJECT, SERVICE as LABEL_SERVICE,
};

/// Where the proxy container listens (published on `proxy.port`).
pub const PROXY_LISTEN_PORT: u16 = 80;
pub const PROXY_CONFIG_PATH: &str = "/usr/local/etc/haproxy/haproxy.cfg";
pub const PROMETHEUS_CONFIG_PATH: &str = "/etc/prometheus/prometheus.yml";

/// Serializes a field twip computes from numbers or from its own constants (a duration, a
/// size, `replicated`) as a "safe" template value: printed as is, without quotes. Only for
/// such fields, never for text from a manifest (that is escaped when printed).
fn computed<S: serde::Serializer, T: AsRef<str>>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    minijinja::Value::from_safe_string(v.as_ref().to_string()).serialize(s)
}

fn computed_opt<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => computed(v, s),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Serialize)]
pub struct StackCtx {
    pub env: String,
    pub stack: String,
    pub project: String,
    pub source: String,
    pub services: Vec<ServiceCtx>,
    pub networks: Vec<NetworkCtx>,
    pub volumes: Vec<VolumeCtx>,
    pub configs: Vec<FileObjCtx>,
    pub secrets: Vec<FileObjCtx>,
}

#[derive(Debug, Serialize)]
pub struct ServiceCtx {
    pub name: String,
    pub image: String,
    #[serde(serialize_with = "computed")]
    pub mode: &'static str,
    pub replicas: Option<u64>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub environment: BTreeMap<String, String>,
    pub env_file: Vec<String>,
    pub ports: Vec<PortCtx>,
    pub volumes: Vec<MountCtx>,
    pub networks: Vec<String>,
    pub healthcheck: Option<HealthCtx>,
    pub limits: Option<ResCtx>,
    pub reservations: Option<ResCtx>,
    pub constraints: Vec<String>,
    pub preferences: Vec<String>,
    pub max_replicas_per_node: Option<u64>,
    pub update: UpdateCtx,
    pub rollback: UpdateCtx,
    pub restart: RestartCtx,
    pub labels: BTreeMap<String, String>,
    pub secrets: Vec<RefCtx>,
    pub configs: Vec<RefCtx>,
    #[serde(serialize_with = "computed")]
    pub stop_grace_period: String,
    #[serde(serialize_with = "computed")]
    pub endpoint_mode: &'static str,
    pub hostname: Option<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PortCtx {
    pub target: u16,
    pub published: Option<u16>,
    #[serde(serialize_with = "computed")]
    pub protocol: &'static str,
    #[serde(serialize_with = "computed")]
    pub mode: &'static str,
}

#[derive(Debug, Serialize)]
pub struct MountCtx {
    #[serde(serialize_with = "computed")]
    pub kind: &'static str,
    pub source: Option<String>,
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Serialize)]
pub struct HealthCtx {
    pub disable: bool,
    pub test: Vec<String>,
    #[serde(serialize_with = "computed_opt")]
    pub interval: Option<String>,
    #[serde(serialize_with = "computed_opt")]
    pub timeout: Option<String>,
    pub retries: Option<u64>,
    #[serde(serialize_with = "computed_opt")]
    pub start_period: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ResCtx {
    pub cpus: Option<String>,
    #[serde(serialize_with = "computed_opt")]
    pub memory: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct UpdateCtx {
    pub parallelism: u64,
    #[serde(serialize_with = "computed")]
    pub delay: String,
    #[serde(serialize_with = "computed")]
    pub order: &'static str,
    #[serde(serialize_with = "computed")]
    pub failure_action: &'static str,
    #[serde(serialize_with = "computed")]
    pub monitor: String,
    pub max_failure_ratio: Raw,
}

#[derive(Debug, Serialize)]
pub struct RestartCtx {
    #[serde(serialize_with = "computed")]
    pub condition: &'static str,
    #[serde(serialize_with = "computed")]
    pub delay: String,
    pub max_attempts: Option<u64>,
    #[serde(serialize_with = "computed_opt")]
    pub window: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RefCtx {
    pub source: String,
    pub target: Option<String>,
    pub mode: Option<Raw>,
}

#[derive(Debug, Serialize)]
pub struct NetworkCtx {
    pub key: String,
    pub driver: String,
    pub attachable: bool,
    pub internal: bool,
    pub external: bool,
}

#[derive(Debug, Serialize)]
pub struct VolumeCtx {
    pub key: String,
    pub driver: Option<String>,
    pub external: bool,
    pub labels: BTreeMap<String, String>,
}

/// A config or secret: `name` carries a hash of the content so a change rolls out.
#[derive(Debug, Serialize)]
pub struct FileObjCtx {
    pub key: String,
    pub name: String,
    pub file: Option<String>,
    pub external: bool,
}

#[derive(Debug, Serialize)]
pub struct ProxyCtx {
    pub stack: String,
    pub listen_port: u16,
    pub keepalive: bool,
    #[serde(serialize_with = "computed")]
    pub timeout_connect: String,
    #[serde(serialize_with = "computed")]
    pub timeout_client: String,
    #[serde(serialize_with = "computed")]
    pub timeout_server: String,
    pub stats: Option<StatsCtx>,
    #[serde(serialize_with = "computed")]
    pub health_interval: String,
    pub health_fall: u64,
    pub health_rise: u64,
    pub routes: Vec<RouteCtx>,
    pub backends: Vec<BackendCtx>,
}

#[derive(Debug, Serialize)]
pub struct StatsCtx {
    pub port: u16,
    pub uri: String,
    #[serde(serialize_with = "computed")]
    pub refresh: String,
}

#[derive(Debug, Serialize)]
pub struct RouteCtx {
    pub index: usize,
    pub path: Option<String>,
    pub host: Option<String>,
    pub backend: String,
}

#[derive(Debug, Serialize)]
pub struct BackendCtx {
    pub name: String,
    pub service: String,
    /// DNS name that resolves to every task (`tasks.STACK_SERVICE`).
    pub dns: String,
    pub port: u16,
    pub slots: u64,
    pub health_path: String,
}

#[derive(Debug, Serialize)]
pub struct MonitoringCtx {
    pub stack: String,
    pub env: String,
    #[serde(serialize_with = "computed")]
    pub scrape_interval: String,
    /// `tasks.STACK_proxy` and the stats port, where HAProxy serves /metrics.
    pub proxy_dns: Option<String>,
    pub proxy_port: Option<u16>,
    pub targets: Vec<ScrapeCtx>,
}

#[derive(Debug, Serialize)]
pub struct ScrapeCtx {
    pub job: String,
    pub dns: String,
    pub port: u16,
    pub path: String,
}

/// The full reference an `image:` field deploys: an `images` entry resolved, or as written.
pub fn image_ref(env: &Environment, image: &str) -> String {
    let m = &env.manifest;
    let Some(img) = m.images.get(image) else {
        return image.to_string();
    };
    if let Some(r) = &img.reference {
        return r.clone();
    }
    let tag = img.tags.first().map_or("latest", |t| t.0.as_str());
    format!("{}:{tag}", image_repository(env, image))
}

/// The repository (without tag) of an `images` entry built by twip.
pub fn image_repository(env: &Environment, image: &str) -> String {
    let m = &env.manifest;
    let repo = m
        .images
        .get(image)
        .and_then(|i| i.repository.clone())
        .unwrap_or_else(|| {
            let ns = m
                .registry
                .as_ref()
                .and_then(|r| r.namespace.clone())
                .unwrap_or_else(|| env.project().to_string());
            format!("{ns}/{image}")
        });
    match &m.registry {
        Some(r) if !is_full_reference_with_host(&repo) => format!("{}/{repo}", r.url),
        _ => repo,
    }
}

fn is_full_reference_with_host(repo: &str) -> bool {
    repo.split('/').next().is_some_and(|first| {
        repo.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost")
    })
}

fn dur(d: Option<Duration>, default: u64) -> String {
    d.unwrap_or(Duration::secs(default)).compose()
}

fn ms(d: Duration) -> String {
    format!("{}ms", d.0.as_millis())
}

fn cpus(c: Cpus) -> String {
    let s = format!("{:.3}", c.0);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn memory(bytes: u64) -> String {
    for (unit, shift) in [("G", 30), ("M", 20), ("K", 10)] {
        if bytes >= 1 << shift && bytes % (1 << shift) == 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes}")
}

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
fn update_ctx(u: Option<&UpdateConfig>, host_ports: bool, rollback: bool) -> UpdateCtx {
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

fn restart_ctx(r: Option<&RestartPolicy>) -> RestartCtx {
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

fn base_labels(env: &Environment, service: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_ENV.to_string(), env.name.clone()),
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_PROJECT.to_string(), env.project().to_string()),
        (LABEL_SERVICE.to_string(), service.to_string()),
    ])
}

fn placement_parts(p: Option<&Placement>) -> (Vec<String>, Vec<String>, Option<u64>) {
    match p {
        Some(p) => (
            p.constraints.clone(),
            p.spread.clone(),
            p.max_replicas_per_node,
        ),
        None => (Vec::new(), Vec::new(), None),
    }
}

fn service_ctx(env: &Environment, name: &str, s: &Service) -> ServiceCtx {
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

fn proxy_service(env: &Environment, p: &Proxy, config_key: &str) -> ServiceCtx {
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
        networks: proxy_networks(m, p),
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
        secrets: Vec::new(),
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

fn monitoring_service(env: &Environment, mon: &Monitoring, config_key: &str) -> ServiceCtx {
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

/// Inputs the stack needs from earlier renders and files: content hashes of configs.
pub struct ObjectNames {
    pub configs: Vec<FileObjCtx>,
    pub secrets: Vec<FileObjCtx>,
}

pub fn stack_ctx(
    env: &Environment,
    objects: ObjectNames,
    proxy_key: Option<&str>,
    mon_key: Option<&str>,
) -> StackCtx {
    let m = &env.manifest;
    let mut services: Vec<ServiceCtx> = m
        .services
        .iter()
        .map(|(name, s)| service_ctx(env, name, s))
        .collect();
    if let (Some(p), Some(key)) = (&m.proxy, proxy_key) {
        services.push(proxy_service(env, p, key));
    }
    if let (Some(mon), Some(key)) = (m.monitoring.as_ref().filter(|x| x.enabled), mon_key) {
        services.push(monitoring_service(env, mon, key));
    }
    services.sort_by(|a, b| a.name.cmp(&b.name));
    let mut networks: Vec<NetworkCtx> = vec![];
    let default_cfg = m
        .networks
        .get("default")
        .cloned()
        .flatten()
        .unwrap_or_default();
    let net = |key: &str, n: &Network| NetworkCtx {
        key: key.to_string(),
        driver: n.driver.clone().unwrap_or_else(|| "overlay".into()),
        attachable: n.attachable.unwrap_or(true),
        internal: n.internal,
        external: n.external,
    };
    networks.push(net("default", &default_cfg));
    for (k, n) in &m.networks {
        if k != "default" {
            networks.push(net(k, &n.clone().unwrap_or_default()));
        }
    }
    let volumes = m
        .volumes
        .iter()
        .map(|(k, v)| {
            let v = v.clone().unwrap_or_default();
            let mut labels: BTreeMap<String, String> = v
                .labels
                .iter()
                .map(|(a, b)| (a.clone(), b.0.clone()))
                .collect();
            labels.insert(LABEL_ENV.into(), env.name.clone());
            labels.insert(LABEL_MANAGED.into(), "true".into());
            labels.insert(LABEL_PROJECT.into(), env.project().into());
            VolumeCtx {
                key: k.clone(),
                driver: v.driver.clone(),
                external: v.external,
                labels,
            }
        })
        .collect();
    StackCtx {
        env: env.name.clone(),
        stack: env.stack().to_string(),
        project: env.project().to_string(),
        source: env.file.display().to_string(),
        services,
        networks,
        volumes,
        configs: objects.configs,
        secrets: objects.secrets,
    }
}

/// `image:` values resolved for every service, including the proxy and monitoring.
pub fn full_reference(image: &str) -> bool {
    is_full_reference(image)
}
