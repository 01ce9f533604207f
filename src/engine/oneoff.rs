//! One-off tasks: a command run once in a service's image, with its environment, networks,
//! secrets, configs and mounts (`twip run`, release tasks). A one-off is a swarm service in
//! `replicated-job` mode (one task, no restart) made from the service's desired spec with the
//! command replaced, followed until its task ends, and always removed afterwards: on success,
//! on failure, on a timeout and on Ctrl-C.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::StreamExt;

use super::api::SwarmApi;
use super::error::ErrorKind;
use super::model::*;
use crate::exit;

/// How many of its last lines a one-off keeps for an error message.
pub const LAST_LINES: usize = 20;

/// How a one-off ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The container's exit code (`None` when the task never ran a container: rejected).
    pub exit_code: Option<i64>,
    /// The task's final state (`complete`, `failed`, `rejected`, ...).
    pub state: String,
    /// The task's error, when the engine gave one.
    pub error: Option<String>,
    /// The last lines it wrote ([`LAST_LINES`] at most).
    pub last_lines: Vec<String>,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// The name of a one-off of SERVICE (its full name): `SERVICE_run_SUFFIX`, cut to the 63
/// characters swarm allows.
pub fn name_for(service: &str, suffix: &str) -> String {
    let tail = format!("_run_{suffix}");
    let keep = 63usize.saturating_sub(tail.len());
    let head: String = service.chars().take(keep).collect();
    format!("{head}{tail}")
}

/// A suffix unlikely to repeat: the process id and the clock's nanoseconds, in hex.
pub fn suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{:x}", (nanos as u64) ^ ((std::process::id() as u64) << 40))
        .chars()
        .rev()
        .take(10)
        .collect()
}

/// The one-off's spec, from a service's spec BASE: ARGS replace the command (the image's or
/// the manifest's entrypoint stays, as `docker run IMAGE ARGS` and `docker compose run` do);
/// one task in `replicated-job` mode that is never restarted; no published ports, no
/// healthcheck, no update or rollback settings; labelled as twip's and as a one-off of KIND.
/// Everything else (image, environment, networks, secrets, configs, mounts, user, resources,
/// placement) is the service's.
pub fn job_spec(base: &ServiceSpec, name: &str, args: &[String], kind: &str) -> ServiceSpec {
    let mut spec = base.clone();
    spec.name = Some(name.to_string());
    spec.mode = Some(ServiceSpecMode {
        replicated_job: Some(ServiceSpecModeReplicatedJob {
            max_concurrent: Some(1),
            total_completions: Some(1),
        }),
        ..Default::default()
    });
    spec.update_config = None;
    spec.rollback_config = None;
    spec.endpoint_spec = Some(EndpointSpec {
        mode: Some(EndpointSpecModeEnum::DNSRR),
        ports: None,
    });
    let labels = spec.labels.get_or_insert_with(Default::default);
    // Not part of the stack: no plan removes a running one-off, `docker stack ps` lists none.
    labels.remove(crate::labels::NAMESPACE);
    labels.remove(crate::labels::SPEC_HASH);
    labels.remove(crate::labels::MANIFEST_REPLICAS);
    labels.insert(crate::labels::MANAGED.into(), "true".into());
    labels.insert(crate::labels::ONEOFF.into(), kind.to_string());
    let tt = spec.task_template.get_or_insert_with(Default::default);
    tt.restart_policy = Some(TaskSpecRestartPolicy {
        condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
        max_attempts: Some(0),
        ..Default::default()
    });
    tt.force_update = None;
    let cs = tt.container_spec.get_or_insert_with(Default::default);
    cs.args = Some(args.to_vec());
    cs.health_check = Some(HealthConfig {
        test: Some(vec!["NONE".into()]),
        ..Default::default()
    });
    if let Some(l) = cs.labels.as_mut() {
        l.remove(crate::labels::NAMESPACE);
        l.insert(crate::labels::ONEOFF.into(), kind.to_string());
    }
    spec
}

fn state_name(s: Option<TaskState>) -> String {
    s.map_or_else(|| "unknown".into(), |s| s.to_string())
}

pub(crate) fn ended(s: Option<TaskState>) -> bool {
    matches!(
        s,
        Some(
            TaskState::COMPLETE
                | TaskState::FAILED
                | TaskState::REJECTED
                | TaskState::SHUTDOWN
                | TaskState::ORPHANED
                | TaskState::REMOVE
        )
    )
}

