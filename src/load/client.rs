//! The client loop of one connection: a task sends the prebuilt request bytes, reads the
//! response with the parser of [`crate::http`], records it in its thread's [`Stats`] and
//! goes again on the same connection (keep-alive) or a new one. Nothing is allocated per
//! request: the request bytes are shared, each task owns one read buffer for its lifetime,
//! and latencies go into a fixed-size HDR histogram per thread, merged at the end.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::driver::{Config, Counters, Shared, NAP_MIN_IN_FLIGHT};
use super::stats::{Failure, Stats};
use crate::http::{self, Chunked, Framing};

/// How late a tokio timer may fire by itself.
const TIMER_GRANULARITY: Duration = Duration::from_millis(1);

/// Read buffer per connection. It grows, up to `Config::max_head`, only for a response head
/// that does not fit, so memory stays small with many connections.
const BUF_SIZE: usize = 16 * 1024;

/// One thread's state, shared by its connection tasks (single-threaded: `Rc`, `Cell`).
pub(super) struct Ctx {
    pub(super) cfg: Arc<Config>,
    pub(super) shared: Arc<Shared>,
    pub(super) index: usize,
    pub(super) start: Instant,
    pub(super) deadline: Option<Instant>,
    /// Nanoseconds between two scheduled requests (`--rate`).
    pub(super) interval_ns: Option<f64>,
    pub(super) stats: RefCell<Stats>,
    pub(super) in_flight: Cell<u64>,
    pub(super) bytes_sent: Cell<u64>,
    pub(super) connects: Cell<u64>,
    pub(super) sent: Cell<u64>,
    pub(super) retries: Cell<u64>,
    pub(super) naps: Cell<u64>,
    pub(super) taken: Cell<u64>,
    pub(super) unsent_errors: Cell<u64>,
    /// The address that accepted last.
    pub(super) preferred: Cell<usize>,
    /// The napping poller's waker while it waits for a response (see `driver::nap_poller`).
    pub(super) napper: Cell<Option<std::task::Waker>>,
}

/// The read buffer's filled window.
struct Window {
    start: usize,
    end: usize,
}

impl Window {
    fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }
}

struct Response {
    status: u16,
    /// Bytes of this response on the wire.
    wire: u64,
    body: u64,
    close: bool,
}

/// A failed exchange, and how far it got.
struct Fail {
    kind: Failure,
    stage: Stage,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The first write failed: the kernel accepted no byte of the request, so the server
    /// cannot have seen it.
    Unsent,
    /// Written (at least in part), and not a byte of the response arrived.
    NothingBack,
    /// Part of the response arrived.
    Partial,
}

/// A connection, and whether it is counted in `connects` yet. Counting happens on the
/// first successful write (the fast path); a connection dropped before that (a timeout
/// while connecting, the end of the run) is counted when dropped if it was established.
struct Conn {
    stream: Stream,
    counted: bool,
    ctx: Rc<Ctx>,
}

/// A connection's byte stream: plain TCP (the hot path, unchanged but for one match), or
/// TLS over it (`https://`).
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    #[inline]
    async fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(b).await,
            Stream::Tls(s) => {
                let n = s.write(b).await?;
                // rustls buffers what it encrypts: send it now, the response waits for it.
                s.flush().await?;
                Ok(n)
            }
        }
    }

    #[inline]
    async fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(b).await,
            Stream::Tls(s) => s.read(b).await,
        }
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }

    /// See [`idle_and_open`]. Over TLS the records that arrive while idle (session tickets)
    /// carry no data: one poll without waiting tells an open connection from a closed one.
    fn idle_and_open(&mut self, buf: &mut [u8]) -> bool {
        match self {
            Stream::Plain(s) => idle_and_open(s, buf),
            Stream::Tls(s) => {
                use futures_util::FutureExt;
                s.read(buf).now_or_never().is_none()
            }
        }
    }
}

