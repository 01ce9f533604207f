//! `twip swarm init|join|nodes|leave ENV`: the environment's swarm. `init` makes the
//! environment's first manager (or the local engine, for a single-node environment) a swarm
//! manager, or says it already is one. `join` brings every node of the manifest in with its
//! role and labels, `leave` drains a node and removes it. With `--lab NAME` the lab's nodes
//! stand in for the manifest's (managers for managers, workers for workers, in order).
//! The membership logic is [`crate::engine::swarm`], shared with `twip lab` and `twip
//! bootstrap`. Join tokens are never printed.

use std::time::Duration;

use bollard::Docker;

use crate::cli::{EnvArg, GlobalArgs, SwarmJoinArgs, SwarmLeaveArgs, SwarmNodesArgs};
use crate::engine::swarm::{self as membership, InitOutcome, Manager, Member};
use crate::engine::{self, Endpoint};
use crate::exec::ssh::{SshHost, Tunnel};
use crate::exit;
use crate::lab::{self, Lab};
use crate::manifest::model::{NodeSpec, Role};
use crate::manifest::Environment;
use crate::project::Project;
use crate::ui::Ui;

/// The first manager's endpoint and advertise address (None: let the engine choose).
fn first_manager(g: &GlobalArgs, env: &Environment) -> (Endpoint, Option<String>) {
    let manager = env.manifest.nodes.iter().find(|n| n.role == Role::Manager);
    match manager {
        Some(n) if g.host.is_none() => {
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
        _ => (Endpoint::resolve(g.host.as_deref(), Some(env)), None),
    }
}

/// The manager twip talks to: the lab's first manager with `--lab`, else the manifest's.
fn manager_endpoint(
    g: &GlobalArgs,
    env: &Environment,
    lab: Option<&Lab>,
) -> anyhow::Result<Endpoint> {
    match lab {
        Some(l) => {
            if g.host.is_some() {
                return Err(exit::invalid(
                    "--host and --lab both say where the engine is; give one of them",
                ));
            }
            Ok(l.manager()?.endpoint())
        }
        None => Ok(first_manager(g, env).0),
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
                let url = crate::nodes::node_engine_url(n);
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

fn load_lab(name: Option<&str>) -> anyhow::Result<Option<Lab>> {
    name.map(Lab::load).transpose()
}

pub async fn init(g: &GlobalArgs, args: &EnvArg, ui: &Ui) -> anyhow::Result<i32> {
    let project = Project::discover(g.project_dir.as_deref())?;
    let env = project.load(&args.env)?;
    let (endpoint, advertise) = first_manager(g, &env);
    let docker = engine::connect(&endpoint).await?;
    let local = env.manifest.nodes.is_empty() && endpoint.url.starts_with("unix://");
    let outcome = match membership::init(&docker, &endpoint.url, advertise.as_deref()).await {
        Ok(o) => o,
        // A single-node swarm on a machine with several addresses: the engine cannot choose
        // one to advertise; loopback is right for a swarm of one local node.
        Err(e) if local && advertise.is_none() && e.to_string().contains("advertise") => {
            ui.debug(&format!("{e}; advertising 127.0.0.1 (a single-node swarm)"));
            membership::init(&docker, &endpoint.url, Some("127.0.0.1")).await?
        }
        Err(e) => return Err(e),
    };
    if outcome == InitOutcome::AlreadyManager {
        ui.ok(&format!("{} is already a swarm manager", endpoint.url));
        return Ok(exit::SUCCESS);
    }
    ui.ok(&format!(
        "initialised the swarm on {} (this engine is its manager)",
        endpoint.url
    ));
    if !env.manifest.nodes.is_empty() {
        ui.info(&format!(
            "next: `twip swarm join {}` joins the other nodes",
            env.name
        ));
    }
    Ok(exit::SUCCESS)
}

pub async fn nodes(g: &GlobalArgs, args: &SwarmNodesArgs, _ui: &Ui) -> anyhow::Result<i32> {
    let project = Project::discover(g.project_dir.as_deref())?;
    let env = project.load(&args.env)?;
    let lab = load_lab(args.lab.as_deref())?;
    let endpoint = manager_endpoint(g, &env, lab.as_ref())?;
    let docker = engine::connect(&endpoint).await?;
    engine::require_manager(&docker, &endpoint).await?;
    let nodes = super::status::collect_nodes(&docker).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&nodes)?);
    } else {
        super::status::print_nodes(&nodes);
    }
    Ok(exit::SUCCESS)
}

/// Connects to the manager twip talks to and reads what joining needs.
pub async fn open_manager(
    g: &GlobalArgs,
    env: &Environment,
    lab: Option<&Lab>,
) -> anyhow::Result<Manager> {
    let endpoint = manager_endpoint(g, env, lab)?;
    let docker = engine::connect(&endpoint).await?;
    engine::require_manager(&docker, &endpoint)
        .await
        .map_err(|e| anyhow::anyhow!("{e}; `twip swarm init {}` makes it one", env.name))?;
    Manager::open(docker, &endpoint.url).await
}

