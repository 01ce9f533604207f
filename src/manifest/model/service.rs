//! A service of the stack and its settings: health, resources, placement, rolling updates,
//! restarts and autoscaling.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Cpus, Duration, EnvMap, FileRef, Mount, Port, ScalarString, Size, StringOrList};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Replicated,
    Global,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EndpointMode {
    Dnsrr,
    Vip,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// An `images` entry by name, or a full reference (`nginx:1.25`).
    pub image: String,
    #[serde(default)]
    pub mode: Mode,
    /// Number of tasks (replicated mode; default 1).
    #[serde(default)]
    pub replicas: Option<u64>,
    #[serde(default)]
    pub command: Option<StringOrList>,
    #[serde(default)]
    pub entrypoint: Option<StringOrList>,
    #[serde(default)]
    pub environment: EnvMap,
    /// Files of NAME=value lines, relative to the project directory.
    #[serde(default)]
    pub env_file: Option<StringOrList>,
    #[serde(default)]
    pub ports: Vec<Port>,
    #[serde(default)]
    pub volumes: Vec<Mount>,
    /// Networks (default: the stack's `default` network).
    #[serde(default)]
    pub networks: Vec<String>,
    #[serde(default)]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default)]
    pub resources: Option<Resources>,
    #[serde(default)]
    pub placement: Option<Placement>,
    /// Rolling update settings (default: start-first, one at a time, rollback on failure).
    #[serde(default)]
    pub update: Option<UpdateConfig>,
    #[serde(default)]
    pub rollback: Option<UpdateConfig>,
    #[serde(default)]
    pub restart: Option<RestartPolicy>,
    /// Service labels.
    #[serde(default)]
    pub labels: BTreeMap<String, ScalarString>,
    #[serde(default)]
    pub secrets: Vec<FileRef>,
    #[serde(default)]
    pub configs: Vec<FileRef>,
    /// Time between SIGTERM and SIGKILL (covers the app's lame-duck time; default 10s).
    #[serde(default)]
    pub stop_grace_period: Option<Duration>,
    /// `dnsrr` (default: works without IPVS and behind the proxy) or `vip`.
    #[serde(default)]
    pub endpoint_mode: Option<EndpointMode>,
    /// May use Swarm placeholders: `web-{{.Task.Slot}}`.
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub autoscale: Option<Autoscale>,
    /// Release tasks: commands run once each, in a one-off task made from this service's new
    /// spec (new image, new configs and secrets), before `up` changes any service of the
    /// stack; a failure stops the deploy with every service unchanged. One command as a list
    /// of words (`[python3, manage.py, migrate]`), or several as a list of such lists. Run only
    /// when the deploy creates or updates this service.
    #[serde(default)]
    #[schemars(schema_with = "release_tasks_schema")]
    pub before_deploy: Vec<StringOrList>,
    /// Services `up` creates or updates before this one, and what it waits for between them:
    /// `[db]` (started), or `{db: {condition: healthy}}` (`started`, `healthy`, `completed`).
    #[serde(default)]
    pub depends_on: DependsOn,
}

/// What a dependency must reach before its dependents are created or updated.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Condition {
    /// Its tasks run.
    #[default]
    Started,
    /// Its tasks run and their health check passes.
    Healthy,
    /// Its tasks ran to the end and exited 0 (a service with `restart.condition` `none` or
    /// `on-failure`).
    Completed,
}

