//! `twip build`, `twip push` (alias `pack`), and [`ensure_images`], which the lifecycle calls
//! before a deploy.
//!
//! Decisions are made first and purely ([`plan`], [`tags`]): which images, which platforms,
//! which tags, load or push. Input problems are reported (exit 2) before anything runs. Then
//! the preflight checks, then one `docker buildx build` per image, each a [`Cmd`] whose
//! pasteable line is in the error when it fails.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use bollard::Docker;

use crate::cli::{BuildArgs, EnvArg, GlobalArgs};
use crate::engine::{self, Endpoint, EngineError};
use crate::exec::buildx::{self, BuildSpec, BuilderInfo, Output};
use crate::exec::preflight::{self, CliEnv};
use crate::exec::{docker as docker_cmd, git, run, RunError, RunOpts};
use crate::exit::invalid;
use crate::manifest::validate::{MONITORING_SERVICE, PLATFORMS, PROXY_SERVICE};
use crate::manifest::Environment;
use crate::project::Project;
use crate::render::context::{image_ref, image_repository};
use crate::ui::Ui;

/// What `twip build` was asked, after the command line.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Only the images these services deploy (empty: every image with `build`).
    pub services: Vec<String>,
    /// Platforms for every image (empty: each image's own `platforms`).
    pub platforms: Vec<String>,
    pub push: bool,
    pub no_cache: bool,
    /// The git commit tag (`abc1234` or `abc1234-dirty`), when the project is in git.
    pub commit: Option<String>,
    /// A local BuildKit cache directory (`TWIP_BUILD_CACHE`); one subdirectory per image.
    pub cache_dir: Option<PathBuf>,
}

/// One image to build, fully decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageBuild {
    /// The `images` entry.
    pub name: String,
    /// Every reference it is tagged with; the first is the one services deploy.
    pub refs: Vec<String>,
    /// Empty: the builder's own platform.
    pub platforms: Vec<String>,
    pub spec: BuildSpec,
}

impl ImageBuild {
    pub fn deploy_ref(&self) -> &str {
        &self.refs[0]
    }

    pub fn pushes(&self) -> bool {
        matches!(self.spec.output, Output::Push | Output::LoadAndPush)
    }
}

/// The references an image is tagged with: the manifest's tags (the first is deployed; default
/// `latest`), the git commit (`-dirty` when the tree is), and `latest`, on the image's repository.
pub fn tags(env: &Environment, name: &str, commit: Option<&str>) -> Vec<String> {
    let repo = image_repository(env, name);
    let mut out: Vec<String> = Vec::new();
    let img = env.manifest.images.get(name);
    let mut manifest_tags: Vec<String> = img
        .map(|i| i.tags.iter().map(|t| t.0.clone()).collect())
        .unwrap_or_default();
    if manifest_tags.is_empty() {
        // The deployed tag comes first: without manifest tags it is `latest`.
        manifest_tags.push("latest".to_string());
    }
    for t in manifest_tags
        .into_iter()
        .chain(commit.map(str::to_string))
        .chain(std::iter::once("latest".to_string()))
    {
        let r = format!("{repo}:{t}");
        if !out.contains(&r) {
            out.push(r);
        }
    }
    debug_assert_eq!(out[0], image_ref(env, name));
    out
}

/// The `image:` values the environment deploys: its services', the proxy's and monitoring's
/// (by service name, sorted).
pub fn deployed_images(env: &Environment) -> Vec<(String, String)> {
    let m = &env.manifest;
    let mut out: Vec<(String, String)> = m
        .services
        .iter()
        .map(|(n, s)| (n.clone(), s.image.clone()))
        .collect();
    if let Some(p) = &m.proxy {
        out.push((
            PROXY_SERVICE.to_string(),
            p.image.clone().unwrap_or_else(|| "proxy".to_string()),
        ));
    }
    if let Some(mon) = m.monitoring.as_ref().filter(|x| x.enabled) {
        out.push((MONITORING_SERVICE.to_string(), mon.image.clone()));
    }
    out.sort();
    out
}

