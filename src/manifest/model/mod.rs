//! The manifest model: what `environments/NAME.yaml` may say. Every struct refuses unknown
//! keys; the JSON Schema printed by `twip schema` is derived from these same types.

mod hosts;
mod images;
mod jobs;
mod mounts;
mod objects;
mod ports;
mod proxy;
mod scalars;
mod service;
mod tls;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

pub use hosts::*;
pub use images::*;
pub use jobs::*;
pub use mounts::*;
pub use objects::*;
pub use ports::*;
pub use proxy::*;
pub use scalars::*;
pub use service::*;
pub use tls::*;

/// `agent:`: whether the stack runs the in-cluster agent, and how often it autoscales.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    /// `true`: run the agent even when no controller has work; `false`: never run it (the
    /// features that need it then do nothing). Absent: run it when a controller has work.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Time between two rounds of the autoscaling controller (default 15s; at least 1s).
    #[serde(default)]
    pub autoscale_interval: Option<Duration>,
}

fn yes() -> bool {
    true
}

// ---------------------------------------------------------------------------------------
// The manifest
// ---------------------------------------------------------------------------------------

/// An environment manifest: `environments/NAME.yaml`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Another environment (or `_partial`) whose settings this one starts from; deep-merged.
    #[serde(default)]
    pub extends: Option<String>,
    /// What this environment is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Project name: prefix of image names (default `twip`).
    #[serde(default)]
    pub project: Option<String>,
    /// Stack name on the swarm (default: the environment's name).
    #[serde(default)]
    pub stack: Option<String>,
    /// How to reach the Docker engine (default: the local socket).
    #[serde(default)]
    pub engine: Option<Engine>,
    /// The registry images are pushed to and pulled from.
    #[serde(default)]
    pub registry: Option<Registry>,
    /// The hosts of a multi-node environment.
    #[serde(default)]
    pub nodes: Vec<NodeSpec>,
    /// Images twip builds, by name.
    #[serde(default)]
    pub images: BTreeMap<String, Image>,
    /// The services of the stack, by name.
    pub services: BTreeMap<String, Service>,
    /// Scheduled jobs, by name: run as swarm jobs at the times of a cron expression (UTC) by
    /// the environment's agent, or by hand with `twip jobs run`.
    #[serde(default)]
    pub jobs: BTreeMap<String, Job>,
    /// Overlay networks (a network `default` is always there).
    #[serde(default)]
    pub networks: BTreeMap<String, Option<Network>>,
    /// Named volumes.
    #[serde(default)]
    pub volumes: BTreeMap<String, Option<Volume>>,
    /// Docker secrets, named by a hash of their content when deployed.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretDef>,
    /// Docker configs, named by a hash of their content when deployed.
    #[serde(default)]
    pub configs: BTreeMap<String, ConfigDef>,
    /// HAProxy in front of named services.
    #[serde(default)]
    pub proxy: Option<Proxy>,
    /// Prometheus scraping the proxy and the services.
    #[serde(default)]
    pub monitoring: Option<Monitoring>,
    /// The in-cluster agent (`twip agent`, a service `agent` of the stack). Without this key it
    /// runs when a controller has work (scheduled jobs, autoscaling, certificates).
    #[serde(default)]
    pub agent: Option<AgentSettings>,
    /// Directories outside the project that files named here (configs, secrets, env files,
    /// build contexts, Dockerfiles) may come from. Every such path is resolved, symlinks
    /// included, and refused when it leaves the project directory, unless it lies in one of
    /// these (absolute) directories. `/proc`, `/sys` and `/dev` are never allowed.
    #[serde(default)]
    pub allow_paths_outside_project: Vec<String>,
}
