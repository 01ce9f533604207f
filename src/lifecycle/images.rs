//! Images at deploy time: [`ensure_images`] builds what a deploy needs and the engine lacks,
//! and delivers it to the engine when the docker CLI built it elsewhere; [`prepare_lab`] also
//! labels a lab's nodes and loads the images into them before `up --lab` converges.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;

use crate::build::plan::{
    cli_env, deployed_build_images, fit_outputs_to_driver, plan, BuildOptions, ImageBuild,
};
use crate::build::run::{build_all, cache_dir_from_env, preflight_builds, summary};
use crate::engine::{self, images, Docker, Endpoint};
use crate::exec::git;
use crate::lab::Lab;
use crate::manifest::Environment;
use crate::render::context::image_ref;
use crate::ui::Ui;

/// Makes sure every image the environment deploys that twip builds is in the engine `docker`
/// before a deploy. Called by `twip up`; its signature is stable.
///
/// For each image that a service, the proxy or monitoring deploys and that has a `build`
/// section, when its deploy reference (`image_ref`, the first tag) is missing from `docker`:
/// builds it with buildx for `docker`'s own platform (`--load`, and `--push` too when the
/// environment has a registry), with the manifest's build args and the tags of [`tags`].
/// The docker CLI builds on the manifest's engine (`engine.host`) or its own default; when
/// that is not the engine `docker` talks to, the image is then streamed into `docker` through
/// the API. Images present already are left alone (no rebuild: `twip build` does that), and
/// images with `ref` are left to the engine to pull. Build output is shown live with `-v` or
/// on a terminal, and is in the error when a build fails.
pub async fn ensure_images(
    env: &Environment,
    docker: &Docker,
    project_dir: &Path,
    ui: &Ui,
) -> anyhow::Result<()> {
    let mut missing = Vec::new();
    for name in deployed_build_images(env) {
        let r = image_ref(env, &name);
        if images::exists(docker, &r).await? {
            ui.debug(&format!("{r} is in the engine"));
        } else {
            missing.push(name);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    super::hooks::pre_build(docker, env, project_dir, &missing, ui).await?;
    let platform = images::platform(docker).await?;
    let commit = git::commit_tag_of(project_dir).await;
    let opts = BuildOptions {
        services: Vec::new(),
        platforms: vec![platform.clone()],
        push: env.manifest.registry.is_some(),
        no_cache: false,
        commit,
        cache_dir: cache_dir_from_env(),
    };
    let mut builds: Vec<ImageBuild> = plan(env, project_dir, &opts)?
        .into_iter()
        .filter(|b| missing.contains(&b.name))
        .collect();
    ui.info(&format!(
        "{} image(s) missing from the engine, building for {platform}: {}",
        builds.len(),
        missing.join(", ")
    ));
    let cli = cli_env(None, env);
    let builder = preflight_builds(&cli, &builds).await?;
    fit_outputs_to_driver(&mut builds, &builder.driver);
    let started = Instant::now();
    let built = build_all(&cli, &builds, ui).await?;
    let took = started.elapsed();
    // The CLI may have built on another engine than `docker`: deliver what is still missing.
    let mut source: Option<Docker> = None;
    for b in &builds {
        if images::exists(docker, b.deploy_ref())
            .await
            .unwrap_or(false)
        {
            continue;
        }
        let src = match &source {
            Some(s) => s.clone(),
            None => {
                let ep = cli_endpoint(env);
                let s = engine::connect(&ep)
                    .await
                    .context("connecting to the engine the docker CLI built on")?;
                source = Some(s.clone());
                s
            }
        };
        let d = images::deliver(&src, docker, b.deploy_ref()).await?;
        ui.ok(&format!("{}: {d}", b.deploy_ref()));
    }
    summary(ui, &built, took);
    Ok(())
}

/// The engine the docker CLI uses when twip sets no DOCKER_HOST: the manifest's engine, else
/// DOCKER_HOST, else the local socket.
fn cli_endpoint(env: &Environment) -> Endpoint {
    Endpoint::resolve(None, Some(env))
}

/// What `twip up ENV --lab NAME` does before it converges: the manifest's node labels on the
/// lab nodes that stand in for its nodes (through `swarm join`, which skips nodes already in),
/// then the stack's images, built in the local engine when missing, loaded into every lab node
/// that lacks them (lab nodes cannot reach the host's registries).
/// HOST is `--host` (the engine the manifest's nodes are reached through, when given).
pub async fn prepare_lab(
    host: Option<&str>,
    t: &crate::context::Target,
    lab: &Lab,
    ui: &Ui,
) -> anyhow::Result<()> {
    crate::nodes::join_env(
        host,
        &t.project.dir,
        &t.env,
        Some(lab),
        crate::lab::provision::READY_WAIT,
        ui,
    )
    .await?;
    let local = engine::connect(&Endpoint::resolve(None, None)).await?;
    ensure_images(&t.env, &local, &t.project.dir, ui).await?;
    let mut refs = crate::build::deployed_refs(&t.env);
    // The agent's image too, when the stack runs one: lab nodes cannot pull it either.
    if crate::agent::for_stack(&t.env, &t.project.dir)?.is_some() {
        refs.push(super::agent_image::ensure_built(&t.env, &local, ui).await?);
    }
    // And the scheduled jobs' images: the agent starts their runs on any node.
    refs.extend(
        t.env
            .manifest
            .jobs
            .values()
            .map(|j| image_ref(&t.env, &j.image)),
    );
    refs.sort();
    refs.dedup();
    crate::lab::deliver(lab, &refs, ui).await
}
