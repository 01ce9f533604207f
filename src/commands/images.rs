//! `twip images load ENV [--node N]`: delivery without a registry. Each image the environment
//! deploys is streamed from the engine twip builds on into each node's engine through the API
//! (`GET /images/get` → `POST /images/load`, never through a file), and a node that already has
//! the same image is skipped.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use bollard::models::ImageInspect;
use bollard::query_parameters::ImportImageOptions;
use bollard::Docker;
use futures_util::StreamExt;

use crate::cli::{GlobalArgs, ImagesLoadArgs};
use crate::engine::{self, Endpoint, EngineError, ErrorKind};
use crate::exit::invalid;
use crate::manifest::model::NodeSpec;
use crate::manifest::Environment;
use crate::project::Project;
use crate::render::context::image_ref;
use crate::ui::Ui;

use super::build::deployed_images;

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
    let have = src
        .inspect_image(reference)
        .await
        .map_err(|e| EngineError::new("inspect image", reference, e))?;
    match dst.inspect_image(reference).await {
        Ok(there) if same_image(&have, &there) => {
            return Ok(Delivery::Skipped {
                id: there.id.unwrap_or_default(),
            })
        }
        Ok(_) => {}
        Err(e) => {
            let e = EngineError::new("inspect image", reference, e);
            if e.kind != ErrorKind::NotFound {
                return Err(e.into());
            }
        }
    }
    let started = Instant::now();
    let sent = stream_images(src, dst, &[reference]).await?;
    let loaded = dst
        .inspect_image(reference)
        .await
        .map_err(|e| EngineError::new("inspect the loaded image", reference, e))?;
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

/// A node's engine: `nodes[].engine`, else `ssh://USER@ADDRESS[:PORT]` (user `root` by default).
pub fn node_engine_url(n: &NodeSpec) -> String {
    if let Some(e) = &n.engine {
        return e.clone();
    }
    let ssh = n.ssh.as_ref();
    let user = ssh
        .and_then(|s| s.user.clone())
        .unwrap_or_else(|| "root".into());
    match ssh.and_then(|s| s.port) {
        Some(p) => format!("ssh://{user}@{}:{p}", n.address),
        None => format!("ssh://{user}@{}", n.address),
    }
}

/// The nodes to deliver to: all, or the ones named (unknown names are exit 2).
pub fn select_nodes<'a>(
    env: &'a Environment,
    names: &[String],
) -> anyhow::Result<Vec<&'a NodeSpec>> {
    let nodes = &env.manifest.nodes;
    if names.is_empty() {
        return Ok(nodes.iter().collect());
    }
    let known: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let mut out = Vec::new();
    for name in names {
        let Some(n) = nodes.iter().find(|n| &n.name == name) else {
            let hint = super::build::closest(name, &known)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            return Err(invalid(format!(
                "no node `{name}` in environment `{}`{hint} (nodes: {})",
                env.name,
                known.join(", ")
            )));
        };
        if !out.iter().any(|o: &&NodeSpec| o.name == n.name) {
            out.push(n);
        }
    }
    Ok(out)
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

