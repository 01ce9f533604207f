//! `twip swarm init|nodes ENV`: the environment's swarm. `init` makes the environment's first
//! manager (or the local engine, for a single-node environment) a swarm manager, or says it
//! already is one. Join tokens are never printed.

use bollard::models::SwarmInitRequest;

use crate::cli::{EnvArg, GlobalArgs, SwarmNodesArgs};
use crate::engine::error::EngineResult;
use crate::engine::{self, Endpoint};
use crate::exit;
use crate::manifest::model::Role;
use crate::project::Project;
use crate::ui::Ui;

/// The first manager's endpoint and advertise address (None: let the engine choose).
fn first_manager(g: &GlobalArgs, env: &crate::manifest::Environment) -> (Endpoint, Option<String>) {
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

pub async fn init(g: &GlobalArgs, args: &EnvArg, ui: &Ui) -> anyhow::Result<i32> {
    let project = Project::discover(g.project_dir.as_deref())?;
    let env = project.load(&args.env)?;
    let (endpoint, advertise) = first_manager(g, &env);
    let docker = engine::connect(&endpoint).await?;
    let info = docker
        .info()
        .await
        .engine("read engine info", &endpoint.url)?;
    let swarm = info.swarm.unwrap_or_default();
    let state = swarm
        .local_node_state
        .map(|s| s.to_string())
        .unwrap_or_default();
    if state == "active" {
        if swarm.control_available == Some(true) {
            ui.ok(&format!("{} is already a swarm manager", endpoint.url));
            return Ok(exit::SUCCESS);
        }
        return Err(anyhow::anyhow!(
            "{} is a worker of another swarm; it cannot become this environment's manager (leave that swarm first)",
            endpoint.url
        ));
    }
    let local = env.manifest.nodes.is_empty() && endpoint.url.starts_with("unix://");
    let request = |addr: Option<String>| SwarmInitRequest {
        listen_addr: Some("0.0.0.0:2377".into()),
        advertise_addr: addr,
        ..Default::default()
    };
    match docker
        .init_swarm(request(advertise.clone()))
        .await
        .engine("initialise the swarm on", &endpoint.url)
    {
        Ok(_) => {}
        // A single-node swarm on a machine with several addresses: the engine cannot choose
        // one to advertise; loopback is right for a swarm of one local node.
        Err(e) if local && advertise.is_none() && e.message.contains("advertise") => {
            ui.debug(&format!("{e}; advertising 127.0.0.1 (a single-node swarm)"));
            docker
                .init_swarm(request(Some("127.0.0.1".into())))
                .await
                .engine("initialise the swarm on", &endpoint.url)?;
        }
        Err(e) => return Err(e.into()),
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
    let (endpoint, _) = first_manager(g, &env);
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
