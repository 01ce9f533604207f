//! What runs before what, from the manifest: the release tasks a plan runs before it changes
//! any service (`before_deploy`). Pure.

use serde::Serialize;

use super::{Op, Plan, Resource};
use crate::manifest::model::Manifest;

/// One release task: COMMAND run once from SERVICE's new spec before any service changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseStep {
    /// The service's full name (`training_web`).
    pub service: String,
    /// Its name in the manifest (`web`).
    pub short: String,
    pub command: Vec<String>,
}

/// The release tasks of the services PLAN creates or updates, in the order of the plan's
/// actions and of each service's `before_deploy` list. A service the plan only scales, or
/// leaves alone, runs none: its spec, and so what a migration would see, did not change.
pub fn release_steps(plan: &Plan, m: &Manifest) -> Vec<ReleaseStep> {
    let prefix = format!("{}_", plan.stack);
    let mut steps = Vec::new();
    for a in &plan.actions {
        if a.resource != Resource::Service || !matches!(a.op, Op::Create | Op::Update) {
            continue;
        }
        let Some(short) = a.name.strip_prefix(&prefix) else {
            continue;
        };
        let Some(s) = m.services.get(short) else {
            continue;
        };
        for command in s.release_tasks().unwrap_or_default() {
            steps.push(ReleaseStep {
                service: a.name.clone(),
                short: short.to_string(),
                command,
            });
        }
    }
    steps
}
