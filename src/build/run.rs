//! Runs what [`super::plan`] decided: preflight checks, then one `docker buildx build` per image
//! (a few at once), each a command whose pasteable line is in the error when it fails; and
//! `twip push` (tag and `docker push`, so the user's credential helpers are used).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::anyhow;

use super::plan::{cli_env, fit_outputs_to_driver, plan, tags, BuildOptions, ImageBuild};
use crate::exec::buildx::{self, BuilderInfo};
use crate::exec::preflight::{self, CliEnv};
use crate::exec::{docker as docker_cmd, git, run, RunError, RunOpts};
use crate::exit::invalid;
use crate::manifest::Environment;
use crate::ui::Ui;

/// Checks everything the builds need before the first one starts (the checks run at once).
pub async fn preflight_builds(cli: &CliEnv, builds: &[ImageBuild]) -> anyhow::Result<BuilderInfo> {
    preflight::docker_cli()?;
    let mut wanted: Vec<String> = builds.iter().flat_map(|b| b.platforms.clone()).collect();
    wanted.sort();
    wanted.dedup();
    let multi = builds.iter().any(|b| b.platforms.len() > 1);
    let mut hosts: Vec<&str> = builds
        .iter()
        .filter(|b| b.pushes())
        .filter_map(|b| docker_cmd::registry_host(b.deploy_ref()))
        .collect();
    hosts.sort();
    hosts.dedup();
    let store = async {
        if multi {
            preflight::containerd_store(cli).await.map(Some)
        } else {
            Ok(None)
        }
    };
    let registries = async {
        for h in &hosts {
            preflight::registry_reachable(h).await?;
        }
        anyhow::Ok(())
    };
    let (info, store, registries) = tokio::join!(preflight::builder(cli), store, registries);
    let info = info?;
    preflight::check_platforms(&info, &wanted)?;
    if let Some(containerd) = store? {
        preflight::check_multi_platform_store(&info, containerd)?;
    }
    registries?;
    Ok(info)
}

/// A finished build, for the summary.
#[derive(Debug, Clone)]
pub struct Built {
    pub name: String,
    pub refs: Vec<String>,
    pub platforms: Vec<String>,
    pub pushed: bool,
    pub digest: Option<String>,
    pub duration: Duration,
}

/// Attempts of a build whose push meets a registry's transient server error (the build
/// itself is cached the second time).
const PUSH_ATTEMPTS: u32 = 3;

fn stream_builds(ui: &Ui) -> bool {
    !ui.quiet && (ui.verbose > 0 || ui.interactive)
}

/// Runs one build. A failure carries the command, its output and, for registry refusals,
/// what to do.
async fn build_one(cli: &CliEnv, b: &ImageBuild, ui: &Ui) -> anyhow::Result<Built> {
    let meta =
        std::env::temp_dir().join(format!("twip-build-{}-{}.json", std::process::id(), b.name));
    let mut spec = b.spec.clone();
    spec.metadata_file = Some(meta.clone());
    let cmd = cli.apply(buildx::build(&spec)?);
    let platforms = if b.platforms.is_empty() {
        "the builder's platform".to_string()
    } else {
        b.platforms.join(", ")
    };
    ui.info(&format!("building {} for {platforms}", b.name));
    ui.debug(&format!("$ {cmd}"));
    let opts = if stream_builds(ui) {
        RunOpts::streamed(format!("[{}] ", b.name))
    } else {
        RunOpts::quiet()
    };
    let started = Instant::now();
    let mut res = run(&cmd, &opts).await;
    for attempt in 2..=PUSH_ATTEMPTS {
        match &res {
            Err(e) if b.pushes() && transient_push_error(e, b) => {
                ui.warn(&format!(
                    "the registry answered a server error while {} was pushed; again (attempt {attempt} of {PUSH_ATTEMPTS})",
                    b.name
                ));
                tokio::time::sleep(Duration::from_secs(1)).await;
                res = run(&cmd, &opts).await;
            }
            _ => break,
        }
    }
    let digest = std::fs::read_to_string(&meta)
        .ok()
        .and_then(|j| buildx::digest_from_metadata(&j));
    let _ = std::fs::remove_file(&meta);
    if let Err(e) = res {
        return Err(build_error(e, b));
    }
    let duration = started.elapsed();
    ui.ok(&format!(
        "built {} in {:.1}s{}",
        b.name,
        duration.as_secs_f64(),
        if b.pushes() { " and pushed it" } else { "" }
    ));
    Ok(Built {
        name: b.name.clone(),
        refs: b.refs.clone(),
        platforms: b.platforms.clone(),
        pushed: b.pushes(),
        digest,
        duration,
    })
}

