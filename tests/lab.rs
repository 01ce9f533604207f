//! `twip lab`, `twip swarm join|leave` and `twip bootstrap` on real docker-in-docker nodes.
//! Needs the local engine and the offline images of scripts/make-lab-node.sh (engine-up.sh
//! builds them); fails, rather than skips, when they are missing. Every test makes its own lab
//! (a unique name, its own endpoints directory) and removes it when it ends, also on failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Mutex;
use std::time::Duration;

use common::lab::*;
use common::*;

/// Labs are light (a few seconds each) but stacks on them are not: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

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

/// Every output of every command, and every file twip wrote, for the token check.
#[derive(Default)]
struct Captured(Vec<String>);

impl Captured {
    fn keep(&mut self, o: &Output) -> String {
        let text = format!("{}{}", stdout(o), stderr(o));
        self.0.push(text.clone());
        text
    }

    fn keep_files(&mut self, dir: &Path) {
        for e in walk(dir) {
            if let Ok(t) = std::fs::read(&e) {
                self.0.push(String::from_utf8_lossy(&t).to_string());
            }
        }
    }

    fn assert_free_of(&self, secret: &str, what: &str) {
        assert!(secret.len() > 20, "a real {what}: {secret}");
        for (i, t) in self.0.iter().enumerate() {
            assert!(!t.contains(secret), "the {what} appears in capture {i}");
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_symlink() {
            continue;
        }
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn scaled_on_a_lab_places_tasks_answers_everywhere_and_leave_moves_tasks() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = TestLab::new("s");
    let project = LabProject::new();
    let mut cap = Captured::default();
    let up = lab.up(3);
    cap.keep(&up);
    let st = lab.status();
    let nodes = nodes_of(&st);
    let addr: Vec<String> = nodes
        .iter()
        .map(|n| n["address"].as_str().unwrap().to_string())
        .collect();
    let manager = nodes[0]["engine"].as_str().unwrap().to_string();
    let p = Some(project.path());

    // The manifest's node labels, through `swarm join` (every node already in: skipped).
    let join = lab.twip_in(p, &["swarm", "join", "labscaled", "--lab", &lab.name]);
    let text = cap.keep(&join);
    assert!(join.status.success(), "{text}");
    assert!(text.contains("is already in this swarm"), "{text}");
    let labels: Vec<String> = nodes_of(&lab.status())
        .iter()
        .map(|n| n["labels"]["tier"].as_str().unwrap_or("-").to_string())
        .collect();
    assert_eq!(labels, ["edge", "app", "app"]);
    let again = lab.twip_in(p, &["swarm", "join", "labscaled", "--lab", &lab.name]);
    let text = cap.keep(&again);
    assert!(again.status.success(), "{text}");
    assert!(text.contains("nothing to do"), "{text}");

    // up: images go to every node, tasks land where the placement rules say.
    project.build_images();
    let up = lab.twip_in(
        p,
        &["up", "labscaled", "--lab", &lab.name, "--timeout", "4m"],
    );
    let text = cap.keep(&up);
    assert!(up.status.success(), "twip up --lab failed:\n{text}");
    assert!(text.contains(&format!("http://{}/", addr[0])), "{text}");
    let hosts = |svc: &str| -> Vec<String> {
        let mut h = on(
            &manager,
            &[
                "service",
                "ps",
                "--filter",
                "desired-state=running",
                "--format",
                "{{.Node}}",
                &format!("labscaled_{svc}"),
            ],
        );
        h.sort();
        h
    };
    let (m, w1, w2) = (
        format!("{}-manager-1", lab.name),
        format!("{}-worker-1", lab.name),
        format!("{}-worker-2", lab.name),
    );
    // web: tier == app only, at most 2 per node: two on each worker.
    assert_eq!(
        hosts("web"),
        [w1.clone(), w1.clone(), w2.clone(), w2.clone()]
    );
    // static: spread over the tier label, one per node: one edge, one app.
    let st_hosts = hosts("static");
    assert_eq!(st_hosts.len(), 2, "{st_hosts:?}");
    assert!(st_hosts.contains(&m), "{st_hosts:?}");
    // proxy: global.
    assert_eq!(hosts("proxy"), [m.clone(), w1.clone(), w2.clone()]);
    // The app and the static files answer through the proxy on every node.
    for a in &addr {
        for path in ["/", "/styles/site.css"] {
            let code = eventually(60, || get(a, path).filter(|c| *c == 200));
            assert_eq!(code, Some(200), "GET http://{a}{path}");
        }
    }
    let t = lab.twip_in(p, &["test", "labscaled", "--lab", &lab.name]);
    let text = cap.keep(&t);
    assert!(t.status.success(), "{text}");
    let s = lab.twip_in(p, &["status", "labscaled", "--lab", &lab.name, "--json"]);
    cap.keep(&s);
    assert!(s.status.success(), "{}", stderr(&s));
    let status: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
    // The app, the static files, the proxy, and the agent (the autoscale policy runs in it).
    let mut services: Vec<&str> = status["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    services.sort();
    assert_eq!(
        services,
        [
            "labscaled_agent",
            "labscaled_proxy",
            "labscaled_static",
            "labscaled_web"
        ],
        "{status:#}"
    );

    // leave: requests through the manager's proxy from before worker-2 is drained and
    // removed (20 answered) until after (20 more answered once `leave` returned).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let loader = {
        let (stop, answered) = (stop.clone(), answered.clone());
        let a = addr[0].clone();
        std::thread::spawn(move || {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for path in ["/", "/styles/site.css"] {
                    match get(&a, path) {
                        Some(200) => {
                            ok += 1;
                            answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        other => failed.push(format!("{path}: {other:?}")),
                    }
                }
            }
            (ok, failed)
        })
    };
    let answered_now = || answered.load(std::sync::atomic::Ordering::Relaxed);
    let started = eventually(60, || (answered_now() >= 20).then_some(()));
    let leave = lab.twip_in(
        p,
        &[
            "swarm",
            "leave",
            "labscaled",
            "--lab",
            &lab.name,
            "--node",
            "worker-2",
        ],
    );
    let at_leave = answered_now();
    let after = eventually(60, || (answered_now() >= at_leave + 20).then_some(()));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = loader.join().unwrap();
    assert!(started.is_some(), "no 20 answers before the leave");
    assert!(after.is_some(), "no 20 answers after the leave");
    let text = cap.keep(&leave);
    assert!(leave.status.success(), "{text}");
    assert!(text.contains("removed from the swarm"), "{text}");
    assert!(ok > 20, "only {ok} requests went through");
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {failed:?}",
        failed.len(),
        ok as usize + failed.len()
    );
    // Nothing runs on worker-2 any more; static moved, web runs short (no other app node).
    assert!(!hosts("static").contains(&w2), "{:?}", hosts("static"));
    assert!(!hosts("web").contains(&w2), "{:?}", hosts("web"));
    assert!(
        text.contains("labscaled_web cannot place all its replicas"),
        "{text}"
    );
    let node_names = on(&manager, &["node", "ls", "--format", "{{.Hostname}}"]);
    assert!(!node_names.contains(&w2), "{node_names:?}");

    // No join token in anything twip printed or wrote.
    cap.keep_files(lab.state_dir());
    cap.keep_files(project.path());
    for role in ["worker", "manager"] {
        let token = on(&manager, &["swarm", "join-token", "-q", role]).join("");
        cap.assert_free_of(&token, &format!("{role} join token"));
    }

    let down = lab.twip(&["lab", "down", "--name", &lab.name]);
    assert!(down.status.success(), "{}", stderr(&down));
    assert_eq!(lab.leftovers(), Vec::<String>::new());
}

#[test]
fn join_refuses_a_node_of_another_swarm() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = TestLab::new("o");
    let project = LabProject::new();
    lab.up(3);
    let nodes = nodes_of(&lab.status());
    let manager = nodes[0]["engine"].as_str().unwrap().to_string();
    let w2 = nodes[2]["engine"].as_str().unwrap().to_string();
    // worker-2 leaves and starts a swarm of its own.
    let id = on(&w2, &["info", "--format", "{{.Swarm.NodeID}}"]).join("");
    on(&w2, &["swarm", "leave"]);
    on(&manager, &["node", "rm", "--force", &id]);
    let addr = nodes[2]["address"].as_str().unwrap();
    on(&w2, &["swarm", "init", "--advertise-addr", addr]);
    let out = lab.twip_in(
        Some(project.path()),
        &["swarm", "join", "labscaled", "--lab", &lab.name],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("worker-2") && err.contains("is in another swarm"),
        "{err}"
    );
    // Nothing was changed: no labels were applied.
    let labels: Vec<serde_json::Value> = nodes_of(&lab.status())
        .iter()
        .map(|n| n["labels"].clone())
        .collect();
    assert_eq!(labels[0], serde_json::json!({}), "{labels:?}");
}

