//! Checks made before a build or a push, each failing with what to do about it: the docker
//! CLI, the buildx plugin, a builder that can build the requested platforms, an image store
//! that can hold multi-platform images, a registry that answers.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::anyhow;

use super::buildx::{self, BuilderInfo};
use super::{docker, run, Cmd, RunOpts};

/// Extra environment for every docker CLI command (`DOCKER_HOST` when `--host` was given), so
/// the CLI and the API client talk to the same engine.
#[derive(Debug, Clone, Default)]
pub struct CliEnv(pub Vec<(String, String)>);

impl CliEnv {
    /// `DOCKER_HOST=URL` when an engine was named; the CLI's own choice otherwise.
    pub fn for_host(host: Option<&str>) -> Self {
        CliEnv(
            host.map(|h| vec![("DOCKER_HOST".to_string(), h.to_string())])
                .unwrap_or_default(),
        )
    }

    pub fn apply(&self, mut c: Cmd) -> Cmd {
        for (k, v) in &self.0 {
            c = c.env(k, v);
        }
        c
    }
}

/// The docker CLI on PATH.
pub fn docker_cli() -> anyhow::Result<PathBuf> {
    which::which("docker").map_err(|_| anyhow!("docker CLI not found; install docker-cli"))
}

/// The docker CLI and its buildx plugin.
pub async fn buildx_plugin(cli: &CliEnv) -> anyhow::Result<()> {
    docker_cli()?;
    run(&cli.apply(buildx::version()), &RunOpts::quiet())
        .await
        .map_err(|e| {
            let why = e.tail.last().cloned().unwrap_or_default();
            anyhow!(
                "docker buildx is not installed (docker buildx version failed): install docker-buildx{}",
                if why.is_empty() {
                    String::new()
                } else {
                    format!(" [{why}]")
                }
            )
        })?;
    Ok(())
}

/// The current builder: its driver and platforms. When `docker buildx inspect` fails, the
/// error says whether the CLI or the buildx plugin is missing.
pub async fn builder(cli: &CliEnv) -> anyhow::Result<BuilderInfo> {
    docker_cli()?;
    match run(&cli.apply(buildx::inspect(None)?), &RunOpts::quiet()).await {
        Ok(out) => Ok(buildx::parse_inspect(&out.stdout)),
        Err(e) => {
            buildx_plugin(cli).await?;
            Err(anyhow::Error::new(e).context("cannot inspect the buildx builder"))
        }
    }
}

/// The binfmt_misc entry that runs a platform's binaries on this machine (none for the
/// machine's own and for platforms that need no emulator).
pub fn qemu_binfmt(platform: &str) -> Option<&'static str> {
    let native = match std::env::consts::ARCH {
        "x86_64" => "linux/amd64",
        "aarch64" => "linux/arm64",
        _ => "",
    };
    if buildx::normalize_platform(platform) == native {
        return None;
    }
    match buildx::normalize_platform(platform).as_str() {
        "linux/arm64" => Some("qemu-aarch64"),
        "linux/arm/v7" | "linux/arm/v6" => Some("qemu-arm"),
        "linux/amd64" => Some("qemu-x86_64"),
        "linux/ppc64le" => Some("qemu-ppc64le"),
        "linux/s390x" => Some("qemu-s390x"),
        "linux/riscv64" => Some("qemu-riscv64"),
        "linux/386" => Some("qemu-i386"),
        _ => None,
    }
}

/// Whether binfmt_misc has `name` registered and enabled.
fn binfmt_enabled(name: &str) -> bool {
    std::fs::read_to_string(format!("/proc/sys/fs/binfmt_misc/{name}"))
        .is_ok_and(|s| s.lines().next() == Some("enabled"))
}

/// Fails when the builder does not list every platform in `wanted`.
pub fn check_platforms(info: &BuilderInfo, wanted: &[String]) -> anyhow::Result<()> {
    let missing = buildx::unsupported_platforms(info, wanted);
    if missing.is_empty() {
        return Ok(());
    }
    let registered: Vec<&str> = missing
        .iter()
        .filter_map(|p| qemu_binfmt(p))
        .filter(|q| binfmt_enabled(q))
        .collect();
    Err(anyhow!(
        "{}",
        platforms_message(info, &missing, &registered)
    ))
}

