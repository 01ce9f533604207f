//! `twip lab up|down|status`: a local swarm of docker-in-docker nodes.
//!
//! `up` is an ordered list of small named steps over a shared context (kind's shape): each
//! prints ✓ or ✗ with its time; when one fails, everything made so far is removed unless
//! `--retain`. Nodes are found by the label `io.twip.lab=NAME`, so `down` works after a
//! failed `up` and twice in a row. The swarm is formed through the same code as
//! `twip swarm init|join` ([`crate::engine::swarm`]).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::{Duration, Instant};

use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, Ipam, IpamConfig, Mount,
    MountType, NetworkCreateRequest, NetworkingConfig, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, ListNetworksOptions, ListVolumesOptions,
    RemoveContainerOptions, RemoveVolumeOptions,
};
use bollard::Docker;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use console::Style;
use serde::Serialize;

use crate::cli::{GlobalArgs, LabNameArgs, LabUpArgs};
use crate::engine::error::{EngineError, EngineResult, ErrorKind};
use crate::engine::swarm::{self, InitOutcome, Manager, Member};
use crate::engine::{self, Endpoint};
use crate::exit;
use crate::lab::{self, Lab, LabNode, LABEL_INDEX, LABEL_LAB, LABEL_ROLE};
use crate::manifest::model::Role;
use crate::ui::Ui;

/// How long each node's engine may take to answer after its container starts.
const ENGINE_WAIT: Duration = Duration::from_secs(90);
/// How long the joined nodes may take to be Ready.
const READY_WAIT: Duration = Duration::from_secs(120);

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

/// The local engine, where lab containers run.
async fn host_engine(g: &GlobalArgs) -> anyhow::Result<(Docker, Endpoint)> {
    let ep = Endpoint::resolve(g.host.as_deref(), None);
    let docker = engine::connect(&ep).await?;
    Ok((docker, ep))
}

fn lab_filter(name: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{LABEL_LAB}={name}")])])
}

/// What `up` has made so far, and what the steps share.
struct UpCtx {
    host: Docker,
    name: String,
    image: String,
    network: String,
    subnet: String,
    nodes: Vec<LabNode>,
    engines: Vec<Docker>,
}

