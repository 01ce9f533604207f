//! Waiting for convergence: every service touched by a plan runs its desired number of
//! tasks, its update (if any) completed, nothing left starting. Each service's state is an
//! [`Event`] when it changes (the lifecycle shows them). Failures are reported with what a
//! person can act on: the task's error, a crash loop with its last log lines, or a rollback
//! swarm performed. Time is the engine's ([`SwarmApi::now`]).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use super::api::SwarmApi;
use super::events::{Event, Sink};
use super::model::{Task, TaskSpec, TaskState};
use super::observe;
use crate::exit;

/// A service's state at one look.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceState {
    pub desired: u64,
    pub running: u64,
    pub starting: u64,
    /// Running (or starting) tasks made from an older spec than the service's.
    pub outdated: u64,
    pub failed_new: u64,
    pub last_error: Option<String>,
    pub update: Option<String>,
    pub update_message: Option<String>,
    /// How long the youngest running task has been running.
    pub youngest_running: Option<Duration>,
}

/// A task must keep running this long before its service counts as converged: a process that
/// crashes right after it starts is not "up".
pub const STABLE: Duration = Duration::from_secs(3);

impl ServiceState {
    pub fn converged(&self) -> bool {
        self.running == self.desired
            && self.starting == 0
            && self.outdated == 0
            && self.youngest_running.is_none_or(|age| age >= STABLE)
            && !matches!(
                self.update.as_deref(),
                Some("updating" | "rollback_started")
            )
    }

    fn line(&self) -> String {
        let mut s = format!("{}/{} running", self.running, self.desired);
        if self.starting > 0 {
            s.push_str(&format!(", {} starting", self.starting));
        }
        if self.outdated > 0 {
            s.push_str(&format!(", {} to update", self.outdated));
        }
        if let Some(u) = &self.update {
            s.push_str(&format!(", update {u}"));
        }
        if let Some(e) = &self.last_error {
            s.push_str(&format!(", last error: {e}"));
        }
        s
    }
}

/// Tasks that existed before the deploy: their failures are old news.
/// What the services looked like before a change: their tasks (whose failures are old news)
/// and when their last update started (a status from before the change is not this change's).
#[derive(Debug, Clone, Default)]
pub struct Before {
    pub tasks: HashSet<String>,
    pub update_started: std::collections::HashMap<String, Option<String>>,
}

pub async fn existing_tasks(docker: &dyn SwarmApi, services: &[String]) -> Before {
    let mut before = Before::default();
    for s in services {
        if let Ok(tasks) = observe::tasks(docker, s).await {
            before.tasks.extend(tasks.into_iter().filter_map(|t| t.id));
        }
        if let Ok(svc) = observe::inspect_service(docker, s).await {
            before
                .update_started
                .insert(s.clone(), svc.update_status.and_then(|u| u.started_at));
        }
    }
    before
}

pub async fn look(
    docker: &dyn SwarmApi,
    service: &str,
    before: &Before,
) -> anyhow::Result<ServiceState> {
    let svc = observe::inspect_service(docker, service).await?;
    let tasks = observe::tasks(docker, service).await?;
    let replicated = svc
        .spec
        .as_ref()
        .and_then(|s| s.mode.as_ref())
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas);
    let want_running: Vec<_> = tasks
        .iter()
        .filter(|t| t.desired_state == Some(TaskState::RUNNING))
        .collect();
    // A global service wants one task per eligible node: every task not on its way out. (Not
    // only those meant to run now: a task waiting out its restart delay is desired `ready`,
    // and without it a crashing global service would look converged at 0/0.)
    let desired = match replicated {
        Some(n) => n as u64,
        None => tasks
            .iter()
            .filter(|t| {
                !matches!(
                    t.desired_state,
                    Some(TaskState::SHUTDOWN | TaskState::REMOVE | TaskState::COMPLETE) | None
                )
            })
            .count() as u64,
    };
    let running = want_running
        .iter()
        .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING))
        .count() as u64;
    let starting = want_running.len() as u64 - running;
    // Tasks made from an older spec than the service's: an update is still on its way (right
    // after the update call, swarm may not have started it yet).
    let template = svc
        .spec
        .as_ref()
        .and_then(|s| s.task_template.as_ref())
        .map(spec_json);
    let outdated = want_running
        .iter()
        .filter(|t| match (t.spec.as_ref().map(spec_json), &template) {
            (Some(a), Some(b)) => !(crate::plan::subset(&a, b) && crate::plan::subset(b, &a)),
            _ => false,
        })
        .count() as u64;
    let now = docker.now();
    let youngest_running = want_running
        .iter()
        .filter_map(|t| t.status.as_ref())
        .filter(|s| s.state == Some(TaskState::RUNNING))
        .filter_map(|s| s.timestamp.as_deref())
        .filter_map(|ts| {
            humantime::parse_rfc3339_weak(ts.trim_end_matches('Z').split('+').next().unwrap_or(ts))
                .ok()
        })
        .map(|t| now.duration_since(t).unwrap_or_default())
        .min();
    let mut failed: Vec<&Task> = tasks
        .iter()
        .filter(|t| !before.tasks.contains(t.id.as_deref().unwrap_or_default()))
        .filter(|t| {
            matches!(
                t.status.as_ref().and_then(|s| s.state),
                Some(TaskState::FAILED | TaskState::REJECTED)
            )
        })
        .collect();
    failed.sort_by_key(|t| t.updated_at.clone());
    let last_error = failed.last().map(|t| task_error(t)).or_else(|| {
        // A task that is stuck (pending: no suitable node, or an image it cannot get).
        want_running
            .iter()
            .filter_map(|t| t.status.as_ref())
            .filter(|s| matches!(s.state, Some(TaskState::PENDING | TaskState::REJECTED)))
            .find_map(|s| {
                s.err
                    .clone()
                    .or_else(|| s.message.clone().filter(|m| m.contains("no suitable node")))
            })
    });
    let started_before = before.update_started.get(service).cloned().flatten();
    let (update, update_message) = match svc.update_status {
        // A status from before this change says nothing about it.
        Some(u) if u.started_at.is_some() && u.started_at == started_before => (None, None),
        Some(u) => (
            u.state
                .map(|s| crate::engine::update_state_name(s).to_string()),
            u.message,
        ),
        None => (None, None),
    };
    Ok(ServiceState {
        desired,
        running,
        starting,
        outdated,
        failed_new: failed.len() as u64,
        last_error,
        update,
        update_message,
        youngest_running,
    })
}

