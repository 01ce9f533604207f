//! One round of the autoscaling controller ([`super::autoscale`]): observe every scaled service
//! through the engine seam and a [`Probe`], decide with the pure policy, and act under the
//! stack's deploy lock, taken without waiting: a rescale goes through a plan (observe,
//! reconcile with the new count, execute, wait, record a release), then each service's state
//! is written back to its labels. When an operator holds the lock the round changes nothing,
//! keeps nothing, and says who holds it.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;

use super::AgentConfig;
use crate::autoscale::state::{self, State, LABEL_PREFIX};
use crate::autoscale::{Decision, Policy};
use crate::engine::events::Discard;
use crate::engine::model::{ServiceUpdateStatusStateEnum, TaskState};
use crate::engine::releases::{self, Release, Step};
use crate::engine::{self, Docker, SwarmApi};
use crate::labels;
use crate::lifecycle::lock::{self, Operation};
use crate::manifest::model::Metric;
use crate::plan::{self, Desired, Observed, Op, Options, Plan};

/// Where a round reads the metrics the engine seam does not give.
#[async_trait]
pub trait Probe: Send + Sync {
    /// The CPU each running task of FULL uses, in percent of what it reserves (or of a core).
    async fn cpu(&self, full: &str) -> anyhow::Result<f64>;
    /// HAProxy's `req_tot` of BACKEND (a service's short name), per stats page.
    async fn requests(&self, backend: &str) -> anyhow::Result<BTreeMap<String, u64>>;
}

/// The metrics as the agent reads them in the cluster: CPU from its own engine (the tasks on
/// its node), request counters from every proxy task's stats page (`tasks.STACK_proxy`).
pub struct EngineProbe {
    docker: Docker,
    stats: Option<super::autoscale::StatsSource>,
}

impl EngineProbe {
    pub fn new(docker: Docker, stats: Option<super::autoscale::StatsSource>) -> Self {
        EngineProbe { docker, stats }
    }
}

#[async_trait]
impl Probe for EngineProbe {
    async fn cpu(&self, full: &str) -> anyhow::Result<f64> {
        engine::stats::cpu_per_task_on(std::slice::from_ref(&self.docker), full).await
    }

    async fn requests(&self, backend: &str) -> anyhow::Result<BTreeMap<String, u64>> {
        let Some(s) = &self.stats else {
            anyhow::bail!("an rps policy needs the proxy's stats page (proxy.stats)");
        };
        let addrs = tokio::net::lookup_host((format!("tasks.{}", s.proxy), s.port))
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "tasks.{} does not resolve ({e}): the agent must share a network with the proxy",
                    s.proxy
                )
            })?;
        let urls: Vec<String> = addrs.map(|a| format!("http://{a}{};csv", s.uri)).collect();
        read_totals(&urls, backend).await
    }
}

/// `req_tot` of BACKEND on every page of URLS, read concurrently.
pub async fn read_totals(urls: &[String], backend: &str) -> anyhow::Result<BTreeMap<String, u64>> {
    if urls.is_empty() {
        anyhow::bail!("no proxy task runs: no stats page to read");
    }
    let reads = urls.iter().map(|url| async move {
        let reply = crate::http::get(url, Duration::from_secs(5)).await?;
        let text = String::from_utf8_lossy(&reply.body);
        let total =
            crate::lifecycle::autoscale::parse_req_tot(&text, backend).ok_or_else(|| {
                anyhow::anyhow!("HAProxy's stats at {url} have no backend `{backend}`")
            })?;
        anyhow::Ok((url.clone(), total))
    });
    futures_util::future::join_all(reads)
        .await
        .into_iter()
        .collect()
}

/// What a round did with a service's decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Acted {
    /// Nothing to change; the state was kept.
    Kept,
    /// Rescaled through a plan, recorded as release N (`None`: the record failed).
    Scaled(Option<u64>),
    /// An operator holds the stack's lock: nothing changed, nothing kept.
    Locked(String),
    /// The service could not be observed or the rescale failed.
    Failed(String),
}

/// One service's round.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The short name (`web`).
    pub service: String,
    /// The decision (none when the service could not be observed).
    pub decision: Option<Decision>,
    pub acted: Acted,
    /// The decision as one line.
    pub line: String,
}

