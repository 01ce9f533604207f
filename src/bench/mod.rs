//! `twip bench`: an HTTP/1.1 load generator with an ab/hey-style report (docs/bench.md).
//!
//! - [`http`]: URL, request bytes, response head and chunked parsing (pure);
//! - [`engine`]: threads, connections, the client loop (the only I/O);
//! - [`stats`]: histograms, timeline, summary (pure);
//! - [`report`] and [`plot`]: the text report, the JSON object, the SVG (pure).

pub mod engine;
pub mod http;
pub mod layouts;
pub mod plot;
pub mod report;
pub mod stats;

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::exit::invalid;
use crate::ui::Ui;

/// Requests when neither `-n` nor `-z` is given (like hey).
pub const DEFAULT_REQUESTS: u64 = 200;

/// Exit code when the run was stopped by Ctrl-C (the report is still printed).
pub const EXIT_INTERRUPTED: i32 = 130;

#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  twip bench http://127.0.0.1:8080/ -n 10000 -c 50
  twip bench http://127.0.0.1/ -z 30s -c 200 --json
  twip bench http://127.0.0.1/api -p body.json -T application/json -n 1000
  twip bench production --path /news -z 10s --max-error-rate 0.1%

Exit codes:
  0    the run completed
  1    no response at all (every request failed: refused, reset, timed out, ...),
       or the share of failed requests exceeded --max-error-rate
  2    invalid input (bad URL, flag, header, unknown environment); nothing was sent
  130  stopped by Ctrl-C (the report of what ran is printed)")]
pub struct BenchArgs {
    /// A URL (http://HOST[:PORT]/PATH), or an environment name (its proxy entrypoint)
    #[arg(value_name = "URL|ENV")]
    pub target: String,

    /// Number of requests to send, all connections together [default: 200 without -z]
    #[arg(short = 'n', long = "requests", value_name = "N")]
    pub requests: Option<u64>,

    /// Run for this long (10s, 1m, 500ms); requests in flight at the end are cut, not errors.
    /// With -n too, stops at whichever comes first
    #[arg(short = 'z', long = "duration", value_name = "DUR", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Concurrent connections (one task each)
    #[arg(
        short = 'c',
        long = "connections",
        value_name = "N",
        default_value_t = 50
    )]
    pub connections: usize,

    /// Send at this fixed total rate (requests/s); latency is measured from each request's
    /// scheduled time, so a stalled server shows (no coordinated omission)
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,

    /// What to send
    #[command(flatten)]
    pub request: Box<RequestArgs>,

    /// A new connection for every request (sends `Connection: close`)
    #[arg(long)]
    pub no_keepalive: bool,

    /// Keep-alive (the default already; accepted because ab users type it)
    #[arg(short = 'k', long = "keepalive", conflicts_with = "no_keepalive")]
    pub keepalive: bool,

    /// Per-request timeout, from when a connection picks the request up, connecting
    /// included (0 for none)
    #[arg(long, value_name = "DUR", default_value = "20s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// The largest response head (status line and headers) accepted: bytes, or with KiB/MiB
    /// (a larger one is the error `head_too_large`)
    #[arg(long, value_name = "SIZE", default_value = "64KiB", value_parser = parse_size)]
    pub max_header_size: usize,

    /// When a reused keep-alive connection is closed without a byte of response after the
    /// request was written, send it again once on a new connection (counted as a retry).
    /// Only for GET, HEAD, PUT, DELETE, OPTIONS and TRACE; without it, such a request is the
    /// error `dropped_on_reuse`, and no request is ever sent twice
    #[arg(long)]
    pub retry_idempotent: bool,

    /// Print the report as one JSON object on stdout
    #[arg(long)]
    pub json: bool,

    /// Worker threads, each running its share of the connections [default: half the
    /// cores with keep-alive (one on two cores: the server on the same machine needs the
    /// rest), all of them without (connecting is work for the client's kernel)]
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Exit 1 when failed requests (errors and HTTP 4xx/5xx) exceed this share:
    /// 0.01 or 1%
    #[arg(long, value_name = "R", value_parser = parse_rate)]
    pub max_error_rate: Option<f64>,

    /// Write an SVG with the latency histogram and latency and throughput over time (with
    /// --replicas: requests/s and p99 against the replica count)
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,

    /// With ENV: the environment runs on the lab of this name (its first manager's proxy)
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,

    /// Compare layouts: the service (of ENV) to scale for --replicas
    #[arg(long, value_name = "SVC", requires = "replicas")]
    pub service: Option<String>,

    /// Compare layouts: scale --service to each count, bench each for the same duration,
    /// restore the original count, and print one table (replicas, rps, p50, p99, errors, CPU)
    #[arg(
        long,
        value_name = "N,N,..",
        value_delimiter = ',',
        requires = "service"
    )]
    pub replicas: Vec<u64>,
}

