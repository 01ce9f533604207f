//! The agent's records: each controller's last decision, kept in the swarm (not on a node's
//! disk) so that `twip status` can show it and a restarted agent is seen to have acted. One
//! swarm config per controller, `STACK_rec_CONTROLLER_MICROS` (microseconds, 16 hex digits;
//! config names have at most 64 characters), labelled with the
//! stack's namespace and `io.twip.record=CONTROLLER`, holding a [`Record`] as JSON. Configs
//! cannot change, so a new decision is a new config, and the older ones of that controller
//! are removed right after it is written. A round run at a request's asking (see
//! [`super::requests`]) carries the request's id, which the asker waits for. A plan keeps them (they are not the manifest's, see
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
    /// The id of the request this round answered (see [`super::requests`]), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// The round's outcome in a word ([`crate::agent::Round::outcome`]), if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
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

/// The engine's longest config name.
const MAX_NAME: usize = 64;

/// A config name holds letters, digits, `_`, `-`, `.`; a controller's name is one of twip's.
fn config_name(stack: &str, controller: &str, micros: u64) -> String {
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
    let tail = format!("_rec_{safe}_{micros:016x}");
    // A long stack name is cut (records are found by their labels, not their names).
    let room = MAX_NAME.saturating_sub(tail.len());
    let head: String = stack.chars().take(room).collect();
    format!("{head}{tail}")
}

/// Writes RECORD as the controller's last decision in STACK, then removes that controller's
/// older records (a failed removal is left for the next write).
pub async fn write(api: &dyn SwarmApi, stack: &str, record: &Record) -> Result<(), EngineError> {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let name = config_name(stack, &record.controller, micros);
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
        // Names sort by time (fixed-width microseconds): only older ones go.
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

/// The agent of a stack as `twip status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AgentStatus {
    /// Its service (`STACK_agent`).
    pub service: String,
    /// Whether a task of it runs.
    pub running: bool,
    /// The node of its running task (hostname).
    pub node: Option<String>,
    /// Each controller's last decision.
    pub controllers: Vec<Record>,
}

/// The agent of STACK (a service labelled `io.twip.agent=true`) and its records; `None`
/// when the stack runs no agent.
pub async fn agent_status(
    docker: &super::Docker,
    stack: &str,
) -> Result<Option<AgentStatus>, EngineError> {
    let api: &dyn SwarmApi = docker;
    let f = HashMap::from([(
        "label".to_string(),
        vec![
            format!("{NAMESPACE}={stack}"),
            format!("{}=true", crate::labels::AGENT),
        ],
    )]);
    let services = api
        .list_services(&f)
        .await
        .map_err(|e| e.during("list the agent of stack", stack))?;
    let Some(name) = services
        .into_iter()
        .find_map(|s| s.spec.and_then(|s| s.name))
    else {
        return Ok(None);
    };
    let tasks = api.list_tasks(&name).await?;
    // A task the swarm has given up (desired shutdown: its node is down) may still read
    // running; the agent runs where a task is meant to run and runs.
    let running = tasks.iter().find(|t| {
        t.status.as_ref().and_then(|s| s.state) == Some(super::model::TaskState::RUNNING)
            && t.desired_state
                .is_none_or(|d| d == super::model::TaskState::RUNNING)
    });
    let node = match running.and_then(|t| t.node_id.clone()) {
        Some(id) => docker
            .inspect_node(&id)
            .await
            .ok()
            .and_then(|n| n.description?.hostname)
            .or(Some(id)),
        None => None,
    };
    Ok(Some(AgentStatus {
        service: name,
        running: running.is_some(),
        node,
        controllers: list(api, stack).await?,
    }))
}

/// The lines `twip status` prints about the agent.
pub fn status_lines(a: &AgentStatus) -> Vec<String> {
    let mut out = vec![match (&a.node, a.running) {
        (Some(node), true) => format!("agent: running on {node}"),
        _ => "agent: not running".to_string(),
    }];
    for r in &a.controllers {
        let at =
            humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_secs(r.at));
        let what = if r.error { "error: " } else { "" };
        out.push(format!("  {}: {what}{} ({at})", r.controller, r.decision));
    }
    if a.controllers.is_empty() {
        out.push("  no decisions recorded".to_string());
    }
    out
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
            request: None,
            outcome: None,
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

    #[test]
    fn record_names_fit_the_engines_limit_and_sort_by_time() {
        let long = "s".repeat(80);
        let a = config_name(&long, "autoscale", 1);
        let b = config_name(&long, "autoscale", 16);
        assert_eq!(a.len(), MAX_NAME);
        assert!(a < b);
        assert_eq!(
            config_name("demo", "jobs", 255),
            "demo_rec_jobs_00000000000000ff"
        );
    }

    #[test]
    fn status_shows_where_the_agent_runs_and_each_decision() {
        let mut a = AgentStatus {
            service: "demo_agent".into(),
            running: true,
            node: Some("m1".into()),
            controllers: vec![record("jobs", "nothing due", 0)],
        };
        a.controllers[0].at = 1_796_121_600;
        assert_eq!(
            status_lines(&a),
            [
                "agent: running on m1",
                "  jobs: nothing due (2026-12-01T10:40:00Z)"
            ]
        );
        a.running = false;
        a.controllers.clear();
        assert_eq!(
            status_lines(&a),
            ["agent: not running", "  no decisions recorded"]
        );
    }
}
