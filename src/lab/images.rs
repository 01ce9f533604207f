//! Images for lab nodes, which cannot reach the host's registries (`localhost` inside a node
//! is the node): the stack's images are streamed from the local engine into each node's engine
//! through the API (`GET /images/get` → `POST /images/load`), in one stream per node holding
//! only the images the node lacks, so shared layers travel once.

use std::time::Instant;

use crate::engine::images::{self, same_image, ImageInspect};
use crate::engine::Docker;
use crate::ui::Ui;

/// Delivers `refs` from `local` to every node (at once); nodes that have an image skip it.
/// Images the local engine does not have are reported and left for the nodes to pull.
pub async fn deliver(
    local: &Docker,
    nodes: &[(String, Docker)],
    refs: &[String],
    ui: &Ui,
) -> anyhow::Result<()> {
    let mut have = Vec::new();
    for r in refs {
        match images::inspect(local, r).await? {
            Some(i) => have.push((r.clone(), i)),
            None => ui.warn(&format!(
                "{r} is not in the local engine; the lab's nodes will try to pull it"
            )),
        }
    }
    if have.is_empty() {
        return Ok(());
    }
    let results = futures_util::future::join_all(
        nodes
            .iter()
            .map(|(name, d)| deliver_one(local, name, d, &have, ui)),
    )
    .await;
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(Result::err)
        .map(|e| format!("{e:#}"))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "loading images into the lab failed:\n  {}",
            failed.join("\n  ")
        )
    }
}

async fn deliver_one(
    local: &Docker,
    name: &str,
    node: &Docker,
    images: &[(String, ImageInspect)],
    ui: &Ui,
) -> anyhow::Result<()> {
    let mut missing = Vec::new();
    for (r, img) in images {
        match images::inspect(node, r)
            .await
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?
        {
            Some(there) if same_image(img, &there) => {}
            _ => missing.push(r.as_str()),
        }
    }
    if missing.is_empty() {
        ui.debug(&format!("{name}: has the {} images already", images.len()));
        return Ok(());
    }
    let t0 = Instant::now();
    let sent = images::stream(local, node, &missing)
        .await
        .map_err(|e| anyhow::anyhow!("{name}: {e:#}"))?;
    for r in &missing {
        images::require(node, r, "inspect the loaded image")
            .await
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    }
    ui.ok(&format!(
        "{name}: loaded {} ({:.0} MB in {:.1}s)",
        missing.join(", "),
        sent as f64 / 1e6,
        t0.elapsed().as_secs_f64()
    ));
    Ok(())
}
