//! The load driver: `threads` OS threads, each running a single-threaded tokio runtime with
//! one task per connection (the client loop of [`super::client`]). Each thread records into
//! its own [`Stats`], merged when the run ends; live counters feed the progress line.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

use super::client::{connection, Ctx, PendOnce};
use super::stats::Stats;

/// The largest response head accepted by default (`--max-header-size`).
pub const DEFAULT_MAX_HEAD: usize = 64 * 1024;

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// `https://`: every connection starts with a TLS handshake.
    pub tls: Option<Tls>,
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
    /// `--busy-poll`: a task that only yields keeps the thread from ever blocking in the
    /// runtime's wait for events, so the sockets are polled without waiting, again and again.
    pub busy_poll: bool,
    /// `--nap`: see [`nap_poller`] (zero: never nap).
    pub nap: Duration,
    /// The load threads' scheduling policy (`--sched`).
    pub sched: Sched,
}

/// The scheduling policy of the load threads (`--sched`).
///
/// `Batch` (Linux's `SCHED_BATCH`, the default) tells the kernel that the threads are
/// throughput work: a thread woken by a response does not preempt the program running on
/// that core. When the server runs on the same machine, the response's `write` wakes the
/// client on the server's own core, and with the normal policy the client preempted it:
/// against nginx on 2 cores, nginx was preempted ~500 times a second under twip (under wrk
/// 50-100) and ~30 with `SCHED_BATCH`, which got 5% more requests/s in medians of ten
/// alternating pairs (docs/bench.md). A woken thread still runs at once on an idle core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sched {
    Batch,
    Normal,
}

impl Sched {
    pub fn as_str(self) -> &'static str {
        match self {
            Sched::Batch => "batch",
            Sched::Normal => "normal",
        }
    }
}

/// Makes the calling thread `SCHED_BATCH`; false where that is refused or not Linux.
fn set_batch() -> bool {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` is a valid `sched_param` (priority 0
        // is the only one SCHED_BATCH takes). Needs no privilege.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// Asks for timers precise to a microsecond on this thread (the default slack is 50 µs).
fn set_timer_slack() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK takes the slack in nanoseconds; no pointers.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong, 0, 0, 0);
    }
}

/// Consecutive naps that found nothing before the poller goes dormant.
const NAPS_BEFORE_DORMANT: u32 = 8;
/// Requests in flight on the thread below which the poller does not nap.
pub(super) const NAP_MIN_IN_FLIGHT: u64 = 8;

/// `--nap`: while many requests are in flight, a thread whose poll found nothing sleeps a
/// short time on a timer instead of in the runtime's wait for events, then polls the sockets
/// without waiting. The server's `write` of a response then need not wake the client (no
/// one waits on the sockets; on the same machine that wake-up is the server's CPU time), and
/// the responses that came during the nap are handled in one turn. Against nginx (1 worker)
/// on the same 2 cores, medians of 5 alternating rounds: 50 µs naps gave 1.06-1.07x wrk's
/// requests/s with 1.15-1.21x its requests per CPU-second, with and without TLS, where
/// blocking gave 0.95-0.98x and 1.08-1.18x (docs/bench.md). After a few naps that found
/// nothing (a slow server) the poller waits for the next response, and the thread blocks as
/// it would without it; with few requests in flight it never naps (a nap would only delay
/// the one response awaited). The nap is on the thread's clock: a response that arrives
/// during it is read when it ends, up to `nap` late.
async fn nap_poller(ctx: Rc<Ctx>, nap: Duration) {
    let responses = |ctx: &Ctx| ctx.stats.borrow().responses;
    let mut last = responses(&ctx);
    let mut empty = 0u32;
    loop {
        let now = responses(&ctx);
        if now != last {
            last = now;
            empty = 0;
        } else if ctx.in_flight.get() >= NAP_MIN_IN_FLIGHT && empty < NAPS_BEFORE_DORMANT {
            std::thread::sleep(nap);
            ctx.naps.set(ctx.naps.get() + 1);
            empty += 1;
        } else {
            // Until a connection task has read a response (it wakes this waker).
            PendOnce::new(|w: &std::task::Waker| ctx.napper.set(Some(w.clone()))).await;
            last = responses(&ctx);
            empty = 0;
        }
        tokio::task::yield_now().await;
    }
}

/// What a TLS connection needs: the configured connector and the name sent as SNI (and
/// checked against the certificate).
#[derive(Clone)]
pub struct Tls {
    pub connector: tokio_rustls::TlsConnector,
    pub name: rustls::pki_types::ServerName<'static>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tls({:?})", self.name)
    }
}

/// Live counters of one thread, for the progress line (a plain store per response).
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Counters {
    pub responses: AtomicU64,
    pub errors: AtomicU64,
}

pub(super) struct Shared {
    /// Requests handed out (in `-n` and `--rate` modes).
    pub(super) issued: AtomicU64,
    pub(super) counters: Vec<Counters>,
}

/// What a run gives back.
#[derive(Debug)]
pub struct Outcome {
    pub stats: Stats,
    /// From the start to the end of the last thread.
    pub elapsed: Duration,
    /// Requests in flight when the deadline or a stop cut the run.
    pub cut: u64,
    /// The policy the threads ran with: `Batch` only when every thread got it.
    pub sched: Sched,
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
    batch: bool,
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
        let mut batch = true;
        for rx in receivers {
            let r = rx
                .await
                .map_err(|_| anyhow::anyhow!("a bench worker thread failed"))??;
            stats.merge(&r.stats);
            cut += r.cut;
            end = end.max(r.end);
            batch &= r.batch;
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
            sched: if batch { Sched::Batch } else { Sched::Normal },
        })
    };
    Ok((handle, done))
}

fn worker(
    index: usize,
    conns: usize,
    cfg: Arc<Config>,
    shared: Arc<Shared>,
    start: Instant,
    mut stop_rx: watch::Receiver<bool>,
) -> anyhow::Result<WorkerResult> {
    let batch = cfg.sched == Sched::Batch && set_batch();
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
        naps: Cell::new(0),
        taken: Cell::new(0),
        unsent_errors: Cell::new(0),
        preferred: Cell::new(0),
        napper: Cell::new(None),
    });
    let cut = local.block_on(&rt, async {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..conns {
            set.spawn_local(connection(ctx.clone()));
        }
        if ctx.cfg.busy_poll {
            // Each yield hands the turn back to the runtime, which then polls the sockets
            // with a zero timeout before running it again. Not in `set`: the run ends with
            // the connections, and this task is dropped with the runtime.
            tokio::task::spawn_local(async {
                loop {
                    tokio::task::yield_now().await;
                }
            });
        }
        if !ctx.cfg.nap.is_zero() {
            // Like the busy-poll task, not in `set` and dropped with the runtime.
            set_timer_slack();
            tokio::task::spawn_local(nap_poller(ctx.clone(), ctx.cfg.nap));
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
    stats.naps = ctx.naps.get();
    stats.taken = ctx.taken.get();
    stats.unsent_errors = ctx.unsent_errors.get();
    Ok(WorkerResult {
        stats,
        cut,
        end,
        batch,
    })
}