/// Joins the environment's nodes (with their labels) and waits until they are Ready. Used by
/// `twip swarm join` and by `twip up --lab` (which applies the labels placement needs).
pub async fn join_env(
    g: &GlobalArgs,
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
    let mgr = open_manager(g, env, lab).await?;
    let engines =
        futures_util::future::join_all(targets.iter().map(|t| connect_node(t, project_dir))).await;
    let mut members = Vec::new();
    let mut unreachable = Vec::new();
    let mut tunnels = Vec::new();
    for (t, d) in targets.iter().zip(engines) {
        match d {
            Ok((docker, tunnel)) => {
                tunnels.extend(tunnel);
                members.push(t.member(docker))
            }
            Err(e) => unreachable.push(format!("{}: {e:#}", t.label())),
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

pub async fn join(g: &GlobalArgs, args: &SwarmJoinArgs, ui: &Ui) -> anyhow::Result<i32> {
    let project = Project::discover(g.project_dir.as_deref())?;
    let env = project.load(&args.env)?;
    let lab = load_lab(args.lab.as_deref())?;
    let done = join_env(g, &project.dir, &env, lab.as_ref(), args.timeout, ui).await?;
    if done.is_empty() {
        return Ok(exit::SUCCESS);
    }
    let joined = done.iter().filter(|j| j.joined).count();
    let labelled = done.iter().filter(|j| j.labelled).count();
    if joined == 0 && labelled == 0 {
        ui.ok(&format!(
            "all {} nodes of {} are in the swarm, labelled and Ready: nothing to do",
            done.len(),
            env.name
        ));
    } else {
        ui.ok(&format!(
            "{} nodes Ready ({joined} joined, {labelled} labelled, {} already there)",
            done.len(),
            done.len() - joined
        ));
    }
    Ok(exit::SUCCESS)
}

/// The swarm node id of a target: its own engine's view, else the manager's node list by
/// hostname or address (an engine that no longer answers can still be removed).
async fn node_id_of(mgr: &Docker, t: &NodeTarget, own: Option<&Docker>) -> anyhow::Result<String> {
    if let Some(d) = own {
        if let Ok(info) = d.info().await {
            if let Some(id) = info.swarm.and_then(|s| s.node_id).filter(|s| !s.is_empty()) {
                return Ok(id);
            }
        }
    }
    let nodes = super::status::collect_nodes(mgr).await?;
    nodes
        .iter()
        .find(|n| n.hostname == t.hostname || n.address == t.advertise)
        .map(|n| n.id.clone())
        .ok_or_else(|| anyhow::anyhow!("{} is not in the swarm: nothing to remove", t.label()))
}

pub async fn leave(g: &GlobalArgs, args: &SwarmLeaveArgs, ui: &Ui) -> anyhow::Result<i32> {
    let project = Project::discover(g.project_dir.as_deref())?;
    let env = project.load(&args.env)?;
    let lab = load_lab(args.lab.as_deref())?;
    let targets = node_targets(&env, lab.as_ref())?;
    let mgr = open_manager(g, &env, lab.as_ref()).await?;
    let chosen: Vec<&NodeTarget> = match &args.node {
        Some(name) => {
            let t = targets
                .iter()
                .find(|t| &t.spec.name == name || &t.hostname == name)
                .ok_or_else(|| {
                    let known: Vec<&str> = targets.iter().map(|t| t.spec.name.as_str()).collect();
                    exit::invalid(format!(
                        "no node `{name}` in environment `{}` (nodes: {})",
                        env.name,
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ))
                })?;
            vec![t]
        }
        None => {
            let first = targets.iter().position(|t| t.spec.role == Role::Manager);
            targets
                .iter()
                .enumerate()
                .filter(|(i, _)| Some(*i) != first)
                .map(|(_, t)| t)
                .collect()
        }
    };
    if chosen.is_empty() {
        ui.info("no node to remove");
        return Ok(exit::SUCCESS);
    }
    for t in chosen {
        let (own, _tunnel) = match connect_node(t, &project.dir).await {
            Ok((d, tunnel)) => (Some(d), tunnel),
            Err(e) => {
                ui.warn(&format!(
                    "{}: its engine does not answer ({e}); removing it through the manager only",
                    t.label()
                ));
                (None, None)
            }
        };
        let id = node_id_of(&mgr.docker, t, own.as_ref()).await?;
        if id == mgr.node_id {
            return Err(exit::invalid(format!(
                "{} is the manager twip talks to; remove another node, or point twip at another manager",
                t.label()
            )));
        }
        membership::drain_and_remove(&mgr.docker, &id, &t.label(), own.as_ref(), args.timeout, ui)
            .await?;
    }
    Ok(exit::SUCCESS)
}
