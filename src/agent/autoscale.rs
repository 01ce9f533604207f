//! The autoscaling controller: the services' `autoscale:` policies, evaluated in the cluster
//! (what `twip autoscale` did in a loop on an operator's machine; the command stays for
//! `--once` and `--dry-run`). Each round observes every scaled service (its replicas, whether
//! an update runs, its tasks, the metric: CPU from the agent's engine, requests per second
//! from HAProxy's stats pages), decides with the pure policy of [`crate::autoscale`], and acts
//! through a plan under the stack's deploy lock: see [`super::autoscale_round`].
//!
//! The controller keeps nothing in memory: the stabilization window, the last reading of the
//! request counters and the last decision are labels of the scaled service
//! ([`crate::autoscale::state`]), read at the start of every round and written back under the
//! lock, so an agent restarted on another node goes on where the last one stopped.
//!
//! What the agent's service needs for `rps` policies: to be attached to a network of the
//! proxy ([`StatsSource::network`], usually `default`: the stack's `STACK_default` overlay),
//! on which `tasks.STACK_proxy` resolves to every proxy task, and to reach the stats port
//! there ([`StatsSource::port`]: HAProxy's `frontend stats` binds it on every address of the
//! proxy's container, so no published port is needed). For `cpu` policies, nothing more
//! than the Docker socket: the CPU is read from the agent's own engine (the tasks on its
//! node only).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::autoscale_round::{self, EngineProbe, Outcome};
use super::{AgentConfig, AgentContext, Controller, Round};
use crate::autoscale::Policy;
use crate::manifest::model::{Metric, PublishMode};
use crate::manifest::validate::PROXY_SERVICE;
use crate::manifest::Environment;

/// How long a round waits when the config says nothing.
pub const INTERVAL: Duration = Duration::from_secs(15);

/// This controller's part of [`AgentConfig`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoscaleConfig {
    /// The project's name (the label of the releases the controller records).
    #[serde(default)]
    pub project: String,
    /// The policies, by the service's short name (`web`).
    #[serde(default)]
    pub services: BTreeMap<String, ScaledService>,
    /// Where HAProxy's stats pages are (none: the proxy has no stats page).
    #[serde(default)]
    pub stats: Option<StatsSource>,
    /// Time between rounds, in seconds (`agent.autoscale_interval`; default [`INTERVAL`]).
    #[serde(default)]
    pub interval_s: Option<u64>,
}

/// One service's `autoscale:` policy, as the agent reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaledService {
    pub metric: Metric,
    pub target: f64,
    pub min: u64,
    pub max: u64,
    #[serde(default)]
    pub max_step: Option<u64>,
    pub tolerance: f64,
    pub scale_down_window_s: u64,
}

/// HAProxy's stats pages, as seen from inside the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsSource {
    /// The proxy service's full name (`production_proxy`): `tasks.NAME` resolves to the
    /// address of every proxy task on the networks the agent shares with it.
    pub proxy: String,
    /// The stats page's port inside the proxy's container (`proxy.stats.port`, 1936).
    pub port: u16,
    /// The stats page's path (`proxy.stats.uri`, `/`).
    pub uri: String,
    /// A network of the proxy (its short name in the manifest, `default`: the swarm's is
    /// `STACK_default`) that the agent's service must join to reach the stats pages.
    pub network: String,
    /// The proxy publishes its ports in ingress mode (one entry point, every proxy task sees
    /// a share of the requests: their counters are summed either way).
    #[serde(default)]
    pub ingress: bool,
}

impl From<&ScaledService> for Policy {
    fn from(s: &ScaledService) -> Self {
        Policy {
            metric: s.metric,
            target: s.target,
            min: s.min,
            max: s.max,
            max_step: s.max_step,
            tolerance: s.tolerance,
            scale_down_window: Duration::from_secs(s.scale_down_window_s),
        }
    }
}

