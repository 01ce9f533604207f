//! The in-cluster agent on a lab of 3 managers (docker-in-docker): an environment with a file
//! certificate at the proxy (global mode) and a job scheduled every minute (`concurrency:
//! forbid`) converges with `twip up --lab`; the proxy on every node serves the file's
//! certificate (checked with `openssl s_client` against each node's address); then the node
//! that runs the agent is killed (`docker kill` of its container) just before a minute's slot,
//! swarm reschedules the agent on another manager (`twip status` shows it), and the job's own
//! reports (each run sends its slot to a collector this test runs on the lab's gateway) show
//! every minute from the first reported one to the last finished one run exactly once, across
//! the kill. The negative control: a duplicate report sent to the same collector is seen as
//! one. Everything the test made (lab, images) is removed when it ends, also on failure.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use common::lab::*;
use common::*;

const NAME: &str = "lab.example.test";

/// A self-signed certificate for NAME: (cert PEM, key PEM).
fn certificate() -> (String, String) {
    let mut p = rcgen::CertificateParams::new(vec![NAME.to_string()]).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "twip lab agent test");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn env_yaml(namespace: &str, gateway: &str, port: u16) -> String {
    format!(
        "extends: training
stack: twiptest_labagent
engine:
  allow_plain_tcp: true
registry:
  url: 127.0.0.1:5000
  namespace: {namespace}
nodes:
  - {{name: manager-1, address: 10.0.0.1, role: manager}}
  - {{name: manager-2, address: 10.0.0.2, role: manager}}
  - {{name: manager-3, address: 10.0.0.3, role: manager}}
proxy:
  mode: global
  tls:
    certificates:
      - {{cert: certs/lab.crt, key: certs/lab.key}}
jobs:
  tick:
    schedule: \"* * * * *\"
    concurrency: forbid
    image: twip/base:bookworm
    command: [bash, -c, 'exec 3<>/dev/tcp/{gateway}/{port} && echo \"slot $$TWIP_JOB_SLOT\" >&3']
"
    )
}

/// What the collector received: (when, line).
type Reports = Arc<Mutex<Vec<(DateTime<Utc>, String)>>>;

/// A TCP listener on ADDR:0 that keeps every line it is sent.
fn collector(addr: &str) -> (u16, Reports) {
    let l = TcpListener::bind(format!("{addr}:0")).expect("bind the collector on the gateway");
    let port = l.local_addr().unwrap().port();
    let reports: Reports = Arc::default();
    let r = reports.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let r = r.clone();
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(10))).ok();
                let mut text = String::new();
                let _ = s.read_to_string(&mut text);
                let mut v = r.lock().unwrap();
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    v.push((Utc::now(), line.trim().to_string()));
                }
            });
        }
    });
    (port, reports)
}

/// The slots reported so far, with how often each was reported.
fn slots(reports: &Reports) -> BTreeMap<DateTime<Utc>, usize> {
    let mut m = BTreeMap::new();
    for (_, line) in reports.lock().unwrap().iter() {
        let s = line.strip_prefix("slot ").unwrap_or(line);
        let t = chrono::NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ")
            .unwrap_or_else(|e| panic!("a report that is no slot: {line:?}: {e}"))
            .and_utc();
        *m.entry(t).or_insert(0) += 1;
    }
    m
}

/// Every minute from the first reported slot to LAST, each reported exactly once: the
/// missing and the repeated ones otherwise.
fn check(m: &BTreeMap<DateTime<Utc>, usize>, last: DateTime<Utc>) -> Result<usize, String> {
    let first = *m.keys().next().ok_or("no slot reported")?;
    let mut problems = Vec::new();
    let mut t = first;
    let mut n = 0;
    while t <= last {
        match m.get(&t) {
            None => problems.push(format!("{t} missing")),
            Some(1) => {}
            Some(k) => problems.push(format!("{t} reported {k} times")),
        }
        n += 1;
        t += chrono::Duration::minutes(1);
    }
    for (t, _) in m.range(t..) {
        problems.push(format!("{t} reported after {last}"));
    }
    if problems.is_empty() {
        Ok(n)
    } else {
        Err(problems.join("; "))
    }
}

fn minute(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_second(0).unwrap().with_nanosecond(0).unwrap()
}

