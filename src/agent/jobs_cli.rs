//! What `twip jobs` shows and how `twip jobs run` starts a run by hand: the same claim and
//! run path as the controller, with the slot `manual-<time>`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::jobs::{claim_and_start, JobConfig};
use super::jobs_slots::next;
use crate::engine::api::SwarmApi;
use crate::engine::jobs::{self as ej, Record};
use crate::engine::oneoff;
use crate::manifest::model::parse_schedule;

/// One job as `twip jobs` lists it.
#[derive(Debug, Serialize)]
pub struct JobView {
    pub name: String,
    pub schedule: String,
    pub concurrency: String,
    /// RFC 3339, UTC.
    pub next_run: Option<String>,
    pub deployed: bool,
    /// The last runs, newest first.
    pub last_runs: Vec<Record>,
}

impl JobView {
    /// One line for `twip status`: the job, its schedule, next run and last run.
    pub fn status_line(&self) -> String {
        let last = match self.last_runs.first() {
            Some(r) => format!(
                "last {} {}{}",
                r.started,
                r.status,
                r.exit_code
                    .map_or(String::new(), |c| format!(" (exit {c})"))
            ),
            None => "no run yet".into(),
        };
        format!(
            "job {}  {:?} UTC  next {}  {last}{}",
            self.name,
            self.schedule,
            self.next_run.as_deref().unwrap_or("-"),
            if self.deployed {
                ""
            } else {
                "  (not deployed)"
            }
        )
    }
}

/// Each job of the config with its schedule, next run and last runs.
pub async fn list(
    api: &dyn SwarmApi,
    stack: &str,
    jobs: &std::collections::BTreeMap<String, JobConfig>,
) -> anyhow::Result<Vec<JobView>> {
    let now: DateTime<Utc> = api.now().into();
    let mut out = Vec::new();
    for (name, j) in jobs {
        let cron = parse_schedule(&j.schedule).map_err(anyhow::Error::msg)?;
        let (_, records) = ej::history(api, stack, name).await?;
        let mut last_runs: Vec<Record> = records.into_iter().map(|(_, r)| r).collect();
        last_runs.sort_by(|a, b| b.started.cmp(&a.started));
        out.push(JobView {
            name: name.clone(),
            schedule: j.schedule.clone(),
            concurrency: j.concurrency.name().into(),
            next_run: next(&cron, now)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            deployed: ej::template_created(api, stack, name).await?.is_some(),
            last_runs,
        });
    }
    Ok(out)
}

/// Runs JOB now: claims `manual-<time>`, starts the run, hands its lines to ON_LINE until it
/// ends (or TIMEOUT: removed, recorded `timed out`, exit 3), records it and removes it.
/// Returns the run's exit code.
pub async fn run_now(
    api: &dyn SwarmApi,
    stack: &str,
    job: &str,
    timeout: Duration,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> anyhow::Result<Option<i64>> {
    let now: DateTime<Utc> = api.now().into();
    let slot = format!(
        "manual-{}{:03}",
        now.format("%Y%m%dT%H%M%S"),
        now.timestamp_subsec_millis()
    );
    let name = claim_and_start(api, stack, job, &slot, now)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the run {slot} of {job} was claimed already"))?;
    let result = oneoff::follow(api, &name, timeout, on_line).await;
    let end: DateTime<Utc> = api.now().into();
    let record = Record {
        slot,
        status: match &result {
            Ok(o) if o.exit_code == Some(0) => "succeeded".into(),
            Ok(o) if o.exit_code.is_some() => "failed".into(),
            Ok(_) => "did not run".into(),
            Err(_) => "timed out".into(),
        },
        exit_code: result.as_ref().ok().and_then(|o| o.exit_code),
        started: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        duration_ms: (end - now).num_milliseconds().max(0) as u64,
    };
    ej::remove_run(api, &name).await?;
    ej::record(api, stack, job, &record).await?;
    ej::prune(api, stack, job).await?;
    Ok(result?.exit_code)
}
