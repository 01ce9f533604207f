//! Provisioning a lab on the local engine, through [`ContainerHost`]: its network, its node
//! containers (with their volumes and labels), the swarm formed on them, and removing all of it.
//! `up` is an ordered list of small named steps over a shared context (kind's shape): each
//! prints ✓ or ✗ with its time; when one fails, everything made so far is removed unless
//! `retain`. Everything a lab is made of carries the label `io.twip.lab=NAME`, so [`remove`]
//! works after a failed `up` and twice in a row. The swarm is formed through the same code as
//! `twip swarm init|join` ([`crate::engine::swarm`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use console::Style;
use serde::Serialize;

use super::{Lab, LabNode, LABEL_INDEX, LABEL_LAB, LABEL_ROLE};
use crate::engine::error::ErrorKind;
use crate::engine::host::{ContainerHost, NodeContainer};
use crate::engine::swarm::{self, InitOutcome, Manager, Member};
use crate::engine::{self, Docker, Endpoint};
use crate::exit;
use crate::manifest::model::Role;
use crate::ui::Ui;

/// How long each node's engine may take to answer after its container starts.
const ENGINE_WAIT: Duration = Duration::from_secs(90);
/// How long the joined nodes may take to be Ready.
pub const READY_WAIT: Duration = Duration::from_secs(120);

/// Prints one step: `✓ name (1.2s)` or `✗ name (1.2s)`.
struct Steps<'a> {
    ui: &'a Ui,
}

impl Steps<'_> {
    async fn run<T>(
        &self,
        name: &str,
        f: impl Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        let t0 = Instant::now();
        if self.ui.verbose > 0 {
            self.ui.info(&format!("• {name} ..."));
        }
        let r = f.await;
        let secs = t0.elapsed().as_secs_f64();
        match &r {
            Ok(_) => self.ui.ok(&format!("{name} ({secs:.1}s)")),
            Err(_) if !self.ui.quiet => {
                let mark = Style::new()
                    .red()
                    .force_styling(self.ui.color)
                    .apply_to("✗");
                eprintln!("{mark} {name} ({secs:.1}s)");
            }
            Err(_) => {}
        }
        r
    }
}

/// The label every object of lab `name` carries, as a filter.
pub fn lab_label(name: &str) -> String {
    format!("{LABEL_LAB}={name}")
}

pub fn role_name(r: Role) -> &'static str {
    match r {
        Role::Manager => "manager",
        Role::Worker => "worker",
    }
}

/// What `lab up` was asked.
#[derive(Debug, Clone)]
pub struct UpRequest {
    pub name: String,
    pub nodes: u32,
    pub managers: u32,
    /// Keep what was made when a step fails.
    pub retain: bool,
}

/// What `up` has made so far, and what the steps share.
#[derive(Debug, Clone, Default)]
pub struct UpCtx {
    pub name: String,
    pub image: String,
    pub network: String,
    pub subnet: String,
    pub nodes: Vec<LabNode>,
}

/// The image the nodes run: `TWIP_LAB_IMAGE`, else the offline image when the host has it,
/// else the public one.
pub async fn node_image<H: ContainerHost>(host: &H) -> String {
    match std::env::var("TWIP_LAB_IMAGE")
        .ok()
        .filter(|s| !s.is_empty())
    {
        Some(i) => i,
        None if host
            .image_exists(super::OFFLINE_IMAGE)
            .await
            .unwrap_or(false) =>
        {
            super::OFFLINE_IMAGE.to_string()
        }
        None => super::PUBLIC_IMAGE.to_string(),
    }
}

