//! The manifest's nodes as twip reaches them: each node's engine, the nodes a command names,
//! and (with `--lab`) the lab's nodes standing in for them. Shared by `swarm`, `bootstrap`,
//! `images` and the lab.

use std::time::Duration;

use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};

use crate::engine::nodes::NodeStatus;
use crate::engine::swarm::{self as membership, Manager, Member};
use crate::engine::{self, Docker, Endpoint};
use crate::exec::ssh::{SshHost, Tunnel};
use crate::exit;
use crate::exit::invalid;
use crate::lab::{self, Lab};
use crate::manifest::model::NodeSpec;
use crate::manifest::model::Role;
use crate::manifest::Environment;
use crate::ui::Ui;

/// A node's engine: `nodes[].engine`, else `ssh://USER@ADDRESS[:PORT]` (user `root` by default).
pub fn node_engine_url(n: &NodeSpec) -> String {
    if let Some(e) = &n.engine {
        return e.clone();
    }
    let ssh = n.ssh.as_ref();
    let user = ssh
        .and_then(|s| s.user.clone())
        .unwrap_or_else(|| "root".into());
    match ssh.and_then(|s| s.port) {
        Some(p) => format!("ssh://{user}@{}:{p}", n.address),
        None => format!("ssh://{user}@{}", n.address),
    }
}

/// The nodes to deliver to: all, or the ones named (unknown names are exit 2).
pub fn select_nodes<'a>(
    env: &'a Environment,
    names: &[String],
) -> anyhow::Result<Vec<&'a NodeSpec>> {
    let nodes = &env.manifest.nodes;
    if names.is_empty() {
        return Ok(nodes.iter().collect());
    }
    let known: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let mut out = Vec::new();
    for name in names {
        let Some(n) = nodes.iter().find(|n| &n.name == name) else {
            let hint = crate::suggest::hint(name, &known);
            return Err(invalid(format!(
                "no node `{name}` in environment `{}`{hint} (nodes: {})",
                env.name,
                known.join(", ")
            )));
        };
        if !out.iter().any(|o: &&NodeSpec| o.name == n.name) {
            out.push(n);
        }
    }
    Ok(out)
}

/// The first manager's endpoint and advertise address (None: let the engine choose).
pub fn first_manager(host: Option<&str>, env: &Environment) -> (Endpoint, Option<String>) {
    let manager = env.manifest.nodes.iter().find(|n| n.role == Role::Manager);
    match manager {
        Some(n) if host.is_none() => {
            let url = n.engine.clone().unwrap_or_else(|| {
                let user = n
                    .ssh
                    .as_ref()
                    .and_then(|s| s.user.clone())
                    .map(|u| format!("{u}@"))
                    .unwrap_or_default();
                format!("ssh://{user}{}", n.address)
            });
            let mut ep = Endpoint::resolve(Some(&url), Some(env));
            ep.url = url;
            (ep, Some(n.address.clone()))
        }
        _ => (Endpoint::resolve(host, Some(env)), None),
    }
}

/// One node of the environment and the engine that stands for it.
#[derive(Debug, Clone)]
pub struct NodeTarget {
    pub spec: NodeSpec,
    /// Its hostname in the swarm: the lab node's name with `--lab`, else the manifest's.
    pub hostname: String,
    pub endpoint: Endpoint,
    /// The address other nodes reach it at.
    pub advertise: String,
}

impl NodeTarget {
    /// How it is shown: `worker-1`, or `worker-1 (lab-worker-1)` on a lab.
    pub fn label(&self) -> String {
        if self.hostname == self.spec.name {
            self.spec.name.clone()
        } else {
            format!("{} ({})", self.spec.name, self.hostname)
        }
    }

    /// The node as a swarm member to join, reached through `docker`.
    pub fn member(&self, docker: Docker) -> Member {
        Member {
            name: self.label(),
            role: self.spec.role,
            url: self.endpoint.url.clone(),
            docker,
            advertise: Some(self.advertise.clone()),
            labels: lab::node_labels(&self.spec),
        }
    }
}

