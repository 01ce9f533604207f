//! The swarm's managers as its control plane sees them: each manager's reachability and the
//! leader (read from the node list), and the quorum arithmetic of raft (pure): a swarm of N
//! managers needs a majority, N/2+1 of them, to change anything; with fewer it keeps running
//! its tasks but can no longer schedule, scale, update or answer `docker node ls`.

use std::time::{Duration, Instant};

use bollard::models::{Node, NodeSpecRoleEnum, NodeState};
use bollard::query_parameters::{ListNodesOptions, UpdateNodeOptions};
use bollard::Docker;
use serde::Serialize;

use super::error::{EngineResult, ErrorKind};
use crate::manifest::model::Role;

/// One manager as `twip status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManagerView {
    /// Its swarm node id (not in the JSON: `nodes[]` has it).
    #[serde(skip)]
    pub id: String,
    /// Its hostname.
    pub name: String,
    /// The address other managers reach it at (its raft address without the port).
    pub address: String,
    /// `reachable`, `unreachable` or `unknown`, as the answering manager sees it.
    pub reachability: String,
    pub leader: bool,
}

impl ManagerView {
    pub fn reachable(&self) -> bool {
        self.reachability == "reachable"
    }
}

/// How many managers there are, how many answer, how many a majority needs and how many more
/// may be lost before the control plane stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Quorum {
    pub managers: usize,
    pub reachable: usize,
    pub needed: usize,
    pub tolerates: usize,
}

impl Quorum {
    pub fn of(managers: usize, reachable: usize) -> Quorum {
        let needed = majority(managers);
        Quorum {
            managers,
            reachable,
            needed,
            tolerates: reachable.saturating_sub(needed),
        }
    }

    /// A majority of the managers answers.
    pub fn held(&self) -> bool {
        self.managers > 0 && self.reachable >= self.needed
    }

    /// `quorum: 2 of 3 reachable`.
    pub fn summary(&self) -> String {
        let more = match (self.managers, self.tolerates) {
            (0, _) => String::new(),
            (1, _) => "; a single manager: losing it stops the control plane".into(),
            _ if !self.held() => String::new(),
            (_, 0) => String::new(),
            (_, 1) => "; tolerates the loss of 1 more manager".into(),
            (_, t) => format!("; tolerates the loss of {t} more managers"),
        };
        format!(
            "quorum: {} of {} reachable ({} needed){more}",
            self.reachable, self.managers, self.needed
        )
    }

    /// The warning an operator must see: quorum lost, or one more loss away.
    pub fn warning(&self) -> Option<String> {
        if self.managers <= 1 {
            return None;
        }
        if !self.held() {
            return Some(format!(
                "quorum lost: {} of {} managers reachable, {} needed; the swarm cannot schedule, scale or update until enough managers are back",
                self.reachable, self.managers, self.needed
            ));
        }
        (self.tolerates == 0).then(|| {
            format!(
                "quorum: {} of {} reachable; losing one more manager stops the control plane",
                self.reachable, self.managers
            )
        })
    }
}

/// A majority of `managers`.
pub fn majority(managers: usize) -> usize {
    managers / 2 + 1
}

/// How many managers of `managers` may fail while a majority remains.
pub fn fault_tolerance(managers: usize) -> usize {
    managers.saturating_sub(1) / 2
}

/// Why an even number of managers is refused (None for an odd one, or none at all).
pub fn even_managers_problem(managers: usize) -> Option<String> {
    if managers == 0 || managers % 2 == 1 {
        return None;
    }
    Some(format!(
        "{managers} managers: raft needs a majority ({} of {managers}) to change anything, so {managers} managers tolerate the loss of {}, no more than {} would, and are one more machine that can fail; use {} or {} managers",
        majority(managers),
        fault_tolerance(managers),
        managers - 1,
        managers - 1,
        managers + 1
    ))
}

/// The quorum that would remain after the manager `name` is removed (demoted).
pub fn after_removal(managers: &[ManagerView], name: &str) -> Quorum {
    let rest: Vec<&ManagerView> = managers.iter().filter(|m| m.name != name).collect();
    Quorum::of(rest.len(), rest.iter().filter(|m| m.reachable()).count())
}

/// The quorum of a list of managers.
pub fn quorum_of(managers: &[ManagerView]) -> Quorum {
    Quorum::of(
        managers.len(),
        managers.iter().filter(|m| m.reachable()).count(),
    )
}

