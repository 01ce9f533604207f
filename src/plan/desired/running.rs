//! The stack as it runs, as a desired state: for a change that keeps everything but some
//! services' specs (a rollback, the autoscaler's rescale). Objects and networks are kept as
//! they are (external: neither created nor removed).

use std::collections::HashMap;

use super::{hash_spec, DesiredNetwork, DesiredObject, DesiredService};
use crate::engine::model::ServiceSpec;
use crate::labels::{MANIFEST_REPLICAS, SPEC_HASH};
use crate::plan::{Desired, Observed, ObservedObject};

/// ENV's stack as OBSERVED, with SERVICES as its services.
pub fn as_running(
    env: &str,
    stack: &str,
    observed: &Observed,
    services: Vec<DesiredService>,
) -> Desired {
    let kept = |list: &[ObservedObject]| -> Vec<DesiredObject> {
        list.iter()
            .map(|o| DesiredObject {
                key: o.name.clone(),
                name: o.name.clone(),
                data: Vec::new(),
                external: true,
                labels: HashMap::new(),
            })
            .collect()
    };
    Desired {
        env: env.to_string(),
        stack: stack.to_string(),
        networks: observed
            .networks
            .iter()
            .map(|n| DesiredNetwork {
                name: n.name.clone(),
                driver: String::new(),
                attachable: false,
                internal: false,
                external: true,
                labels: HashMap::new(),
            })
            .collect(),
        configs: kept(&observed.configs),
        secrets: kept(&observed.secrets),
        services,
    }
}

/// A running or recorded spec as a desired service: its hash and manifest count from its own
/// labels.
pub fn running_service(stack: &str, name: &str, spec: ServiceSpec) -> DesiredService {
    let label = |k: &str| spec.labels.as_ref().and_then(|l| l.get(k).cloned());
    DesiredService {
        short: name
            .strip_prefix(&format!("{stack}_"))
            .unwrap_or(name)
            .to_string(),
        name: name.to_string(),
        spec_hash: label(SPEC_HASH).unwrap_or_else(|| hash_spec(&spec)),
        manifest_replicas: label(MANIFEST_REPLICAS).and_then(|r| r.parse().ok()),
        spec,
    }
}
