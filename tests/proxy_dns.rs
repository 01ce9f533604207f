//! The proxy's name resolution against a real HAProxy (Debian's 2.6, the proxy image's): the
//! `resolvers` section and `default-server` line twip renders, with Docker's DNS (127.0.0.11)
//! replaced by a small DNS server here that can fall silent, in front of a backend that always
//! answers.
//!
//! When Docker's embedded DNS stops answering for a few seconds (a node's engine busy with a
//! dead node's tasks, a leader election), HAProxy must keep the servers it knows: their health
//! checks still say whether they answer. With `hold timeout 1s` (twip's setting before) every
//! server of the backend went into maintenance ("DNS timeout status") about four seconds into
//! the silence and every request got a 503, although the backend never stopped answering.
//!
//! - Negative control: the rendered section with `hold timeout 1s` answers 503 during a silence
//!   (polled for until it does; the time it took is printed).
//! - The rendered section keeps answering 200 through a silence twice as long (at least 10 s),
//!   while HAProxy keeps asking the silent server (its unanswered queries are counted).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{load, repo};
use twip::render::render;

/// A DNS server on loopback that answers every A query with 127.0.0.1 (and every other query
/// with an empty answer) until told to fall silent.
struct Dns {
    addr: SocketAddr,
    silent: Arc<AtomicBool>,
    /// Queries received while silent (never answered).
    ignored: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Dns {
    fn start() -> Dns {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let dns = Dns {
            addr: sock.local_addr().unwrap(),
            silent: Arc::default(),
            ignored: Arc::default(),
            stop: Arc::default(),
        };
        let (silent, ignored, stop) = (dns.silent.clone(), dns.ignored.clone(), dns.stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !stop.load(Ordering::SeqCst) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                if silent.load(Ordering::SeqCst) {
                    ignored.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                if let Some(answer) = answer(&buf[..n]) {
                    let _ = sock.send_to(&answer, from);
                }
            }
        });
        dns
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The reply to QUERY: the question echoed, an A record 127.0.0.1 (TTL 0) for an A query, no
/// record for any other type. None for a packet that is not one question.
fn answer(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 || query[4..6] != [0, 1] {
        return None;
    }
    let mut end = 12;
    while *query.get(end)? != 0 {
        end += 1 + query[end] as usize;
    }
    let question = query.get(12..end + 5)?;
    let is_a = question[question.len() - 4..question.len() - 2] == [0, 1];
    let mut r = Vec::with_capacity(question.len() + 32);
    r.extend_from_slice(&query[..2]); // id
    r.extend_from_slice(&[0x81, 0x80, 0, 1, 0, u8::from(is_a), 0, 0, 0, 0]);
    r.extend_from_slice(question);
    if is_a {
        // A pointer to the name at offset 12, type A, class IN, TTL 0, 4 bytes: 127.0.0.1.
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 127, 0, 0, 1]);
    }
    Some(r)
}

/// A backend on loopback that answers every request 200 and closes.
fn backend() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            });
        }
    });
    port
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `resolvers docker` section and the `default-server` line of the production
/// environment's rendered haproxy.cfg.
fn rendered_resolution() -> (String, String) {
    let env = load(&repo(), "production");
    let out = render(&env, &repo(), Path::new("/tmp")).unwrap();
    let cfg = out.get("haproxy.cfg").expect("production has a proxy");
    let resolvers: Vec<&str> = cfg
        .lines()
        .skip_while(|l| *l != "resolvers docker")
        .take_while(|l| !l.trim().is_empty())
        .collect();
    assert!(
        resolvers.len() > 3 && resolvers.iter().any(|l| l.contains("127.0.0.11:53")),
        "no resolvers section naming Docker's DNS in:\n{cfg}"
    );
    let default_server = cfg
        .lines()
        .find(|l| l.trim_start().starts_with("default-server "))
        .unwrap_or_else(|| panic!("no default-server line in:\n{cfg}"));
    assert!(
        default_server.contains("resolvers docker"),
        "{default_server}"
    );
    (resolvers.join("\n"), default_server.to_string())
}

