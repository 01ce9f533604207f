//! The agent's autoscaling controller through the in-memory swarm (no daemon): a round scales
//! up on load through a plan (recorded as a release), its stabilization window lives in the
//! scaled service's labels and so survives a new controller (an agent restarted), a stack
//! locked by an operator is left alone (the round says who holds it), an environment without
//! a policy runs no controller, and `twip autoscale`'s loop sees the stack's agent.

mod fake_support;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use fake_support::{World, APP};
use twip::agent::autoscale_round::{self, Acted, Outcome, Probe};
use twip::agent::{self, AgentConfig};
use twip::autoscale::state::{LABEL_DECISION, LABEL_WINDOW};
use twip::lifecycle::lock::{self, Operation};

const STACK: &str = "driftfixture";

/// CPU per task, as the test sets it; no stats page.
struct Load(Mutex<f64>);

impl Load {
    fn new(cpu: f64) -> Self {
        Load(Mutex::new(cpu))
    }
    fn set(&self, cpu: f64) {
        *self.0.lock().unwrap() = cpu;
    }
}

#[async_trait]
impl Probe for Load {
    async fn cpu(&self, _full: &str) -> anyhow::Result<f64> {
        Ok(*self.0.lock().unwrap())
    }
    async fn requests(&self, _backend: &str) -> anyhow::Result<BTreeMap<String, u64>> {
        anyhow::bail!("no stats page in this test")
    }
}

/// The fixture with a CPU policy on `app`: 50% per task, 1..4, a 60 s window.
fn scaled_world() -> World {
    let w = World::new();
    w.edit(
        "    replicas: 1\n    command: [\"infinity\"]",
        "    replicas: 1\n    autoscale:\n      metric: cpu\n      target: 50\n      min: 1\n      max: 4\n      scale_down_window: 60s\n    command: [\"infinity\"]",
    );
    w
}

async fn deployed(w: &World) -> AgentConfig {
    let env = w.env();
    assert_eq!(w.up(&env).await.unwrap(), 0);
    AgentConfig::for_environment(&env, w.dir.path()).unwrap()
}

async fn one_round(w: &World, cfg: &AgentConfig, load: &Load) -> Outcome {
    let mut out = autoscale_round::round(&w.fake, cfg, load).await.unwrap();
    assert_eq!(out.len(), 1, "{out:?}");
    out.remove(0)
}

fn label(w: &World, key: &str) -> Option<String> {
    w.fake
        .inspect(APP)
        .and_then(|s| s.spec?.labels?.get(key).cloned())
}

fn alice() -> Operation {
    Operation {
        command: "up".into(),
        user: "alice".into(),
        host: "laptop".into(),
        reason: "hotfix 7".into(),
        hooks: true,
    }
}

#[tokio::test]
async fn a_round_scales_up_on_load_through_a_plan_and_a_release() {
    let w = scaled_world();
    let cfg = deployed(&w).await;
    assert_eq!(cfg.autoscale.services["app"].target, 50.0);
    let releases = w.releases().await;

    // At the target: nothing changes (the negative control).
    let load = Load::new(50.0);
    let o = one_round(&w, &cfg, &load).await;
    assert_eq!(o.acted, Acted::Kept, "{o:?}");
    assert_eq!(w.replicas(APP), Some(1));
    assert_eq!(w.releases().await, releases);

    // 150% per task against 50: ceil(1 × 3) = 3, scaled at once, through a plan.
    w.fake.pass(Duration::from_secs(15));
    load.set(150.0);
    let o = one_round(&w, &cfg, &load).await;
    let d = o.decision.clone().unwrap();
    assert_eq!((d.current, d.recommended, d.desired), (1, 3, 3), "{o:?}");
    let Acted::Scaled(Some(seq)) = o.acted else {
        panic!("not scaled: {o:?}")
    };
    assert_eq!(w.replicas(APP), Some(3));
    assert_eq!(w.running(APP), 3);
    let list = twip::engine::releases::list(&w.fake, STACK).await.unwrap();
    let (_, r) = list.last().unwrap();
    assert_eq!(r.seq, seq);
    assert_eq!(
        (r.user.as_str(), r.command.as_str()),
        ("twip-agent", "autoscale (agent)")
    );
    assert_eq!(r.plan.len(), 1, "{:?}", r.plan);
    assert_eq!(
        (r.plan[0].op.as_str(), r.plan[0].name.as_str()),
        ("scale", APP)
    );
    assert!(o.summary().contains("scale 1 → 3"), "{}", o.summary());
    assert!(label(&w, LABEL_DECISION)
        .unwrap()
        .starts_with("app: scale 1 → 3"));
    // The lock was released.
    assert!(lock::status(&w.fake, STACK).await.unwrap().is_none());

    // The state labels are twip's books: `up` sees no drift and keeps them.
    let env = w.env();
    let plan = w.plan(&env).await;
    assert!(plan.is_empty(), "{plan}");
    w.edit("GREETING: hello", "GREETING: bonjour");
    let env = w.env();
    assert_eq!(w.up(&env).await.unwrap(), 0);
    assert!(label(&w, LABEL_WINDOW).is_some_and(|v| v.contains(",3]")));
    assert_eq!(w.replicas(APP), Some(3), "up keeps the autoscaled count");
}