/// The managers among the engine's nodes, by name.
pub fn managers_of(nodes: &[Node]) -> Vec<ManagerView> {
    let mut out: Vec<ManagerView> = nodes
        .iter()
        .filter(|n| n.spec.as_ref().and_then(|s| s.role) == Some(NodeSpecRoleEnum::MANAGER))
        .map(|n| {
            let ms = n.manager_status.clone().unwrap_or_default();
            let addr = ms.addr.unwrap_or_default();
            ManagerView {
                id: n.id.clone().unwrap_or_default(),
                name: n
                    .description
                    .as_ref()
                    .and_then(|d| d.hostname.clone())
                    .unwrap_or_default(),
                address: addr
                    .rsplit_once(':')
                    .map_or(addr.clone(), |(h, _)| h.to_string()),
                reachability: ms
                    .reachability
                    .map_or("unknown".to_string(), |r| r.to_string()),
                leader: ms.leader.unwrap_or(false),
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The hostnames of the nodes the swarm marks down (managers and workers).
pub fn down_nodes(nodes: &[Node]) -> Vec<String> {
    let mut out: Vec<String> = nodes
        .iter()
        .filter(|n| n.status.as_ref().and_then(|s| s.state) == Some(NodeState::DOWN))
        .filter_map(|n| n.description.as_ref()?.hostname.clone())
        .collect();
    out.sort();
    out
}

/// The swarm's managers, as the manager `docker` sees them.
pub async fn list_managers(docker: &Docker) -> anyhow::Result<Vec<ManagerView>> {
    let nodes = docker
        .list_nodes(None::<ListNodesOptions>)
        .await
        .engine("list nodes", "")?;
    Ok(managers_of(&nodes))
}

/// The order nodes join in: managers first, one at a time in the given order (each changes
/// the raft membership, and a manager joining while another is still catching up can cost
/// quorum), then the workers (at once). Takes (index, role) of the nodes to join.
pub fn join_order(free: &[(usize, Role)]) -> (Vec<usize>, Vec<usize>) {
    let of = |r: Role| -> Vec<usize> {
        free.iter()
            .filter(|(_, role)| *role == r)
            .map(|(i, _)| *i)
            .collect()
    };
    (of(Role::Manager), of(Role::Worker))
}

/// Demotes the manager `node_id` to a worker and waits (up to `within`) until it has left the
/// raft group. Returns false when it was not a manager.
pub async fn demote(
    docker: &Docker,
    node_id: &str,
    name: &str,
    within: Duration,
) -> anyhow::Result<bool> {
    for attempt in 0..5 {
        let node = docker
            .inspect_node(node_id)
            .await
            .engine("inspect node", name)?;
        let mut spec = node.spec.unwrap_or_default();
        if spec.role != Some(NodeSpecRoleEnum::MANAGER) {
            return Ok(false);
        }
        spec.role = Some(NodeSpecRoleEnum::WORKER);
        let version = node.version.and_then(|v| v.index).unwrap_or_default() as i64;
        match docker
            .update_node(node_id, spec, UpdateNodeOptions { version })
            .await
            .engine("demote", name)
        {
            Ok(()) => break,
            Err(e) if e.kind == ErrorKind::OutOfSequence && attempt < 4 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let deadline = Instant::now() + within;
    loop {
        let node = docker
            .inspect_node(node_id)
            .await
            .engine("inspect node", name)?;
        if node.manager_status.is_none() {
            return Ok(true);
        }
        if Instant::now() > deadline {
            return Err(crate::exit::coded(
                crate::exit::TIMEOUT,
                format!(
                    "{name} was demoted but is still in the raft group after {}s",
                    within.as_secs()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managers_join_first_in_order_then_workers() {
        let free = [
            (0, Role::Worker),
            (1, Role::Manager),
            (2, Role::Worker),
            (4, Role::Manager),
        ];
        assert_eq!(join_order(&free), (vec![1, 4], vec![0, 2]));
        assert_eq!(join_order(&[]), (vec![], vec![]));
    }

    fn m(name: &str, reach: &str, leader: bool) -> ManagerView {
        ManagerView {
            id: name.into(),
            name: name.into(),
            address: format!("10.0.0.{}", name.len()),
            reachability: reach.into(),
            leader,
        }
    }

    #[test]
    fn quorum_arithmetic() {
        let q = Quorum::of(3, 3);
        assert_eq!((q.needed, q.tolerates, q.held()), (2, 1, true));
        assert_eq!(q.warning(), None);
        let q = Quorum::of(3, 2);
        assert_eq!((q.needed, q.tolerates, q.held()), (2, 0, true));
        assert_eq!(
            q.warning().unwrap(),
            "quorum: 2 of 3 reachable; losing one more manager stops the control plane"
        );
        let q = Quorum::of(3, 1);
        assert!(!q.held());
        assert!(q.warning().unwrap().starts_with("quorum lost: 1 of 3"));
        let q = Quorum::of(5, 5);
        assert_eq!((q.needed, q.tolerates), (3, 2));
        assert!(q
            .summary()
            .ends_with("tolerates the loss of 2 more managers"));
        // Four managers tolerate no more than three do.
        assert_eq!(Quorum::of(4, 4).tolerates, 1);
        assert!(Quorum::of(4, 3).warning().is_some());
        assert_eq!(Quorum::of(2, 2).tolerates, 0);
        assert!(Quorum::of(2, 2).warning().is_some());
        // A single manager: no warning on every status, but the summary says it.
        assert_eq!(Quorum::of(1, 1).warning(), None);
        assert!(Quorum::of(1, 1).summary().contains("single manager"));
        assert_eq!(
            (1..=7).map(fault_tolerance).collect::<Vec<_>>(),
            [0, 0, 1, 1, 2, 2, 3]
        );
    }

    #[test]
    fn even_manager_counts_are_explained() {
        for odd in [0, 1, 3, 5, 7] {
            assert_eq!(even_managers_problem(odd), None, "{odd}");
        }
        let e = even_managers_problem(4).unwrap();
        assert!(e.contains("majority (3 of 4)"), "{e}");
        assert!(e.contains("tolerate the loss of 1"), "{e}");
        assert!(e.contains("use 3 or 5 managers"), "{e}");
        assert!(even_managers_problem(2).unwrap().contains("use 1 or 3"));
    }

    #[test]
    fn removing_a_manager_is_judged_on_what_remains() {
        let all = [
            m("a", "reachable", true),
            m("bb", "reachable", false),
            m("ccc", "reachable", false),
        ];
        // 3 healthy: removing one leaves 2 of 2 (held, nothing to spare).
        let q = after_removal(&all, "bb");
        assert_eq!(
            (q.managers, q.reachable, q.held(), q.tolerates),
            (2, 2, true, 0)
        );
        // One unreachable: removing a reachable one leaves 1 of 2 (lost) ...
        let one_down = [
            m("a", "reachable", true),
            m("bb", "unreachable", false),
            m("ccc", "reachable", false),
        ];
        assert!(!after_removal(&one_down, "ccc").held());
        // ... removing the unreachable one leaves 2 of 2.
        assert!(after_removal(&one_down, "bb").held());
        assert_eq!(quorum_of(&one_down), Quorum::of(3, 2));
    }

    #[test]
    fn managers_and_down_nodes_are_read_from_the_node_list() {
        let nodes: Vec<Node> = serde_json::from_value(serde_json::json!([
            {"ID": "w", "Description": {"Hostname": "w1"}, "Spec": {"Role": "worker"},
             "Status": {"State": "ready", "Addr": "10.0.0.4"}},
            {"ID": "b", "Description": {"Hostname": "m2"}, "Spec": {"Role": "manager"},
             "Status": {"State": "down", "Addr": "10.0.0.2"},
             "ManagerStatus": {"Reachability": "unreachable", "Addr": "10.0.0.2:2377"}},
            {"ID": "a", "Description": {"Hostname": "m1"}, "Spec": {"Role": "manager"},
             "Status": {"State": "ready", "Addr": "0.0.0.0"},
             "ManagerStatus": {"Leader": true, "Reachability": "reachable", "Addr": "10.0.0.1:2377"}}
        ]))
        .unwrap();
        let ms = managers_of(&nodes);
        let got: Vec<String> = ms
            .iter()
            .map(|m| format!("{} {} {} {}", m.name, m.address, m.reachability, m.leader))
            .collect();
        assert_eq!(
            got,
            [
                "m1 10.0.0.1 reachable true",
                "m2 10.0.0.2 unreachable false"
            ]
        );
        assert_eq!(down_nodes(&nodes), ["m2"]);
        assert_eq!(quorum_of(&ms), Quorum::of(2, 1));
    }
}