impl Outcome {
    /// One line for `twip status` and the agent's log.
    pub fn summary(&self) -> String {
        match &self.acted {
            Acted::Kept => self.line.clone(),
            Acted::Scaled(Some(n)) => format!("{} [release {n}]", self.line),
            Acted::Scaled(None) => format!("{} [not recorded]", self.line),
            Acted::Locked(who) => format!("{}: skipped this round, {who}", self.service),
            Acted::Failed(e) => format!("{}: {e}", self.service),
        }
    }
}

/// What the round observed and decided for one service, before acting.
struct Decided {
    short: String,
    full: String,
    policy: Policy,
    state: State,
    decision: Decision,
}

/// How long a rescale waits for the service to converge.
pub const TIMEOUT: Duration = Duration::from_secs(300);

/// The agent's operation, as the lock and the release records name it.
fn operation() -> Operation {
    Operation {
        command: "autoscale (agent)".into(),
        user: "twip-agent".into(),
        reason: String::new(),
        hooks: false,
        ..Operation::here("autoscale")
    }
}

/// One round: see the module's documentation. Errors of one service are its outcome; an
/// error of the lock or of the engine as a whole is the round's.
pub async fn round(
    api: &dyn SwarmApi,
    cfg: &AgentConfig,
    probe: &dyn Probe,
) -> anyhow::Result<Vec<Outcome>> {
    let stack = cfg.stack.as_str();
    let now = api.now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut out = Vec::new();
    let mut decided = Vec::new();
    for (short, svc) in &cfg.autoscale.services {
        let full = format!("{stack}_{short}");
        match decide(api, &full, short, Policy::from(svc), probe, now).await {
            Ok(d) => decided.push(d),
            Err(e) => out.push(Outcome {
                service: short.clone(),
                decision: None,
                acted: Acted::Failed(format!("{e:#}")),
                line: String::new(),
            }),
        }
    }
    if decided.is_empty() {
        return Ok(out);
    }
    let op = operation();
    let held = match lock::try_acquire(api, stack, &op, lock::ttl_for(TIMEOUT)).await? {
        Ok(held) => held,
        Err(holder) => {
            let who = lock::describe(&holder);
            out.extend(decided.into_iter().map(|d| Outcome {
                line: state::line(&d.short, &d.policy, &d.decision),
                service: d.short,
                decision: Some(d.decision),
                acted: Acted::Locked(who.clone()),
            }));
            return Ok(out);
        }
    };
    for d in decided {
        let line = state::line(&d.short, &d.policy, &d.decision);
        let mut acted = Acted::Kept;
        if d.decision.changes() {
            acted = match rescale(api, cfg, &op, &d.full, d.decision.desired).await {
                Ok(seq) => Acted::Scaled(seq),
                Err(e) => Acted::Failed(format!(
                    "scaling to {} did not converge: {e:#}",
                    d.decision.desired
                )),
            };
        }
        let mut st = d.state;
        st.decision = Some(line.clone());
        if let Err(e) = keep_state(api, &d.full, &st).await {
            if acted == Acted::Kept {
                acted = Acted::Failed(format!("could not keep the state: {e:#}"));
            }
        }
        out.push(Outcome {
            service: d.short,
            decision: Some(d.decision),
            acted,
            line,
        });
    }
    lock::release(api, &held).await?;
    Ok(out)
}

/// Observes FULL and decides: its replicas, whether an update runs, its running tasks, the
/// metric (the rate from the kept counters for `rps`), the kept window.
async fn decide(
    api: &dyn SwarmApi,
    full: &str,
    short: &str,
    policy: Policy,
    probe: &dyn Probe,
    now: Duration,
) -> anyhow::Result<Decided> {
    let svc = api.inspect_service(full).await?;
    let spec = svc.spec.unwrap_or_default();
    let mut st = State::from_labels(&spec.labels.clone().unwrap_or_default());
    let current = spec
        .mode
        .as_ref()
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas)
        .unwrap_or(0) as u64;
    let updating = matches!(
        svc.update_status.and_then(|u| u.state),
        Some(
            ServiceUpdateStatusStateEnum::UPDATING | ServiceUpdateStatusStateEnum::ROLLBACK_STARTED
        )
    );
    let running = api
        .list_tasks(full)
        .await?
        .iter()
        .filter(|t| {
            t.desired_state == Some(TaskState::RUNNING)
                && t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING)
        })
        .count() as u64;
    let metric = match policy.metric {
        Metric::Cpu => probe.cpu(full).await?,
        Metric::Rps => {
            let totals = probe.requests(short).await?;
            st.rate(now, totals, running)
        }
    };
    let mut scaler = st.scaler(policy.clone());
    let decision = scaler.decide(now, current, metric, updating);
    st.keep(&scaler);
    Ok(Decided {
        policy,
        short: short.to_string(),
        full: full.to_string(),
        state: st,
        decision,
    })
}

