//! A service's running tasks as `twip exec` reaches them: which ones a command names (pure:
//! [`choose`]), and the engine of the node that holds each ([`nodes`], [`connect`]): the
//! manager twip talks to, a lab node's own engine, or a manifest node's (`ssh://`, TLS).

use std::collections::BTreeSet;

use crate::context::Target;
use crate::engine::model::{Task, TaskState};
use crate::engine::{self, Docker, Endpoint};
use crate::exec::ssh::Tunnel;
use crate::exit;
use crate::manifest::validate::{MONITORING_SERVICE, PROXY_SERVICE};
use crate::nodes::NodeTarget;

/// Which tasks a command names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    /// The first running task by slot (the default).
    First,
    /// The running task in slot N (`--task N`).
    Slot(u64),
    /// A running task on the node of this name (`--node NAME`).
    Node(String),
    /// Every running task (`--all`).
    All,
}

/// A swarm node as `exec` knows it: its id, the name shown (the swarm's hostname), every name
/// `--node` may use for it, and how its engine is reached.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub name: String,
    pub aliases: Vec<String>,
    pub address: String,
    pub reach: Reach,
}

/// How a node's engine is reached.
#[derive(Debug, Clone)]
pub enum Reach {
    /// It is the manager twip is connected to.
    Manager,
    /// A lab node's engine.
    Endpoint(Endpoint),
    /// A node of the manifest (`nodes[].engine`, else `ssh://`).
    Manifest(Box<NodeTarget>),
    /// Neither: a node twip has no engine for.
    Unknown,
}

/// A running task chosen to run a command in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    /// `web.2` (a global service's task: `proxy.` and the first 6 characters of its id).
    pub task: String,
    pub slot: Option<i64>,
    pub node_id: String,
    /// The node's name (its swarm hostname), or its id when the swarm does not list it.
    pub node: String,
    pub container: String,
}

impl Chosen {
    /// `web.2@worker-1`: how the task is named in prefixes and messages.
    pub fn label(&self) -> String {
        format!("{}@{}", self.task, self.node)
    }
}

fn state(t: &Task) -> Option<TaskState> {
    t.status.as_ref().and_then(|s| s.state)
}

fn container_of(t: &Task) -> Option<String> {
    t.status
        .as_ref()?
        .container_status
        .as_ref()?
        .container_id
        .clone()
        .filter(|c| !c.is_empty())
}

fn task_name(service: &str, t: &Task) -> String {
    match t.slot {
        Some(slot) => format!("{service}.{slot}"),
        None => {
            let id: String = t.id.as_deref().unwrap_or("").chars().take(6).collect();
            format!("{service}.{id}")
        }
    }
}

