//! `twip bench https://...` against a TLS server on 127.0.0.1 started by the test (rustls,
//! with a certificate for `localhost` signed by a CA made here): the certificate is checked
//! against `--cacert` (and refused against the system's roots), `--insecure` skips the check,
//! SNI carries the URL's host, keep-alive reuses each TLS connection, and every handshake is
//! one connection.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Default)]
struct Seen {
    handshakes: AtomicU64,
    requests: AtomicU64,
    names: Mutex<Vec<String>>,
}

/// A TLS server answering every request `200 ok` with keep-alive; (port, CA PEM file, seen).
fn serve() -> (u16, tempfile::TempDir, Arc<Seen>) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let (sock, _) = listener.accept().await.unwrap();
                let (acceptor, seen) = (acceptor.clone(), seen2.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(sock).await else {
                        return;
                    };
                    seen.handshakes.fetch_add(1, Ordering::SeqCst);
                    let name = tls.get_ref().1.server_name().unwrap_or("").to_string();
                    seen.names.lock().unwrap().push(name);
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            seen.requests.fetch_add(1, Ordering::SeqCst);
                            let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                            if tls.write_all(answer).await.is_err() {
                                return;
                            }
                        }
                        match tls.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                });
            }
        });
    });
    (port, dir, seen)
}

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_twip"))
        .env("NO_COLOR", "1")
        .arg("bench")
        .args(args)
        .output()
        .unwrap()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn https_with_the_ca_file_verifies_sends_sni_and_keeps_connections_alive() {
    let (port, dir, seen) = serve();
    let ca = dir.path().join("ca.pem");
    let url = format!("https://localhost:{port}/");
    let out = bench(&[
        &url,
        "--cacert",
        ca.to_str().unwrap(),
        "-n",
        "400",
        "-c",
        "4",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out);
    assert_eq!(r["responses"], 400, "{r}");
    assert_eq!(r["failed"], 0, "{r}");
    assert_eq!(r["target"], url.as_str(), "{r}");
    assert_eq!(seen.requests.load(Ordering::SeqCst), 400);
    // Keep-alive: one handshake per connection, not per request.
    let handshakes = seen.handshakes.load(Ordering::SeqCst);
    assert!((1..=4).contains(&handshakes), "{handshakes} handshakes");
    assert_eq!(r["connections_opened"], handshakes, "{r}");
    let names = seen.names.lock().unwrap().clone();
    assert!(
        !names.is_empty() && names.iter().all(|n| n == "localhost"),
        "{names:?}"
    );
}

#[test]
fn without_the_ca_the_handshake_fails_and_insecure_skips_the_check() {
    let (port, _dir, seen) = serve();
    let url = format!("https://localhost:{port}/");
    let out = bench(&[&url, "-n", "20", "-c", "2", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out);
    assert_eq!(r["errors"]["tls"], 20, "{r}");
    assert_eq!(seen.requests.load(Ordering::SeqCst), 0);
    let out = bench(&[&url, "--insecure", "-n", "20", "-c", "2", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out)["responses"], 20);
    assert_eq!(seen.requests.load(Ordering::SeqCst), 20);
}

#[test]
fn no_keepalive_makes_one_handshake_per_request() {
    let (port, dir, seen) = serve();
    let ca = dir.path().join("ca.pem");
    let url = format!("https://localhost:{port}/");
    let out = bench(&[
        &url,
        "--cacert",
        ca.to_str().unwrap(),
        "-n",
        "30",
        "-c",
        "3",
        "--no-keepalive",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out)["responses"], 30);
    assert_eq!(seen.handshakes.load(Ordering::SeqCst), 30);
}