/// The window kept in the labels holds a scale-down for a controller made anew (an agent
/// restarted), and removing those labels (the negative control) lets it scale down at once.
#[tokio::test]
async fn the_stabilization_window_survives_a_new_controller() {
    let w = scaled_world();
    let cfg = deployed(&w).await;
    let o = one_round(&w, &cfg, &Load::new(150.0)).await;
    assert!(matches!(o.acted, Acted::Scaled(_)), "{o:?}");
    assert_eq!(w.replicas(APP), Some(3));

    // The agent restarts: a new config, a new probe, a new controller; the load is gone.
    w.fake.pass(Duration::from_secs(20));
    let cfg = AgentConfig::for_environment(&w.env(), w.dir.path()).unwrap();
    assert!(agent::autoscale::controller(&cfg).is_some());
    let idle = Load::new(0.0);
    let o = one_round(&w, &cfg, &idle).await;
    let d = o.decision.clone().unwrap();
    assert_eq!((d.recommended, d.desired), (1, 3), "{o:?}");
    assert!(d.reason.contains("stabilization"), "{}", d.reason);
    assert_eq!(w.replicas(APP), Some(3));

    // Without the kept window, the same round scales down at once.
    let saved = w.fake.inspect(APP).unwrap().spec.unwrap().labels.unwrap();
    w.fake.tamper(APP, |s| {
        s.labels.as_mut().unwrap().remove(LABEL_WINDOW);
    });
    let mut control = Vec::new();
    {
        let probe = Load::new(0.0);
        // Read only: decide without acting, through a locked stack.
        let held = lock::acquire(&w.fake, STACK, &alice(), None, lock::TTL, &w.ui)
            .await
            .unwrap();
        control.push(one_round(&w, &cfg, &probe).await);
        lock::release(&w.fake, &held).await.unwrap();
    }
    let d = control[0].decision.clone().unwrap();
    assert_eq!(d.desired, 1, "without the window: {:?}", control[0]);
    w.fake.tamper(APP, |s| {
        s.labels = Some(saved);
    });

    // Once the loaded recommendation is older than the window: one scale-down, to 1.
    w.fake.pass(Duration::from_secs(45));
    let o = one_round(&w, &cfg, &idle).await;
    let d = o.decision.clone().unwrap();
    assert_eq!((d.current, d.desired), (3, 1), "{o:?}");
    assert!(matches!(o.acted, Acted::Scaled(_)), "{o:?}");
    assert_eq!(w.replicas(APP), Some(1));
}

