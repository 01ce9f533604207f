//! Reliability on a 3-node docker-in-docker lab (one manager, two workers, the proxy on every
//! node), measured with `twip bench` through the manager's proxy:
//! - zero failed requests through a rolling update of 3 replicas (v1 → v2), a scale-down 3 → 1,
//!   an update of a single replica (start-first, health-gated, lame duck), and a version whose
//!   health check never passes (rolled back, exit 4);
//! - the in-cluster agent that `twip up` deploys (its image built from this twip binary and
//!   delivered to the lab; it reads every proxy task's HAProxy stats itself) following a real
//!   load step (a fixed request rate), every change through a plan and a release recorded by
//!   the agent: up to the count its formula gives while the load runs, held without reversal,
//!   one scale-down once every higher recommendation has left the stabilization window (on
//!   the agent's own clock, from the window it keeps in web's labels); and the same load
//!   pattern run in simulation against the seed's +1/-1 loop, both printed side by side.
//!   Events are checked in order (the rounds of the agent's log, logged during the load, after
//!   it), not against the test's wall clock (see `autoscale.rs` beside this file). The agent
//!   runs only for that part (`labas`; `labzd` and `labneg` have no controller with work, and
//!   `labquiet` turns it off): nothing rescales under the other parts' loads;
//! - a killed task and a killed node recovered: no request fails before the kill or after the
//!   app answers again, and a killed node that ran no web task costs no request at all
//!   (seconds and counts printed);
//! - a negative control (stop-first, no health check) that loses requests, proving the
//!   measurement sees failures on the lab too.
//!
//! One lab and one stack for all of it: a lab deploy costs more than the checks.

mod common;

#[path = "lab_reliability/autoscale.rs"]
mod autoscale;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::lab::*;
use common::*;

/// The stack of labzd: the scaled environment for this test's images, amd64 only, without
/// Prometheus, with web at 3 replicas and nothing limiting how many land on one node.
fn labzd(namespace: &str) -> String {
    format!(
        "extends: scaled
stack: twiptest_labrel
registry:
  url: 127.0.0.1:5000
  namespace: {namespace}
monitoring:
  enabled: false
images:
  static:
    platforms: [linux/amd64]
  web:
    platforms: [linux/amd64]
  proxy:
    platforms: [linux/amd64]
services:
  web:
    replicas: 3
    autoscale: ~
    placement:
      max_replicas_per_node: ~
    update:
      parallelism: 1
      order: start-first
      failure_action: rollback
      monitor: 4s
"
    )
}

/// The negative control: one replica replaced stop-first, no health check, no lame duck,
/// and a new task that listens only 12 s after it starts: a gap with nothing to answer that
/// outlasts the bench's 10 s timeout, so requests in it fail whatever the proxy does with
/// them. (Without the slow start the gap was short enough, once, for HAProxy's connect
/// retries to carry every request across it: 95 requests answered after 2-5.6 s, none lost.)
const LABNEG: &str = "extends: labzd
services:
  web:
    replicas: 1
    environment:
      LAME_DUCK_SECONDS: 0
      START_DELAY_SECONDS: 12
    healthcheck:
      disable: true
    update:
      order: stop-first
      failure_action: continue
      monitor: 1s
";

struct Ctx {
    lab: TestLab,
    project: LabProject,
    manager_addr: String,
    manager_engine: String,
}

