//! The target of a command: an environment, loaded and valid, and a connection to the engine
//! of one of its swarm managers (or a lab's), the first that answers ([`crate::managers`]).
//! Every command that talks to a swarm starts here.

use crate::cli::GlobalArgs;
use crate::engine::{Docker, Endpoint};
use crate::lab::Lab;
use crate::managers;
use crate::manifest::Environment;
use crate::project::Project;
use crate::ui::Ui;

/// An environment, loaded and valid, and a connection to its swarm manager.
pub struct Target {
    pub project: Project,
    pub env: Environment,
    pub endpoint: Endpoint,
    pub docker: Docker,
    /// The lab the environment runs on (`--lab NAME`), if any.
    pub lab: Option<Lab>,
}

/// Loads and validates `env` (exit 2 on problems), then connects to a manager of its swarm
/// (see [`crate::managers`]). Nothing is changed.
pub async fn open(g: &GlobalArgs, env: &str) -> anyhow::Result<Target> {
    open_on(g, env, None).await
}

/// [`open`] on a lab (`--lab NAME`): the lab's managers instead of the manifest's.
pub async fn open_on(g: &GlobalArgs, env: &str, lab: Option<&str>) -> anyhow::Result<Target> {
    open_skipping(g, env, lab, &[]).await
}

/// [`open_on`], not trying the managers at the URLs in `skip`.
async fn open_skipping(
    g: &GlobalArgs,
    env: &str,
    lab: Option<&str>,
    skip: &[String],
) -> anyhow::Result<Target> {
    let project = Project::discover(g.project_dir.as_deref())?;
    let env = project.load(env)?;
    for w in &env.warnings {
        eprintln!("warning: {}", crate::ui::clean(w));
    }
    let lab = managers::load_lab(g.host.as_deref(), lab)?;
    let cands = managers::candidates(g.host.as_deref(), Some(&env), lab.as_ref())?;
    let reached = managers::reach(&cands, skip, &Ui::from(g)).await?;
    Ok(Target {
        project,
        env,
        endpoint: reached.candidate.endpoint,
        docker: reached.docker,
        lab,
    })
}

/// Runs `op` on a target opened with [`open_on`]; when it fails because its manager went
/// away mid-way ([`managers::lost_manager`]), opens the target again on the next manager that
/// answers and runs `op` once more. Only for idempotent operations: a converge plans again
/// against what runs, so a change the first attempt made is not made twice. Not with `--host`
/// (there is no other manager to go to).
pub async fn with_retry<F, Fut>(
    g: &GlobalArgs,
    env: &str,
    lab: Option<&str>,
    ui: &Ui,
    op: F,
) -> anyhow::Result<i32>
where
    F: Fn(Target) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<i32>>,
{
    let t = open_on(g, env, lab).await?;
    let url = t.endpoint.url.clone();
    match op(t).await {
        Err(e) if g.host.is_none() && managers::lost_manager(&e) => {
            ui.warn(&format!(
                "the manager at {url} went away ({e}); trying once more through another manager"
            ));
            let t = open_skipping(g, env, lab, &[url]).await?;
            op(t).await
        }
        r => r,
    }
}

/// Where an environment's swarm manager is: with `--lab NAME`, the lab's first manager (read
/// from the lab's endpoints file; plain TCP allowed, as the lab's own private address), else
/// `--host`, the manifest's engine, `DOCKER_HOST`, the local socket. For what does not connect
/// (the address of a stack's entrypoint); a connection goes through [`crate::managers`].
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
