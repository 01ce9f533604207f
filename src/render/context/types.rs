//! The data types templates see, and how computed values among them are serialized.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::render::Raw;

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
    /// Kernel capabilities added to the container (`cap_add`).
    pub cap_add: Vec<String>,
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
    pub driver_opts: BTreeMap<String, String>,
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
    /// HTTPS, when `proxy.tls` is given.
    pub tls: Option<super::TlsCtx>,
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
    /// With TLS: plain HTTP to this route is redirected to HTTPS.
    pub https_redirect: bool,
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
