//! Shared helpers for the integration tests.
#![allow(dead_code)]

pub mod example;
pub mod lab;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use twip::manifest::interp::Vars;
use twip::manifest::{Environment, Loader};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
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

/// A project in a temporary directory that uses the repository's images and templates, with
/// the given environment files (copied from the repository's environments/, each with a
/// unique `stack:` so tests never touch a user's stacks).
pub struct TestProject {
    pub dir: tempfile::TempDir,
    pub stacks: Vec<String>,
}

impl TestProject {
    pub fn new(envs: &[&str], tag: &str) -> TestProject {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(repo().join("images"), dir.path().join("images")).unwrap();
        std::fs::create_dir(dir.path().join("environments")).unwrap();
        let mut stacks = Vec::new();
        for e in envs {
            let text =
                std::fs::read_to_string(repo().join(format!("environments/{e}.yaml"))).unwrap();
            let stack = format!("twiptest_{tag}_{e}");
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
        for stack in &self.stacks {
            docker(&["service", "rm"])
                .args(list(&[
                    "service",
                    "ls",
                    "-q",
                    "--filter",
                    &format!("label=com.docker.stack.namespace={stack}"),
                ]))
                .output()
                .ok();
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
        for stack in &self.stacks {
            let f = format!("label=com.docker.stack.namespace={stack}");
            for (kind, rm) in [
                ("config", "rm"),
                ("secret", "rm"),
                ("network", "rm"),
                ("volume", "rm"),
            ] {
                for _ in 0..10 {
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
}

/// Variables the project's manifests read, set for tests: ports that do not collide with a
/// user's, and the offline base image.
pub fn test_vars() -> Vec<(&'static str, String)> {
    vec![
        (
            "TWIP_HTTP_PORT",
            std::env::var("TWIP_TEST_HTTP_PORT").unwrap_or_else(|_| "28080".into()),
        ),
        (
            "TWIP_STATS_PORT",
            std::env::var("TWIP_TEST_STATS_PORT").unwrap_or_else(|_| "29360".into()),
        ),
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
pub fn require_swarm() {
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
    let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if state.starts_with("inactive") {
        let init = docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"])
            .output()
            .unwrap();
        assert!(
            init.status.success(),
            "swarm init: {}",
            String::from_utf8_lossy(&init.stderr)
        );
    } else {
        assert_eq!(state, "active true", "the engine must be a swarm manager");
    }
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

/// Runs `change` while `twip bench` loads URL at 50 connections (from 2 s before the change to
/// 3 s after it); returns the bench's JSON report, which must show enough load to judge.
pub fn bench_during(url: &str, change: impl FnOnce()) -> serde_json::Value {
    use std::process::{Command, Stdio};
    let child = Command::new(env!("CARGO_BIN_EXE_twip"))
        .args([
            "bench",
            url,
            "-z",
            "600s",
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
    std::thread::sleep(std::time::Duration::from_secs(2));
    change();
    std::thread::sleep(std::time::Duration::from_secs(3));
    // Ctrl-C: bench stops and prints the report of what ran.
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bench JSON: {e}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert!(
        report["responses"].as_u64().unwrap_or(0) > 200,
        "too little load to judge: {report}"
    );
    report
}

/// Failed requests of a bench report (all of them when the report has no count).
pub fn failed(r: &serde_json::Value) -> u64 {
    r["failed"].as_u64().unwrap_or(u64::MAX)
}

/// Retries `f` for up to `secs` seconds until it returns Some.
pub fn eventually<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}
