//! HTTPS at the proxy on a real single-node swarm: two certificates from files (signed by a
//! CA made here), each served for its own SNI name (checked with curl against that CA, and
//! the subject it shows), plain HTTP redirected with a 301, HTTP/2 negotiated by ALPN, and a
//! new certificate rolled out by `twip up` under a steady HTTPS load (full handshakes, one
//! curl per request, every failure counted).
//!
//! With the agent (the stack gets one for its certificates), the plan says the certificates
//! are swapped by the agent, the proxy keeps its tasks, and no request fails. The negative
//! control, the same rollout with `agent: {enabled: false}`: a rolling update of the proxy,
//! which with one task publishing host-mode ports must stop it before its successor binds
//! the port, so requests fail (measured before the hot swap: 138 of 1036, 259 of 1105).
//! The two tests share the host ports, so they run one after the other.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use common::*;

const A: &str = "a.example.test";
const B: &str = "b.example.test";

struct Ca {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

fn ca() -> Ca {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "twip test CA");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    Ca { cert, key }
}

/// A certificate for NAME signed by the CA, with common name CN: (cert PEM, key PEM).
fn leaf(ca: &Ca, name: &str, cn: &str) -> (String, String) {
    let mut p = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    let now = std::time::SystemTime::now();
    p.not_before = (now - std::time::Duration::from_secs(86_400)).into();
    p.not_after = (now + std::time::Duration::from_secs(60 * 86_400)).into();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &ca.cert, &ca.key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn https_port() -> u16 {
    // The port after the proxy's: this test runs no service of its own there.
    ports().solo
}

/// `curl ARGS` against 127.0.0.1 with NAME resolved to it: (status, stdout, stderr).
fn curl(dir: &Path, name: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(dir.join("ca.pem"))
        .arg("--resolve")
        .arg(format!("{name}:{}:127.0.0.1", https_port()))
        .args(args)
        .output()
        .expect("curl");
    (out.status.success(), stdout(&out), stderr(&out))
}

/// The subject of the certificate served for NAME (from `curl -v`), when the request passed
/// verification against the CA and got a 200.
fn served_subject(dir: &Path, name: &str) -> Option<String> {
    let url = format!("https://{name}:{}/", https_port());
    let (ok, code, err) = curl(
        dir,
        name,
        &["-v", "-o", "/dev/null", "-w", "%{http_code}", &url],
    );
    if !ok || code != "200" {
        return None;
    }
    err.lines()
        .find_map(|l| l.trim_start_matches('*').trim().strip_prefix("subject:"))
        .map(|s| s.trim().to_string())
}

fn write_certs(dir: &Path, a: &(String, String), b: &(String, String)) {
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    std::fs::write(dir.join("certs/a.crt"), &a.0).unwrap();
    std::fs::write(dir.join("certs/a.key"), &a.1).unwrap();
    std::fs::write(dir.join("certs/b.pem"), format!("{}{}", b.0, b.1)).unwrap();
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn https_per_sni_redirect_h2_and_a_certificate_hot_swap_with_no_failed_request() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (failed, total, plan) = rollout("tls", "");
    let hot = |l: &&str| {
        l.contains("_proxy ") && l.contains("update: certificates: hot swap by the agent")
    };
    assert!(plan.lines().any(|l| hot(&l)), "{plan}");
    assert_eq!(failed, 0, "{failed} of {total} requests failed");
}

#[test]
fn negative_control_without_the_agent_the_rolling_update_fails_requests() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (failed, total, plan) = rollout("tlsnoagent", "agent: {enabled: false}\n");
    assert!(!plan.contains("hot swap"), "{plan}");
    assert!(failed > 0, "0 of {total} requests failed without the agent");
}

