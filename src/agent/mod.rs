//! The in-cluster agent (`twip agent`): the same binary, run as a swarm service of the
//! environment (one replica, on managers, with the Docker socket), so that what must run all
//! the time does not depend on an operator's laptop. It runs controllers, each a loop that
//! observes the swarm, decides (pure, tested without a daemon) and acts through the engine:
//! certificates (obtain and renew), autoscaling, scheduled jobs.
//!
//! The agent keeps no state on a node's disk: what must survive a restart or a reschedule
//! (a job's claimed run, a controller's stabilisation window, its last decision) is kept in
//! the swarm (labels, configs). What it is told to do comes from [`AgentConfig`], rendered by
//! `twip up` from the manifest and mounted as a swarm config at [`CONFIG_PATH`] (its name
//! rotates with its content, so a changed manifest restarts the agent with the new one).
//!
//! Each controller lives in its own module and owns its part of [`AgentConfig`]: a config
//! type made from the environment (`for_environment`), which is empty when the manifest asks
//! nothing of it, and a `controller` constructor that returns `None` for an empty part.
//! [`controllers`] is the one list of them.
//!
//! Where the rest is: [`runner`] is the loop `twip agent` runs (each controller's round when
//! it is due or asked for, backoff on errors, one log line and one record per round); the
//! records are configs of the stack (`engine::records`), shown by `twip status`; requests
//! (`engine::requests`, written by `twip certs renew`) ask a controller for a round now; the agent's service is
//! built in `render::context::agent` ([`for_stack`] decides whether the stack has one), where
//! a controller adds what it needs of it (networks, secrets, ports) through [`ServiceParts`];
//! its image is built from the running binary by `lifecycle::agent_image`.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::engine::Docker;
use crate::manifest::Environment;

pub mod autoscale;
pub mod autoscale_round;
pub mod certs;
pub mod certs_acme;
pub mod certs_cli;
pub mod hot_swap;
pub mod jobs;
pub mod jobs_cli;
pub mod jobs_slots;
pub mod runner;

pub use crate::render::context::agent::{PortNeed, SecretNeed, ServiceNeeds};

/// Where the agent's config is mounted in its container.
pub const CONFIG_PATH: &str = "/run/twip/agent.json";

/// What the agent is told to do, as JSON: written by `twip up`, read by `twip agent`. Each
/// controller owns its own part; a part that is empty turns its controller off.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The environment's name (`production`).
    pub env: String,
    /// The swarm stack (`production`): every object the agent touches is this stack's.
    pub stack: String,
    /// Scheduled jobs (`jobs:`).
    #[serde(default)]
    pub jobs: jobs::JobsConfig,
    /// The services with an `autoscale:` policy.
    #[serde(default)]
    pub autoscale: autoscale::AutoscaleConfig,
    /// Certificates obtained with ACME (`proxy.tls.acme`).
    #[serde(default)]
    pub certs: certs::CertsConfig,
    /// Certificates put into the running proxies without a restart.
    #[serde(default)]
    pub hot_swap: hot_swap::HotSwapConfig,
}

impl AgentConfig {
    /// The agent's config for an environment: each controller's part, made from the manifest.
    pub fn for_environment(env: &Environment, project_dir: &Path) -> anyhow::Result<AgentConfig> {
        Ok(AgentConfig {
            env: env.name.clone(),
            stack: env.stack().to_string(),
            jobs: jobs::JobsConfig::for_environment(env, project_dir)?,
            autoscale: autoscale::AutoscaleConfig::for_environment(env, project_dir)?,
            certs: certs::CertsConfig::for_environment(env, project_dir)?,
            hot_swap: hot_swap::HotSwapConfig::for_environment(env, project_dir)?,
        })
    }

    /// What the controllers need of the agent's service (networks, secrets, ports), every
    /// part's [`ServiceParts::service_needs`] merged, in the order of [`controllers`].
    pub fn service_needs(&self) -> ServiceNeeds {
        let mut needs = ServiceNeeds::default();
        needs.merge(self.certs.service_needs());
        needs.merge(self.hot_swap.service_needs());
        needs.merge(self.autoscale.service_needs());
        needs.merge(self.jobs.service_needs());
        needs
    }

    /// Whether any controller has work: an environment that needs none runs no agent.
    pub fn needs_agent(&self) -> bool {
        !(self.jobs.is_empty()
            && self.autoscale.is_empty()
            && self.certs.is_empty()
            && self.hot_swap.is_empty())
    }
}

