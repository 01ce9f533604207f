//! The hot-swap controller against a real HAProxy (Debian's 2.6, the proxy image's, in a plain
//! container): its runtime API over mutual TLS 1.3 with the credentials twip derives, and
//! certificates replaced live under a steady HTTPS load where every request is a new TLS
//! handshake (the case a swap can break), each failure counted.
//!
//! - 5 swaps by the controller's rounds: 0 failed requests, and after each, new handshakes are
//!   served the new certificate (its serial, seen by a verifying rustls client).
//! - Negative control: the same change made by restarting the proxy (what a rolling update of
//!   a host-mode proxy on one node does) fails requests under the same load.
//! - The runtime API refuses a client without a certificate, and one whose certificate comes
//!   from another project's key.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use twip::agent::hot_swap::{HotSwap, HotSwapConfig, SwapCert};
use twip::tls::runtime;

const NAME: &str = "a.example.test";
const KEY: &[u8] = b"hot-swap test name key, 32 bytes or more";

struct Ca {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

fn ca() -> Ca {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "twip hot-swap test CA");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    Ca { cert, key }
}

/// A certificate for NAME with serial `serial`: (cert PEM, key PEM).
fn leaf(ca: &Ca, serial: u64) -> (String, String) {
    let mut p = rcgen::CertificateParams::new(vec![NAME.to_string()]).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, NAME);
    p.serial_number = Some(rcgen::SerialNumber::from(serial));
    let now = std::time::SystemTime::now();
    p.not_before = (now - Duration::from_secs(86_400)).into();
    p.not_after = (now + Duration::from_secs(30 * 86_400)).into();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &ca.cert, &ca.key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn write_pair(dir: &Path, (cert, key): &(String, String)) {
    std::fs::write(dir.join("tls-0.pem"), cert).unwrap();
    std::fs::write(dir.join("tls-0.pem.key"), key).unwrap();
}

/// The runtime API as twip renders it: HAProxy 2.6 ignores `ssl` on a TCP `stats socket` (it
/// answered `show info` in plain text), so the socket is a Unix one and a TCP listener that
/// demands TLS 1.3 and a client certificate forwards to it.
const HAPROXY_CFG: &str = "global
    log stdout format raw local0 notice
    stats socket /run/haproxy-api.sock mode 600 level admin
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
listen runtime-api
    mode tcp
    bind :9443 ssl crt /etc/twip/runtime.pem ca-file /etc/twip/runtime-ca.pem verify required ssl-min-ver TLSv1.3
    server api unix@/run/haproxy-api.sock
frontend https
    bind :8443 ssl crt /etc/twip/certs/tls-0.pem alpn http/1.1
    http-request return status 200 content-type text/plain string ok
";

/// A running HAProxy container: removed on drop.
struct Proxy {
    name: String,
    https: u16,
    api: u16,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.name]).output();
    }
}

/// A port nothing listens on now (the kernel's choice).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// HAProxy with the served certificate in `dir/certs` and the runtime API's server side.
fn start_proxy(dir: &Path, tag: &str) -> Proxy {
    let creds = runtime::credentials(KEY).unwrap();
    std::fs::write(dir.join("haproxy.cfg"), HAPROXY_CFG).unwrap();
    std::fs::write(dir.join("runtime.pem"), &creds.server_bundle).unwrap();
    std::fs::write(dir.join("runtime-ca.pem"), &creds.ca_cert).unwrap();
    let name = format!("twiptest{}_hotswap_{tag}", run_id());
    // Fixed host ports: a restarted container keeps them (ephemeral ones may change).
    let (https, api) = (free_port(), free_port());
    let out = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "-p",
        &format!("127.0.0.1:{https}:8443"),
        "-p",
        &format!("127.0.0.1:{api}:9443"),
        "-v",
        &format!("{}:/etc/twip:ro", dir.display()),
        "twip/base:bookworm",
        "haproxy",
        "-W",
        "-db",
        "-f",
        "/etc/twip/haproxy.cfg",
    ])
    .output()
    .expect("docker run");
    assert!(out.status.success(), "docker run: {}", stderr(&out));
    let p = Proxy { https, api, name };
    // Ready when the runtime API answers through TLS (docker's port proxy accepts
    // connections before HAProxy listens, so an open port proves nothing).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tls = runtime::client_config(
        creds.ca_cert.as_bytes(),
        creds.client_cert.as_bytes(),
        creds.client_key.as_bytes(),
    )
    .unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], p.api).into();
    let up = eventually(60, || {
        rt.block_on(runtime::command(addr, tls.clone(), "show info", None))
            .ok()
            .filter(|a| a.contains("Version:"))
    });
    assert!(
        up.is_some(),
        "HAProxy did not answer: {}",
        stderr(&docker(&["logs", &p.name]).output().unwrap())
    );
    p
}

