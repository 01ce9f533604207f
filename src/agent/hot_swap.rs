//! Puts new certificates into the running proxies through HAProxy's runtime API, without a restart.
//!
//! Not built yet: the part of the config is always empty and no controller runs.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{AgentConfig, Controller};
use crate::manifest::Environment;

/// This controller's part of [`AgentConfig`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HotSwapConfig {}

impl HotSwapConfig {
    /// This part, made from the environment (empty when the manifest asks nothing of it).
    pub fn for_environment(_env: &Environment, _project_dir: &Path) -> anyhow::Result<Self> {
        Ok(Self::default())
    }

    /// Whether there is nothing for this controller to do.
    pub fn is_empty(&self) -> bool {
        true
    }
}

/// The controller, or `None` when its part of the config is empty.
pub fn controller(config: &AgentConfig) -> Option<Box<dyn Controller>> {
    if config.hot_swap.is_empty() {
        return None;
    }
    None
}
