//! The floating entrypoint on a lab of 3 managers and 2 workers (docker-in-docker): an
//! environment with `proxy.vip` converges and the address answers from the host; then an
//! independent client that never retries sends a steady 200 requests/s through the address for
//! 90 s while the node that holds it, which is also the swarm's leader, is killed (`docker
//! kill` of its container), and later a worker that runs app tasks. The same client sent to the
//! killed node's own address is the negative control: every request after the kill fails
//! there, so the measurement can see failures. Afterwards `twip status --json` names the new
//! holder and leader through a surviving manager.
//!
//! Every request's send time and outcome is recorded; the failed count, the longest run of
//! failures and the time until the address answered again are printed (scripts/bench-failover.sh
//! collects them), and asserted against the stated requirements.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::lab::*;
use common::*;

/// The client: requests per second, for how long, and when the two kills happen.
const RATE: u64 = 200;
const RUN: Duration = Duration::from_secs(90);
const FIRST_KILL: Duration = Duration::from_secs(20);
const SECOND_KILL: Duration = Duration::from_secs(55);

/// The environment: production's services, the proxy (and keepalived) on the three managers,
/// the app on the two workers, the floating address in the lab's subnet.
fn labvip(namespace: &str, vip: &str) -> String {
    format!(
        "extends: production
stack: twiptest_labvip
engine:
  allow_plain_tcp: true
registry:
  url: 127.0.0.1:5000
  namespace: {namespace}
nodes:
  - {{name: manager-1, address: 10.0.0.1, role: manager, labels: {{tier: edge}}}}
  - {{name: manager-2, address: 10.0.0.2, role: manager, labels: {{tier: edge}}}}
  - {{name: manager-3, address: 10.0.0.3, role: manager, labels: {{tier: edge}}}}
  - {{name: worker-1, address: 10.0.0.4, role: worker, labels: {{tier: app}}}}
  - {{name: worker-2, address: 10.0.0.5, role: worker, labels: {{tier: app}}}}
images:
  keepalived:
    build:
      context: images/keepalived
services:
  web:
    replicas: 4
    placement:
      constraints: [\"node.labels.tier == app\"]
  static:
    placement:
      constraints: [\"node.labels.tier == app\"]
proxy:
  mode: global
  placement:
    constraints: [\"node.labels.tier == edge\"]
  timeouts:
    connect: 1s
  vip: {vip}
"
    )
}

/// One request of the client: when it was sent (since the run began) and whether it got a 200.
#[derive(Debug, Clone)]
struct Sample {
    sent: Duration,
    /// When its answer (or its failure) came.
    done: Duration,
    ok: bool,
    /// Why it failed (connect, write, read, or the status line), for a failure's message.
    why: String,
}

/// GET /healthz on a new connection, `Connection: close`: a 200 within the timeouts or a
/// failure. Never retried, never resent.
fn request(addr: SocketAddr) -> Result<(), String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .and_then(|_| s.set_write_timeout(Some(Duration::from_secs(2))))
        .map_err(|e| format!("socket: {e}"))?;
    let head = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| format!("read: {e}"))?;
    if buf.starts_with(b"HTTP/1.1 200 ") {
        Ok(())
    } else {
        let line = String::from_utf8_lossy(&buf);
        Err(format!("answer: {:?}", line.lines().next().unwrap_or("")))
    }
}

/// Threads per client: enough for every request of 3 s to be outstanding at once (the
/// longest a request can take to fail is its 2 s connect or 10 s read timeout).
const WORKERS: usize = 800;

/// RATE requests per second to ADDR for RUN, an open loop: a scheduler hands each request its
/// time, a pool of threads sends it (a slow answer does not delay the next request; a request
/// that starts late records when it really started). Returns the samples in send order.
fn client(addr: SocketAddr, start: Instant) -> std::thread::JoinHandle<Vec<Sample>> {
    std::thread::spawn(move || {
        let (tx, rx) = std::sync::mpsc::channel::<Instant>();
        let rx = Arc::new(Mutex::new(rx));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                let rx = rx.clone();
                let samples = samples.clone();
                std::thread::Builder::new()
                    .stack_size(256 * 1024)
                    .spawn(move || loop {
                        let next = rx.lock().unwrap().recv();
                        let Ok(at) = next else { return };
                        if let Some(wait) = at.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait); // until the request's own time (pacing)
                        }
                        let sent = start.elapsed();
                        let r = request(addr);
                        let done = start.elapsed();
                        samples.lock().unwrap().push(Sample {
                            sent,
                            done,
                            ok: r.is_ok(),
                            why: r.err().unwrap_or_default(),
                        });
                    })
                    .unwrap()
            })
            .collect();
        let n = RATE * RUN.as_secs();
        for i in 0..n {
            let at = start + Duration::from_nanos(i * 1_000_000_000 / RATE);
            // Hand it out a little before its time, so that a free worker is waiting for it.
            if let Some(wait) = at
                .checked_sub(Duration::from_millis(20))
                .and_then(|t| t.checked_duration_since(Instant::now()))
            {
                std::thread::sleep(wait); // pacing the open loop, not waiting for a condition
            }
            tx.send(at).unwrap();
        }
        drop(tx);
        for w in workers {
            w.join().unwrap();
        }
        let mut v = samples.lock().unwrap().clone();
        v.sort_by_key(|s| s.sent);
        v
    })
}