impl AutoscaleConfig {
    /// This part, made from the environment (empty when the manifest asks nothing of it).
    pub fn for_environment(env: &Environment, _project_dir: &Path) -> anyhow::Result<Self> {
        let services: BTreeMap<String, ScaledService> = env
            .manifest
            .services
            .iter()
            .filter_map(|(name, s)| {
                let p = Policy::from(s.autoscale.as_ref()?);
                Some((
                    name.clone(),
                    ScaledService {
                        metric: p.metric,
                        target: p.target,
                        min: p.min,
                        max: p.max,
                        max_step: p.max_step,
                        tolerance: p.tolerance,
                        scale_down_window_s: p.scale_down_window.as_secs(),
                    },
                ))
            })
            .collect();
        if services.is_empty() {
            return Ok(Self::default());
        }
        let stats = env.manifest.proxy.as_ref().and_then(|p| {
            let st = p.stats.as_ref();
            if st.is_some_and(|s| !s.enabled) {
                return None;
            }
            // The proxy joins the networks of the services it routes to (`default` when
            // they name none): the first of them is the one the agent shares with it.
            let network = p
                .routes
                .iter()
                .filter_map(|r| env.manifest.services.get(&r.service))
                .flat_map(|s| {
                    if s.networks.is_empty() {
                        vec!["default".to_string()]
                    } else {
                        s.networks.clone()
                    }
                })
                .min()
                .unwrap_or_else(|| "default".into());
            Some(StatsSource {
                network,
                proxy: format!("{}_{PROXY_SERVICE}", env.stack()),
                port: st.and_then(|s| s.port).unwrap_or(1936),
                uri: st.and_then(|s| s.uri.clone()).unwrap_or_else(|| "/".into()),
                ingress: p.publish_mode == Some(PublishMode::Ingress),
            })
        });
        let interval_s = env
            .manifest
            .agent
            .as_ref()
            .and_then(|a| a.autoscale_interval.as_ref())
            .map(|d| d.0.as_secs().max(1));
        Ok(AutoscaleConfig {
            project: env.project().to_string(),
            services,
            stats,
            interval_s,
        })
    }

    /// Whether there is nothing for this controller to do.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// Time between rounds.
    pub fn interval(&self) -> Duration {
        self.interval_s
            .filter(|s| *s > 0)
            .map_or(INTERVAL, Duration::from_secs)
    }
}

impl super::ServiceParts for AutoscaleConfig {
    /// An `rps` policy reads every proxy task's stats page at `tasks.STACK_proxy`: the agent
    /// joins the proxy's network (`default` unless the routed services name others).
    fn service_needs(&self) -> super::ServiceNeeds {
        let rps = self.services.values().any(|s| s.metric == Metric::Rps);
        super::ServiceNeeds {
            networks: match &self.stats {
                Some(st) if rps => vec![st.network.clone()],
                _ => Vec::new(),
            },
            ..Default::default()
        }
    }
}

/// The controller, or `None` when its part of the config is empty.
pub fn controller(config: &AgentConfig) -> Option<Box<dyn Controller>> {
    AutoscaleController::new(config).map(|c| Box::new(c) as Box<dyn Controller>)
}

/// The autoscaling controller: see the module's documentation.
pub struct AutoscaleController {
    last: Vec<Outcome>,
}

impl AutoscaleController {
    /// The controller for CONFIG (`None` when no service has a policy). Its metrics come from
    /// the agent's engine and, for `rps`, from every proxy task's stats page in the cluster.
    pub fn new(config: &AgentConfig) -> Option<Self> {
        (!config.autoscale.is_empty()).then(|| AutoscaleController { last: Vec::new() })
    }

    /// What the last round decided and did, per service.
    pub fn last(&self) -> &[Outcome] {
        &self.last
    }
}

#[async_trait]
impl Controller for AutoscaleController {
    fn name(&self) -> &'static str {
        "autoscale"
    }

    async fn tick(&mut self, cx: &AgentContext) -> anyhow::Result<Round> {
        let cfg = &cx.config;
        let p = EngineProbe::new(cx.docker.clone(), cfg.autoscale.stats.clone());
        let outcomes = autoscale_round::round(&cx.docker, cfg, &p).await?;
        let decision = outcomes
            .iter()
            .map(|o| o.summary())
            .collect::<Vec<_>>()
            .join("; ");
        self.last = outcomes;
        Ok(Round {
            decision,
            next: cfg.autoscale.interval(),
            outcome: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::ServiceParts;

    fn policy(metric: Metric) -> ScaledService {
        ScaledService {
            metric,
            target: 40.0,
            min: 1,
            max: 4,
            max_step: None,
            tolerance: 0.1,
            scale_down_window_s: 20,
        }
    }

    #[test]
    fn an_rps_policy_needs_the_proxy_s_network_and_cpu_nothing() {
        let mut cfg = AutoscaleConfig {
            project: "p".into(),
            services: [("web".to_string(), policy(Metric::Cpu))].into(),
            stats: Some(StatsSource {
                proxy: "prod_proxy".into(),
                port: 1936,
                uri: "/".into(),
                network: "front".into(),
                ingress: false,
            }),
            interval_s: None,
        };
        assert!(cfg.service_needs().networks.is_empty());
        cfg.services.insert("api".into(), policy(Metric::Rps));
        assert_eq!(cfg.service_needs().networks, ["front"]);
        assert_eq!(cfg.interval(), INTERVAL);
    }
}