#[tokio::test]
async fn a_stack_locked_by_an_operator_is_left_alone_and_the_round_says_who() {
    let w = scaled_world();
    let cfg = deployed(&w).await;
    let held = lock::acquire(&w.fake, STACK, &alice(), None, lock::TTL, &w.ui)
        .await
        .unwrap();
    let version = w.version(APP);
    w.fake.clear_calls();
    let load = Load::new(150.0);
    let o = one_round(&w, &cfg, &load).await;
    let d = o.decision.clone().unwrap();
    assert_eq!(d.desired, 3, "it would scale: {o:?}");
    let Acted::Locked(who) = &o.acted else {
        panic!("acted under an operator's lock: {o:?}")
    };
    assert!(who.starts_with("locked by alice@laptop"), "{who}");
    assert!(o
        .summary()
        .contains("skipped this round, locked by alice@laptop"));
    // Nothing reached the service: no update, not even of its labels.
    assert_eq!(w.replicas(APP), Some(1));
    assert_eq!(w.version(APP), version);
    assert!(
        !w.fake
            .calls()
            .iter()
            .any(|c| c.starts_with("update service")),
        "{:?}",
        w.fake.calls()
    );
    assert!(label(&w, LABEL_WINDOW).is_none());
    let (h, _) = lock::status(&w.fake, STACK).await.unwrap().unwrap();
    assert_eq!(h.user, "alice");

    // Released: the next round scales.
    lock::release(&w.fake, &held).await.unwrap();
    let o = one_round(&w, &cfg, &load).await;
    assert!(matches!(o.acted, Acted::Scaled(_)), "{o:?}");
    assert_eq!(w.replicas(APP), Some(3));
}

#[tokio::test]
async fn no_policy_no_controller() {
    let w = World::new();
    let env = w.env();
    let cfg = AgentConfig::for_environment(&env, w.dir.path()).unwrap();
    assert!(cfg.autoscale.is_empty());
    assert!(agent::autoscale::controller(&cfg).is_none());
    assert!(!agent::controllers(&cfg)
        .iter()
        .any(|c| c.name() == "autoscale"));
    // With a policy: the controller, in the one list.
    let cfg = AgentConfig::for_environment(&scaled_world().env(), w.dir.path()).unwrap();
    assert!(!cfg.autoscale.is_empty());
    assert!(agent::controllers(&cfg)
        .iter()
        .any(|c| c.name() == "autoscale"));
    // The part goes to the agent as JSON and comes back the same.
    let json = serde_json::to_string(&cfg).unwrap();
    assert_eq!(serde_json::from_str::<AgentConfig>(&json).unwrap(), cfg);
}

/// `twip autoscale`'s loop refuses a stack that runs its agent: found by the label. `up`
/// deploys the agent for an autoscale policy; with `agent.enabled: false` there is none.
#[tokio::test]
async fn the_stack_s_agent_is_found_by_its_label() {
    let w = scaled_world();
    w.edit(
        "volumes:\n  data:\n",
        "agent:\n  enabled: false\n\nvolumes:\n  data:\n",
    );
    deployed(&w).await;
    let find = || twip::lifecycle::autoscale::agent_service(&w.fake, STACK);
    assert_eq!(find().await.unwrap(), None);
    // The agent on: `up` deploys it, labelled io.twip.agent=true.
    w.edit("agent:\n  enabled: false\n", "");
    deployed(&w).await;
    assert_eq!(find().await.unwrap(), Some(format!("{STACK}_agent")));
    // Another stack's agent is not this one's.
    assert_eq!(
        twip::lifecycle::autoscale::agent_service(&w.fake, "other")
            .await
            .unwrap(),
        None
    );
}

/// `agent.autoscale_interval` is the time between the agent's autoscaling rounds (what the lab
/// test sets to 3 s); without it, the default.
#[test]
fn the_interval_of_the_agent_s_rounds_comes_from_the_manifest() {
    let w = scaled_world();
    let cfg = AgentConfig::for_environment(&w.env(), w.dir.path()).unwrap();
    assert_eq!(cfg.autoscale.interval(), agent::autoscale::INTERVAL);
    let path = w.dir.path().join("environments/driftfixture.yaml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("\nagent:\n  autoscale_interval: 3s\n");
    std::fs::write(&path, text).unwrap();
    let cfg = AgentConfig::for_environment(&w.env(), w.dir.path()).unwrap();
    assert_eq!(cfg.autoscale.interval(), Duration::from_secs(3));
    assert_ne!(agent::autoscale::INTERVAL, Duration::from_secs(3));
}