impl Ctx {
    fn twip(&self, vars: &[(&str, &str)], args: &[&str]) -> std::process::Output {
        let mut a: Vec<&str> = args.to_vec();
        a.extend_from_slice(&["--lab", &self.lab.name]);
        let mut cmd = twip();
        cmd.arg("--project-dir")
            .arg(self.project.path())
            .args(&a)
            .env("TWIP_LAB_DIR", self.lab.state_dir())
            .env_remove("TWIP_LAB_IMAGE")
            .env("NO_COLOR", "1")
            .timeout(Duration::from_secs(600));
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn ok(&self, vars: &[(&str, &str)], args: &[&str]) -> String {
        let out = self.twip(vars, args);
        assert!(
            out.status.success(),
            "twip {args:?} failed:\n{}{}",
            stdout(&out),
            stderr(&out)
        );
        format!("{}{}", stdout(&out), stderr(&out))
    }

    fn url(&self) -> String {
        format!("http://{}/", self.manager_addr)
    }

    fn get(&self) -> Option<Reply> {
        http_at(&self.manager_addr, 80, "GET", "/", "")
    }

    /// X-App-Version of one 200 answer through the manager's proxy.
    fn version(&self) -> Option<String> {
        self.get().and_then(|(s, h, _)| {
            (s == 200)
                .then(|| header(&h, "x-app-version").map(str::to_string))
                .flatten()
        })
    }

    /// N answers in a row through the manager's proxy carry VERSION (polled up to a minute).
    fn assert_only(&self, n: usize, version: &str, what: &str) {
        if let Err(last) = only_version(60, n, version, || self.version()) {
            panic!("{what}: not {n} answers of {version} in a row; the last {n}: {last:?}");
        }
    }

    /// Only the wanted tasks of SVC run: WANT tasks meant to run are running, and no task
    /// meant to stop still runs (a replaced task in its lame duck).
    fn settled(&self, svc: &str, want: usize) -> bool {
        let tasks = on(
            &self.manager_engine,
            &[
                "service",
                "ps",
                "--format",
                "{{.DesiredState}} {{.CurrentState}}",
                &format!("twiptest_labrel_{svc}"),
            ],
        );
        let running = |l: &&String| l.split_whitespace().nth(1) == Some("Running");
        tasks
            .iter()
            .filter(|l| l.starts_with("Running "))
            .filter(running)
            .count()
            == want
            && !tasks
                .iter()
                .filter(|l| !l.starts_with("Running "))
                .any(|l| running(&l))
    }

    /// Runs `change` under `bench_during` until WANT tasks of web run.
    fn under_load(&self, want: usize, change: impl FnOnce()) -> serde_json::Value {
        bench_during(&self.url(), change, || self.settled("web", want))
    }

    /// Nodes that run a task of the service.
    fn hosts(&self, svc: &str) -> Vec<String> {
        on(
            &self.manager_engine,
            &[
                "service",
                "ps",
                "--filter",
                "desired-state=running",
                "--format",
                "{{.Node}} {{.CurrentState}}",
                &format!("twiptest_labrel_{svc}"),
            ],
        )
        .into_iter()
        .filter(|l| l.contains(" Running "))
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
        .collect()
    }
}

/// What a [`Loader`] saw: when each request started, and whether it was answered 200.
struct Loaded {
    requests: Vec<(Instant, bool)>,
}

impl Loaded {
    fn ok(&self) -> usize {
        self.requests.iter().filter(|r| r.1).count()
    }
    fn failed(&self) -> usize {
        self.requests.iter().filter(|r| !r.1).count()
    }
    /// Failed requests that started before T.
    fn failed_before(&self, t: Instant) -> usize {
        self.requests.iter().filter(|r| !r.1 && r.0 < t).count()
    }
    /// Failed requests that started at or after T.
    fn failed_after(&self, t: Instant) -> usize {
        self.requests.iter().filter(|r| !r.1 && r.0 >= t).count()
    }
    /// Answered requests that started at or after T.
    fn ok_after(&self, t: Instant) -> usize {
        self.requests.iter().filter(|r| r.1 && r.0 >= t).count()
    }
}

/// Requests through the manager's proxy from a thread, one after another, until stopped.
struct Loader {
    stop: Arc<AtomicBool>,
    answered: Arc<std::sync::atomic::AtomicUsize>,
    handle: std::thread::JoinHandle<Loaded>,
}

impl Loader {
    /// Starts, and returns once 20 requests were answered (the load runs before what follows).
    fn start(addr: &str) -> Loader {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (s, n) = (stop.clone(), answered.clone());
        let a = addr.to_string();
        let handle = std::thread::spawn(move || {
            let mut requests = Vec::new();
            while !s.load(Ordering::Relaxed) {
                let t = Instant::now();
                let ok = matches!(http_at(&a, 80, "GET", "/", ""), Some((200, _, _)));
                requests.push((t, ok));
                if ok {
                    n.fetch_add(1, Ordering::Relaxed);
                } else {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            Loaded { requests }
        });
        let l = Loader {
            stop,
            answered,
            handle,
        };
        assert!(
            eventually(60, || (l.answered() >= 20).then_some(())).is_some(),
            "the loader got no 20 answers before the fault"
        );
        l
    }

    fn answered(&self) -> usize {
        self.answered.load(Ordering::Relaxed)
    }

    /// Stops once 20 more requests were answered (the load runs after what came before).
    fn stop(self) -> Loaded {
        let from = self.answered();
        eventually(60, || (self.answered() >= from + 20).then_some(()));
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

/// When 20 requests in a row (started after it began looking) answered 200 through the
/// manager's proxy: the instant the first of them started.
fn answering_again(ctx: &Ctx, limit: u64) -> Option<Instant> {
    eventually(limit, || {
        let t = Instant::now();
        (0..20)
            .all(|_| matches!(ctx.get(), Some((200, _, _))))
            .then_some(t)
    })
}

#[test]
fn on_a_three_node_lab_changes_lose_nothing_autoscaling_follows_load_and_failures_recover() {
    let lab = TestLab::new("r");
    let project = LabProject::new();
    lab.up(3);
    let nodes = nodes_of(&lab.status());
    let ctx = Ctx {
        manager_addr: nodes[0]["address"].as_str().unwrap().to_string(),
        manager_engine: nodes[0]["engine"].as_str().unwrap().to_string(),
        lab,
        project,
    };
    let envs = ctx.project.path().join("environments");
    std::fs::write(envs.join("labzd.yaml"), labzd(&ctx.project.namespace)).unwrap();
    std::fs::write(envs.join("labas.yaml"), autoscale::LABAS).unwrap();
    std::fs::write(envs.join("labquiet.yaml"), autoscale::LABQUIET).unwrap();
    std::fs::write(envs.join("labneg.yaml"), LABNEG).unwrap();
    ctx.project.build_images();
    for v in ["2.0.0", "3.0.0"] {
        ctx.project.build("web", v);
    }

    // v1, 3 replicas, on the two app nodes.
    ctx.ok(&[], &["up", "labzd", "--timeout", "5m"]);
    ctx.assert_only(6, "1.0.0", "v1 through the manager's proxy");
    let w2 = format!("{}-worker-2", ctx.lab.name);
    let web_hosts = ctx.hosts("web");
    assert_eq!(web_hosts.len(), 3, "{web_hosts:?}");
    assert!(
        web_hosts.iter().all(|h| h.contains("-worker-")),
        "{web_hosts:?}"
    );

    // 1. A rolling update of 3 replicas, v1 → v2: nothing fails, v2 answers after.
    let mut out = None;
    let report = ctx.under_load(3, || {
        out = Some(ctx.twip(&[("TWIP_WEB_VERSION", "2.0.0")], &["up", "labzd"]))
    });
    let out = out.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(failed(&report), 0, "rolling update on the lab: {report}");
    ctx.assert_only(10, "2.0.0", "after the rolling update on the lab");

    // 2. Scale-down 3 → 1.
    let mut out = None;
    let report = ctx.under_load(1, || {
        out = Some(ctx.twip(&[], &["scale", "labzd", "web=1"]))
    });
    let out = out.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(failed(&report), 0, "scale-down on the lab: {report}");
    assert_eq!(ctx.hosts("web").len(), 1);

    // 3. One replica, v2 → v3: start-first, health-gated, lame duck.
    let mut out = None;
    let report = ctx.under_load(1, || {
        out = Some(ctx.twip(&[("TWIP_WEB_VERSION", "3.0.0")], &["up", "labzd"]))
    });
    let out = out.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        failed(&report),
        0,
        "single-replica update on the lab: {report}"
    );
    ctx.assert_only(5, "3.0.0", "after the single-replica update on the lab");

    // 4. A version whose health check never passes: rolled back by swarm, exit 4.
    let bad = ctx.project.image("static", "latest");
    let mut out = None;
    let report = ctx.under_load(1, || {
        out = Some(ctx.twip(
            &[("TWIP_WEB_VERSION", "3.0.0")],
            &["update", "labzd", "web", "--image", &bad],
        ))
    });
    let out = out.unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(
        failed(&report),
        0,
        "automatic rollback on the lab: {report}"
    );
    ctx.assert_only(5, "3.0.0", "after the automatic rollback on the lab");

    // 5. The in-cluster agent's autoscaler under a load step; the agent off after it.
    let t5 = Instant::now();
    autoscale::autoscaler_follows_a_load_step(&ctx);
    println!("the autoscaler part: {:.1} s", t5.elapsed().as_secs_f64());

    // 6. A killed task: swarm starts another; the app answers again. (The container of the
    // task meant to run: tasks removed by the scale-down may still be stopping.)
    let running = on(
        &ctx.manager_engine,
        &[
            "service",
            "ps",
            "--no-trunc",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.ID}} {{.Node}}",
            "twiptest_labrel_web",
        ],
    );
    assert_eq!(running.len(), 1, "{running:?}");
    let (task, web_node) = running[0].split_once(' ').expect("task and node");
    let node_engine = nodes
        .iter()
        .find(|n| n["name"].as_str() == Some(web_node))
        .and_then(|n| n["engine"].as_str())
        .expect("the node of web's task")
        .to_string();
    let container = on(
        &node_engine,
        &[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.swarm.task.id={task}"),
        ],
    );
    assert_eq!(container.len(), 1, "{container:?}");
    let loader = Loader::start(&ctx.manager_addr);
    let t0 = Instant::now();
    let killed = docker(&["-H", &node_engine, "kill", &container[0]])
        .output()
        .unwrap();
    assert!(killed.status.success(), "{}", stderr(&killed));
    let back = answering_again(&ctx, 180);
    let loaded = loader.stop();
    let back = back.expect("the killed task was replaced and the app answers");
    println!(
        "killed task (1 replica): answering again after {:.1} s; requests ok {}, failed {}",
        (back - t0).as_secs_f64(),
        loaded.ok(),
        loaded.failed()
    );
    // Failures only between the kill and the app answering again, and answers after.
    assert_eq!(
        loaded.failed_before(t0),
        0,
        "requests failed before the task was killed"
    );
    assert_eq!(
        loaded.failed_after(back),
        0,
        "requests failed after the app answered again"
    );
    assert!(loaded.ok_after(back) >= 20, "no load after the recovery");

    // 7. Negative control: stop-first without a health check loses requests on the lab too.
    ctx.ok(&[("TWIP_WEB_VERSION", "3.0.0")], &["up", "labneg"]);
    ctx.assert_only(3, "3.0.0", "the negative control's first version");
    let mut out = None;
    let report = ctx.under_load(1, || {
        out = Some(ctx.twip(
            &[("TWIP_WEB_VERSION", "3.0.0")],
            &["update", "labneg", "web"],
        ))
    });
    assert!(out.unwrap().status.success());
    assert!(
        failed(&report) > 0,
        "the negative control lost nothing on the lab: the measurement cannot see failures: {report}"
    );

    // 8. A killed node: its tasks run on the others and the app answers again.
    // (Tasks of a node that is gone may stay listed as running there: count the others.)
    let want: Vec<(&str, usize)> = ["web", "static"]
        .into_iter()
        .map(|s| (s, ctx.hosts(s).len()))
        .collect();
    let on_w2: Vec<&str> = ["web", "static"]
        .into_iter()
        .filter(|s| ctx.hosts(s).contains(&w2))
        .collect();
    let loader = Loader::start(&ctx.manager_addr);
    let t0 = Instant::now();
    let killed = docker(&["kill", &w2]).output().unwrap();
    assert!(killed.status.success(), "{}", stderr(&killed));
    let moved = eventually(240, || {
        want.iter()
            .all(|(s, n)| ctx.hosts(s).iter().filter(|h| **h != w2).count() >= *n)
            .then(Instant::now)
    });
    let back = answering_again(&ctx, 180);
    let loaded = loader.stop();
    let moved = moved.expect("the killed node's tasks run elsewhere");
    let back = back.expect("the app answers after the node was killed");
    println!(
        "killed node {w2} (ran {on_w2:?}): tasks elsewhere after {:.1} s, app answering after {:.1} s; requests ok {}, failed {}",
        (moved - t0).as_secs_f64(),
        (back - t0).as_secs_f64(),
        loaded.ok(),
        loaded.failed()
    );
    assert_eq!(
        loaded.failed_before(t0),
        0,
        "requests failed before the node was killed"
    );
    assert_eq!(
        loaded.failed_after(back),
        0,
        "requests failed after the app answered again"
    );
    assert!(loaded.ok_after(back) >= 20, "no load after the recovery");
    // A node without a web task: the proxy on the manager never sent it a request.
    if !on_w2.contains(&"web") {
        assert_eq!(
            loaded.failed(),
            0,
            "{w2} ran no web task, yet requests for / failed"
        );
    }
}
