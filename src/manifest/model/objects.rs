//! The stack's other objects: networks, volumes, secrets and configs.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::ScalarString;

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Default `overlay`.
    #[serde(default)]
    pub driver: Option<String>,
    #[serde(default)]
    pub attachable: Option<bool>,
    #[serde(default)]
    pub internal: bool,
    /// Made outside twip: used, never created or removed.
    #[serde(default)]
    pub external: bool,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    /// The volume driver (default `local`).
    #[serde(default)]
    pub driver: Option<String>,
    /// Options for the driver. Shared storage through the local driver, so that a task that
    /// moves to another node finds its data: `{type: nfs, o: "addr=10.0.0.5,rw,nfsvers=4",
    /// device: ":/exports/news"}`.
    #[serde(default)]
    pub driver_opts: BTreeMap<String, ScalarString>,
    #[serde(default)]
    pub external: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, ScalarString>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretDef {
    /// Read from this file (relative to the project directory).
    #[serde(default)]
    pub file: Option<String>,
    /// Read from this environment variable.
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub external: bool,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigDef {
    #[serde(default)]
    pub file: Option<String>,
    /// Inline content.
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub external: bool,
}