/// HAProxy running CFG; killed when dropped.
struct Proxy(Child);

impl Proxy {
    fn start(cfg: &str) -> (Proxy, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, cfg).unwrap();
        let haproxy =
            which::which("haproxy").expect("haproxy on PATH (scripts/test.sh installs it)");
        let child = Command::new(haproxy)
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        (Proxy(child), dir)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// GET / on a new connection: the status code, or why there was none.
fn get(port: u16) -> Result<u16, String> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| format!("read: {e}"))?;
    let line = String::from_utf8_lossy(&buf);
    line.get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status line: {:?}", line.lines().next()))
}

/// A proxy in front of the backend with RESOLVERS and DEFAULT_SERVER, answering 200 (polled
/// for). Returns it with its port and its DNS server.
fn serving(resolvers: &str, default_server: &str) -> (Proxy, tempfile::TempDir, u16, Dns) {
    let dns = Dns::start();
    let web = backend();
    let port = free_port();
    let cfg = format!(
        "global
    log stdout format raw local0 notice
{resolvers}

defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    retries 3
    option redispatch 1
{default_server}

frontend http
    bind 127.0.0.1:{port}
    default_backend web

backend web
    option httpchk GET /
    server-template web- 2 tasks.web:{web}
",
        resolvers = resolvers.replace("127.0.0.11:53", &dns.addr.to_string()),
    );
    let (proxy, dir) = Proxy::start(&cfg);
    assert!(
        common::eventually(60, || (get(port) == Ok(200)).then_some(())).is_some(),
        "the proxy never answered 200 through a DNS server that answers:\n{cfg}"
    );
    (proxy, dir, port, dns)
}

#[test]
fn the_proxy_keeps_its_servers_while_dockers_dns_is_silent() {
    let (resolvers, default_server) = rendered_resolution();
    assert!(
        resolvers.contains("hold timeout 30s"),
        "the rendered section:\n{resolvers}"
    );

    // Negative control: the same section with the old `hold timeout 1s` fails requests once
    // the DNS server falls silent, although the backend answers throughout.
    let old = resolvers.replace("hold timeout 30s", "hold timeout 1s");
    let (proxy, _dir, port, dns) = serving(&old, &default_server);
    let silence = Instant::now();
    dns.silent.store(true, Ordering::SeqCst);
    let failed = common::eventually(120, || get(port).ok().filter(|c| *c != 200));
    let took = silence.elapsed();
    drop(proxy);
    assert_eq!(
        failed,
        Some(503),
        "with `hold timeout 1s` a silent DNS server should take the servers into maintenance"
    );
    println!(
        "negative control: `hold timeout 1s`, first 503 {:.1} s into the silence",
        took.as_secs_f64()
    );

    // The rendered section, through a silence twice as long (at least 10 s).
    let span = (took * 2).max(Duration::from_secs(10));
    let (_proxy, _dir, port, dns) = serving(&resolvers, &default_server);
    dns.silent.store(true, Ordering::SeqCst);
    let start = Instant::now();
    let mut answers = Vec::new();
    while start.elapsed() < span {
        answers.push(get(port));
        std::thread::sleep(Duration::from_millis(100)); // pacing the requests
    }
    let ignored = dns.ignored.load(Ordering::SeqCst);
    let bad: Vec<&Result<u16, String>> = answers.iter().filter(|a| **a != Ok(200)).collect();
    println!(
        "rendered: {} requests over {:.1} s of silence, {} not 200; {ignored} queries unanswered",
        answers.len(),
        span.as_secs_f64(),
        bad.len()
    );
    assert!(answers.len() >= 20, "{} requests", answers.len());
    assert!(
        bad.is_empty(),
        "{} of {} failed: {bad:?}",
        bad.len(),
        answers.len()
    );
    assert!(
        ignored >= 3,
        "HAProxy asked the silent server {ignored} times: the silence was not tested"
    );
}
