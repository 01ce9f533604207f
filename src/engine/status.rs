//! What `twip status` reads from the engine, as twip's own view: nodes, the stack's services
//! (replicas, update state, restarts) and the tasks that fail. The JSON shape is documented in
//! docs/status.md and stable.

use std::collections::HashMap;

use bollard::models::{Service, Task, TaskState};
use bollard::query_parameters::{ListServicesOptionsBuilder, ListTasksOptions};
use bollard::Docker;
use serde::Serialize;

use super::error::EngineResult;
use super::managers::{down_nodes, managers_of, quorum_of, ManagerView, Quorum};
use super::nodes::{node_list, NodeStatus};
use crate::labels::{ENV as LABEL_ENV, MANAGED as LABEL_MANAGED, NAMESPACE as LABEL_NAMESPACE};

#[derive(Debug, Serialize)]
pub struct Status {
    pub nodes: Vec<NodeStatus>,
    /// The control plane: each manager's reachability and the leader, and the quorum.
    pub managers: Vec<ManagerView>,
    pub quorum: Quorum,
    /// Hostnames of the nodes the swarm marks down.
    pub down: Vec<String>,
    pub services: Vec<ServiceStatus>,
    pub failing_tasks: Vec<TaskStatus>,
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

/// The status of `stack` (every stack twip manages when `None`).
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
                .list_tasks(None::<ListTasksOptions>)
                .await
                .engine("list tasks", "")
        },
    )?;
    let node_names: HashMap<String, String> = nodes
        .iter()
        .filter_map(|n| Some((n.id.clone()?, n.description.as_ref()?.hostname.clone()?)))
        .collect();
    let managers = managers_of(&nodes);
    let mut out = Status {
        nodes: node_list(&nodes),
        quorum: quorum_of(&managers),
        managers,
        down: down_nodes(&nodes),
        services: Vec::new(),
        failing_tasks: Vec::new(),
    };
    let mut ids: HashMap<String, String> = HashMap::new();
    for svc in &services {
        ids.insert(
            s(svc.id.clone()),
            s(svc.spec.as_ref().and_then(|x| x.name.clone())),
        );
        out.services.push(service_status(svc, &tasks));
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

/// One service as status shows it, with the failures among its tasks.
fn service_status(svc: &Service, tasks: &[Task]) -> ServiceStatus {
    let spec = svc.spec.clone().unwrap_or_default();
    let name = s(spec.name.clone());
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
    ServiceStatus {
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
    }
}