/// A task spec as JSON without what the engine fills in differently in tasks and services
/// (`Runtime`); empty values compare equal to absent ones (see [`crate::plan::subset`]).
fn spec_json(spec: &TaskSpec) -> serde_json::Value {
    let mut v = serde_json::to_value(spec).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("Runtime");
    }
    v
}

fn task_error(t: &Task) -> String {
    let st = t.status.as_ref();
    let err = st.and_then(|s| s.err.clone()).unwrap_or_default();
    let exit_code = st
        .and_then(|s| s.container_status.as_ref())
        .and_then(|c| c.exit_code);
    let lower = err.to_ascii_lowercase();
    if lower.contains("no such image")
        || lower.contains("not found") && lower.contains("image")
        || lower.contains("pull access denied")
    {
        format!("image not found: {err}")
    } else if lower.contains("port is already allocated")
        || lower.contains("address already in use")
    {
        format!("port already allocated: {err}")
    } else if let Some(code) = exit_code.filter(|c| *c != 0) {
        format!("the container exited with code {code}")
    } else if err.is_empty() {
        st.and_then(|s| s.message.clone())
            .unwrap_or_else(|| "task failed".into())
    } else {
        err
    }
}

/// The last lines a service's tasks wrote (for a crash loop).
pub async fn last_log_lines(docker: &dyn SwarmApi, service: &str, n: usize) -> Vec<String> {
    docker.service_logs(service, n).await
}

