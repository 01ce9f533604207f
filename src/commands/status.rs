//! `twip status [ENV] [--json] [--watch]`: nodes, services and failing tasks, read from the
//! engine ([`crate::engine::status`]). The JSON shape is documented in docs/status.md and stable.

use std::time::Duration;

use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};

use crate::cli::{GlobalArgs, StatusArgs};
use crate::engine::status::{collect, Status};
use crate::engine::{self, Endpoint};
use crate::ui::Ui;

pub fn print(st: &Status) {
    crate::nodes::print_nodes(&st.nodes);
    let mut svcs = Table::new();
    svcs.load_preset(UTF8_BORDERS_ONLY);
    svcs.set_header(vec![
        "SERVICE", "MODE", "RUNNING", "IMAGE", "PORTS", "UPDATE", "RESTARTS",
    ]);
    for s in &st.services {
        let restarts = match (&s.last_failure, s.restarts) {
            (Some(why), n) if n > 0 => format!("{n} ({why})"),
            (_, n) => n.to_string(),
        };
        svcs.add_row(vec![
            s.name.clone(),
            s.mode.clone(),
            format!("{}/{}", s.running, s.desired),
            s.image.clone(),
            s.ports.join(", "),
            s.update_state.clone().unwrap_or_else(|| "-".into()),
            restarts,
        ]);
    }
    if st.services.is_empty() {
        println!("no services");
    } else {
        println!("{}", crate::ui::clean(&svcs.to_string()));
    }
    if !st.failing_tasks.is_empty() {
        println!("failing tasks:");
        for t in &st.failing_tasks {
            let line = format!(
                "  {}.{} on {}: {} ({})",
                t.service,
                t.slot.map_or("-".into(), |s| s.to_string()),
                if t.node.is_empty() { "-" } else { &t.node },
                t.state,
                t.error
            );
            println!("{}", crate::ui::clean(&line));
        }
    }
}

pub async fn run(g: &GlobalArgs, args: &StatusArgs, ui: &Ui) -> anyhow::Result<i32> {
    let (mut vip_address, mut proxy_port) = (None, None);
    let (endpoint, stack) = match &args.env {
        Some(name) => {
            let project = crate::project::Project::discover(g.project_dir.as_deref())?;
            let env = project.load(name)?;
            let (endpoint, _) = crate::context::endpoint_for(g, &env, args.lab.as_deref())?;
            vip_address = crate::render::context::vip::vip_address(&env);
            proxy_port = env.manifest.proxy.as_ref().map(|p| p.port.unwrap_or(80));
            (endpoint, Some(env.stack().to_string()))
        }
        None => match &args.lab {
            Some(lab) => (crate::lab::Lab::load(lab)?.manager()?.endpoint(), None),
            None => (Endpoint::resolve(g.host.as_deref(), None), None),
        },
    };
    let docker = engine::connect(&endpoint).await?;
    engine::require_manager(&docker, &endpoint).await?;
    loop {
        let st = collect(&docker, stack.as_deref()).await?;
        let vip = match (&vip_address, &stack) {
            (Some(a), Some(s)) => Some(engine::vip::vip_status(&docker, s, a).await?),
            _ => None,
        };
        let entrypoints = match (proxy_port, &stack) {
            (Some(p), Some(s)) => Some(engine::vip::proxy_entrypoints(&docker, s, p).await?),
            _ => None,
        };
        if args.json {
            let mut v = serde_json::to_value(&st)?;
            if let Some(vip) = &vip {
                v["vip"] = serde_json::to_value(vip)?;
            }
            if let Some(e) = &entrypoints {
                v["entrypoints"] = serde_json::to_value(e)?;
            }
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            if args.watch && ui.interactive {
                print!("\x1b[2J\x1b[H");
            }
            print(&st);
            if let Some(vip) = &vip {
                let holder = vip.holder.as_deref().unwrap_or("no node (not held)");
                println!(
                    "{}",
                    crate::ui::clean(&format!("vip {} on {holder}", vip.address))
                );
            }
        }
        if !args.watch {
            return Ok(crate::exit::SUCCESS);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(crate::exit::SUCCESS),
        }
    }
}
