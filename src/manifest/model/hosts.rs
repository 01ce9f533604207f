//! Where an environment runs: its engine, its registry and its nodes.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ScalarString;

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Engine {
    /// `unix:///var/run/docker.sock`, `tcp://host:2376` (TLS) or `ssh://user@host`.
    #[serde(default)]
    pub host: Option<String>,
    /// Client certificate, key and CA for `tcp://` (default: `DOCKER_CERT_PATH`).
    #[serde(default)]
    pub tls: Option<Tls>,
    /// Allow plain (unencrypted) TCP to a non-loopback address. For labs only.
    #[serde(default)]
    pub allow_plain_tcp: bool,
    /// Where `twip bootstrap` installs Docker Engine from on fresh hosts: `distribution`
    /// (Debian's or Ubuntu's `docker.io`, the default) or `docker` (Docker's apt repository,
    /// `docker-ce`).
    #[serde(default)]
    pub install: Option<Install>,
}

/// Where Docker Engine comes from on a bootstrapped host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Install {
    /// The distribution's own packages (`docker.io`).
    #[default]
    Distribution,
    /// Docker's apt repository (`docker-ce`, `docker-ce-cli`, `containerd.io`).
    Docker,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    #[serde(default = "super::yes")]
    pub verify: bool,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// `host[:port]`, e.g. `localhost:5000` or `registry.example.com`.
    pub url: String,
    /// Path under the registry (default: the project name).
    #[serde(default)]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Manager,
    Worker,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// The node's hostname in the swarm.
    pub name: String,
    /// Address other nodes reach it at (also the advertise address).
    pub address: String,
    pub role: Role,
    /// Its engine endpoint (default: over SSH to `address`).
    #[serde(default)]
    pub engine: Option<String>,
    /// How to reach it over SSH (bootstrap, ssh:// engines).
    #[serde(default)]
    pub ssh: Option<Ssh>,
    /// Node labels for placement (`node.labels.KEY == VALUE`).
    #[serde(default)]
    pub labels: BTreeMap<String, ScalarString>,
    /// Its platform, e.g. linux/arm64.
    #[serde(default)]
    pub platform: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ssh {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub identity_file: Option<String>,
    /// Refuse unknown host keys (default true).
    #[serde(default = "super::yes")]
    pub strict_host_key_checking: bool,
}
