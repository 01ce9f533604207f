//! `twip status [ENV] [--json] [--watch]`: nodes, services and failing tasks, read from the
//! engine ([`crate::engine::status`]). The JSON shape is documented in docs/status.md and stable.

use std::time::Duration;

use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};

use crate::cli::{GlobalArgs, StatusArgs};
use crate::engine::status::{collect, Status};
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

/// The control plane under the tables: each manager, the leader, the quorum (a warning on
/// stderr when one more lost manager would stop it), and the nodes that are down.
pub fn print_control_plane(st: &Status, ui: &Ui) {
    if !st.managers.is_empty() {
        let list: Vec<String> = st
            .managers
            .iter()
            .map(|m| {
                format!(
                    "{} {}{}",
                    m.name,
                    m.reachability,
                    if m.leader { " (leader)" } else { "" }
                )
            })
            .collect();
        let leader = st
            .managers
            .iter()
            .find(|m| m.leader)
            .map_or("none".to_string(), |m| m.name.clone());
        println!(
            "{}",
            crate::ui::clean(&format!("managers: {}; leader: {leader}", list.join(", ")))
        );
        println!("{}", st.quorum.summary());
    }
    if !st.down.is_empty() {
        println!(
            "{}",
            crate::ui::clean(&format!("down: {}", st.down.join(", ")))
        );
    }
    if let Some(w) = st.quorum.warning() {
        ui.warn(&w);
    }
}

pub async fn run(g: &GlobalArgs, args: &StatusArgs, ui: &Ui) -> anyhow::Result<i32> {
    let (mut vip_address, mut proxy_port, mut jobs) = (None, None, Default::default());
    let project_env = match &args.env {
        Some(name) => {
            let project = crate::project::Project::discover(g.project_dir.as_deref())?;
            let env = project.load(name)?;
            vip_address = crate::render::context::vip::vip_address(&env);
            proxy_port = env.manifest.proxy.as_ref().map(|p| p.port.unwrap_or(80));
            jobs = crate::agent::jobs::JobsConfig::for_environment(&env, &project.dir)?.jobs;
            Some(env)
        }
        None => None,
    };
    let lab = crate::managers::load_lab(g.host.as_deref(), args.lab.as_deref())?;
    let stack = project_env.as_ref().map(|e| e.stack().to_string());
    let reached =
        crate::managers::reach_env(g.host.as_deref(), project_env.as_ref(), lab.as_ref(), ui)
            .await?;
    let docker = reached.docker;
    loop {
        let st = collect(&docker, stack.as_deref())
            .await
            .map_err(crate::managers::explain_no_leader)?;
        let vip = match (&vip_address, &stack) {
            (Some(a), Some(s)) => Some(crate::engine::vip::vip_status(&docker, s, a).await?),
            _ => None,
        };
        let agent = match &stack {
            Some(s) => crate::engine::records::agent_status(&docker, s).await?,
            None => None,
        };
        let jobs = match &stack {
            Some(s) if !jobs.is_empty() => crate::agent::jobs_cli::list(&docker, s, &jobs).await?,
            _ => Vec::new(),
        };
        let entrypoints = match (proxy_port, &stack) {
            (Some(p), Some(s)) => Some(crate::engine::vip::proxy_entrypoints(&docker, s, p).await?),
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
            if let Some(a) = &agent {
                v["agent"] = serde_json::to_value(a)?;
            }
            if !jobs.is_empty() {
                v["jobs"] = serde_json::to_value(&jobs)?;
            }
            println!("{}", serde_json::to_string_pretty(&v)?);
            if let Some(w) = st.quorum.warning() {
                ui.warn(&w);
            }
        } else {
            if args.watch && ui.interactive {
                print!("\x1b[2J\x1b[H");
            }
            print(&st);
            print_control_plane(&st, ui);
            if let Some(vip) = &vip {
                let holder = vip.holder.as_deref().unwrap_or("no node (not held)");
                println!(
                    "{}",
                    crate::ui::clean(&format!("vip {} on {holder}", vip.address))
                );
            }
            for line in agent.iter().flat_map(crate::engine::records::status_lines) {
                println!("{}", crate::ui::clean(&line));
            }
            for j in &jobs {
                println!("{}", crate::ui::clean(&j.status_line()));
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
