//! The agent's image: the running twip binary (`std::env::current_exe`) copied onto the
//! offline base image the sample images use (`TWIP_BASE_IMAGE`, else `twip/base:bookworm`,
//! which `scripts/make-bases.sh` loads into the engine), tagged by the binary's content hash
//! (`REPO/twip-agent:HASH`, [`reference`]), so a new binary deploys a new agent and the same
//! binary builds nothing. With a registry it is pushed there like the environment's other
//! images, so every manager can pull it. `twip up` builds it only when the stack has an agent.

use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use crate::engine::{images, Docker};
use crate::exec::{self, buildx, RunOpts};
use crate::manifest::validate::AGENT_SERVICE;
use crate::manifest::Environment;
use crate::plan::Desired;
use crate::render::context::agent::AGENT_IMAGE_NAME;
use crate::render::context::image_repository;
use crate::ui::Ui;

/// The base image when `TWIP_BASE_IMAGE` is not set: the offline base in the local engine.
pub const DEFAULT_BASE: &str = "twip/base:bookworm";

/// Where the binary goes in the image (on the PATH).
const BINARY_IN_IMAGE: &str = "/usr/local/bin/twip";

/// The Dockerfile of the agent's image, FROM the build argument `BASE`.
pub fn dockerfile() -> String {
    format!(
        "ARG BASE={DEFAULT_BASE}\nFROM ${{BASE}}\nCOPY twip {BINARY_IN_IMAGE}\n\
         LABEL org.opencontainers.image.title=\"twip-agent\"\n\
         ENTRYPOINT [\"twip\"]\nCMD [\"agent\"]\n"
    )
}

/// The first 12 hex digits of the SHA-256 of the running binary (read once per process).
pub fn binary_hash() -> anyhow::Result<String> {
    static HASH: OnceLock<Result<String, String>> = OnceLock::new();
    HASH.get_or_init(|| {
        let exe = std::env::current_exe().map_err(|e| format!("the running binary: {e}"))?;
        hash_file(&exe).map_err(|e| format!("reading {}: {e}", exe.display()))
    })
    .clone()
    .map_err(anyhow::Error::msg)
}

fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The agent's image for ENV: `REPO/twip-agent:HASH`, REPO as for the project's images.
pub fn reference(env: &Environment) -> anyhow::Result<String> {
    Ok(format!(
        "{}:{}",
        image_repository(env, AGENT_IMAGE_NAME),
        binary_hash()?
    ))
}

/// Puts the agent's image built from this binary into DESIRED (when it has an agent).
pub fn set_in(env: &Environment, desired: &mut Desired) -> anyhow::Result<()> {
    if desired.service(AGENT_SERVICE).is_some() {
        desired.set_image(AGENT_SERVICE, &reference(env)?);
    }
    Ok(())
}

/// Builds the agent's image into DOCKER when DESIRED has an agent and the engine lacks it
/// (pushed too when the environment has a registry).
pub async fn ensure(
    env: &Environment,
    docker: &Docker,
    desired: &Desired,
    ui: &Ui,
) -> anyhow::Result<()> {
    if desired.service(AGENT_SERVICE).is_none() {
        return Ok(());
    }
    ensure_built(env, docker, ui).await.map(|_| ())
}

/// Builds the agent's image into DOCKER unless it is there (and pushes it with a registry);
/// returns its reference.
pub async fn ensure_built(env: &Environment, docker: &Docker, ui: &Ui) -> anyhow::Result<String> {
    let r = reference(env)?;
    if images::exists(docker, &r).await? {
        ui.debug(&format!("{r} is in the engine"));
        return Ok(r);
    }
    let base = std::env::var("TWIP_BASE_IMAGE")
        .ok()
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_BASE.to_string());
    ui.info(&format!("building the agent's image {r} on {base}"));
    let dir = BuildDir::new()?;
    let exe = std::env::current_exe().context("the running binary")?;
    let copy = dir.path().join("twip");
    if std::fs::hard_link(&exe, &copy).is_err() {
        std::fs::copy(&exe, &copy).with_context(|| format!("copying {}", exe.display()))?;
    }
    std::fs::write(dir.path().join("Dockerfile"), dockerfile())?;
    let mut spec = buildx::BuildSpec::new(dir.path());
    spec.build_args.insert("BASE".into(), base);
    spec.tags.push(r.clone());
    let cmd = buildx::build(&spec)?;
    exec::run(&cmd, &RunOpts::quiet())
        .await
        .map_err(|e| anyhow::anyhow!("building the agent's image: {e}"))?;
    if env.manifest.registry.is_some() {
        exec::run(&exec::docker::push(&r)?, &RunOpts::quiet())
            .await
            .map_err(|e| anyhow::anyhow!("pushing the agent's image: {e}"))?;
    }
    ui.ok(&format!("agent image {r}"));
    Ok(r)
}

/// A build context of its own, removed when dropped (also when the build fails).
struct BuildDir(std::path::PathBuf);

impl BuildDir {
    fn new() -> anyhow::Result<BuildDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let p =
            std::env::temp_dir().join(format!("twip-agent-image-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).with_context(|| format!("making {}", p.display()))?;
        Ok(BuildDir(p))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for BuildDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_is_the_binary_on_the_base_run_as_the_agent() {
        let d = dockerfile();
        assert!(
            d.starts_with("ARG BASE=twip/base:bookworm\nFROM ${BASE}\n"),
            "{d}"
        );
        assert!(d.contains("COPY twip /usr/local/bin/twip\n"), "{d}");
        assert!(d.contains("CMD [\"agent\"]"), "{d}");
    }

    #[test]
    fn the_tag_is_the_binarys_content_hash() {
        let h = binary_hash().unwrap();
        assert_eq!(h.len(), 12);
        assert!(h.chars().all(|c| c.is_ascii_hexdigit()), "{h}");
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"one").unwrap();
        std::fs::write(&b, b"two").unwrap();
        assert_ne!(hash_file(&a).unwrap(), hash_file(&b).unwrap());
        assert_eq!(hash_file(&a).unwrap(), hash_file(&a).unwrap());
    }
}
