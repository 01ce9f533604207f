//! HTTPS at the proxy on a real single-node swarm: two certificates from files (signed by a
//! CA made here), each served for its own SNI name (checked with curl against that CA, and
//! the subject it shows), plain HTTP redirected with a 301, HTTP/2 negotiated by ALPN, and a
//! new certificate rolled out by `twip up` under a steady HTTPS load.
//!
//! Not reached yet: *zero* failed requests through that rollout. With one proxy task on one
//! node publishing host-mode ports, swarm must stop the old task before the new one can bind
//! the port (stop-first), and connections are refused for that moment (measured: 138 of 1036,
//! then 259 of 1105 requests). The failures are counted and printed here; the test asserts that the new
//! certificate is served and the load recovers, and the zero-failure criterion stays open
//! (it needs the certificate swapped inside the running proxy, or proxies on several nodes
//! behind a floating address).

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

#[test]
fn https_per_sni_redirect_h2_and_a_certificate_rollout() {
    require_swarm();
    let mut p = TestProject::new(&["training"], "tls");
    let stack = test_stack("tls");
    p.stacks.push(stack.clone());
    let dir = p.path().to_path_buf();
    let ca = ca();
    std::fs::write(dir.join("ca.pem"), ca.cert.pem()).unwrap();
    write_certs(&dir, &leaf(&ca, A, "a v1"), &leaf(&ca, B, "b v1"));
    p.write_env(
        "tls",
        &format!(
            "extends: training\nstack: {stack}\nproxy:\n  tls:\n    port: {}\n    certificates:\n      - {{cert: certs/a.crt, key: certs/a.key}}\n      - {{bundle: certs/b.pem}}\n    hsts: {{max_age: 600}}\n",
            https_port()
        ),
    );
    let up = p.twip(&["up", "tls"]);
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
    let up = p.twip(&["up", "tls"]);
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
    assert!(p.twip(&["down", "tls"]).status.success());
}
