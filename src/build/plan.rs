//! What to build, decided purely: which images, which platforms, which tags, load or push.
//! Input problems are reported here (exit 2), before anything runs; [`super::run`] then runs
//! the builds.

use std::path::{Path, PathBuf};

use crate::engine::Endpoint;
use crate::exec::buildx::{self, BuildSpec, Output};
use crate::exec::docker as docker_cmd;
use crate::exec::preflight::CliEnv;
use crate::exit::invalid;
use crate::manifest::validate::{MONITORING_SERVICE, PLATFORMS, PROXY_SERVICE, VIP_SERVICE};
use crate::manifest::Environment;
use crate::render::context::{image_ref, image_repository};

pub use crate::engine::images::engine_platform;

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
        if let Some(v) = &p.vip {
            out.push((
                VIP_SERVICE.to_string(),
                v.image.clone().unwrap_or_else(|| "keepalived".to_string()),
            ));
        }
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
    let hint = crate::suggest::hint(p, PLATFORMS);
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
                let hint = crate::suggest::hint(s, &known);
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

/// The references the environment deploys (built images and `ref` images), sorted, unique.
pub fn deployed_refs(env: &Environment) -> Vec<String> {
    let mut refs: Vec<String> = deployed_images(env)
        .into_iter()
        .map(|(_, image)| image_ref(env, &image))
        .collect();
    refs.sort();
    refs.dedup();
    refs
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
