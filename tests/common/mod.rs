//! Shared helpers for the integration tests.
#![allow(dead_code)]

pub mod agent;
pub mod example;
pub mod lab;
pub mod pebble;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use twip::manifest::interp::Vars;
use twip::manifest::{Environment, Loader};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copies the directory `src` into `dst` (made), files and folders. Test projects copy the
/// repository's `images/` instead of linking it: a build context may not leave the project
/// (symlinks are followed), and a test project is not in the repository's git tree.
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

/// A loader for `dir` that sees no process variables (so results do not depend on the shell).
pub fn loader(dir: &Path) -> Loader {
    Loader {
        project_dir: dir.to_path_buf(),
        vars: Vars {
            dotenv: BTreeMap::new(),
            overrides: Some(BTreeMap::new()),
        },
    }
}

pub fn load(dir: &Path, name: &str) -> Environment {
    let l = loader(dir);
    let file = l
        .env_file(name)
        .unwrap_or_else(|| panic!("no environment {name}"));
    l.load_file(name, &file)
        .unwrap_or_else(|d| panic!("{name} does not validate:\n{d}"))
}

/// The twip binary with a clean environment for variables the manifests read.
pub fn twip() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("twip").expect("the twip binary is built");
    for var in [
        "TWIP_BASE_IMAGE",
        "TWIP_WEB_VERSION",
        "TWIP_HTTP_PORT",
        "TWIP_STATS_PORT",
        "TWIP_REGISTRY",
        "TWIP_PROJECT_DIR",
        "TWIP_HOST",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

/// A short id unique to this test process (its pid and a few digits of the clock): part of
/// every stack, bridge and image name a test makes, so two runs on one machine never share one.
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        format!("{}{:03}", std::process::id(), (nanos / 1000) % 1000)
    })
}

/// A stack name for this run: `twiptest<run id>_<name>`.
pub fn test_stack(name: &str) -> String {
    format!("twiptest{}_{name}", run_id())
}

/// The host ports this test process publishes (HAProxy's port, the port after it for a
/// service of its own, HAProxy's stats), free when first asked for.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub http: u16,
    pub solo: u16,
    pub stats: u16,
}

/// This process's ports: `TWIP_TEST_HTTP_PORT` / `TWIP_TEST_STATS_PORT` when set, otherwise
/// three consecutive ports that nothing listens on and no swarm service publishes, from a
/// start that depends on the process (so two runs do not race for the same ones).
pub fn ports() -> Ports {
    static PORTS: OnceLock<Ports> = OnceLock::new();
    *PORTS.get_or_init(|| {
        let set = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u16>().ok());
        if let Some(http) = set("TWIP_TEST_HTTP_PORT") {
            return Ports {
                http,
                solo: http + 1,
                stats: set("TWIP_TEST_STATS_PORT").unwrap_or(http + 2),
            };
        }
        let published = swarm_published_ports();
        let free = |p: u16| {
            !published.contains(&p)
                && std::net::TcpListener::bind(("0.0.0.0", p)).is_ok()
                && std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
        };
        let seed: u32 = run_id().parse::<u64>().map(|n| n as u32).unwrap_or(0);
        let mut p = 20000 + (seed.wrapping_mul(7919) % 10000) as u16;
        for _ in 0..1000 {
            if (p..p + 3).all(free) {
                return Ports {
                    http: p,
                    solo: p + 1,
                    stats: p + 2,
                };
            }
            p = if p > 29990 { 20000 } else { p + 3 };
        }
        panic!("no three free consecutive ports in 20000..30000");
    })
}

/// Host ports published by swarm services (ingress or host mode): `docker service ls`.
fn swarm_published_ports() -> Vec<u16> {
    let mut out = Vec::new();
    for line in list(&["service", "ls", "--format", "{{.Ports}}"]) {
        // "*:28080->80/tcp, *:30000-30002->1936/tcp"
        for part in line.split(',') {
            let Some(published) = part
                .trim()
                .split("->")
                .next()
                .and_then(|a| a.rsplit(':').next())
            else {
                continue;
            };
            let (a, b) = published.split_once('-').unwrap_or((published, published));
            if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                out.extend(a..=b);
            }
        }
    }
    out
}