/// `twip lab up`: checks, then the steps on the host ([`create`]) and on the nodes' engines (the
/// swarm), then the endpoints file. On failure everything made is removed unless `retain`.
/// Returns what was made and the endpoints file.
pub async fn up<H: ContainerHost>(
    host: &H,
    req: &UpRequest,
    ui: &Ui,
) -> anyhow::Result<(UpCtx, PathBuf)> {
    super::check_name(&req.name)?;
    super::layout(&req.name, req.nodes, req.managers, 1)?;
    let existing = host.containers(&lab_label(&req.name)).await?;
    if !existing.is_empty() {
        return Err(exit::coded(
            exit::FAILURE,
            format!(
                "lab `{0}` exists ({1} container{2}); `twip lab status --name {0}` shows it, `twip lab down --name {0}` removes it",
                req.name,
                existing.len(),
                if existing.len() == 1 { "" } else { "s" }
            ),
        ));
    }
    let image = node_image(host).await;
    ui.info(&format!(
        "Creating lab `{}`: {} node{} ({} manager{}) from {image}",
        req.name,
        req.nodes,
        if req.nodes == 1 { "" } else { "s" },
        req.managers,
        if req.managers == 1 { "" } else { "s" },
    ));
    let mut ctx = UpCtx {
        name: req.name.clone(),
        image,
        network: super::network_name(&req.name),
        ..Default::default()
    };
    let steps = Steps { ui };
    let made = async {
        create(host, &mut ctx, req, &steps).await?;
        form_swarm(&ctx, &steps, ui).await?;
        let lab = Lab {
            name: ctx.name.clone(),
            network: ctx.network.clone(),
            subnet: ctx.subnet.clone(),
            image: ctx.image.clone(),
            nodes: ctx.nodes.clone(),
        };
        steps
            .run("Write the endpoints file", async { lab.save() })
            .await
    }
    .await;
    match made {
        Ok(path) => Ok((ctx, path)),
        Err(e) => {
            if req.retain {
                ui.warn(&format!(
                    "kept what was made (--retain); `twip lab down --name {}` removes it",
                    ctx.name
                ));
            } else {
                match remove(host, &ctx.name).await {
                    Ok(r) => ui.info(&format!(
                        "removed what was made ({}); --retain keeps it for a look",
                        r.summary()
                    )),
                    Err(e2) => ui.warn(&format!("could not remove everything: {e2:#}")),
                }
            }
            Err(e)
        }
    }
}

/// The steps on the host: the node image is there, the network, the node containers.
async fn create<H: ContainerHost>(
    host: &H,
    ctx: &mut UpCtx,
    req: &UpRequest,
    steps: &Steps<'_>,
) -> anyhow::Result<()> {
    steps
        .run(
            &format!("Ensure node image {}", ctx.image),
            ensure_image(host, &ctx.image),
        )
        .await?;
    let octet = pick_octet(host, &ctx.name).await?;
    ctx.subnet = format!("10.99.{octet}.0/24");
    ctx.nodes = super::layout(&ctx.name, req.nodes, req.managers, octet)?;
    steps
        .run(
            &format!("Create network {} ({})", ctx.network, ctx.subnet),
            create_network(host, ctx),
        )
        .await?;
    steps
        .run(
            &format!(
                "Start {} node{}",
                ctx.nodes.len(),
                if ctx.nodes.len() == 1 { "" } else { "s" }
            ),
            start_nodes(host, ctx),
        )
        .await
}

async fn ensure_image<H: ContainerHost>(host: &H, image: &str) -> anyhow::Result<()> {
    if host.image_exists(image).await? {
        return Ok(());
    }
    if image == super::OFFLINE_IMAGE {
        anyhow::bail!(
            "{image} is not in the local engine; build it with scripts/make-lab-node.sh (engine-up.sh does)"
        );
    }
    anyhow::bail!(
        "{image} is not in the local engine; pull it, or build the offline {} with scripts/make-lab-node.sh",
        super::OFFLINE_IMAGE
    )
}

/// The steps on the nodes' engines: they answer, the swarm is initialised on the first manager,
/// the others join, every node is Ready.
async fn form_swarm(ctx: &UpCtx, steps: &Steps<'_>, ui: &Ui) -> anyhow::Result<()> {
    let engines = steps
        .run("Wait for the nodes' engines", wait_engines(&ctx.nodes))
        .await?;
    let first = &ctx.nodes[0];
    let mgr_docker = engines[0].clone();
    steps
        .run(&format!("Initialise the swarm on {}", first.name), async {
            match swarm::init(&mgr_docker, &first.engine, Some(&first.address)).await? {
                InitOutcome::Initialised | InitOutcome::AlreadyManager => Ok(()),
            }
        })
        .await?;
    let members: Vec<Member> = ctx
        .nodes
        .iter()
        .zip(&engines)
        .skip(1)
        .map(|(n, d)| Member {
            name: n.name.clone(),
            role: n.role,
            url: n.engine.clone(),
            docker: d.clone(),
            advertise: Some(n.address.clone()),
            labels: BTreeMap::new(),
        })
        .collect();
    let mgr = Manager::open(mgr_docker.clone(), &first.engine).await?;
    steps
        .run(
            "Join the other nodes and wait until every node is Ready",
            async {
                swarm::join_all(&mgr, &members, READY_WAIT, ui).await?;
                let me = vec![(first.name.clone(), mgr.node_id.clone())];
                swarm::wait_ready(&mgr.docker, &me, READY_WAIT).await
            },
        )
        .await
}