impl Conn {
    fn count(&mut self) {
        if !self.counted {
            self.counted = true;
            self.ctx.connects.set(self.ctx.connects.get() + 1);
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // `getpeername` succeeds only on an established connection; one syscall, and only
        // for a connection that never carried a request.
        if !self.counted && self.stream.tcp().peer_addr().is_ok() {
            self.count();
        }
    }
}

impl Ctx {
    /// Waits for the next request's turn; `None` when the run is over for this task.
    /// Returns the time the latency is measured from, and the time the request was picked
    /// up (its timeout runs from then: a request waiting for a free connection is late, not
    /// timed out).
    async fn next_start(&self) -> Option<(Instant, Instant)> {
        let ticket = match self.cfg.requests {
            Some(n) => {
                let i = self.shared.issued.fetch_add(1, Relaxed);
                if i >= n {
                    return None;
                }
                i
            }
            None if self.interval_ns.is_some() => self.shared.issued.fetch_add(1, Relaxed),
            None => 0,
        };
        let now = Instant::now();
        match self.interval_ns {
            Some(per) => {
                let intended = self.start + Duration::from_nanos((ticket as f64 * per) as u64);
                if self.deadline.is_some_and(|d| intended >= d) {
                    return None;
                }
                self.taken.set(self.taken.get() + 1);
                if intended > now {
                    // On time. The timer fires up to about a millisecond late (its
                    // granularity), which is not the server's doing: measure from when it
                    // fires, but charge any lateness beyond that millisecond (a busy client).
                    tokio::time::sleep_until(intended.into()).await;
                    let woke = Instant::now();
                    Some((woke.min(intended + TIMER_GRANULARITY), woke))
                } else {
                    // Behind schedule (all connections were busy): measure from the
                    // intended time, so the wait counts (no coordinated omission).
                    Some((intended, now))
                }
            }
            None => {
                if self.deadline.is_some_and(|d| now >= d) {
                    return None;
                }
                Some((now, now))
            }
        }
    }

    /// Starts connecting to the preferred address and returns at once: the request is
    /// written straight away (on loopback the handshake is already done by then), and a
    /// write on a socket still connecting just waits for it. This saves a wake-up and a
    /// `getsockopt` per connection over awaiting the connect.
    ///
    /// Over TLS the handshake is awaited here (its time counts in the latency of the
    /// connection's first request, as the TCP handshake does); one per connection.
    async fn connect(self: &Rc<Self>) -> Result<Conn, Failure> {
        let addr = self.cfg.addrs[self.preferred.get()];
        // A request in one segment is never held back by Nagle; a larger one could be.
        let nodelay = self.cfg.request.len() > 1400 || self.cfg.tls.is_some();
        let tcp = start_connect(addr, nodelay).map_err(|e| classify(&e))?;
        let stream = match &self.cfg.tls {
            None => Stream::Plain(tcp),
            Some(t) => {
                let s = t
                    .connector
                    .connect(t.name.clone(), tcp)
                    .await
                    .map_err(|e| classify_tls(&e))?;
                Stream::Tls(Box::new(s))
            }
        };
        Ok(Conn {
            stream,
            counted: false,
            ctx: self.clone(),
        })
    }

    /// After a fresh connection failed: whether another address of the target is left to try.
    fn next_address(&self) -> bool {
        let n = self.cfg.addrs.len();
        if n > 1 {
            self.preferred.set((self.preferred.get() + 1) % n);
        }
        n > 1
    }

