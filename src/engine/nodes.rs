//! The swarm's nodes: listed as twip shows them ([`NodeStatus`]), and a node's own view of its
//! membership, and waiting until a node runs no task.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bollard::models::TaskState;
use bollard::query_parameters::ListTasksOptions;
use bollard::Docker;
use serde::Serialize;

use super::error::{EngineError, EngineResult};

#[derive(Debug, Serialize)]
pub struct NodeStatus {
    pub id: String,
    pub hostname: String,
    pub role: String,
    pub state: String,
    pub availability: String,
    pub leader: bool,
    pub address: String,
    pub engine_version: String,
    pub architecture: String,
    pub labels: BTreeMap<String, String>,
}

fn s<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// Nodes as status shows them: managers first, then by hostname.
pub fn node_list(nodes: &[bollard::models::Node]) -> Vec<NodeStatus> {
    let mut out = Vec::new();
    for n in nodes {
        let spec = n.spec.clone().unwrap_or_default();
        let desc = n.description.clone().unwrap_or_default();
        out.push(NodeStatus {
            id: s(n.id.clone()),
            hostname: s(desc.hostname.clone()),
            role: s(spec.role),
            state: s(n.status.as_ref().and_then(|x| x.state)),
            availability: s(spec.availability),
            leader: n
                .manager_status
                .as_ref()
                .and_then(|m| m.leader)
                .unwrap_or(false),
            address: s(n.status.as_ref().and_then(|x| x.addr.clone())),
            engine_version: s(desc.engine.as_ref().and_then(|e| e.engine_version.clone())),
            architecture: s(desc.platform.as_ref().and_then(|p| p.architecture.clone())),
            labels: spec.labels.unwrap_or_default().into_iter().collect(),
        });
    }
    out.sort_by_key(|n| (n.role != "manager", n.hostname.clone()));
    out
}

/// The swarm's nodes, as [`node_list`] orders them (`docker` must be a manager).
pub async fn collect_nodes(docker: &Docker) -> anyhow::Result<Vec<NodeStatus>> {
    Ok(node_list(
        &docker.list_nodes(None).await.engine("list nodes", "")?,
    ))
}

/// The swarm node id of the engine `docker`, by its own view (`None` when it does not answer
/// or is in no swarm).
pub async fn own_node_id(docker: &Docker) -> Option<String> {
    let info = docker.info().await.ok()?;
    info.swarm.and_then(|s| s.node_id).filter(|s| !s.is_empty())
}

/// The address each node is reached at, by node id (see [`node_address`]).
pub async fn addresses(docker: &Docker) -> Result<HashMap<String, String>, EngineError> {
    Ok(docker
        .list_nodes(None)
        .await
        .engine("list nodes", "")?
        .into_iter()
        .filter_map(|n| Some((n.id.clone()?, node_address(&n)?)))
        .collect())
}

/// The address a node is reached at: its status address, or its manager address when the
/// status says 0.0.0.0 (as it does for some managers).
fn node_address(n: &bollard::models::Node) -> Option<String> {
    let a = n.status.as_ref()?.addr.clone()?;
    if a != "0.0.0.0" && !a.is_empty() {
        return Some(a);
    }
    let m = n.manager_status.as_ref()?.addr.clone()?;
    Some(m.rsplit_once(':').map_or(m.clone(), |(h, _)| h.to_string()))
}

/// Waits until no task runs on the node (exit [`crate::exit::TIMEOUT`] after `deadline`).
pub async fn wait_node_empty(
    mgr: &Docker,
    node_id: &str,
    name: &str,
    deadline: Instant,
    timeout: Duration,
) -> anyhow::Result<()> {
    loop {
        let tasks = mgr
            .list_tasks(Some(ListTasksOptions {
                filters: Some(HashMap::from([(
                    "node".to_string(),
                    vec![node_id.to_string()],
                )])),
            }))
            .await
            .engine("list tasks", name)?;
        let running = tasks
            .iter()
            .filter(|t| {
                matches!(
                    t.status.as_ref().and_then(|s| s.state),
                    Some(
                        TaskState::RUNNING
                            | TaskState::STARTING
                            | TaskState::PREPARING
                            | TaskState::ASSIGNED
                            | TaskState::ACCEPTED
                    )
                )
            })
            .count();
        if running == 0 {
            break;
        }
        if Instant::now() > deadline {
            return Err(crate::exit::coded(
                crate::exit::TIMEOUT,
                format!(
                    "{running} tasks still run on {name} after {}s",
                    timeout.as_secs()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}