/// The lab's subnet octet: a free one, away from the host's networks and routes.
pub async fn pick_octet<H: ContainerHost>(host: &H, name: &str) -> anyhow::Result<u8> {
    let mut taken = super::host_routes();
    taken.extend(host.subnets().await?);
    super::pick_subnet(name, &taken).ok_or_else(|| {
        anyhow::anyhow!("no free /24 in 10.99.0.0/16 for the lab's network on this host")
    })
}

async fn create_network<H: ContainerHost>(host: &H, ctx: &UpCtx) -> anyhow::Result<()> {
    let gateway = ctx.subnet.replace(".0/24", ".1");
    let labels = BTreeMap::from([(LABEL_LAB.to_string(), ctx.name.clone())]);
    host.create_network(&ctx.network, &ctx.subnet, &gateway, &labels)
        .await?;
    Ok(())
}

async fn start_nodes<H: ContainerHost>(host: &H, ctx: &UpCtx) -> anyhow::Result<()> {
    let results = futures_util::future::join_all(
        ctx.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| start_node(host, ctx, i, n)),
    )
    .await;
    results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    Ok(())
}

/// The container of node `index` of the lab (see [`ContainerHost::run_node`]).
pub fn node_container(ctx: &UpCtx, index: usize, n: &LabNode) -> NodeContainer {
    NodeContainer {
        name: n.name.clone(),
        image: ctx.image.clone(),
        network: ctx.network.clone(),
        address: n.address.clone(),
        volume: format!("{}-docker", n.name),
        labels: BTreeMap::from([
            (LABEL_LAB.to_string(), ctx.name.clone()),
            (LABEL_ROLE.to_string(), role_name(n.role).to_string()),
            (LABEL_INDEX.to_string(), index.to_string()),
        ]),
        // The offline image and docker:dind both take dockerd's flags as arguments.
        cmd: vec![
            "--host=unix:///var/run/docker.sock".into(),
            format!("--host=tcp://0.0.0.0:{}", super::ENGINE_PORT),
            "--tls=false".into(),
        ],
        env: vec!["DOCKER_TLS_CERTDIR=".into()],
    }
}

async fn start_node<H: ContainerHost>(
    host: &H,
    ctx: &UpCtx,
    index: usize,
    n: &LabNode,
) -> anyhow::Result<()> {
    let c = node_container(ctx, index, n);
    let labels = BTreeMap::from([(LABEL_LAB.to_string(), ctx.name.clone())]);
    host.create_volume(&c.volume, &labels).await?;
    host.run_node(&c).await?;
    Ok(())
}

