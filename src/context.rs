//! The target of a command: an environment, loaded and valid, and a connection to the engine
//! of its swarm manager (or of a lab's). Every command that talks to a swarm starts here.

use crate::cli::GlobalArgs;
use crate::engine::{self, Docker, Endpoint};
use crate::lab::Lab;
use crate::manifest::Environment;
use crate::project::Project;

/// An environment, loaded and valid, and a connection to its swarm manager.
pub struct Target {
    pub project: Project,
    pub env: Environment,
    pub endpoint: Endpoint,
    pub docker: Docker,
    /// The lab the environment runs on (`--lab NAME`), if any.
    pub lab: Option<Lab>,
}

/// Loads and validates `env` (exit 2 on problems), then connects to its engine and checks it
/// is a swarm manager. Nothing is changed.
pub async fn open(g: &GlobalArgs, env: &str) -> anyhow::Result<Target> {
    open_on(g, env, None).await
}

/// [`open`] on a lab (`--lab NAME`): the lab's first manager instead of the manifest's engine.
pub async fn open_on(g: &GlobalArgs, env: &str, lab: Option<&str>) -> anyhow::Result<Target> {
    let project = Project::discover(g.project_dir.as_deref())?;
    let env = project.load(env)?;
    for w in &env.warnings {
        eprintln!("warning: {}", crate::ui::clean(w));
    }
    let (endpoint, lab) = endpoint_for(g, &env, lab)?;
    let docker = engine::connect(&endpoint).await?;
    engine::require_manager(&docker, &endpoint).await?;
    Ok(Target {
        project,
        env,
        endpoint,
        docker,
        lab,
    })
}

/// Where an environment's swarm manager is: with `--lab NAME`, the lab's first manager (read
/// from the lab's endpoints file; plain TCP allowed, as the lab's own private address), else
/// `--host`, the manifest's engine, `DOCKER_HOST`, the local socket. The one place `--lab` is
/// resolved.
pub fn endpoint_for(
    g: &GlobalArgs,
    env: &Environment,
    lab: Option<&str>,
) -> anyhow::Result<(Endpoint, Option<Lab>)> {
    match lab {
        Some(name) => {
            if g.host.is_some() {
                return Err(crate::exit::invalid(
                    "--host and --lab both say where the engine is; give one of them",
                ));
            }
            let lab = Lab::load(name)?;
            Ok((lab.manager()?.endpoint(), Some(lab)))
        }
        None => Ok((Endpoint::resolve(g.host.as_deref(), Some(env)), None)),
    }
}

/// Where the environment answers on a lab: the proxy's port on the lab's first manager.
pub fn entrypoint_on(env: &Environment, lab: Option<&Lab>) -> Option<String> {
    let url = entrypoint(env)?;
    match lab.and_then(|l| l.manager().ok()) {
        Some(m) if env.manifest.proxy.as_ref().is_some_and(|p| p.url.is_none()) => {
            Some(url.replacen("127.0.0.1", &m.address, 1))
        }
        _ => Some(url),
    }
}

/// Where the environment answers: the proxy's URL.
pub fn entrypoint(env: &Environment) -> Option<String> {
    let p = env.manifest.proxy.as_ref()?;
    Some(p.url.clone().unwrap_or_else(|| match p.port.unwrap_or(80) {
        80 => "http://127.0.0.1/".to_string(),
        port => format!("http://127.0.0.1:{port}/"),
    }))
}
