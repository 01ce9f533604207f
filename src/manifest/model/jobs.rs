//! Scheduled jobs (`jobs:`): a command run as a swarm job (`replicated-job`) at the times of a
//! cron expression, with a service's image, environment, networks, secrets, configs, mounts
//! and resources. The in-cluster agent starts the runs; `twip jobs run` starts one by hand.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    Duration, EnvMap, FileRef, Mode, Mount, Placement, Resources, RestartCondition, RestartPolicy,
    ScalarString, Service, StringOrList,
};

/// What a run does when the job's previous run is still going at the next time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Concurrency {
    /// The new run is skipped (and recorded as skipped).
    #[default]
    Forbid,
    /// The running one is removed and the new one started.
    Replace,
    /// Both run.
    Allow,
}

impl Concurrency {
    pub fn name(self) -> &'static str {
        match self {
            Concurrency::Forbid => "forbid",
            Concurrency::Replace => "replace",
            Concurrency::Allow => "allow",
        }
    }
}

/// A scheduled job: `jobs: NAME: {schedule, image, command, ...}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// When it runs, in UTC: a cron expression of 5 fields (`minute hour day-of-month month
    /// day-of-week`, e.g. `*/15 * * * *`) or 6 with seconds first (`0 */5 * * * *`).
    pub schedule: String,
    /// `forbid` (default: skip a time while a run is active), `replace` (remove the active
    /// run, start the new one) or `allow` (run both).
    #[serde(default)]
    pub concurrency: Concurrency,
    /// How long a run may take before it is removed and recorded as timed out (default 1h).
    #[serde(default)]
    pub timeout: Option<Duration>,
    /// An `images` entry by name, or a full reference (`busybox:1.36`).
    pub image: String,
    #[serde(default)]
    pub command: Option<StringOrList>,
    #[serde(default)]
    pub entrypoint: Option<StringOrList>,
    #[serde(default)]
    pub environment: EnvMap,
    #[serde(default)]
    pub volumes: Vec<Mount>,
    /// Networks (default: the stack's `default` network).
    #[serde(default)]
    pub networks: Vec<String>,
    #[serde(default)]
    pub resources: Option<Resources>,
    #[serde(default)]
    pub placement: Option<Placement>,
    /// Labels of the job's service.
    #[serde(default)]
    pub labels: BTreeMap<String, ScalarString>,
    #[serde(default)]
    pub secrets: Vec<FileRef>,
    #[serde(default)]
    pub configs: Vec<FileRef>,
    /// Time between SIGTERM and SIGKILL when a run is removed (default 10s).
    #[serde(default)]
    pub stop_grace_period: Option<Duration>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub working_dir: Option<String>,
}

/// A run's timeout when the manifest gives none.
pub const DEFAULT_JOB_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

impl Job {
    /// The job as a service of no tasks: the template its runs are made from (deployed with
    /// the stack, so its image is pinned and its configs, secrets and networks exist).
    pub fn service(&self) -> Service {
        Service {
            image: self.image.clone(),
            mode: Mode::Replicated,
            replicas: Some(0),
            command: self.command.clone(),
            entrypoint: self.entrypoint.clone(),
            environment: self.environment.clone(),
            env_file: None,
            ports: Vec::new(),
            volumes: self.volumes.clone(),
            networks: self.networks.clone(),
            healthcheck: None,
            resources: self.resources.clone(),
            placement: self.placement.clone(),
            update: None,
            rollback: None,
            restart: Some(RestartPolicy {
                condition: Some(RestartCondition::None),
                delay: None,
                max_attempts: None,
                window: None,
            }),
            labels: self.labels.clone(),
            secrets: self.secrets.clone(),
            configs: self.configs.clone(),
            stop_grace_period: self.stop_grace_period,
            endpoint_mode: None,
            hostname: None,
            user: self.user.clone(),
            working_dir: self.working_dir.clone(),
            autoscale: None,
            before_deploy: Vec::new(),
            depends_on: Default::default(),
        }
    }

    pub fn timeout(&self) -> std::time::Duration {
        self.timeout.map_or(DEFAULT_JOB_TIMEOUT, |d| d.0)
    }
}

/// A job's schedule, parsed: 5 fields, or 6 with seconds first; times are UTC. The error
/// says what is wrong, for the manifest's problem at the `schedule` key.
pub fn parse_schedule(text: &str) -> Result<croner::Cron, String> {
    let fields = text.split_whitespace().count();
    if !(5..=6).contains(&fields) {
        return Err(format!(
            "`{text}` is not a cron expression: it has {fields} fields, a schedule has 5 \
             (minute hour day-of-month month day-of-week) or 6 (seconds first)"
        ));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(text)
        .map_err(|e| format!("`{text}` is not a valid cron expression: {e}"))
}
