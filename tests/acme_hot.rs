//! A renewed ACME certificate reaches the proxies live, without replacing their tasks, on the
//! single-node swarm with pebble and the REAL in-cluster agent (`agent: {enabled: true}`):
//!
//! 1. `twip up`: the agent obtains the first certificate (HTTP-01 through the proxy) and
//!    swaps it into the proxy through its runtime API; it is served (curl verifies it against
//!    pebble's root), the proxy's template still mounts the placeholder, its service's label
//!    names the served secret, and the agent's own service mounts it.
//! 2. Under a steady HTTPS load (4 curl loops, each request a new connection and a full TLS
//!    handshake, every failure counted), the manifest's `domains` change and `twip up` runs:
//!    the plan leaves the proxy alone, the agent restarts with its new config, obtains a
//!    certificate for the new names and swaps it in. The new serial is served for both names,
//!    0 requests fail, the proxy's tasks are the same ones.
//!    Still under that load, `twip certs renew ENV --force` asks the agent, which renews and
//!    swaps the new certificate in the same way: a third serial served, still 0 failed.
//! 3. A proxy task swarm starts later (`docker service update --force`) mounts the
//!    placeholder: the agent (itself restarted since, holding the served certificate from its
//!    own mount) swaps the served one into it.
//!
//! Measured (three runs, 4 loops, before step 2b): 4622, 5332 and 4790 requests answered
//! (2738, 3058 and 2677 of them between `twip up` and the new serial), 0 failed each time.
//! With step 2b: 6419 answered (3549 during the domain change, 236 between `certs renew
//! --force` and its serial being served), 0 failed.
//!
//! The negative control, the same load through a rolling update of the proxy (the fallback
//! delivery without an agent or runtime API), is tests/https.rs's
//! `negative_control_without_the_agent_the_rolling_update_fails_requests`: the ACME fallback
//! re-points the same proxy service's secret, the same rolling update.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use common::pebble::Pebble;
use common::*;

const A: &str = "a.acme-hot.test";
const B: &str = "b.acme-hot.test";
const ENV: &str = "acmehot";

fn https_port() -> u16 {
    ports().solo
}

fn inspect(service: &str, format: &str) -> String {
    let out = docker(&["service", "inspect", service, "--format", format])
        .output()
        .unwrap();
    stdout(&out).trim().to_string()
}

/// The secret SERVICE mounts at file TARGET.
fn mounted(service: &str, target: &str) -> String {
    let all = inspect(
        service,
        "{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.File.Name}}={{.SecretName}} {{end}}",
    );
    all.split_whitespace()
        .find_map(|p| p.strip_prefix(&format!("{target}=")))
        .unwrap_or_default()
        .to_string()
}

/// Every task of SERVICE (any state), by id, sorted.
fn task_ids(service: &str) -> Vec<String> {
    let mut v = list(&["service", "ps", "-q", "--no-trunc", service]);
    v.sort();
    v
}

