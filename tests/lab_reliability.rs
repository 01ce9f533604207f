//! Reliability on a 3-node docker-in-docker lab (one manager, two workers, the proxy on every
//! node), measured with `twip bench` through the manager's proxy:
//! - zero failed requests through a rolling update of 3 replicas (v1 → v2), a scale-down 3 → 1,
//!   an update of a single replica (start-first, health-gated, lame duck), and a version whose
//!   health check never passes (rolled back, exit 4);
//! - the autoscaler following a real load step (a fixed request rate): up to the count its
//!   formula gives within 3 evaluations, held without reversal, one scale-down after the
//!   stabilization window; and the same load pattern run in simulation against the seed's
//!   +1/-1 loop, both printed side by side;
//! - a killed task and a killed node recovered (seconds and failed requests printed);
//! - a negative control (stop-first, no health check) that loses requests, proving the
//!   measurement sees failures on the lab too.
//!
//! One lab and one stack for all of it: a lab deploy costs more than the checks.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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

/// The autoscaler's policy: requests per second through HAProxy, 40 per task.
const RATE: u64 = 150;
const TARGET: u64 = 40;
const WINDOW_S: u64 = 20;
const LABAS: &str = "extends: labzd
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

    /// X-App-Version of N answers through the manager's proxy.
    fn versions(&self, n: usize) -> Vec<String> {
        (0..n)
            .filter_map(|_| self.get())
            .filter_map(|(_, h, _)| header(&h, "x-app-version").map(str::to_string))
            .collect()
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

/// Requests through the manager's proxy from a thread, until stopped: (ok, failed).
struct Loader {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<(u32, u32)>,
}

impl Loader {
    fn start(addr: &str) -> Loader {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let a = addr.to_string();
        let handle = std::thread::spawn(move || {
            let (mut ok, mut failed) = (0, 0);
            while !s.load(Ordering::Relaxed) {
                match http_at(&a, 80, "GET", "/", "") {
                    Some((200, _, _)) => ok += 1,
                    _ => {
                        failed += 1;
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
            (ok, failed)
        });
        Loader { stop, handle }
    }

    fn stop(self) -> (u32, u32) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

/// Seconds until 20 requests in a row answer 200 through the manager's proxy.
fn seconds_until_answering(ctx: &Ctx, t0: Instant, limit: u64) -> Option<f64> {
    eventually(limit, || {
        (0..20)
            .all(|_| matches!(ctx.get(), Some((200, _, _))))
            .then(|| t0.elapsed().as_secs_f64())
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
    assert!(
        eventually(60, || (ctx
            .versions(6)
            .iter()
            .filter(|v| *v == "1.0.0")
            .count()
            == 6)
            .then_some(()))
        .is_some(),
        "v1 answers through the manager's proxy: {:?}",
        ctx.versions(6)
    );
    let w2 = format!("{}-worker-2", ctx.lab.name);
    let web_hosts = ctx.hosts("web");
    assert_eq!(web_hosts.len(), 3, "{web_hosts:?}");
    assert!(
        web_hosts.iter().all(|h| h.contains("-worker-")),
        "{web_hosts:?}"
    );

    // 1. A rolling update of 3 replicas, v1 → v2: nothing fails, v2 answers after.
    let mut out = None;
    let report = bench_during(&ctx.url(), || {
        out = Some(ctx.twip(&[("TWIP_WEB_VERSION", "2.0.0")], &["up", "labzd"]))
    });
    let out = out.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(failed(&report), 0, "rolling update on the lab: {report}");
    let v = ctx.versions(10);
    assert!(v.len() == 10 && v.iter().all(|v| v == "2.0.0"), "{v:?}");

    // 2. Scale-down 3 → 1.
    let mut out = None;
    let report = bench_during(&ctx.url(), || {
        out = Some(ctx.twip(&[], &["scale", "labzd", "web=1"]))
    });
    let out = out.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(failed(&report), 0, "scale-down on the lab: {report}");
    assert_eq!(ctx.hosts("web").len(), 1);

    // 3. One replica, v2 → v3: start-first, health-gated, lame duck.
    let mut out = None;
    let report = bench_during(&ctx.url(), || {
        out = Some(ctx.twip(&[("TWIP_WEB_VERSION", "3.0.0")], &["up", "labzd"]))
    });
    let out = out.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        failed(&report),
        0,
        "single-replica update on the lab: {report}"
    );
    assert!(ctx.versions(5).iter().all(|v| v == "3.0.0"));

    // 4. A version whose health check never passes: rolled back by swarm, exit 4.
    let bad = ctx.project.image("static", "latest");
    let mut out = None;
    let report = bench_during(&ctx.url(), || {
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
    assert!(ctx.versions(5).iter().all(|v| v == "3.0.0"));

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
    std::thread::sleep(Duration::from_secs(1));
    let t0 = Instant::now();
    let killed = docker(&["-H", &node_engine, "kill", &container[0]])
        .output()
        .unwrap();
    assert!(killed.status.success(), "{}", stderr(&killed));
    let back = seconds_until_answering(&ctx, t0, 90);
    let (ok, bad_requests) = loader.stop();
    let back = back.expect("the killed task was replaced and the app answers");
    println!(
        "killed task (1 replica): answering again after {back:.1} s; requests ok {ok}, failed {bad_requests}"
    );

    // 7. Negative control: stop-first without a health check loses requests on the lab too.
    ctx.ok(&[("TWIP_WEB_VERSION", "3.0.0")], &["up", "labneg"]);
    assert!(eventually(60, || ctx.versions(1).first().cloned()).is_some());
    let mut out = None;
    let report = bench_during(&ctx.url(), || {
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
    std::thread::sleep(Duration::from_secs(1));
    let t0 = Instant::now();
    let killed = docker(&["kill", &w2]).output().unwrap();
    assert!(killed.status.success(), "{}", stderr(&killed));
    let moved = eventually(120, || {
        want.iter()
            .all(|(s, n)| ctx.hosts(s).iter().filter(|h| **h != w2).count() >= *n)
            .then(|| t0.elapsed().as_secs_f64())
    });
    let back = seconds_until_answering(&ctx, t0, 60);
    let (ok, bad_requests) = loader.stop();
    let moved = moved.expect("the killed node's tasks run elsewhere");
    let back = back.expect("the app answers after the node was killed");
    println!(
        "killed node {w2} (ran {on_w2:?}): tasks elsewhere after {moved:.1} s, app answering after {back:.1} s; requests ok {ok}, failed {bad_requests}"
    );
}

/// `twip autoscale --lab --json` while a fixed rate of RATE requests/s runs for a while: the
/// decisions it logs must show web going from 1 to ceil(RATE / TARGET) within 3 evaluations,
/// holding that count while the load holds, and one scale-down after the window.
fn autoscaler_follows_a_load_step(ctx: &Ctx) {
    ctx.ok(&[("TWIP_WEB_VERSION", "3.0.0")], &["up", "labas"]);
    assert_eq!(ctx.hosts("web").len(), 1);
    let expected = RATE.div_ceil(TARGET);
    let mut child = Command::new(env!("CARGO_BIN_EXE_twip"))
        .arg("--project-dir")
        .arg(ctx.project.path())
        .args([
            "autoscale",
            "labas",
            "--lab",
            &ctx.lab.name,
            "--interval",
            "3s",
            "--json",
        ])
        .env("TWIP_LAB_DIR", ctx.lab.state_dir())
        .env("TWIP_WEB_VERSION", "3.0.0")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("twip autoscale starts");
    let started = Instant::now();
    // Decisions as they come, read by a thread (the child runs until Ctrl-C).
    let decisions = Arc::new(Mutex::new(Vec::<serde_json::Value>::new()));
    let reader = {
        let d = decisions.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    d.lock().unwrap().push(v);
                }
            }
        })
    };
    let count = |d: &Arc<Mutex<Vec<serde_json::Value>>>| d.lock().unwrap().len();
    // Two idle evaluations first (the first has no rate yet).
    assert!(
        eventually(60, || (count(&decisions) >= 2).then_some(())).is_some(),
        "autoscale logs no decisions"
    );

    // The load step: RATE requests/s through the manager's proxy for 45 s.
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
    let report: serde_json::Value = serde_json::from_slice(&bench.stdout).unwrap_or_else(|e| {
        panic!("bench JSON: {e}\n{}", stderr(&bench));
    });
    assert_eq!(
        failed(&report),
        0,
        "requests failed while scaling: {report}"
    );
    println!(
        "load step: {} requests/s asked, {:.1} sent, p99 {:.3} s",
        RATE, report["rps"], report["latency_s"]["p99"]
    );

    // After the load: one scale-down once the window has passed, then nothing.
    let down_seen = eventually(WINDOW_S + 60, || {
        let d = decisions.lock().unwrap();
        d.iter()
            .any(|x| x["at_s"].as_f64().unwrap_or(0.0) > load_end && x["desired"] == 1)
            .then_some(())
    });
    let settle = count(&decisions) + 2;
    eventually(30, || (count(&decisions) >= settle).then_some(()));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let decisions = decisions.lock().unwrap().clone();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    assert!(status.success(), "autoscale exit {status:?}: {err}");
    let at = |x: &serde_json::Value| x["at_s"].as_f64().unwrap_or(0.0);
    let n = |x: &serde_json::Value, k: &str| x[k].as_u64().unwrap_or(0);
    let log: Vec<String> = decisions
        .iter()
        .map(|x| {
            format!(
                "{:6.1}s current {} metric {:.1} recommended {} desired {} ({})",
                at(x),
                n(x, "current"),
                x["metric"].as_f64().unwrap_or(f64::NAN),
                n(x, "recommended"),
                n(x, "desired"),
                x["reason"].as_str().unwrap_or("")
            )
        })
        .collect();
    let log = log.join("\n");
    assert!(
        down_seen.is_some(),
        "no scale-down after the load (load {load_start:.1}..{load_end:.1} s):\n{log}"
    );
    let events: Vec<(f64, u64, u64)> = decisions
        .iter()
        .filter(|x| n(x, "desired") != n(x, "current"))
        .map(|x| (at(x), n(x, "current"), n(x, "desired")))
        .collect();

    // Up to the formula's count within 3 evaluations of the step.
    let after_step: Vec<&serde_json::Value> =
        decisions.iter().filter(|x| at(x) > load_start).collect();
    assert!(
        after_step
            .iter()
            .take(3)
            .any(|x| n(x, "desired") == expected),
        "web did not reach ceil({RATE}/{TARGET}) = {expected} within 3 evaluations of the step at {load_start:.1} s:\n{log}"
    );
    // Held while the load held: no scale-down before the load ended, never above the formula.
    assert!(
        events
            .iter()
            .filter(|(t, _, _)| *t <= load_end)
            .all(|(_, from, to)| to > from && *to <= expected),
        "a reversal or an overshoot while the load held:\n{log}"
    );
    let reached = after_step
        .iter()
        .position(|x| n(x, "desired") == expected)
        .unwrap();
    assert!(
        after_step[reached..]
            .iter()
            .filter(|x| at(x) <= load_end)
            .all(|x| n(x, "desired") == expected),
        "web did not hold {expected} while the load held:\n{log}"
    );
    // After: exactly one scale-down, to 1, not before the window, and nothing after it.
    let downs: Vec<&(f64, u64, u64)> = events.iter().filter(|(_, f, t)| t < f).collect();
    assert_eq!(downs.len(), 1, "scale-downs: {downs:?}\n{log}");
    let (down_at, _, down_to) = *downs[0];
    assert_eq!(down_to, 1, "{log}");
    assert!(
        down_at >= load_end + (WINDOW_S as f64) - 6.0,
        "scaled down at {down_at:.1} s, before the {WINDOW_S} s window after the load ended at {load_end:.1} s:\n{log}"
    );
    assert_eq!(
        events.last().map(|e| e.0),
        Some(down_at),
        "events after the scale-down:\n{log}"
    );

    // The same load pattern in simulation: twip's controller against the seed's +1/-1 loop.
    let (twip_run, naive_run) = compare_on_pattern(load_start, load_end, started.elapsed());
    println!(
        "autoscaler on the lab (rps, target {TARGET}, window {WINDOW_S} s, every 3 s):\n{log}"
    );
    println!(
        "{:<34} {:>12} {:>10} {:>28}",
        "controller", "scale events", "reversals", "reversals under steady load"
    );
    // A reversal is under steady load when both events fall in one phase of the load (before
    // the step, during it, or after it).
    let phase = |t: f64| (t > load_start) as u8 + (t > load_end) as u8;
    let reversals: Vec<&[(f64, u64, u64)]> = events
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