/// The message for platforms the builder does not list; `registered`: the binfmt entries
/// of those platforms that are registered and enabled all the same.
pub fn platforms_message(info: &BuilderInfo, missing: &[String], registered: &[&str]) -> String {
    let head = format!(
        "the buildx builder `{}` cannot build {} (it builds: {})",
        if info.name.is_empty() {
            "default"
        } else {
            &info.name
        },
        missing.join(", "),
        if info.platforms.is_empty() {
            "nothing listed".to_string()
        } else {
            info.platforms.join(", ")
        }
    );
    if registered.is_empty() {
        format!(
            "{head}. Foreign platforms need emulation: `apt-get install qemu-user-static binfmt-support` \
             and `update-binfmts --enable` (mount binfmt_misc on /proc/sys/fs/binfmt_misc first if it \
             is empty), then restart dockerd so BuildKit sees them; or leave them out with --platform"
        )
    } else {
        format!(
            "{head}. Emulation is registered ({}) but BuildKit does not list the platform: restart \
             dockerd so BuildKit detects emulators again; if it still does not list it, the emulator \
             cannot run on this kernel: leave the platform out with --platform",
            registered
                .iter()
                .map(|q| format!("/proc/sys/fs/binfmt_misc/{q}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// Whether the engine keeps images in the containerd image store (`docker info`).
pub async fn containerd_store(cli: &CliEnv) -> anyhow::Result<bool> {
    let out = run(&cli.apply(docker::driver_status()), &RunOpts::quiet())
        .await
        .map_err(|e| anyhow::Error::new(e).context("cannot read the engine's storage driver"))?;
    Ok(docker::is_containerd_store(&out.stdout))
}

/// A multi-platform build with the `docker` driver needs the engine's containerd image store.
pub fn check_multi_platform_store(info: &BuilderInfo, containerd: bool) -> anyhow::Result<()> {
    if info.driver != "docker" || containerd {
        return Ok(());
    }
    Err(anyhow!(
        "the engine's image store cannot hold multi-platform images (the `docker` build driver \
         without the containerd image store). Turn it on: add {{\"features\": {{\"containerd-snapshotter\": true}}}} \
         to /etc/docker/daemon.json and restart dockerd; or use a builder of its own: \
         `docker buildx create --use --driver docker-container`"
    ))
}

/// The registry answers on its port (the push itself tells auth and TLS problems apart).
pub async fn registry_reachable(host: &str) -> anyhow::Result<()> {
    let addr = if host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host.to_string()
    } else {
        format!("{host}:443")
    };
    match tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(&addr),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(anyhow!(
            "cannot reach the registry {host} ({e}): is it running, and is registry.url right?"
        )),
        Err(_) => Err(anyhow!(
            "cannot reach the registry {host}: no answer within 5s; is registry.url right?"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_platforms_say_how_to_enable_emulation() {
        let info = BuilderInfo {
            name: "default".into(),
            driver: "docker".into(),
            platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
        };
        assert!(check_platforms(&info, &["linux/arm64/v8".into()]).is_ok());
        let missing = ["linux/arm/v7".to_string()];
        let e = platforms_message(&info, &missing, &[]);
        assert!(e.starts_with(
            "the buildx builder `default` cannot build linux/arm/v7 (it builds: linux/amd64, linux/arm64). "
        ));
        assert!(e.contains(
            "`apt-get install qemu-user-static binfmt-support` and `update-binfmts --enable`"
        ));
        let e = platforms_message(&info, &missing, &["qemu-arm"]);
        assert!(e.contains(
            "Emulation is registered (/proc/sys/fs/binfmt_misc/qemu-arm) but BuildKit does not list the platform"
        ));
        assert!(check_platforms(&info, &["linux/amd64".into(), "linux/arm/v7".into()]).is_err());
    }

    #[test]
    fn emulators_by_platform() {
        if std::env::consts::ARCH == "x86_64" {
            assert_eq!(qemu_binfmt("linux/amd64"), None);
            assert_eq!(qemu_binfmt("linux/arm64/v8"), Some("qemu-aarch64"));
            assert_eq!(qemu_binfmt("linux/arm/v7"), Some("qemu-arm"));
        }
    }

    #[test]
    fn multi_platform_needs_the_containerd_store_with_the_docker_driver() {
        let mut info = BuilderInfo {
            name: "default".into(),
            driver: "docker".into(),
            platforms: vec![],
        };
        assert!(check_multi_platform_store(&info, true).is_ok());
        let e = check_multi_platform_store(&info, false)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("the engine's image store cannot hold multi-platform images"));
        assert!(e.contains("\"containerd-snapshotter\": true"));
        info.driver = "docker-container".into();
        assert!(check_multi_platform_store(&info, false).is_ok());
    }

    #[test]
    fn cli_env_names_the_engine() {
        let c = CliEnv::for_host(Some("unix:///tmp/d.sock")).apply(Cmd::new("docker").arg("info"));
        assert_eq!(c.to_string(), "DOCKER_HOST=unix:///tmp/d.sock docker info");
        let c = CliEnv::for_host(None).apply(Cmd::new("docker").arg("info"));
        assert_eq!(c.to_string(), "docker info");
    }

    #[tokio::test]
    async fn an_unreachable_registry_is_reported() {
        // Port 1 on loopback: nothing listens there.
        let e = registry_reachable("127.0.0.1:1")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("cannot reach the registry 127.0.0.1:1 ("),
            "{e}"
        );
    }
}