/// Whether a task of this state has (had) a container whose log can be read.
fn has_container(s: Option<TaskState>) -> bool {
    matches!(
        s,
        Some(TaskState::RUNNING | TaskState::COMPLETE | TaskState::FAILED | TaskState::SHUTDOWN)
    )
}

/// Runs SPEC (from [`job_spec`], its config and secret IDs filled in) as a one-off: creates
/// it, hands each line its task writes to ON_LINE, waits until the task ends (exit 3 after
/// TIMEOUT, 130 on Ctrl-C) and removes it, whatever happened.
pub async fn run(
    api: &dyn SwarmApi,
    spec: ServiceSpec,
    timeout: Duration,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> anyhow::Result<Outcome> {
    let name = spec.name.clone().unwrap_or_default();
    api.create_service(spec).await?;
    let result = tokio::select! {
        r = follow(api, &name, timeout, on_line) => r,
        _ = tokio::signal::ctrl_c() => Err(exit::coded(
            130,
            format!("interrupted; the one-off task {name} was removed"),
        )),
    };
    let removed = match api.remove_service(&name).await {
        Err(e) if e.kind != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    match (result, removed) {
        (Ok(o), Ok(())) => Ok(o),
        (Ok(_), Err(e)) => Err(anyhow::anyhow!(
            "the one-off task ran, but {name} could not be removed: {e}"
        )),
        (Err(e), _) => Err(e),
    }
}

/// Lines out of text chunks that may end anywhere.
#[derive(Default)]
struct Lines {
    partial: String,
    last: VecDeque<String>,
}

impl Lines {
    fn push(&mut self, chunk: &str, on_line: &mut (dyn FnMut(&str) + Send)) {
        self.partial.push_str(chunk);
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            self.line(line.trim_end_matches(['\n', '\r']), on_line);
        }
    }

    fn line(&mut self, line: &str, on_line: &mut (dyn FnMut(&str) + Send)) {
        on_line(line);
        self.last.push_back(line.to_string());
        if self.last.len() > LAST_LINES {
            self.last.pop_front();
        }
    }

    fn finish(&mut self, on_line: &mut (dyn FnMut(&str) + Send)) {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.line(&rest, on_line);
        }
    }
}

