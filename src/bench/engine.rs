//! The load engine: `threads` OS threads, each running a single-threaded tokio runtime with
//! one task per connection. A task sends the prebuilt request bytes, reads the response with
//! the minimal HTTP/1.1 client of [`super::http`], records it in its thread's [`Stats`] and
//! goes again on the same connection (keep-alive) or a new one. Nothing is allocated per
//! request: the request bytes are shared, each task owns one read buffer for its lifetime,
//! and latencies go into a fixed-size HDR histogram per thread, merged at the end.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch};

use super::stats::{ErrorKind, Stats};
use crate::http::{self, Chunked, Framing};

/// How late a tokio timer may fire by itself.
const TIMER_GRANULARITY: Duration = Duration::from_millis(1);

/// Read buffer per connection. It grows, up to `Config::max_head`, only for a response head
/// that does not fit, so memory stays small with many connections.
const BUF_SIZE: usize = 16 * 1024;

/// The largest response head accepted by default (`--max-header-size`).
pub const DEFAULT_MAX_HEAD: usize = 64 * 1024;

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The target's addresses, tried in order until one accepts.
    pub addrs: Vec<SocketAddr>,
    /// The request, sent as it is every time.
    pub request: Vec<u8>,
    /// The method is HEAD: responses have no body.
    pub head_only: bool,
    pub keepalive: bool,
    pub connections: usize,
    pub threads: usize,
    /// Stop after this many requests (all threads together).
    pub requests: Option<u64>,
    /// Stop at this deadline; requests in flight then are cut, not errors.
    pub duration: Option<Duration>,
    /// Requests per second for the whole run (a fixed schedule).
    pub rate: Option<f64>,
    /// Per request, from when a connection picks it up, connecting included.
    pub timeout: Option<Duration>,
    /// The largest response head (status line and headers) accepted, in bytes.
    pub max_head: usize,
    /// Send a request again, once, on a new connection when a reused connection dropped it
    /// (`--retry-idempotent`, and only for an idempotent method).
    pub retry: bool,
}

/// Live counters of one thread, for the progress line (a plain store per response).
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Counters {
    pub responses: AtomicU64,
    pub errors: AtomicU64,
}

struct Shared {
    /// Requests handed out (in `-n` and `--rate` modes).
    issued: AtomicU64,
    counters: Vec<Counters>,
}

/// What a run gives back.
#[derive(Debug)]
pub struct Outcome {
    pub stats: Stats,
    /// From the start to the end of the last thread.
    pub elapsed: Duration,
    /// Requests in flight when the deadline or a stop cut the run.
    pub cut: u64,
}

/// Controls a started run.
pub struct Handle {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    pub start: Instant,
}

impl Handle {
    /// Stops the run now (Ctrl-C): requests in flight are cut.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// (responses, errors) so far.
    pub fn progress(&self) -> (u64, u64) {
        self.shared.counters.iter().fold((0, 0), |(r, e), c| {
            (r + c.responses.load(Relaxed), e + c.errors.load(Relaxed))
        })
    }
}

struct WorkerResult {
    stats: Stats,
    cut: u64,
    end: Instant,
}

