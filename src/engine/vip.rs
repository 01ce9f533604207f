//! Who holds the floating address (`proxy.vip`): each running keepalived task's last VRRP state,
//! read from its log ("(twip) Entering MASTER STATE"), on the nodes swarm sees as ready. The
//! holder is the node whose keepalived last entered MASTER.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::TaskState;
use futures_util::StreamExt;
use serde::Serialize;

use super::api::SwarmApi;
use super::error::EngineResult;
use super::observe::task_logs;
use super::Docker;
use crate::manifest::validate::VIP_SERVICE;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VipStatus {
    pub address: String,
    /// The node whose keepalived is MASTER; `None` while no node holds it (or none says so).
    pub holder: Option<String>,
    /// Each running keepalived, by node: its last state (`MASTER`, `BACKUP`, `FAULT`, or
    /// `unknown` when its log could not be read or has no state yet).
    pub nodes: Vec<VipNode>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VipNode {
    pub node: String,
    pub state: String,
}

/// The last VRRP state a keepalived log reports (`MASTER`, `BACKUP`, `FAULT`, `INIT`).
pub fn last_state(log: &str) -> Option<String> {
    log.lines().rev().find_map(|l| {
        let rest = &l[l.find("Entering ")? + "Entering ".len()..];
        let state = rest.strip_suffix(" STATE").or_else(|| {
            rest.split_once(" STATE")
                .map(|(s, _)| s)
                .filter(|s| !s.contains(' '))
        })?;
        Some(state.trim().to_string())
    })
}

/// The holder among NODES: a node whose keepalived is MASTER (the first, in node order).
pub fn holder(nodes: &[VipNode]) -> Option<String> {
    nodes
        .iter()
        .find(|n| n.state == "MASTER")
        .map(|n| n.node.clone())
}

/// The swarm's nodes whose state is ready (a node that is down holds no address and serves
/// nothing, whatever its last tasks say).
async fn ready_nodes(docker: &Docker) -> anyhow::Result<Vec<crate::engine::model::Node>> {
    let nodes = docker.list_nodes(None).await.engine("list nodes", "")?;
    Ok(nodes
        .into_iter()
        .filter(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.state)
                .is_some_and(|s| s.to_string() == "ready")
        })
        .collect())
}

/// The status of the address of STACK's `vip` service (`docker` must be a manager).
pub async fn vip_status(docker: &Docker, stack: &str, address: &str) -> anyhow::Result<VipStatus> {
    let service = format!("{stack}_{VIP_SERVICE}");
    let ready: HashMap<String, String> = ready_nodes(docker)
        .await?
        .iter()
        .filter_map(|n| Some((n.id.clone()?, n.description.as_ref()?.hostname.clone()?)))
        .collect();
    let tasks = SwarmApi::list_tasks(docker, &service).await?;
    let mut out = Vec::new();
    for t in tasks {
        let running = t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING);
        let (Some(id), Some(node)) = (t.id.clone(), t.node_id.clone()) else {
            continue;
        };
        let Some(hostname) = ready.get(&node).filter(|_| running) else {
            continue;
        };
        let log = read_log(docker, &id).await;
        out.push(VipNode {
            node: hostname.clone(),
            state: last_state(&log).unwrap_or_else(|| "unknown".into()),
        });
    }
    out.sort_by(|a, b| a.node.cmp(&b.node));
    Ok(VipStatus {
        address: address.to_string(),
        holder: holder(&out),
        nodes: out,
    })
}

/// The proxy's addresses as they are: `http://ADDRESS[:PORT]/` of each ready node running a
/// task of STACK's proxy (the targets for a load balancer or DNS in front), sorted.
pub async fn proxy_entrypoints(
    docker: &Docker,
    stack: &str,
    port: u16,
) -> anyhow::Result<Vec<String>> {
    let service = format!("{stack}_{}", crate::manifest::validate::PROXY_SERVICE);
    let addresses: HashMap<String, String> = ready_nodes(docker)
        .await?
        .iter()
        .filter_map(|n| Some((n.id.clone()?, n.status.as_ref()?.addr.clone()?)))
        .collect();
    let tasks = SwarmApi::list_tasks(docker, &service).await?;
    let mut out: Vec<String> = tasks
        .iter()
        .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING))
        .filter_map(|t| addresses.get(t.node_id.as_ref()?))
        .map(|a| url(a, port))
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// `http://ADDRESS[:PORT]/` (IPv6 in brackets).
pub fn url(address: &str, port: u16) -> String {
    let host = if address.contains(':') {
        format!("[{address}]")
    } else {
        address.to_string()
    };
    match port {
        80 => format!("http://{host}/"),
        port => format!("http://{host}:{port}/"),
    }
}

/// The last lines of a task's log, or what arrived within 3 s (a node that just died may
/// never answer).
async fn read_log(docker: &Docker, task: &str) -> String {
    let mut stream = Box::pin(task_logs(docker, task, false, Some(1000)));
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, stream.next()).await {
        text.push_str(&chunk);
        if !chunk.ends_with('\n') {
            text.push('\n');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_state_in_a_log_wins() {
        let log = "twip-vip: 10.0.0.9 on eth0 (this node: 10.0.0.2)\n\
            Mon Dec  1 02:00:00 2026: (twip) Entering BACKUP STATE (init)\n\
            Mon Dec  1 02:00:02 2026: (twip) Entering MASTER STATE\n";
        assert_eq!(last_state(log).as_deref(), Some("MASTER"));
        let later = format!("{log}Mon Dec  1 02:01:00 2026: (twip) Entering FAULT STATE\n");
        assert_eq!(last_state(&later).as_deref(), Some("FAULT"));
        assert_eq!(last_state("twip-vip: starting\n"), None);
        assert_eq!(last_state(""), None);
    }

    #[test]
    fn urls_bracket_ipv6_and_omit_port_80() {
        assert_eq!(url("10.0.0.1", 80), "http://10.0.0.1/");
        assert_eq!(url("10.0.0.1", 8080), "http://10.0.0.1:8080/");
        assert_eq!(url("fd00::1", 80), "http://[fd00::1]/");
    }

    #[test]
    fn the_holder_is_the_master() {
        let n = |node: &str, state: &str| VipNode {
            node: node.into(),
            state: state.into(),
        };
        assert_eq!(
            holder(&[n("a", "BACKUP"), n("b", "MASTER"), n("c", "FAULT")]).as_deref(),
            Some("b")
        );
        assert_eq!(holder(&[n("a", "BACKUP"), n("b", "unknown")]), None);
        assert_eq!(holder(&[]), None);
    }
}
