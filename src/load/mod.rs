//! The HTTP/1.1 load generator behind `twip bench` (docs/bench.md), as a library: a [`Config`]
//! says what to send and how hard; [`prepare`] resolves the host and fills in the defaults;
//! [`start`] runs it on its own threads and [`run`] does both and waits for the [`Outcome`].
//!
//! - [`driver`]: the threads, their live counters and stopping;
//! - `client`: the client loop of one connection (with [`driver`], the only I/O);
//! - [`stats`]: histograms, timeline, summary (pure);
//! - [`report`] and [`plot`]: the text report, the JSON object, the SVG (pure);
//! - [`compare`]: the table and chart of a layout comparison (pure).
//!
//! The HTTP pieces (URL, request bytes, response head parser, chunked decoder) are
//! [`crate::http`]'s.

mod client;
pub mod compare;
pub mod driver;
pub mod plot;
pub mod report;
pub mod stats;

use std::future::Future;
use std::time::Duration;

pub use driver::{Handle, Outcome, Sched, DEFAULT_MAX_HEAD};
pub use report::RunInfo;
pub use stats::{Failure, Summary};

use crate::exit::invalid;
use crate::http::{self, Url};

/// Requests when neither a count nor a duration is given (like hey).
pub const DEFAULT_REQUESTS: u64 = 200;

/// What to send, and how hard.
#[derive(Debug, Clone)]
pub struct Config {
    pub url: Url,
    /// Upper case.
    pub method: String,
    /// `(name, value)`; they replace the defaults of the same name (Host, User-Agent, ...).
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// The body's type [default with a body: application/octet-stream].
    pub content_type: Option<String>,
    pub keepalive: bool,
    pub connections: usize,
    /// Worker threads [default: [`default_threads`] for this machine's cores].
    pub threads: Option<usize>,
    /// Stop after this many requests [default: [`DEFAULT_REQUESTS`] without `duration`].
    pub requests: Option<u64>,
    /// Stop at this deadline; requests in flight then are cut, not errors.
    pub duration: Option<Duration>,
    /// Requests per second for the whole run (a fixed schedule).
    pub rate: Option<f64>,
    /// Per request, from when a connection picks it up, connecting included.
    pub timeout: Option<Duration>,
    /// The largest response head accepted, in bytes.
    pub max_head: usize,
    /// Send a request dropped by a reused connection again, once (idempotent methods only).
    pub retry_idempotent: bool,
    /// Each thread polls without blocking instead of sleeping until a socket is ready.
    pub busy_poll: bool,
    /// `--nap`: how long a thread with many requests in flight sleeps on a timer instead of
    /// in the runtime's wait for events (zero: never). Kept-alive closed loops only.
    pub nap: Duration,
    /// The load threads' scheduling policy.
    pub sched: Sched,
    /// How an `https://` target's certificate is checked.
    pub verify: crate::tls::client::Verify,
}

/// A run ready to start: how it is set up (for the report) and the driver's settings.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub info: RunInfo,
    driver: driver::Config,
}

