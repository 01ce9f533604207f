//! Images twip builds, or takes from a registry.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::ScalarString;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// Build it from a context with a Dockerfile.
    #[serde(default)]
    pub build: Option<Build>,
    /// Or use an existing image from a registry (`nginx:1.25`).
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    /// Repository name (default `PROJECT/NAME`, under the registry when there is one).
    #[serde(default)]
    pub repository: Option<String>,
    /// Tags; the first is the one deployed (default `latest`).
    #[serde(default)]
    pub tags: Vec<ScalarString>,
    /// Platforms to build, e.g. [linux/amd64, linux/arm64] (default: the engine's).
    #[serde(default)]
    pub platforms: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Build {
    /// The build context, relative to the project directory.
    pub context: String,
    /// The Dockerfile, relative to the context (default `Dockerfile`).
    #[serde(default)]
    pub dockerfile: Option<String>,
    #[serde(default)]
    pub args: BTreeMap<String, ScalarString>,
    /// Target stage.
    #[serde(default)]
    pub target: Option<String>,
}
