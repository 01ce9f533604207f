//! `twip swarm init|join|nodes|leave ENV`: the environment's swarm. `init` makes the
//! environment's first manager (or the local engine, for a single-node environment) a swarm
//! manager, or says it already is one. `join` brings every node of the manifest in with its
//! role and labels, `leave` drains a node and removes it. With `--lab NAME` the lab's nodes
//! stand in for the manifest's (managers for managers, workers for workers, in order).
//! The membership logic is [`crate::engine::swarm`] and the node targets [`crate::nodes`],
//! shared with `twip lab` and `twip bootstrap`. Join tokens are never printed.

use crate::cli::{EnvArg, GlobalArgs, SwarmJoinArgs, SwarmLeaveArgs, SwarmNodesArgs};
use crate::engine;
use crate::engine::swarm::{self as membership, InitOutcome};
use crate::exit;
use crate::lab::Lab;
use crate::manifest::model::Role;
use crate::project::Project;
use crate::ui::Ui;

fn load_lab(name: Option<&str>) -> anyhow::Result<Option<Lab>> {
    name.map(Lab::load).transpose()
}

pub async fn init(g: &GlobalArgs, args: &EnvArg, ui: &Ui) -> anyhow::Result<i32> {
    let project = Project::discover(g.project_dir.as_deref())?;
    let env = project.load(&args.env)?;
    let (endpoint, advertise) = crate::nodes::first_manager(g.host.as_deref(), &env);
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

pub async fn nodes(g: &GlobalArgs, args: &SwarmNodesArgs, ui: &Ui) -> anyhow::Result<i32> {
    let project = Project::discover(g.project_dir.as_deref())?;
    let env = project.load(&args.env)?;
    let lab = load_lab(args.lab.as_deref())?;
    let reached =
        crate::managers::reach_env(g.host.as_deref(), Some(&env), lab.as_ref(), ui).await?;
    let nodes = engine::nodes::collect_nodes(&reached.docker).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&nodes)?);
    } else {
        crate::nodes::print_nodes(&nodes);
    }
    Ok(exit::SUCCESS)
}

pub async fn join(g: &GlobalArgs, args: &SwarmJoinArgs, ui: &Ui) -> anyhow::Result<i32> {
    let project = Project::discover(g.project_dir.as_deref())?;
    let env = project.load(&args.env)?;
    let lab = load_lab(args.lab.as_deref())?;
    let managers = env
        .manifest
        .nodes
        .iter()
        .filter(|n| n.role == Role::Manager)
        .count();
    if let Some(why) = engine::managers::even_managers_problem(managers) {
        let msg = format!("environment `{}` lists {why}", env.name);
        if !args.force {
            return Err(exit::invalid(format!("{msg} (or --force)")));
        }
        ui.warn(&format!("{msg}; joining them anyway (--force)"));
    }
    let done = crate::nodes::join_env(
        g.host.as_deref(),
        &project.dir,
        &env,
        lab.as_ref(),
        args.timeout,
        ui,
    )
    .await?;
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

pub async fn leave(g: &GlobalArgs, args: &SwarmLeaveArgs, ui: &Ui) -> anyhow::Result<i32> {
    let project = Project::discover(g.project_dir.as_deref())?;
    let env = project.load(&args.env)?;
    let lab = load_lab(args.lab.as_deref())?;
    let targets = crate::nodes::node_targets(&env, lab.as_ref())?;
    let mut mgr = crate::nodes::open_manager(g.host.as_deref(), &env, lab.as_ref(), ui).await?;
    let chosen: Vec<&crate::nodes::NodeTarget> = match &args.node {
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
        let (own, _tunnel) = match crate::nodes::connect_node(t, &project.dir).await {
            Ok((d, tunnel)) => (Some(d), tunnel),
            Err(e) => {
                ui.warn(&format!(
                    "{}: its engine does not answer ({e}); removing it through the manager only",
                    t.label()
                ));
                (None, None)
            }
        };
        let id = crate::nodes::node_id_of(&mgr.docker, t, own.as_ref()).await?;
        if id == mgr.node_id && g.host.is_none() {
            // Talk to another manager while this one leaves.
            let skip = [mgr.url.clone()];
            let h = g.host.as_deref();
            mgr = crate::nodes::open_manager_skipping(h, &env, lab.as_ref(), &skip, ui).await?;
        }
        if id == mgr.node_id {
            return Err(exit::invalid(format!(
                "{} is the manager twip talks to; remove another node, or point twip at another manager",
                t.label()
            )));
        }
        crate::nodes::demote_for_leave(&mgr.docker, &id, &t.label(), args.force, ui).await?;
        membership::drain_and_remove(&mgr.docker, &id, &t.label(), own.as_ref(), args.timeout, ui)
            .await?;
    }
    Ok(exit::SUCCESS)
}