/// The options that shape the request (boxed: they are most of the size of [`BenchArgs`]).
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// HTTP method [default: GET, or POST with -d/-D]
    #[arg(short = 'm', long = "method", value_name = "METHOD")]
    pub method: Option<String>,

    /// Add a header (repeatable); replaces a default of the same name (Host, User-Agent, ...)
    #[arg(short = 'H', long = "header", value_name = "'K: V'")]
    pub headers: Vec<String>,

    /// Request body
    #[arg(
        short = 'd',
        long = "data",
        value_name = "DATA",
        conflicts_with = "data_file"
    )]
    pub data: Option<String>,

    /// Request body from a file (`-p` works too, as in ab)
    #[arg(
        short = 'D',
        long = "data-file",
        short_alias = 'p',
        value_name = "FILE"
    )]
    pub data_file: Option<PathBuf>,

    /// Content-Type of the body [default with a body: application/octet-stream]
    #[arg(short = 'T', long = "content-type", value_name = "TYPE")]
    pub content_type: Option<String>,

    /// The path to request: for an environment target [default: /]; replaces a URL's path
    #[arg(long, value_name = "P")]
    pub path: Option<String>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
        return Err(format!("`{s}` is not a duration"));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration (10s, 1m, 500ms): {e}"))
}

/// `65536`, `64KiB`, `64k`, `1MiB`, `1m`.
fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        _ => return Err(format!("`{s}` is not a size (65536, 64KiB, 1MiB)")),
    };
    let n = num
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("`{s}` is not a size (65536, 64KiB, 1MiB)"))?;
    if !(64..=64 * 1024 * 1024).contains(&n) {
        return Err(format!("`{s}` is not between 64 bytes and 64 MiB"));
    }
    Ok(n)
}

/// Methods whose request may be sent twice with the effect of once (RFC 9110, 9.2.2).
pub fn idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE"
    )
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("`{s}` is not a rate (0.01 or 1%)"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("`{s}` is not between 0 and 1 (0%..100%)"));
    }
    Ok(v)
}

/// The URL a TARGET stands for: itself, or an environment's proxy entrypoint.
fn resolve_url(args: &BenchArgs, global: &crate::cli::GlobalArgs) -> anyhow::Result<http::Target> {
    let mut target = if args.target.contains("://") {
        if args.lab.is_some() {
            return Err(invalid(
                "--lab says which lab an environment runs on: give ENV, not a URL",
            ));
        }
        http::Target::parse(&args.target).map_err(invalid)?
    } else {
        let project = crate::project::Project::discover(global.project_dir.as_deref())?;
        let env = project.load(&args.target)?;
        env.manifest.proxy.as_ref().ok_or_else(|| {
            invalid(format!(
                "environment `{}` has no `proxy` section, so it has no entrypoint to bench; \
                 give a URL instead (twip bench http://HOST:PORT/PATH)",
                args.target
            ))
        })?;
        let lab = args.lab.as_deref().map(crate::lab::Lab::load).transpose()?;
        let url = crate::context::entrypoint_on(&env, lab.as_ref())
            .unwrap_or_else(|| "http://127.0.0.1/".into());
        http::Target::parse(&url)
            .map_err(|e| invalid(format!("environment `{}`: proxy.url {e}", args.target)))?
    };
    if let Some(p) = &args.request.path {
        let path = if p.starts_with('/') {
            p.clone()
        } else {
            format!("/{p}")
        };
        http::check_request_target(&path).map_err(|e| invalid(format!("--path: {e}")))?;
        target.path = path;
    }
    Ok(target)
}

/// Worker threads when `--threads` is not given, on a machine with `cores` cores: half the
/// cores with keep-alive, where one thread keeps a server busy and a server on the same
/// machine needs the other cores; all of them without keep-alive, where connecting and
/// closing is the client kernel's work (on 2 cores, 2 threads gave 1.17x the requests/s of
/// one and more per CPU-second; docs/bench.md).
fn default_threads(keepalive: bool, cores: usize) -> usize {
    if keepalive {
        (cores / 2).max(1)
    } else {
        cores
    }
}

