//! Reliability on a 3-node docker-in-docker lab (one manager, two workers, the proxy on every
//! node), measured with `twip bench` through the manager's proxy:
//! - zero failed requests through a rolling update of 3 replicas (v1 → v2), a scale-down 3 → 1,
//!   an update of a single replica (start-first, health-gated, lame duck), and a version whose
//!   health check never passes (rolled back, exit 4);
//! - the agent's autoscaling controller (its rounds driven from the test process against the
//!   lab's manager until the agent runs in the cluster) following a real load step (a fixed
//!   request rate), every change through a plan and a release: up to the count its
//!   formula gives while the load runs, held without reversal, one scale-down once every
//!   higher recommendation has left the stabilization window (on the autoscaler's own clock);
//!   and the same load pattern run in simulation against the seed's +1/-1 loop, both printed
//!   side by side. Events are checked in order (decisions logged during the load, after it),
//!   not against the test's wall clock;
//! - a killed task and a killed node recovered: no request fails before the kill or after the
//!   app answers again, and a killed node that ran no web task costs no request at all
//!   (seconds and counts printed);
//! - a negative control (stop-first, no health check) that loses requests, proving the
//!   measurement sees failures on the lab too.
//!
//! One lab and one stack for all of it: a lab deploy costs more than the checks.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::agent::*;
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

/// The autoscaler's policy: requests per second through HAProxy, 40 per task.
const RATE: u64 = 150;
const TARGET: u64 = 40;
const WINDOW_S: u64 = 20;
/// The agent is off: its controller's rounds are driven by the test (one autoscaler only).
const LABAS: &str = "extends: labzd
agent:
  enabled: false
services:
  web:
    replicas: 1
    autoscale:
      metric: rps
      target: 40
      min: 1
      max: 10
      scale_down_window: 20s
";

/// The negative control: one replica replaced stop-first, no health check, no lame duck.
const LABNEG: &str = "extends: labzd
services:
  web:
    replicas: 1
    environment:
      LAME_DUCK_SECONDS: 0
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
    std::fs::write(envs.join("labas.yaml"), LABAS).unwrap();
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

    // 5. The autoscaler under a load step.
    autoscaler_follows_a_load_step(&ctx);

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