/// A project in a temporary directory that uses the repository's images and templates, with
/// the given environment files (copied from the repository's environments/, each with a
/// `stack:` unique to the run, `twiptest<run id>_TAG_ENV`, so tests never touch a user's
/// stacks or another run's).
pub struct TestProject {
    pub dir: tempfile::TempDir,
    pub stacks: Vec<String>,
}

impl TestProject {
    pub fn new(envs: &[&str], tag: &str) -> TestProject {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&repo().join("images"), &dir.path().join("images"));
        std::fs::create_dir(dir.path().join("environments")).unwrap();
        let mut stacks = Vec::new();
        for e in envs {
            let text =
                std::fs::read_to_string(repo().join(format!("environments/{e}.yaml"))).unwrap();
            let stack = test_stack(&format!("{tag}_{e}"));
            std::fs::write(
                dir.path().join(format!("environments/{e}.yaml")),
                format!("{text}\nstack: {stack}\n"),
            )
            .unwrap();
            stacks.push(stack);
        }
        TestProject { dir, stacks }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write_env(&self, name: &str, text: &str) {
        std::fs::write(self.path().join(format!("environments/{name}.yaml")), text).unwrap();
    }

    /// `twip --project-dir DIR ARGS...` with the test's variables.
    pub fn twip(&self, args: &[&str]) -> std::process::Output {
        self.twip_with(&[], args)
    }

    /// The same with more variables set.
    pub fn twip_with(&self, vars: &[(&str, &str)], args: &[&str]) -> std::process::Output {
        let mut cmd = twip();
        cmd.arg("--project-dir").arg(self.path()).args(args);
        for (k, v) in test_vars() {
            cmd.env(k, v);
        }
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.timeout(std::time::Duration::from_secs(600));
        cmd.output().unwrap()
    }
}

impl Drop for TestProject {
    /// Remove every stack the test made, also when it failed.
    fn drop(&mut self) {
        remove_stacks(&self.stacks);
    }
}

