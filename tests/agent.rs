//! The in-cluster agent on a real engine (the single-node swarm): an environment with
//! `agent: {enabled: true}` → `twip up` builds the agent's image from this binary and deploys
//! `STACK_agent`; its container runs `twip agent` (its log says it started, `twip logs ENV
//! agent` shows it) and records its start, which `twip status` shows with the node; a killed
//! container is restarted by the swarm (a new container, a newer start record); `twip down`
//! removes the agent and its records. Everything the test makes carries its stack's label and
//! is removed at the end, also on failure.

mod common;

use common::{docker, eventually, list, require_swarm, twip};
use serde_json::Value;

struct Stack {
    dir: tempfile::TempDir,
    name: String,
}

const ENV: &str = "agentenv";

impl Stack {
    fn new() -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let name = common::test_stack("agent");
        std::fs::create_dir(dir.path().join("environments")).unwrap();
        std::fs::write(
            dir.path().join(format!("environments/{ENV}.yaml")),
            format!(
                "stack: {name}\nservices:\n  idle:\n    image: twip/base:bookworm\n    \
                 command: [\"sleep\", \"infinity\"]\n    stop_grace_period: 1s\n\
                 agent:\n  enabled: true\n"
            ),
        )
        .unwrap();
        Stack { dir, name }
    }

    fn twip(&self, args: &[&str]) -> std::process::Output {
        twip()
            .arg("--project-dir")
            .arg(self.dir.path())
            .args(args)
            .timeout(std::time::Duration::from_secs(400))
            .output()
            .unwrap()
    }

    fn agent(&self) -> String {
        format!("{}_agent", self.name)
    }

    /// The running containers of the agent's service on this engine.
    fn containers(&self) -> Vec<String> {
        let f = format!("label=com.docker.swarm.service.name={}", self.agent());
        list(&["ps", "-q", "--no-trunc", "--filter", &f])
    }

    fn status(&self) -> Value {
        let out = self.twip(&["status", ENV, "--json"]);
        assert!(out.status.success(), "{}", common::stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The `at` of the agent's own start record, when `twip status` shows it running.
    fn started_at(&self) -> Option<u64> {
        let st = self.status();
        let a = &st["agent"];
        if a["running"] != Value::Bool(true) {
            return None;
        }
        a["controllers"]
            .as_array()?
            .iter()
            .find(|r| r["controller"] == "agent")
            .and_then(|r| r["at"].as_u64())
    }

    fn records(&self) -> Vec<String> {
        let f = format!("label=com.docker.stack.namespace={}", self.name);
        list(&[
            "config",
            "ls",
            "-q",
            "--filter",
            &f,
            "--filter",
            "label=io.twip.record",
        ])
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let f = format!("label=com.docker.stack.namespace={}", self.name);
        let services = list(&["service", "ls", "-q", "--filter", &f]);
        if !services.is_empty() {
            docker(&["service", "rm"]).args(&services).output().ok();
        }
        eventually(120, || {
            list(&["ps", "-aq", "--filter", &f])
                .is_empty()
                .then_some(())
        });
        for kind in ["config", "secret", "network"] {
            eventually(60, || {
                let ids = list(&[kind, "ls", "-q", "--filter", &f]);
                if ids.is_empty() {
                    return Some(());
                }
                docker(&[kind, "rm"]).args(&ids).output().ok();
                None
            });
        }
    }
}

#[test]
fn up_deploys_the_agent_the_swarm_restarts_it_and_down_removes_it() {
    require_swarm();
    let s = Stack::new();

    let out = s.twip(&["up", ENV, "--timeout", "300s"]);
    let err = common::stderr(&out);
    assert!(out.status.success(), "twip up failed:\n{err}");
    assert!(
        err.contains(&format!("created service {}", s.agent())),
        "{err}"
    );

    // Its container runs `twip agent`, which says it started (no controller has work).
    let first =
        eventually(120, || s.containers().into_iter().next()).expect("the agent's container runs");
    let logs = eventually(60, || {
        let out = s.twip(&["logs", ENV, "agent"]);
        let text = common::stdout(&out);
        text.contains("started; no controller has work")
            .then_some(text)
    })
    .expect("`twip logs ENV agent` shows that the agent started");
    assert!(logs.contains(&format!("for stack {}", s.name)), "{logs}");

    // `twip status` shows it running, on this node, with its start record.
    let at1 = eventually(60, || s.started_at()).expect("status shows the agent's start");
    let st = s.status();
    let node = st["agent"]["node"].as_str().unwrap_or_default().to_string();
    assert!(!node.is_empty(), "{st}");
    let text = common::stdout(&s.twip(&["status", ENV]));
    assert!(
        text.contains(&format!("agent: running on {node}")),
        "{text}"
    );
    assert!(text.contains("  agent: started;"), "{text}");
    // Its config is mounted where `twip agent` reads it (through `twip exec ENV agent`).
    let out = s.twip(&["exec", ENV, "agent", "--", "cat", "/run/twip/agent.json"]);
    let config = common::stdout(&out);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(
        config.contains(&format!("\"stack\": \"{}\"", s.name)),
        "{config}"
    );

    // Killed, the swarm starts a new container; the new agent records a newer start.
    let kill = docker(&["kill", &first]).output().unwrap();
    assert!(kill.status.success(), "{}", common::stderr(&kill));
    let second = eventually(120, || s.containers().into_iter().find(|c| c != &first))
        .expect("the swarm restarts the agent");
    assert_ne!(second, first);
    let at2 = eventually(120, || s.started_at().filter(|at| *at > at1))
        .expect("status shows the restarted agent's start");
    assert!(at2 > at1);
    // One record per controller: the first start's was replaced.
    assert_eq!(s.records().len(), 1, "{:?}", s.records());

    // Down removes the agent and its records.
    let out = s.twip(&["down", ENV]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(list(&[
        "service",
        "ls",
        "-q",
        "--filter",
        &format!("name={}", s.agent())
    ])
    .is_empty());
    assert!(s.records().is_empty(), "{:?}", s.records());
    assert!(common::labelled_leftovers(&s.name).is_empty());
}

/// `twip agent` run by hand: it starts, records its start in the swarm, idles (answering a
/// request to a controller it does not run with an error), and SIGTERM ends it with exit 0
/// (as the swarm stops its task).
#[test]
fn the_agent_ends_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    require_swarm();
    let stack = common::test_stack("agentterm");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.json");
    std::fs::write(
        &config,
        format!("{{\"env\": \"agentterm\", \"stack\": \"{stack}\"}}"),
    )
    .unwrap();
    let cleanup = || {
        let f = format!("label=com.docker.stack.namespace={stack}");
        let ids = list(&["config", "ls", "-q", "--filter", &f]);
        if !ids.is_empty() {
            docker(&["config", "rm"]).args(&ids).output().ok();
        }
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_twip"))
        .args(["agent", "--config"])
        .arg(&config)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.contains("started; no controller has work") {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.contains("started;")),
        "the agent did not start: {seen:?}"
    );
    // Its start is recorded in the swarm under its stack.
    let f = format!("label=com.docker.stack.namespace={stack}");
    let recorded = eventually(30, || {
        let ids = list(&["config", "ls", "-q", "--filter", &f]);
        (!ids.is_empty()).then_some(ids)
    });
    // A request to a controller it does not run is answered at once with an error record
    // that carries the request's id, and removed (the agent looks every few seconds).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let engine = twip::engine::Docker::connect_with_local_defaults().unwrap();
    let request = twip::engine::requests::Request::new("certificates", true);
    let asked = rt
        .block_on(twip::engine::requests::ask(&engine, &stack, &request))
        .unwrap();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.contains("refused") {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.contains(&format!(
            "certificates: request {} refused: this agent runs no certificates controller",
            request.id
        ))),
        "{seen:?}"
    );
    let answer = eventually(30, || {
        rt.block_on(twip::engine::records::list(&engine, &stack))
            .unwrap()
            .into_iter()
            .find(|r| r.request.as_ref() == Some(&request.id))
    })
    .expect("the refusal is recorded with the request's id");
    assert!(answer.error, "{answer:?}");
    assert_eq!(answer.controller, "certificates");
    let pending = eventually(30, || {
        let p = rt
            .block_on(twip::engine::requests::list(&engine, &stack, None))
            .unwrap();
        p.is_empty().then_some(())
    });
    assert!(pending.is_some(), "the request {asked} was not removed");
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    cleanup();
    assert_eq!(recorded.map(|r| r.len()), Some(1), "{seen:?} {rest:?}");
    assert_eq!(status.code(), Some(0), "{seen:?} {rest:?}");
    assert!(rest.iter().any(|l| l.contains("stopping")), "{rest:?}");
}