/// The agent's side: the runtime API's client files and the desired certificate files.
fn controller(dir: &Path, api: u16) -> HotSwap {
    let creds = runtime::credentials(KEY).unwrap();
    let files = |n: &str, text: &str| {
        let p = dir.join(n);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let desired = dir.join("desired");
    HotSwap::new(HotSwapConfig {
        certificates: vec![SwapCert {
            proxy_file: "/etc/twip/certs/tls-0.pem".into(),
            keys: Vec::new(),
            files: vec![
                desired.join("tls-0.pem").display().to_string(),
                desired.join("tls-0.pem.key").display().to_string(),
            ],
        }],
        proxy: "127.0.0.1".into(),
        port: api,
        ca: files("client-ca.pem", &creds.ca_cert),
        cert: files("client.pem", &creds.client_cert),
        key: files("client.key", &creds.client_key),
    })
}

/// Counts of the load: every request is a new TCP connection and a full TLS handshake.
#[derive(Default)]
struct Load {
    ok: AtomicU64,
    failed: AtomicU64,
    /// The serial served by the last successful handshake.
    last_serial: Mutex<String>,
    first_error: Mutex<Option<String>>,
}

async fn one_request(addr: SocketAddr, tls: Arc<rustls::ClientConfig>) -> Result<String, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut s = tokio_rustls::TlsConnector::from(tls)
        .connect(ServerName::try_from(NAME).unwrap(), tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let serial = {
        let (_, conn) = s.get_ref();
        let leaf = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or("no certificate")?;
        let (_, x) = x509_parser::parse_x509_certificate(leaf).map_err(|e| e.to_string())?;
        runtime::serial_hex(x.raw_serial())
    };
    s.write_all(format!("GET / HTTP/1.1\r\nHost: {NAME}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf);
    if !text.starts_with("HTTP/1.1 200") || !text.ends_with("ok") {
        return Err(format!("answer: {:?}", text.lines().next()));
    }
    Ok(serial)
}

/// Runs the load (4 clients, each a new connection every 5 ms at most) until `stop`.
fn start_load(
    rt: &tokio::runtime::Runtime,
    port: u16,
    ca_pem: &str,
    stop: Arc<AtomicBool>,
) -> (Arc<Load>, Vec<tokio::task::JoinHandle<()>>) {
    let tls = twip::tls::client::config(&twip::tls::client::Verify::Roots(
        ca_pem.as_bytes().to_vec(),
    ))
    .unwrap();
    // Full handshakes only: a resumed session is not shown the server's certificate again
    // (and would not exercise the swapped one).
    let mut tls = (*tls).clone();
    tls.resumption = rustls::client::Resumption::disabled();
    let tls = Arc::new(tls);
    let load = Arc::new(Load::default());
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let handles = (0..4)
        .map(|_| {
            let (load, stop, tls) = (load.clone(), stop.clone(), tls.clone());
            rt.spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let r = tokio::time::timeout(
                        Duration::from_secs(10),
                        one_request(addr, tls.clone()),
                    )
                    .await
                    .unwrap_or_else(|_| Err("timeout".into()));
                    match r {
                        Ok(serial) => {
                            load.ok.fetch_add(1, Ordering::SeqCst);
                            *load.last_serial.lock().unwrap() = serial;
                        }
                        Err(e) => {
                            load.failed.fetch_add(1, Ordering::SeqCst);
                            load.first_error.lock().unwrap().get_or_insert(e);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    (load, handles)
}

/// Polls (up to 60 s) until the load's handshakes are served `serial`.
fn wait_served(load: &Load, serial: &str) -> bool {
    eventually(60, || {
        (*load.last_serial.lock().unwrap() == serial).then_some(())
    })
    .is_some()
}

fn wait_requests(load: &Load, more_than: u64) {
    let start = load.ok.load(Ordering::SeqCst);
    let ok = eventually(60, || {
        (load.ok.load(Ordering::SeqCst) > start + more_than).then_some(())
    });
    assert!(ok.is_some(), "the load made no progress");
}

fn setup(tag: &str) -> (tempfile::TempDir, Ca, Proxy) {
    require_swarm();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("certs")).unwrap();
    std::fs::create_dir(dir.path().join("desired")).unwrap();
    let ca = ca();
    std::fs::write(dir.path().join("ca.pem"), ca.cert.pem()).unwrap();
    let first = leaf(&ca, 100);
    write_pair(&dir.path().join("certs"), &first);
    write_pair(&dir.path().join("desired"), &first);
    let p = start_proxy(dir.path(), tag);
    (dir, ca, p)
}

#[test]
fn certificates_swap_live_with_no_failed_request() {
    let (dir, ca, proxy) = setup("live");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut hot = controller(dir.path(), proxy.api);
    // Nothing to do while the proxy serves the desired certificate.
    let r = rt.block_on(hot.round()).unwrap();
    assert_eq!(r.decision, "certificates current on 1 of 1 proxy task(s)");

    let stop = Arc::new(AtomicBool::new(false));
    let (load, handles) = start_load(&rt, proxy.https, &ca.cert.pem(), stop.clone());
    wait_requests(&load, 200);
    assert_eq!(*load.last_serial.lock().unwrap(), "64"); // serial 100
    for i in 1..=5u64 {
        let serial = 100 + i;
        write_pair(&dir.path().join("desired"), &leaf(&ca, serial));
        let r = rt.block_on(hot.round()).unwrap();
        assert_eq!(
            r.decision, "swapped 1 of 1 certificate(s) live on 1 proxy task(s)",
            "round {i}"
        );
        let hex = format!("{serial:02X}");
        assert!(
            wait_served(&load, &hex),
            "swap {i}: new handshakes are not served serial {hex}"
        );
        wait_requests(&load, 100);
        let r = rt.block_on(hot.round()).unwrap();
        assert_eq!(r.decision, "certificates current on 1 of 1 proxy task(s)");
    }
    stop.store(true, Ordering::SeqCst);
    for h in handles {
        rt.block_on(h).unwrap();
    }
    let (ok, failed) = (
        load.ok.load(Ordering::SeqCst),
        load.failed.load(Ordering::SeqCst),
    );
    eprintln!("hot swap: 5 swaps, {ok} requests answered, {failed} failed");
    assert_eq!(
        failed,
        0,
        "failed requests during the hot swaps (first: {:?}); {ok} answered",
        load.first_error.lock().unwrap()
    );
    assert!(ok > 700, "too little load to judge: {ok}");
}

#[test]
fn restarting_the_proxy_for_a_certificate_fails_requests() {
    let (dir, ca, proxy) = setup("restart");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (load, handles) = start_load(&rt, proxy.https, &ca.cert.pem(), stop.clone());
    wait_requests(&load, 200);
    // The same change, made the way a rolling update of a host-mode proxy on one node does:
    // the new certificate in place, the proxy stopped and started again.
    write_pair(&dir.path().join("certs"), &leaf(&ca, 200));
    let out = docker(&["restart", "-t", "10", &proxy.name])
        .output()
        .unwrap();
    assert!(out.status.success(), "docker restart: {}", stderr(&out));
    assert!(
        wait_served(&load, "C8"),
        "the restarted proxy serves serial C8"
    );
    wait_requests(&load, 100);
    stop.store(true, Ordering::SeqCst);
    for h in handles {
        rt.block_on(h).unwrap();
    }
    let (ok, failed) = (
        load.ok.load(Ordering::SeqCst),
        load.failed.load(Ordering::SeqCst),
    );
    eprintln!("restart: {ok} requests answered, {failed} failed");
    assert!(
        failed > 0,
        "a restart under load failed no request: the load cannot see an outage ({ok} answered)"
    );
}

#[test]
fn the_runtime_api_refuses_clients_without_the_projects_certificate() {
    let (dir, _ca, proxy) = setup("auth");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], proxy.api).into();
    let ours = runtime::credentials(KEY).unwrap();
    let good = runtime::client_config(
        ours.ca_cert.as_bytes(),
        ours.client_cert.as_bytes(),
        ours.client_key.as_bytes(),
    )
    .unwrap();
    let answer = rt
        .block_on(runtime::command(
            addr,
            good,
            "show ssl cert /etc/twip/certs/tls-0.pem",
            None,
        ))
        .unwrap();
    assert_eq!(
        runtime::shown_serial(&answer).as_deref(),
        Some("64"),
        "{answer}"
    );

    // Another project's credentials: the proxy does not trust the client.
    let other = runtime::credentials(b"another project's name key, 32 bytes+").unwrap();
    let foreign = runtime::client_config(
        ours.ca_cert.as_bytes(),
        other.client_cert.as_bytes(),
        other.client_key.as_bytes(),
    )
    .unwrap();
    let r = rt.block_on(runtime::command(addr, foreign, "show info", None));
    assert!(
        r.as_ref().map_or(true, |a| !a.contains("Version:")),
        "a foreign client certificate was answered: {r:?}"
    );

    // No client certificate at all.
    let mut roots = rustls::RootCertStore::empty();
    for c in twip::tls::certificates(ours.ca_cert.as_bytes()).unwrap() {
        roots.add(c).unwrap();
    }
    let anonymous = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let r = rt.block_on(runtime::command(addr, anonymous, "show info", None));
    assert!(
        r.as_ref().map_or(true, |a| !a.contains("Version:")),
        "a client without a certificate was answered: {r:?}"
    );

    // Plain text: no TLS, no answer.
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    std::io::Write::write_all(&mut s, b"show info\n").unwrap();
    let mut buf = Vec::new();
    let _ = std::io::Read::read_to_end(&mut s, &mut buf);
    assert!(
        !String::from_utf8_lossy(&buf).contains("Version:"),
        "the runtime API answered in plain text"
    );
    let _: PathBuf = dir.path().to_path_buf();
}
