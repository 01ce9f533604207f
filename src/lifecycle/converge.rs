//! The one converge path that `up`, `scale` and `plan` share: validate, render, compute the
//! desired state, observe, reconcile, print the plan, execute it, wait for convergence.
//! Everything that can be checked is checked before the first change to the swarm.

use std::path::Path;
use std::time::Duration;

use crate::context::{entrypoint_on, Target};
use crate::engine::{self, SwarmApi};
use crate::lab::Lab;
use crate::manifest::Environment;
use crate::plan::{self, Desired, Options, Plan};
use crate::render;
use crate::ui::Ui;

use super::progress::Progress;

/// What the lifecycle works on: an environment (loaded and valid), its project, and the swarm
/// it runs on, through the engine seam (the API client, or an in-memory swarm in tests).
#[derive(Clone, Copy)]
pub struct Deployment<'a> {
    pub api: &'a dyn SwarmApi,
    pub env: &'a Environment,
    pub project_dir: &'a Path,
    /// The lab the environment runs on, if any (where its entrypoint answers).
    pub lab: Option<&'a Lab>,
}

impl Deployment<'_> {
    pub fn stack(&self) -> &str {
        self.env.stack()
    }
}

/// Renders the environment into build/ENV (so the files on disk match what is deployed) and
/// computes the desired state.
pub fn desired(t: &Target) -> anyhow::Result<Desired> {
    desired_for(&t.env, &t.project.dir)
}

/// [`desired`] for an environment of the project at PROJECT_DIR.
pub fn desired_for(env: &Environment, project_dir: &Path) -> anyhow::Result<Desired> {
    let out_dir = project_dir.join("build").join(&env.name);
    let output = render::render(env, project_dir, &out_dir)?;
    // Best effort, as before; through the one writer that stays in the folder and is atomic.
    let _ = render::write_output(&out_dir, &output);
    let inputs = render::inputs::gather(env, project_dir)?;
    let mut desired = plan::desired::desired(env, &output, &inputs)?;
    super::agent_image::set_in(env, &mut desired)?;
    Ok(desired)
}

pub async fn make_plan(t: &Target, opts: &Options, ui: &Ui) -> anyhow::Result<(Desired, Plan)> {
    let d = t.deployment();
    let mut desired = desired(t)?;
    pin_digests(&d, &mut desired, ui).await?;
    make_plan_with(&d, opts, desired).await
}

pub async fn make_plan_with(
    d: &Deployment<'_>,
    opts: &Options,
    desired: Desired,
) -> anyhow::Result<(Desired, Plan)> {
    let observed = engine::observe::observe(d.api, &desired.stack).await?;
    let mut plan = plan::reconcile(&desired, &observed, opts);
    plan.release = plan::order::release_steps(&plan, &d.env.manifest);
    Ok((desired, plan))
}

/// Images a deploy needs that twip builds and the engine lacks: build them (and push them when
/// the environment has a registry).
pub async fn ensure_images(t: &Target, ui: &Ui) -> anyhow::Result<()> {
    crate::lifecycle::images::ensure_images(&t.env, &t.docker, &t.project.dir, ui).await
}

/// Plan, execute, wait. Returns when the swarm runs what the manifest says.
pub async fn converge(
    t: &Target,
    opts: &Options,
    detach: bool,
    timeout: Duration,
    ui: &Ui,
) -> anyhow::Result<i32> {
    converge_to(t, opts, desired(t)?, detach, timeout, ui).await
}

/// Converge to a given desired state (`update --image` changes it first).
pub async fn converge_to(
    t: &Target,
    opts: &Options,
    desired: Desired,
    detach: bool,
    timeout: Duration,
    ui: &Ui,
) -> anyhow::Result<i32> {
    // Images first: what is deployed must exist, and with a registry its digest is what the
    // services refer to (a rebuilt image under the same tag then rolls out too).
    ensure_images(t, ui).await?;
    super::agent_image::ensure(&t.env, &t.docker, &desired, ui).await?;
    converge_on(&t.deployment(), opts, desired, detach, timeout, ui).await
}