/// Removes what is labelled as part of each stack: services first, then (once their tasks
/// are gone) configs, secrets, networks and volumes.
pub fn remove_stacks(stacks: &[String]) {
    for stack in stacks {
        let f = format!("label=com.docker.stack.namespace={stack}");
        let services = list(&["service", "ls", "-q", "--filter", &f]);
        if !services.is_empty() {
            docker(&["service", "rm"]).args(&services).output().ok();
        }
    }
    // The tasks' containers hold the networks and volumes: wait until they are gone.
    eventually(60, || {
        stacks
            .iter()
            .all(|s| {
                list(&[
                    "ps",
                    "-q",
                    "--filter",
                    &format!("label=com.docker.stack.namespace={s}"),
                ])
                .is_empty()
            })
            .then_some(())
    });
    for stack in stacks {
        let f = format!("label=com.docker.stack.namespace={stack}");
        for (kind, rm) in [
            ("config", "rm"),
            ("secret", "rm"),
            ("network", "rm"),
            ("volume", "rm"),
        ] {
            for _ in 0..20 {
                let ids = list(&[kind, "ls", "-q", "--filter", &f]);
                if ids.is_empty() {
                    break;
                }
                docker(&[kind, rm]).args(&ids).output().ok();
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
        }
    }
}

/// Variables the project's manifests read, set for tests: this run's free ports (see
/// [`ports`]), and the offline base image.
pub fn test_vars() -> Vec<(&'static str, String)> {
    vec![
        ("TWIP_HTTP_PORT", ports().http.to_string()),
        ("TWIP_STATS_PORT", ports().stats.to_string()),
        (
            "TWIP_BASE_IMAGE",
            std::env::var("TWIP_TEST_BASE_IMAGE").unwrap_or_else(|_| "twip/base:bookworm".into()),
        ),
    ]
}

/// What is left on the engine labelled as part of STACK (services, networks, configs, secrets).
pub fn labelled_leftovers(stack: &str) -> Vec<String> {
    let f = format!("label=com.docker.stack.namespace={stack}");
    let mut left = Vec::new();
    for kind in ["service", "network", "config", "secret"] {
        for id in list(&[kind, "ls", "-q", "--filter", &f]) {
            left.push(format!("{kind} {id}"));
        }
    }
    left
}

pub fn docker(args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new("docker");
    c.args(args);
    c
}

/// Lines of `docker ARGS` output.
pub fn list(args: &[&str]) -> Vec<String> {
    let out = docker(args).output().expect("docker CLI");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The engine answers and is a swarm manager (initialised here when it is not in a swarm).
/// Fails, rather than skips, when no engine answers: CI starts one (scripts/engine-up.sh).
/// Test binaries run side by side (scripts/run-tests.sh): when another one initialised the
/// swarm first, `swarm init` fails and the swarm is active all the same.
pub fn require_swarm() {
    let state = swarm_state();
    if state.starts_with("inactive") {
        let init = docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"])
            .output()
            .unwrap();
        // Another binary's init may still be under way: wait for it (generously).
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut now = swarm_state();
        while !init.status.success() && now != "active true" && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(500));
            now = swarm_state();
        }
        assert!(
            init.status.success() || now == "active true",
            "swarm init: {} (the engine's swarm: {now})",
            String::from_utf8_lossy(&init.stderr)
        );
    } else {
        assert_eq!(state, "active true", "the engine must be a swarm manager");
    }
}

