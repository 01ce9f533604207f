//! The one converge path that `up`, `scale` and `plan` share: validate, render, compute the
//! desired state, observe, reconcile, print the plan, execute it, wait for convergence.
//! Everything that can be checked is checked before the first change to the swarm.

use std::time::Duration;

use crate::context::{entrypoint_on, Target};
use crate::engine;
use crate::plan::{self, Desired, Options, Plan};
use crate::render;
use crate::ui::Ui;

/// Renders the environment into build/ENV (so the files on disk match what is deployed) and
/// computes the desired state.
pub fn desired(t: &Target) -> anyhow::Result<Desired> {
    let out_dir = t.project.dir.join("build").join(&t.env.name);
    let output = render::render(&t.env, &t.project.dir, &out_dir)?;
    // Best effort, as before; through the one writer that stays in the folder and is atomic.
    let _ = render::write_output(&out_dir, &output);
    plan::desired::desired(&t.env, &t.project.dir, &output)
}

pub async fn make_plan(t: &Target, opts: &Options, ui: &Ui) -> anyhow::Result<(Desired, Plan)> {
    let mut desired = desired(t)?;
    pin_digests(t, &mut desired, ui).await?;
    make_plan_with(t, opts, desired).await
}

pub async fn make_plan_with(
    t: &Target,
    opts: &Options,
    desired: Desired,
) -> anyhow::Result<(Desired, Plan)> {
    let observed = engine::observe::observe(&t.docker, &desired.stack).await?;
    let plan = plan::reconcile(&desired, &observed, opts);
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
    let mut desired = desired;
    pin_digests(t, &mut desired, ui).await?;
    let (desired, plan) = make_plan_with(t, opts, desired).await?;
    if plan.is_empty() {
        ui.ok(plan.to_string().trim_end());
        return Ok(crate::exit::SUCCESS);
    }
    if !ui.quiet {
        eprint!("{}", crate::ui::clean(&plan.to_string()));
    }
    let touched = plan.touched_services();
    let old_tasks = engine::wait::existing_tasks(&t.docker, &touched).await;
    engine::execute::execute(&t.docker, &plan, &desired, ui).await?;
    if detach {
        ui.info("not waiting (--detach); `twip status` shows progress");
        return Ok(crate::exit::SUCCESS);
    }
    ui.info(&format!(
        "waiting for {} service{} to converge",
        touched.len(),
        if touched.len() == 1 { "" } else { "s" }
    ));
    engine::wait::converge(&t.docker, &touched, &old_tasks, timeout, ui).await?;
    record_release(t, ui).await;
    ui.ok(&format!("{} is up", t.env.name));
    if let Some(url) = entrypoint_on(&t.env, t.lab.as_ref()) {
        ui.info(&format!("  {url}"));
    }
    Ok(crate::exit::SUCCESS)
}

/// Services whose image is one twip builds, with that image's reference: (service, image).
fn built_images(t: &Target, desired: &Desired) -> Vec<(String, String)> {
    let m = &t.env.manifest;
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
                    i.build.is_some() && crate::render::context::image_ref(&t.env, name) == image
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
pub async fn pin_digests(t: &Target, desired: &mut Desired, ui: &Ui) -> anyhow::Result<()> {
    let with_registry = t.env.manifest.registry.is_some();
    for (svc, image) in built_images(t, desired) {
        if with_registry {
            if image.contains('@') {
                continue;
            }
            match t.docker.inspect_registry_image(&image, None).await {
                Ok(d) => {
                    if let Some(digest) = d.descriptor.digest {
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
            match t.docker.inspect_image(&image).await {
                Ok(i) => {
                    if let Some(id) = i.id {
                        desired.set_container_label(&svc, IMAGE_ID_LABEL, &id);
                    }
                }
                Err(e) => ui.debug(&format!("{image}: not on the manager's engine ({e})")),
            }
        }
    }
    Ok(())
}

pub use crate::labels::IMAGE_ID as IMAGE_ID_LABEL;

/// Records what runs now as the stack's newest release (for `twip rollback`). A failure to
/// record is a warning: the deploy itself succeeded.
pub async fn record_release(t: &Target, ui: &Ui) {
    let stack = t.env.stack();
    let result = async {
        let obs = engine::observe::observe(&t.docker, stack).await?;
        let services = obs.services.into_iter().map(|s| (s.name, s.spec)).collect();
        let labels = plan::desired::stack_labels(&t.env);
        engine::releases::record(&t.docker, stack, services, labels).await
    }
    .await;
    match result {
        Ok(seq) => ui.debug(&format!("recorded as release {seq} of {stack}")),
        Err(e) => ui.warn(&format!(
            "could not record the release (rollback will not see it): {e}"
        )),
    }
}
