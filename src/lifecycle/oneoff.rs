//! One-off tasks of a stack's services: `twip run ENV SVC -- CMD` and the release tasks `up`
//! runs before it changes a service. The task's spec is the service's desired spec, as `up`
//! computes it (image pinned, the same config and secret object names), so a one-off sees
//! exactly what the next deploy runs. Networks, configs and secrets that the stack does not
//! have yet are created first, through the plan and its executor (their creation is phase 0
//! of any plan, which `up` would do next anyway); no service is touched.

use std::time::Duration;

use crate::engine::model::ServiceSpec;
use crate::engine::oneoff::{self, Outcome};
use crate::engine::{self};
use crate::plan::{Desired, Op, Options, Plan, Resource};
use crate::ui::Ui;

use super::converge::{desired_for, make_plan_with, pin_digests, Deployment};
use super::progress::Progress;

/// `twip run`: runs ARGS once in a task made from SERVICE's desired spec, its lines on
/// stdout, and returns the command's exit code.
pub async fn run(
    d: &Deployment<'_>,
    service: &str,
    args: &[String],
    timeout: Duration,
    ui: &Ui,
) -> anyhow::Result<i32> {
    let mut desired = desired_for(d.env, d.project_dir)?;
    check_service(&desired, service)?;
    pin_digests(d, &mut desired, ui).await?;
    let (desired, plan) = make_plan_with(d, &Options::default(), desired).await?;
    create_objects(d, &plan, &desired, ui).await?;
    let base = &desired.service(service).expect("checked above").spec;
    ui.info(&format!(
        "running `{}` in a one-off task of {service}",
        args.join(" ")
    ));
    let outcome = run_task(d, base, args, "run", timeout, &mut |line| {
        println!("{line}")
    })
    .await?;
    match outcome.exit_code {
        Some(code) => Ok(i32::try_from(code)
            .ok()
            .filter(|c| (0..=255).contains(c))
            .unwrap_or(crate::exit::FAILURE)),
        None => Err(anyhow::anyhow!(
            "the one-off task did not run ({}): {}",
            outcome.state,
            outcome.error.unwrap_or_else(|| "no error given".into())
        )),
    }
}

/// SERVICE is one of the stack's (the manifest's, or the proxy or Prometheus twip adds); else
/// an input error with did-you-mean (exit 2).
pub fn check_service(desired: &Desired, service: &str) -> anyhow::Result<()> {
    if desired.service(service).is_some() {
        return Ok(());
    }
    let known: Vec<&str> = desired.services.iter().map(|s| s.short.as_str()).collect();
    Err(crate::exit::invalid(crate::suggest::no_service(
        &desired.env,
        service,
        &known,
    )))
}

/// Runs ARGS as a one-off of kind KIND (`run`, `before_deploy`) from the service spec BASE,
/// each line it writes handed to ON_LINE; the one-off is removed whatever happens.
pub async fn run_task(
    d: &Deployment<'_>,
    base: &ServiceSpec,
    args: &[String],
    kind: &str,
    timeout: Duration,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> anyhow::Result<Outcome> {
    let service = base.name.clone().unwrap_or_default();
    let name = oneoff::name_for(&service, &oneoff::suffix());
    let mut spec = oneoff::job_spec(base, &name, args, kind);
    engine::execute::resolve_object_ids(d.api, &mut spec).await?;
    oneoff::run(d.api, spec, timeout, on_line).await
}

/// Executes the part of PLAN that only creates networks, configs and secrets (phase 0): what a
/// one-off of the new spec needs before any service changes.
pub async fn create_objects(
    d: &Deployment<'_>,
    plan: &Plan,
    desired: &Desired,
    ui: &Ui,
) -> anyhow::Result<()> {
    let objects = plan_part(plan, |a| {
        a.op == Op::Create && a.resource != Resource::Service
    });
    if objects.is_empty() {
        return Ok(());
    }
    engine::execute::execute(d.api, &objects, desired, &mut Progress::new(ui)).await
}

/// The plan with only the actions KEEP keeps.
pub fn plan_part(plan: &Plan, keep: impl Fn(&crate::plan::Action) -> bool) -> Plan {
    let mut part = plan.clone();
    part.actions.retain(|a| keep(a));
    part
}
