//! `twip status [ENV] [--json] [--watch]`: nodes, services and failing tasks, read from the
//! engine. The JSON shape is documented in docs/status.md and stable.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::models::TaskState;
use bollard::query_parameters::{ListServicesOptionsBuilder, ListTasksOptionsBuilder};
use bollard::Docker;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use serde::Serialize;

use crate::cli::{GlobalArgs, StatusArgs};
use crate::engine::error::EngineResult;
use crate::engine::{self, Endpoint};
use crate::plan::desired::LABEL_NAMESPACE;
use crate::render::context::{LABEL_ENV, LABEL_MANAGED};
use crate::ui::Ui;

#[derive(Debug, Serialize)]
pub struct Status {
    pub nodes: Vec<NodeStatus>,
    pub services: Vec<ServiceStatus>,
    pub failing_tasks: Vec<TaskStatus>,
}

#[derive(Debug, Serialize)]
pub struct NodeStatus {
    pub id: String,
    pub hostname: String,
    pub role: String,
    pub state: String,
    pub availability: String,
    pub leader: bool,
    pub address: String,
    pub engine_version: String,
    pub architecture: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
pub struct ServiceStatus {
    pub name: String,
    pub stack: String,
    pub environment: String,
    pub mode: String,
    pub running: u64,
    pub desired: u64,
    pub image: String,
    pub ports: Vec<String>,
    pub update_state: Option<String>,
    pub update_message: Option<String>,
    /// Tasks of this service that failed (swarm keeps a short history), and the last reason.
    pub restarts: u64,
    pub last_failure: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TaskStatus {
    pub service: String,
    pub task: String,
    pub slot: Option<i64>,
    pub node: String,
    pub state: String,
    pub desired_state: String,
    pub error: String,
}

fn s<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

pub async fn collect(docker: &Docker, stack: Option<&str>) -> anyhow::Result<Status> {
    let label = match stack {
        Some(st) => format!("{LABEL_NAMESPACE}={st}"),
        None => format!("{LABEL_MANAGED}=true"),
    };
    let f = HashMap::from([("label".to_string(), vec![label])]);
    let (nodes, services, tasks) = tokio::try_join!(
        async { docker.list_nodes(None).await.engine("list nodes", "") },
        async {
            docker
                .list_services(Some(
                    ListServicesOptionsBuilder::default()
                        .filters(&f)
                        .status(true)
                        .build(),
                ))
                .await
                .engine("list services", "")
        },
        async {
            docker
                .list_tasks(None::<bollard::query_parameters::ListTasksOptions>)
                .await
                .engine("list tasks", "")
        },
    )?;
    let _ = ListTasksOptionsBuilder::default();
    let node_names: HashMap<String, String> = nodes
        .iter()
        .filter_map(|n| Some((n.id.clone()?, n.description.as_ref()?.hostname.clone()?)))
        .collect();
    let mut out = Status {
        nodes: node_list(&nodes),
        services: Vec::new(),
        failing_tasks: Vec::new(),
    };
    let mut ids: HashMap<String, String> = HashMap::new();
    for svc in &services {
        let spec = svc.spec.clone().unwrap_or_default();
        let name = s(spec.name.clone());
        ids.insert(s(svc.id.clone()), name.clone());
        let labels = spec.labels.clone().unwrap_or_default();
        let mode = if spec.mode.as_ref().and_then(|m| m.global.as_ref()).is_some() {
            "global"
        } else {
            "replicated"
        };
        let st = svc.service_status.clone().unwrap_or_default();
        let ports = spec
            .endpoint_spec
            .as_ref()
            .and_then(|e| e.ports.clone())
            .unwrap_or_default()
            .iter()
            .map(|p| {
                format!(
                    "{}:{}/{} ({})",
                    s(p.published_port),
                    s(p.target_port),
                    s(p.protocol),
                    s(p.publish_mode)
                )
            })
            .collect();
        let svc_tasks: Vec<_> = tasks.iter().filter(|t| t.service_id == svc.id).collect();
        let failures: Vec<_> = svc_tasks
            .iter()
            .filter(|t| {
                matches!(
                    t.status.as_ref().and_then(|x| x.state),
                    Some(TaskState::FAILED | TaskState::REJECTED)
                )
            })
            .collect();
        let last_failure = failures
            .iter()
            .max_by_key(|t| t.updated_at.clone())
            .map(|t| {
                let st = t.status.clone().unwrap_or_default();
                let code = st
                    .container_status
                    .as_ref()
                    .and_then(|c| c.exit_code)
                    .filter(|c| *c != 0);
                match (st.err, code) {
                    (Some(e), _) if !e.is_empty() => e,
                    (_, Some(c)) => format!("exited with code {c}"),
                    _ => s(st.message),
                }
            });
        let update = svc.update_status.clone();
        out.services.push(ServiceStatus {
            name: name.clone(),
            stack: labels.get(LABEL_NAMESPACE).cloned().unwrap_or_default(),
            environment: labels.get(LABEL_ENV).cloned().unwrap_or_default(),
            mode: mode.into(),
            running: st.running_tasks.unwrap_or(0),
            desired: st.desired_tasks.unwrap_or(0),
            image: s(spec
                .task_template
                .as_ref()
                .and_then(|t| t.container_spec.as_ref())
                .and_then(|c| c.image.clone()))
            .split('@')
            .next()
            .unwrap_or_default()
            .to_string(),
            ports,
            update_state: update
                .as_ref()
                .and_then(|u| u.state)
                .map(|s| crate::engine::update_state_name(s).to_string()),
            update_message: update.and_then(|u| u.message),
            restarts: failures.len() as u64,
            last_failure,
        });
    }
    out.services.sort_by(|a, b| a.name.cmp(&b.name));
    for t in &tasks {
        let Some(service) = t.service_id.as_ref().and_then(|id| ids.get(id)) else {
            continue;
        };
        let st = t.status.clone().unwrap_or_default();
        let failing = t.desired_state == Some(TaskState::RUNNING)
            && !matches!(st.state, Some(TaskState::RUNNING))
            && (st.err.is_some()
                || matches!(
                    st.state,
                    Some(TaskState::PENDING | TaskState::REJECTED | TaskState::FAILED)
                ));
        if failing {
            out.failing_tasks.push(TaskStatus {
                service: service.clone(),
                task: s(t.id.clone()),
                slot: t.slot,
                node: t
                    .node_id
                    .as_ref()
                    .and_then(|n| node_names.get(n).cloned())
                    .unwrap_or_default(),
                state: s(st.state),
                desired_state: s(t.desired_state),
                error: st.err.or(st.message).unwrap_or_default(),
            });
        }
    }
    out.failing_tasks
        .sort_by(|a, b| (&a.service, a.slot).cmp(&(&b.service, b.slot)));
    Ok(out)
}

/// Nodes as status shows them: managers first, then by hostname.
pub fn node_list(nodes: &[bollard::models::Node]) -> Vec<NodeStatus> {
    let mut out = Vec::new();
    for n in nodes {
        let spec = n.spec.clone().unwrap_or_default();
        let desc = n.description.clone().unwrap_or_default();
        out.push(NodeStatus {
            id: s(n.id.clone()),
            hostname: s(desc.hostname.clone()),
            role: s(spec.role),
            state: s(n.status.as_ref().and_then(|x| x.state)),
            availability: s(spec.availability),
            leader: n
                .manager_status
                .as_ref()
                .and_then(|m| m.leader)
                .unwrap_or(false),
            address: s(n.status.as_ref().and_then(|x| x.addr.clone())),
            engine_version: s(desc.engine.as_ref().and_then(|e| e.engine_version.clone())),
            architecture: s(desc.platform.as_ref().and_then(|p| p.architecture.clone())),
            labels: spec.labels.unwrap_or_default().into_iter().collect(),
        });
    }
    out.sort_by_key(|n| (n.role != "manager", n.hostname.clone()));
    out
}

pub async fn collect_nodes(docker: &Docker) -> anyhow::Result<Vec<NodeStatus>> {
    Ok(node_list(
        &docker.list_nodes(None).await.engine("list nodes", "")?,
    ))
}

pub fn print_nodes(list: &[NodeStatus]) {
    let mut nodes = Table::new();
    nodes.load_preset(UTF8_BORDERS_ONLY);
    nodes.set_header(vec![
        "NODE",
        "ROLE",
        "STATE",
        "AVAILABILITY",
        "ENGINE",
        "ARCH",
        "ADDRESS",
    ]);
    for n in list {
        let role = if n.leader {
            format!("{} (leader)", n.role)
        } else {
            n.role.clone()
        };
        nodes.add_row(vec![
            n.hostname.clone(),
            role,
            n.state.clone(),
            n.availability.clone(),
            n.engine_version.clone(),
            n.architecture.clone(),
            n.address.clone(),
        ]);
    }
    // Names, addresses and errors come from the engine: made safe for a terminal.
    println!("{}", crate::ui::clean(&nodes.to_string()));
}

pub fn print(st: &Status) {
    print_nodes(&st.nodes);
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
    let (endpoint, stack) = match &args.env {
        Some(name) => {
            let project = crate::project::Project::discover(g.project_dir.as_deref())?;
            let env = project.load(name)?;
            let (endpoint, _) = crate::context::endpoint_for(g, &env, args.lab.as_deref())?;
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
        if args.json {
            println!("{}", serde_json::to_string_pretty(&st)?);
        } else {
            if args.watch && ui.interactive {
                print!("\x1b[2J\x1b[H");
            }
            print(&st);
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