/// Rescales FULL to N the way every change goes: the stack as it runs is the desired state,
/// the new count an option of the reconcile; the plan's one scale action is executed, waited
/// for and recorded as a release. Anything else the reconcile finds (drift) is not this
/// controller's to change: only the scale is executed.
pub async fn rescale(
    api: &dyn SwarmApi,
    cfg: &AgentConfig,
    op: &Operation,
    full: &str,
    n: u64,
) -> anyhow::Result<Option<u64>> {
    let observed = engine::observe::observe(api, &cfg.stack).await?;
    let desired = as_it_runs(cfg, &observed);
    let opts = Options {
        scale: [(full.to_string(), n)].into(),
        ..Options::default()
    };
    let mut plan = plan::reconcile(&desired, &observed, &opts);
    plan.actions.retain(|a| a.name == full && a.op == Op::Scale);
    plan.unchanged.clear();
    if plan.is_empty() {
        return Ok(None);
    }
    let touched = [full.to_string()];
    let before = engine::wait::existing_tasks(api, &touched).await;
    engine::execute::execute(api, &plan, &desired, &mut Discard).await?;
    engine::wait::converge(api, &touched, &before, TIMEOUT, &mut Discard).await?;
    Ok(record(api, cfg, op, &plan).await.ok())
}

/// The stack as it runs, as a desired state: every service's spec, its objects as they are
/// (neither created nor removed).
fn as_it_runs(cfg: &AgentConfig, observed: &Observed) -> Desired {
    let stack = cfg.stack.as_str();
    let services = observed
        .services
        .iter()
        .map(|o| plan::desired::running_service(stack, &o.name, o.spec.clone()))
        .collect();
    plan::desired::as_running(&cfg.env, stack, observed, services)
}

/// Records what runs after PLAN as the stack's newest release, by the agent.
async fn record(
    api: &dyn SwarmApi,
    cfg: &AgentConfig,
    op: &Operation,
    plan: &Plan,
) -> anyhow::Result<u64> {
    let obs = engine::observe::observe(api, &cfg.stack).await?;
    let images = obs
        .services
        .iter()
        .map(|s| (s.name.clone(), crate::lifecycle::history::image_of(&s.spec)))
        .collect();
    let release = Release {
        services: obs.services.into_iter().map(|s| (s.name, s.spec)).collect(),
        user: op.user.clone(),
        host: op.host.clone(),
        command: op.command.clone(),
        reason: op.reason.clone(),
        plan: plan
            .actions
            .iter()
            .map(|a| Step {
                op: format!("{:?}", a.op).to_lowercase(),
                resource: format!("{:?}", a.resource).to_lowercase(),
                name: a.name.clone(),
                cause: a.cause.clone(),
            })
            .collect(),
        images,
        outcome: "converged".into(),
        ..Release::default()
    };
    let labels = HashMap::from([
        (labels::NAMESPACE.to_string(), cfg.stack.clone()),
        (labels::ENV.to_string(), cfg.env.clone()),
        (labels::MANAGED.to_string(), "true".to_string()),
        (labels::PROJECT.to_string(), cfg.autoscale.project.clone()),
    ]);
    releases::record(api, &cfg.stack, release, labels).await
}

/// Writes ST to FULL's labels (a change of labels only: no task is replaced). Read at the
/// version it is written at, so a concurrent change is refused, not overwritten.
pub async fn keep_state(api: &dyn SwarmApi, full: &str, st: &State) -> anyhow::Result<()> {
    let svc = api.inspect_service(full).await?;
    let version = svc.version.and_then(|v| v.index).unwrap_or(0);
    let mut spec = svc.spec.unwrap_or_default();
    let labels = spec.labels.get_or_insert_with(Default::default);
    let before = labels.clone();
    labels.retain(|k, _| !k.starts_with(LABEL_PREFIX));
    labels.extend(st.to_labels());
    if *labels == before {
        return Ok(());
    }
    api.update_service(full, spec, version).await?;
    Ok(())
}
