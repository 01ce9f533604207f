//! Labs for the integration tests: a docker-in-docker swarm made and removed by a test, and
//! a project whose images are built for it.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use super::*;

pub const NODE_IMAGE: &str = "twip/lab-node:bookworm";

/// A lab made by a test, removed (containers, volumes, network) when dropped.
pub struct TestLab {
    pub name: String,
    pub dir: tempfile::TempDir,
}

impl TestLab {
    pub fn new(tag: &str) -> TestLab {
        require_engine();
        let name = format!("t{}{tag}", std::process::id());
        TestLab {
            name,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn state_dir(&self) -> &Path {
        self.dir.path()
    }

    /// `twip ARGS` with this lab's endpoints directory.
    pub fn twip(&self, args: &[&str]) -> Output {
        self.twip_in(None, args)
    }

    pub fn twip_in(&self, project: Option<&Path>, args: &[&str]) -> Output {
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

    pub fn up(&self, nodes: u32) -> Output {
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

    pub fn status(&self) -> serde_json::Value {
        let out = self.twip(&["lab", "status", "--name", &self.name, "--json"]);
        assert!(out.status.success(), "lab status: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).expect("lab status --json prints JSON")
    }

    /// What the local engine still has of this lab.
    pub fn leftovers(&self) -> Vec<String> {
        leftovers(&self.name)
    }
}

pub fn leftovers(name: &str) -> Vec<String> {
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
pub fn require_engine() {
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

pub fn nodes_of(status: &serde_json::Value) -> Vec<serde_json::Value> {
    status["nodes"].as_array().cloned().unwrap_or_default()
}

/// GET http://ADDR/PATH with `Connection: close`: the status code, or None when nothing
/// answered within 5 s.
pub fn get(addr: &str, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let sock: std::net::SocketAddr = format!("{addr}:80").parse().ok()?;
    let mut s = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace().nth(1)?.parse().ok()
}

/// `docker -H ENGINE ARGS` lines.
pub fn on(engine: &str, args: &[&str]) -> Vec<String> {
    let mut a = vec!["-H", engine];
    a.extend_from_slice(args);
    list(&a)
}

/// A project with the repository's environments and images, and `labscaled`: the scaled
/// environment with images named for this test run, built for this machine only and without
/// monitoring (Prometheus cannot be pulled here).
pub struct LabProject {
    pub dir: tempfile::TempDir,
    pub namespace: String,
    /// Images this value built (and removes when dropped).
    pub built: std::cell::RefCell<Vec<String>>,
}

impl LabProject {
    pub fn new() -> LabProject {
        let dir = tempfile::tempdir().unwrap();
        super::copy_dir(&repo().join("images"), &dir.path().join("images"));
        std::fs::create_dir(dir.path().join("environments")).unwrap();
        for e in ["training", "production", "scaled"] {
            std::fs::copy(
                repo().join(format!("environments/{e}.yaml")),
                dir.path().join(format!("environments/{e}.yaml")),
            )
            .unwrap();
        }
        let namespace = format!("twiplab{}", std::process::id());
        std::fs::write(
            dir.path().join("environments/labscaled.yaml"),
            format!(
                "extends: scaled\nstack: labscaled\nregistry:\n  url: 127.0.0.1:5000\n  namespace: {namespace}\nmonitoring:\n  enabled: false\n"
            ),
        )
        .unwrap();
        LabProject {
            dir,
            namespace,
            built: std::cell::RefCell::new(Vec::new()),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn image(&self, name: &str, tag: &str) -> String {
        format!("127.0.0.1:5000/{}/{name}:{tag}", self.namespace)
    }

    /// The stack's three images, built for this machine with plain `docker build`.
    pub fn build_images(&self) {
        for (name, tag) in [("static", "latest"), ("web", "1.0.0"), ("proxy", "latest")] {
            self.build(name, tag);
        }
    }

    /// One of the repository's images as `NAME:TAG`, built with `VERSION=TAG` when TAG is a
    /// version (the web app reports it in `X-App-Version`).
    pub fn build(&self, name: &str, tag: &str) {
        let image = self.image(name, tag);
        self.built.borrow_mut().push(image.clone());
        let version = if tag == "latest" { "1.0.0" } else { tag };
        let out = docker(&[
            "build",
            "-q",
            "--build-arg",
            "BASE=twip/base:bookworm",
            "--build-arg",
            &format!("VERSION={version}"),
            "-t",
            &image,
        ])
        .arg(repo().join("images").join(name))
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "docker build {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for LabProject {
    /// Removes the images it built and every other image of its namespace (the agent's image
    /// that `twip up` built and tagged for the lab's registry).
    fn drop(&mut self) {
        let prefix = format!("127.0.0.1:5000/{}/", self.namespace);
        let mut doomed: Vec<String> = self.built.borrow().clone();
        for r in list(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]) {
            if r.starts_with(&prefix) && !doomed.contains(&r) {
                doomed.push(r);
            }
        }
        for image in &doomed {
            docker(&["rmi", "-f", image]).output().ok();
        }
    }
}
