//! Hooks: the project's `hooks/pre-build`, `pre-deploy`, `post-deploy` and `post-rollback`
//! run on the operator's machine ([`crate::exec::hooks`]) with `TWIP_ENV`, `TWIP_STACK`,
//! `TWIP_RELEASE`, `TWIP_SERVICES`, `TWIP_USER` and `TWIP_COMMAND` in their environment. A
//! `pre-` hook that exits non-zero stops the command before anything changed (exit 1, the
//! hook and its code named); a `post-` hook that does is exit 1 after the change (which
//! stays). `--no-hooks` (the operation's `hooks: false`) and the autoscaler skip them.

use std::path::Path;

use crate::engine::SwarmApi;
use crate::exec::{self, RunOpts};
use crate::exit;
use crate::manifest::Environment;
use crate::plan::Plan;
use crate::ui::Ui;

use super::converge::Deployment;
use super::lock::{self, Operation};

/// Runs hook NAME of the project (if it has one and hooks are on) for RELEASE of ENV, which
/// touches SERVICES (short names).
pub async fn run(
    name: &str,
    env: &Environment,
    project_dir: &Path,
    release: u64,
    services: &[String],
    ui: &Ui,
) -> anyhow::Result<()> {
    run_as(name, env, project_dir, &release.to_string(), services, ui).await
}

/// `pre-build` before `twip build`, which is no deploy: `TWIP_RELEASE` is empty, `TWIP_SERVICES`
/// the images about to be built.
pub async fn pre_build_alone(
    env: &Environment,
    project_dir: &Path,
    images: &[String],
    ui: &Ui,
) -> anyhow::Result<()> {
    run_as("pre-build", env, project_dir, "", images, ui).await
}

async fn run_as(
    name: &str,
    env: &Environment,
    project_dir: &Path,
    release: &str,
    services: &[String],
    ui: &Ui,
) -> anyhow::Result<()> {
    let op = lock::current().unwrap_or_else(|| Operation::here("unknown"));
    if !op.hooks {
        return Ok(());
    }
    let vars = [
        ("TWIP_ENV", env.name.clone()),
        ("TWIP_STACK", env.stack().to_string()),
        ("TWIP_RELEASE", release.to_string()),
        ("TWIP_SERVICES", services.join(",")),
        ("TWIP_USER", op.user.clone()),
        ("TWIP_COMMAND", op.command.clone()),
    ];
    let Some(cmd) = exec::hooks::command(project_dir, name, &vars)? else {
        return Ok(());
    };
    ui.info(&format!("running hooks/{name}"));
    match exec::run(&cmd, &RunOpts::streamed(format!("{name} | "))).await {
        Ok(_) => Ok(()),
        Err(e) => {
            let how = match (e.status, &e.not_started) {
                (_, Some(why)) => format!("could not start: {why}"),
                (Some(code), _) => format!("exited with code {code}"),
                (None, _) => "was killed by a signal".to_string(),
            };
            let what = if name.starts_with("pre-") {
                "nothing was changed".to_string()
            } else {
                format!("the change itself is done (release {release})")
            };
            Err(exit::coded(
                exit::FAILURE,
                format!(
                    "{}: the {name} hook (hooks/{name}) {how}; {what} (--no-hooks skips hooks)",
                    env.name
                ),
            ))
        }
    }
}

/// The short names of the services PLAN touches, removals included.
fn services_of(d: &Deployment<'_>, plan: &Plan) -> Vec<String> {
    let prefix = format!("{}_", d.stack());
    let mut out: Vec<String> = plan
        .actions
        .iter()
        .filter(|a| a.resource == crate::plan::Resource::Service)
        .map(|a| a.name.strip_prefix(&prefix).unwrap_or(&a.name).to_string())
        .collect();
    out.dedup();
    out
}

/// `pre-deploy`, before PLAN is executed (TWIP_RELEASE: the number it will be recorded as).
pub async fn pre_deploy(d: &Deployment<'_>, plan: &Plan, ui: &Ui) -> anyhow::Result<()> {
    let next = super::history::next_number(d).await;
    run(
        "pre-deploy",
        d.env,
        d.project_dir,
        next,
        &services_of(d, plan),
        ui,
    )
    .await
}

/// NAME (`post-deploy`, `post-rollback`) after PLAN converged and was recorded as RELEASE.
pub async fn post(
    name: &str,
    d: &Deployment<'_>,
    plan: &Plan,
    release: Option<u64>,
    ui: &Ui,
) -> anyhow::Result<()> {
    let release = match release {
        Some(n) => n,
        None => super::history::next_number(d).await.saturating_sub(1),
    };
    run(
        name,
        d.env,
        d.project_dir,
        release,
        &services_of(d, plan),
        ui,
    )
    .await
}

/// `pre-build`, before images of ENV are built for a deploy (on the engine API): IMAGES are
/// the images about to be built.
pub async fn pre_build(
    api: &dyn SwarmApi,
    env: &Environment,
    project_dir: &Path,
    images: &[String],
    ui: &Ui,
) -> anyhow::Result<()> {
    let next = crate::engine::releases::list(api, env.stack())
        .await
        .ok()
        .and_then(|l| l.last().map(|(_, r)| r.seq + 1))
        .unwrap_or(1);
    run("pre-build", env, project_dir, next, images, ui).await
}
