//! `rollback`: a recorded release becomes the desired state, and the stack converges to it
//! through the same reconcile, execute and wait as `up`. The replica counts that run now and
//! the force-update counters are kept (the reconcile keeps them); services the release has but
//! the swarm does not run are not recreated (`up` does that), and services it does not name
//! stay as they are. The rollback is recorded as a release of its own, so rolling back twice
//! returns to where you started.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::engine::model::ServiceSpec;
use crate::engine::releases::{self, Release};
use crate::exit;
use crate::plan::{self, Desired, Observed, Op, Options, Plan};
use crate::ui::Ui;

use super::converge::{apply, record_release, wait, Deployment};
use super::history;

/// How long a rollback waits for convergence.
pub const TIMEOUT: Duration = Duration::from_secs(600);

/// Returns SERVICE (short or full name; every service when `None`) to release TO (by default
/// the one before the newest) and waits until it runs.
pub async fn rollback(
    d: &Deployment<'_>,
    service: Option<&str>,
    to: Option<u64>,
    timeout: Duration,
    ui: &Ui,
) -> anyhow::Result<i32> {
    let stack = d.stack().to_string();
    let history = releases::list(d.api, &stack).await?;
    let wanted = |name: &str| match service {
        Some(svc) => name == format!("{stack}_{svc}") || name == svc,
        None => true,
    };
    let observed = crate::engine::observe::observe(d.api, &stack).await?;
    if let Some(svc) = service {
        if !observed.services.iter().any(|o| wanted(&o.name)) {
            return Err(exit::invalid(format!(
                "{}: no service `{svc}` runs in stack {stack}",
                d.env.name
            )));
        }
    }
    let target = match to {
        // The newest release that ended well and differs from what runs (for the wanted
        // services): after a failed deploy, the last good one; after a rollback, where it was.
        None => {
            let only = |m: &BTreeMap<String, ServiceSpec>| -> BTreeMap<String, ServiceSpec> {
                m.iter()
                    .filter(|(n, _)| wanted(n))
                    .map(|(n, s)| (n.clone(), s.clone()))
                    .collect()
            };
            let now = only(
                &observed
                    .services
                    .iter()
                    .map(|o| (o.name.clone(), o.spec.clone()))
                    .collect(),
            );
            history
                .iter()
                .rev()
                .map(|(_, r)| r)
                .find(|r| {
                    releases::succeeded(&r.outcome)
                        && !releases::same_release(&only(&r.services), &now)
                })
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{}: there is no earlier release to return to ({} recorded; twip records one for each change, `twip history {}` lists them)",
                        d.env.name,
                        history.len(),
                        d.env.name
                    )
                })?
        }
        Some(seq) => {
            let r = &history
                .iter()
                .find(|(_, r)| r.seq == seq)
                .ok_or_else(|| {
                    let kept: Vec<String> =
                        history.iter().map(|(_, r)| r.seq.to_string()).collect();
                    exit::invalid(format!(
                        "{}: no release {seq} (kept: {})",
                        d.env.name,
                        kept.join(", ")
                    ))
                })?
                .1;
            if !releases::succeeded(&r.outcome) {
                return Err(exit::invalid(format!(
                    "{}: release {seq} did not converge ({}); return to one that did (`twip history {}`)",
                    d.env.name, r.outcome, d.env.name
                )));
            }
            r
        }
    };
    if let Some(svc) = service {
        if !target.services.keys().any(|n| wanted(n)) {
            return Err(exit::invalid(format!(
                "{}: no service `{svc}` in release {}",
                d.env.name, target.seq
            )));
        }
    }
    let desired = release_desired(d, target, &observed, &wanted, ui);
    // The counts that run now stay (set by `scale` or the autoscaler).
    let opts = Options {
        scale: observed
            .services
            .iter()
            .filter_map(|o| Some((o.name.clone(), o.replicas()?)))
            .collect(),
        ..Options::default()
    };
    let mut plan = plan::reconcile(&desired, &observed, &opts);
    present(&mut plan, target, &observed);
    if plan.is_empty() {
        ui.ok(&format!(
            "{}: release {} runs the same services; nothing to roll back",
            d.env.name, target.seq
        ));
        return Ok(exit::SUCCESS);
    }
    eprint!("{}", crate::ui::clean(&plan.to_string()));
    super::hooks::pre_deploy(d, &plan, ui).await?;
    let applied = apply(d, &plan, &desired, ui).await;
    let before = history::on_failure(d, &plan, ui, applied).await?;
    let waited = wait(d, &plan.touched_services(), &before, timeout, ui).await;
    history::on_failure(d, &plan, ui, waited).await?;
    let release = record_release(d, &plan, "converged", ui).await;
    ui.ok(&format!("{} is back at release {}", d.env.name, target.seq));
    super::hooks::post("post-rollback", d, &plan, release, ui).await?;
    Ok(exit::SUCCESS)
}

/// The desired state of a rollback: the release's spec for each wanted service that runs,
/// what runs for every other service, and the stack's networks, configs and secrets as they
/// are (neither created nor removed).
pub fn release_desired(
    d: &Deployment<'_>,
    release: &Release,
    observed: &Observed,
    wanted: &dyn Fn(&str) -> bool,
    ui: &Ui,
) -> Desired {
    let stack = d.stack();
    for name in release.services.keys().filter(|n| wanted(n)) {
        if !observed.services.iter().any(|o| &o.name == name) {
            ui.warn(&format!(
                "{name} is in release {} but not running; `twip up` recreates services",
                release.seq
            ));
        }
    }
    let services = observed
        .services
        .iter()
        .map(|o| {
            let spec = match release.services.get(&o.name) {
                Some(spec) if wanted(&o.name) => spec.clone(),
                _ => o.spec.clone(),
            };
            plan::desired::running_service(stack, &o.name, spec)
        })
        .collect();
    plan::desired::as_running(&d.env.name, stack, observed, services)
}

/// A rollback's plan says where each service goes back to (`back to release 3 (a → b)`),
/// as it always has, rather than the field changes of an `up`.
fn present(plan: &mut Plan, target: &Release, observed: &Observed) {
    let image = |s: &ServiceSpec| {
        s.task_template
            .as_ref()
            .and_then(|t| t.container_spec.as_ref())
            .and_then(|c| c.image.clone())
            .unwrap_or_default()
    };
    for a in plan.actions.iter_mut().filter(|a| a.op == Op::Update) {
        let (Some(now), Some(then)) = (
            observed.services.iter().find(|o| o.name == a.name),
            target.services.get(&a.name),
        ) else {
            continue;
        };
        a.cause = format!(
            "back to release {} ({} → {})",
            target.seq,
            image(&now.spec).split('@').next().unwrap_or_default(),
            image(then).split('@').next().unwrap_or_default()
        );
        a.changes.clear();
    }
    plan.unchanged.clear();
}
