//! `twip rollback ENV [SVC]`: return the stack's services (or one) to the release before the
//! one that runs, from twip's own release history (swarm keeps only one previous spec). The
//! replica counts that run now are kept. The rollback is recorded as a release of its own, so
//! rolling back twice returns to where you started.

use crate::cli::{GlobalArgs, ServiceTargetArgs};
use crate::engine::{self, releases};
use crate::exit;
use crate::plan::{Action, Desired, Op, Plan, Resource};
use crate::ui::Ui;

pub async fn run(g: &GlobalArgs, args: &ServiceTargetArgs, ui: &Ui) -> anyhow::Result<i32> {
    let t = crate::context::open_on(g, &args.env, args.lab.as_deref()).await?;
    let stack = t.env.stack().to_string();
    let history = releases::list(&t.docker, &stack).await?;
    if history.len() < 2 {
        return Err(anyhow::anyhow!(
            "{}: there is no earlier release to return to ({} recorded; twip records one after each `up` that changes something)",
            t.env.name,
            history.len()
        ));
    }
    let (_, current) = &history[history.len() - 1];
    let (_, previous) = &history[history.len() - 2];
    let wanted = |name: &str| match &args.service {
        Some(svc) => name == format!("{stack}_{svc}") || name == svc,
        None => true,
    };
    let observed = engine::observe::observe(&t.docker, &stack).await?;
    let mut actions = Vec::new();
    for (name, old_spec) in &previous.services {
        if !wanted(name) {
            continue;
        }
        let Some(o) = observed.services.iter().find(|s| &s.name == name) else {
            ui.warn(&format!(
                "{name} is in release {} but not running; `twip up` recreates services",
                previous.seq
            ));
            continue;
        };
        let mut spec = old_spec.clone();
        // Keep the replica count and the force-update counter that run now.
        if let (Some(mode), Some(r)) = (spec.mode.as_mut(), o.replicas()) {
            if let Some(rep) = mode.replicated.as_mut() {
                rep.replicas = Some(r as i64);
            }
        }
        if let Some(tt) = spec.task_template.as_mut() {
            tt.force_update = o.spec.task_template.as_ref().and_then(|x| x.force_update);
        }
        if current
            .services
            .get(name)
            .map(crate::plan::desired::hash_spec)
            == Some(crate::plan::desired::hash_spec(old_spec))
        {
            continue;
        }
        let image = |s: &bollard::models::ServiceSpec| {
            s.task_template
                .as_ref()
                .and_then(|t| t.container_spec.as_ref())
                .and_then(|c| c.image.clone())
                .unwrap_or_default()
        };
        actions.push(Action {
            resource: Resource::Service,
            name: name.clone(),
            op: Op::Update,
            cause: format!(
                "back to release {} ({} → {})",
                previous.seq,
                image(&o.spec).split('@').next().unwrap_or_default(),
                image(old_spec).split('@').next().unwrap_or_default()
            ),
            phase: 1,
            spec: Some(Box::new(spec)),
            version: Some(o.version),
            changes: Vec::new(),
        });
    }
    if let Some(svc) = &args.service {
        if !previous.services.keys().any(|n| wanted(n)) {
            return Err(exit::invalid(format!(
                "{}: no service `{svc}` in release {}",
                t.env.name, previous.seq
            )));
        }
    }
    let plan = Plan {
        env: t.env.name.clone(),
        stack: stack.clone(),
        actions,
        unchanged: Vec::new(),
    };
    if plan.is_empty() {
        ui.ok(&format!(
            "{}: release {} runs the same services; nothing to roll back",
            t.env.name, previous.seq
        ));
        return Ok(exit::SUCCESS);
    }
    eprint!("{}", crate::ui::clean(&plan.to_string()));
    let desired = Desired {
        env: t.env.name.clone(),
        stack: stack.clone(),
        networks: Vec::new(),
        configs: Vec::new(),
        secrets: Vec::new(),
        services: Vec::new(),
    };
    let touched = plan.touched_services();
    let old_tasks = engine::wait::existing_tasks(&t.docker, &touched).await;
    engine::execute::execute(&t.docker, &plan, &desired, ui).await?;
    engine::wait::converge(
        &t.docker,
        &touched,
        &old_tasks,
        std::time::Duration::from_secs(600),
        ui,
    )
    .await?;
    crate::lifecycle::converge::record_release(&t, ui).await;
    ui.ok(&format!(
        "{} is back at release {}",
        t.env.name, previous.seq
    ));
    Ok(exit::SUCCESS)
}
