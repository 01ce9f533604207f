//! Images on an engine: inspect (missing is an answer, not an error), compare across engines,
//! stream between engines (`GET /images/get` → `POST /images/load`, never through a file), and
//! the engine's own platform.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use bollard::query_parameters::ImportImageOptions;
use bollard::Docker;
use futures_util::StreamExt;

pub use bollard::models::ImageInspect;

use super::error::{EngineError, ErrorKind};

/// The image `reference` on `docker`, or `None` when the engine does not have it.
pub async fn inspect(
    docker: &Docker,
    reference: &str,
) -> Result<Option<ImageInspect>, EngineError> {
    inspect_as(docker, reference, "inspect image").await
}

/// [`inspect`], naming the operation in the error (`op`).
async fn inspect_as(
    docker: &Docker,
    reference: &str,
    op: &str,
) -> Result<Option<ImageInspect>, EngineError> {
    match docker.inspect_image(reference).await {
        Ok(i) => Ok(Some(i)),
        Err(e) => {
            let e = EngineError::new(op, reference, e);
            if e.kind == ErrorKind::NotFound {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

/// Whether `docker` has the image `reference`.
pub async fn exists(docker: &Docker, reference: &str) -> Result<bool, EngineError> {
    Ok(inspect(docker, reference).await?.is_some())
}

/// The image `reference` on `docker`, which must be there (`op` names the operation in the
/// error).
pub async fn require(
    docker: &Docker,
    reference: &str,
    op: &str,
) -> Result<ImageInspect, EngineError> {
    docker
        .inspect_image(reference)
        .await
        .map_err(|e| EngineError::new(op, reference, e))
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

/// The platform `docker` runs images for ([`engine_platform`] of its version).
pub async fn platform(docker: &Docker) -> Result<String, EngineError> {
    let v = docker
        .version()
        .await
        .map_err(|e| EngineError::new("read the engine version", "", e))?;
    Ok(engine_platform(
        v.os.as_deref().unwrap_or("linux"),
        v.arch.as_deref().unwrap_or("amd64"),
    ))
}

/// What [`deliver`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The target already had the same image.
    Skipped { id: String },
    /// Streamed and loaded.
    Loaded { bytes: u64, duration: Duration },
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Delivery::Skipped { id } => write!(f, "already there ({}), skipped", short_id(id)),
            Delivery::Loaded { bytes, duration } => write!(
                f,
                "loaded ({} in {:.1}s)",
                human_bytes(*bytes),
                duration.as_secs_f64()
            ),
        }
    }
}

fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.char_indices().nth(12).map_or(hex, |(i, _)| &hex[..i])
}

fn human_bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.1} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} kB", n / 1e3)
    } else {
        format!("{n} B")
    }
}

/// Whether two engines hold the same image. Engines with the containerd image store name an
/// image by its manifest digest, classic ones by its config digest, so equal IDs are enough but
/// not necessary: the same platform, creation time and layers (diff IDs) are the same image.
pub fn same_image(a: &ImageInspect, b: &ImageInspect) -> bool {
    if a.id.is_some() && a.id == b.id {
        return true;
    }
    let layers = |i: &ImageInspect| i.root_fs.as_ref().and_then(|r| r.layers.clone());
    let la = layers(a);
    la.as_ref().is_some_and(|l| !l.is_empty())
        && la == layers(b)
        && a.created.is_some()
        && a.created == b.created
        && a.os == b.os
        && a.architecture == b.architecture
        && a.variant == b.variant
}

/// Streams `reference` from `src` into `dst`, unless `dst` has the same image already.
pub async fn deliver(src: &Docker, dst: &Docker, reference: &str) -> anyhow::Result<Delivery> {
    let have = require(src, reference, "inspect image").await?;
    if let Some(there) = inspect(dst, reference).await? {
        if same_image(&have, &there) {
            return Ok(Delivery::Skipped {
                id: there.id.unwrap_or_default(),
            });
        }
    }
    let started = Instant::now();
    let sent = stream(src, dst, &[reference]).await?;
    let loaded = require(dst, reference, "inspect the loaded image").await?;
    if !same_image(&have, &loaded) {
        return Err(anyhow!(
            "after loading, `{reference}` on the target is not the image that was sent \
             (target has {}, source {}): was it tagged again meanwhile?",
            short_id(loaded.id.as_deref().unwrap_or("")),
            short_id(have.id.as_deref().unwrap_or(""))
        ));
    }
    Ok(Delivery::Loaded {
        bytes: sent,
        duration: started.elapsed(),
    })
}

/// Streams images from one engine into another through the API (`docker save | docker load`
/// without a file), failing on an error the engine reports inside the load stream. Returns the
/// bytes sent.
pub async fn stream(src: &Docker, dst: &Docker, references: &[&str]) -> anyhow::Result<u64> {
    let bytes = Arc::new(AtomicU64::new(0));
    let counter = bytes.clone();
    let export = src.export_images(references).map(move |chunk| {
        if let Ok(b) = &chunk {
            counter.fetch_add(b.len() as u64, Ordering::Relaxed);
        }
        chunk
    });
    let mut load = dst.import_image_stream(
        ImportImageOptions {
            quiet: true,
            ..Default::default()
        },
        export,
        None,
    );
    let what = references.join(", ");
    while let Some(msg) = load.next().await {
        let info = msg.map_err(|e| EngineError::new("load images", &what, e))?;
        if let Some(err) = info.error_detail.and_then(|d| d.message) {
            return Err(anyhow!("loading {what} failed: {err}"));
        }
    }
    Ok(bytes.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::ImageInspectRootFs;

    fn img(id: &str, created: &str, layers: &[&str]) -> ImageInspect {
        ImageInspect {
            id: Some(id.into()),
            created: Some(created.into()),
            os: Some("linux".into()),
            architecture: Some("amd64".into()),
            root_fs: Some(ImageInspectRootFs {
                typ: "layers".into(),
                layers: Some(layers.iter().map(|s| s.to_string()).collect()),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_same_image_in_either_store_is_recognised() {
        let containerd = img("sha256:7ace", "2026-11-21T09:37:11Z", &["sha256:3896"]);
        let classic = img("sha256:5ef3", "2026-11-21T09:37:11Z", &["sha256:3896"]);
        assert!(same_image(&containerd, &containerd.clone()));
        assert!(same_image(&containerd, &classic));
        let rebuilt = img("sha256:9999", "2026-11-21T10:00:00Z", &["sha256:3896"]);
        assert!(!same_image(&containerd, &rebuilt));
        let other_layers = img("sha256:5ef3", "2026-11-21T09:37:11Z", &["sha256:aaaa"]);
        assert!(!same_image(&containerd, &other_layers));
        let mut arm = classic.clone();
        arm.architecture = Some("arm64".into());
        assert!(!same_image(&containerd, &arm));
    }

    #[test]
    fn deliveries_print() {
        assert_eq!(
            Delivery::Skipped {
                id: "sha256:5ef345f2314a11ff7bee".into()
            }
            .to_string(),
            "already there (5ef345f2314a), skipped"
        );
        assert_eq!(
            Delivery::Loaded {
                bytes: 12_345_678,
                duration: Duration::from_millis(1500)
            }
            .to_string(),
            "loaded (12.3 MB in 1.5s)"
        );
    }
}
