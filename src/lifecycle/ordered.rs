//! Executing a plan in order when the manifest asks for one: networks, configs and secrets
//! first, then the release tasks (`before_deploy`, each a one-off from its service's new
//! spec, all of which must exit 0), and only then the services, in waves of dependency order
//! (`depends_on`), each wave once the conditions of the dependencies it waits for are met. A
//! release task that fails stops the deploy before any service changed. Without release
//! tasks and dependencies this is the plain executor ([`super::converge::apply`]).

use std::time::Duration;

use crate::engine::{self, wait::Before};
use crate::manifest::model::Condition;
use crate::plan::order::{self, Wave};
use crate::plan::{Desired, Op, Plan, Resource};
use crate::ui::Ui;

use super::converge::Deployment;
use super::oneoff;
use super::progress::Progress;

/// Executes PLAN (see the module); returns what [`super::converge::wait`] needs.
pub async fn apply(
    d: &Deployment<'_>,
    plan: &Plan,
    desired: &Desired,
    timeout: Duration,
    ui: &Ui,
) -> anyhow::Result<Before> {
    let waves = order::waves(plan, &d.env.manifest);
    if plan.release.is_empty() && waves.len() <= 1 {
        return super::converge::apply(d, plan, desired, ui).await;
    }
    let before = engine::wait::existing_tasks(d.api, &plan.touched_services()).await;
    oneoff::create_objects(d, plan, desired, ui).await?;
    run_release_tasks(d, plan, timeout, ui).await?;
    for wave in &waves {
        wait_for(d, wave, &before, timeout, ui).await?;
        let part = oneoff::plan_part(plan, |a| {
            wave.actions
                .iter()
                .any(|w| w.name == a.name && a.phase == 1)
        });
        engine::execute::execute(d.api, &part, desired, &mut Progress::new(ui)).await?;
    }
    let rest = oneoff::plan_part(plan, |a| !is_object_create(a) && a.phase != 1);
    engine::execute::execute(d.api, &rest, desired, &mut Progress::new(ui)).await?;
    Ok(before)
}

/// Waits until the dependencies WAVE waits for meet their conditions. `started` and
/// `healthy` are the convergence wait of `up` (tasks running, update done; swarm counts a task
/// with a health check as running only once the check passed); `completed` waits for the
/// tasks to exit 0.
async fn wait_for(
    d: &Deployment<'_>,
    wave: &Wave,
    before: &Before,
    timeout: Duration,
    ui: &Ui,
) -> anyhow::Result<()> {
    for (service, condition) in &wave.wait_for {
        let next: Vec<&str> = wave.actions.iter().map(|a| a.name.as_str()).collect();
        ui.info(&format!(
            "waiting for {service} to be {} before {}",
            condition.name(),
            next.join(", ")
        ));
        match condition {
            Condition::Started | Condition::Healthy => {
                super::converge::wait(d, std::slice::from_ref(service), before, timeout, ui).await?
            }
            Condition::Completed => engine::wait::completed(d.api, service, timeout).await?,
        }
    }
    Ok(())
}

fn is_object_create(a: &crate::plan::Action) -> bool {
    a.op == Op::Create && a.resource != Resource::Service
}

/// Runs PLAN's release tasks one after another, each line they write shown with its
/// service's prefix (on stderr, with the plan); the first that does not exit 0 stops them.
async fn run_release_tasks(
    d: &Deployment<'_>,
    plan: &Plan,
    timeout: Duration,
    ui: &Ui,
) -> anyhow::Result<()> {
    for step in &plan.release {
        let spec = plan
            .actions
            .iter()
            .find(|a| a.resource == Resource::Service && a.name == step.service)
            .and_then(|a| a.spec.as_deref())
            .ok_or_else(|| anyhow::anyhow!("no spec for {}", step.service))?;
        let command = step.command.join(" ");
        ui.info(&format!("release task of {}: {command}", step.short));
        let prefix = crate::ui::clean(&format!("{}:before_deploy", step.short));
        let quiet = ui.quiet;
        let outcome = oneoff::run_task(
            d,
            spec,
            &step.command,
            "before_deploy",
            timeout,
            &mut |line| {
                if !quiet {
                    eprintln!("{prefix} | {line}");
                }
            },
        )
        .await
        .map_err(|e| {
            e.context(format!(
                "the release task of {} (`{command}`) did not finish; the deploy stopped and no service was changed",
                step.short
            ))
        })?;
        if !outcome.succeeded() {
            let what = match outcome.exit_code {
                Some(code) => format!("exited with code {code}"),
                None => format!(
                    "did not run ({}: {})",
                    outcome.state,
                    outcome.error.as_deref().unwrap_or("no error given")
                ),
            };
            let mut msg = format!(
                "the release task of {} (`{command}`) {what}; the deploy stopped and no service was changed",
                step.short
            );
            if !outcome.last_lines.is_empty() {
                msg.push_str("\nlast lines:");
                for l in &outcome.last_lines {
                    msg.push_str(&format!("\n  {l}"));
                }
            }
            return Err(anyhow::anyhow!(msg));
        }
        ui.ok(&format!("release task of {} passed", step.short));
    }
    Ok(())
}
