//! `down`: the stack converges to the empty desired state. The reconcile of nothing against
//! what runs plans every removal; services go first and their tasks are waited out, then
//! configs, secrets and networks (the release history with them). Named volumes hold data and
//! stay unless asked for.

use std::time::Duration;

use crate::engine::observe::{namespace_filter, observe};
use crate::engine::{execute, wait};
use crate::exit;
use crate::plan::{self, Desired, Options, Plan, Resource};
use crate::ui::Ui;

use super::converge::Deployment;
use super::progress::Progress;

/// How long `down` waits for the services' tasks to stop, then for the rest to disappear.
pub const SERVICES_TIMEOUT: Duration = Duration::from_secs(120);
pub const OBJECTS_TIMEOUT: Duration = Duration::from_secs(60);

/// The plan that takes the stack down: every removal, services first (phase 2), then
/// configs, secrets and networks (phase 3, in that order).
pub fn plan(d: &Deployment<'_>, observed: &plan::Observed) -> Plan {
    let mut observed = observed.clone();
    // The release history goes too: nothing is kept for a rollback.
    observed.retained.clear();
    let nothing = Desired {
        env: d.env.name.clone(),
        stack: d.stack().to_string(),
        networks: Vec::new(),
        configs: Vec::new(),
        secrets: Vec::new(),
        services: Vec::new(),
    };
    let mut plan = plan::reconcile(&nothing, &observed, &Options::default());
    let rank = |r: Resource| match r {
        Resource::Service => 0,
        Resource::Config => 1,
        Resource::Secret => 2,
        Resource::Network => 3,
    };
    plan.actions
        .sort_by(|a, b| (rank(a.resource), &a.name).cmp(&(rank(b.resource), &b.name)));
    plan
}

/// Removes the stack (and its volumes with VOLUMES) and waits until it is gone.
pub async fn down(d: &Deployment<'_>, volumes: bool, ui: &Ui) -> anyhow::Result<i32> {
    let stack = d.stack().to_string();
    let api = d.api;
    let observed = observe(api, &stack).await?;
    let nothing = observed.services.is_empty()
        && observed.networks.is_empty()
        && observed.configs.is_empty()
        && observed.secrets.is_empty();
    let plan = plan(d, &observed);
    let (services, objects): (Vec<_>, Vec<_>) = plan
        .actions
        .iter()
        .cloned()
        .partition(|a| a.resource == Resource::Service);
    let part = |actions| Plan {
        actions,
        unchanged: Vec::new(),
        ..plan.clone()
    };
    let empty = Desired {
        env: plan.env.clone(),
        stack: stack.clone(),
        networks: Vec::new(),
        configs: Vec::new(),
        secrets: Vec::new(),
        services: Vec::new(),
    };
    let mut progress = Progress::new(ui);
    // Scheduled jobs' runs, claims and records carry no namespace (no plan sees them): their
    // runs go first (they hold the stack's networks), with their history.
    let job_objects = crate::engine::jobs::remove_all(api, &stack)
        .await
        .map_err(|e| e.during("remove the scheduled jobs' runs and history of", &stack))?;
    if job_objects > 0 {
        ui.ok(&format!(
            "removed {job_objects} runs, claims and records of scheduled jobs"
        ));
    }
    execute::execute(api, &part(services), &empty, &mut progress).await?;
    execute::wait_services_gone(api, &stack, SERVICES_TIMEOUT).await?;
    execute::execute(api, &part(objects), &empty, &mut progress).await?;
    // Removal calls return before every object is gone from every list: wait until the stack
    // has nothing left (or say what stays).
    if let Some(count) = wait::stack_gone(api, &stack, OBJECTS_TIMEOUT).await? {
        return Err(exit::coded(
            exit::TIMEOUT,
            format!(
                "{stack}: {count} objects are still there after 60s; run `twip down {}` again",
                d.env.name
            ),
        ));
    }
    let vols = api
        .list_volumes(&namespace_filter(&stack))
        .await
        .map_err(|e| e.during("list volumes of stack", &stack))?;
    if volumes {
        for v in &vols {
            execute::remove_retrying(api, || api.remove_volume(&v.name)).await?;
            ui.ok(&format!("removed volume {}", v.name));
        }
    } else if !vols.is_empty() {
        let names: Vec<&str> = vols.iter().map(|v| v.name.as_str()).collect();
        ui.info(&format!(
            "kept volume{} {} (their data stays; `twip down {} --volumes` removes them)",
            if names.len() == 1 { "" } else { "s" },
            names.join(", "),
            d.env.name
        ));
    }
    if nothing && (!volumes || vols.is_empty()) {
        ui.ok(&format!("{}: nothing to remove", d.env.name));
    } else {
        ui.ok(&format!("{} is down", d.env.name));
    }
    Ok(exit::SUCCESS)
}
