//! The control plane through a dead manager, on a real docker-in-docker lab of 3 managers and
//! 1 worker: an environment converges; the container of the swarm's **leader** is killed; then,
//! with no flag pointing twip anywhere, `twip status --json` answers through another manager
//! and shows the dead node unreachable and down and a new leader, and `twip scale` and
//! `twip up` work and converge. `swarm leave` of a manager that would break quorum is refused.
//! One lab for the whole file (labs are slow). Needs the local engine and the offline lab
//! images (engine-up.sh builds them); fails, rather than skips, when they are missing.

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::lab::*;
use common::*;

/// The environment: production's stack on 3 managers and 1 worker, images from this run.
fn labha(namespace: &str) -> String {
    format!(
        "extends: production
stack: labha{pid}
registry:
  url: 127.0.0.1:5000
  namespace: {namespace}
engine:
  allow_plain_tcp: true
nodes:
  - {{name: manager-1, address: 10.10.0.11, role: manager}}
  - {{name: manager-2, address: 10.10.0.12, role: manager}}
  - {{name: manager-3, address: 10.10.0.13, role: manager}}
  - {{name: worker-1, address: 10.10.0.14, role: worker}}
services:
  web:
    replicas: 2
",
        pid = std::process::id()
    )
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", stdout(o), stderr(o)))
}