/// What a kill did to the samples sent from a second before it (until `to`).
#[derive(Debug)]
struct Outage {
    failed: usize,
    sent: usize,
    /// From the first failed request to the last one (send times).
    failing: Duration,
    /// The longest time without an answer: between two successive 200s (arrival times).
    longest_gap: Duration,
    /// From the kill to the first 200 of a request sent after the last failed one (after
    /// `docker kill` returned when none failed).
    answered_again: Duration,
    /// Why they failed: each reason (the client's error or the status line) with its count,
    /// the most frequent first.
    reasons: Vec<(String, usize)>,
    /// How many failed per second of send time, from the kill: `+S s: N`.
    per_second: Vec<String>,
}

/// Whether a request was still waiting for its answer when the kill began: sent before the
/// window of [`outage`] and answered (or failed) after KILL. On a loaded machine a request
/// can wait seconds in the proxy; if the kill ends it, the kill failed it.
fn in_flight_at(s: &Sample, kill: Duration) -> bool {
    s.sent < kill.saturating_sub(Duration::from_secs(1)) && s.done >= kill
}

/// KILL is when `docker kill` was started, KILLED when it returned. The window: the requests
/// sent from a second before the kill until a second before NEXT (the next kill; the end of
/// the run when there is none), and those sent earlier but still in flight at the kill
/// (counted as sent at the kill); not those still in flight at NEXT, which are the next kill's.
fn outage(samples: &[Sample], kill: Duration, killed: Duration, next: Option<Duration>) -> Outage {
    let from = kill.saturating_sub(Duration::from_secs(1));
    let to = next.map_or(RUN, |n| n.saturating_sub(Duration::from_secs(1)));
    let window: Vec<&Sample> = samples
        .iter()
        .filter(|s| (s.sent >= from || in_flight_at(s, kill)) && s.sent < to)
        .filter(|s| next.is_none_or(|n| !in_flight_at(s, n)))
        .collect();
    let sent_at = |s: &Sample| if s.sent < from { kill } else { s.sent };
    let mut failed: Vec<&&Sample> = window.iter().filter(|s| !s.ok).collect();
    failed.sort_by_key(|s| sent_at(s));
    let failing = match (failed.first(), failed.last()) {
        (Some(first), Some(last)) => sent_at(last) - sent_at(first),
        _ => Duration::ZERO,
    };
    let mut answers: Vec<Duration> = window.iter().filter(|s| s.ok).map(|s| s.done).collect();
    answers.sort();
    let longest_gap = answers
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or(to - from);
    // After the last failed request of the window (or, when none failed, after `docker kill`
    // returned): on a loaded machine `docker kill` of a lab node can return seconds after the
    // node stopped answering and the address moved, so its return says nothing of the outage.
    let outage_over = failed.last().map_or(killed, |last| sent_at(last));
    let answered_again = window
        .iter()
        .filter(|s| s.ok && s.sent > outage_over)
        .map(|s| s.done.saturating_sub(kill))
        .min()
        .unwrap_or(to - kill);
    let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
    let mut per_second: std::collections::BTreeMap<u64, usize> = Default::default();
    for s in &failed {
        *reasons.entry(s.why.clone()).or_default() += 1;
        *per_second
            .entry(sent_at(s).saturating_sub(kill).as_secs())
            .or_default() += 1;
    }
    let mut reasons: Vec<(String, usize)> = reasons.into_iter().collect();
    reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
    Outage {
        failed: failed.len(),
        sent: window.len(),
        failing,
        longest_gap,
        answered_again,
        reasons,
        per_second: per_second
            .into_iter()
            .map(|(s, n)| format!("+{s} s: {n}"))
            .collect(),
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

struct Ctx {
    lab: TestLab,
    project: LabProject,
}

impl Ctx {
    fn twip(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = twip();
        cmd.arg("--project-dir")
            .arg(self.project.path())
            .args(args)
            .env("TWIP_LAB_DIR", self.lab.state_dir())
            .env_remove("TWIP_LAB_IMAGE")
            .env("NO_COLOR", "1")
            .timeout(Duration::from_secs(600));
        cmd.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.twip(args);
        assert!(
            out.status.success(),
            "twip {args:?}:\n{}\n{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// `twip status --json` with no engine flag: twip finds a manager of the lab that answers.
    fn status(&self) -> Option<serde_json::Value> {
        let out = self.twip(&["status", "labvip", "--lab", &self.lab.name, "--json"]);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }
}

/// A container's log of the last 3 minutes on ENGINE, stdout and stderr (HAProxy's warnings
/// and keepalived's states go to stderr) in time order.
fn container_log(engine: &str, id: &str) -> Vec<String> {
    let out = docker(&["-H", engine, "logs", "--timestamps", "--since", "3m", id])
        .output()
        .expect("docker CLI");
    let mut lines: Vec<String> = [&out.stdout, &out.stderr]
        .iter()
        .flat_map(|b| {
            String::from_utf8_lossy(b)
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|l| !l.trim().is_empty())
        .collect();
    lines.sort(); // each line starts with its RFC 3339 timestamp
    lines
}

/// The lab's node NAME's (address, engine).
fn node<'a>(nodes: &'a [serde_json::Value], name: &str) -> (&'a str, &'a str) {
    let n = nodes
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("no lab node {name}: {nodes:?}"));
    (
        n["address"].as_str().unwrap(),
        n["engine"].as_str().unwrap(),
    )
}

fn leader(st: &serde_json::Value) -> Option<String> {
    st["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["leader"] == true)
        .and_then(|n| n["hostname"].as_str().map(str::to_string))
}

fn holder(st: &serde_json::Value) -> Option<String> {
    st["vip"]["holder"].as_str().map(str::to_string)
}

#[test]
fn the_floating_address_survives_the_leader_and_a_worker() {
    let lab = TestLab::new("v");
    let project = LabProject::new();
    let up = lab.twip(&[
        "lab",
        "up",
        "--name",
        &lab.name,
        "--nodes",
        "5",
        "--managers",
        "3",
    ]);
    assert!(up.status.success(), "lab up: {}", stderr(&up));
    let st = lab.status();
    let nodes = nodes_of(&st);
    assert_eq!(nodes.len(), 5, "{st:#}");
    let subnet = st["subnet"].as_str().unwrap();
    let prefix = subnet.rsplit_once('.').unwrap().0;
    let vip = format!("{prefix}.250");
    let ctx = Ctx { lab, project };
    let m1 = format!("{}-manager-1", ctx.lab.name);
    let w1 = format!("{}-worker-1", ctx.lab.name);
    let (m1_addr, _) = node(&nodes, &m1);
    std::fs::write(
        ctx.project.path().join("environments/labvip.yaml"),
        labvip(&ctx.project.namespace, &vip),
    )
    .unwrap();
    for (name, tag) in [
        ("static", "latest"),
        ("web", "1.0.0"),
        ("proxy", "latest"),
        ("keepalived", "latest"),
    ] {
        ctx.project.build(name, tag);
    }

    // It converges, and the address answers from the host.
    ctx.ok(&["up", "labvip", "--lab", &ctx.lab.name, "--timeout", "5m"]);
    let vip_addr: SocketAddr = format!("{vip}:80").parse().unwrap();
    assert!(
        eventually(60, || request(vip_addr).ok()).is_some(),
        "the floating address {vip} never answered"
    );
    let st = eventually(60, || {
        let st = ctx.status()?;
        (st["vip"]["nodes"].as_array()?.len() == 3 && holder(&st).is_some()).then_some(st)
    })
    .expect("status shows three keepalived and a holder");
    assert_eq!(st["vip"]["address"], vip.as_str(), "{:#}", st["vip"]);
    assert_eq!(
        leader(&st).as_deref(),
        Some(m1.as_str()),
        "{:#}",
        st["nodes"]
    );

    // Give the address to manager-1, the leader: stop keepalived on the other managers at
    // once (SIGTERM: they give it up); they come back as BACKUP and, never preempting, leave it.
    let others: Vec<String> = (2..=3)
        .map(|i| format!("{}-manager-{i}", ctx.lab.name))
        .collect();
    for name in &others {
        let (_, engine) = node(&nodes, name);
        let ids = on(
            engine,
            &[
                "ps",
                "-q",
                "--filter",
                "label=com.docker.swarm.service.name=twiptest_labvip_vip",
            ],
        );
        assert_eq!(ids.len(), 1, "keepalived on {name}: {ids:?}");
        on(engine, &["kill", "-s", "TERM", &ids[0]]);
    }
    let st = eventually(90, || {
        let st = ctx.status()?;
        let states: Vec<&str> = st["vip"]["nodes"]
            .as_array()?
            .iter()
            .filter_map(|n| n["state"].as_str())
            .collect();
        (holder(&st).as_deref() == Some(m1.as_str())
            && states.len() == 3
            && states.iter().filter(|s| **s == "BACKUP").count() == 2)
            .then_some(st)
    })
    .expect("manager-1 holds the address, the two others are back as BACKUP");
    println!("before the kill: {:#}", st["vip"]);
    assert!(eventually(30, || request(vip_addr).ok()).is_some());

    // The run: the address and, as the negative control, manager-1's own address, at once.
    let direct: SocketAddr = format!("{m1_addr}:80").parse().unwrap();
    let answer = request(direct);
    assert!(
        answer.is_ok(),
        "manager-1's own proxy answers before the run: {answer:?}"
    );
    let start = Instant::now() + Duration::from_millis(500);
    let through_vip = client(vip_addr, start);
    let control = client(direct, start);

    // The control plane after the kill: how long until a surviving manager answers with a new
    // leader. Polled in its own thread from the kill on.
    let (kill_tx, kill_rx) = std::sync::mpsc::channel::<Instant>();
    let control_plane = {
        let args = (
            ctx.project.path().to_path_buf(),
            ctx.lab.state_dir().to_path_buf(),
            ctx.lab.name.clone(),
            m1.clone(),
        );
        std::thread::spawn(move || {
            let (project, labs, lab, dead) = args;
            let killed = kill_rx.recv().unwrap();
            eventually(120, || {
                // No engine flag: twip tries the lab's managers and skips the dead one.
                let out = twip()
                    .arg("--project-dir")
                    .arg(&project)
                    .args(["status", "labvip", "--lab", &lab, "--json"])
                    .env("TWIP_LAB_DIR", &labs)
                    .timeout(Duration::from_secs(30))
                    .output()
                    .ok()?;
                let st: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
                let l = leader(&st)?;
                (l != dead).then(|| (killed.elapsed(), l))
            })
        })
    };

    // 1. Kill manager-1: the holder of the address and the swarm's leader.
    std::thread::sleep((start + FIRST_KILL).saturating_duration_since(Instant::now())); // the kill's place in the run
    let kill1 = start.elapsed();
    let out = docker(&["kill", &m1]).output().unwrap();
    assert!(out.status.success(), "docker kill {m1}: {}", stderr(&out));
    let kill1_done = start.elapsed();
    kill_tx.send(start + kill1).unwrap();

    // 2. Kill a worker that runs app tasks.
    std::thread::sleep((start + SECOND_KILL).saturating_duration_since(Instant::now())); // the second kill's place
    let tasks_on_w1 = on(
        node(&nodes, &w1).1,
        &[
            "ps",
            "-q",
            "--filter",
            "label=com.docker.swarm.service.name=twiptest_labvip_web",
        ],
    );
    assert!(!tasks_on_w1.is_empty(), "{w1} runs no app task");
    let kill2 = start.elapsed();
    let out = docker(&["kill", &w1]).output().unwrap();
    assert!(out.status.success(), "docker kill {w1}: {}", stderr(&out));
    let kill2_done = start.elapsed();

    let vip_samples = through_vip.join().unwrap();
    let control_samples = control.join().unwrap();
    let control_plane = control_plane.join().unwrap();
    let n = (RATE * RUN.as_secs()) as usize;
    assert_eq!(vip_samples.len(), n);
    assert_eq!(control_samples.len(), n);

    // What the surviving managers' proxies and keepalived said during the run (HAProxy logs
    // only notices: servers going up, down or into maintenance, and why; keepalived its VRRP
    // states), to explain failures.
    for name in &others {
        let engine = node(&nodes, name).1;
        for service in ["proxy", "vip"] {
            let filter = format!("label=com.docker.swarm.service.name=twiptest_labvip_{service}");
            for id in on(engine, &["ps", "-q", "--filter", &filter]) {
                let lines = container_log(engine, &id);
                let tail = &lines[lines.len().saturating_sub(60)..];
                println!(
                    "{name} {service} ({} lines, the last {}):",
                    lines.len(),
                    tail.len()
                );
                for l in tail {
                    println!("  {l}");
                }
            }
        }
    }

    // Before the first kill nothing failed, on either address (a request still in flight at
    // the kill belongs to the kill's outage: `in_flight_at`).
    let before = |v: &[Sample]| -> Vec<String> {
        v.iter()
            .filter(|s| s.sent < kill1.saturating_sub(Duration::from_secs(1)))
            .filter(|s| !in_flight_at(s, kill1))
            .filter(|s| !s.ok)
            .map(|s| format!("sent {:.1?} failed {:.1?}: {}", s.sent, s.done, s.why))
            .collect()
    };
    for (what, v) in [("vip", &vip_samples), ("control", &control_samples)] {
        let failed = before(v);
        assert!(
            failed.is_empty(),
            "{} failures before the kill ({what}), the first: {:?}",
            failed.len(),
            &failed[..failed.len().min(5)]
        );
    }

    let first = outage(&vip_samples, kill1, kill1_done, Some(kill2));
    let second = outage(&vip_samples, kill2, kill2_done, None);
    let after_kill: Vec<&Sample> = control_samples
        .iter()
        .filter(|s| s.sent > kill1_done)
        .collect();
    let control_failed = after_kill.iter().filter(|s| !s.ok).count();
    let (cp_time, new_leader) =
        control_plane.expect("a surviving manager answers with a new leader");
    println!(
        "failover: vip failed {} of {} (around the leader's kill) over {} s, longest gap without an answer {} s, answered again {} s after the kill",
        first.failed,
        first.sent,
        secs(first.failing),
        secs(first.longest_gap),
        secs(first.answered_again)
    );
    println!(
        "failover: worker kill failed {} of {}, longest gap without an answer {} s",
        second.failed,
        second.sent,
        secs(second.longest_gap)
    );
    for (what, o) in [("leader's kill", &first), ("worker kill", &second)] {
        if o.failed > 0 {
            println!(
                "failover: {what}: why {:?}; per second of send time from the kill {:?}",
                o.reasons, o.per_second
            );
        }
    }
    println!(
        "failover: control plane answered again {} s after the kill (new leader {new_leader})",
        secs(cp_time)
    );
    println!(
        "failover: negative control, {} address: {control_failed} of {} failed after the kill",
        m1,
        after_kill.len()
    );

    // The negative control: every request sent to the dead node after the kill failed.
    assert!(after_kill.len() > 1000, "{}", after_kill.len());
    assert_eq!(control_failed, after_kill.len(), "the dead node answered");

    // The one allowed bound: the stated requirements for the floating entrypoint, at
    // most 3 s of failed requests around the kill of the holder, answering again within 5 s.
    assert!(
        first.failed > 0,
        "killing the holder cost nothing: was it the holder?"
    );
    assert!(
        first.failing <= Duration::from_secs(3),
        "{} s of failed requests: {first:?}",
        secs(first.failing)
    );
    assert!(
        first.answered_again <= Duration::from_secs(5),
        "answered again after {} s: {first:?}",
        secs(first.answered_again)
    );
    // A worker's death loses at most the requests that were in flight in it.
    assert!(second.failed <= 10, "{second:?}");

    // Afterwards status names another holder and another leader, through a surviving manager.
    let st = eventually(120, || {
        let st = ctx.status()?;
        let h = holder(&st)?;
        let down = st["nodes"]
            .as_array()?
            .iter()
            .any(|n| n["hostname"] == m1.as_str() && n["state"] == "down");
        (h != m1 && down).then_some(st)
    })
    .expect("status shows the new holder and manager-1 down");
    println!("after the kills: {:#}", st["vip"]);
    assert_ne!(leader(&st).as_deref(), Some(m1.as_str()));

    // The control plane takes changes with no engine flag: scale and up converge through a
    // surviving manager, the address still answers, and status shows web at its new count.
    let lab = ctx.lab.name.clone();
    ctx.ok(&["scale", "labvip", "web=2", "--lab", &lab, "--timeout", "5m"]);
    ctx.ok(&["up", "labvip", "--lab", &lab, "--timeout", "5m"]);
    let st = eventually(180, || {
        let st = ctx.status()?;
        let web = st["services"]
            .as_array()?
            .iter()
            .find(|s| s["name"].as_str().is_some_and(|n| n.ends_with("_web")))?
            .clone();
        // The engine's running count may still hold a task of the dead worker for a while
        // (docs/reliability.md), so: desired exact, running at least that.
        (web["desired"] == 2 && web["running"].as_u64()? >= 2).then_some(st)
    })
    .expect("web at 2 replicas after scale and up through a surviving manager");
    assert_ne!(leader(&st).as_deref(), Some(m1.as_str()));
    assert!(
        eventually(60, || request(vip_addr).ok()).is_some(),
        "the floating address answers after the changes"
    );
}