/// Waits until every service converges, fails, or the timeout passes.
pub async fn converge(
    docker: &dyn SwarmApi,
    services: &[String],
    before: &Before,
    timeout: Duration,
    sink: &mut dyn Sink,
) -> anyhow::Result<()> {
    if services.is_empty() {
        return Ok(());
    }
    let start = docker.now();
    let elapsed = || docker.now().duration_since(start).unwrap_or_default();
    sink.emit(Event::Waiting {
        services: services.to_vec(),
    });
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    let mut done: HashSet<String> = HashSet::new();
    loop {
        for s in services {
            if done.contains(s) {
                continue;
            }
            let st = look(docker, s, before).await?;
            // The engine's task messages, as they change (the renderer makes them safe to print).
            let line = st.line();
            if last.get(s) != Some(&line) {
                sink.emit(Event::State {
                    service: s.clone(),
                    line: line.clone(),
                });
            }
            last.insert(s.clone(), line);
            let finished = |sink: &mut dyn Sink, ok| {
                sink.emit(Event::Finished {
                    service: s.clone(),
                    ok,
                })
            };
            match st.update.as_deref() {
                Some("rollback_completed") => {
                    finished(sink, false);
                    return Err(exit::coded(
                        exit::ROLLED_BACK,
                        format!(
                            "the update of {s} failed and swarm rolled it back: {}",
                            st.update_message.unwrap_or_default()
                        ),
                    ));
                }
                Some("paused") | Some("rollback_paused") => {
                    finished(sink, false);
                    return Err(exit::coded(
                        exit::PAUSED,
                        format!(
                            "the update of {s} is paused: {}; fix it and run `twip up` again, or `twip rollback`",
                            st.update_message.unwrap_or_default()
                        ),
                    ));
                }
                _ => {}
            }
            if st.converged() {
                finished(sink, true);
                done.insert(s.clone());
                continue;
            }
            // Fail fast on what will not get better by waiting.
            if st.failed_new >= 3
                || st.last_error.as_deref().is_some_and(|e| {
                    e.starts_with("image not found")
                        || e.starts_with("port already allocated")
                        || e.contains("no suitable node")
                }) && elapsed() > Duration::from_secs(10)
            {
                finished(sink, false);
                let err = st
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "tasks keep failing".into());
                let mut msg = format!("{s} does not start: {err}");
                if err.contains("exited with code") {
                    let logs = last_log_lines(docker, s, 10).await;
                    if !logs.is_empty() {
                        msg.push_str("\nlast log lines:\n");
                        for l in logs {
                            msg.push_str(&format!("  {l}\n"));
                        }
                    }
                }
                return Err(anyhow::anyhow!(msg.trim_end().to_string()));
            }
        }
        if done.len() == services.len() {
            return Ok(());
        }
        if elapsed() > timeout {
            let pending: Vec<String> = services
                .iter()
                .filter(|s| !done.contains(*s))
                .map(|s| format!("{s} ({})", last.get(s).cloned().unwrap_or_default()))
                .collect();
            sink.emit(Event::GaveUp);
            return Err(exit::coded(
                exit::TIMEOUT,
                format!(
                    "timed out after {} waiting for: {}",
                    humantime::format_duration(Duration::from_secs(timeout.as_secs())),
                    pending.join("; ")
                ),
            ));
        }
        docker.sleep(Duration::from_millis(400)).await;
    }
}

/// Waits until nothing of the stack is listed any more (services, networks, configs,
/// secrets). `Some(count)` of what is still there after TIMEOUT.
pub async fn stack_gone(
    docker: &dyn SwarmApi,
    stack: &str,
    timeout: Duration,
) -> anyhow::Result<Option<usize>> {
    let deadline = docker.now() + timeout;
    loop {
        let left = observe::observe(docker, stack).await?;
        let count =
            left.services.len() + left.networks.len() + left.configs.len() + left.secrets.len();
        if count == 0 {
            return Ok(None);
        }
        if docker.now() > deadline {
            return Ok(Some(count));
        }
        docker.sleep(Duration::from_millis(300)).await;
    }
}

/// Waits until every task of SERVICE ran to the end and exited 0 (`depends_on` with
/// `condition: completed`): as many complete tasks as the service wants (one per task of a
/// global service) and none still meant to run. A task that failed is an error with its exit
/// code and the service's last lines; exit 3 after TIMEOUT.
pub async fn completed(
    docker: &dyn SwarmApi,
    service: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let start = docker.now();
    loop {
        let svc = observe::inspect_service(docker, service).await?;
        let tasks = observe::tasks(docker, service).await?;
        let state = |t: &Task| t.status.as_ref().and_then(|s| s.state);
        if let Some(t) = tasks.iter().find(|t| state(t) == Some(TaskState::FAILED)) {
            let mut msg = format!("{service} did not complete: {}", task_error(t));
            for l in last_log_lines(docker, service, 10).await {
                msg.push_str(&format!("\n  {l}"));
            }
            return Err(anyhow::anyhow!(msg));
        }
        let want = svc
            .spec
            .as_ref()
            .and_then(|s| s.mode.as_ref())
            .and_then(|m| m.replicated.as_ref())
            .and_then(|r| r.replicas)
            .map_or(1, |n| n.max(0) as usize);
        let complete = tasks
            .iter()
            .filter(|t| state(t) == Some(TaskState::COMPLETE))
            .count();
        let running = tasks
            .iter()
            .filter(|t| t.desired_state == Some(TaskState::RUNNING) && !ended_state(state(t)))
            .count();
        if complete >= want && running == 0 {
            return Ok(());
        }
        if docker.now().duration_since(start).unwrap_or_default() > timeout {
            return Err(exit::coded(
                exit::TIMEOUT,
                format!(
                    "timed out after {} waiting for {service} to complete ({complete}/{want} complete)",
                    humantime::format_duration(Duration::from_secs(timeout.as_secs()))
                ),
            ));
        }
        docker.sleep(Duration::from_millis(400)).await;
    }
}

fn ended_state(s: Option<TaskState>) -> bool {
    matches!(
        s,
        Some(
            TaskState::COMPLETE
                | TaskState::FAILED
                | TaskState::REJECTED
                | TaskState::SHUTDOWN
                | TaskState::ORPHANED
        )
    )
}
