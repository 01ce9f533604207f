//! `twip clean [ENV] [--all] [--dry-run] [-y]`: twip.sh's `clean up` / `clean all`.
//! Without --all: exited containers, dangling images and unused networks that twip made (by
//! label). With --all: everything unused on the engine, build cache included, after a
//! confirmation. Prints what it removed (or would remove) and the space reclaimed.

use std::io::{BufRead, IsTerminal, Write};

use crate::cli::{CleanArgs, GlobalArgs};
use crate::engine::{self, Endpoint};
use crate::exit;
use crate::ui::Ui;

fn human(bytes: u64) -> String {
    const U: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < U.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

pub async fn run(g: &GlobalArgs, args: &CleanArgs, ui: &Ui) -> anyhow::Result<i32> {
    let mut agents = engine::clean::OldAgents {
        repository: None,
        keep: crate::lifecycle::agent_image::binary_hash()?,
    };
    let (endpoint, stack, project) = match &args.env {
        Some(name) => {
            let p = crate::project::Project::discover(g.project_dir.as_deref())?;
            let env = p.load(name)?;
            agents.repository = Some(crate::render::context::image_repository(
                &env,
                crate::render::context::agent::AGENT_IMAGE_NAME,
            ));
            (
                Endpoint::resolve(g.host.as_deref(), Some(&env)),
                Some(env.stack().to_string()),
                Some(env.project().to_string()),
            )
        }
        None => (Endpoint::resolve(g.host.as_deref(), None), None, None),
    };
    let docker = engine::connect(&endpoint).await?;
    let items = engine::clean::candidates(
        &docker,
        stack.as_deref(),
        project.as_deref(),
        args.all,
        &agents,
    )
    .await?;
    for i in &items {
        println!(
            "{}{:<9} {}  {}",
            if args.dry_run { "would remove " } else { "" },
            i.kind,
            i.name,
            if i.size > 0 {
                human(i.size)
            } else {
                String::new()
            }
        );
    }
    if args.dry_run {
        let total: u64 = items.iter().map(|i| i.size).sum();
        ui.info(&format!(
            "dry run: {} item{} ({}), build cache{}; nothing removed",
            items.len(),
            if items.len() == 1 { "" } else { "s" },
            human(total),
            if args.all {
                " too"
            } else {
                " kept (only with --all)"
            }
        ));
        return Ok(exit::SUCCESS);
    }
    if args.all && !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(exit::invalid("--all removes everything unused on the engine; confirm with -y when not on a terminal"));
        }
        eprint!(
            "remove everything unused on {} (containers, images, networks, build cache)? [y/N] ",
            endpoint.url
        );
        std::io::stderr().flush().ok();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer).ok();
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            ui.info("nothing removed");
            return Ok(exit::FAILURE);
        }
    }
    let mut reclaimed = 0u64;
    let mut removed = 0usize;
    for i in &items {
        let r = engine::clean::remove(&docker, i).await;
        match r {
            Ok(()) => {
                removed += 1;
                reclaimed += i.size;
            }
            Err(e) => ui.warn(&e.to_string()),
        }
    }
    if args.all {
        let (n, bytes) = engine::clean::prune_build_cache(&docker).await?;
        reclaimed += bytes;
        println!("build-cache {n} entries");
    }
    ui.ok(&format!(
        "removed {removed} item{}, reclaimed {}",
        if removed == 1 { "" } else { "s" },
        human(reclaimed)
    ));
    Ok(exit::SUCCESS)
}
