//! The agent's records: each controller's last decision, kept in the swarm (not on a node's
//! disk) so that `twip status` can show it and a restarted agent is seen to have acted. One
//! swarm config per controller, `STACK_twip-record_CONTROLLER_NANOS`, labelled with the
//! stack's namespace and `io.twip.record=CONTROLLER`, holding a [`Record`] as JSON. Configs
//! cannot change, so a new decision is a new config, and the older ones of that controller
//! are removed right after it is written. A plan keeps them (they are not the manifest's, see
//! [`names`]); `twip down` removes them with the rest of the stack.

use std::collections::{BTreeSet, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::api::SwarmApi;
use super::error::EngineError;
use super::model::ConfigSpec;
use crate::labels::{MANAGED, NAMESPACE, RECORD};

/// One controller's last round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The controller's name (`jobs`, `autoscale`).
    pub controller: String,
    /// Its decision, one line (or the error of its round), never a secret.
    pub decision: String,
    /// Whether the round failed (`decision` is then its error).
    #[serde(default)]
    pub error: bool,
    /// When, in Unix seconds.
    pub at: u64,
}

fn filters(stack: &str, controller: Option<&str>) -> HashMap<String, Vec<String>> {
    let record = match controller {
        Some(c) => format!("{RECORD}={c}"),
        None => RECORD.to_string(),
    };
    HashMap::from([(
        "label".to_string(),
        vec![format!("{NAMESPACE}={stack}"), record],
    )])
}

/// A config name holds letters, digits, `_`, `-`, `.`; a controller's name is one of twip's.
fn config_name(stack: &str, controller: &str, nanos: u128) -> String {
    let safe: String = controller
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{stack}_twip-record_{safe}_{nanos:020}")
}

/// Writes RECORD as the controller's last decision in STACK, then removes that controller's
/// older records (a failed removal is left for the next write).
pub async fn write(api: &dyn SwarmApi, stack: &str, record: &Record) -> Result<(), EngineError> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let name = config_name(stack, &record.controller, nanos);
    let data = serde_json::to_vec(record).unwrap_or_default();
    let labels = HashMap::from([
        (NAMESPACE.to_string(), stack.to_string()),
        (MANAGED.to_string(), "true".to_string()),
        (RECORD.to_string(), record.controller.clone()),
    ]);
    api.create_config(ConfigSpec {
        name: Some(name.clone()),
        labels: Some(labels),
        data: Some(base64::engine::general_purpose::STANDARD.encode(data)),
        ..Default::default()
    })
    .await
    .map_err(|e| e.during("write the record of", &record.controller))?;
    let f = filters(stack, Some(&record.controller));
    let older = api
        .list_configs(Some(&f))
        .await
        .map_err(|e| e.during("list the records of", &record.controller))?;
    for c in older {
        let Some(old) = c.spec.and_then(|s| s.name) else {
            continue;
        };
        // Names sort by time (fixed-width nanoseconds): only older ones go.
        if old < name {
            let _ = api.remove_config(&old).await;
        }
    }
    Ok(())
}

/// Every controller's last record in STACK, by controller name (the newest when several).
pub async fn list(api: &dyn SwarmApi, stack: &str) -> Result<Vec<Record>, EngineError> {
    let configs = api
        .list_configs(Some(&filters(stack, None)))
        .await
        .map_err(|e| e.during("list the agent's records of stack", stack))?;
    let mut named: Vec<(String, Record)> = configs
        .into_iter()
        .filter_map(|c| {
            let spec = c.spec?;
            let data = base64::engine::general_purpose::STANDARD
                .decode(spec.data.as_deref()?)
                .ok()?;
            Some((spec.name?, serde_json::from_slice::<Record>(&data).ok()?))
        })
        .collect();
    named.sort_by(|a, b| b.0.cmp(&a.0));
    let mut out: Vec<Record> = Vec::new();
    for (_, r) in named {
        if !out.iter().any(|o| o.controller == r.controller) {
            out.push(r);
        }
    }
    out.sort_by(|a, b| a.controller.cmp(&b.controller));
    Ok(out)
}

/// Names of STACK's record configs: a plan keeps them (`up` does not remove what the agent
/// wrote).
pub async fn names(api: &dyn SwarmApi, stack: &str) -> Result<BTreeSet<String>, EngineError> {
    let configs = api
        .list_configs(Some(&filters(stack, None)))
        .await
        .map_err(|e| e.during("list the agent's records of stack", stack))?;
    Ok(configs.into_iter().filter_map(|c| c.spec?.name).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fake::FakeSwarm;

    fn record(controller: &str, decision: &str, at: u64) -> Record {
        Record {
            controller: controller.into(),
            decision: decision.into(),
            error: false,
            at,
        }
    }

    #[tokio::test]
    async fn a_new_record_replaces_the_controllers_older_ones_only() {
        let fake = FakeSwarm::new();
        write(&fake, "demo", &record("jobs", "nothing due", 1))
            .await
            .unwrap();
        write(&fake, "demo", &record("autoscale", "web stays at 2", 2))
            .await
            .unwrap();
        write(&fake, "demo", &record("jobs", "ran backup", 3))
            .await
            .unwrap();
        write(&fake, "other", &record("jobs", "elsewhere", 4))
            .await
            .unwrap();
        let got = list(&fake, "demo").await.unwrap();
        assert_eq!(
            got,
            vec![
                record("autoscale", "web stays at 2", 2),
                record("jobs", "ran backup", 3)
            ]
        );
        // One config per controller is left.
        assert_eq!(names(&fake, "demo").await.unwrap().len(), 2);
        assert_eq!(names(&fake, "other").await.unwrap().len(), 1);
    }
}