/// Deploys environment ENV (EXTRA appended to its manifest), checks HTTPS, then rolls out a
/// new certificate under load: (failed requests, all requests, the plan's text).
fn rollout(env: &str, extra: &str) -> (u64, u64, String) {
    require_swarm();
    let mut p = TestProject::new(&["training"], env);
    let stack = test_stack(env);
    p.stacks.push(stack.clone());
    let dir = p.path().to_path_buf();
    let ca = ca();
    std::fs::write(dir.join("ca.pem"), ca.cert.pem()).unwrap();
    write_certs(&dir, &leaf(&ca, A, "a v1"), &leaf(&ca, B, "b v1"));
    p.write_env(
        env,
        &format!(
            "extends: training\nstack: {stack}\n{extra}proxy:\n  tls:\n    port: {}\n    certificates:\n      - {{cert: certs/a.crt, key: certs/a.key}}\n      - {{bundle: certs/b.pem}}\n    hsts: {{max_age: 600}}\n",
            https_port()
        ),
    );
    let up = p.twip(&["up", env]);
    assert!(up.status.success(), "{}", stderr(&up));

    // Each SNI name gets its own certificate (curl verifies it against the CA and the name).
    let a = eventually(90, || served_subject(&dir, A)).expect("HTTPS for a.example.test");
    assert!(a.contains("a v1"), "{a}");
    let b = served_subject(&dir, B).expect("HTTPS for b.example.test");
    assert!(b.contains("b v1"), "{b}");

    // Plain HTTP: 301 to the HTTPS port, same host and path.
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
        ])
        .arg(format!("http://127.0.0.1:{}/news?x=1", ports().http))
        .output()
        .unwrap();
    assert_eq!(
        stdout(&out),
        format!("301 https://127.0.0.1:{}/news?x=1", https_port())
    );

    // HTTP/2 by ALPN, and HSTS on HTTPS answers.
    let url = format!("https://{A}:{}/", https_port());
    let (ok, v, err) = curl(
        &dir,
        A,
        &["--http2", "-o", "/dev/null", "-w", "%{http_version}", &url],
    );
    assert!(ok && v == "2", "http version {v}: {err}");
    let (ok, head, err) = curl(&dir, A, &["-D", "-", "-o", "/dev/null", &url]);
    assert!(ok, "{err}");
    assert!(
        head.to_ascii_lowercase()
            .contains("strict-transport-security: max-age=600"),
        "{head}"
    );

    // A new certificate for a.example.test rolls out under a steady HTTPS load.
    let stop = Arc::new(AtomicBool::new(false));
    let okc = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (stop, okc, bad, dir) = (stop.clone(), okc.clone(), bad.clone(), dir.clone());
        load.push(std::thread::spawn(move || {
            let url = format!("https://{A}:{}/", https_port());
            let mut fails = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let (ok, code, err) =
                    curl(&dir, A, &["-o", "/dev/null", "-w", "%{http_code}", &url]);
                if ok && code == "200" {
                    okc.fetch_add(1, Ordering::SeqCst);
                } else {
                    bad.fetch_add(1, Ordering::SeqCst);
                    fails.push(format!("{code} {}", err.trim()));
                }
            }
            fails
        }));
    }
    assert!(
        eventually(30, || (okc.load(Ordering::SeqCst) >= 20).then_some(())).is_some(),
        "the load got no answers before the change"
    );
    write_certs(&dir, &leaf(&ca, A, "a v2"), &leaf(&ca, B, "b v1"));
    let plan = p.twip(&["plan", env]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    let plan = stdout(&plan);
    let up = p.twip(&["up", env]);
    let rolled = eventually(180, || {
        served_subject(&dir, A).filter(|s| s.contains("a v2"))
    });
    let after = okc.load(Ordering::SeqCst);
    eventually(60, || {
        (okc.load(Ordering::SeqCst) >= after + 20).then_some(())
    });
    stop.store(true, Ordering::SeqCst);
    let fails: Vec<String> = load.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert!(up.status.success(), "{}", stderr(&up));
    assert!(rolled.is_some(), "the new certificate is not served");
    let served = okc.load(Ordering::SeqCst);
    assert!(served >= after + 20, "{served} answers");
    let failed = bad.load(Ordering::SeqCst);
    eprintln!(
        "certificate rollout under load: {failed} of {} requests failed; first: {:?}",
        served + failed,
        &fails[..fails.len().min(3)]
    );
    assert_eq!(failed, fails.len() as u64);
    let down = p.twip(&["down", env]);
    assert!(down.status.success(), "{}", stderr(&down));
    assert_eq!(labelled_leftovers(&stack), Vec::<String>::new());
    (failed, served + failed, plan)
}
