//! `twip down ENV [--volumes]`: remove what `up` made and wait until it is gone. Volumes hold
//! data and stay unless `--volumes` is given.

use std::collections::HashMap;
use std::time::Duration;

use bollard::query_parameters::{ListVolumesOptionsBuilder, RemoveVolumeOptionsBuilder};

use crate::cli::{DownArgs, GlobalArgs};
use crate::engine::error::EngineResult;
use crate::engine::execute::{remove_retrying, wait_services_gone};
use crate::engine::observe::{namespace_filter, observe};
use crate::ui::Ui;

pub async fn run(g: &GlobalArgs, args: &DownArgs, ui: &Ui) -> anyhow::Result<i32> {
    let t = crate::context::open_on(g, &args.env, args.lab.as_deref()).await?;
    let stack = t.env.stack().to_string();
    let docker = &t.docker;
    let obs = observe(docker, &stack).await?;
    let nothing = obs.services.is_empty()
        && obs.networks.is_empty()
        && obs.configs.is_empty()
        && obs.secrets.is_empty();
    for s in &obs.services {
        docker
            .delete_service(&s.name)
            .await
            .engine("remove service", &s.name)
            .or_else(not_found)?;
        ui.ok(&format!("removed service {}", s.name));
    }
    wait_services_gone(docker, &stack, Duration::from_secs(120)).await?;
    for c in &obs.configs {
        remove_retrying(|| async {
            docker
                .delete_config(&c.name)
                .await
                .engine("remove config", &c.name)
        })
        .await?;
        ui.ok(&format!("removed config {}", c.name));
    }
    for c in &obs.secrets {
        remove_retrying(|| async {
            docker
                .delete_secret(&c.name)
                .await
                .engine("remove secret", &c.name)
        })
        .await?;
        ui.ok(&format!("removed secret {}", c.name));
    }
    for n in &obs.networks {
        remove_retrying(|| async {
            docker
                .remove_network(&n.name)
                .await
                .engine("remove network", &n.name)
        })
        .await?;
        ui.ok(&format!("removed network {}", n.name));
    }
    // Removal calls return before every object is gone from every list: wait until the stack
    // has nothing left (or say what stays).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left = observe(docker, &stack).await?;
        let count =
            left.services.len() + left.networks.len() + left.configs.len() + left.secrets.len();
        if count == 0 {
            break;
        }
        if std::time::Instant::now() > deadline {
            return Err(crate::exit::coded(
                crate::exit::TIMEOUT,
                format!(
                    "{stack}: {count} objects are still there after 60s; run `twip down {}` again",
                    t.env.name
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let f: HashMap<String, Vec<String>> = namespace_filter(&stack);
    let vols = docker
        .list_volumes(Some(
            ListVolumesOptionsBuilder::default().filters(&f).build(),
        ))
        .await
        .engine("list volumes of stack", &stack)?
        .volumes
        .unwrap_or_default();
    if args.volumes {
        for v in &vols {
            let opts = RemoveVolumeOptionsBuilder::default().force(false).build();
            remove_retrying(|| async {
                docker
                    .remove_volume(&v.name, Some(opts.clone()))
                    .await
                    .engine("remove volume", &v.name)
            })
            .await?;
            ui.ok(&format!("removed volume {}", v.name));
        }
    } else if !vols.is_empty() {
        let names: Vec<&str> = vols.iter().map(|v| v.name.as_str()).collect();
        ui.info(&format!(
            "kept volume{} {} (their data stays; `twip down {} --volumes` removes them)",
            if names.len() == 1 { "" } else { "s" },
            names.join(", "),
            t.env.name
        ));
    }
    if nothing && (!args.volumes || vols.is_empty()) {
        ui.ok(&format!("{}: nothing to remove", t.env.name));
    } else {
        ui.ok(&format!("{} is down", t.env.name));
    }
    Ok(crate::exit::SUCCESS)
}

fn not_found(e: crate::engine::EngineError) -> Result<(), crate::engine::EngineError> {
    if e.kind == crate::engine::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}