/// The environment's nodes with their engines: the manifest's (`nodes[].engine`, else
/// `ssh://USER@ADDRESS`), or on a lab the lab node standing in for each.
pub fn node_targets(env: &Environment, lab: Option<&Lab>) -> anyhow::Result<Vec<NodeTarget>> {
    match lab {
        Some(l) => Ok(lab::map_nodes(&env.manifest.nodes, l)?
            .into_iter()
            .map(|(spec, n)| NodeTarget {
                spec: spec.clone(),
                hostname: n.name.clone(),
                endpoint: n.endpoint(),
                advertise: n.address.clone(),
            })
            .collect()),
        None => Ok(env
            .manifest
            .nodes
            .iter()
            .map(|n| {
                let url = node_engine_url(n);
                NodeTarget {
                    spec: n.clone(),
                    hostname: n.name.clone(),
                    endpoint: Endpoint::resolve(Some(&url), Some(env)),
                    advertise: n.address.clone(),
                }
            })
            .collect()),
    }
}

/// Connects to a node's engine. An `ssh://` engine is reached through a forward of its Docker
/// socket made by the system ssh client with the node's `ssh` settings (user, port, identity,
/// host key checking); the tunnel must live as long as the connection is used.
pub async fn connect_node(
    t: &NodeTarget,
    project_dir: &std::path::Path,
) -> anyhow::Result<(Docker, Option<Tunnel>)> {
    if t.endpoint.url.starts_with("ssh://") {
        let host = SshHost::from_node(&t.spec, project_dir);
        let tunnel = Tunnel::open(&host).await?;
        let ep = Endpoint {
            url: tunnel.url(),
            tls: None,
            allow_plain_tcp: false,
        };
        let docker = engine::connect(&ep)
            .await
            .map_err(|e| anyhow::anyhow!("{e} (through SSH to {})", host.destination()))?;
        Ok((docker, Some(tunnel)))
    } else {
        Ok((engine::connect(&t.endpoint).await?, None))
    }
}

/// Connects to the first manager that answers ([`crate::managers`]) and reads what joining
/// needs.
pub async fn open_manager(
    host: Option<&str>,
    env: &Environment,
    lab: Option<&Lab>,
    ui: &Ui,
) -> anyhow::Result<Manager> {
    open_manager_skipping(host, env, lab, &[], ui).await
}

/// [`open_manager`], not trying the managers at the URLs in `skip`.
pub async fn open_manager_skipping(
    host: Option<&str>,
    env: &Environment,
    lab: Option<&Lab>,
    skip: &[String],
    ui: &Ui,
) -> anyhow::Result<Manager> {
    let cands = crate::managers::candidates(host, Some(env), lab)?;
    let reached = crate::managers::reach(&cands, skip, ui)
        .await
        .map_err(|e| {
            if exit::code_for(&e) == exit::INVALID_INPUT {
                e
            } else {
                anyhow::anyhow!("{e}; `twip swarm init {}` makes one", env.name)
            }
        })?;
    Manager::open(reached.docker, &reached.candidate.endpoint.url).await
}

/// Joins the environment's nodes (with their labels) and waits until they are Ready. Used by
/// `twip swarm join` and by `twip up --lab` (which applies the labels placement needs).
pub async fn join_env(
    host: Option<&str>,
    project_dir: &std::path::Path,
    env: &Environment,
    lab: Option<&Lab>,
    timeout: Duration,
    ui: &Ui,
) -> anyhow::Result<Vec<membership::Joined>> {
    let targets = node_targets(env, lab)?;
    if targets.is_empty() {
        ui.info(&format!(
            "environment `{}` lists no nodes: nothing to join",
            env.name
        ));
        return Ok(Vec::new());
    }
    let mgr = open_manager(host, env, lab, ui).await?;
    let engines =
        futures_util::future::join_all(targets.iter().map(|t| connect_node(t, project_dir))).await;
    let mut members = Vec::new();
    let mut unreachable = Vec::new();
    let mut tunnels = Vec::new();
    let known = engine::nodes::collect_nodes(&mgr.docker).await?;
    for (t, d) in targets.iter().zip(engines) {
        match d {
            Ok((docker, tunnel)) => {
                tunnels.extend(tunnel);
                members.push(t.member(docker))
            }
            // A member whose engine is gone (a dead node): nothing to join; left as it is.
            Err(e) => match known
                .iter()
                .find(|n| n.hostname == t.hostname || n.address == t.advertise)
            {
                Some(n) => ui.warn(&format!(
                    "{}: its engine does not answer ({e}); it is in the swarm (node {}, {}): left as it is",
                    t.label(),
                    n.id.chars().take(12).collect::<String>(),
                    n.state
                )),
                None => unreachable.push(format!("{}: {e:#}", t.label())),
            },
        }
    }
    if !unreachable.is_empty() {
        anyhow::bail!(
            "cannot reach every node's engine (nothing was changed):\n  {}",
            unreachable.join("\n  ")
        );
    }
    let done = membership::join_all(&mgr, &members, timeout, ui).await;
    drop(tunnels);
    done
}