    fn counters(&self) -> &Counters {
        &self.shared.counters[self.index]
    }
}

pub(super) async fn connection(ctx: Rc<Ctx>) {
    let mut buf = vec![0u8; BUF_SIZE.min(ctx.cfg.max_head.max(1))];
    let mut win = Window { start: 0, end: 0 };
    let mut conn: Option<Conn> = None;
    // Whether a byte of the current request was written (for `sent`, and to tell a timeout
    // of a written request from one of a connection never established).
    let written = Cell::new(false);
    // One timer per connection, re-armed only when it would fire too early: arming a timer
    // for every request costs more than the rest of the client loop's bookkeeping.
    let timeout = ctx.cfg.timeout;
    let slack = timeout.map_or(Duration::ZERO, |t| t / 8);
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    let timer = tokio::time::sleep_until(far.into());
    tokio::pin!(timer);
    // Closed loop on kept-alive connections: the next request waits until the thread's
    // other ready tasks have run, so the requests of all the responses read in one turn go
    // out together, as wrk's do (it writes on the next writable event). The server then
    // finds them in one wake-up instead of being woken for each. Against nginx on the same
    // 2 cores, in three sets of alternating 2 s runs: 1-7% more requests/s (mean) than
    // writing at once (docs/bench.md). The latency is measured from after the wait: it is
    // the client's.
    let batch_writes = ctx.cfg.keepalive && ctx.interval_ns.is_none();
    loop {
        if batch_writes && conn.is_some() {
            // Puts the task at the back of its thread's queue of ready tasks, once (below).
            PendOnce::new(|w| w.wake_by_ref()).await;
        }
        let Some((t0, picked)) = ctx.next_start().await else {
            break;
        };
        written.set(false);
        ctx.in_flight.set(ctx.in_flight.get() + 1);
        let res = match timeout {
            Some(limit) => {
                let due = picked + limit;
                let armed = timer.deadline().into_std();
                if armed < due || armed > due + slack {
                    // Fires between `due` and `due + slack`, so ~8 requests a timeout apart
                    // share one arming. A request is never timed out before `due`.
                    timer.as_mut().reset((due + slack).into());
                }
                let fut = exchange(&ctx, &mut conn, &mut buf, &mut win, &written);
                tokio::pin!(fut);
                loop {
                    tokio::select! {
                        biased;
                        r = &mut fut => break r,
                        _ = &mut timer => {
                            if Instant::now() >= due {
                                // Nothing written: the connection was never established.
                                break Err(if written.get() {
                                    Failure::Timeout
                                } else {
                                    Failure::ConnectTimeout
                                });
                            }
                            timer.as_mut().reset(due.into());
                        }
                    }
                }
            }
            None => exchange(&ctx, &mut conn, &mut buf, &mut win, &written).await,
        };
        let t1 = Instant::now();
        ctx.in_flight.set(ctx.in_flight.get() - 1);
        let at = nanos(t1.saturating_duration_since(ctx.start));
        let failed = {
            let mut st = ctx.stats.borrow_mut();
            match res {
                Ok(r) => {
                    st.record_response(at, nanos(t1.saturating_duration_since(t0)), r.status);
                    st.bytes_received += r.wire;
                    st.body_bytes += r.body;
                    if r.close || !ctx.cfg.keepalive {
                        conn = None;
                        win.clear();
                    }
                    ctx.counters().responses.store(st.responses, Relaxed);
                    // Wake a dormant napping poller, only where it may nap (the response
                    // just read counts): below that it would wake for nothing, and its
                    // yield would cost a poll of the sockets per response.
                    if ctx.in_flight.get() + 1 >= NAP_MIN_IN_FLIGHT {
                        if let Some(w) = ctx.napper.take() {
                            w.wake();
                        }
                    }
                    false
                }
                Err(kind) => {
                    conn = None;
                    win.clear();
                    st.record_error(at, kind);
                    if !written.get() {
                        ctx.unsent_errors.set(ctx.unsent_errors.get() + 1);
                    }
                    ctx.counters().errors.store(st.error_count(), Relaxed);
                    true
                }
            }
        };
        if failed {
            // Some errors come back without touching the runtime (a connect that fails at
            // once): yield, so that a failing target cannot starve the other tasks, the
            // deadline or Ctrl-C.
            tokio::task::yield_now().await;
        }
    }
}

/// Pending once, after handing the task's waker to `f`; ready when polled again.
///
/// With `|w| w.wake_by_ref()` it puts the task at the back of its thread's queue of ready
/// tasks, once. Unlike tokio's `yield_now`, which holds the task until the runtime has
/// polled the sockets again (one `epoll_wait` more per turn), the task runs again in the
/// same turn, after the tasks that were ready before it. Against nginx on 2 cores: 0.65-0.8
/// `epoll_wait` per request instead of 1.25-1.4, and 1-7% more requests per CPU-second in
/// medians of alternating rounds (docs/bench.md). The napping poller keeps the waker instead
/// (`driver::nap_poller`).
pub(super) struct PendOnce<F>(Option<F>);

impl<F: FnOnce(&std::task::Waker) + Unpin> PendOnce<F> {
    pub(super) fn new(f: F) -> Self {
        PendOnce(Some(f))
    }
}

impl<F: FnOnce(&std::task::Waker) + Unpin> std::future::Future for PendOnce<F> {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        match self.0.take() {
            Some(f) => {
                f(cx.waker());
                std::task::Poll::Pending
            }
            None => std::task::Poll::Ready(()),
        }
    }
}

