//! `twip lab`, `twip swarm join|leave` and `twip bootstrap` on real docker-in-docker nodes.
//! Needs the local engine and the offline images of scripts/make-lab-node.sh (engine-up.sh
//! builds them); fails, rather than skips, when they are missing. Every test makes its own lab
//! (a unique name, its own endpoints directory) and removes it when it ends, also on failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Mutex;
use std::time::Duration;

use common::*;

/// Labs are light (a few seconds each) but stacks on them are not: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const NODE_IMAGE: &str = "twip/lab-node:bookworm";

/// A lab made by a test, removed (containers, volumes, network) when dropped.
struct TestLab {
    name: String,
    dir: tempfile::TempDir,
}

impl TestLab {
    fn new(tag: &str) -> TestLab {
        require_engine();
        let name = format!("t{}{tag}", std::process::id());
        TestLab {
            name,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn state_dir(&self) -> &Path {
        self.dir.path()
    }

    /// `twip ARGS` with this lab's endpoints directory.
    fn twip(&self, args: &[&str]) -> Output {
        self.twip_in(None, args)
    }

    fn twip_in(&self, project: Option<&Path>, args: &[&str]) -> Output {
        let mut cmd = twip();
        if let Some(p) = project {
            cmd.arg("--project-dir").arg(p);
        }
        cmd.args(args)
            .env("TWIP_LAB_DIR", self.state_dir())
            .env_remove("TWIP_LAB_IMAGE")
            .timeout(Duration::from_secs(900));
        cmd.output().unwrap()
    }

    fn up(&self, nodes: u32) -> Output {
        let out = self.twip(&[
            "lab",
            "up",
            "--name",
            &self.name,
            "--nodes",
            &nodes.to_string(),
        ]);
        assert!(
            out.status.success(),
            "twip lab up failed:\n{}",
            stderr(&out)
        );
        out
    }

    fn status(&self) -> serde_json::Value {
        let out = self.twip(&["lab", "status", "--name", &self.name, "--json"]);
        assert!(out.status.success(), "lab status: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).expect("lab status --json prints JSON")
    }

    /// What the local engine still has of this lab.
    fn leftovers(&self) -> Vec<String> {
        leftovers(&self.name)
    }
}

fn leftovers(name: &str) -> Vec<String> {
    let f = format!("label=io.twip.lab={name}");
    let mut left = Vec::new();
    for (kind, args) in [
        ("container", vec!["ps", "-aq", "--filter", &f]),
        ("volume", vec!["volume", "ls", "-q", "--filter", &f]),
        ("network", vec!["network", "ls", "-q", "--filter", &f]),
    ] {
        for id in list(&args) {
            left.push(format!("{kind} {id}"));
        }
    }
    left
}

impl Drop for TestLab {
    /// Removes the lab with the docker CLI (not twip: a bug in twip must not leak labs).
    fn drop(&mut self) {
        let f = format!("label=io.twip.lab={}", self.name);
        let ids = list(&["ps", "-aq", "--filter", &f]);
        if !ids.is_empty() {
            docker(&["rm", "-f", "-v"]).args(&ids).output().ok();
        }
        let vols = list(&["volume", "ls", "-q", "--filter", &f]);
        if !vols.is_empty() {
            docker(&["volume", "rm", "-f"]).args(&vols).output().ok();
        }
        let nets = list(&["network", "ls", "-q", "--filter", &f]);
        if !nets.is_empty() {
            docker(&["network", "rm"]).args(&nets).output().ok();
        }
    }
}

/// The local engine answers and has the lab's node image. Fails (never skips) otherwise.
fn require_engine() {
    let out = docker(&["info", "--format", "{{.ServerVersion}}"])
        .output()
        .expect("docker CLI");
    assert!(
        out.status.success(),
        "no Docker engine answers: run scripts/engine-up.sh (scripts/test.sh does)\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let img = docker(&["image", "inspect", NODE_IMAGE]).output().unwrap();
    assert!(
        img.status.success(),
        "{NODE_IMAGE} is missing: run scripts/make-lab-node.sh (engine-up.sh does)"
    );
}

fn nodes_of(status: &serde_json::Value) -> Vec<serde_json::Value> {
    status["nodes"].as_array().cloned().unwrap_or_default()
}

#[test]
fn lab_up_status_down() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = TestLab::new("a");
    let up = lab.up(3);
    let err = stderr(&up);
    assert!(err.contains("✓ Initialise the swarm"), "{err}");

    // 1 manager and 2 workers, all Ready, found by their labels.
    let st = lab.status();
    let nodes = nodes_of(&st);
    let roles: Vec<&str> = nodes.iter().map(|n| n["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["manager", "worker", "worker"], "{st:#}");
    for n in &nodes {
        assert_eq!(n["container"], "running", "{st:#}");
        assert_eq!(n["swarm_state"], "ready", "{st:#}");
        assert!(n["engine"].as_str().unwrap().starts_with("tcp://10.99."));
    }
    assert_eq!(nodes[0]["name"], format!("{}-manager-1", lab.name));
    assert_eq!(nodes[2]["name"], format!("{}-worker-2", lab.name));

    // The endpoints file lists each node's engine and role.
    let file: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(lab.state_dir().join(format!("{}.json", lab.name))).unwrap(),
    )
    .unwrap();
    assert_eq!(file["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(file["nodes"][0]["role"], "manager");
    assert_eq!(file["nodes"][0]["engine"], nodes[0]["engine"]);

    // A second `up` of the same name refuses and changes nothing.
    let again = lab.twip(&["lab", "up", "--name", &lab.name]);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(stderr(&again).contains("exists"), "{}", stderr(&again));
    assert_eq!(nodes_of(&lab.status()).len(), 3);

    // down leaves no container, volume or network, and a second down has nothing to do.
    let down = lab.twip(&["lab", "down", "--name", &lab.name]);
    assert!(down.status.success(), "{}", stderr(&down));
    assert!(
        stderr(&down).contains("3 containers, 3 volumes, 1 network"),
        "{}",
        stderr(&down)
    );
    assert_eq!(lab.leftovers(), Vec::<String>::new());
    assert!(!lab.state_dir().join(format!("{}.json", lab.name)).exists());
    let again = lab.twip(&["lab", "down", "--name", &lab.name]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("nothing to remove"),
        "{}",
        stderr(&again)
    );
    let st = lab.twip(&["lab", "status", "--name", &lab.name]);
    assert_eq!(st.status.code(), Some(1));
}

#[test]
fn failed_lab_up_removes_what_it_made_unless_retain() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = TestLab::new("f");
    // An image without an engine: the containers are made, then cannot start.
    let bad = |retain: bool| {
        let mut args = vec!["lab", "up", "--name", &lab.name, "--nodes", "2"];
        if retain {
            args.push("--retain");
        }
        let mut cmd = twip();
        cmd.args(&args)
            .env("TWIP_LAB_DIR", lab.state_dir())
            .env("TWIP_LAB_IMAGE", "twip/base:bookworm")
            .timeout(Duration::from_secs(300));
        cmd.output().unwrap()
    };
    let out = bad(false);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("✗ Start 2 nodes"), "{err}");
    assert!(err.contains("removed what was made"), "{err}");
    assert_eq!(lab.leftovers(), Vec::<String>::new());

    let out = bad(true);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("--retain"), "{}", stderr(&out));
    assert!(!lab.leftovers().is_empty(), "--retain keeps the lab");
    let down = lab.twip(&["lab", "down", "--name", &lab.name]);
    assert!(down.status.success(), "{}", stderr(&down));
    assert_eq!(lab.leftovers(), Vec::<String>::new());
}

#[allow(dead_code)]
fn repo_path(p: &str) -> PathBuf {
    repo().join(p)
}
