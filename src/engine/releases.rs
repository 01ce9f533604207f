//! twip's release history. Swarm keeps one previous spec per service; twip records every
//! change to a stack (the specs of its services after it, who made it with which command, the
//! plan executed, the images, the manifest's git commit, and how it ended) as a swarm config
//! labelled with the stack and a sequence number, keeps the last [`KEEP`] (or
//! `TWIP_KEEP_RELEASES`), and can return to any of them. Configs and secrets a kept release
//! refers to are not removed by `up`. Records written before a field existed read with that
//! field empty (unknown).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::api::SwarmApi;
use super::error::EngineError;
use super::model::{ConfigSpec, ServiceSpec};
use crate::plan::desired::LABEL_NAMESPACE;

pub use crate::labels::RELEASE as LABEL_RELEASE;
/// How many releases a stack keeps, unless `TWIP_KEEP_RELEASES` says otherwise.
pub const KEEP: usize = 50;

/// How many releases to keep: `TWIP_KEEP_RELEASES` (at least 2), else [`KEEP`].
pub fn keep() -> usize {
    std::env::var("TWIP_KEEP_RELEASES")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .map_or(KEEP, |n| n.max(2))
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Release {
    pub seq: u64,
    /// Unix seconds.
    pub created: u64,
    pub services: BTreeMap<String, ServiceSpec>,
    /// Who made the change, where, with which command and why (empty: unknown).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub command: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The plan that was executed, one step per action.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plan: Vec<Step>,
    /// Each service's image as deployed: by digest when pinned, with the local image's id
    /// when there is no registry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub images: BTreeMap<String, String>,
    /// The manifest's git commit (`abc1234`, `abc1234-dirty`), when it is in a repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// How it ended: `converged`, `rolled back`, `paused`, `timed out`, `failed`,
    /// `not waited` (`--detach`); empty: unknown (a record from before outcomes).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub outcome: String,
}

/// One action of an executed plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub op: String,
    pub resource: String,
    pub name: String,
    pub cause: String,
}

/// Outcomes after which the release's specs are known to run.
pub fn succeeded(outcome: &str) -> bool {
    matches!(outcome, "converged" | "not waited" | "")
}

impl Release {
    /// Config and secret names the release's services use.
    pub fn object_names(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for spec in self.services.values() {
            if let Some(cs) = spec
                .task_template
                .as_ref()
                .and_then(|t| t.container_spec.as_ref())
            {
                names.extend(
                    cs.configs
                        .iter()
                        .flatten()
                        .filter_map(|c| c.config_name.clone()),
                );
                names.extend(
                    cs.secrets
                        .iter()
                        .flatten()
                        .filter_map(|c| c.secret_name.clone()),
                );
            }
        }
        names
    }
}

fn config_name(stack: &str, seq: u64) -> String {
    format!("{stack}_twip-release-{seq:06}")
}

/// Every recorded release of the stack, oldest first, with its config name.
pub async fn list(
    docker: &dyn SwarmApi,
    stack: &str,
) -> Result<Vec<(String, Release)>, EngineError> {
    let f = HashMap::from([(
        "label".to_string(),
        vec![
            format!("{LABEL_NAMESPACE}={stack}"),
            LABEL_RELEASE.to_string(),
        ],
    )]);
    let configs = docker
        .list_configs(Some(&f))
        .await
        .map_err(|e| e.during("list releases of stack", stack))?;
    let mut out = Vec::new();
    for c in configs {
        let Some(spec) = c.spec else { continue };
        let data = spec
            .data
            .as_deref()
            .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
            .unwrap_or_default();
        if let Ok(r) = serde_json::from_slice::<Release>(&data) {
            out.push((spec.name.unwrap_or_default(), r));
        }
    }
    out.sort_by_key(|(_, r)| r.seq);
    Ok(out)
}

/// Records RELEASE (its `seq` and `created` are set here) as the stack's newest release and
/// forgets releases beyond the last [`keep`]. Returns its number.
pub async fn record(
    docker: &dyn SwarmApi,
    stack: &str,
    release: Release,
    labels: HashMap<String, String>,
) -> anyhow::Result<u64> {
    let existing = list(docker, stack).await?;
    let seq = existing.last().map_or(1, |(_, r)| r.seq + 1);
    let created = docker
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let release = Release {
        seq,
        created,
        ..release
    };
    let mut labels = labels;
    labels.insert(LABEL_RELEASE.into(), seq.to_string());
    let spec = ConfigSpec {
        name: Some(config_name(stack, seq)),
        labels: Some(labels),
        data: Some(base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&release)?)),
        ..Default::default()
    };
    docker
        .create_config(spec)
        .await
        .map_err(|e| e.during("record release of", stack))?;
    let all = list(docker, stack).await?;
    let keep = keep();
    if all.len() > keep {
        for (name, _) in &all[..all.len() - keep] {
            let _ = docker.remove_config(name).await;
        }
    }
    Ok(seq)
}

/// Two releases are the same when every service has the same twip spec hash and image.
pub fn same_release(a: &BTreeMap<String, ServiceSpec>, b: &BTreeMap<String, ServiceSpec>) -> bool {
    let key = |s: &ServiceSpec| {
        (
            s.labels
                .as_ref()
                .and_then(|l| l.get(crate::plan::desired::LABEL_SPEC_HASH).cloned()),
            s.task_template
                .as_ref()
                .and_then(|t| t.container_spec.as_ref())
                .and_then(|c| c.image.clone()),
        )
    };
    a.len() == b.len()
        && a.iter()
            .all(|(k, v)| b.get(k).is_some_and(|w| key(v) == key(w)))
}

/// Names of configs and secrets that kept releases use (not to be removed).
pub async fn retained_objects(
    docker: &dyn SwarmApi,
    stack: &str,
) -> Result<BTreeSet<String>, EngineError> {
    let mut names = BTreeSet::new();
    for (config, r) in list(docker, stack).await? {
        names.insert(config);
        names.extend(r.object_names());
    }
    Ok(names)
}