/// Follows the one-off NAME's task: its log as it comes, its state every half second.
pub async fn follow(
    api: &dyn SwarmApi,
    name: &str,
    timeout: Duration,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> anyhow::Result<Outcome> {
    let start = api.now();
    let mut logs = None;
    // A stream that ended is not polled again (some panic when they are).
    let mut logs_ended = false;
    let mut lines = Lines::default();
    loop {
        let mut tasks = api.list_tasks(name).await?;
        tasks.sort_by_key(|t| t.created_at.clone());
        let task = tasks.last();
        let state = task.and_then(|t| t.status.as_ref()).and_then(|s| s.state);
        if logs.is_none() && has_container(state) {
            let id = task.and_then(|t| t.id.clone()).unwrap_or_default();
            logs = Some(api.follow_task_logs(&id));
        }
        if let (Some(t), true) = (task, ended(state)) {
            // The log stream ends with the container; give it a moment to deliver the rest.
            if let Some(stream) = logs.as_mut().filter(|_| !logs_ended) {
                let drain = async {
                    while let Some(chunk) = stream.next().await {
                        if let Ok(c) = chunk {
                            lines.push(&c, on_line);
                        }
                    }
                };
                let _ = tokio::time::timeout(Duration::from_secs(10), drain).await;
            }
            lines.finish(on_line);
            let status = t.status.clone().unwrap_or_default();
            return Ok(Outcome {
                exit_code: status.container_status.and_then(|c| c.exit_code).or(
                    // A task that completed exited 0 even when the engine leaves the code out.
                    (state == Some(TaskState::COMPLETE)).then_some(0),
                ),
                state: state_name(state),
                error: status.err.filter(|e| !e.is_empty()),
                last_lines: lines.last.iter().cloned().collect(),
            });
        }
        if api.now().duration_since(start).unwrap_or_default() > timeout {
            return Err(exit::coded(
                exit::TIMEOUT,
                format!(
                    "the one-off task {name} did not end within {} (state: {}); it was removed",
                    humantime::format_duration(timeout),
                    state_name(state)
                ),
            ));
        }
        let tick = api.sleep(Duration::from_millis(500));
        match logs.as_mut().filter(|_| !logs_ended) {
            Some(stream) => {
                tokio::pin!(tick);
                loop {
                    tokio::select! {
                        chunk = stream.next() => match chunk {
                            Some(Ok(c)) => lines.push(&c, on_line),
                            Some(Err(_)) | None => {
                                logs_ended = true;
                                tick.await;
                                break;
                            }
                        },
                        _ = &mut tick => break,
                    }
                }
            }
            None => tick.await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ServiceSpec {
        let labels = std::collections::HashMap::from([
            (crate::labels::NAMESPACE.to_string(), "demo".to_string()),
            (crate::labels::SPEC_HASH.to_string(), "abc".to_string()),
        ]);
        ServiceSpec {
            name: Some("demo_web".into()),
            labels: Some(labels.clone()),
            mode: Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated { replicas: Some(3) }),
                ..Default::default()
            }),
            endpoint_spec: Some(EndpointSpec {
                mode: Some(EndpointSpecModeEnum::DNSRR),
                ports: Some(vec![EndpointPortConfig {
                    published_port: Some(8080),
                    target_port: Some(80),
                    ..Default::default()
                }]),
            }),
            update_config: Some(Default::default()),
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some("app@sha256:1".into()),
                    command: Some(vec!["entry".into()]),
                    args: Some(vec!["serve".into()]),
                    env: Some(vec!["A=1".into()]),
                    labels: Some(labels),
                    health_check: Some(HealthConfig {
                        test: Some(vec!["CMD".into(), "true".into()]),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_job_spec_is_the_service_with_the_command_replaced_and_no_ports() {
        let s = job_spec(&base(), "demo_web_run_1", &["migrate".into()], "run");
        assert_eq!(s.name.as_deref(), Some("demo_web_run_1"));
        let job = s.mode.as_ref().unwrap().replicated_job.as_ref().unwrap();
        assert_eq!(
            (job.max_concurrent, job.total_completions),
            (Some(1), Some(1))
        );
        assert!(s.mode.as_ref().unwrap().replicated.is_none());
        assert_eq!(s.endpoint_spec.as_ref().unwrap().ports, None);
        assert!(s.update_config.is_none());
        let labels = s.labels.as_ref().unwrap();
        assert_eq!(
            labels.get(crate::labels::ONEOFF).map(String::as_str),
            Some("run")
        );
        assert!(!labels.contains_key(crate::labels::NAMESPACE));
        let tt = s.task_template.as_ref().unwrap();
        assert_eq!(
            tt.restart_policy.as_ref().unwrap().condition,
            Some(TaskSpecRestartPolicyConditionEnum::NONE)
        );
        let cs = tt.container_spec.as_ref().unwrap();
        assert_eq!(cs.image.as_deref(), Some("app@sha256:1"));
        assert_eq!(cs.command, Some(vec!["entry".to_string()]));
        assert_eq!(cs.args, Some(vec!["migrate".to_string()]));
        assert_eq!(cs.env, Some(vec!["A=1".to_string()]));
        assert_eq!(
            cs.health_check.as_ref().unwrap().test,
            Some(vec!["NONE".to_string()])
        );
        assert!(!cs
            .labels
            .as_ref()
            .unwrap()
            .contains_key(crate::labels::NAMESPACE));
    }

    #[test]
    fn names_fit_in_63_characters_and_keep_the_suffix() {
        assert_eq!(name_for("demo_web", "ab12"), "demo_web_run_ab12");
        let long = "x".repeat(80);
        let n = name_for(&long, "ab12");
        assert_eq!(n.len(), 63);
        assert!(n.ends_with("_run_ab12"));
        assert_ne!(suffix(), "");
    }

    #[test]
    fn lines_are_cut_at_line_breaks_across_chunks() {
        let mut got = Vec::new();
        let mut l = Lines::default();
        let mut f = |s: &str| got.push(s.to_string());
        l.push("one\ntw", &mut f);
        l.push("o\r\nthr", &mut f);
        l.finish(&mut f);
        assert_eq!(got, vec!["one", "two", "thr"]);
    }
}