pub async fn up(g: &GlobalArgs, args: &LabUpArgs, ui: &Ui) -> anyhow::Result<i32> {
    lab::check_name(&args.name)?;
    lab::layout(&args.name, args.nodes, args.managers, 1)?;
    let (host, _) = host_engine(g).await?;
    let existing = host
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(lab_filter(&args.name)),
            ..Default::default()
        }))
        .await
        .engine("list containers", "")?;
    if !existing.is_empty() {
        return Err(exit::coded(
            exit::FAILURE,
            format!(
                "lab `{0}` exists ({1} container{2}); `twip lab status --name {0}` shows it, `twip lab down --name {0}` removes it",
                args.name,
                existing.len(),
                if existing.len() == 1 { "" } else { "s" }
            ),
        ));
    }
    let image = match std::env::var("TWIP_LAB_IMAGE")
        .ok()
        .filter(|s| !s.is_empty())
    {
        Some(i) => i,
        None if host.inspect_image(lab::OFFLINE_IMAGE).await.is_ok() => {
            lab::OFFLINE_IMAGE.to_string()
        }
        None => lab::PUBLIC_IMAGE.to_string(),
    };
    ui.info(&format!(
        "Creating lab `{}`: {} node{} ({} manager{}) from {image}",
        args.name,
        args.nodes,
        if args.nodes == 1 { "" } else { "s" },
        args.managers,
        if args.managers == 1 { "" } else { "s" },
    ));
    let mut ctx = UpCtx {
        host,
        name: args.name.clone(),
        image,
        network: lab::network_name(&args.name),
        subnet: String::new(),
        nodes: Vec::new(),
        engines: Vec::new(),
    };
    let t0 = Instant::now();
    match up_steps(&mut ctx, args, ui).await {
        Ok(path) => {
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
        Err(e) => {
            if args.retain {
                ui.warn(&format!(
                    "kept what was made (--retain); `twip lab down --name {}` removes it",
                    ctx.name
                ));
            } else {
                match remove_lab(&ctx.host, &ctx.name).await {
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

async fn up_steps(
    ctx: &mut UpCtx,
    args: &LabUpArgs,
    ui: &Ui,
) -> anyhow::Result<std::path::PathBuf> {
    let steps = Steps { ui };
    steps
        .run(&format!("Ensure node image {}", ctx.image), async {
            match ctx.host.inspect_image(&ctx.image).await {
                Ok(_) => Ok(()),
                Err(e) => {
                    let e = EngineError::new("inspect image", &ctx.image, e);
                    if e.kind == ErrorKind::NotFound && ctx.image == lab::OFFLINE_IMAGE {
                        anyhow::bail!(
                            "{} is not in the local engine; build it with scripts/make-lab-node.sh (engine-up.sh does)",
                            ctx.image
                        );
                    }
                    if e.kind == ErrorKind::NotFound {
                        anyhow::bail!(
                            "{} is not in the local engine; pull it, or build the offline {} with scripts/make-lab-node.sh",
                            ctx.image,
                            lab::OFFLINE_IMAGE
                        );
                    }
                    Err(e.into())
                }
            }
        })
        .await?;

    let octet = pick_octet(&ctx.host, &ctx.name).await?;
    ctx.subnet = format!("10.99.{octet}.0/24");
    ctx.nodes = lab::layout(&ctx.name, args.nodes, args.managers, octet)?;
    steps
        .run(
            &format!("Create network {} ({})", ctx.network, ctx.subnet),
            create_network(ctx),
        )
        .await?;
    steps
        .run(
            &format!(
                "Start {} node{}",
                ctx.nodes.len(),
                if ctx.nodes.len() == 1 { "" } else { "s" }
            ),
            start_nodes(ctx),
        )
        .await?;
    ctx.engines = steps
        .run("Wait for the nodes' engines", wait_engines(&ctx.nodes))
        .await?;
    let first = &ctx.nodes[0];
    let mgr_docker = ctx.engines[0].clone();
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
        .zip(&ctx.engines)
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
        .await?;
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

/// The lab's subnet octet: the one its network already has, else a free one.
async fn pick_octet(host: &Docker, name: &str) -> anyhow::Result<u8> {
    let nets = host
        .list_networks(None::<ListNetworksOptions>)
        .await
        .engine("list networks", "")?;
    let mut taken = lab::host_routes();
    for n in &nets {
        for c in n
            .ipam
            .as_ref()
            .and_then(|i| i.config.clone())
            .unwrap_or_default()
        {
            if let Some(s) = c.subnet {
                taken.push(s);
            }
        }
    }
    lab::pick_subnet(name, &taken).ok_or_else(|| {
        anyhow::anyhow!("no free /24 in 10.99.0.0/16 for the lab's network on this host")
    })
}

async fn create_network(ctx: &UpCtx) -> anyhow::Result<()> {
    let gateway = ctx.subnet.replace(".0/24", ".1");
    ctx.host
        .create_network(NetworkCreateRequest {
            name: ctx.network.clone(),
            driver: Some("bridge".into()),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(ctx.subnet.clone()),
                    gateway: Some(gateway),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            labels: Some(HashMap::from([(LABEL_LAB.to_string(), ctx.name.clone())])),
            ..Default::default()
        })
        .await
        .engine("create network", &ctx.network)?;
    Ok(())
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Manager => "manager",
        Role::Worker => "worker",
    }
}

async fn start_nodes(ctx: &UpCtx) -> anyhow::Result<()> {
    let results = futures_util::future::join_all(
        ctx.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| start_node(ctx, i, n)),
    )
    .await;
    results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    Ok(())
}

async fn start_node(ctx: &UpCtx, index: usize, n: &LabNode) -> anyhow::Result<()> {
    let volume = format!("{}-docker", n.name);
    let labels = HashMap::from([
        (LABEL_LAB.to_string(), ctx.name.clone()),
        (LABEL_ROLE.to_string(), role_name(n.role).to_string()),
        (LABEL_INDEX.to_string(), index.to_string()),
    ]);
    ctx.host
        .create_volume(VolumeCreateRequest {
            name: Some(volume.clone()),
            labels: Some(HashMap::from([(LABEL_LAB.to_string(), ctx.name.clone())])),
            ..Default::default()
        })
        .await
        .engine("create volume", &volume)?;
    let body = ContainerCreateBody {
        image: Some(ctx.image.clone()),
        hostname: Some(n.name.clone()),
        labels: Some(labels),
        // The offline image and docker:dind both take dockerd's flags as arguments.
        cmd: Some(vec![
            "--host=unix:///var/run/docker.sock".into(),
            format!("--host=tcp://0.0.0.0:{}", lab::ENGINE_PORT),
            "--tls=false".into(),
        ]),
        env: Some(vec!["DOCKER_TLS_CERTDIR=".into()]),
        host_config: Some(HostConfig {
            privileged: Some(true),
            network_mode: Some(ctx.network.clone()),
            mounts: Some(vec![Mount {
                typ: Some(MountType::VOLUME),
                source: Some(volume.clone()),
                target: Some("/var/lib/docker".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                ctx.network.clone(),
                EndpointSettings {
                    ipam_config: Some(EndpointIpamConfig {
                        ipv4_address: Some(n.address.clone()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )])),
        }),
        ..Default::default()
    };
    ctx.host
        .create_container(
            Some(CreateContainerOptions {
                name: Some(n.name.clone()),
                ..Default::default()
            }),
            body,
        )
        .await
        .engine("create container", &n.name)?;
    ctx.host
        .start_container(
            &n.name,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .engine("start container", &n.name)?;
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
struct Removed {
    containers: usize,
    volumes: usize,
    networks: usize,
    file: bool,
}

impl Removed {
    fn summary(&self) -> String {
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

    fn is_empty(&self) -> bool {
        self.containers + self.volumes + self.networks == 0 && !self.file
    }
}

/// Removes everything labelled for lab `name`, and its endpoints file.
async fn remove_lab(host: &Docker, name: &str) -> anyhow::Result<Removed> {
    let mut r = Removed::default();
    let containers = host
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(lab_filter(name)),
            ..Default::default()
        }))
        .await
        .engine("list containers", "")?;
    let removals = futures_util::future::join_all(containers.iter().map(|c| async move {
        let id = c.id.clone().unwrap_or_default();
        match host
            .remove_container(
                &id,
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                }),
            )
            .await
            .engine("remove container", &id)
        {
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
    let volumes = host
        .list_volumes(Some(ListVolumesOptions {
            filters: Some(lab_filter(name)),
        }))
        .await
        .engine("list volumes", "")?
        .volumes
        .unwrap_or_default();
    for v in volumes {
        match host
            .remove_volume(&v.name, Some(RemoveVolumeOptions { force: true }))
            .await
            .engine("remove volume", &v.name)
        {
            Ok(()) => r.volumes += 1,
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    let networks = host
        .list_networks(Some(ListNetworksOptions {
            filters: Some(lab_filter(name)),
        }))
        .await
        .engine("list networks", "")?;
    for n in networks {
        let id = n.id.clone().unwrap_or_default();
        match host.remove_network(&id).await.engine("remove network", &id) {
            Ok(()) => r.networks += 1,
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    let file = lab::endpoints_file(name);
    if file.exists() {
        std::fs::remove_file(&file)
            .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", file.display()))?;
        r.file = true;
    }
    Ok(r)
}

pub async fn down(g: &GlobalArgs, args: &LabNameArgs, ui: &Ui) -> anyhow::Result<i32> {
    lab::check_name(&args.name)?;
    let (host, _) = host_engine(g).await?;
    let r = remove_lab(&host, &args.name).await?;
    if r.is_empty() {
        ui.ok(&format!("no lab `{}`: nothing to remove", args.name));
    } else {
        ui.ok(&format!("lab `{}` removed: {}", args.name, r.summary()));
    }
    Ok(exit::SUCCESS)
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

pub async fn status(g: &GlobalArgs, args: &LabNameArgs, ui: &Ui) -> anyhow::Result<i32> {
    lab::check_name(&args.name)?;
    let (host, _) = host_engine(g).await?;
    let network = lab::network_name(&args.name);
    let containers = host
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(lab_filter(&args.name)),
            ..Default::default()
        }))
        .await
        .engine("list containers", "")?;
    if containers.is_empty() {
        return Err(exit::coded(
            exit::FAILURE,
            format!(
                "no lab `{0}` (no container labelled {LABEL_LAB}={0}); `twip lab up --name {0}` starts one",
                args.name
            ),
        ));
    }
    let subnet = host
        .inspect_network(
            &network,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
        .ok()
        .and_then(|n| n.ipam?.config?.into_iter().next()?.subnet)
        .unwrap_or_default();
    let mut nodes: Vec<(u32, NodeReport)> = containers
        .iter()
        .map(|c| {
            let labels = c.labels.clone().unwrap_or_default();
            let name = c
                .names
                .as_ref()
                .and_then(|n| n.first())
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default();
            let address = c
                .network_settings
                .as_ref()
                .and_then(|s| s.networks.as_ref())
                .and_then(|m| m.get(&network))
                .and_then(|e| e.ip_address.clone())
                .unwrap_or_default();
            let index = labels
                .get(LABEL_INDEX)
                .and_then(|i| i.parse().ok())
                .unwrap_or(u32::MAX);
            let role = labels.get(LABEL_ROLE).cloned().unwrap_or_default();
            let engine = if address.is_empty() || role.is_empty() {
                String::new()
            } else {
                format!("tcp://{address}:{}", lab::ENGINE_PORT)
            };
            (
                index,
                NodeReport {
                    name,
                    role,
                    container: c.state.map(|s| s.to_string()).unwrap_or_default(),
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
    let file = lab::endpoints_file(&args.name);
    let report = LabReport {
        name: args.name.clone(),
        network,
        subnet,
        endpoints_file: file.exists().then(|| file.display().to_string()),
        nodes,
    };
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

/// What `twip up ENV --lab NAME` does before it converges: the manifest's node labels on the
/// lab nodes that stand in for its nodes (through `swarm join`, which skips nodes already in),
/// then the stack's images, built in the local engine when missing, loaded into every lab node
/// that lacks them (lab nodes cannot reach the host's registries).
pub async fn prepare(
    g: &GlobalArgs,
    t: &crate::context::Target,
    lab: &Lab,
    ui: &Ui,
) -> anyhow::Result<()> {
    crate::nodes::join_env(
        g.host.as_deref(),
        &t.project.dir,
        &t.env,
        Some(lab),
        READY_WAIT,
        ui,
    )
    .await?;
    let local = engine::connect(&Endpoint::resolve(None, None)).await?;
    super::build::ensure_images(&t.env, &local, &t.project.dir, ui).await?;
    deliver(lab, &crate::build::deployed_refs(&t.env), ui).await
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
        nodes.push((n.name.clone(), d?));
    }
    lab::images::deliver(&local, &nodes, refs, ui).await
}
