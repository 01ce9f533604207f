//! `twip clean [ENV] [--all] [--dry-run] [-y]`: twip.sh's `clean up` / `clean all`.
//! Without --all: exited containers, dangling images and unused networks that twip made (by
//! label). With --all: everything unused on the engine, build cache included, after a
//! confirmation. Prints what it removed (or would remove) and the space reclaimed.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListImagesOptionsBuilder, ListNetworksOptionsBuilder,
    PruneBuildOptionsBuilder, RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder,
};
use bollard::Docker;

use crate::cli::{CleanArgs, GlobalArgs};
use crate::engine::error::EngineResult;
use crate::engine::{self, Endpoint};
use crate::exit;
use crate::plan::desired::LABEL_NAMESPACE;
use crate::render::context::{LABEL_MANAGED, LABEL_PROJECT};
use crate::ui::Ui;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub kind: &'static str,
    pub id: String,
    pub name: String,
    pub size: u64,
}

fn label_filter(label: String) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![label])])
}

/// What clean would remove.
pub async fn candidates(
    docker: &Docker,
    stack: Option<&str>,
    project: Option<&str>,
    all: bool,
) -> anyhow::Result<Vec<Item>> {
    let mut items = Vec::new();
    let owner = match stack {
        Some(s) => format!("{LABEL_NAMESPACE}={s}"),
        None => format!("{LABEL_MANAGED}=true"),
    };
    // Containers that are not running.
    let mut f = HashMap::from([(
        "status".to_string(),
        vec![
            "exited".to_string(),
            "created".to_string(),
            "dead".to_string(),
        ],
    )]);
    if !all {
        f.insert("label".into(), vec![owner.clone()]);
    }
    for c in docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .size(true)
                .filters(&f)
                .build(),
        ))
        .await
        .engine("list containers", "")?
    {
        items.push(Item {
            kind: "container",
            id: c.id.clone().unwrap_or_default(),
            name: c
                .names
                .unwrap_or_default()
                .first()
                .cloned()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            size: c.size_rw.unwrap_or(0).max(0) as u64,
        });
    }
    // Dangling images (of twip's project when not --all).
    let mut f = HashMap::from([("dangling".to_string(), vec!["true".to_string()])]);
    if !all {
        f.insert(
            "label".into(),
            vec![match project {
                Some(p) => format!("{LABEL_PROJECT}={p}"),
                None => LABEL_PROJECT.to_string(),
            }],
        );
    }
    for i in docker
        .list_images(Some(
            ListImagesOptionsBuilder::default().filters(&f).build(),
        ))
        .await
        .engine("list images", "")?
    {
        items.push(Item {
            kind: "image",
            id: i.id.clone(),
            name: i.id.chars().take(19).collect(),
            size: i.size.max(0) as u64,
        });
    }
    // Networks nothing uses.
    let f = if all {
        HashMap::new()
    } else {
        label_filter(owner)
    };
    for n in docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default().filters(&f).build(),
        ))
        .await
        .engine("list networks", "")?
    {
        let name = n.name.clone().unwrap_or_default();
        if ["bridge", "host", "none", "ingress", "docker_gwbridge"].contains(&name.as_str()) {
            continue;
        }
        let id = n.id.clone().unwrap_or_default();
        // A network is in use when a service of its stack exists or a container is attached.
        let detail = docker
            .inspect_network(
                &id,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
            .engine("inspect network", &name)?;
        let attached = detail.containers.as_ref().is_some_and(|c| !c.is_empty());
        let stack_label = n
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_NAMESPACE))
            .cloned();
        let stack_alive = match &stack_label {
            Some(s) => !engine::observe::observe(docker, s)
                .await?
                .services
                .is_empty(),
            None => false,
        };
        // Unused: nothing attached and no service of its stack left.
        let unused = !attached
            && !stack_alive
            && (n.scope.as_deref() != Some("swarm") || stack_label.is_some());
        if unused {
            items.push(Item {
                kind: "network",
                id,
                name,
                size: 0,
            });
        }
    }
    items.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    items.dedup();
    Ok(items)
}

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
    let (endpoint, stack, project) = match &args.env {
        Some(name) => {
            let p = crate::project::Project::discover(g.project_dir.as_deref())?;
            let env = p.load(name)?;
            (
                Endpoint::resolve(g.host.as_deref(), Some(&env)),
                Some(env.stack().to_string()),
                Some(env.project().to_string()),
            )
        }
        None => (Endpoint::resolve(g.host.as_deref(), None), None, None),
    };
    let docker = engine::connect(&endpoint).await?;
    let items = candidates(&docker, stack.as_deref(), project.as_deref(), args.all).await?;
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
        let r = match i.kind {
            "container" => docker
                .remove_container(
                    &i.id,
                    Some(RemoveContainerOptionsBuilder::default().v(false).build()),
                )
                .await
                .engine("remove container", &i.name)
                .map(|_| ()),
            "image" => docker
                .remove_image(
                    &i.id,
                    Some(RemoveImageOptionsBuilder::default().build()),
                    None,
                )
                .await
                .engine("remove image", &i.name)
                .map(|_| ()),
            _ => docker
                .remove_network(&i.id)
                .await
                .engine("remove network", &i.name),
        };
        match r {
            Ok(()) => {
                removed += 1;
                reclaimed += i.size;
            }
            Err(e) => ui.warn(&e.to_string()),
        }
    }
    if args.all {
        let r = docker
            .prune_build(Some(PruneBuildOptionsBuilder::default().all(true).build()))
            .await
            .engine("prune build cache", "")?;
        let n = r.caches_deleted.map_or(0, |c| c.len());
        reclaimed += r.space_reclaimed.unwrap_or(0).max(0) as u64;
        println!("build-cache {n} entries");
    }
    ui.ok(&format!(
        "removed {removed} item{}, reclaimed {}",
        if removed == 1 { "" } else { "s" },
        human(reclaimed)
    ));
    Ok(exit::SUCCESS)
}