/// `LocalNodeState ControlAvailable` of the engine's swarm (`active true` for a manager).
fn swarm_state() -> String {
    let out = docker(&[
        "info",
        "--format",
        "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}",
    ])
    .output()
    .expect("docker CLI");
    assert!(
        out.status.success(),
        "no Docker engine answers: run scripts/engine-up.sh (scripts/test.sh does)\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Status, headers (lower-case names) and body of a reply.
pub type Reply = (u16, Vec<(String, String)>, String);

/// One HTTP request to 127.0.0.1:PORT, with `curl`-free std networking.
pub fn http(port: u16, method: &str, path: &str, body: &str) -> Option<Reply> {
    http_at("127.0.0.1", port, method, path, body)
}

/// One HTTP request to HOST:PORT (5 s to connect, 10 s to answer).
pub fn http_at(host: &str, port: u16, method: &str, path: &str, body: &str) -> Option<Reply> {
    use std::io::{Read, Write};
    let addr: std::net::SocketAddr = format!("{host}:{port}").parse().ok()?;
    let mut s =
        std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok()?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    Some((status, headers, body.to_string()))
}

pub fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Runs `change` while `twip bench --rate 500` loads URL over 50 connections, and returns
/// the bench's JSON report. The order of events is what counts, not seconds: the bench has
/// connections open to the target and the target answers before `change` starts; after
/// `change` returns, `settled` must become true (polled, up to 3 minutes: e.g. the old tasks
/// are gone) and the target must answer 20 more requests before the bench is stopped. The
/// report must show enough load to judge.
pub fn bench_during(
    url: &str,
    change: impl FnOnce(),
    mut settled: impl FnMut() -> bool,
) -> serde_json::Value {
    use std::process::{Command, Stdio};
    let target = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let (host, port) = match target.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse::<u16>().unwrap()),
        None => (target.clone(), 80),
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_twip"))
        .args([
            "bench",
            url,
            "-z",
            "900s",
            "-c",
            "50",
            // A steady offered load, not a saturating one: the change is under test, not
            // how a single replica on a 2-core machine shared with 3 lab nodes takes
            // overload (once, unthrottled, the proxy's health checks of the one replica
            // failed under it and it answered 503s). A lost request still shows: 500 per
            // second is one every 2 ms.
            "--rate",
            "500",
            "--timeout",
            "10s",
            "--json",
        ])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("twip bench starts");
    let pid = child.id();
    // 1. The bench has connections open to the target, and the target answers.
    let connected = eventually(120, || {
        (bench_connections(pid, port) > 0
            && (0..5).all(|_| http_at(&host, port, "GET", "/", "").is_some_and(|r| r.0 == 200)))
        .then_some(())
    });
    if connected.is_none() {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!(
            "twip bench never had a connection open to {target} (or the target did not answer): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // 2. The change.
    change();
    // 3. Settled, then 20 more answers with the bench still running.
    let done = eventually(180, || settled().then_some(()));
    let after = eventually(60, || {
        (0..20)
            .all(|_| http_at(&host, port, "GET", "/", "").is_some_and(|r| r.0 == 200))
            .then_some(())
    });
    let still_running = matches!(child.try_wait(), Ok(None));
    // Ctrl-C: bench stops and prints the report of what ran.
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bench JSON: {e}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert!(
        done.is_some(),
        "the change did not settle within 3 minutes: {report}"
    );
    assert!(
        after.is_some(),
        "{target} did not answer 20 requests in a row after the change: {report}"
    );
    assert!(
        still_running && report["interrupted"] == true,
        "the bench ended before the change had settled: {report}"
    );
    assert!(
        report["responses"].as_u64().unwrap_or(0) > 200,
        "too little load to judge: {report}"
    );
    report
}

/// Established TCP connections of process PID to a remote PORT (`ss -tnp`).
fn bench_connections(pid: u32, port: u16) -> usize {
    let out = std::process::Command::new("ss")
        .args(["-Htnp", "state", "established"])
        .arg(format!("( dport = :{port} )"))
        .output()
        .expect("ss (iproute2)");
    let me = format!("pid={pid},");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&me))
        .count()
}

/// Failed requests of a bench report, counted every way the report allows, the largest of:
/// its `failed` total; the sum of every kind in `errors` (so a kind a later bench adds is
/// counted too); every response whose status is not 2xx or 3xx; requests that got no
/// response. `u64::MAX` when the report has no `failed` total.
pub fn failed(r: &serde_json::Value) -> u64 {
    let Some(total) = r["failed"].as_u64() else {
        return u64::MAX;
    };
    let errors: u64 = r["errors"]
        .as_object()
        .map(|m| m.values().map(|v| v.as_u64().unwrap_or(u64::MAX)).sum())
        .unwrap_or(0);
    let bad_status: u64 = r["status_codes"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(code, _)| !(code.starts_with('2') || code.starts_with('3')))
                .map(|(_, v)| v.as_u64().unwrap_or(u64::MAX))
                .sum()
        })
        .unwrap_or(0);
    let unanswered = r["requests"]
        .as_u64()
        .zip(r["responses"].as_u64())
        .map(|(q, a)| q.saturating_sub(a))
        .unwrap_or(0);
    total.max(errors).max(bad_status).max(unanswered)
}

/// Polls until `n` answers in a row from `get` all carry `version` (up to `secs` seconds);
/// the last sample otherwise (for the message), which then has fewer answers or another version.
pub fn only_version(
    secs: u64,
    n: usize,
    version: &str,
    mut get: impl FnMut() -> Option<String>,
) -> Result<(), Vec<Option<String>>> {
    let mut last = Vec::new();
    let ok = eventually(secs, || {
        last = (0..n).map(|_| get()).collect::<Vec<_>>();
        (last.len() == n && last.iter().all(|v| v.as_deref() == Some(version))).then_some(())
    });
    ok.ok_or(last)
}

/// Retries `f` for up to `secs` seconds until it returns Some.
pub fn eventually<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}