/// The tasks of SERVICE (in environment ENV) that PICK names, in slot order, from the tasks
/// the swarm lists for it and its NODES. Errors: exit 2 for a slot or node that does not
/// exist (with the ones that do), exit 1 when nothing runs where asked.
pub fn choose(
    env: &str,
    service: &str,
    tasks: &[Task],
    nodes: &[Node],
    pick: &Pick,
) -> anyhow::Result<Vec<Chosen>> {
    let node_name = |id: &str| {
        nodes
            .iter()
            .find(|n| n.id == id)
            .map_or_else(|| id.chars().take(12).collect(), |n| n.name.clone())
    };
    let wanted: Vec<&Task> = tasks
        .iter()
        .filter(|t| t.desired_state == Some(TaskState::RUNNING))
        .collect();
    let mut running: Vec<Chosen> = wanted
        .iter()
        .filter(|t| state(t) == Some(TaskState::RUNNING))
        .filter_map(|t| {
            let node_id = t.node_id.clone().unwrap_or_default();
            Some(Chosen {
                task: task_name(service, t),
                slot: t.slot,
                node: node_name(&node_id),
                node_id,
                container: container_of(t)?,
            })
        })
        .collect();
    running.sort_by(|a, b| (a.slot, &a.node, &a.task).cmp(&(b.slot, &b.node, &b.task)));
    let none_running = || {
        exit::coded(
            exit::FAILURE,
            format!("{env}: {service} has no running task (is it up? `twip status {env}`)"),
        )
    };
    match pick {
        Pick::All | Pick::First if running.is_empty() => Err(none_running()),
        Pick::All => Ok(running),
        Pick::First => Ok(running.into_iter().take(1).collect()),
        Pick::Slot(n) => {
            if !wanted.is_empty() && wanted.iter().all(|t| t.slot.is_none()) {
                return Err(exit::invalid(format!(
                    "{env}: {service} is a global service: its tasks have no slots; pick one with --node NAME"
                )));
            }
            if let Some(c) = running.iter().find(|c| c.slot == Some(*n as i64)) {
                return Ok(vec![c.clone()]);
            }
            if let Some(t) = wanted.iter().find(|t| t.slot == Some(*n as i64)) {
                let st = state(t).map_or_else(|| "unknown".into(), |s| s.to_string());
                let msg = t
                    .status
                    .as_ref()
                    .and_then(|s| s.err.clone().or_else(|| s.message.clone()))
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default();
                return Err(exit::coded(
                    exit::FAILURE,
                    format!("{env}: {service}.{n} is not running (it is {st}{msg})"),
                ));
            }
            let slots: BTreeSet<i64> = wanted.iter().filter_map(|t| t.slot).collect();
            let list: Vec<String> = slots.iter().map(i64::to_string).collect();
            Err(exit::invalid(if list.is_empty() {
                format!("{env}: {service} has no task in slot {n}: it has no tasks")
            } else {
                format!(
                    "{env}: {service} has no task in slot {n}; its slots: {}",
                    list.join(", ")
                )
            }))
        }
        Pick::Node(name) => {
            let ids: Vec<&str> = nodes
                .iter()
                .filter(|n| &n.name == name || n.aliases.contains(name) || &n.id == name)
                .map(|n| n.id.as_str())
                .collect();
            if ids.is_empty() {
                let mut known: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
                known.extend(
                    nodes
                        .iter()
                        .flat_map(|n| n.aliases.iter().map(String::as_str)),
                );
                known.sort_unstable();
                known.dedup();
                let hint = crate::suggest::hint(name, &known);
                return Err(exit::invalid(format!(
                    "{env}: no node `{name}` in the swarm{hint} (nodes: {})",
                    nodes
                        .iter()
                        .map(|n| n.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            match running.iter().find(|c| ids.contains(&c.node_id.as_str())) {
                Some(c) => Ok(vec![c.clone()]),
                None if running.is_empty() => Err(none_running()),
                None => {
                    let on: BTreeSet<&str> = running.iter().map(|c| c.node.as_str()).collect();
                    Err(exit::coded(
                        exit::FAILURE,
                        format!(
                            "{env}: no running task of {service} on {name}; it runs on: {}",
                            on.into_iter().collect::<Vec<_>>().join(", ")
                        ),
                    ))
                }
            }
        }
    }
}

/// Whether ENV has a service of this name (its own, or the proxy or monitoring twip adds);
/// else the did-you-mean error (exit 2).
pub fn check_service(t: &Target, service: &str) -> anyhow::Result<()> {
    let m = &t.env.manifest;
    let agent = crate::agent::for_stack(&t.env, &t.project.dir)?.is_some();
    let agent_name = crate::manifest::validate::AGENT_SERVICE;
    let known = m.services.contains_key(service)
        || (service == PROXY_SERVICE && m.proxy.is_some())
        || (service == MONITORING_SERVICE && m.monitoring.is_some())
        || (service == agent_name && agent);
    if known {
        return Ok(());
    }
    let mut names: Vec<&str> = m.services.keys().map(String::as_str).collect();
    if agent {
        names.push(agent_name);
    }
    if m.proxy.is_some() {
        names.push(PROXY_SERVICE);
    }
    if m.monitoring.is_some() {
        names.push(MONITORING_SERVICE);
    }
    Err(exit::invalid(crate::suggest::no_service(
        &t.env.name,
        service,
        &names,
    )))
}

/// The service's tasks, as the manager lists them (none when it is not deployed).
pub async fn of_service(t: &Target, service: &str) -> anyhow::Result<Vec<Task>> {
    let full = format!("{}_{service}", t.env.stack());
    match engine::observe::tasks(&t.docker, &full).await {
        Err(e) if e.kind == engine::ErrorKind::NotFound => Ok(Vec::new()),
        r => Ok(r?),
    }
}

/// The swarm's nodes, each with the engine that reaches it: the manager's own node, else (on a
/// lab) the lab node of that hostname or address, else the manifest's node of that name or
/// address.
pub async fn nodes(t: &Target) -> anyhow::Result<Vec<Node>> {
    let listed = engine::nodes::collect_nodes(&t.docker).await?;
    let own = engine::nodes::own_node_id(&t.docker).await;
    let manifest = crate::nodes::node_targets(&t.env, t.lab.as_ref()).unwrap_or_default();
    Ok(listed
        .into_iter()
        .map(|n| {
            let target = manifest.iter().find(|m| {
                m.hostname == n.hostname || (!n.address.is_empty() && m.advertise == n.address)
            });
            let mut aliases: Vec<String> =
                target.map(|m| m.spec.name.clone()).into_iter().collect();
            aliases.retain(|a| *a != n.hostname);
            let lab_node = t.lab.as_ref().and_then(|l| {
                l.nodes
                    .iter()
                    .find(|x| x.name == n.hostname || x.address == n.address)
            });
            let reach = if own.as_deref() == Some(n.id.as_str()) {
                Reach::Manager
            } else if let Some(l) = lab_node {
                Reach::Endpoint(l.endpoint())
            } else if let Some(m) = target {
                Reach::Manifest(Box::new(m.clone()))
            } else {
                Reach::Unknown
            };
            Node {
                id: n.id,
                name: n.hostname,
                aliases,
                address: n.address,
                reach,
            }
        })
        .collect())
}

/// A connection to the engine of NODE (the manager's own when it is the manager), where it
/// was reached (for `-v`), and the SSH tunnel that must live as long as the connection.
pub async fn connect(
    t: &Target,
    node: Option<&Node>,
    label: &str,
) -> anyhow::Result<(Docker, String, Option<Tunnel>)> {
    let Some(node) = node else {
        return Err(anyhow::anyhow!(
            "{label}: its node is not in the swarm's node list"
        ));
    };
    match &node.reach {
        Reach::Manager => Ok((t.docker.clone(), t.endpoint.url.clone(), None)),
        Reach::Endpoint(ep) => Ok((engine::connect(ep).await?, ep.url.clone(), None)),
        Reach::Manifest(m) => {
            let (d, tunnel) = crate::nodes::connect_node(m, &t.project.dir).await?;
            Ok((d, m.endpoint.url.clone(), tunnel))
        }
        Reach::Unknown => Err(anyhow::anyhow!(
            "{label} runs on node {} ({}), whose engine twip does not know: it is not the \
             manager twip talks to{}; list it under `nodes:` with its `engine` (or ssh) in {}",
            node.name,
            node.address,
            if t.lab.is_some() {
                " nor a node of the lab"
            } else {
                ""
            },
            t.env.name
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::{ContainerStatus, TaskStatus};

    fn task(id: &str, slot: Option<i64>, node: &str, state: TaskState, desired: TaskState) -> Task {
        Task {
            id: Some(id.into()),
            slot,
            node_id: Some(node.into()),
            desired_state: Some(desired),
            status: Some(TaskStatus {
                state: Some(state),
                message: Some(state.to_string()),
                container_status: Some(ContainerStatus {
                    container_id: Some(format!("c{id}")),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn node(id: &str, name: &str, alias: &str) -> Node {
        Node {
            id: id.into(),
            name: name.into(),
            aliases: vec![alias.into()],
            address: String::new(),
            reach: Reach::Unknown,
        }
    }

    fn nodes() -> Vec<Node> {
        vec![
            node("n1", "lab-manager-1", "manager-1"),
            node("n2", "lab-worker-1", "worker-1"),
            node("n3", "lab-worker-2", "worker-2"),
        ]
    }

    const R: TaskState = TaskState::RUNNING;

    /// web: slot 3 on n3, slot 1 on n2, slot 2 on n2, an old task of slot 1 shut down, and a
    /// task of slot 4 still starting.
    fn web() -> Vec<Task> {
        vec![
            task("t3", Some(3), "n3", R, R),
            task("t1", Some(1), "n2", R, R),
            task(
                "t0",
                Some(1),
                "n3",
                TaskState::SHUTDOWN,
                TaskState::SHUTDOWN,
            ),
            task("t2", Some(2), "n2", R, R),
            task("t4", Some(4), "n1", TaskState::STARTING, R),
        ]
    }

    fn labels(c: &[Chosen]) -> Vec<String> {
        c.iter().map(Chosen::label).collect()
    }

    fn pick(p: Pick) -> anyhow::Result<Vec<Chosen>> {
        choose("prod", "web", &web(), &nodes(), &p)
    }

    fn code(e: &anyhow::Error) -> i32 {
        exit::code_for(e)
    }

    #[test]
    fn the_default_is_the_first_running_task_by_slot() {
        let c = pick(Pick::First).unwrap();
        assert_eq!(labels(&c), ["web.1@lab-worker-1"]);
        assert_eq!(c[0].container, "ct1");
        assert_eq!(c[0].node_id, "n2");
    }

    #[test]
    fn all_is_every_running_task_in_slot_order() {
        let c = pick(Pick::All).unwrap();
        assert_eq!(
            labels(&c),
            [
                "web.1@lab-worker-1",
                "web.2@lab-worker-1",
                "web.3@lab-worker-2"
            ]
        );
    }

    #[test]
    fn a_slot_names_its_running_task_or_says_which_slots_exist() {
        assert_eq!(
            labels(&pick(Pick::Slot(3)).unwrap()),
            ["web.3@lab-worker-2"]
        );
        let e = pick(Pick::Slot(9)).unwrap_err();
        assert_eq!(code(&e), 2);
        assert_eq!(
            e.to_string(),
            "prod: web has no task in slot 9; its slots: 1, 2, 3, 4"
        );
        let e = pick(Pick::Slot(4)).unwrap_err();
        assert_eq!(code(&e), 1);
        assert_eq!(
            e.to_string(),
            "prod: web.4 is not running (it is starting: starting)"
        );
    }

    #[test]
    fn a_node_is_named_by_hostname_or_manifest_name() {
        assert_eq!(
            labels(&pick(Pick::Node("worker-2".into())).unwrap()),
            ["web.3@lab-worker-2"]
        );
        assert_eq!(
            labels(&pick(Pick::Node("lab-worker-1".into())).unwrap()),
            ["web.1@lab-worker-1"]
        );
        let e = pick(Pick::Node("manager-1".into())).unwrap_err();
        assert_eq!(code(&e), 1);
        assert_eq!(
            e.to_string(),
            "prod: no running task of web on manager-1; it runs on: lab-worker-1, lab-worker-2"
        );
        let e = pick(Pick::Node("worker-3".into())).unwrap_err();
        assert_eq!(code(&e), 2);
        assert!(e.to_string().contains("no node `worker-3`"), "{e}");
        assert!(e.to_string().contains("did you mean"), "{e}");
    }

    #[test]
    fn nothing_running_is_a_failure() {
        let stopped = vec![
            task(
                "t1",
                Some(1),
                "n2",
                TaskState::SHUTDOWN,
                TaskState::SHUTDOWN,
            ),
            task("t2", Some(1), "n2", TaskState::PENDING, R),
        ];
        for p in [Pick::First, Pick::All, Pick::Node("worker-1".into())] {
            let e = choose("prod", "web", &stopped, &nodes(), &p).unwrap_err();
            assert_eq!(code(&e), 1, "{p:?}");
            assert_eq!(
                e.to_string(),
                "prod: web has no running task (is it up? `twip status prod`)"
            );
        }
        let e = choose("prod", "web", &[], &nodes(), &Pick::Slot(1)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "prod: web has no task in slot 1: it has no tasks"
        );
    }

    #[test]
    fn global_tasks_have_no_slots() {
        let proxy = vec![
            task("abcdef123", None, "n3", R, R),
            task("zyxwvu987", None, "n1", R, R),
        ];
        let c = choose("prod", "proxy", &proxy, &nodes(), &Pick::All).unwrap();
        assert_eq!(
            labels(&c),
            ["proxy.zyxwvu@lab-manager-1", "proxy.abcdef@lab-worker-2"]
        );
        let e = choose("prod", "proxy", &proxy, &nodes(), &Pick::Slot(1)).unwrap_err();
        assert_eq!(code(&e), 2);
        assert!(e.to_string().contains("global service"), "{e}");
        let c = choose(
            "prod",
            "proxy",
            &proxy,
            &nodes(),
            &Pick::Node("worker-2".into()),
        )
        .unwrap();
        assert_eq!(labels(&c), ["proxy.abcdef@lab-worker-2"]);
    }

    #[test]
    fn a_node_the_swarm_does_not_list_is_shown_by_its_id() {
        let t = vec![task("t1", Some(1), "x9y8z7w6v5u4t3", R, R)];
        let c = choose("prod", "web", &t, &nodes(), &Pick::First).unwrap();
        assert_eq!(labels(&c), ["web.1@x9y8z7w6v5u4"]);
    }
}
