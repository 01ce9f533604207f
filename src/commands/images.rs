//! `twip images load ENV [--node N]`: delivery without a registry. Each image the environment
//! deploys is streamed from the engine twip builds on into each node's engine through the API
//! (`GET /images/get` → `POST /images/load`, never through a file), and a node that already has
//! the same image is skipped.

use std::time::Instant;

use anyhow::anyhow;

use crate::build::{deployed_images, deployed_refs};
use crate::cli::{GlobalArgs, ImagesLoadArgs};
use crate::engine::images::{self, Delivery};
use crate::engine::{self, Endpoint};
use crate::exit::invalid;
use crate::nodes::{node_engine_url, select_nodes};
use crate::project::Project;
use crate::render::context::image_ref;
use crate::ui::Ui;

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
    let mut present = Vec::new();
    let mut missing_built = Vec::new();
    for r in deployed_refs(&env) {
        if images::exists(&src, &r).await? {
            present.push(r);
            continue;
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
    if !missing_built.is_empty() {
        return Err(anyhow!(
            "not in the engine at {}: {}; build first: `twip build {}`",
            src_ep.url,
            missing_built.join(", "),
            env.name
        ));
    }
    if present.is_empty() {
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
        for r in &present {
            match images::deliver(&src, &dst, r).await {
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