fn start_connect(addr: SocketAddr, nodelay: bool) -> io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    #[cfg(target_os = "linux")]
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM.nonblocking(), None)?;
    #[cfg(not(target_os = "linux"))]
    let sock = {
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        s.set_nonblocking(true)?;
        s
    };
    if nodelay {
        sock.set_tcp_nodelay(true)?;
    }
    match sock.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock || in_progress(&e) => {}
        Err(e) => return Err(e),
    }
    TcpStream::from_std(std::net::TcpStream::from(sock))
}

fn in_progress(e: &io::Error) -> bool {
    #[cfg(target_os = "linux")]
    const EINPROGRESS: i32 = 115;
    #[cfg(not(target_os = "linux"))]
    const EINPROGRESS: i32 = 36;
    e.raw_os_error() == Some(EINPROGRESS)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Whether a kept-alive connection can carry the next request: the server has not closed
/// it, reset it or sent anything unasked while it was idle. Costs no syscall in the usual
/// case: `try_read` reads only when the runtime has seen the socket become readable.
fn idle_and_open(stream: &TcpStream, buf: &mut [u8]) -> bool {
    matches!(stream.try_read(buf), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// One request and its response, on the open connection or a new one.
///
/// A request is never written twice unless it provably did not leave (the first write on a
/// reused connection failed, so the kernel took no byte of it) or `--retry-idempotent`
/// allows it. A reused connection that the server closed while it was idle is replaced
/// before writing when the runtime has seen the close; when the close crosses the write,
/// the request counts as `dropped_on_reuse` (the server may have read it).
async fn exchange(
    ctx: &Rc<Ctx>,
    conn: &mut Option<Conn>,
    buf: &mut Vec<u8>,
    win: &mut Window,
    written: &Cell<bool>,
) -> Result<Response, Failure> {
    let mut retried = false;
    let mut addresses_tried = 0;
    loop {
        if let Some(c) = conn {
            // Bytes left over, or the connection closed while idle: replace it.
            if win.end > win.start || !c.stream.idle_and_open(buf) {
                *conn = None;
                win.clear();
            }
        }
        let reused = conn.is_some();
        let c = match conn {
            Some(c) => c,
            None => {
                win.clear();
                conn.insert(ctx.connect().await?)
            }
        };
        match send_and_read(ctx, c, buf, win, written).await {
            Ok(r) => return Ok(r),
            Err(f) => {
                *conn = None;
                win.clear();
                if reused {
                    match f.stage {
                        // Nothing left: send it on a new connection (its first sending).
                        Stage::Unsent => continue,
                        Stage::NothingBack
                            if matches!(f.kind, Failure::Closed | Failure::Reset) =>
                        {
                            if ctx.cfg.retry && !retried {
                                retried = true;
                                ctx.retries.set(ctx.retries.get() + 1);
                                continue;
                            }
                            return Err(Failure::DroppedOnReuse);
                        }
                        _ => return Err(f.kind),
                    }
                }
                let unreachable = matches!(f.kind, Failure::Refused | Failure::Unreachable);
                if unreachable && f.stage == Stage::Unsent {
                    addresses_tried += 1;
                    if addresses_tried < ctx.cfg.addrs.len() && ctx.next_address() {
                        continue;
                    }
                }
                return Err(f.kind);
            }
        }
    }
}

/// Writes the request and reads its response (head, then the body counted and dropped).
///
/// Longer than 120 lines on purpose: it is the per-request hot path, one state machine for
/// the write, the head and the body, with the read buffer's window threaded through by hand.
/// Split into async helpers it would nest futures on every request; its speed is measured
/// by `scripts/bench-http.sh` (docs/bench.md), so change it only with a measurement.
async fn send_and_read(
    ctx: &Ctx,
    conn: &mut Conn,
    buf: &mut Vec<u8>,
    win: &mut Window,
    written: &Cell<bool>,
) -> Result<Response, Fail> {
    let req = &ctx.cfg.request[..];
    let mut off = 0;
    while off < req.len() {
        match conn.stream.write(&req[off..]).await {
            Ok(0) => {
                return Err(Fail {
                    kind: Failure::Other,
                    stage: Stage::NothingBack,
                })
            }
            Ok(n) => {
                if off == 0 {
                    conn.count();
                    if !written.get() {
                        written.set(true);
                        ctx.sent.set(ctx.sent.get() + 1);
                    }
                }
                off += n;
                ctx.bytes_sent.set(ctx.bytes_sent.get() + n as u64);
            }
            Err(e) => {
                let kind = classify(&e);
                if off == 0 && kind == Failure::Reset {
                    // Reset by a peer: it was established.
                    conn.count();
                }
                return Err(Fail {
                    kind,
                    stage: if off == 0 {
                        Stage::Unsent
                    } else {
                        Stage::NothingBack
                    },
                });
            }
        }
    }
    let stream = &mut conn.stream;
    let mut wire = 0u64;
    let fail = |kind| Fail {
        kind,
        stage: Stage::Partial,
    };
    let max_head = ctx.cfg.max_head;

    // The head (skipping interim 1xx responses).
    let head = loop {
        if win.end > win.start {
            match http::parse_head(&buf[win.start..win.end], ctx.cfg.head_only) {
                Ok(Some(h)) if (100..200).contains(&h.status) && h.status != 101 => {
                    win.start += h.len;
                    wire += h.len as u64;
                    continue;
                }
                Ok(Some(h)) => break h,
                // As many bytes as the limit and still no end of the head.
                Ok(None) if win.end - win.start >= max_head => {
                    return Err(fail(Failure::HeadTooLarge))
                }
                Ok(None) => {}
                Err(_) => return Err(fail(Failure::Invalid)),
            }
        }
        if win.end == buf.len() {
            if win.start == 0 {
                // A head larger than the buffer (and smaller than the limit): grow it, for
                // the rest of this connection's life. Rare; the usual head fits in 16 KiB.
                let len = (buf.len() * 2).min(max_head);
                buf.resize(len, 0);
            } else {
                buf.copy_within(win.start..win.end, 0);
                win.end -= win.start;
                win.start = 0;
            }
        }
        let stage = if wire == 0 && win.end == win.start {
            Stage::NothingBack
        } else {
            Stage::Partial
        };
        let n = match stream.read(&mut buf[win.end..]).await {
            Ok(0) => {
                return Err(Fail {
                    kind: Failure::Closed,
                    stage,
                })
            }
            Ok(n) => n,
            Err(e) => {
                return Err(Fail {
                    kind: classify(&e),
                    stage,
                })
            }
        };
        win.end += n;
    };
    win.start += head.len;
    wire += head.len as u64;

    // The body: counted and dropped.
    let body = match head.framing {
        Framing::None => 0,
        Framing::Length(len) => {
            let avail = (win.end - win.start) as u64;
            if avail >= len {
                win.start += len as usize;
            } else {
                let mut remaining = len - avail;
                win.clear();
                while remaining > 0 {
                    let n = read_some(stream, buf).await.map_err(fail)?;
                    if n as u64 > remaining {
                        // Bytes past the body: the start of something else; keep them.
                        win.start = remaining as usize;
                        win.end = n;
                        remaining = 0;
                    } else {
                        remaining -= n as u64;
                    }
                }
            }
            wire += len;
            len
        }
        Framing::Chunked => {
            let mut dec = Chunked::new();
            let mut data = 0;
            loop {
                let f = dec
                    .feed(&buf[win.start..win.end])
                    .map_err(|_| fail(Failure::Invalid))?;
                win.start += f.consumed;
                wire += f.consumed as u64;
                data += f.data;
                if f.done {
                    break;
                }
                win.clear();
                win.end = read_some(stream, buf).await.map_err(fail)?;
            }
            data
        }
        Framing::UntilClose => {
            let mut total = (win.end - win.start) as u64;
            win.clear();
            loop {
                match stream.read(buf).await {
                    Ok(0) => break,
                    Ok(n) => total += n as u64,
                    Err(e) => return Err(fail(classify(&e))),
                }
            }
            wire += total;
            total
        }
    };
    if win.start == win.end {
        win.clear();
    }
    Ok(Response {
        status: head.status,
        wire,
        body,
        close: head.close,
    })
}

/// Reads at least one byte; end of stream is an error (the body was not complete).
async fn read_some(stream: &mut Stream, buf: &mut [u8]) -> Result<usize, Failure> {
    match stream.read(buf).await {
        Ok(0) => Err(Failure::Closed),
        Ok(n) => Ok(n),
        Err(e) => Err(classify(&e)),
    }
}

/// The error kind of a failed TLS handshake: rustls's own errors are `Tls`, the rest as for
/// plain connections.
fn classify_tls(e: &io::Error) -> Failure {
    if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
        Failure::Tls
    } else {
        classify(e)
    }
}

/// The error kind of an I/O error.
pub fn classify(e: &io::Error) -> Failure {
    use io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => Failure::Refused,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => Failure::Reset,
        K::TimedOut => Failure::Timeout,
        K::UnexpectedEof => Failure::Closed,
        K::AddrNotAvailable | K::AddrInUse => Failure::NoLocalPort,
        K::HostUnreachable | K::NetworkUnreachable | K::NetworkDown => Failure::Unreachable,
        K::InvalidData => Failure::Invalid,
        _ => Failure::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The check before reusing a kept-alive connection: an open, idle one passes; one the
    /// server closed, or sent bytes on unasked, is replaced once the runtime has seen it
    /// (`readable` waits for that: no sleep).
    #[tokio::test]
    async fn a_connection_closed_or_written_while_idle_is_not_reused() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut buf = [0u8; 64];

        let client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        assert!(idle_and_open(&client, &mut buf), "open and idle");
        drop(server);
        client.readable().await.unwrap();
        assert!(!idle_and_open(&client, &mut buf), "closed by the server");

        let client = TcpStream::connect(addr).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        assert!(idle_and_open(&client, &mut buf));
        server
            .write_all(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
            .await
            .unwrap();
        client.readable().await.unwrap();
        assert!(!idle_and_open(&client, &mut buf), "bytes nobody asked for");
    }

    #[test]
    fn io_errors_map_to_kinds() {
        let k = |kind| classify(&io::Error::from(kind));
        assert_eq!(k(io::ErrorKind::ConnectionRefused), Failure::Refused);
        assert_eq!(k(io::ErrorKind::ConnectionReset), Failure::Reset);
        assert_eq!(k(io::ErrorKind::BrokenPipe), Failure::Reset);
        assert_eq!(k(io::ErrorKind::AddrNotAvailable), Failure::NoLocalPort);
        assert_eq!(k(io::ErrorKind::PermissionDenied), Failure::Other);
    }
}