/// `twip status labha --lab L --json` until `ok` holds of its JSON (panics after `within`).
fn status_until(
    lab: &TestLab,
    p: &std::path::Path,
    within: Duration,
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let o = lab.twip_in(Some(p), &["status", "labha", "--lab", &lab.name, "--json"]);
        let last = if o.status.success() {
            let v = json(&o);
            if ok(&v) {
                return v;
            }
            format!("{v:#}")
        } else {
            stderr(&o)
        };
        assert!(
            Instant::now() < deadline,
            "{what}: not within {}s; last status:\n{last}",
            within.as_secs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn leader(v: &serde_json::Value) -> Option<String> {
    v["managers"]
        .as_array()?
        .iter()
        .find(|m| m["leader"] == true)
        .map(|m| m["name"].as_str().unwrap().to_string())
}

/// web's (running, desired). Known gap: the engine's running count can include a task on the
/// dead node until swarm moves it (seen once: 4 running of 3 desired), so checks below ask for
/// at least `desired` running, with `desired` exact.
fn web(v: &serde_json::Value) -> (u64, u64) {
    let s = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str().unwrap().ends_with("_web"))
        .unwrap_or_else(|| panic!("no web service: {v:#}"));
    (
        s["running"].as_u64().unwrap(),
        s["desired"].as_u64().unwrap(),
    )
}

#[test]
fn the_control_plane_survives_the_leaders_death() {
    let lab = TestLab::new("ha");
    let project = LabProject::new();
    let p = project.path();
    std::fs::write(p.join("environments/labha.yaml"), labha(&project.namespace)).unwrap();
    let up = lab.twip(&[
        "lab",
        "up",
        "--name",
        &lab.name,
        "--nodes",
        "4",
        "--managers",
        "3",
    ]);
    assert!(up.status.success(), "lab up: {}", stderr(&up));

    // Converged on the lab; three managers reachable, one leader, one more loss tolerated.
    project.build_images();
    let o = lab.twip_in(
        Some(p),
        &["up", "labha", "--lab", &lab.name, "--timeout", "5m"],
    );
    assert!(o.status.success(), "up:\n{}", stderr(&o));
    let st = json(&lab.twip_in(Some(p), &["status", "labha", "--lab", &lab.name, "--json"]));
    assert_eq!(st["managers"].as_array().unwrap().len(), 3, "{st:#}");
    assert_eq!(
        st["quorum"],
        serde_json::json!({"managers": 3, "reachable": 3, "needed": 2, "tolerates": 1}),
        "{st:#}"
    );
    assert_eq!(st["down"], serde_json::json!([]), "{st:#}");
    assert_eq!(web(&st), (2, 2), "{st:#}");
    let old = leader(&st).expect("a leader");
    assert!(old.starts_with(&format!("{}-manager-", lab.name)), "{old}");

    // Kill the leader's node (its container's name is its hostname).
    let kill = docker(&["kill", &old]).output().unwrap();
    assert!(
        kill.status.success(),
        "{}",
        String::from_utf8_lossy(&kill.stderr)
    );

    // No flag: status answers through another manager, with a new leader, the dead node
    // unreachable and then down, and quorum at its limit.
    let st = status_until(
        &lab,
        p,
        Duration::from_secs(180),
        "new leader, node down",
        |v| {
            let dead = v["managers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["name"] == old.as_str())
                .cloned()
                .unwrap_or_default();
            leader(v).is_some_and(|l| l != old)
                && dead["reachability"] == "unreachable"
                && v["down"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|d| d == old.as_str())
        },
    );
    let new = leader(&st).unwrap();
    eprintln!("leader {old} killed; new leader {new}");
    assert_eq!(
        st["quorum"],
        serde_json::json!({"managers": 3, "reachable": 2, "needed": 2, "tolerates": 0}),
        "{st:#}"
    );
    // The text says it, and -v says which manager answered and which was skipped.
    let o = lab.twip_in(Some(p), &["-v", "status", "labha", "--lab", &lab.name]);
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(o.status.success(), "{err}");
    assert!(out.contains(&format!("{new} reachable (leader)")), "{out}");
    assert!(out.contains(&format!("{old} unreachable")), "{out}");
    assert!(out.contains(&format!("down: {old}")), "{out}");
    assert!(
        err.contains("quorum: 2 of 3 reachable; losing one more manager stops the control plane"),
        "{err}"
    );
    assert!(
        err.contains(&format!("manager {old}")) && err.contains("skipped"),
        "{err}"
    );
    assert!(err.contains(&format!("manager {new} (tcp://")), "{err}");
    assert!(err.contains("answered"), "{err}");

    // Writes with no flag: scale and up converge through the new leader.
    let o = lab.twip_in(
        Some(p),
        &[
            "scale",
            "labha",
            "--lab",
            &lab.name,
            "web=3",
            "--timeout",
            "5m",
        ],
    );
    assert!(o.status.success(), "scale:\n{}", stderr(&o));
    let st = status_until(&lab, p, Duration::from_secs(180), "web 3/3", |v| {
        let (running, desired) = web(v);
        desired == 3 && running >= 3
    });
    assert_eq!(leader(&st).as_deref(), Some(new.as_str()));
    let o = lab.twip_in(
        Some(p),
        &["up", "labha", "--lab", &lab.name, "--timeout", "5m"],
    );
    let err = stderr(&o);
    assert!(o.status.success(), "up after the kill:\n{err}");
    assert!(err.contains("its engine does not answer"), "{err}");
    let st = status_until(&lab, p, Duration::from_secs(180), "web whole", |v| {
        let (running, desired) = web(v);
        running >= desired && desired >= 2
    });
    assert!(st["down"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d == old.as_str()));

    // The live follower: removing it would leave 1 of 2 reachable (refused, below).
    let other = (1..=3)
        .map(|i| format!("{}-manager-{i}", lab.name))
        .find(|m| *m != old && *m != new)
        .unwrap();
    // First a write through that follower (`--host` overrides the managers): swarm forwards
    // it to the leader, and it converges.
    let addr = st["managers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == other.as_str())
        .map(|m| m["address"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("{other} in {st:#}"));
    let host = format!("tcp://{addr}:2375");
    let o = lab.twip_in(
        Some(p),
        &[
            "--host",
            &host,
            "scale",
            "labha",
            "web=2",
            "--timeout",
            "5m",
        ],
    );
    assert!(o.status.success(), "scale through {other}:\n{}", stderr(&o));
    let st = status_until(&lab, p, Duration::from_secs(180), "web 2/2", |v| {
        let (running, desired) = web(v);
        desired == 2 && running >= 2
    });
    assert_eq!(leader(&st).as_deref(), Some(new.as_str()), "{st:#}");

    let o = lab.twip_in(
        Some(p),
        &[
            "swarm", "leave", "labha", "--lab", &lab.name, "--node", &other,
        ],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("leaves 1 of 2 managers reachable, 2 needed"),
        "{err}"
    );
    assert!(err.contains("would lose quorum"), "{err}");
    let st = json(&lab.twip_in(Some(p), &["status", "labha", "--lab", &lab.name, "--json"]));
    assert_eq!(st["quorum"]["managers"], 3, "{st:#}");
    assert_eq!(st["quorum"]["reachable"], 2, "{st:#}");
}

/// `swarm join` refuses an even number of managers before it reaches any engine (exit 2,
/// saying why); `--force` goes on (and then fails to reach these made-up engines: exit 1).
#[test]
fn an_even_number_of_managers_is_refused_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("environments")).unwrap();
    let mut yaml = String::from(
        "services:\n  web:\n    image: nginx:1.25\nengine:\n  allow_plain_tcp: true\nnodes:\n",
    );
    for i in 1..=4 {
        // Addresses of the documentation range: nothing answers there.
        yaml += &format!(
            "  - {{name: m{i}, address: 192.0.2.{i}, role: manager, engine: \"tcp://192.0.2.{i}:2375\"}}\n"
        );
    }
    std::fs::write(dir.path().join("environments/even.yaml"), yaml).unwrap();
    let run = |extra: &[&str]| {
        let mut cmd = twip();
        cmd.arg("--project-dir")
            .arg(dir.path())
            .args(["swarm", "join", "even"])
            .args(extra)
            .timeout(Duration::from_secs(120));
        cmd.output().unwrap()
    };
    let o = run(&[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("environment `even` lists 4 managers"), "{err}");
    assert!(err.contains("majority (3 of 4)"), "{err}");
    assert!(err.contains("use 3 or 5 managers"), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert!(
        !err.contains("cannot reach"),
        "refused before any engine: {err}"
    );

    let o = run(&["--force"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("joining them anyway (--force)"), "{err}");
    assert!(err.contains("no swarm manager answered"), "{err}");
    assert!(err.contains("m1 (tcp://192.0.2.1:2375)"), "{err}");
    assert!(err.contains("m4 (tcp://192.0.2.4:2375)"), "{err}");
}