/// Starts the threads. The returned future resolves when the run is over (count reached,
/// deadline passed, or [`Handle::stop`]).
pub fn start(
    cfg: Config,
) -> anyhow::Result<(
    Handle,
    impl std::future::Future<Output = anyhow::Result<Outcome>>,
)> {
    let threads = cfg.threads.clamp(1, cfg.connections.max(1));
    let shared = Arc::new(Shared {
        issued: AtomicU64::new(0),
        counters: (0..threads).map(|_| Counters::default()).collect(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let cfg = Arc::new(cfg);
    let start = Instant::now();
    let mut receivers = Vec::with_capacity(threads);
    for i in 0..threads {
        let conns = cfg.connections / threads + usize::from(i < cfg.connections % threads);
        let (tx, rx) = oneshot::channel();
        let (cfg, shared, stop_rx) = (cfg.clone(), shared.clone(), stop_rx.clone());
        std::thread::Builder::new()
            .name(format!("bench-{i}"))
            .spawn(move || {
                let r = worker(i, conns, cfg, shared, start, stop_rx);
                let _ = tx.send(r);
            })?;
        receivers.push(rx);
    }
    let handle = Handle {
        shared,
        stop: stop_tx,
        start,
    };
    let (rate, requests, deadline) = (cfg.rate, cfg.requests, cfg.duration.map(|d| start + d));
    let done = async move {
        let mut stats = Stats::new();
        let mut cut = 0;
        let mut end = start;
        for rx in receivers {
            let r = rx
                .await
                .map_err(|_| anyhow::anyhow!("a bench worker thread failed"))??;
            stats.merge(&r.stats);
            cut += r.cut;
            end = end.max(r.end);
        }
        stats.due = rate.map(|r| {
            let until = deadline.map_or(end, |d| d.min(end));
            let due = ((until - start).as_secs_f64() * r).ceil() as u64;
            requests.map_or(due, |n| due.min(n))
        });
        Ok(Outcome {
            stats,
            elapsed: end - start,
            cut,
        })
    };
    Ok((handle, done))
}

/// One thread's state, shared by its connection tasks (single-threaded: `Rc`, `Cell`).
struct Ctx {
    cfg: Arc<Config>,
    shared: Arc<Shared>,
    index: usize,
    start: Instant,
    deadline: Option<Instant>,
    /// Nanoseconds between two scheduled requests (`--rate`).
    interval_ns: Option<f64>,
    stats: RefCell<Stats>,
    in_flight: Cell<u64>,
    bytes_sent: Cell<u64>,
    connects: Cell<u64>,
    sent: Cell<u64>,
    retries: Cell<u64>,
    taken: Cell<u64>,
    unsent_errors: Cell<u64>,
    /// The address that accepted last.
    preferred: Cell<usize>,
}

fn worker(
    index: usize,
    conns: usize,
    cfg: Arc<Config>,
    shared: Arc<Shared>,
    start: Instant,
    mut stop_rx: watch::Receiver<bool>,
) -> anyhow::Result<WorkerResult> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let ctx = Rc::new(Ctx {
        deadline: cfg.duration.map(|d| start + d),
        interval_ns: cfg.rate.map(|r| 1e9 / r),
        cfg,
        shared,
        index,
        start,
        stats: RefCell::new(Stats::new()),
        in_flight: Cell::new(0),
        bytes_sent: Cell::new(0),
        connects: Cell::new(0),
        sent: Cell::new(0),
        retries: Cell::new(0),
        taken: Cell::new(0),
        unsent_errors: Cell::new(0),
        preferred: Cell::new(0),
    });
    let cut = local.block_on(&rt, async {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..conns {
            set.spawn_local(connection(ctx.clone()));
        }
        let all = async { while set.join_next().await.is_some() {} };
        let deadline = async {
            match ctx.deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        let stop = async {
            loop {
                if *stop_rx.borrow_and_update() {
                    break;
                }
                if stop_rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = all => {}
            _ = deadline => {}
            _ = stop => {}
        }
        ctx.in_flight.get()
    });
    let end = Instant::now();
    // Dropping the tasks closes their connections, which counts the ones not counted yet.
    drop(local);
    drop(rt);
    let mut stats = ctx.stats.take();
    stats.bytes_sent = ctx.bytes_sent.get();
    stats.connects = ctx.connects.get();
    stats.sent = ctx.sent.get();
    stats.retries = ctx.retries.get();
    stats.taken = ctx.taken.get();
    stats.unsent_errors = ctx.unsent_errors.get();
    Ok(WorkerResult { stats, cut, end })
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
    kind: ErrorKind,
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
    stream: TcpStream,
    counted: bool,
    ctx: Rc<Ctx>,
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
        if !self.counted && self.stream.peer_addr().is_ok() {
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
    fn connect(self: &Rc<Self>) -> Result<Conn, ErrorKind> {
        let addr = self.cfg.addrs[self.preferred.get()];
        // A request in one segment is never held back by Nagle; a larger one could be.
        let nodelay = self.cfg.request.len() > 1400;
        let stream = start_connect(addr, nodelay).map_err(|e| classify(&e))?;
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

async fn connection(ctx: Rc<Ctx>) {
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
    // Closed loop on kept-alive connections: the next request waits for the runtime's next
    // turn, so the requests of all the responses read in one turn go out together, as
    // wrk's do (it writes on the next writable event). The server then finds them in one
    // wake-up instead of being woken for each. Against nginx on the same 2 cores, in three
    // sets of alternating 2 s runs: 1-7% more requests/s (mean), for about 5% more client
    // CPU (docs/bench.md). The latency is measured from after the wait: it is the client's.
    let batch_writes = ctx.cfg.keepalive && ctx.interval_ns.is_none();
    loop {
        if batch_writes && conn.is_some() {
            tokio::task::yield_now().await;
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
                                    ErrorKind::Timeout
                                } else {
                                    ErrorKind::ConnectTimeout
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
) -> Result<Response, ErrorKind> {
    let mut retried = false;
    let mut addresses_tried = 0;
    loop {
        if let Some(c) = conn {
            // Bytes left over, or the connection closed while idle: replace it.
            if win.end > win.start || !idle_and_open(&c.stream, buf) {
                *conn = None;
                win.clear();
            }
        }
        let reused = conn.is_some();
        let c = match conn {
            Some(c) => c,
            None => {
                win.clear();
                conn.insert(ctx.connect()?)
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
                            if matches!(f.kind, ErrorKind::Closed | ErrorKind::Reset) =>
                        {
                            if ctx.cfg.retry && !retried {
                                retried = true;
                                ctx.retries.set(ctx.retries.get() + 1);
                                continue;
                            }
                            return Err(ErrorKind::DroppedOnReuse);
                        }
                        _ => return Err(f.kind),
                    }
                }
                let unreachable = matches!(f.kind, ErrorKind::Refused | ErrorKind::Unreachable);
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
                    kind: ErrorKind::Other,
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
                if off == 0 && kind == ErrorKind::Reset {
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
                    return Err(fail(ErrorKind::HeadTooLarge))
                }
                Ok(None) => {}
                Err(_) => return Err(fail(ErrorKind::Invalid)),
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
                    kind: ErrorKind::Closed,
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
                    .map_err(|_| fail(ErrorKind::Invalid))?;
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
async fn read_some(stream: &mut TcpStream, buf: &mut [u8]) -> Result<usize, ErrorKind> {
    match stream.read(buf).await {
        Ok(0) => Err(ErrorKind::Closed),
        Ok(n) => Ok(n),
        Err(e) => Err(classify(&e)),
    }
}

/// The error kind of an I/O error.
pub fn classify(e: &io::Error) -> ErrorKind {
    use io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => ErrorKind::Refused,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => ErrorKind::Reset,
        K::TimedOut => ErrorKind::Timeout,
        K::UnexpectedEof => ErrorKind::Closed,
        K::AddrNotAvailable | K::AddrInUse => ErrorKind::NoLocalPort,
        K::HostUnreachable | K::NetworkUnreachable | K::NetworkDown => ErrorKind::Unreachable,
        K::InvalidData => ErrorKind::Invalid,
        _ => ErrorKind::Other,
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
        assert_eq!(k(io::ErrorKind::ConnectionRefused), ErrorKind::Refused);
        assert_eq!(k(io::ErrorKind::ConnectionReset), ErrorKind::Reset);
        assert_eq!(k(io::ErrorKind::BrokenPipe), ErrorKind::Reset);
        assert_eq!(k(io::ErrorKind::AddrNotAvailable), ErrorKind::NoLocalPort);
        assert_eq!(k(io::ErrorKind::PermissionDenied), ErrorKind::Other);
    }
}