/// The converge path once the images exist: pin digests, observe, reconcile, print the plan,
/// execute it, wait for convergence, record the release.
pub async fn converge_on(
    d: &Deployment<'_>,
    opts: &Options,
    desired: Desired,
    detach: bool,
    timeout: Duration,
    ui: &Ui,
) -> anyhow::Result<i32> {
    let mut desired = desired;
    pin_digests(d, &mut desired, ui).await?;
    let (desired, plan) = make_plan_with(d, opts, desired).await?;
    if plan.is_empty() {
        ui.ok(plan.to_string().trim_end());
        return Ok(crate::exit::SUCCESS);
    }
    if !ui.quiet {
        eprint!("{}", crate::ui::clean(&plan.to_string()));
    }
    super::hooks::pre_deploy(d, &plan, ui).await?;
    let applied = super::ordered::apply(d, &plan, &desired, timeout, ui).await;
    let before = super::history::on_failure(d, &plan, ui, applied).await?;
    if detach {
        record_release(d, &plan, "not waited", ui).await;
        ui.info("not waiting (--detach); `twip status` shows progress");
        return Ok(crate::exit::SUCCESS);
    }
    let touched = plan::order::to_converge(&plan, &d.env.manifest);
    ui.info(&format!(
        "waiting for {} service{} to converge",
        touched.len(),
        if touched.len() == 1 { "" } else { "s" }
    ));
    let waited = wait(d, &touched, &before, timeout, ui).await;
    super::history::on_failure(d, &plan, ui, waited).await?;
    let release = record_release(d, &plan, "converged", ui).await;
    ui.ok(&format!("{} is up", d.env.name));
    let vip = crate::render::context::vip::vip_url(d.env);
    if let Some(url) = vip.or_else(|| entrypoint_on(d.env, d.lab)) {
        ui.info(&format!("  {url}"));
    }
    super::hooks::post("post-deploy", d, &plan, release, ui).await?;
    Ok(crate::exit::SUCCESS)
}

/// Executes PLAN, each finished action shown as it is done. Returns what the touched services
/// looked like before (what [`wait`] needs to tell this change's failures from older ones).
pub async fn apply(
    d: &Deployment<'_>,
    plan: &Plan,
    desired: &Desired,
    ui: &Ui,
) -> anyhow::Result<engine::wait::Before> {
    let before = engine::wait::existing_tasks(d.api, &plan.touched_services()).await;
    engine::execute::execute(d.api, plan, desired, &mut Progress::new(ui)).await?;
    Ok(before)
}

/// Waits until SERVICES converge (exit 3 after TIMEOUT, 4 rolled back, 5 paused).
pub async fn wait(
    d: &Deployment<'_>,
    services: &[String],
    before: &engine::wait::Before,
    timeout: Duration,
    ui: &Ui,
) -> anyhow::Result<()> {
    let mut progress = Progress::new(ui);
    engine::wait::converge(d.api, services, before, timeout, &mut progress).await
}

/// Services whose image is one twip builds, with that image's reference: (service, image).
fn built_images(d: &Deployment<'_>, desired: &Desired) -> Vec<(String, String)> {
    let m = &d.env.manifest;
    desired
        .services
        .iter()
        .filter_map(|s| {
            let image = s
                .spec
                .task_template
                .as_ref()
                .and_then(|tt| tt.container_spec.as_ref())
                .and_then(|c| c.image.clone())?;
            m.images
                .iter()
                .any(|(name, i)| {
                    i.build.is_some() && crate::render::context::image_ref(d.env, name) == image
                })
                .then(|| (s.short.clone(), image))
        })
        .collect()
}

/// With a registry, services run images twip builds by digest (`REF@sha256:...`), read from
/// the registry through the engine. Without one there is no digest to pin: those services
/// carry the local image's id as the container label `io.twip.image-id` instead (read from the
/// manager's engine), so `up` after a rebuild under the same tag rolls the new image out rather
/// than finding the stack up to date.
pub async fn pin_digests(d: &Deployment<'_>, desired: &mut Desired, ui: &Ui) -> anyhow::Result<()> {
    let with_registry = d.env.manifest.registry.is_some();
    for (svc, image) in built_images(d, desired) {
        if with_registry {
            if image.contains('@') {
                continue;
            }
            match d.api.registry_digest(&image).await {
                Ok(digest) => {
                    if let Some(digest) = digest {
                        let pinned = format!("{image}@{digest}");
                        ui.debug(&format!("{svc}: {pinned}"));
                        desired.set_image(&svc, &pinned);
                    }
                }
                Err(e) => ui.warn(&format!(
                    "{image}: no digest from the registry ({e}); deploying by tag"
                )),
            }
        } else {
            match d.api.image_id(&image).await {
                Ok(Some(id)) => {
                    desired.set_container_label(&svc, IMAGE_ID_LABEL, &id);
                }
                Ok(None) => ui.debug(&format!("{image}: not on the manager's engine")),
                Err(e) => ui.debug(&format!("{image}: not on the manager's engine ({e})")),
            }
        }
    }
    Ok(())
}

pub use crate::labels::IMAGE_ID as IMAGE_ID_LABEL;

/// Records what runs now, after PLAN ended with OUTCOME, as the stack's newest release (for
/// `twip history` and `twip rollback`); see [`super::history::record`].
pub async fn record_release(
    d: &Deployment<'_>,
    plan: &Plan,
    outcome: &str,
    ui: &Ui,
) -> Option<u64> {
    super::history::record(d, plan, outcome, ui).await
}