/// The agent's records as `twip status` shows them (for a failure message).
fn agent_status(p: &TestProject) -> String {
    let out = p.twip(&["status", ENV, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["agent"].to_string()
}

fn write_env(p: &TestProject, stack: &str, pebble: &Pebble, domains: &[&str]) {
    p.write_env(
        ENV,
        &format!(
            "extends: training\nstack: {stack}\nagent: {{enabled: true}}\nproxy:\n  tls:\n    port: {}\n    acme:\n      email: ops@example.com\n      directory: {}\n      domains: [{}]\n      ca_bundle: certs/pebble-ca.pem\n",
            https_port(),
            pebble.directory,
            domains.join(", ")
        ),
    );
}

/// Waits until the agent's service mounts what the proxy service's label says is served, and
/// the agent runs (the agent updated its own service after a live swap and restarted).
fn wait_agent_holds_served(p: &TestProject, stack: &str) -> String {
    let proxy = format!("{stack}_proxy");
    let agent = format!("{stack}_agent");
    let held = eventually(240, || {
        let served = inspect(&proxy, "{{index .Spec.Labels \"io.twip.acme.served\"}}");
        let mine = mounted(&agent, "twip-hot-swap-tls-acme.pem");
        let running = list(&[
            "service",
            "ps",
            &agent,
            "--filter",
            "desired-state=running",
            "--format",
            "{{.CurrentState}}",
        ]);
        (served.starts_with(stack)
            && mine == served
            && running.len() == 1
            && running[0].starts_with("Running"))
        .then_some(served)
    });
    held.unwrap_or_else(|| {
        panic!(
            "the agent does not mount the served certificate: {}",
            agent_status(p)
        )
    })
}

/// The load: LOOPS curl loops against NAME, each request a new connection and handshake,
/// verified against ROOT. (answered, failed, first failures)
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    bad: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<Vec<String>>>,
}

impl Load {
    fn start(root: &Path, name: &'static str, loops: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let bad = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        for _ in 0..loops {
            let (stop, ok, bad, root) = (stop.clone(), ok.clone(), bad.clone(), root.to_path_buf());
            threads.push(std::thread::spawn(move || {
                let mut fails = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let out = Command::new("curl")
                        .args([
                            "-sS",
                            "--max-time",
                            "10",
                            "-o",
                            "/dev/null",
                            "-w",
                            "%{http_code}",
                        ])
                        .arg("--cacert")
                        .arg(&root)
                        .arg("--resolve")
                        .arg(format!("{name}:{}:127.0.0.1", https_port()))
                        .arg(format!("https://{name}:{}/", https_port()))
                        .output()
                        .unwrap();
                    if out.status.success() && stdout(&out) == "200" {
                        ok.fetch_add(1, Ordering::SeqCst);
                    } else {
                        bad.fetch_add(1, Ordering::SeqCst);
                        if fails.len() < 5 {
                            fails.push(format!("{} {}", stdout(&out), stderr(&out).trim()));
                        }
                    }
                }
                fails
            }));
        }
        Load {
            stop,
            ok,
            bad,
            threads,
        }
    }

    fn answered(&self) -> u64 {
        self.ok.load(Ordering::SeqCst)
    }

    /// Waits until N more requests were answered.
    fn more(&self, n: u64) {
        let from = self.answered();
        let got = eventually(120, || (self.answered() >= from + n).then_some(()));
        assert!(got.is_some(), "the load made no progress");
    }

    fn stop(self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let fails = self
            .threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        (
            self.ok.load(Ordering::SeqCst),
            self.bad.load(Ordering::SeqCst),
            fails,
        )
    }
}