/// How many builds run at once: `TWIP_BUILD_JOBS`, default 4 (BuildKit schedules their
/// steps; a no-change rebuild mostly waits on the engine and the registry).
fn build_jobs() -> usize {
    std::env::var("TWIP_BUILD_JOBS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(4)
}

/// Runs the builds, up to [`build_jobs`] at once, each to its end. When some fail, the others
/// still finish; every failure is reported, the first (in plan order) is returned.
pub async fn build_all(cli: &CliEnv, builds: &[ImageBuild], ui: &Ui) -> anyhow::Result<Vec<Built>> {
    use futures_util::stream::{self, StreamExt};
    let results: Vec<anyhow::Result<Built>> = stream::iter(builds)
        .map(|b| build_one(cli, b, ui))
        .buffered(build_jobs())
        .collect()
        .await;
    let mut built = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(b) => built.push(b),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        return Ok(built);
    }
    let first = errors.remove(0);
    for e in &errors {
        ui.report_error(e);
    }
    Err(first)
}

/// A build whose push met the registry's transient server error (judged on the output lines
/// that name the registry).
fn transient_push_error(e: &RunError, b: &ImageBuild) -> bool {
    docker_cmd::registry_host(b.deploy_ref()).is_some_and(|host| {
        docker_cmd::transient_registry_error(&docker_cmd::lines_about(&e.output(), host))
    })
}

fn build_error(e: RunError, b: &ImageBuild) -> anyhow::Error {
    let host = docker_cmd::registry_host(b.deploy_ref()).unwrap_or("the registry");
    let hint = if b.pushes() {
        docker_cmd::registry_hint(&docker_cmd::lines_about(&e.output(), host), host)
    } else {
        None
    };
    let what = if hint.is_some() {
        format!("pushing image `{}` failed", b.name)
    } else {
        format!("building image `{}` failed", b.name)
    };
    anyhow::Error::new(e.with_hint(hint)).context(what)
}

/// The summary: the number of images and the wall time of the builds (they overlap), then
/// per image its platforms, its time, loaded or pushed, its references and digest.
pub fn summary(ui: &Ui, built: &[Built], total: Duration) {
    if built.is_empty() {
        return;
    }
    ui.info(&format!(
        "{} image(s) in {:.2}s:",
        built.len(),
        total.as_secs_f64()
    ));
    for b in built {
        let platforms = if b.platforms.is_empty() {
            "engine platform".to_string()
        } else {
            b.platforms.join(",")
        };
        ui.info(&format!(
            "  {}  [{platforms}]  {:.1}s  {}",
            b.name,
            b.duration.as_secs_f64(),
            if b.pushed { "pushed" } else { "loaded" }
        ));
        for r in &b.refs {
            ui.info(&format!("    {r}"));
        }
        if let Some(d) = &b.digest {
            ui.info(&format!("    digest {d}"));
        }
    }
}

