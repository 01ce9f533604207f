//! `twip bench` against real servers on 127.0.0.1, started by each test: a normal one, one
//! that resets, one that stalls, one that answers 500, one that closes idle connections, one
//! that answers slowly, one that drops the second request of each connection, one with large
//! response heads. The binary is run as a user would run it; no timing is asserted. Where a
//! test compares what the server saw with what twip reports, it first waits (polling) until
//! the server has accepted and finished every connection ([`settle`]).

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, PartialEq)]
enum Behavior {
    /// 200 with a 5-byte body, keep-alive.
    Ok,
    /// 500 with a body.
    Error500,
    /// 200 with a chunked body ("hello world", 11 bytes), every other response with
    /// `Connection: close`.
    ChunkedSometimesClose,
    /// Reads the request, then resets the connection (SO_LINGER 0).
    Reset,
    /// Reads the request and never answers.
    Stall,
    /// Answers, then closes the connection without saying so (an idle-timeout close).
    CloseSilently,
    /// Answers after 300 ms.
    Slow,
    /// Answers after 2 ms: a client waiting for it must either block or spin.
    Paced,
    /// An interim `100 Continue`, then 200.
    Continue,
    /// Answers the first request of a connection (keep-alive), then reads the second and
    /// closes without answering it.
    AnswerFirstThenDrop,
    /// 200 with a response head of about this many bytes (one long header).
    BigHead(usize),
}

#[derive(Default)]
struct Seen {
    requests: AtomicU64,
    connections: AtomicU64,
    /// Connections whose handler has ended.
    finished: AtomicU64,
    /// The client port of every accepted connection, in the order of accepting.
    peers: Mutex<Vec<u16>>,
    /// (request head, body) of every request.
    log: Mutex<Vec<(String, Vec<u8>)>>,
}