/// `images` entries with a `build` section that the environment deploys.
pub fn deployed_build_images(env: &Environment) -> Vec<String> {
    let mut names: Vec<String> = deployed_images(env)
        .into_iter()
        .map(|(_, image)| image)
        .filter(|i| {
            env.manifest
                .images
                .get(i)
                .is_some_and(|img| img.build.is_some())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

pub use crate::suggest::closest;

/// Checks a platform string against the ones buildx and swarm know.
pub fn check_platform(p: &str) -> anyhow::Result<()> {
    if PLATFORMS.contains(&p) {
        return Ok(());
    }
    let hint = closest(p, PLATFORMS)
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default();
    Err(invalid(format!(
        "`{p}` is not a platform{hint} (known: {})",
        PLATFORMS.join(", ")
    )))
}

/// Decides what to build. Pure: input problems are [`crate::exit::InvalidInput`] (exit 2).
pub fn plan(
    env: &Environment,
    project_dir: &Path,
    opts: &BuildOptions,
) -> anyhow::Result<Vec<ImageBuild>> {
    let m = &env.manifest;
    for p in &opts.platforms {
        check_platform(p)?;
    }
    let names: Vec<String> = if opts.services.is_empty() {
        m.images
            .iter()
            .filter(|(_, i)| i.build.is_some())
            .map(|(n, _)| n.clone())
            .collect()
    } else {
        let deployed = deployed_images(env);
        let known: Vec<&str> = deployed.iter().map(|(s, _)| s.as_str()).collect();
        let mut names = Vec::new();
        for s in &opts.services {
            let Some((_, image)) = deployed.iter().find(|(n, _)| n == s) else {
                let hint = closest(s, &known)
                    .map(|x| format!("; did you mean `{x}`?"))
                    .unwrap_or_default();
                return Err(invalid(format!(
                    "no service `{s}` in environment `{}`{hint} (services: {})",
                    env.name,
                    known.join(", ")
                )));
            };
            match m.images.get(image) {
                Some(i) if i.build.is_some() => {
                    if !names.contains(image) {
                        names.push(image.clone());
                    }
                }
                _ => {
                    return Err(invalid(format!(
                        "service `{s}` deploys `{}`, which twip does not build (no `build` section in `images`)",
                        image_ref(env, image)
                    )))
                }
            }
        }
        names.sort();
        names
    };
    let mut out = Vec::new();
    for name in names {
        let img = &m.images[&name];
        let b = img.build.as_ref().expect("filtered on build");
        let platforms = if opts.platforms.is_empty() {
            img.platforms.clone()
        } else {
            opts.platforms.clone()
        };
        if platforms.len() > 1 && !opts.push {
            return Err(invalid(format!(
                "image `{name}` is for {} platforms ({}): a multi-platform image cannot be loaded \
                 into most engines; add --push to push it to the registry, or build one platform \
                 with --platform",
                platforms.len(),
                platforms.join(", ")
            )));
        }
        let refs = tags(env, &name, opts.commit.as_deref());
        if opts.push && docker_cmd::registry_host(&refs[0]).is_none() {
            return Err(invalid(format!(
                "environment `{}` has no registry: --push needs `registry: {{url: HOST[:PORT]}}` \
                 in the manifest (image `{name}` would go to Docker Hub as `{}`)",
                env.name, refs[0]
            )));
        }
        let context = absolute(&project_dir.join(&b.context));
        let mut spec = BuildSpec::new(&context);
        spec.dockerfile = b.dockerfile.as_ref().map(|d| context.join(d));
        spec.platforms = platforms.clone();
        spec.build_args = b
            .args
            .iter()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect();
        spec.tags = refs.clone();
        spec.output = match (platforms.len() > 1, opts.push) {
            (true, _) => Output::Push,
            (false, true) => Output::LoadAndPush,
            (false, false) => Output::Load,
        };
        spec.no_cache = opts.no_cache;
        spec.target = b.target.clone();
        if let Some(dir) = &opts.cache_dir {
            let (from, to) = buildx::local_cache(&dir.join(&name));
            spec.cache_from = vec![from];
            spec.cache_to = Some(to);
        }
        out.push(ImageBuild {
            name,
            refs,
            platforms,
            spec,
        });
    }
    // Every build's argv is checked now, so a value buildx could read as an option stops
    // the command before the first build (exit 2).
    for b in &out {
        buildx::build(&b.spec)?;
    }
    Ok(out)
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The environment for docker CLI commands: `--host`, else the manifest's `engine.host`
/// (with its TLS directory), else nothing (the CLI's own DOCKER_HOST or context).
pub fn cli_env(flag: Option<&str>, env: &Environment) -> CliEnv {
    let engine = env.manifest.engine.as_ref();
    let host = flag
        .map(str::to_string)
        .or_else(|| engine.and_then(|e| e.host.clone()));
    let mut cli = CliEnv::for_host(host.as_deref());
    if host.is_some() {
        let ep = Endpoint::resolve(flag, Some(env));
        if let Some(tls) = &ep.tls {
            if let Some(dir) = tls.cert.parent() {
                if tls.ca == dir.join("ca.pem")
                    && tls.cert == dir.join("cert.pem")
                    && tls.key == dir.join("key.pem")
                {
                    cli.0
                        .push(("DOCKER_CERT_PATH".into(), dir.display().to_string()));
                    cli.0.push(("DOCKER_TLS_VERIFY".into(), "1".into()));
                }
            }
        }
    }
    cli
}

/// Checks everything the builds need before the first one starts (the checks run at once).
async fn preflight_builds(cli: &CliEnv, builds: &[ImageBuild]) -> anyhow::Result<BuilderInfo> {
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

/// Fits the outputs to the builder's driver. With the `docker` driver the result goes to the
/// engine's image store whatever else happens, so `--push` alone also loads it, and
/// `--load --push` would make two exporters race on the same name ("image … already exists").
/// Other drivers (docker-container, remote) keep `--load --push`.
pub fn fit_outputs_to_driver(builds: &mut [ImageBuild], driver: &str) {
    if driver == "docker" {
        for b in builds {
            if b.spec.output == Output::LoadAndPush {
                b.spec.output = Output::Push;
            }
        }
    }
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
async fn build_all(cli: &CliEnv, builds: &[ImageBuild], ui: &Ui) -> anyhow::Result<Vec<Built>> {
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
fn summary(ui: &Ui, built: &[Built], total: Duration) {
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
fn cache_dir_from_env() -> Option<PathBuf> {
    std::env::var_os("TWIP_BUILD_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `twip build ENV [--service S]... [--platform P,...] [--push] [--no-cache]`
pub async fn run_build(g: &GlobalArgs, args: &BuildArgs, ui: &Ui) -> anyhow::Result<i32> {
    let project = Project::discover(g.project_dir.as_deref())?;
    let env = project.load(&args.env)?;
    // Input checks that need no subprocess first (exit 2 before anything runs).
    let mut opts = BuildOptions {
        services: args.services.clone(),
        platforms: args.platform.iter().map(|p| p.trim().to_string()).collect(),
        push: args.push,
        no_cache: args.no_cache,
        commit: None,
        cache_dir: cache_dir_from_env(),
    };
    let draft = plan(&env, &project.dir, &opts)?;
    if draft.is_empty() {
        ui.info(&format!(
            "environment `{}` declares no image with a `build` section: nothing to build",
            env.name
        ));
        return Ok(crate::exit::SUCCESS);
    }
    // The preflight checks and the git commit do not depend on each other.
    let cli = cli_env(g.host.as_deref(), &env);
    let (checked, commit) = tokio::join!(
        preflight_builds(&cli, &draft),
        git::commit_tag_of(&project.dir)
    );
    let builder = checked?;
    opts.commit = commit;
    match &opts.commit {
        Some(c) => ui.debug(&format!("git commit tag: {c}")),
        None => ui.debug("not a git work tree: no commit tag"),
    }
    let mut builds = plan(&env, &project.dir, &opts)?;
    fit_outputs_to_driver(&mut builds, &builder.driver);
    let started = Instant::now();
    let built = build_all(&cli, &builds, ui).await?;
    let took = started.elapsed();
    summary(ui, &built, took);
    Ok(crate::exit::SUCCESS)
}

/// `twip push ENV`: tags and pushes the images `twip build` made, through `docker push` (so the
/// user's credential helpers are used; twip never reads, prints or writes credentials).
pub async fn run_push(g: &GlobalArgs, args: &EnvArg, ui: &Ui) -> anyhow::Result<i32> {
    let project = Project::discover(g.project_dir.as_deref())?;
    let env = project.load(&args.env)?;
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
        return Ok(crate::exit::SUCCESS);
    }
    preflight::docker_cli()?;
    let cli = cli_env(g.host.as_deref(), &env);
    let commit = git::commit_tag_of(&project.dir).await;
    // What is there to push: every image's deployed reference must be in the engine.
    let mut plan: Vec<(String, Vec<String>)> = Vec::new();
    let mut missing = Vec::new();
    for name in &names {
        let refs = tags(&env, name, commit.as_deref());
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
            let is_commit = commit
                .as_deref()
                .is_some_and(|c| r.ends_with(&format!(":{c}")));
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
    Ok(crate::exit::SUCCESS)
}

/// The platform of an engine, from its version: `linux/amd64`, `linux/arm64`, `linux/arm/v7`.
pub fn engine_platform(os: &str, arch: &str) -> String {
    let arch = match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" | "armv7l" | "armhf" => "arm/v7",
        other => other,
    };
    format!("{}/{arch}", if os.is_empty() { "linux" } else { os })
}

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
        match docker.inspect_image(&r).await {
            Ok(_) => ui.debug(&format!("{r} is in the engine")),
            Err(e) => {
                let e = EngineError::new("inspect image", &r, e);
                if e.kind == engine::ErrorKind::NotFound {
                    missing.push(name);
                } else {
                    return Err(e.into());
                }
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let v = docker
        .version()
        .await
        .map_err(|e| EngineError::new("read the engine version", "", e))?;
    let platform = engine_platform(
        v.os.as_deref().unwrap_or("linux"),
        v.arch.as_deref().unwrap_or("amd64"),
    );
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
        if docker.inspect_image(b.deploy_ref()).await.is_ok() {
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
        let d = super::images::deliver(&src, docker, b.deploy_ref()).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use crate::manifest::interp::Vars;
    use crate::manifest::Loader;

    /// A project in a temporary directory with one environment file and two build contexts.
    fn project(yaml: &str) -> (tempfile::TempDir, Environment) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("environments")).unwrap();
        for ctx in ["images/web", "images/proxy"] {
            std::fs::create_dir_all(dir.path().join(ctx)).unwrap();
            std::fs::write(dir.path().join(ctx).join("Dockerfile"), "FROM scratch\n").unwrap();
        }
        std::fs::write(dir.path().join("environments/t.yaml"), yaml).unwrap();
        let loader = Loader {
            project_dir: dir.path().to_path_buf(),
            vars: Vars {
                dotenv: BTreeMap::new(),
                overrides: Some(BTreeMap::new()),
            },
        };
        let file = loader.env_file("t").unwrap();
        let env = loader
            .load_file("t", &file)
            .unwrap_or_else(|d| panic!("{d}"));
        (dir, env)
    }

    const ENV: &str = r#"
registry:
  url: localhost:5000
images:
  web:
    build:
      context: images/web
      args: {BASE: "base:1", VERSION: "2.0"}
    tags: ["2.0"]
    platforms: [linux/amd64, linux/arm64]
  proxy:
    build: {context: images/proxy, dockerfile: Dockerfile, target: final}
  db:
    ref: postgres:16
services:
  web: {image: web}
  db: {image: db}
proxy:
  routes:
    - {path: /, service: web, port: 8080}
"#;

    fn opts() -> BuildOptions {
        BuildOptions {
            commit: Some("abc1234-dirty".into()),
            ..BuildOptions::default()
        }
    }

    #[test]
    fn tags_are_manifest_commit_latest() {
        let (_d, env) = project(ENV);
        assert_eq!(
            tags(&env, "web", Some("abc1234")),
            [
                "localhost:5000/twip/web:2.0",
                "localhost:5000/twip/web:abc1234",
                "localhost:5000/twip/web:latest"
            ]
        );
        assert_eq!(
            tags(&env, "proxy", None),
            ["localhost:5000/twip/proxy:latest"]
        );
        assert_eq!(
            tags(&env, "proxy", Some("abc1234")),
            [
                "localhost:5000/twip/proxy:latest",
                "localhost:5000/twip/proxy:abc1234"
            ]
        );
    }

    #[test]
    fn multi_platform_needs_push() {
        let (_d, env) = project(ENV);
        let e = plan(&env, _d.path(), &opts()).unwrap_err();
        assert_eq!(crate::exit::code_for(&e), 2);
        assert_eq!(
            e.to_string(),
            "image `web` is for 2 platforms (linux/amd64, linux/arm64): a multi-platform image \
             cannot be loaded into most engines; add --push to push it to the registry, or build \
             one platform with --platform"
        );
    }

    #[test]
    fn the_plan_has_every_built_image_and_its_command() {
        let (d, env) = project(ENV);
        let o = BuildOptions {
            push: true,
            ..opts()
        };
        let builds = plan(&env, d.path(), &o).unwrap();
        let root = std::path::absolute(d.path()).unwrap();
        let lines: Vec<String> = builds
            .iter()
            .map(|b| {
                buildx::build(&b.spec)
                    .unwrap()
                    .to_string()
                    .replace(&root.display().to_string(), "P")
            })
            .collect();
        assert_eq!(
            lines,
            [
                "docker buildx build --file=P/images/proxy/Dockerfile \
                 --tag=localhost:5000/twip/proxy:latest --tag=localhost:5000/twip/proxy:abc1234-dirty \
                 --load --push --target=final -- P/images/proxy",
                "docker buildx build --platform=linux/amd64,linux/arm64 \
                 --build-arg=BASE=base:1 --build-arg=VERSION=2.0 \
                 --tag=localhost:5000/twip/web:2.0 --tag=localhost:5000/twip/web:abc1234-dirty \
                 --tag=localhost:5000/twip/web:latest --push -- P/images/web",
            ]
        );
    }

    #[test]
    fn the_docker_driver_pushes_without_a_second_load() {
        let (d, env) = project(ENV);
        let o = BuildOptions {
            push: true,
            ..opts()
        };
        let mut builds = plan(&env, d.path(), &o).unwrap();
        fit_outputs_to_driver(&mut builds, "docker-container");
        assert_eq!(builds[0].spec.output, Output::LoadAndPush);
        fit_outputs_to_driver(&mut builds, "docker");
        assert_eq!(builds[0].spec.output, Output::Push);
        assert_eq!(builds[1].spec.output, Output::Push);
    }

    #[test]
    fn services_select_images_and_platforms_override() {
        let (d, env) = project(ENV);
        let o = BuildOptions {
            services: vec!["web".into()],
            platforms: vec!["linux/arm64".into()],
            ..opts()
        };
        let builds = plan(&env, d.path(), &o).unwrap();
        assert_eq!(builds.len(), 1);
        assert_eq!(builds[0].name, "web");
        assert_eq!(builds[0].spec.platforms, ["linux/arm64"]);
        assert_eq!(builds[0].spec.output, Output::Load);

        let o = BuildOptions {
            services: vec![PROXY_SERVICE.into()],
            ..opts()
        };
        assert_eq!(plan(&env, d.path(), &o).unwrap()[0].name, "proxy");
    }

    #[test]
    fn bad_input_is_exit_2_with_a_suggestion() {
        let (d, env) = project(ENV);
        let o = BuildOptions {
            services: vec!["wbe".into()],
            ..opts()
        };
        let e = plan(&env, d.path(), &o).unwrap_err();
        assert_eq!(crate::exit::code_for(&e), 2);
        assert_eq!(
            e.to_string(),
            "no service `wbe` in environment `t`; did you mean `web`? (services: db, proxy, web)"
        );

        let o = BuildOptions {
            platforms: vec!["linux/amd65".into()],
            ..opts()
        };
        let e = plan(&env, d.path(), &o).unwrap_err();
        assert_eq!(crate::exit::code_for(&e), 2);
        assert!(e
            .to_string()
            .starts_with("`linux/amd65` is not a platform; did you mean `linux/amd64`?"));

        let o = BuildOptions {
            services: vec!["db".into()],
            ..opts()
        };
        let e = plan(&env, d.path(), &o).unwrap_err();
        assert_eq!(
            e.to_string(),
            "service `db` deploys `postgres:16`, which twip does not build (no `build` section in `images`)"
        );
    }

    #[test]
    fn push_without_a_registry_is_refused() {
        let yaml = ENV.replace("registry:\n  url: localhost:5000\n", "");
        let (d, env) = project(&yaml);
        let o = BuildOptions {
            push: true,
            ..opts()
        };
        let e = plan(&env, d.path(), &o).unwrap_err();
        assert_eq!(crate::exit::code_for(&e), 2);
        assert!(e.to_string().starts_with(
            "environment `t` has no registry: --push needs `registry: {url: HOST[:PORT]}`"
        ));
    }

    #[test]
    fn deployed_build_images_include_the_proxy() {
        let (_d, env) = project(ENV);
        assert_eq!(deployed_build_images(&env), ["proxy", "web"]);
    }

    #[test]
    fn close_names_are_suggested() {
        assert_eq!(closest("wbe", &["db", "proxy", "web"]), Some("web"));
        assert_eq!(closest("proxi", &["db", "proxy", "web"]), Some("proxy"));
        assert_eq!(closest("zzzzzz", &["db", "proxy", "web"]), None);
        assert_eq!(closest("x", &["db"]), None);
    }

    #[test]
    fn engine_platforms() {
        assert_eq!(engine_platform("linux", "amd64"), "linux/amd64");
        assert_eq!(engine_platform("linux", "aarch64"), "linux/arm64");
        assert_eq!(engine_platform("linux", "arm"), "linux/arm/v7");
    }
}