/// Builds the request, resolves the host (exit 2 when it does not resolve) and settles the
/// counts: the connections (no more than the requests of a run without a deadline) and the
/// threads (no more than the connections).
pub async fn prepare(cfg: &Config) -> anyhow::Result<Prepared> {
    let content_type = cfg.content_type.clone().or_else(|| {
        cfg.body
            .as_ref()
            .map(|_| "application/octet-stream".to_string())
    });
    let request = http::build_request(&http::RequestSpec {
        method: &cfg.method,
        target: &cfg.url,
        headers: &cfg.headers,
        body: cfg.body.as_deref(),
        content_type: content_type.as_deref(),
        keepalive: cfg.keepalive,
    });
    let host = cfg.url.host.clone();
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), cfg.url.port))
        .await
        .map_err(|e| invalid(format!("cannot resolve `{host}`: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(invalid(format!("`{host}` resolves to no address")));
    }
    let requests = match (cfg.requests, cfg.duration) {
        (None, None) => Some(DEFAULT_REQUESTS),
        (n, _) => n,
    };
    let connections = match requests {
        Some(n) if (n as usize) < cfg.connections && cfg.duration.is_none() => n as usize,
        _ => cfg.connections,
    };
    let threads = cfg
        .threads
        .unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            default_threads(cfg.keepalive, cores)
        })
        .min(connections);
    // Napping is for closed loops on kept-alive connections: a --rate schedule measures from
    // each request's time (a nap would add to it), and without keep-alive the connects keep
    // the thread busy; --busy-poll never sleeps at all.
    let nap = if cfg.keepalive && cfg.rate.is_none() && !cfg.busy_poll {
        cfg.nap
    } else {
        Duration::ZERO
    };
    let info = RunInfo {
        url: cfg.url.url(),
        method: cfg.method.clone(),
        connections,
        threads,
        keepalive: cfg.keepalive,
        requests,
        duration: cfg.duration,
        rate: cfg.rate,
        timeout: cfg.timeout,
        max_head: cfg.max_head,
        retry_idempotent: cfg.retry_idempotent,
        busy_poll: cfg.busy_poll,
        nap,
        sched: cfg.sched,
        interrupted: false,
    };
    let tls = if cfg.url.tls {
        let config = crate::tls::client::config(&cfg.verify).map_err(invalid)?;
        let name = rustls::pki_types::ServerName::try_from(cfg.url.host.clone())
            .map_err(|_| invalid(format!("`{}` is not a name TLS can check", cfg.url.host)))?;
        Some(driver::Tls {
            connector: tokio_rustls::TlsConnector::from(config),
            name,
        })
    } else {
        None
    };
    let driver = driver::Config {
        tls,
        addrs,
        head_only: cfg.method == "HEAD",
        request,
        keepalive: cfg.keepalive,
        connections,
        threads,
        requests,
        duration: cfg.duration,
        rate: cfg.rate,
        timeout: cfg.timeout,
        max_head: cfg.max_head,
        retry: cfg.retry_idempotent && idempotent(&cfg.method),
        busy_poll: cfg.busy_poll,
        nap,
        sched: cfg.sched,
    };
    Ok(Prepared { info, driver })
}

/// Starts the run's threads. The future resolves when it is over (count reached, deadline
/// passed, or [`Handle::stop`]).
pub fn start(
    p: Prepared,
) -> anyhow::Result<(Handle, impl Future<Output = anyhow::Result<Outcome>>)> {
    driver::start(p.driver)
}

/// Prepares, runs and waits: how the run was set up and what it gave.
pub async fn run(cfg: &Config) -> anyhow::Result<(RunInfo, Outcome)> {
    let p = prepare(cfg).await?;
    let info = p.info.clone();
    let (_handle, done) = start(p)?;
    let outcome = done.await?;
    let info = RunInfo {
        sched: outcome.sched,
        ..info
    };
    Ok((info, outcome))
}

impl Outcome {
    /// The figures of the run.
    pub fn summary(&self) -> Summary {
        stats::summarize(&self.stats, self.elapsed, self.cut)
    }
}

/// Methods whose request may be sent twice with the effect of once (RFC 9110, 9.2.2).
pub fn idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE"
    )
}

/// Worker threads when none are asked for, on a machine with `cores` cores: half the
/// cores with keep-alive, where one thread keeps a server busy and a server on the same
/// machine needs the other cores; all of them without keep-alive, where connecting and
/// closing is the client kernel's work (on 2 cores, 2 threads gave 1.17x the requests/s of
/// one and more per CPU-second; docs/bench.md).
pub fn default_threads(keepalive: bool, cores: usize) -> usize {
    if keepalive {
        (cores / 2).max(1)
    } else {
        cores
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_threads_leave_cores_to_the_server_only_with_keepalive() {
        assert_eq!(default_threads(true, 1), 1);
        assert_eq!(default_threads(true, 2), 1);
        assert_eq!(default_threads(true, 8), 4);
        assert_eq!(default_threads(false, 1), 1);
        assert_eq!(default_threads(false, 2), 2);
        assert_eq!(default_threads(false, 8), 8);
    }
}