/// The swarm node id of a target: its own engine's view, else the manager's node list by
/// hostname or address (an engine that no longer answers can still be removed).
pub async fn node_id_of(
    mgr: &Docker,
    t: &NodeTarget,
    own: Option<&Docker>,
) -> anyhow::Result<String> {
    if let Some(d) = own {
        if let Some(id) = engine::nodes::own_node_id(d).await {
            return Ok(id);
        }
    }
    let nodes = engine::nodes::collect_nodes(mgr).await?;
    nodes
        .iter()
        .find(|n| n.hostname == t.hostname || n.address == t.advertise)
        .map(|n| n.id.clone())
        .ok_or_else(|| anyhow::anyhow!("{} is not in the swarm: nothing to remove", t.label()))
}

/// Before the manager `id` leaves: refused (exit 2) when the managers that would remain have
/// no reachable majority, unless `force`; then demoted to a worker (it leaves the raft group
/// before it is drained). Nothing happens to a worker.
pub async fn demote_for_leave(
    mgr: &Docker,
    id: &str,
    label: &str,
    force: bool,
    ui: &Ui,
) -> anyhow::Result<()> {
    use crate::engine::managers as quorum;
    let managers = quorum::list_managers(mgr).await?;
    let Some(me) = managers.iter().find(|m| m.id == id) else {
        return Ok(());
    };
    let after = quorum::after_removal(&managers, &me.name);
    if !after.held() {
        let msg = format!(
            "removing manager {label} leaves {} of {} managers reachable, {} needed: the swarm would lose quorum and could no longer schedule, scale or update; bring the unreachable managers back or remove them first",
            after.reachable, after.managers, after.needed
        );
        if !force {
            return Err(exit::invalid(format!("{msg} (or --force)")));
        }
        ui.warn(&format!("{msg}; removing it anyway (--force)"));
    } else if let Some(w) = after.warning() {
        ui.warn(&format!("once {label} has left, {w}"));
    }
    if quorum::demote(mgr, id, label, Duration::from_secs(60)).await? {
        ui.ok(&format!(
            "{label}: demoted to a worker (left the raft group)"
        ));
    }
    Ok(())
}

/// The nodes as a table, on stdout.
pub fn print_nodes(list: &[NodeStatus]) {
    let mut nodes = Table::new();
    nodes.load_preset(UTF8_BORDERS_ONLY);
    nodes.set_header(vec![
        "NODE",
        "ROLE",
        "STATE",
        "AVAILABILITY",
        "ENGINE",
        "ARCH",
        "ADDRESS",
    ]);
    for n in list {
        let role = if n.leader {
            format!("{} (leader)", n.role)
        } else {
            n.role.clone()
        };
        nodes.add_row(vec![
            n.hostname.clone(),
            role,
            n.state.clone(),
            n.availability.clone(),
            n.engine_version.clone(),
            n.architecture.clone(),
            n.address.clone(),
        ]);
    }
    // Names, addresses and errors come from the engine: made safe for a terminal.
    println!("{}", crate::ui::clean(&nodes.to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_engines_default_to_ssh() {
        let n: NodeSpec = serde_json::from_value(serde_json::json!({
            "name": "w1", "address": "10.0.0.2", "role": "worker"
        }))
        .unwrap();
        assert_eq!(node_engine_url(&n), "ssh://root@10.0.0.2");
        let n: NodeSpec = serde_json::from_value(serde_json::json!({
            "name": "w1", "address": "10.0.0.2", "role": "worker",
            "ssh": {"user": "deploy", "port": 2222}
        }))
        .unwrap();
        assert_eq!(node_engine_url(&n), "ssh://deploy@10.0.0.2:2222");
        let n: NodeSpec = serde_json::from_value(serde_json::json!({
            "name": "w1", "address": "10.0.0.2", "role": "worker",
            "engine": "unix:///tmp/d.sock"
        }))
        .unwrap();
        assert_eq!(node_engine_url(&n), "unix:///tmp/d.sock");
    }
}