#[test]
fn plain_tcp_to_a_remote_engine_is_refused_outside_a_lab() {
    let project = LabProject::new();
    let out = twip()
        .arg("--project-dir")
        .arg(project.path())
        .args(["status", "labscaled", "--host", "tcp://10.99.0.11:2375"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("refusing plain TCP"),
        "{}",
        stderr(&out)
    );
    // --lab and --host together are a usage error.
    let out = twip()
        .arg("--project-dir")
        .arg(project.path())
        .args([
            "status",
            "labscaled",
            "--host",
            "tcp://10.99.0.11:2375",
            "--lab",
            "x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--host and --lab both say where the engine is; give one of them"),
        "{}",
        stderr(&out)
    );
}

/// `twip bootstrap ENV --print|--cloud-init` in a project with one more environment.
fn bootstrap_print(project: &LabProject, env_yaml: Option<&str>, args: &[&str]) -> Output {
    if let Some(y) = env_yaml {
        std::fs::write(project.path().join("environments/boot.yaml"), y).unwrap();
    }
    let mut cmd = twip();
    cmd.arg("--project-dir")
        .arg(project.path())
        .arg("bootstrap")
        .args(args);
    cmd.output().unwrap()
}

#[test]
fn bootstrap_prints_a_script_and_cloud_init_without_a_token() {
    let project = LabProject::new();
    let out = bootstrap_print(&project, None, &["scaled", "--print"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let script = stdout(&out);
    assert!(script.starts_with("#!/bin/sh\n"), "{script}");
    assert!(script.contains("apt_install docker.io"), "{script}");
    assert!(script.contains("\"max-size\": \"10m\""), "{script}");
    assert!(
        script.contains("PORTS='2377/tcp 7946/tcp 7946/udp 4789/udp'"),
        "{script}"
    );
    assert!(
        !script.contains("tlsverify"),
        "no TLS for an environment on ssh://"
    );
    assert!(
        !script.contains("SWMTKN") && !script.contains("--token"),
        "{script}"
    );
    // It is valid sh.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("b.sh");
    std::fs::write(&f, &script).unwrap();
    let syntax = std::process::Command::new("sh")
        .arg("-n")
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );

    let out = bootstrap_print(&project, None, &["scaled", "--cloud-init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ci = stdout(&out);
    assert!(ci.starts_with("#cloud-config\n"), "{ci}");
    assert!(ci.contains("      apt_install docker.io"), "{ci}");
    assert!(
        ci.ends_with("runcmd:\n  - [sh, /usr/local/sbin/twip-bootstrap]\n"),
        "{ci}"
    );
    assert!(!ci.contains("SWMTKN"), "{ci}");

    // Docker's repository and TLS on 2376 when the environment reaches engines over TCP.
    let yaml = "engine:\n  host: tcp://10.0.0.5:2376\n  install: docker\n  tls:\n    ca: ca.pem\n    cert: cert.pem\n    key: key.pem\nnodes:\n  - name: m\n    address: 10.0.0.5\n    role: manager\nservices:\n  web:\n    image: nginx:1\n";
    let out = bootstrap_print(&project, Some(yaml), &["boot", "--print"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = stdout(&out);
    assert!(
        s.contains("apt_install docker-ce docker-ce-cli containerd.io"),
        "{s}"
    );
    assert!(s.contains("\"tcp://0.0.0.0:2376\""), "{s}");
    assert!(
        s.contains("PORTS='2377/tcp 7946/tcp 7946/udp 4789/udp 2376/tcp'"),
        "{s}"
    );
    assert!(s.contains("/etc/docker/tls/server-cert.pem"), "{s}");

    // A bad install source is a manifest error with its position.
    let bad = yaml.replace("install: docker", "install: snap");
    let out = bootstrap_print(&project, Some(&bad), &["boot", "--print"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("engine.install: `snap` is not one of: distribution, docker"),
        "{}",
        stderr(&out)
    );
    // Unknown hosts, and a token flag without --print, are usage errors.
    let out = bootstrap_print(&project, None, &["scaled", "nosuchhost", "--print"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no node `nosuchhost`"),
        "{}",
        stderr(&out)
    );
    let out = bootstrap_print(&project, None, &["scaled", "--join-token"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--join-token goes with --print or --cloud-init"),
        "{}",
        stderr(&out)
    );
}

const SSHD_IMAGE: &str = "twip/lab-sshd:bookworm";

/// A fresh Debian host with sshd and no Docker on the lab's network (removed with the lab:
/// it carries the lab's label).
fn start_fresh_host(lab: &TestLab, address: &str, pubkey: &str) -> String {
    let img = docker(&["image", "inspect", SSHD_IMAGE]).output().unwrap();
    assert!(
        img.status.success(),
        "{SSHD_IMAGE} is missing: run scripts/make-lab-node.sh (engine-up.sh does)"
    );
    let name = format!("{}-fresh-1", lab.name);
    let label = format!("io.twip.lab={}", lab.name);
    let vol = format!("{name}-docker");
    let v = docker(&["volume", "create", "--label", &label, &vol])
        .output()
        .unwrap();
    assert!(v.status.success());
    let out = docker(&[
        "run",
        "-d",
        "--privileged",
        "--name",
        &name,
        "--hostname",
        &name,
        "--label",
        &label,
        "--network",
        &format!("twip-lab-{}", lab.name),
        "--ip",
        address,
        "-v",
        &format!("{vol}:/var/lib/docker"),
        "-e",
        &format!("TWIP_AUTHORIZED_KEY={pubkey}"),
        SSHD_IMAGE,
    ])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // sshd listens once its host keys are made.
    let up = eventually(30, || {
        std::net::TcpStream::connect_timeout(
            &format!("{address}:22").parse().unwrap(),
            Duration::from_secs(1),
        )
        .ok()
    });
    assert!(up.is_some(), "sshd on {address} does not answer");
    name
}

#[test]
fn bootstrap_over_ssh_makes_a_fresh_host_a_ready_node_and_a_second_run_does_nothing() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = TestLab::new("b");
    let project = LabProject::new();
    let mut cap = Captured::default();
    cap.keep(&lab.up(1));
    let st = lab.status();
    let manager_addr = nodes_of(&st)[0]["address"].as_str().unwrap().to_string();
    let manager = format!("tcp://{manager_addr}:2375");
    let net = manager_addr.rsplit_once('.').unwrap().0.to_string();
    let fresh_addr = format!("{net}.20");

    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("id");
    let kg = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen");
    assert!(
        kg.status.success(),
        "{}",
        String::from_utf8_lossy(&kg.stderr)
    );
    let pubkey = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let host = start_fresh_host(&lab, &fresh_addr, pubkey.trim());
    let manifest = |strict: bool| {
        format!(
            "engine:\n  allow_plain_tcp: true\nnodes:\n  - name: manager-1\n    address: {manager_addr}\n    role: manager\n    engine: {manager}\n  - name: fresh-1\n    address: {fresh_addr}\n    role: worker\n    ssh:\n      user: root\n      identity_file: {}\n{}    labels:\n      tier: app\nservices:\n  app:\n    image: twip/base:bookworm\n",
            key.display(),
            if strict { "" } else { "      strict_host_key_checking: false\n" }
        )
    };
    std::fs::write(
        project.path().join("environments/strict.yaml"),
        manifest(true),
    )
    .unwrap();
    std::fs::write(
        project.path().join("environments/boot.yaml"),
        manifest(false),
    )
    .unwrap();
    let p = Some(project.path());

    // An unknown host key is refused (the manifest does not say otherwise); nothing runs there.
    let out = lab.twip_in(p, &["bootstrap", "strict", "fresh-1"]);
    let text = cap.keep(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("Host key verification failed"), "{text}");
    assert!(text.contains("host key of"), "{text}");
    let no_docker = docker(&["exec", &host, "sh", "-c", "command -v dockerd"])
        .output()
        .unwrap();
    assert!(!no_docker.status.success(), "nothing was installed");

    // Bootstrap: Docker from Debian's packages, started, joined with its role and labels.
    let out = lab.twip_in(p, &["bootstrap", "boot", "fresh-1"]);
    let text = cap.keep(&out);
    assert!(out.status.success(), "bootstrap failed:\n{text}");
    assert!(
        text.contains("fresh-1 | twip-bootstrap: changed: installed docker.io"),
        "{text}"
    );
    assert!(text.contains("fresh-1 joined as a worker"), "{text}");
    let nodes = on(
        &manager,
        &[
            "node",
            "ls",
            "--format",
            "{{.Hostname}} {{.Status}} {{.ManagerStatus}}",
        ],
    );
    assert!(nodes.contains(&format!("{host} Ready")), "{nodes:?}");
    let labels = on(
        &manager,
        &[
            "node",
            "inspect",
            &host,
            "--format",
            "{{.Spec.Labels.tier}}",
        ],
    );
    assert_eq!(labels, ["app"]);

    // A second run has nothing to do.
    let out = lab.twip_in(p, &["bootstrap", "boot", "fresh-1"]);
    let text = cap.keep(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("twip-bootstrap: done: 0 change(s)"), "{text}");
    assert!(text.contains("fresh-1: nothing to do"), "{text}");
    assert!(!text.contains("changed:"), "{text}");

    // Printed script and user-data hold no token, unless asked with --join-token.
    for args in [
        vec!["bootstrap", "boot", "--print"],
        vec!["bootstrap", "boot", "--cloud-init"],
    ] {
        cap.keep(&lab.twip_in(p, &args));
    }
    cap.keep_files(lab.state_dir());
    cap.keep_files(project.path());
    let worker_token = on(&manager, &["swarm", "join-token", "-q", "worker"]).join("");
    let manager_token = on(&manager, &["swarm", "join-token", "-q", "manager"]).join("");
    cap.assert_free_of(&worker_token, "worker join token");
    cap.assert_free_of(&manager_token, "manager join token");
    let asked = lab.twip_in(
        p,
        &["bootstrap", "boot", "fresh-1", "--print", "--join-token"],
    );
    assert!(asked.status.success(), "{}", stderr(&asked));
    assert!(stdout(&asked).contains(&worker_token));
    assert!(
        stderr(&asked).contains("keep it private"),
        "{}",
        stderr(&asked)
    );

    let down = lab.twip(&["lab", "down", "--name", &lab.name]);
    assert!(down.status.success(), "{}", stderr(&down));
    assert!(
        stderr(&down).contains("2 containers, 2 volumes"),
        "{}",
        stderr(&down)
    );
    assert_eq!(lab.leftovers(), Vec::<String>::new());
}
