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

use super::http::{self, Chunked, Framing};
use super::stats::{ErrorKind, Stats};

/// How late a tokio timer may fire by itself.
const TIMER_GRANULARITY: Duration = Duration::from_millis(1);

/// Read buffer per connection. A response head must fit in it.
const BUF_SIZE: usize = 16 * 1024;

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
    /// Per request, connecting included.
    pub timeout: Option<Duration>,
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
    drop(local);
    drop(rt);
    let mut stats = ctx.stats.take();
    stats.bytes_sent = ctx.bytes_sent.get();
    stats.connects = ctx.connects.get();
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

/// A failed exchange. `stale`: nothing of the response arrived, so on a reused connection
/// the server had probably closed it while idle, and the request is worth one retry.
struct Fail {
    kind: ErrorKind,
    stale: bool,
}

impl Ctx {
    /// Waits for the next request's turn; `None` when the run is over for this task.
    /// Returns the time the latency is measured from.
    async fn next_start(&self) -> Option<Instant> {
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
                if intended > now {
                    // On time. The timer fires up to about a millisecond late (its
                    // granularity), which is not the server's doing: measure from when it
                    // fires, but charge any lateness beyond that millisecond (a busy client).
                    tokio::time::sleep_until(intended.into()).await;
                    Some(Instant::now().min(intended + TIMER_GRANULARITY))
                } else {
                    // Behind schedule (all connections were busy): measure from the
                    // intended time, so the wait counts (no coordinated omission).
                    Some(intended)
                }
            }
            None => {
                if self.deadline.is_some_and(|d| now >= d) {
                    return None;
                }
                Some(now)
            }
        }
    }

    /// Starts connecting to the preferred address and returns at once: the request is
    /// written straight away (on loopback the handshake is already done by then), and a
    /// write on a socket still connecting just waits for it. This saves a wake-up and a
    /// `getsockopt` per connection over awaiting the connect.
    fn connect(&self) -> Result<TcpStream, ErrorKind> {
        let addr = self.cfg.addrs[self.preferred.get()];
        // A request in one segment is never held back by Nagle; a larger one could be.
        let nodelay = self.cfg.request.len() > 1400;
        start_connect(addr, nodelay).map_err(|e| classify(&e))
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
    let mut buf = vec![0u8; BUF_SIZE].into_boxed_slice();
    let mut win = Window { start: 0, end: 0 };
    let mut conn: Option<TcpStream> = None;
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
        let Some(t0) = ctx.next_start().await else {
            break;
        };
        ctx.in_flight.set(ctx.in_flight.get() + 1);
        let res = match timeout {
            Some(limit) => {
                let due = t0 + limit;
                let armed = timer.deadline().into_std();
                if armed < due || armed > due + slack {
                    // Fires between `due` and `due + slack`, so ~8 requests a timeout apart
                    // share one arming. A request is never timed out before `due`.
                    timer.as_mut().reset((due + slack).into());
                }
                let fut = exchange(&ctx, &mut conn, &mut buf, &mut win);
                tokio::pin!(fut);
                loop {
                    tokio::select! {
                        biased;
                        r = &mut fut => break r,
                        _ = &mut timer => {
                            if Instant::now() >= due {
                                break Err(ErrorKind::Timeout);
                            }
                            timer.as_mut().reset(due.into());
                        }
                    }
                }
            }
            None => exchange(&ctx, &mut conn, &mut buf, &mut win).await,
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

/// One request and its response, on the open connection or a new one; a stale reused
/// connection gets one retry on a fresh one.
async fn exchange(
    ctx: &Ctx,
    conn: &mut Option<TcpStream>,
    buf: &mut [u8],
    win: &mut Window,
) -> Result<Response, ErrorKind> {
    let mut retried = false;
    let mut addresses_tried = 0;
    loop {
        let reused = conn.is_some();
        let stream = match conn {
            Some(s) => s,
            None => {
                win.clear();
                conn.insert(ctx.connect()?)
            }
        };
        match send_and_read(ctx, stream, buf, win, !reused).await {
            Ok(r) => return Ok(r),
            Err(f) => {
                *conn = None;
                win.clear();
                if reused && f.stale && !retried {
                    retried = true;
                    continue;
                }
                let unreachable = matches!(f.kind, ErrorKind::Refused | ErrorKind::Unreachable);
                if !reused && unreachable {
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
    stream: &mut TcpStream,
    buf: &mut [u8],
    win: &mut Window,
    fresh: bool,
) -> Result<Response, Fail> {
    let req = &ctx.cfg.request;
    if let Err(e) = stream.write_all(req).await {
        return Err(Fail {
            kind: classify(&e),
            stale: true,
        });
    }
    if fresh {
        // Written, so connected.
        ctx.connects.set(ctx.connects.get() + 1);
    }
    ctx.bytes_sent.set(ctx.bytes_sent.get() + req.len() as u64);
    let mut wire = 0u64;
    let fail = |kind| Fail { kind, stale: false };

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
                Ok(None) => {}
                Err(_) => return Err(fail(ErrorKind::Invalid)),
            }
        }
        if win.end == buf.len() {
            if win.start == 0 {
                return Err(fail(ErrorKind::Invalid)); // a head larger than the buffer
            }
            buf.copy_within(win.start..win.end, 0);
            win.end -= win.start;
            win.start = 0;
        }
        let nothing_yet = wire == 0 && win.end == win.start;
        let n = match stream.read(&mut buf[win.end..]).await {
            Ok(0) => {
                return Err(Fail {
                    kind: ErrorKind::Closed,
                    stale: nothing_yet,
                })
            }
            Ok(n) => n,
            Err(e) => {
                let kind = classify(&e);
                return Err(Fail {
                    kind,
                    stale: nothing_yet && kind == ErrorKind::Reset,
                });
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