struct Server {
    addr: SocketAddr,
    seen: Arc<Seen>,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

fn serve(behavior: Behavior) -> Server {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = TcpListener::from_std(std_listener).unwrap();
            loop {
                let Ok((sock, peer)) = listener.accept().await else {
                    continue;
                };
                seen2.connections.fetch_add(1, Ordering::SeqCst);
                seen2.peers.lock().unwrap().push(peer.port());
                let seen3 = seen2.clone();
                tokio::spawn(async move {
                    handle(sock, behavior, seen3.clone()).await;
                    seen3.finished.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
    });
    Server { addr, seen }
}

/// Reads one request (head + Content-Length body); `None` at end of stream.
async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let mut chunk = [0u8; 65536];
                let n = sock.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[end + 4..end + 4 + len].to_vec();
            buf.drain(..end + 4 + len);
            return Some((head, body));
        }
        let mut chunk = [0u8; 65536];
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn handle(mut sock: TcpStream, behavior: Behavior, seen: Arc<Seen>) {
    let mut buf = Vec::new();
    let mut i = 0u64;
    while let Some((head, body)) = read_request(&mut sock, &mut buf).await {
        seen.requests.fetch_add(1, Ordering::SeqCst);
        let close_asked = head.to_ascii_lowercase().contains("connection: close");
        seen.log.lock().unwrap().push((head.clone(), body));
        i += 1;
        let resp: Vec<u8> = match behavior {
            Behavior::Ok | Behavior::CloseSilently | Behavior::Slow | Behavior::Paced
                if head.starts_with("HEAD ") =>
            {
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n".to_vec()
            }
            Behavior::Ok | Behavior::CloseSilently | Behavior::Slow | Behavior::Paced => {
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"
                    .to_vec()
            }
            Behavior::Continue => {
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                    .to_vec()
            }
            Behavior::Error500 => {
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops".to_vec()
            }
            Behavior::ChunkedSometimesClose => {
                let close = if i % 2 == 0 {
                    "Connection: close\r\n"
                } else {
                    ""
                };
                format!(
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n{close}\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n"
                )
                .into_bytes()
            }
            Behavior::Reset => {
                // Linger 0: the close sends a RST (and does not block).
                #[allow(deprecated)]
                let _ = sock.set_linger(Some(Duration::ZERO));
                return;
            }
            Behavior::Stall => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            Behavior::AnswerFirstThenDrop if i >= 2 => return,
            Behavior::AnswerFirstThenDrop => {
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec()
            }
            Behavior::BigHead(n) => format!(
                "HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 5\r\n\r\nhello",
                "a".repeat(n)
            )
            .into_bytes(),
        };
        if behavior == Behavior::Slow {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        if behavior == Behavior::Paced {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if sock.write_all(&resp).await.is_err() {
            return;
        }
        let close_now = close_asked
            || behavior == Behavior::CloseSilently
            || (behavior == Behavior::ChunkedSometimesClose && i % 2 == 0);
        if close_now {
            return;
        }
    }
}

/// Waits until the server has accepted every connection made so far and every handler has
/// ended (twip has exited, so its connections are closed): then what the server saw is
/// final. The listen queue is first in, first out, so once a connection made now is
/// accepted, every earlier one was. Returns the connections accepted before it.
fn settle(s: &Server) -> u64 {
    let sentinel = std::net::TcpStream::connect(s.addr).unwrap();
    let port = sentinel.local_addr().unwrap().port();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !s.seen.peers.lock().unwrap().contains(&port) {
        assert!(
            std::time::Instant::now() < deadline,
            "the server never accepted"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(sentinel);
    let accepted = s.seen.connections.load(Ordering::SeqCst);
    while s.seen.finished.load(Ordering::SeqCst) < accepted {
        assert!(
            std::time::Instant::now() < deadline,
            "the server's connections never ended"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    accepted - 1
}

fn twip() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_twip"));
    c.env("NO_COLOR", "1").env_remove("TWIP_PROJECT_DIR");
    c
}

fn bench(args: &[&str]) -> Output {
    twip().arg("bench").args(args).output().unwrap()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// A port where nothing listens.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn n_sends_exactly_n_requests() {
    let s = serve(Behavior::Ok);
    let out = bench(&[&s.url("/x?y=1"), "-n", "137", "-c", "7", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(v["requests"], 137);
    assert_eq!(v["responses"], 137);
    assert_eq!(v["status_codes"]["200"], 137);
    assert_eq!(v["errors"], serde_json::json!({}));
    assert_eq!(v["bytes"]["body"], 137 * 5);
    assert_eq!(s.seen.requests.load(Ordering::SeqCst), 137);
    // Keep-alive: one connection per task, reused.
    assert_eq!(s.seen.connections.load(Ordering::SeqCst), 7);
    assert_eq!(v["connections_opened"], 7);
    let log = s.seen.log.lock().unwrap();
    assert!(
        log[0].0.starts_with("GET /x?y=1 HTTP/1.1\r\n"),
        "{}",
        log[0].0
    );
    assert!(log[0].0.contains(&format!("Host: {}\r\n", s.addr)));
}

#[test]
fn the_json_object_has_the_documented_fields() {
    let s = serve(Behavior::Ok);
    let out = bench(&[&s.url("/"), "-n", "50", "-c", "5", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    for k in [
        "target",
        "method",
        "connections",
        "threads",
        "keepalive",
        "duration_s",
        "requests",
        "responses",
        "rps",
        "failed",
        "error_rate",
        "http_failures",
        "cut",
        "interrupted",
        "latency_s",
        "status_codes",
        "errors",
        "histogram",
        "bytes",
        "connections_opened",
        "busy_poll",
        "nap_us",
        "naps",
        "sched",
    ] {
        assert!(v.get(k).is_some(), "no `{k}` in {v:#}");
    }
    let l = &v["latency_s"];
    for k in [
        "min", "mean", "stdev", "max", "p10", "p25", "p50", "p75", "p90", "p95", "p99", "p999",
    ] {
        assert!(l[k].is_number(), "latency_s.{k} in {v:#}");
    }
    let f = |k: &str| l[k].as_f64().unwrap();
    assert!(f("min") <= f("p50") && f("p50") <= f("p90") && f("p90") <= f("p99"));
    assert!(f("p99") <= f("max") && f("min") > 0.0);
    assert!(v["rps"].as_f64().unwrap() > 0.0);
    assert!(v["duration_s"].as_f64().unwrap() > 0.0);
    assert_eq!(v["target"], s.url("/"));
    assert_eq!(v["method"], "GET");
    assert_eq!(v["keepalive"], true);
    let hist: u64 = v["histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(hist, 50);
    // Nothing but the object on stdout.
    assert!(String::from_utf8_lossy(&out.stdout)
        .trim_end()
        .ends_with('}'));
}

#[test]
fn the_text_report() {
    let s = serve(Behavior::Ok);
    let out = bench(&[&s.url("/"), "-n", "40", "-c", "4"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let t = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "Summary:",
        "Requests:     40 (40 responses, 0 errors)",
        "Requests/sec:",
        "Slowest:",
        "Fastest:",
        "Average:",
        "Latency histogram:",
        "Latency distribution:",
        "     10% in ",
        "   99.9% in ",
        "Status code distribution:",
        "[200] 40 responses (100.00%)",
    ] {
        assert!(t.contains(needle), "no {needle:?} in:\n{t}");
    }
    assert!(!t.contains("Errors:"));
    assert!(t.contains('■'));
}

#[test]
fn a_post_body_from_a_file_arrives_intact() {
    let s = serve(Behavior::Ok);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body.bin");
    // Binary, with CRLFs and NULs, larger than the socket buffers.
    let body: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .chain(*b"\r\n\r\n\0end")
        .collect();
    std::fs::File::create(&file)
        .unwrap()
        .write_all(&body)
        .unwrap();
    let out = bench(&[
        &s.url("/upload"),
        "-D",
        file.to_str().unwrap(),
        "-T",
        "application/x-test",
        "-n",
        "3",
        "-c",
        "2",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json_of(&out)["responses"], 3);
    let log = s.seen.log.lock().unwrap();
    assert_eq!(log.len(), 3);
    for (head, got) in log.iter() {
        assert!(head.starts_with("POST /upload HTTP/1.1\r\n"), "{head}");
        assert!(
            head.contains("\r\nContent-Type: application/x-test\r\n"),
            "{head}"
        );
        assert!(
            got == &body,
            "the body differs ({} bytes vs {})",
            got.len(),
            body.len()
        );
    }
}

#[test]
fn ab_style_p_and_k_and_headers() {
    let s = serve(Behavior::Ok);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.json");
    std::fs::write(&file, br#"{"a": 1}"#).unwrap();
    let out = bench(&[
        &s.url("/"),
        "-k",
        "-p",
        file.to_str().unwrap(),
        "-T",
        "application/json",
        "-m",
        "put",
        "-H",
        "X-Run: 42",
        "-n",
        "2",
        "-c",
        "1",
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let log = s.seen.log.lock().unwrap();
    assert_eq!(log.len(), 2);
    assert!(log[0].0.starts_with("PUT / HTTP/1.1\r\n"));
    assert!(log[0].0.contains("\r\nX-Run: 42\r\n"));
    assert!(log[0].0.contains("\r\nContent-Type: application/json\r\n"));
    assert_eq!(log[0].1, br#"{"a": 1}"#);
}

#[test]
fn a_server_that_resets_gives_reset_errors_and_exit_1() {
    let s = serve(Behavior::Reset);
    let out = bench(&[&s.url("/"), "-n", "20", "-c", "2", "--json"]);
    let v = json_of(&out);
    assert_eq!(v["errors"]["reset"], 20, "{v:#}");
    assert_eq!(v["responses"], 0);
    assert_eq!(v["requests"], 20);
    assert_eq!(v["latency_s"], Value::Null);
    assert_eq!(
        out.status.code(),
        Some(1),
        "no response at all is a failure"
    );
    assert!(
        stderr(&out).contains("no request got a response"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_stalled_server_gives_timeouts() {
    let s = serve(Behavior::Stall);
    let out = bench(&[
        &s.url("/"),
        "-n",
        "4",
        "-c",
        "2",
        "--timeout",
        "200ms",
        "--json",
    ]);
    let v = json_of(&out);
    assert_eq!(v["errors"]["timeout"], 4, "{v:#}");
    assert_eq!(v["responses"], 0);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn http_500s_are_responses_that_failed_and_trip_the_gate() {
    let s = serve(Behavior::Error500);
    let out = bench(&[&s.url("/"), "-n", "30", "-c", "3", "--json"]);
    assert_eq!(out.status.code(), Some(0), "no gate: the run completed");
    let v = json_of(&out);
    assert_eq!(v["status_codes"]["500"], 30);
    assert_eq!(v["errors"], serde_json::json!({}));
    assert_eq!(v["failed"], 30);
    assert_eq!(v["http_failures"], 30);
    assert_eq!(v["error_rate"], 1.0);

    let out = bench(&[
        &s.url("/"),
        "-n",
        "30",
        "-c",
        "3",
        "--max-error-rate",
        "10%",
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--max-error-rate"),
        "{}",
        stderr(&out)
    );
    // The report is still printed.
    assert!(String::from_utf8_lossy(&out.stdout).contains("[500] 30 responses"));
}

#[test]
fn a_healthy_run_passes_a_strict_gate() {
    let s = serve(Behavior::Ok);
    let out = bench(&[&s.url("/"), "-n", "25", "-c", "5", "--max-error-rate", "0"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn nothing_listening_is_refused_and_exit_1() {
    let port = closed_port();
    let out = bench(&[
        &format!("http://127.0.0.1:{port}/"),
        "-n",
        "10",
        "-c",
        "2",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v = json_of(&out);
    assert_eq!(v["errors"]["refused"], 10, "{v:#}");
    assert_eq!(v["responses"], 0);
    assert!(stderr(&out).contains("unreachable"), "{}", stderr(&out));
}

#[test]
fn requests_cut_by_the_deadline_are_not_errors() {
    let s = serve(Behavior::Slow);
    let out = bench(&[&s.url("/"), "-z", "1s", "-c", "4", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(v["errors"], serde_json::json!({}), "{v:#}");
    assert_eq!(v["failed"], 0);
    assert!(v["cut"].as_u64().unwrap() >= 1, "{v:#}");
    let responses = v["responses"].as_u64().unwrap();
    assert!(responses >= 1);
    assert_eq!(v["requests"].as_u64().unwrap(), responses);
    // The server saw the cut requests too.
    assert!(s.seen.requests.load(Ordering::SeqCst) > responses);
}

#[test]
fn chunked_bodies_and_connection_close_are_handled() {
    let s = serve(Behavior::ChunkedSometimesClose);
    let out = bench(&[&s.url("/"), "-n", "40", "-c", "2", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(v["responses"], 40, "{v:#}");
    assert_eq!(v["errors"], serde_json::json!({}));
    assert_eq!(v["bytes"]["body"], 40 * 11);
    // Every second response closes: about one connection per two requests.
    let conns = s.seen.connections.load(Ordering::SeqCst);
    assert!((20..=22).contains(&conns), "{conns} connections");
}

#[test]
fn a_connection_closed_while_idle_is_replaced_or_counted_never_resent() {
    // The server answers and closes each connection without saying so. twip replaces the
    // connection before writing when it has seen the close; when the close crosses the next
    // request, that request is `dropped_on_reuse`. Which of the two happens is a race, so
    // the test checks what holds either way: nothing is sent twice or lost from the count.
    let s = serve(Behavior::CloseSilently);
    let out = bench(&[&s.url("/"), "-n", "30", "-c", "3", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    let responses = v["responses"].as_u64().unwrap();
    let dropped = v["errors"]["dropped_on_reuse"].as_u64().unwrap_or(0);
    assert_eq!(responses + dropped, 30, "{v:#}");
    assert_eq!(v["requests"], 30);
    assert_eq!(
        v["errors"].as_object().unwrap().len(),
        usize::from(dropped > 0),
        "no other kind of error: {v:#}"
    );
    assert!(responses >= 1);
    settle(&s);
    // The server answers every request it reads: a request it read is a response.
    assert_eq!(s.seen.requests.load(Ordering::SeqCst), responses);
    assert_eq!(v["retries"], 0);
}

#[test]
fn a_request_dropped_on_a_reused_connection_is_counted_not_resent() {
    // A POST: the first is answered; the second is read by the server, which closes the
    // connection without answering. It must reach the server once and count as an error.
    let s = serve(Behavior::AnswerFirstThenDrop);
    let out = bench(&[
        &s.url("/vote"),
        "-d",
        "vote=1",
        "-n",
        "2",
        "-c",
        "1",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(v["responses"], 1, "{v:#}");
    assert_eq!(
        v["errors"],
        serde_json::json!({"dropped_on_reuse": 1}),
        "{v:#}"
    );
    assert_eq!(v["requests"], 2);
    assert_eq!(v["sent"], 2);
    assert_eq!(v["retries"], 0);
    assert_eq!(v["failed"], 1);
    settle(&s);
    assert_eq!(
        s.seen.requests.load(Ordering::SeqCst),
        2,
        "a POST sent twice"
    );
    assert!(s
        .seen
        .log
        .lock()
        .unwrap()
        .iter()
        .all(|(h, b)| h.starts_with("POST /vote ") && b == b"vote=1"));

    // Many connections: what the server received is exactly what twip reports, and the
    // drops count against --max-error-rate.
    let s = serve(Behavior::AnswerFirstThenDrop);
    let out = bench(&[
        &s.url("/"),
        "-n",
        "30",
        "-c",
        "3",
        "--max-error-rate",
        "10%",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--max-error-rate"),
        "{}",
        stderr(&out)
    );
    let v = json_of(&out);
    let responses = v["responses"].as_u64().unwrap();
    let dropped = v["errors"]["dropped_on_reuse"].as_u64().unwrap_or(0);
    assert!(dropped >= 1, "{v:#}");
    assert_eq!(responses + dropped, 30, "{v:#}");
    settle(&s);
    let received = s.seen.requests.load(Ordering::SeqCst);
    assert_eq!(received, responses + dropped, "{v:#}");
    assert_eq!(v["sent"].as_u64().unwrap(), received);
    assert_eq!(
        v["connections_opened"].as_u64().unwrap(),
        s.seen.connections.load(Ordering::SeqCst) - 1
    );

    // The text report names it.
    let s = serve(Behavior::AnswerFirstThenDrop);
    let out = bench(&[&s.url("/"), "-n", "2", "-c", "1"]);
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(t.contains("Requests:     2 (1 responses, 1 errors)"), "{t}");
    assert!(
        t.contains("[dropped_on_reuse] 1 (written on a reused connection"),
        "{t}"
    );
    assert!(t.contains("Sent:         2 requests"), "{t}");
}

#[test]
fn retry_idempotent_resends_only_idempotent_requests_and_reports_it() {
    let s = serve(Behavior::AnswerFirstThenDrop);
    let out = bench(&[
        &s.url("/"),
        "-n",
        "2",
        "-c",
        "1",
        "--retry-idempotent",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(v["responses"], 2, "{v:#}");
    assert_eq!(v["errors"], serde_json::json!({}), "{v:#}");
    assert_eq!(v["retries"], 1);
    assert_eq!(v["retry_idempotent"], true);
    assert_eq!(v["sent"], 2);
    settle(&s);
    // Sent twice on the wire: once dropped, once answered.
    assert_eq!(s.seen.requests.load(Ordering::SeqCst), 3);

    // A POST is not idempotent: never resent, even with the flag.
    let s = serve(Behavior::AnswerFirstThenDrop);
    let out = bench(&[
        &s.url("/"),
        "-d",
        "x",
        "-n",
        "2",
        "-c",
        "1",
        "--retry-idempotent",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(t.contains("Retries:      0 "), "{t}");
    assert!(t.contains("[dropped_on_reuse] 1 "), "{t}");
    settle(&s);
    assert_eq!(s.seen.requests.load(Ordering::SeqCst), 2);
}

#[test]
fn response_heads_up_to_the_limit_are_read_and_larger_ones_named() {
    let s = serve(Behavior::BigHead(20 * 1024));
    let out = bench(&[&s.url("/"), "-n", "5", "-c", "1", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(v["responses"], 5, "{v:#}");
    assert_eq!(v["errors"], serde_json::json!({}));
    assert_eq!(v["bytes"]["body"], 25);
    assert_eq!(v["max_header_size"], 65536);
    assert_eq!(s.seen.connections.load(Ordering::SeqCst), 1, "kept alive");

    let s = serve(Behavior::BigHead(100 * 1024));
    let out = bench(&[&s.url("/"), "-n", "3", "-c", "1", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(
        v["errors"],
        serde_json::json!({"head_too_large": 3}),
        "{v:#}"
    );
    let e = stderr(&out);
    assert!(
        e.contains("response head larger than 65536 bytes"),
        "the real cause: {e}"
    );
    assert!(!e.contains("unreachable"), "{e}");

    // The limit is configurable, both ways.
    let out = bench(&[
        &s.url("/"),
        "-n",
        "2",
        "-c",
        "1",
        "--max-header-size",
        "128KiB",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json_of(&out)["responses"], 2);
    let s = serve(Behavior::BigHead(20 * 1024));
    let out = bench(&[&s.url("/"), "-n", "1", "--max-header-size", "8k"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("[head_too_large] 1 (response head larger than 8192 bytes"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_fixed_rate_accounts_for_every_request_and_connection() {
    // 100 requests/s for 1 s over 2 connections, against a server that answers after 300 ms,
    // with a 200 ms timeout: each request takes at least 200 ms (a timeout never fires early),
    // so at most 2 x 6 of the 100 due can be picked up and the rest must be reported as not
    // sent. Each timeout closes its connection, so many are opened.
    let s = serve(Behavior::Slow);
    let out = bench(&[
        &s.url("/"),
        "--rate",
        "100",
        "-z",
        "1s",
        "-c",
        "2",
        "--timeout",
        "200ms",
        "--json",
    ]);
    let v = json_of(&out);
    // What the server saw, first: every connection counted, and only requests that were
    // written (so the server read them) time out.
    let accepted = settle(&s);
    let received = s.seen.requests.load(Ordering::SeqCst);
    assert_eq!(v["connections_opened"].as_u64(), Some(accepted), "{v:#}");
    let timeouts = v["errors"]["timeout"].as_u64().unwrap_or(0);
    assert!(timeouts >= 1, "{v:#}");
    assert!(timeouts <= received, "{received} received: {v:#}");
    let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("no {k}: {v:#}"));
    let ns = &v["not_sent"];
    let m = |k: &str| {
        ns[k]
            .as_u64()
            .unwrap_or_else(|| panic!("no not_sent.{k}: {v:#}"))
    };
    assert_eq!(n("due"), 100, "{v:#}");
    assert_eq!(n("due"), n("sent") + m("total"), "{v:#}");
    assert_eq!(
        m("total"),
        m("connections_busy") + m("connect_failed") + m("run_ended")
    );
    assert!(m("connections_busy") >= 80, "{v:#}");
    assert!(n("sent") >= 2, "{v:#}");
    assert!(timeouts <= n("sent"), "{v:#}");
    assert_eq!(v["errors"].as_object().unwrap().len(), 1, "{v:#}");
    assert_eq!(received, n("sent"), "{v:#}");

    // The text report says it too.
    let s = serve(Behavior::Slow);
    let out = bench(&[
        &s.url("/"),
        "--rate",
        "50",
        "-z",
        "500ms",
        "-c",
        "1",
        "--timeout",
        "100ms",
    ]);
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(t.contains("Schedule:     25 due, "), "{t}");
    assert!(t.contains(" all connections busy, "), "{t}");
    // Without --rate there is no schedule.
    let s = serve(Behavior::Ok);
    let v = json_of(&bench(&[&s.url("/"), "-n", "3", "--json"]));
    assert_eq!(v["due"], Value::Null);
    assert_eq!(v["not_sent"], Value::Null);
    assert_eq!(v["sent"], 3);
}

#[test]
fn invalid_request_targets_and_conflicting_framing_are_refused() {
    let s = serve(Behavior::Ok);
    let url = s.url("/");
    for (args, msg) in [
        (
            vec![s.url("/a b")],
            "holds a space, which is not valid in an HTTP request target",
        ),
        (vec![s.url("/?q=a b")], "holds a space"),
        (vec![s.url("/a\r\nX-Injected: 1")], "U+000D"),
        (vec![s.url("/a\u{1}")], "U+0001"),
        (vec![s.url("/a%g0")], "two hex digits"),
        (
            vec![url.clone(), "--path".into(), "/a b".into()],
            "--path: the path `/a b` holds a space",
        ),
        (
            vec![
                url.clone(),
                "-H".into(),
                "Content-Length: 3".into(),
                "-d".into(),
                "abcdef".into(),
            ],
            "conflicts with the body, which is 6 bytes",
        ),
        (
            vec![url.clone(), "-H".into(), "Content-Length: 5".into()],
            "conflicts with the body, which is 0 bytes",
        ),
        (
            vec![
                url.clone(),
                "-H".into(),
                "Transfer-Encoding: chunked".into(),
                "-d".into(),
                "abc".into(),
            ],
            "never encodes it",
        ),
        (
            vec![url.clone(), "-H".into(), "X-A: a\u{7}".into()],
            "U+0007",
        ),
    ] {
        let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
        a.extend(["-n", "1"]);
        let out = bench(&a);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(msg), "{args:?}: {}", stderr(&out));
    }
    // A Content-Length that agrees with the body is fine.
    let out = bench(&[
        &url,
        "-H",
        "Content-Length: 6",
        "-d",
        "abcdef",
        "-n",
        "1",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        s.seen.requests.load(Ordering::SeqCst),
        1,
        "only the valid request was sent"
    );
}

#[test]
fn no_keepalive_opens_a_connection_per_request() {
    let s = serve(Behavior::Ok);
    let out = bench(&[
        &s.url("/"),
        "-n",
        "20",
        "-c",
        "2",
        "--no-keepalive",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(v["responses"], 20);
    assert_eq!(v["keepalive"], false);
    assert_eq!(v["connections_opened"], 20);
    assert_eq!(s.seen.connections.load(Ordering::SeqCst), 20);
    let log = s.seen.log.lock().unwrap();
    assert!(log
        .iter()
        .all(|(h, _)| h.contains("\r\nConnection: close\r\n")));
}

#[test]
fn head_responses_have_no_body_and_interim_responses_are_skipped() {
    let s = serve(Behavior::Ok);
    let out = bench(&[
        &s.url("/"),
        "-m",
        "HEAD",
        "-n",
        "10",
        "-c",
        "2",
        "--timeout",
        "5s",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(v["responses"], 10, "{v:#}");
    assert_eq!(v["bytes"]["body"], 0);
    assert_eq!(v["method"], "HEAD");

    let s = serve(Behavior::Continue);
    let out = bench(&[&s.url("/"), "-n", "10", "-c", "2", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(v["status_codes"], serde_json::json!({"200": 10}), "{v:#}");
    assert_eq!(v["bytes"]["body"], 20);
}

#[test]
fn path_replaces_the_path_of_a_url() {
    let s = serve(Behavior::Ok);
    let out = bench(&[&s.url("/a?b"), "--path", "other", "-n", "1", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json_of(&out)["target"], s.url("/other"));
    assert!(s.seen.log.lock().unwrap()[0]
        .0
        .starts_with("GET /other HTTP/1.1"));
}

#[test]
fn a_fixed_rate_sends_the_count() {
    let s = serve(Behavior::Ok);
    let out = bench(&[
        &s.url("/"),
        "--rate",
        "400",
        "-n",
        "40",
        "-c",
        "4",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(v["responses"], 40);
    assert_eq!(v["rate"], 400.0);
    assert_eq!(s.seen.requests.load(Ordering::SeqCst), 40);
}

#[test]
fn a_fixed_rate_counts_the_wait_of_requests_sent_late() {
    // One connection, a request scheduled every 50 ms, each answered after at least 300 ms:
    // request k (from 0) is scheduled at 50k ms but cannot be sent before 300k ms, so with no
    // coordinated omission its latency is at least 300(k+1) - 50k ms; the 6th's, 1550 ms.
    // (A lower bound the server's sleeps guarantee, not a timing.)
    let s = serve(Behavior::Slow);
    let out = bench(&[&s.url("/"), "--rate", "20", "-n", "6", "-c", "1", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(v["responses"], 6);
    let max = v["latency_s"]["max"].as_f64().unwrap();
    assert!(
        max >= 1.5,
        "the slowest latency {max} s leaves out the wait"
    );
    let min = v["latency_s"]["min"].as_f64().unwrap();
    assert!(min >= 0.29, "{min}");
}

#[test]
fn several_threads_share_the_count() {
    let s = serve(Behavior::Ok);
    let out = bench(&[
        &s.url("/"),
        "-n",
        "101",
        "-c",
        "6",
        "--threads",
        "3",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(v["responses"], 101);
    assert_eq!(v["threads"], 3);
    // At most one connection per task; a task whose thread started after the others had
    // taken all 101 requests opens none (seen on a loaded machine: 5). The server counts
    // what twip reports, read once it has accepted everything (twip may exit before).
    let opened = v["connections_opened"].as_u64().unwrap();
    assert!((1..=6).contains(&opened), "{v:#}");
    assert_eq!(settle(&s), opened);
    assert_eq!(s.seen.requests.load(Ordering::SeqCst), 101);
}

#[test]
fn default_threads_depend_on_keepalive() {
    let s = serve(Behavior::Ok);
    let url = s.url("/");
    let run = |extra: &[&str]| {
        let mut args = vec![url.as_str(), "-n", "600", "--json"];
        args.extend_from_slice(extra);
        let out = bench(&args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let v = json_of(&out);
        assert_eq!(v["responses"], 600);
        v["threads"].as_u64().unwrap() as usize
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Keep-alive: half the cores, at least one (the server on the same machine needs the rest).
    assert_eq!(run(&["-c", "50"]), (cores / 2).max(1));
    // Without: all of them, no more than there are connections.
    assert_eq!(run(&["-c", "50", "--no-keepalive"]), cores.min(50));
    assert_eq!(run(&["-c", "1", "--no-keepalive"]), 1);
    // Given: as given.
    assert_eq!(run(&["-c", "50", "--no-keepalive", "--threads", "1"]), 1);
    assert_eq!(s.seen.requests.load(Ordering::SeqCst), 2400);
}

#[test]
fn plot_writes_an_svg() {
    let s = serve(Behavior::Ok);
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("run.svg");
    let out = bench(&[
        &s.url("/"),
        "-n",
        "200",
        "-c",
        "4",
        "-q",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"));
    assert!(text.contains("Latency histogram"));
    assert!(text.contains("Latency over time"));
    assert!(text.contains("<polyline"));
}

#[test]
fn bad_input_is_exit_2_and_sends_nothing() {
    let s = serve(Behavior::Ok);
    for (args, msg) in [
        (
            vec!["https://127.0.0.1/", "--cacert", "/nonexistent/ca.pem"],
            "cannot read the CA file",
        ),
        (vec!["ftp://127.0.0.1/"], "unsupported scheme"),
        (vec![s.url("/").as_str(), "-H", "no colon"], "Name: value"),
        (vec![s.url("/").as_str(), "-c", "0"], "-c"),
        (
            vec![s.url("/").as_str(), "-D", "/nonexistent/file"],
            "cannot read",
        ),
        (
            vec![s.url("/").as_str(), "--max-error-rate", "150%"],
            "between 0 and 1",
        ),
        (vec![s.url("/").as_str(), "-z", "soon"], "duration"),
    ] {
        let out = bench(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(msg), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(s.seen.requests.load(Ordering::SeqCst), 0);
}

fn project(yaml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("environments")).unwrap();
    std::fs::write(dir.path().join("environments/site.yaml"), yaml).unwrap();
    dir
}

#[test]
fn an_environment_target_uses_its_proxy_port_and_path() {
    let s = serve(Behavior::Ok);
    let dir = project(&format!(
        "services:\n  web:\n    image: nginx:1.25\nproxy:\n  image: haproxy:2.9\n  port: {}\n  routes:\n    - service: web\n",
        s.addr.port()
    ));
    let out = twip()
        .args(["--project-dir", dir.path().to_str().unwrap()])
        .args([
            "bench", "site", "--path", "/news", "-n", "5", "-c", "1", "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(
        v["target"],
        format!("http://127.0.0.1:{}/news", s.addr.port())
    );
    assert_eq!(v["responses"], 5);
    assert!(s.seen.log.lock().unwrap()[0]
        .0
        .starts_with("GET /news HTTP/1.1"));
}

#[test]
fn an_environment_without_a_proxy_is_invalid_input() {
    let dir = project("services:\n  web:\n    image: nginx:1.25\n");
    let out = twip()
        .args(["--project-dir", dir.path().to_str().unwrap()])
        .args(["bench", "site"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no `proxy` section"),
        "{}",
        stderr(&out)
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_and_prints_the_report() {
    let s = serve(Behavior::Slow);
    let child = twip()
        .args(["bench", &s.url("/"), "-z", "60s", "-c", "2", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the run is under way (its signal handler is set before the first request).
    for _ in 0..500 {
        if s.seen.requests.load(Ordering::SeqCst) >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        s.seen.requests.load(Ordering::SeqCst) >= 2,
        "the run did not start"
    );
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(v["interrupted"], true);
    assert_eq!(v["errors"], serde_json::json!({}));
    assert!(v["cut"].as_u64().unwrap() >= 1);
}

/// Runs `twip bench ARGS` and returns its output and its voluntary context switches (all its
/// threads: `getrusage` of the child, read by `wait4`): how often it blocked waiting.
#[allow(clippy::zombie_processes)] // reaped by `wait4`, which `Child::wait` cannot return
fn bench_switches(args: &[&str]) -> (Output, i64) {
    use std::io::Read as _;
    let mut child = twip()
        .arg("bench")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut e = Vec::new();
        err.read_to_end(&mut e).unwrap();
        e
    });
    let mut stdout = Vec::new();
    out.read_to_end(&mut stdout).unwrap();
    let stderr = reader.join().unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child, which has not
    // been waited for (the `Child` is dropped without `wait`).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    use std::os::unix::process::ExitStatusExt as _;
    let out = Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout,
        stderr,
    };
    (out, usage.ru_nvcsw)
}

#[test]
fn busy_poll_never_blocks_waiting_and_counts_the_same() {
    // One connection to a server that answers after 2 ms, so each request waits for its
    // response: without --busy-poll the thread blocks in the runtime's wait for events about
    // once per request; with it, it polls again instead and never blocks (about 10 switches
    // for the whole process: the main thread waiting for the worker, thread starts). The
    // pause makes the wait certain: against a server that answers at once, a load thread
    // preempted by the server on its core (SCHED_BATCH lets the server run first) finds the
    // response already there and need not block, and the count then says little.
    let s = serve(Behavior::Paced);
    let url = s.url("/");
    let (out, sleeping) = bench_switches(&[&url, "-n", "500", "-c", "1", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(v["responses"], 500);
    assert_eq!(v["busy_poll"], false);
    let (out, busy) = bench_switches(&[&url, "-n", "500", "-c", "1", "--json", "--busy-poll"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(v["responses"], 500);
    assert_eq!(v["requests"], 500);
    assert_eq!(v["errors"], serde_json::json!({}));
    assert_eq!(v["busy_poll"], true);
    assert_eq!(s.seen.requests.load(Ordering::SeqCst), 1000);
    eprintln!("voluntary switches for 500 requests: {sleeping} without --busy-poll, {busy} with");
    assert!(
        sleeping > 400,
        "without --busy-poll the thread should block for each response: {sleeping} voluntary switches for 500 requests"
    );
    assert!(
        busy < 100,
        "with --busy-poll the thread blocked {busy} times (without: {sleeping})"
    );
    // A run with a deadline ends on time too (the polling task does not keep it alive), and
    // the text report says how it ran.
    let out = bench(&[&url, "-z", "300ms", "-c", "2", "--busy-poll"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("busy-polling)"), "{text}");
}

#[test]
fn a_thread_naps_only_with_many_requests_in_flight_on_kept_alive_connections() {
    let s = serve(Behavior::Ok);
    let url = s.url("/");
    let run = |args: &[&str]| {
        let mut a = vec![url.as_str(), "--json"];
        a.extend_from_slice(args);
        let out = bench(&a);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        json_of(&out)
    };
    // 16 requests in flight on one thread: polls that find nothing are frequent, and each
    // is a nap of the default 50 µs. The counts are the same as without.
    let v = run(&["-n", "20000", "-c", "16", "--threads", "1"]);
    assert_eq!(v["nap_us"], 50);
    assert!(v["naps"].as_u64().unwrap() > 0, "{v:#}");
    assert_eq!(v["responses"], 20000);
    assert_eq!(v["sent"], 20000);
    assert_eq!(v["errors"], serde_json::json!({}));
    // --nap 0: never.
    let v = run(&["-n", "20000", "-c", "16", "--threads", "1", "--nap", "0"]);
    assert_eq!(
        (v["nap_us"].as_u64(), v["naps"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(v["responses"], 20000);
    // Fewer than 8 in flight on the thread: the thread sleeps until a response comes.
    let v = run(&["-n", "5000", "-c", "4", "--threads", "1"]);
    assert_eq!(
        (v["nap_us"].as_u64(), v["naps"].as_u64()),
        (Some(50), Some(0))
    );
    // Not with --rate (latency counts from the schedule), --no-keepalive or --busy-poll.
    for args in [
        &["-n", "400", "-c", "16", "--rate", "2000"][..],
        &["-n", "400", "-c", "16", "--no-keepalive"][..],
        &["-n", "4000", "-c", "16", "--busy-poll"][..],
    ] {
        let v = run(args);
        assert_eq!(
            (v["nap_us"].as_u64(), v["naps"].as_u64()),
            (Some(0), Some(0)),
            "{args:?}: {v:#}"
        );
    }
    assert_eq!(
        s.seen.requests.load(Ordering::SeqCst),
        20000 * 2 + 5000 + 400 * 2 + 4000
    );
    // The text report says so; a nap over 1 ms is refused before anything is sent.
    let out = bench(&[&url, "-n", "100", "-c", "8", "--nap", "200us"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("napping 200µs"), "{text}");
    let out = bench(&[&url, "-n", "100", "--nap", "2ms"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("longer than 1ms"), "{}", stderr(&out));
    assert_eq!(
        s.seen.requests.load(Ordering::SeqCst),
        20000 * 2 + 5000 + 400 * 2 + 4000 + 100
    );
}

/// The scheduling policy (`/proc/PID/task/TID/stat`, field 41) of each of a process's threads
/// named `bench-*`, read while it runs.
fn bench_thread_policies(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut policies = Vec::new();
    for t in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        // "TID (COMM) STATE ...": the fields after the command's closing parenthesis start
        // at field 3, so the policy (field 41) is the 39th of them.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if !head.contains("(bench-") {
            continue;
        }
        if let Some(p) = rest.split_whitespace().nth(38).and_then(|f| f.parse().ok()) {
            policies.push(p);
        }
    }
    policies
}

#[test]
fn the_load_threads_run_sched_batch_unless_told_otherwise() {
    // SCHED_BATCH is 3 and SCHED_OTHER 0 (linux/sched.h). A slow server keeps each run
    // going for a few seconds, long enough to read the threads' policy while they run.
    const SCHED_OTHER: u32 = 0;
    const SCHED_BATCH: u32 = 3;
    let s = serve(Behavior::Slow);
    let url = s.url("/");
    for (extra, want, name) in [
        (None, SCHED_BATCH, "batch"),
        (Some("normal"), SCHED_OTHER, "normal"),
    ] {
        let mut cmd = twip();
        cmd.args([
            "bench",
            &url,
            "-z",
            "3s",
            "-c",
            "4",
            "--threads",
            "2",
            "--json",
        ]);
        if let Some(policy) = extra {
            cmd.args(["--sched", policy]);
        }
        let child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        while seen.len() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            seen = bench_thread_policies(child.id());
        }
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(
            seen,
            vec![want, want],
            "--sched {name}: the two bench threads' policies"
        );
        let v = json_of(&out);
        assert_eq!(v["sched"], name);
        assert!(v["responses"].as_u64().unwrap() > 0, "{v:#}");
    }
}
