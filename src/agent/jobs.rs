//! Scheduled jobs (`jobs:` in the manifest), run as swarm jobs at their time.
//!
//! Each round, for each job: runs that ended are recorded (status, exit code, start,
//! duration) and removed; a run past its timeout is removed and recorded as `timed out`; the
//! due slot ([`super::jobs_slots::due`], after the last claimed slot or the template's
//! creation) is claimed through the swarm ([`crate::engine::jobs::claim`]: exactly once, whoever
//! tries) and started, after the concurrency rule (forbid: skip and record `skipped`; replace:
//! remove the active runs; allow). Claims and records beyond the last 20 are removed. All
//! state is in the swarm; a new controller (a restarted agent) carries on where one stopped.
//! Times are UTC. The agent needs only the Docker socket of a manager.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::jobs_slots::{due, next, parse_slot_id, slot_id};
use super::{AgentConfig, AgentContext, Controller, Round};
use crate::engine::api::SwarmApi;
use crate::engine::jobs::{self as ej, Record};
use crate::manifest::model::{parse_schedule, Concurrency};
use crate::manifest::Environment;

/// The longest a round waits (runs are checked for their end and timeout this often).
pub const MAX_WAIT: Duration = Duration::from_secs(10);

/// One job, as the agent needs it (its spec is the deployed template service's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    pub schedule: String,
    pub concurrency: Concurrency,
    pub timeout_secs: u64,
}

/// This controller's part of [`AgentConfig`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsConfig {
    #[serde(default)]
    pub jobs: BTreeMap<String, JobConfig>,
}

impl JobsConfig {
    /// This part, made from the environment (empty when the manifest asks nothing of it).
    pub fn for_environment(env: &Environment, _project_dir: &Path) -> anyhow::Result<Self> {
        let jobs = env
            .manifest
            .jobs
            .iter()
            .map(|(n, j)| {
                let c = JobConfig {
                    schedule: j.schedule.clone(),
                    concurrency: j.concurrency,
                    timeout_secs: j.timeout().as_secs().max(1),
                };
                (n.clone(), c)
            })
            .collect();
        Ok(Self { jobs })
    }

    /// Whether there is nothing for this controller to do.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
}

/// The controller, or `None` when its part of the config is empty.
pub fn controller(config: &AgentConfig) -> Option<Box<dyn Controller>> {
    if config.jobs.is_empty() {
        return None;
    }
    Some(Box::new(JobsController))
}

/// The jobs controller. It holds no state: everything is read from the swarm each round.
pub struct JobsController;

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A record of RUN ending with STATUS at NOW.
fn record_of(run: &ej::Run, status: &str, now: DateTime<Utc>) -> Record {
    let started = parse_time(&run.started).unwrap_or(now);
    Record {
        slot: run.slot.clone(),
        status: status.to_string(),
        exit_code: run.exit_code,
        started: run.started.clone(),
        duration_ms: (now - started).num_milliseconds().max(0) as u64,
    }
}

/// The status of a run that ended.
pub fn ended_status(run: &ej::Run) -> &'static str {
    match run.exit_code {
        Some(0) => "succeeded",
        Some(_) => "failed",
        None => "did not run",
    }
}

/// Claims and starts JOB's run for SLOT (scheduled or `manual-...`). `Ok(None)`: the slot was
/// claimed before (by another agent, or an earlier round).
pub async fn claim_and_start(
    api: &dyn SwarmApi,
    stack: &str,
    job: &str,
    slot: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<String>> {
    if !ej::claim(api, stack, job, slot).await? {
        return Ok(None);
    }
    let spec = ej::run_spec(api, stack, job, slot, &rfc3339(now)).await?;
    Ok(Some(ej::start(api, spec).await?))
}

/// One job's round; returns what it did (empty: nothing) and when its next slot is.
async fn job_round(
    api: &dyn SwarmApi,
    stack: &str,
    name: &str,
    job: &JobConfig,
    now: DateTime<Utc>,
) -> anyhow::Result<(Vec<String>, Option<DateTime<Utc>>)> {
    let cron = parse_schedule(&job.schedule).map_err(anyhow::Error::msg)?;
    let mut did = Vec::new();
    let Some(created) = ej::template_created(api, stack, name).await? else {
        return Ok((vec![format!("{name}: not deployed")], next(&cron, now)));
    };
    let mut active = Vec::new();
    for run in ej::runs(api, stack, name).await? {
        let manual = run.slot.starts_with("manual-");
        let age = parse_time(&run.started).map_or(0, |s| (now - s).num_seconds());
        if run.ended && !manual {
            ej::record(api, stack, name, &record_of(&run, ended_status(&run), now)).await?;
            ej::remove_run(api, &run.name).await?;
            did.push(format!("{name} {}: {}", run.slot, ended_status(&run)));
        } else if !run.ended && age > job.timeout_secs as i64 {
            ej::remove_run(api, &run.name).await?;
            ej::record(api, stack, name, &record_of(&run, "timed out", now)).await?;
            did.push(format!("{name} {}: timed out", run.slot));
        } else if !run.ended {
            active.push(run);
        }
    }
    let (claims, _) = ej::history(api, stack, name).await?;
    let last = claims.iter().filter_map(|(_, s)| parse_slot_id(s)).max();
    let deployed = parse_time(&created).unwrap_or(now);
    let baseline = last.map_or(deployed, |l| l.max(deployed));
    if let Some(slot) = due(&cron, baseline, now) {
        let id = slot_id(slot);
        if job.concurrency == Concurrency::Forbid && !active.is_empty() {
            if ej::claim(api, stack, name, &id).await? {
                let r = Record {
                    slot: id.clone(),
                    status: "skipped".into(),
                    exit_code: None,
                    started: rfc3339(now),
                    duration_ms: 0,
                };
                ej::record(api, stack, name, &r).await?;
                did.push(format!("{name} {id}: skipped (a run is active)"));
            }
        } else if ej::claim(api, stack, name, &id).await? {
            if job.concurrency == Concurrency::Replace {
                for run in &active {
                    ej::remove_run(api, &run.name).await?;
                    ej::record(api, stack, name, &record_of(run, "replaced", now)).await?;
                }
            }
            let spec = ej::run_spec(api, stack, name, &id, &rfc3339(now)).await?;
            ej::start(api, spec).await?;
            did.push(format!("{name} {id}: started"));
        }
    }
    ej::prune(api, stack, name).await?;
    Ok((did, next(&cron, now)))
}

#[async_trait]
impl Controller for JobsController {
    fn name(&self) -> &'static str {
        "jobs"
    }

    async fn tick(&mut self, cx: &AgentContext) -> anyhow::Result<Round> {
        let api: &dyn SwarmApi = &cx.docker;
        let now: DateTime<Utc> = api.now().into();
        let mut did = Vec::new();
        let mut wait = MAX_WAIT;
        for (name, job) in &cx.config.jobs.jobs {
            let (d, next_slot) = job_round(api, &cx.config.stack, name, job, now).await?;
            did.extend(d);
            if let Some(n) = next_slot {
                let until = (n - now).to_std().unwrap_or_default();
                wait = wait.min(until.max(Duration::from_millis(200)));
            }
        }
        let decision = if did.is_empty() {
            "no run due".to_string()
        } else {
            did.join("; ")
        };
        Ok(Round {
            decision,
            next: wait,
            outcome: None,
        })
    }
}