impl Condition {
    pub fn name(self) -> &'static str {
        match self {
            Condition::Started => "started",
            Condition::Healthy => "healthy",
            Condition::Completed => "completed",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    #[serde(default)]
    pub condition: Condition,
}

/// `depends_on`: service name → condition (the list form means `started` for each).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DependsOn(pub BTreeMap<String, Condition>);

impl<'de> Deserialize<'de> for DependsOn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = DependsOn;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of service names, or a mapping of service names to {condition: started|healthy|completed}")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<DependsOn, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(s) = a.next_element::<ScalarString>()? {
                    out.insert(s.0, Condition::Started);
                }
                Ok(DependsOn(out))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<DependsOn, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = a.next_entry::<ScalarString, Option<Dependency>>()? {
                    out.insert(k.0, v.unwrap_or_default().condition);
                }
                Ok(DependsOn(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for DependsOn {
    fn schema_name() -> String {
        "DependsOn".into()
    }
    fn json_schema(_: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
        let condition = serde_json::json!({"enum": ["started", "healthy", "completed"]});
        serde_json::from_value(serde_json::json!({
            "anyOf": [
                {"type": "array", "items": {"type": "string"}},
                {"type": "object", "additionalProperties": {
                    "anyOf": [{"type": "null"}, {"type": "object", "additionalProperties": false,
                        "properties": {"condition": condition}}]
                }}
            ]
        }))
        .expect("a valid schema")
    }
}

impl Service {
    /// The `before_deploy` commands, each an argv: a list of words is one command, a list of
    /// lists several. `Err` for a list that mixes both (validation reports it).
    pub fn release_tasks(&self) -> Result<Vec<Vec<String>>, &'static str> {
        let lists = self
            .before_deploy
            .iter()
            .filter(|c| matches!(c, StringOrList::List(_)))
            .count();
        if lists == 0 {
            let words: Vec<String> = self.before_deploy.iter().flat_map(|c| c.to_vec()).collect();
            return Ok(if words.is_empty() {
                Vec::new()
            } else {
                vec![words]
            });
        }
        if lists != self.before_deploy.len() {
            return Err("mixes words and lists: write one command as a list of words (`[python3, manage.py, migrate]`) or several commands as a list of lists");
        }
        Ok(self
            .before_deploy
            .iter()
            .map(StringOrList::to_vec)
            .collect())
    }
}

fn release_tasks_schema(_: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
    let words = serde_json::json!({"type": "array", "items": {"type": "string"}, "minItems": 1});
    serde_json::from_value(serde_json::json!({
        "description": "One command as a list of words, or several as a list of lists.",
        "anyOf": [words.clone(), {"type": "array", "items": words}]
    }))
    .expect("a valid schema")
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    /// `["CMD", "curl", "-f", "http://localhost/healthz"]`, or a string run by the shell.
    #[serde(default)]
    pub test: Option<StringOrList>,
    #[serde(default)]
    pub interval: Option<Duration>,
    #[serde(default)]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub retries: Option<u64>,
    #[serde(default)]
    pub start_period: Option<Duration>,
    #[serde(default)]
    pub disable: bool,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default)]
    pub limits: Option<ResourceSpec>,
    #[serde(default)]
    pub reservations: Option<ResourceSpec>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    #[serde(default)]
    pub cpus: Option<Cpus>,
    #[serde(default)]
    pub memory: Option<Size>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// e.g. `node.role == worker`, `node.labels.tier == front`.
    #[serde(default)]
    pub constraints: Vec<String>,
    /// Spread over the values of these node labels (e.g. `node.labels.zone`).
    #[serde(default)]
    pub spread: Vec<String>,
    #[serde(default)]
    pub max_replicas_per_node: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Order {
    StartFirst,
    StopFirst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FailureAction {
    Rollback,
    Pause,
    Continue,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConfig {
    /// Tasks updated at once (0: all at once).
    #[serde(default)]
    pub parallelism: Option<u64>,
    #[serde(default)]
    pub delay: Option<Duration>,
    #[serde(default)]
    pub order: Option<Order>,
    #[serde(default)]
    pub failure_action: Option<FailureAction>,
    /// How long each new task is watched for failure.
    #[serde(default)]
    pub monitor: Option<Duration>,
    #[serde(default)]
    pub max_failure_ratio: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RestartCondition {
    None,
    OnFailure,
    Any,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartPolicy {
    #[serde(default)]
    pub condition: Option<RestartCondition>,
    #[serde(default)]
    pub delay: Option<Duration>,
    #[serde(default)]
    pub max_attempts: Option<u64>,
    #[serde(default)]
    pub window: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// CPU use of the service's tasks, in percent of their reservation (or of one core).
    Cpu,
    /// Requests per second per task, from HAProxy's stats.
    Rps,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Autoscale {
    pub metric: Metric,
    /// Target per task: CPU percent, or requests per second.
    pub target: f64,
    pub min: u64,
    pub max: u64,
    /// Largest change in one decision (default: no limit).
    #[serde(default)]
    pub max_step: Option<u64>,
    /// Relative band around the target where nothing changes (default 0.1).
    #[serde(default)]
    pub tolerance: Option<f64>,
    /// Scale-downs use the highest recommendation of this window (default 300s).
    #[serde(default)]
    pub scale_down_window: Option<Duration>,
}