/// Connects to every node's engine, retrying until each answers.
async fn wait_engines(nodes: &[LabNode]) -> anyhow::Result<Vec<Docker>> {
    let results = futures_util::future::join_all(nodes.iter().map(|n| async move {
        let deadline = Instant::now() + ENGINE_WAIT;
        loop {
            match engine::connect(&n.endpoint()).await {
                Ok(d) => return Ok(d),
                Err(e) if Instant::now() > deadline => {
                    return Err(anyhow::anyhow!(
                        "{}: no engine answered within {}s: {e:#}",
                        n.name,
                        ENGINE_WAIT.as_secs()
                    ))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
            }
        }
    }))
    .await;
    results.into_iter().collect()
}

/// What `down` removed.
#[derive(Debug, Default)]
pub struct Removed {
    pub containers: usize,
    pub volumes: usize,
    pub networks: usize,
    pub file: bool,
}

impl Removed {
    pub fn summary(&self) -> String {
        let p = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
        format!(
            "{}, {}, {}{}",
            p(self.containers, "container"),
            p(self.volumes, "volume"),
            p(self.networks, "network"),
            if self.file {
                ", the endpoints file"
            } else {
                ""
            }
        )
    }

    pub fn is_empty(&self) -> bool {
        self.containers + self.volumes + self.networks == 0 && !self.file
    }
}

/// Removes everything labelled for lab `name`, and its endpoints file.
pub async fn remove<H: ContainerHost>(host: &H, name: &str) -> anyhow::Result<Removed> {
    let label = lab_label(name);
    let mut r = Removed::default();
    let containers = host.containers(&label).await?;
    let removals = futures_util::future::join_all(containers.iter().map(|c| async move {
        match host.remove_container(&c.id).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }))
    .await;
    for x in removals {
        x?;
        r.containers += 1;
    }
    for v in host.volumes(&label).await? {
        match host.remove_volume(&v).await {
            Ok(()) => r.volumes += 1,
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    for id in host.networks(&label).await? {
        match host.remove_network(&id).await {
            Ok(()) => r.networks += 1,
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    let file = super::endpoints_file(name);
    if file.exists() {
        std::fs::remove_file(&file)
            .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", file.display()))?;
        r.file = true;
    }
    Ok(r)
}

/// One node as `lab status` shows it.
#[derive(Debug, Serialize)]
pub struct NodeReport {
    pub name: String,
    pub role: String,
    pub container: String,
    pub address: String,
    pub engine: String,
    /// The swarm's view: ready, down, unknown; empty when the manager does not answer.
    pub swarm_state: String,
    pub availability: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
pub struct LabReport {
    pub name: String,
    pub network: String,
    pub subnet: String,
    pub endpoints_file: Option<String>,
    pub nodes: Vec<NodeReport>,
}

/// What `lab status` shows: the lab's containers on the host, with the swarm's view from the
/// first manager that answers.
pub async fn report<H: ContainerHost>(host: &H, name: &str) -> anyhow::Result<LabReport> {
    super::check_name(name)?;
    let network = super::network_name(name);
    let containers = host.containers(&lab_label(name)).await?;
    if containers.is_empty() {
        return Err(exit::coded(
            exit::FAILURE,
            format!(
                "no lab `{name}` (no container labelled {LABEL_LAB}={name}); `twip lab up --name {name}` starts one"
            ),
        ));
    }
    let subnet = host.network_subnet(&network).await.unwrap_or_default();
    let mut nodes: Vec<(u32, NodeReport)> = containers
        .iter()
        .map(|c| {
            let address = c.addresses.get(&network).cloned().unwrap_or_default();
            let index = c
                .labels
                .get(LABEL_INDEX)
                .and_then(|i| i.parse().ok())
                .unwrap_or(u32::MAX);
            let role = c.labels.get(LABEL_ROLE).cloned().unwrap_or_default();
            let engine = if address.is_empty() || role.is_empty() {
                String::new()
            } else {
                format!("tcp://{address}:{}", super::ENGINE_PORT)
            };
            (
                index,
                NodeReport {
                    name: c.name.clone(),
                    role,
                    container: c.state.clone(),
                    address,
                    engine,
                    swarm_state: String::new(),
                    availability: String::new(),
                    labels: BTreeMap::new(),
                },
            )
        })
        .collect();
    nodes.sort_by(|a, b| (a.0, &a.1.name).cmp(&(b.0, &b.1.name)));
    let mut nodes: Vec<NodeReport> = nodes.into_iter().map(|(_, n)| n).collect();
    // The swarm's view, from the first manager that answers.
    for m in nodes
        .iter()
        .filter(|n| n.role == "manager" && n.container == "running")
    {
        let ep = Endpoint {
            url: m.engine.clone(),
            tls: None,
            allow_plain_tcp: true,
        };
        let Ok(d) = engine::connect(&ep).await else {
            continue;
        };
        let Ok(list) = engine::nodes::collect_nodes(&d).await else {
            continue;
        };
        for n in nodes.iter_mut() {
            if let Some(s) = list.iter().find(|s| s.hostname == n.name) {
                n.swarm_state = s.state.clone();
                n.availability = s.availability.clone();
                n.labels = s.labels.clone();
            }
        }
        break;
    }
    let file = super::endpoints_file(name);
    Ok(LabReport {
        name: name.to_string(),
        network,
        subnet,
        endpoints_file: file.exists().then(|| file.display().to_string()),
        nodes,
    })
}

/// Copies images from this machine's engine to every node of the lab that lacks them.
pub async fn deliver(lab: &Lab, refs: &[String], ui: &Ui) -> anyhow::Result<()> {
    let local = engine::connect(&Endpoint::resolve(None, None)).await?;
    let engines = futures_util::future::join_all(
        lab.nodes
            .iter()
            .map(|n| async move { engine::connect(&n.endpoint()).await }),
    )
    .await;
    let mut nodes = Vec::new();
    for (n, d) in lab.nodes.iter().zip(engines) {
        match d {
            Ok(d) => nodes.push((n.name.clone(), d)),
            // A node that is down (killed, stopped) cannot run tasks either: not waited for.
            Err(e) => ui.warn(&format!("{}: no images delivered: {e}", n.name)),
        }
    }
    if nodes.is_empty() && !lab.nodes.is_empty() {
        anyhow::bail!("no node of lab `{}` answers", lab.name);
    }
    super::images::deliver(&local, &nodes, refs, ui).await
}

#[cfg(test)]
#[path = "provision_tests.rs"]
mod tests;