/// The agent's autoscaling controller, its rounds driven every 3 s from the test process
/// against the lab's manager engine (the agent's own runner is not deployed yet), reading
/// HAProxy's stats through every node's published stats port, while a fixed rate of RATE
/// requests/s runs for a while. The decisions are checked by their order: those logged while
/// the load ran take web from 1 up to ceil(RATE / TARGET) and hold it (no scale-down, never
/// above); after the load, exactly one scale-down, to 1, as the last event, and only once
/// every higher recommendation is more than the window old on the controller's own clock
/// (`at_s`). Every scale event went through a plan and was recorded as a release.
fn autoscaler_follows_a_load_step(ctx: &Ctx) {
    ctx.ok(&[("TWIP_WEB_VERSION", "3.0.0")], &["up", "labas"]);
    assert_eq!(ctx.hosts("web").len(), 1);
    let expected = RATE.div_ceil(TARGET);
    let config = agent_config(
        ctx.project.path(),
        "labas",
        &[("TWIP_WEB_VERSION", "3.0.0")],
    );
    let stats = config
        .autoscale
        .stats
        .clone()
        .expect("labas has a stats page");
    let urls: Vec<String> = nodes_of(&ctx.lab.status())
        .iter()
        .filter_map(|n| n["address"].as_str())
        .map(|a| format!("http://{a}:{}{};csv", stats.port, stats.uri))
        .collect();
    assert_eq!(urls.len(), 3, "{urls:?}");
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let decisions = Arc::new(Mutex::new(Vec::<serde_json::Value>::new()));
    let controller = {
        let (stop, errors, decisions) = (stop.clone(), errors.clone(), decisions.clone());
        let engine = ctx.manager_engine.clone();
        std::thread::spawn(move || {
            drive_autoscale(&engine, config, urls, &stop, &errors, &decisions)
        })
    };
    let started = Instant::now();
    let count = |d: &Arc<Mutex<Vec<serde_json::Value>>>| d.lock().unwrap().len();
    // Two idle evaluations first (the first has no rate yet).
    assert!(
        eventually(120, || (count(&decisions) >= 2).then_some(())).is_some(),
        "the controller logs no decisions: {:?}",
        errors.lock().unwrap()
    );

    // The load step: RATE requests/s through the manager's proxy for 45 s. Decisions logged
    // from `first_loaded` to `first_after` (exclusive) were made while it ran.
    let first_loaded = count(&decisions);
    let load_start = started.elapsed().as_secs_f64();
    let bench = Command::new(env!("CARGO_BIN_EXE_twip"))
        .args([
            "bench",
            &ctx.url(),
            "--rate",
            &RATE.to_string(),
            "-z",
            "45s",
            "-c",
            "50",
            "--json",
        ])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let load_end = started.elapsed().as_secs_f64();
    let first_after = count(&decisions);
    let report: serde_json::Value = serde_json::from_slice(&bench.stdout).unwrap_or_else(|e| {
        panic!("bench JSON: {e}\n{}", stderr(&bench));
    });
    assert_eq!(
        failed(&report),
        0,
        "requests failed while scaling: {report}"
    );
    assert!(
        report["responses"].as_u64().unwrap_or(0) >= RATE * 30,
        "the load step did not run at {RATE}/s: {report}"
    );
    println!(
        "load step: {} requests/s asked, {:.1} sent, p99 {:.3} s",
        RATE, report["rps"], report["latency_s"]["p99"]
    );

    // After the load: one scale-down (polled: the window, then the next evaluation), then
    // two more evaluations with nothing after it.
    let is_down = |x: &serde_json::Value| {
        x["desired"].as_u64() == Some(1) && x["current"].as_u64().unwrap_or(0) > 1
    };
    let down_seen = eventually(WINDOW_S + 180, || {
        let d = decisions.lock().unwrap();
        d.iter()
            .skip(first_after)
            .position(is_down)
            .map(|i| first_after + i)
    });
    if let Some(i) = down_seen {
        eventually(60, || (count(&decisions) >= i + 3).then_some(()));
    }
    stop.store(true, Ordering::SeqCst);
    controller.join().unwrap();
    let decisions = decisions.lock().unwrap().clone();
    let errors = errors.lock().unwrap().clone();
    assert!(errors.is_empty(), "rounds that failed: {errors:?}");
    let at = |x: &serde_json::Value| x["at_s"].as_f64().unwrap_or(0.0);
    let n = |x: &serde_json::Value, k: &str| x[k].as_u64().unwrap_or(0);
    // The controller's clock is the wall clock (it survives a restart): shown from the first.
    let t0 = decisions.first().map_or(0.0, at);
    let log: Vec<String> = decisions
        .iter()
        .enumerate()
        .map(|(i, x)| {
            format!(
                "{:6.1}s current {} metric {:.1} recommended {} desired {} ({}) [{}]{}",
                at(x) - t0,
                n(x, "current"),
                x["metric"].as_f64().unwrap_or(f64::NAN),
                n(x, "recommended"),
                n(x, "desired"),
                x["reason"].as_str().unwrap_or(""),
                x["acted"].as_str().unwrap_or(""),
                if i == first_loaded {
                    "   <- first logged under load"
                } else if i == first_after {
                    "   <- first logged after the load"
                } else {
                    ""
                }
            )
        })
        .collect();
    let log = log.join("\n");
    assert!(
        down_seen.is_some(),
        "no scale-down after the load (load {load_start:.1}..{load_end:.1} s):\n{log}"
    );
    // Scale events: (index, at_s, current, desired).
    let events: Vec<(usize, f64, u64, u64)> = decisions
        .iter()
        .enumerate()
        .filter(|(_, x)| n(x, "desired") != n(x, "current"))
        .map(|(i, x)| (i, at(x), n(x, "current"), n(x, "desired")))
        .collect();
    // Each one acted: rescaled through a plan, recorded as a release by the agent.
    for (i, ..) in &events {
        assert!(
            decisions[*i]["acted"]
                .as_str()
                .is_some_and(|a| a.starts_with("scaled, release ")),
            "decision {i} did not scale through a recorded plan: {}\n{log}",
            decisions[*i]
        );
    }

    // Nothing moved before the load; up to the formula's count while it ran.
    assert!(
        events.iter().all(|e| e.0 >= first_loaded),
        "a scale event before the load:\n{log}"
    );
    let during = &decisions[first_loaded..first_after];
    let reached = during
        .iter()
        .position(|x| n(x, "desired") == expected)
        .unwrap_or_else(|| {
            panic!(
                "web did not reach ceil({RATE}/{TARGET}) = {expected} while the load ran:\n{log}"
            )
        });
    // Held while the load ran: only scale-ups, never above the formula, then the count held.
    assert!(
        events
            .iter()
            .filter(|e| e.0 < first_after)
            .all(|(_, _, from, to)| to > from && *to <= expected),
        "a reversal or an overshoot while the load held:\n{log}"
    );
    assert!(
        during[reached..]
            .iter()
            .all(|x| n(x, "desired") == expected),
        "web did not hold {expected} while the load held:\n{log}"
    );
    // After: exactly one scale-down, to 1, the last event, after the window on the
    // autoscaler's clock: every recommendation above 1 is more than the window older.
    let downs: Vec<&(usize, f64, u64, u64)> = events.iter().filter(|e| e.3 < e.2).collect();
    assert_eq!(downs.len(), 1, "scale-downs: {downs:?}\n{log}");
    let (down_i, down_at, _, down_to) = *downs[0];
    assert_eq!(down_to, 1, "{log}");
    assert!(down_i >= first_after, "scaled down under load:\n{log}");
    let last_high = decisions[..down_i]
        .iter()
        .filter(|x| n(x, "recommended") > 1)
        .map(at)
        .fold(f64::NAN, f64::max);
    assert!(
        down_at - last_high > WINDOW_S as f64,
        "scaled down at {down_at:.1} s, within the {WINDOW_S} s window of a recommendation above 1 at {last_high:.1} s:\n{log}"
    );
    assert_eq!(
        events.last().map(|e| e.0),
        Some(down_i),
        "events after the scale-down:\n{log}"
    );
    // Events as (decision index, from, to): the phase of the load comes from the index.
    let events: Vec<(usize, u64, u64)> = events.iter().map(|e| (e.0, e.2, e.3)).collect();

    // The same load pattern in simulation: twip's controller against the seed's +1/-1 loop.
    let (twip_run, naive_run) = compare_on_pattern(load_start, load_end, started.elapsed());
    println!(
        "the agent's autoscaler on the lab (rps, target {TARGET}, window {WINDOW_S} s, every 3 s):\n{log}"
    );
    println!(
        "{:<34} {:>12} {:>10} {:>28}",
        "controller", "scale events", "reversals", "reversals under steady load"
    );
    // A reversal is under steady load when both events fall in one phase of the load (before
    // the step, during it, or after it).
    let phase = |i: usize| (i >= first_loaded) as u8 + (i >= first_after) as u8;
    let reversals: Vec<&[(usize, u64, u64)]> = events
        .windows(2)
        .filter(|w| (w[0].2 > w[0].1) != (w[1].2 > w[1].1))
        .collect();
    let steady = reversals
        .iter()
        .filter(|w| phase(w[0].0) == phase(w[1].0))
        .count();
    println!(
        "{:<34} {:>12} {:>10} {:>28}",
        "twip on the lab",
        events.len(),
        reversals.len(),
        steady
    );
    assert_eq!(steady, 0, "twip reversed itself under steady load:\n{log}");
    for r in [&twip_run, &naive_run] {
        println!(
            "{:<34} {:>12} {:>10} {:>28}",
            format!("{} (simulated)", r.controller),
            r.events.len(),
            r.reversals,
            r.reversals_steady
        );
    }
    assert_eq!(twip_run.reversals_steady, 0);
    assert!(
        naive_run.events.len() > twip_run.events.len(),
        "naive {:?} twip {:?}",
        naive_run.events,
        twip_run.events
    );
}

/// The lab's load pattern (idle, RATE requests/s from `start` to `end`, idle) simulated with
/// twip's controller (the test's policy) and the seed's loop: see `sim::rps_step`.
fn compare_on_pattern(
    start: f64,
    end: f64,
    total: Duration,
) -> (twip::autoscale::sim::Run, twip::autoscale::sim::Run) {
    twip::autoscale::sim::rps_step(
        RATE as f64,
        TARGET as f64,
        Duration::from_secs(WINDOW_S),
        start.round() as u64,
        (end - start).round() as u64,
        total.as_secs() + 1,
    )
}
