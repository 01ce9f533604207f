//! Scheduled jobs in the swarm. A job's template is a service of the stack with no tasks
//! (`STACK_JOB`, labelled `io.twip.job`); a run is a one-off service (`replicated-job`, one
//! task, no restart) made from it, labelled with the job, the stack and its slot. A run is
//! claimed before it starts by creating a config `twip-claim-HASH-SLOT`: config creation is
//! atomic in the raft store and a second create of the name is refused, so a slot runs at most
//! once whoever tries. When a run ends (or is skipped, replaced, timed out) a record config
//! `twip-jobrec-HASH-SLOT` keeps its status, exit code, start and duration in its labels.
//! Claims and records carry no stack namespace (no plan sees them); `down` removes them.

use std::collections::HashMap;
use std::time::SystemTime;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::api::{Filters, SwarmApi};
use super::error::{EngineError, ErrorKind};
use super::model::*;
use super::oneoff;
use crate::labels;

/// How many claims and records of a job are kept.
pub const KEEP: usize = 20;

/// One run's end, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Record {
    pub slot: String,
    /// `succeeded`, `failed`, `timed out`, `skipped`, `replaced`, `did not run`.
    pub status: String,
    pub exit_code: Option<i64>,
    /// RFC 3339, UTC.
    pub started: String,
    pub duration_ms: u64,
}

/// A run's service, as observed.
#[derive(Debug, Clone)]
pub struct Run {
    pub name: String,
    pub slot: String,
    pub started: String,
    /// The task ended (completed, failed, rejected, ...).
    pub ended: bool,
    /// `complete`, `failed`, ...
    pub state: String,
    pub exit_code: Option<i64>,
}

fn key(stack: &str, job: &str) -> String {
    let h = Sha256::digest(format!("{stack}\n{job}").as_bytes());
    h.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// The claim config's name of JOB's SLOT.
pub fn claim_name(stack: &str, job: &str, slot: &str) -> String {
    format!("twip-claim-{}-{slot}", key(stack, job))
}

fn record_name(stack: &str, job: &str, slot: &str) -> String {
    format!("twip-jobrec-{}-{slot}", key(stack, job))
}

/// The template service's name.
pub fn template_name(stack: &str, job: &str) -> String {
    format!("{stack}_{job}")
}

fn base_labels(stack: &str, job: &str, slot: &str, kind: &str) -> HashMap<String, String> {
    HashMap::from([
        (labels::JOB.to_string(), job.to_string()),
        (labels::JOB_STACK.to_string(), stack.to_string()),
        (labels::JOB_SLOT.to_string(), slot.to_string()),
        (labels::JOB_KIND.to_string(), kind.to_string()),
        (labels::MANAGED.to_string(), "true".to_string()),
    ])
}

fn filters(stack: &str, job: Option<&str>) -> Filters {
    let mut l = vec![format!("{}={stack}", labels::JOB_STACK)];
    if let Some(j) = job {
        l.push(format!("{}={j}", labels::JOB));
    }
    HashMap::from([("label".to_string(), l)])
}

async fn create(
    api: &dyn SwarmApi,
    name: String,
    l: HashMap<String, String>,
) -> Result<bool, EngineError> {
    let spec = ConfigSpec {
        name: Some(name.clone()),
        labels: Some(l),
        data: Some(base64::engine::general_purpose::STANDARD.encode(name.as_bytes())),
        ..Default::default()
    };
    match api.create_config(spec).await {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.kind, ErrorKind::AlreadyExists | ErrorKind::Conflict) => Ok(false),
        Err(e) => Err(e.during("claim a run of job", &name)),
    }
}

/// Claims JOB's SLOT. `Ok(false)`: someone claimed it before (it ran, or runs, elsewhere).
pub async fn claim(
    api: &dyn SwarmApi,
    stack: &str,
    job: &str,
    slot: &str,
) -> Result<bool, EngineError> {
    create(
        api,
        claim_name(stack, job, slot),
        base_labels(stack, job, slot, "claim"),
    )
    .await
}

/// Records how a run of JOB ended.
pub async fn record(
    api: &dyn SwarmApi,
    stack: &str,
    job: &str,
    r: &Record,
) -> Result<(), EngineError> {
    let mut l = base_labels(stack, job, &r.slot, "record");
    l.insert(labels::JOB_STATUS.into(), r.status.clone());
    l.insert(labels::JOB_STARTED.into(), r.started.clone());
    l.insert(labels::JOB_DURATION_MS.into(), r.duration_ms.to_string());
    if let Some(c) = r.exit_code {
        l.insert(labels::JOB_EXIT.into(), c.to_string());
    }
    create(api, record_name(stack, job, &r.slot), l)
        .await
        .map(|_| ())
}

/// JOB's claimed slots and its records (newest first), with the configs' IDs.
pub async fn history(
    api: &dyn SwarmApi,
    stack: &str,
    job: &str,
) -> Result<(Vec<(String, String)>, Vec<(String, Record)>), EngineError> {
    let mut configs = api.list_configs(Some(&filters(stack, Some(job)))).await?;
    configs.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    let (mut claims, mut records) = (Vec::new(), Vec::new());
    for c in configs {
        let id = c.id.clone().unwrap_or_default();
        let l = c.spec.and_then(|s| s.labels).unwrap_or_default();
        let get = |k: &str| l.get(k).cloned().unwrap_or_default();
        match get(labels::JOB_KIND).as_str() {
            "claim" => claims.push((id, get(labels::JOB_SLOT))),
            "record" => records.push((
                id,
                Record {
                    slot: get(labels::JOB_SLOT),
                    status: get(labels::JOB_STATUS),
                    exit_code: l.get(labels::JOB_EXIT).and_then(|e| e.parse().ok()),
                    started: get(labels::JOB_STARTED),
                    duration_ms: get(labels::JOB_DURATION_MS).parse().unwrap_or(0),
                },
            )),
            _ => {}
        }
    }
    Ok((claims, records))
}