pub async fn run(
    args: &BenchArgs,
    global: &crate::cli::GlobalArgs,
    ui: &Ui,
) -> anyhow::Result<i32> {
    if !args.replicas.is_empty() {
        return layouts::run(args, global, ui).await;
    }
    // Check everything before sending anything.
    if args.connections == 0 {
        return Err(invalid("-c must be at least 1"));
    }
    if args.threads == Some(0) {
        return Err(invalid("--threads must be at least 1"));
    }
    if args.requests == Some(0) {
        return Err(invalid("-n must be at least 1"));
    }
    if args.duration == Some(Duration::ZERO) {
        return Err(invalid("-z must be longer than 0"));
    }
    if let Some(r) = args.rate {
        if !(r.is_finite() && r > 0.0) {
            return Err(invalid(
                "--rate must be a number of requests per second above 0",
            ));
        }
    }
    let headers = args
        .request
        .headers
        .iter()
        .map(|h| http::parse_header(h).map_err(invalid))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let body: Option<Vec<u8>> = match (&args.request.data, &args.request.data_file) {
        (Some(d), _) => Some(d.clone().into_bytes()),
        (None, Some(f)) => Some(
            std::fs::read(f)
                .map_err(|e| invalid(format!("cannot read the body file {}: {e}", f.display())))?,
        ),
        (None, None) => None,
    };
    let method = match &args.request.method {
        Some(m) => {
            let m = m.to_ascii_uppercase();
            if m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') {
                return Err(invalid(format!("`{m}` is not an HTTP method")));
            }
            m
        }
        None if body.is_some() => "POST".to_string(),
        None => "GET".to_string(),
    };
    http::check_framing(&headers, body.as_deref()).map_err(invalid)?;
    let target = resolve_url(args, global)?;
    let keepalive = !args.no_keepalive;
    let content_type = args.request.content_type.clone().or_else(|| {
        body.as_ref()
            .map(|_| "application/octet-stream".to_string())
    });
    let request = http::build_request(&http::RequestSpec {
        method: &method,
        target: &target,
        headers: &headers,
        body: body.as_deref(),
        content_type: content_type.as_deref(),
        keepalive,
    });
    let host = target.host.clone();
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), target.port))
        .await
        .map_err(|e| invalid(format!("cannot resolve `{host}`: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(invalid(format!("`{host}` resolves to no address")));
    }

    let requests = match (args.requests, args.duration) {
        (None, None) => Some(DEFAULT_REQUESTS),
        (n, _) => n,
    };
    let connections = match requests {
        Some(n) if (n as usize) < args.connections && args.duration.is_none() => n as usize,
        _ => args.connections,
    };
    let threads = args
        .threads
        .unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            default_threads(keepalive, cores)
        })
        .min(connections);
    let timeout = (!args.timeout.is_zero()).then_some(args.timeout);
    let info = report::RunInfo {
        url: target.url(),
        method: method.clone(),
        connections,
        threads,
        keepalive,
        requests,
        duration: args.duration,
        rate: args.rate,
        timeout,
        max_head: args.max_header_size,
        retry_idempotent: args.retry_idempotent,
        interrupted: false,
    };
    let what = match (requests, args.duration) {
        (Some(n), Some(d)) => format!("{n} requests or {}", humantime::format_duration(d)),
        (Some(n), None) => format!("{n} requests"),
        (None, Some(d)) => humantime::format_duration(d).to_string(),
        (None, None) => unreachable!(),
    };
    ui.info(&format!(
        "Benchmarking {} {} with {connections} connection{}{} for {what}{}",
        method,
        info.url,
        if connections == 1 { "" } else { "s" },
        if keepalive { "" } else { " (no keep-alive)" },
        args.rate
            .map(|r| format!(" at {r} req/s"))
            .unwrap_or_default(),
    ));

    let mut interrupt = Interrupt::new()?;
    let (handle, done) = engine::start(engine::Config {
        addrs,
        head_only: method == "HEAD",
        request,
        keepalive,
        connections,
        threads,
        requests,
        duration: args.duration,
        rate: args.rate,
        timeout,
        max_head: args.max_header_size,
        retry: args.retry_idempotent && idempotent(&method),
    })?;
    tokio::pin!(done);
    let live = ui.interactive && !ui.quiet;
    let tick = Duration::from_millis(250);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut interrupted = false;
    let mut last = (0u64, handle.start);
    let outcome = loop {
        tokio::select! {
            o = &mut done => break o?,
            _ = interrupt.recv(), if !interrupted => {
                interrupted = true;
                handle.stop();
            }
            _ = ticker.tick(), if live => {
                let (resp, errs) = handle.progress();
                let now = std::time::Instant::now();
                let dt = (now - last.1).as_secs_f64();
                let rate = if dt > 0.0 { (resp - last.0) as f64 / dt } else { 0.0 };
                last = (resp, now);
                let elapsed = (now - handle.start).as_secs_f64();
                let mut err = std::io::stderr().lock();
                let _ = write!(
                    err,
                    "\r\x1b[2K  {elapsed:6.1}s  {resp} responses  {rate:.0}/s  {errs} errors"
                );
                let _ = err.flush();
            }
        }
    };
    if live {
        eprint!("\r\x1b[2K");
    }
    let info = report::RunInfo {
        interrupted,
        ..info
    };
    let summary = stats::summarize(&outcome.stats, outcome.elapsed, outcome.cut);
    let bars = stats::bars(&outcome.stats.latency, 10);
    let out = if args.json {
        let mut s = serde_json::to_string_pretty(&report::json(&summary, &bars, &info))?;
        s.push('\n');
        s
    } else {
        report::text(&summary, &bars, &info)
    };
    {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(out.as_bytes())?;
        stdout.flush()?;
    }
    if let Some(path) = &args.plot {
        let plot_bars = stats::bars(&outcome.stats.latency, 40);
        let svg = plot::svg(&summary, &plot_bars, &outcome.stats.timeline, &info);
        std::fs::write(path, svg)
            .map_err(|e| anyhow::anyhow!("cannot write the plot {}: {e}", path.display()))?;
        ui.ok(&format!("plot written to {}", path.display()));
    }

    if interrupted {
        ui.warn("stopped by Ctrl-C");
        return Ok(EXIT_INTERRUPTED);
    }
    if summary.responses == 0 {
        let first = summary.error_kinds.first();
        let why = first
            .map(|&(k, n)| format!("; {n} × {}", report::describe(k, &info)))
            .unwrap_or_else(|| "; every request was still in flight at the deadline".into());
        // "Unreachable" only when no connection could be made at all.
        let unreachable = first.is_some_and(|&(k, _)| {
            matches!(
                k,
                stats::ErrorKind::Refused
                    | stats::ErrorKind::Unreachable
                    | stats::ErrorKind::ConnectTimeout
                    | stats::ErrorKind::NoLocalPort
            )
        }) && summary.connects == 0;
        if unreachable {
            ui.error(&format!(
                "{} is unreachable: no request got a response{why}",
                info.url
            ));
        } else {
            ui.error(&format!("no request got a response from {}{why}", info.url));
        }
        return Ok(crate::exit::FAILURE);
    }
    if let Some(max) = args.max_error_rate {
        if summary.error_rate > max {
            ui.error(&format!(
                "{:.2}% of requests failed ({} of {}), above --max-error-rate {:.2}%",
                summary.error_rate * 100.0,
                summary.failed,
                summary.requests,
                max * 100.0
            ));
            return Ok(crate::exit::FAILURE);
        }
    }
    Ok(crate::exit::SUCCESS)
}

/// Ctrl-C, listened to from before the first request (so it never kills the run).
struct Interrupt {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupt {
    fn new() -> anyhow::Result<Self> {
        Ok(Interrupt {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?,
        })
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            if self.signal.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
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

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536").unwrap(), 65536);
        assert_eq!(parse_size("64KiB").unwrap(), 65536);
        assert_eq!(parse_size("64k").unwrap(), 65536);
        assert_eq!(parse_size("1 MiB").unwrap(), 1 << 20);
        assert!(parse_size("1").unwrap_err().contains("between"));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999").is_err());
    }

    #[test]
    fn durations_and_rates() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1").is_err());
        assert_eq!(parse_rate("1%").unwrap(), 0.01);
        assert_eq!(parse_rate("0.05").unwrap(), 0.05);
        assert!(parse_rate("2").is_err());
        assert!(parse_rate("x").is_err());
    }
}