/// The agent's config when the environment runs an agent: `agent.enabled` in the manifest
/// decides when it is set (`true` runs it with nothing to do, `false` never), else whether a
/// controller has work ([`AgentConfig::needs_agent`]).
pub fn for_stack(env: &Environment, project_dir: &Path) -> anyhow::Result<Option<AgentConfig>> {
    let config = AgentConfig::for_environment(env, project_dir)?;
    let enabled = env.manifest.agent.as_ref().and_then(|a| a.enabled);
    Ok(enabled
        .unwrap_or_else(|| config.needs_agent())
        .then_some(config))
}

/// A controller's say in the agent's service: what its part of the config needs beyond the
/// socket and the config (see `render::context::agent`, the extension point). The default
/// needs nothing. To contribute, implement it in the controller's own file and remove its
/// empty `impl` below.
pub trait ServiceParts {
    /// The networks, secrets, ports and environment this part needs (pure: from the config).
    fn service_needs(&self) -> ServiceNeeds {
        ServiceNeeds::default()
    }
}

impl ServiceParts for jobs::JobsConfig {}

/// The controllers this config turns on, in the order their rounds are first run.
pub fn controllers(config: &AgentConfig) -> Vec<Box<dyn Controller>> {
    [
        certs::controller(config),
        hot_swap::controller(config),
        autoscale::controller(config),
        jobs::controller(config),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// What a controller works with: the local engine (a manager's, through the socket) and its
/// config.
pub struct AgentContext {
    pub docker: Docker,
    pub config: AgentConfig,
}

/// One controller's round: observe, decide, act. Errors are reported and the round is tried
/// again at the next interval (a controller backs off by returning a longer `next`).
#[async_trait]
pub trait Controller: Send {
    /// A short name (`certificates`, `autoscale`, `jobs`), shown by `twip status`.
    fn name(&self) -> &'static str;
    /// One round. Returns what it decided, one line for `twip status`, and when to run next.
    async fn tick(&mut self, cx: &AgentContext) -> anyhow::Result<Round>;
    /// Takes a request (`twip certs renew` asking the running agent): the runner runs the
    /// next round now and records it with the request's id. The default takes none; the
    /// error is the answer recorded.
    fn request(&mut self, r: &crate::engine::requests::Request) -> Result<(), String> {
        let _ = r;
        Err(format!("the {} controller takes no requests", self.name()))
    }
}

/// What a controller's round decided, and when it wants to run again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round {
    /// One line, for `twip status` and the agent's log (never a secret).
    pub decision: String,
    /// How long until the next round.
    pub next: Duration,
    /// What the round came to, in a word a command can rely on (the certificates controller:
    /// `renewed`, `not-due`, `failed`), recorded with the decision; `None` where the line says
    /// all.
    pub outcome: Option<&'static str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(yaml: &str) -> (tempfile::TempDir, Environment) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("environments")).unwrap();
        std::fs::write(dir.path().join("environments/x.yaml"), yaml).unwrap();
        let env = crate::project::Project::discover(Some(dir.path()))
            .unwrap()
            .load("x")
            .unwrap_or_else(|e| panic!("{e:#}\n{yaml}"));
        (dir, env)
    }

    /// Validation keeps the name `agent` free exactly when the agent runs: both decide it.
    #[test]
    fn validation_and_the_agent_agree_on_when_the_agent_runs() {
        let web = "services:\n  web:\n    image: nginx:1.25\n";
        let job = "jobs:\n  report:\n    schedule: \"0 * * * *\"\n    image: nginx:1.25\n";
        let scale = "    autoscale: {metric: cpu, target: 60, min: 1, max: 3}\n";
        let acme = "proxy:\n  image: haproxy:2.6\n  routes:\n    - {path: /, service: web, port: 80}\n  tls:\n    acme: {email: ops@example.com, domains: [a.example.com]}\n";
        let cases = [
            (web.to_string(), false),
            (format!("{web}{job}"), true),
            (format!("{web}{scale}"), true),
            (format!("{web}{acme}"), true),
            (format!("{web}agent: {{enabled: true}}\n"), true),
            (format!("{web}{job}agent: {{enabled: false}}\n"), false),
        ];
        for (yaml, runs) in cases {
            let (dir, env) = env(&yaml);
            let agent = for_stack(&env, dir.path()).unwrap().is_some();
            let valid = crate::manifest::validate::agent_runs(&env.manifest);
            assert_eq!((agent, valid), (runs, runs), "{yaml}");
        }
    }
}