/// Removes JOB's claims and records beyond the newest [`KEEP`] of each.
pub async fn prune(api: &dyn SwarmApi, stack: &str, job: &str) -> Result<usize, EngineError> {
    let (claims, records) = history(api, stack, job).await?;
    let old = claims
        .iter()
        .skip(KEEP)
        .map(|(id, _)| id)
        .chain(records.iter().skip(KEEP).map(|(id, _)| id));
    let mut n = 0;
    for id in old {
        match api.remove_config(id).await {
            Err(e) if e.kind != ErrorKind::NotFound => return Err(e),
            _ => n += 1,
        }
    }
    Ok(n)
}

/// JOB's runs (services), with their task's state.
pub async fn runs(api: &dyn SwarmApi, stack: &str, job: &str) -> Result<Vec<Run>, EngineError> {
    let mut out = Vec::new();
    for s in api.list_services(&filters(stack, Some(job))).await? {
        let spec = s.spec.unwrap_or_default();
        let name = spec.name.clone().unwrap_or_default();
        let l = spec.labels.unwrap_or_default();
        let mut tasks = api.list_tasks(&name).await?;
        tasks.sort_by_key(|t| t.created_at.clone());
        let status = tasks
            .last()
            .and_then(|t| t.status.clone())
            .unwrap_or_default();
        let state = status.state;
        out.push(Run {
            name,
            slot: l.get(labels::JOB_SLOT).cloned().unwrap_or_default(),
            started: l.get(labels::JOB_STARTED).cloned().unwrap_or_default(),
            ended: oneoff::ended(state),
            state: state.map_or_else(|| "pending".into(), |s| s.to_string()),
            exit_code: status
                .container_status
                .and_then(|c| c.exit_code)
                .or((state == Some(TaskState::COMPLETE)).then_some(0)),
        });
    }
    Ok(out)
}

/// The spec of a run of JOB for SLOT, from its template service: the template's command, one
/// task, `TWIP_JOB` and `TWIP_JOB_SLOT` in its environment, labelled with job, stack, slot and
/// start (STARTED, RFC 3339).
pub async fn run_spec(
    api: &dyn SwarmApi,
    stack: &str,
    job: &str,
    slot: &str,
    started: &str,
) -> Result<ServiceSpec, EngineError> {
    let template = api.inspect_service(&template_name(stack, job)).await?;
    let base = template.spec.unwrap_or_default();
    let args = base
        .task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.args.clone())
        .unwrap_or_default();
    let name = oneoff::name_for(&template_name(stack, job), &slot.to_ascii_lowercase());
    let mut spec = oneoff::job_spec(&base, &name, &args, "job");
    let l = spec.labels.get_or_insert_with(Default::default);
    l.remove(labels::SERVICE);
    l.extend(base_labels(stack, job, slot, "run"));
    l.insert(labels::JOB_STARTED.into(), started.to_string());
    if let Some(cs) = spec
        .task_template
        .as_mut()
        .and_then(|t| t.container_spec.as_mut())
    {
        let env = cs.env.get_or_insert_with(Vec::new);
        env.push(format!("TWIP_JOB={job}"));
        env.push(format!("TWIP_JOB_SLOT={slot}"));
    }
    Ok(spec)
}

/// Starts a run (a spec from [`run_spec`]); returns its service's name.
pub async fn start(api: &dyn SwarmApi, spec: ServiceSpec) -> Result<String, EngineError> {
    let name = spec.name.clone().unwrap_or_default();
    api.create_service(spec).await?;
    Ok(name)
}

/// Removes a run's service (gone already is fine).
pub async fn remove_run(api: &dyn SwarmApi, name: &str) -> Result<(), EngineError> {
    match api.remove_service(name).await {
        Err(e) if e.kind != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// When the template service of JOB was made (`None`: not deployed).
pub async fn template_created(
    api: &dyn SwarmApi,
    stack: &str,
    job: &str,
) -> Result<Option<String>, EngineError> {
    match api.inspect_service(&template_name(stack, job)).await {
        Ok(s) => Ok(Some(s.created_at.unwrap_or_default())),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes every run, claim and record of STACK's jobs (`twip down`). Returns how many.
pub async fn remove_all(api: &dyn SwarmApi, stack: &str) -> Result<usize, EngineError> {
    let mut n = 0;
    for s in api.list_services(&filters(stack, None)).await? {
        if let Some(name) = s.spec.and_then(|s| s.name) {
            remove_run(api, &name).await?;
            n += 1;
        }
    }
    for c in api.list_configs(Some(&filters(stack, None))).await? {
        match api.remove_config(&c.id.unwrap_or_default()).await {
            Err(e) if e.kind != ErrorKind::NotFound => return Err(e),
            _ => n += 1,
        }
    }
    Ok(n)
}

/// The engine's clock as UTC seconds (for records' starts and durations).
pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}