#[test]
fn a_new_acme_certificate_is_swapped_live_by_the_agent_with_no_failed_request() {
    require_swarm();
    let pebble = Pebble::start(ports().http);
    let mut p = TestProject::new(&["training"], ENV);
    let stack = test_stack(ENV);
    p.stacks.push(stack.clone());
    let dir: PathBuf = p.path().to_path_buf();
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    std::fs::write(dir.join("certs/pebble-ca.pem"), &pebble.ca_pem).unwrap();
    write_env(&p, &stack, &pebble, &[A]);
    let up = p.twip(&["up", ENV]);
    assert!(up.status.success(), "{}", stderr(&up));
    let proxy = format!("{stack}_proxy");
    let placeholder = mounted(&proxy, "tls-acme.pem");
    assert!(placeholder.starts_with(&stack), "{placeholder}");

    // 1. The agent obtains the first certificate and swaps it in live.
    let root = pebble.root_file();
    let first =
        eventually(240, || pebble::served_serial(&root, A, https_port())).unwrap_or_else(|| {
            panic!(
                "no certificate from pebble is served: {}\n{}",
                agent_status(&p),
                pebble.logs()
            )
        });
    let served1 = wait_agent_holds_served(&p, &stack);
    assert_eq!(
        mounted(&proxy, "tls-acme.pem"),
        placeholder,
        "the proxy's template was changed for the certificate"
    );
    assert_ne!(served1, placeholder);
    let tasks = task_ids(&proxy);
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    eprintln!("first certificate: serial {first}, secret {served1}, proxy task {tasks:?}");

    // 2. A new certificate for new names, under load.
    let load = Load::start(&root, A, 4);
    load.more(50);
    write_env(&p, &stack, &pebble, &[A, B]);
    let plan = p.twip(&["plan", ENV]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    let plan = stdout(&plan);
    assert!(
        plan.lines()
            .any(|l| l.trim_start().starts_with(&format!("= service {proxy} "))),
        "the plan touches the proxy:\n{plan}"
    );
    for kept in [&placeholder, &served1] {
        assert!(
            !plan.contains(&format!("- secret  {kept} ")),
            "the plan removes {kept}:\n{plan}"
        );
    }
    let at_change = load.answered();
    let up = p.twip(&["up", ENV]);
    assert!(up.status.success(), "{}", stderr(&up));
    let second = eventually(240, || {
        pebble::served_serial(&root, B, https_port()).filter(|s| *s != first)
    })
    .unwrap_or_else(|| panic!("the new certificate is not served: {}", agent_status(&p)));
    let at_served = load.answered();
    load.more(50);
    assert_eq!(
        pebble::served_serial(&root, A, https_port()).as_deref(),
        Some(second.as_str())
    );
    // 2b. Still under load: `twip certs renew --force` asks the agent, which renews and swaps
    //     the new certificate in live.
    let served_before = wait_agent_holds_served(&p, &stack);
    let at_renew = load.answered();
    let out = p.twip(&["certs", "renew", ENV, "--force", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stderr(&out),
        stdout(&out)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["outcome"], "renewed", "{v}");
    let third = v["served"]["serial"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!third.is_empty() && third != second, "{v}");
    let renewed = eventually(120, || {
        (pebble::served_serial(&root, A, https_port()).as_deref() == Some(third.as_str())
            && pebble::served_serial(&root, B, https_port()).as_deref() == Some(third.as_str()))
        .then_some(())
    });
    assert!(renewed.is_some(), "the forced renewal is not served: {v}");
    let at_renewed = load.answered();
    load.more(50);
    let (ok, failed, fails) = load.stop();
    eprintln!(
        "renewals under load: {ok} requests answered ({} between `twip up` and the new serial, {} between `certs renew --force` and its serial), {failed} failed; first: {fails:?}; serials {first} -> {second} -> {third}",
        at_served - at_change,
        at_renewed - at_renew
    );
    assert_eq!(
        failed, 0,
        "failed requests during the live swaps: {fails:?}"
    );
    assert!(
        at_served - at_change >= 100,
        "too little load during the change to judge: {}",
        at_served - at_change
    );
    assert!(
        at_renewed - at_renew >= 20,
        "too little load during the forced renewal to judge: {}",
        at_renewed - at_renew
    );
    assert_eq!(task_ids(&proxy), tasks, "the proxy's tasks were replaced");
    assert_eq!(mounted(&proxy, "tls-acme.pem"), placeholder);
    let served3 = wait_agent_holds_served(&p, &stack);
    assert!(
        served3 != served1 && served3 != served_before,
        "{served1} {served_before} {served3}"
    );
    let out = p.twip(&["certs", ENV, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["acme"]["serial"].as_str(), Some(third.as_str()), "{v}");

    // 3. A task swarm starts later mounts the placeholder; the agent (restarted since) swaps
    //    the served certificate into it.
    let upd = docker(&["service", "update", "--force", "--detach", &proxy])
        .output()
        .unwrap();
    assert!(upd.status.success(), "{}", stderr(&upd));
    let replaced = eventually(120, || {
        let now = task_ids(&proxy);
        (now.len() > tasks.len()).then_some(now)
    })
    .expect("no new proxy task");
    let again = eventually(120, || {
        pebble::served_serial(&root, B, https_port()).filter(|s| *s == third)
    });
    assert!(
        again.is_some(),
        "the new proxy task does not serve the renewed certificate: {}",
        agent_status(&p)
    );
    assert_eq!(
        pebble::served_serial(&root, A, https_port()).as_deref(),
        Some(third.as_str())
    );
    assert_eq!(mounted(&proxy, "tls-acme.pem"), placeholder);
    eprintln!("re-swapped into the new proxy task: tasks {replaced:?}");

    let down = p.twip(&["down", ENV]);
    assert!(down.status.success(), "{}", stderr(&down));
    let left = eventually(60, || labelled_leftovers(&stack).is_empty().then_some(()));
    assert!(left.is_some(), "{:?}", labelled_leftovers(&stack));
}
