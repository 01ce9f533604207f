//! What the autoscaler and the layout comparison read from a running service: its replicas and
//! update state, and the CPU its containers use (one stats sample per container).

use std::collections::HashMap;

use bollard::models::{ServiceUpdateStatusStateEnum, TaskState};
use bollard::query_parameters::{
    InspectServiceOptions, ListContainersOptionsBuilder, StatsOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;

use super::error::EngineResult;
use super::observe;

/// The replicas a replicated service asks for (`None` for a global one, or when unset). The
/// error is the engine's own (a missing service among them).
pub async fn service_replicas(docker: &Docker, full: &str) -> anyhow::Result<Option<u64>> {
    let svc = docker
        .inspect_service(full, None::<InspectServiceOptions>)
        .await?;
    Ok(svc
        .spec
        .and_then(|s| s.mode)
        .and_then(|m| m.replicated)
        .and_then(|r| r.replicas)
        .map(|r| r as u64))
}

/// The ids of the nodes that run a task of `full` now.
pub async fn running_task_nodes(docker: &Docker, full: &str) -> anyhow::Result<Vec<String>> {
    Ok(observe::tasks(docker, full)
        .await?
        .iter()
        .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING))
        .filter_map(|t| t.node_id.clone())
        .collect())
}

/// (replicas wanted, an update runs, tasks running).
pub async fn service_state(docker: &Docker, full: &str) -> anyhow::Result<(u64, bool, u64)> {
    let svc = docker
        .inspect_service(full, None::<InspectServiceOptions>)
        .await
        .engine("inspect service", full)?;
    let replicas = svc
        .spec
        .as_ref()
        .and_then(|s| s.mode.as_ref())
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas)
        .unwrap_or(0) as u64;
    let updating = matches!(
        svc.update_status.and_then(|u| u.state),
        Some(
            ServiceUpdateStatusStateEnum::UPDATING | ServiceUpdateStatusStateEnum::ROLLBACK_STARTED
        )
    );
    let running = observe::tasks(docker, full)
        .await?
        .iter()
        .filter(|t| {
            t.desired_state == Some(TaskState::RUNNING)
                && t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING)
        })
        .count() as u64;
    Ok((replicas, updating, running))
}

/// Cores each running container of the service uses on this engine (read concurrently, one
/// stats sample each), and the cores each task reserves (1 when it reserves none).
pub async fn cpu_samples(docker: &Docker, full: &str) -> anyhow::Result<(Vec<f64>, f64)> {
    let svc = docker
        .inspect_service(full, None::<InspectServiceOptions>)
        .await
        .engine("inspect service", full)?;
    let reserved = svc
        .spec
        .as_ref()
        .and_then(|s| s.task_template.as_ref())
        .and_then(|t| t.resources.as_ref())
        .and_then(|r| r.reservations.as_ref())
        .and_then(|r| r.nano_cpus)
        .filter(|n| *n > 0)
        .map_or(1.0, |n| n as f64 / 1e9);
    Ok((container_cpu(docker, full).await?, reserved))
}

/// Cores each running container of the service on this engine uses (one stats sample each,
/// read concurrently). The engine need not be a manager.
pub async fn container_cpu(docker: &Docker, full: &str) -> anyhow::Result<Vec<f64>> {
    let f = HashMap::from([
        (
            "label".to_string(),
            vec![format!("com.docker.swarm.service.name={full}")],
        ),
        ("status".to_string(), vec!["running".to_string()]),
    ]);
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default().filters(&f).build(),
        ))
        .await
        .engine("list containers of service", full)?;
    let reads = containers
        .into_iter()
        .filter_map(|c| c.id)
        .map(|id| async move {
            let opts = StatsOptionsBuilder::default()
                .stream(false)
                .one_shot(false)
                .build();
            let Some(Ok(st)) = docker.stats(&id, Some(opts)).next().await else {
                return None;
            };
            let (cpu, pre) = (
                st.cpu_stats.unwrap_or_default(),
                st.precpu_stats.unwrap_or_default(),
            );
            let total = |s: &bollard::models::ContainerCpuStats| {
                s.cpu_usage
                    .as_ref()
                    .and_then(|u| u.total_usage)
                    .unwrap_or(0)
            };
            let delta = total(&cpu).saturating_sub(total(&pre)) as f64;
            let sys = cpu
                .system_cpu_usage
                .unwrap_or(0)
                .saturating_sub(pre.system_cpu_usage.unwrap_or(0)) as f64;
            let cpus = f64::from(cpu.online_cpus.unwrap_or(1).max(1));
            (sys > 0.0).then(|| delta / sys * cpus)
        });
    Ok(futures_util::future::join_all(reads)
        .await
        .into_iter()
        .flatten()
        .collect())
}

/// Mean CPU of the service's running containers on these engines, in percent of what each
/// task reserves (or of one core when nothing is reserved). NaN when no container runs there.
pub async fn cpu_per_task_on(engines: &[Docker], full: &str) -> anyhow::Result<f64> {
    let mut samples = Vec::new();
    let mut reserved = 1.0;
    for (i, docker) in engines.iter().enumerate() {
        if i == 0 {
            let (s, r) = cpu_samples(docker, full).await?;
            samples.extend(s);
            reserved = r;
        } else {
            samples.extend(container_cpu(docker, full).await?);
        }
    }
    if samples.is_empty() {
        return Ok(f64::NAN);
    }
    Ok(samples.iter().sum::<f64>() / samples.len() as f64 / reserved * 100.0)
}

/// Cores the service's containers on this engine use together.
pub async fn cpu_cores(docker: &Docker, full: &str) -> anyhow::Result<f64> {
    Ok(cpu_samples(docker, full).await?.0.iter().sum())
}
