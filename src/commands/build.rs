//! `twip build` and `twip push` (alias `pack`): the command line, wired to [`crate::build`].
//! [`ensure_images`], which `twip up` calls before a deploy, lives in the lifecycle.

use crate::build::plan::BuildOptions;
use crate::build::run::{self, cache_dir_from_env};
use crate::cli::{BuildArgs, EnvArg, GlobalArgs};
use crate::lifecycle::lock::{self, Operation};
use crate::project::Project;
use crate::ui::Ui;

/// `twip build ENV [--service S]... [--platform P,...] [--push] [--no-cache] [--no-hooks]`: the
/// project's `hooks/pre-build` first (a failure builds nothing).
pub async fn run_build(g: &GlobalArgs, args: &BuildArgs, ui: &Ui) -> anyhow::Result<i32> {
    let project = Project::discover(g.project_dir.as_deref())?;
    let env = project.load(&args.env)?;
    let images = if args.services.is_empty() {
        crate::build::deployed_build_images(&env)
    } else {
        args.services.clone()
    };
    let op = Operation::here("build").hooks(!args.no_hooks);
    lock::scoped(
        op,
        crate::lifecycle::hooks::pre_build_alone(&env, &project.dir, &images, ui),
    )
    .await?;
    let opts = BuildOptions {
        services: args.services.clone(),
        platforms: args.platform.iter().map(|p| p.trim().to_string()).collect(),
        push: args.push,
        no_cache: args.no_cache,
        commit: None,
        cache_dir: cache_dir_from_env(),
    };
    run::build(&env, &project.dir, g.host.as_deref(), opts, ui).await?;
    Ok(crate::exit::SUCCESS)
}

/// `twip push ENV`: tags and pushes the images `twip build` made, through `docker push` (so the
/// user's credential helpers are used; twip never reads, prints or writes credentials).
pub async fn run_push(g: &GlobalArgs, args: &EnvArg, ui: &Ui) -> anyhow::Result<i32> {
    let project = Project::discover(g.project_dir.as_deref())?;
    let env = project.load(&args.env)?;
    run::push(&env, &project.dir, g.host.as_deref(), ui).await?;
    Ok(crate::exit::SUCCESS)
}