/// The SHA-256 fingerprint of the first certificate in PEM, by openssl.
fn fingerprint(pem: &str) -> Option<String> {
    use std::io::Write;
    let mut c = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl");
    let wrote = c.stdin.take().unwrap().write_all(pem.as_bytes());
    let out = c.wait_with_output().ok()?;
    (wrote.is_ok() && out.status.success())
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The certificate ADDR:443 serves for NAME, by `openssl s_client` (a real TLS handshake).
fn served(addr: &str) -> Option<String> {
    let out = std::process::Command::new("timeout")
        .args(["10", "openssl", "s_client", "-connect"])
        .arg(format!("{addr}:443"))
        .args(["-servername", NAME])
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let begin = text.find("-----BEGIN CERTIFICATE-----")?;
    let end = text[begin..].find("-----END CERTIFICATE-----")? + begin;
    fingerprint(&text[begin..end + "-----END CERTIFICATE-----".len()])
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

    /// The agent's (node, running) from `twip status --json` through any manager that answers.
    fn agent(&self) -> Option<(String, bool)> {
        let out = self.twip(&["status", "labagent", "--lab", &self.lab.name, "--json"]);
        if !out.status.success() {
            return None;
        }
        let st: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let a = &st["agent"];
        Some((a["node"].as_str()?.to_string(), a["running"] == true))
    }
}

fn timeline(reports: &Reports, events: &[(DateTime<Utc>, String)]) {
    let mut all: Vec<(DateTime<Utc>, String)> = reports
        .lock()
        .unwrap()
        .iter()
        .map(|(t, l)| (*t, format!("report {l}")))
        .collect();
    all.extend(events.iter().cloned());
    all.sort();
    for (t, what) in all {
        println!("timeline: {} {what}", t.format("%H:%M:%S%.3f"));
    }
}

#[test]
fn a_job_runs_once_per_minute_across_the_kill_of_the_agents_node() {
    let lab = TestLab::new("a");
    let project = LabProject::new();
    let up = lab.twip(&[
        "lab",
        "up",
        "--name",
        &lab.name,
        "--nodes",
        "3",
        "--managers",
        "3",
    ]);
    assert!(up.status.success(), "lab up: {}", stderr(&up));
    let st = lab.status();
    let nodes = nodes_of(&st);
    assert_eq!(nodes.len(), 3, "{st:#}");
    let addresses: Vec<String> = nodes
        .iter()
        .map(|n| n["address"].as_str().unwrap().to_string())
        .collect();
    let ctx = Ctx { lab, project };

    // The lab network's gateway: the host, as lab nodes reach it.
    let f = format!("label=io.twip.lab={}", ctx.lab.name);
    let nets = list(&["network", "ls", "-q", "--filter", &f]);
    assert_eq!(nets.len(), 1, "{nets:?}");
    let gw = list(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Gateway}}{{end}}",
        &nets[0],
    ]);
    let gateway = gw.first().cloned().unwrap_or_default();
    assert!(!gateway.is_empty(), "no gateway for {}", nets[0]);
    let (port, reports) = collector(&gateway);

    let (cert, key) = certificate();
    let dir = ctx.project.path();
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    std::fs::write(dir.join("certs/lab.crt"), &cert).unwrap();
    std::fs::write(dir.join("certs/lab.key"), &key).unwrap();
    std::fs::write(
        dir.join("environments/labagent.yaml"),
        env_yaml(&ctx.project.namespace, &gateway, port),
    )
    .unwrap();
    ctx.project.build_images();
    let mut events = Vec::new();
    let out = ctx.twip(&["up", "labagent", "--lab", &ctx.lab.name, "--timeout", "5m"]);
    assert!(
        out.status.success(),
        "twip up:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    events.push((Utc::now(), "twip up done".to_string()));

    // 2. Every node's proxy serves the file's certificate.
    let want = fingerprint(&cert).expect("the file's fingerprint");
    for a in &addresses {
        let got = eventually(120, || served(a));
        assert_eq!(got.as_deref(), Some(want.as_str()), "the proxy on {a}");
        println!("tls: {a}:443 serves {want}");
    }

    // 3. The agent's node; two slots reported; the kill just before a minute's slot.
    let (before, _) = eventually(180, || ctx.agent().filter(|a| a.1)).expect("the agent runs");
    println!("agent on {before}");
    assert!(
        before.starts_with(&ctx.lab.name),
        "the agent's node {before} is no node of the lab"
    );
    eventually(200, || (slots(&reports).len() >= 2).then_some(()))
        .unwrap_or_else(|| panic!("fewer than 2 slots reported: {:?}", reports.lock().unwrap()));
    let s = Utc::now().second();
    if s < 45 {
        std::thread::sleep(Duration::from_secs(u64::from(45 - s))); // the kill's place in the minute
    }
    let kill_at = Utc::now();
    let out = docker(&["kill", &before]).output().unwrap();
    assert!(
        out.status.success(),
        "docker kill {before}: {}",
        stderr(&out)
    );
    events.push((kill_at, format!("docker kill {before}")));
    let (after, _) = eventually(240, || {
        ctx.agent()
            .filter(|(node, running)| *running && *node != before)
    })
    .expect("the agent runs on another node");
    events.push((Utc::now(), format!("status: agent running on {after}")));
    println!("agent rescheduled from {before} to {after}");

    // 4. Until five minutes of slots (and two after the kill) are in, then the check.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(420) {
        let m = slots(&reports);
        let first = *m.keys().next().unwrap();
        let last = *m.keys().last().unwrap();
        if last >= first + chrono::Duration::minutes(4)
            && last > kill_at + chrono::Duration::minutes(1)
        {
            break;
        }
        std::thread::sleep(Duration::from_secs(2)); // polling the collector
    }
    // The last finished minute: its slot has had 40 s to report.
    let now = Utc::now();
    if now.second() < 40 {
        std::thread::sleep(Duration::from_secs(u64::from(40 - now.second()))); // the minute's run
    }
    let last = minute(Utc::now());
    let m = slots(&reports);
    timeline(&reports, &events);
    let n = check(&m, last).unwrap_or_else(|e| panic!("{e}: {m:?}"));
    println!(
        "jobs: {n} minute slots from {} to {last}, each reported exactly once, across the kill at {kill_at}",
        m.keys().next().unwrap()
    );
    assert!(n >= 5, "{m:?}");
    assert!(
        m.keys().any(|t| *t > kill_at),
        "no slot ran after the kill: {m:?}"
    );

    // Negative control: a second report of a slot, sent to the same collector, is seen.
    let dup = format!("slot {}", last.format("%Y%m%dT%H%M%SZ"));
    let mut s = std::net::TcpStream::connect(format!("{gateway}:{port}")).unwrap();
    std::io::Write::write_all(&mut s, format!("{dup}\n").as_bytes()).unwrap();
    drop(s);
    let seen = eventually(30, || check(&slots(&reports), last).err());
    println!("negative control: {seen:?}");
    assert!(
        seen.as_deref()
            .is_some_and(|e| e.contains("reported 2 times")),
        "{seen:?}"
    );
}