/// `twip images load ENV [--node N]...`
pub async fn run_load(g: &GlobalArgs, args: &ImagesLoadArgs, ui: &Ui) -> anyhow::Result<i32> {
    let project = Project::discover(g.project_dir.as_deref())?;
    let env = project.load(&args.env)?;
    if env.manifest.nodes.is_empty() {
        if !args.nodes.is_empty() {
            return Err(invalid(format!(
                "environment `{}` has no nodes, so no node `{}`",
                env.name, args.nodes[0]
            )));
        }
        ui.info(&format!(
            "environment `{}` lists no nodes: nothing to deliver to (its engine builds and runs \
             the images itself)",
            env.name
        ));
        return Ok(crate::exit::SUCCESS);
    }
    let nodes = select_nodes(&env, &args.nodes)?;
    // The source: the engine `twip build` builds on.
    let src_ep = Endpoint::resolve(g.host.as_deref(), Some(&env));
    let src = engine::connect(&src_ep).await?;
    let mut images = Vec::new();
    let mut missing_built = Vec::new();
    for r in deployed_refs(&env) {
        match src.inspect_image(&r).await {
            Ok(_) => images.push(r),
            Err(e) => {
                let e = EngineError::new("inspect image", &r, e);
                if e.kind != ErrorKind::NotFound {
                    return Err(e.into());
                }
                let built = deployed_images(&env).iter().any(|(_, i)| {
                    env.manifest
                        .images
                        .get(i)
                        .is_some_and(|img| img.build.is_some())
                        && image_ref(&env, i) == r
                });
                if built {
                    missing_built.push(r);
                } else {
                    ui.warn(&format!(
                        "{r} is not in the engine at {}; nodes pull it from its registry",
                        src_ep.url
                    ));
                }
            }
        }
    }
    if !missing_built.is_empty() {
        return Err(anyhow!(
            "not in the engine at {}: {}; build first: `twip build {}`",
            src_ep.url,
            missing_built.join(", "),
            env.name
        ));
    }
    if images.is_empty() {
        ui.info("no image to deliver");
        return Ok(crate::exit::SUCCESS);
    }
    let started = Instant::now();
    let mut failed = Vec::new();
    let (mut loaded, mut skipped) = (0, 0);
    for n in nodes {
        let url = node_engine_url(n);
        let ep = Endpoint::resolve(Some(&url), Some(&env));
        let dst = match engine::connect(&ep).await {
            Ok(d) => d,
            Err(e) => {
                ui.error(&format!("{}: {e}", n.name));
                failed.push(n.name.clone());
                continue;
            }
        };
        for r in &images {
            match deliver(&src, &dst, r).await {
                Ok(d) => {
                    match d {
                        Delivery::Skipped { .. } => skipped += 1,
                        Delivery::Loaded { .. } => loaded += 1,
                    }
                    ui.ok(&format!("{}: {r} {d}", n.name));
                }
                Err(e) => {
                    ui.error(&format!("{}: {r}: {e:#}", n.name));
                    if !failed.contains(&n.name) {
                        failed.push(n.name.clone());
                    }
                }
            }
        }
    }
    ui.info(&format!(
        "{loaded} loaded, {skipped} skipped (already there) in {:.1}s",
        started.elapsed().as_secs_f64()
    ));
    if !failed.is_empty() {
        return Err(anyhow!(
            "delivery failed to {} node(s): {}",
            failed.len(),
            failed.join(", ")
        ));
    }
    Ok(crate::exit::SUCCESS)
}

/// Streams images from one engine into another through the API (`docker save | docker load`
/// without a file), failing on an error the engine reports inside the load stream. Returns the
/// bytes sent.
pub async fn stream_images(src: &Docker, dst: &Docker, references: &[&str]) -> anyhow::Result<u64> {
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

    #[test]
    fn node_engines_default_to_ssh() {
        let n: NodeSpec = serde_json::from_value(serde_json::json!({
            "name": "w1", "address": "10.0.0.2", "role": "worker"
        }))
        .unwrap();
        assert_eq!(node_engine_url(&n), "ssh://root@10.0.0.2");
        let n: NodeSpec = serde_json::from_value(serde_json::json!({
            "name": "w1", "address": "10.0.0.2", "role": "worker",
            "ssh": {"user": "deploy", "port": 2222}
        }))
        .unwrap();
        assert_eq!(node_engine_url(&n), "ssh://deploy@10.0.0.2:2222");
        let n: NodeSpec = serde_json::from_value(serde_json::json!({
            "name": "w1", "address": "10.0.0.2", "role": "worker",
            "engine": "unix:///tmp/d.sock"
        }))
        .unwrap();
        assert_eq!(node_engine_url(&n), "unix:///tmp/d.sock");
    }
}