/// `TWIP_BUILD_CACHE`: a directory for a local BuildKit cache (`--cache-from/--cache-to
/// type=local`), one subdirectory per image. Unset: the builder's own cache only.
pub fn cache_dir_from_env() -> Option<PathBuf> {
    std::env::var_os("TWIP_BUILD_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `twip build`: the builds `opts` asks for (its `commit` is filled in here), with the docker
/// CLI pointed at `host` (`--host`) or the manifest's engine.
pub async fn build(
    env: &Environment,
    project_dir: &Path,
    host: Option<&str>,
    mut opts: BuildOptions,
    ui: &Ui,
) -> anyhow::Result<()> {
    // Input checks that need no subprocess first (exit 2 before anything runs).
    let draft = plan(env, project_dir, &opts)?;
    if draft.is_empty() {
        ui.info(&format!(
            "environment `{}` declares no image with a `build` section: nothing to build",
            env.name
        ));
        return Ok(());
    }
    // The preflight checks and the git commit do not depend on each other.
    let cli = cli_env(host, env);
    let (checked, commit) = tokio::join!(
        preflight_builds(&cli, &draft),
        git::commit_tag_of(project_dir)
    );
    let builder = checked?;
    opts.commit = commit;
    match &opts.commit {
        Some(c) => ui.debug(&format!("git commit tag: {c}")),
        None => ui.debug("not a git work tree: no commit tag"),
    }
    let mut builds = plan(env, project_dir, &opts)?;
    fit_outputs_to_driver(&mut builds, &builder.driver);
    let started = Instant::now();
    let built = build_all(&cli, &builds, ui).await?;
    let took = started.elapsed();
    summary(ui, &built, took);
    Ok(())
}

/// `twip push`: tags and pushes the images `twip build` made, through `docker push` (so the
/// user's credential helpers are used; twip never reads, prints or writes credentials).
pub async fn push(
    env: &Environment,
    project_dir: &Path,
    host: Option<&str>,
    ui: &Ui,
) -> anyhow::Result<()> {
    let Some(registry) = env.manifest.registry.as_ref() else {
        return Err(invalid(format!(
            "environment `{}` has no registry: `twip push` needs `registry: {{url: HOST[:PORT]}}` in the manifest",
            env.name
        )));
    };
    let names: Vec<String> = env
        .manifest
        .images
        .iter()
        .filter(|(_, i)| i.build.is_some())
        .map(|(n, _)| n.clone())
        .collect();
    if names.is_empty() {
        ui.info(&format!(
            "environment `{}` declares no image with a `build` section: nothing to push",
            env.name
        ));
        return Ok(());
    }
    preflight::docker_cli()?;
    let cli = cli_env(host, env);
    let commit = git::commit_tag_of(project_dir).await;
    // What is there to push: every image's deployed reference must be in the engine.
    let (plan, missing) = what_to_push(&cli, env, &names, commit.as_deref(), ui).await?;
    if !missing.is_empty() {
        return Err(anyhow!(
            "not in the engine, so nothing to push: {}; build first: `twip build {}`",
            missing.join(", "),
            env.name
        ));
    }
    let host = docker_cmd::registry_host(&plan[0].1[0])
        .unwrap_or(registry.url.as_str())
        .to_string();
    preflight::registry_reachable(&host).await?;
    let started = Instant::now();
    let mut count = 0;
    for (name, refs) in &plan {
        for r in refs {
            let cmd = cli.apply(docker_cmd::push(r)?);
            ui.debug(&format!("$ {cmd}"));
            let opts = if ui.verbose > 0 && !ui.quiet {
                RunOpts::streamed(format!("[{name}] "))
            } else {
                RunOpts::quiet()
            };
            let mut res = run(&cmd, &opts).await;
            for attempt in 2..=PUSH_ATTEMPTS {
                match &res {
                    Err(e) if docker_cmd::transient_registry_error(&e.output()) => {
                        ui.warn(&format!(
                            "the registry answered a server error for {r}; again (attempt {attempt} of {PUSH_ATTEMPTS})"
                        ));
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        res = run(&cmd, &opts).await;
                    }
                    _ => break,
                }
            }
            res.map_err(|e| {
                let hint = docker_cmd::registry_hint(&e.output(), &host);
                anyhow::Error::new(e.with_hint(hint)).context(format!("pushing {r} failed"))
            })?;
            ui.ok(&format!("pushed {r}"));
            count += 1;
        }
    }
    ui.info(&format!(
        "{count} reference(s) of {} image(s) pushed to {host} in {:.1}s",
        plan.len(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// What `push` pushes, by image: the deployed reference and the other tags that are in the
/// engine (tagging the missing ones, except another commit's); and the deployed references
/// that are not in the engine.
async fn what_to_push(
    cli: &CliEnv,
    env: &Environment,
    names: &[String],
    commit: Option<&str>,
    ui: &Ui,
) -> anyhow::Result<(Vec<(String, Vec<String>)>, Vec<String>)> {
    let mut plan: Vec<(String, Vec<String>)> = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        let refs = tags(env, name, commit);
        // Every command of this image is checked before any runs.
        for r in &refs {
            docker_cmd::push(r)?;
        }
        if run(
            &cli.apply(docker_cmd::image_id(&refs[0])?),
            &RunOpts::quiet(),
        )
        .await
        .is_err()
        {
            missing.push(refs[0].clone());
            continue;
        }
        let mut push_refs = vec![refs[0].clone()];
        for r in &refs[1..] {
            let have = run(&cli.apply(docker_cmd::image_id(r)?), &RunOpts::quiet())
                .await
                .is_ok();
            let is_commit = commit.is_some_and(|c| r.ends_with(&format!(":{c}")));
            if have {
                push_refs.push(r.clone());
            } else if is_commit {
                ui.debug(&format!(
                    "{r} is not in the engine (built from another commit?); not pushed"
                ));
            } else {
                run(&cli.apply(docker_cmd::tag(&refs[0], r)?), &RunOpts::quiet())
                    .await
                    .map_err(|e| anyhow::Error::new(e).context(format!("cannot tag {r}")))?;
                push_refs.push(r.clone());
            }
        }
        plan.push((name.clone(), push_refs));
    }
    Ok((plan, missing))
}
