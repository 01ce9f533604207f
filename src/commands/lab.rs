//! `twip lab up|down|status`: a local swarm of docker-in-docker nodes, provisioned by
//! [`crate::lab::provision`] on the local engine. This is the command line and what it prints.

use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};

use crate::cli::{GlobalArgs, LabNameArgs, LabUpArgs};
use crate::engine::swarm;
use crate::engine::{self, Docker, Endpoint};
use crate::exit;
use crate::lab::provision::{self, role_name, UpRequest};
use crate::lab::LabNode;
use crate::ui::Ui;

/// The local engine, where lab containers run.
async fn host_engine(g: &GlobalArgs) -> anyhow::Result<Docker> {
    let ep = Endpoint::resolve(g.host.as_deref(), None);
    engine::connect(&ep).await
}

pub async fn up(g: &GlobalArgs, args: &LabUpArgs, ui: &Ui) -> anyhow::Result<i32> {
    crate::lab::check_name(&args.name)?;
    crate::lab::layout(&args.name, args.nodes, args.managers, 1)?;
    let host = host_engine(g).await?;
    let req = UpRequest {
        name: args.name.clone(),
        nodes: args.nodes,
        managers: args.managers,
        retain: args.retain,
    };
    let t0 = std::time::Instant::now();
    let (ctx, path) = provision::up(&host, &req, ui).await?;
    ui.ok(&format!(
        "lab `{}` is up in {:.0}s; endpoints in {}",
        ctx.name,
        t0.elapsed().as_secs_f64(),
        path.display()
    ));
    if !ui.quiet {
        print_table(&ctx.nodes);
    }
    ui.info(&format!(
        "Use it: twip up ENV --lab {0}   (twip swarm join ENV --lab {0} applies the manifest's node labels)",
        ctx.name
    ));
    Ok(exit::SUCCESS)
}

pub async fn down(g: &GlobalArgs, args: &LabNameArgs, ui: &Ui) -> anyhow::Result<i32> {
    crate::lab::check_name(&args.name)?;
    let host = host_engine(g).await?;
    let r = provision::remove(&host, &args.name).await?;
    if r.is_empty() {
        ui.ok(&format!("no lab `{}`: nothing to remove", args.name));
    } else {
        ui.ok(&format!("lab `{}` removed: {}", args.name, r.summary()));
    }
    Ok(exit::SUCCESS)
}

pub async fn status(g: &GlobalArgs, args: &LabNameArgs, ui: &Ui) -> anyhow::Result<i32> {
    crate::lab::check_name(&args.name)?;
    let host = host_engine(g).await?;
    let report = provision::report(&host, &args.name).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let mut t = Table::new();
        t.load_preset(UTF8_BORDERS_ONLY);
        t.set_header(vec![
            "NODE",
            "ROLE",
            "CONTAINER",
            "SWARM",
            "AVAILABILITY",
            "ENGINE",
            "LABELS",
        ]);
        for n in &report.nodes {
            t.add_row(vec![
                n.name.clone(),
                n.role.clone(),
                n.container.clone(),
                if n.swarm_state.is_empty() {
                    "-".into()
                } else {
                    n.swarm_state.clone()
                },
                if n.availability.is_empty() {
                    "-".into()
                } else {
                    n.availability.clone()
                },
                n.engine.clone(),
                swarm::show_labels(&n.labels),
            ]);
        }
        println!("{t}");
        match &report.endpoints_file {
            Some(f) => ui.info(&format!("network {} ({}), endpoints {f}", report.network, report.subnet)),
            None => ui.warn(&format!(
                "no endpoints file for lab `{}` (its `up` did not finish?); `twip lab down --name {}` removes it",
                report.name, report.name
            )),
        }
    }
    Ok(exit::SUCCESS)
}

fn print_table(nodes: &[LabNode]) {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY);
    t.set_header(vec!["NODE", "ROLE", "ADDRESS", "ENGINE"]);
    for n in nodes {
        t.add_row(vec![
            n.name.clone(),
            role_name(n.role).to_string(),
            n.address.clone(),
            n.engine.clone(),
        ]);
    }
    eprintln!("{t}");
}
