//! `twip bench`: an HTTP/1.1 load generator with an ab/hey-style report (docs/bench.md).
//!
//! - the HTTP/1.1 pieces (URL, request bytes, response head and chunked parsing) are in
//!   [`crate::http`];
//! - [`engine`]: threads, connections, the client loop (the only I/O);
//! - [`stats`]: histograms, timeline, summary (pure);
//! - [`report`] and [`plot`]: the text report, the JSON object, the SVG (pure).

pub mod engine;
pub mod layouts;
pub mod plot;
pub mod report;
pub mod stats;

use std::io::Write as _;
use std::time::Duration;

use crate::cli::BenchArgs;
use crate::exit::invalid;
use crate::http;
use crate::ui::Ui;

/// Requests when neither `-n` nor `-z` is given (like hey).
pub const DEFAULT_REQUESTS: u64 = 200;

/// Exit code when the run was stopped by Ctrl-C (the report is still printed).
pub const EXIT_INTERRUPTED: i32 = 130;

/// Methods whose request may be sent twice with the effect of once (RFC 9110, 9.2.2).
pub fn idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE"
    )
}

/// The URL a TARGET stands for: itself, or an environment's proxy entrypoint.
fn resolve_url(args: &BenchArgs, global: &crate::cli::GlobalArgs) -> anyhow::Result<http::Url> {
    let mut target = if args.target.contains("://") {
        if args.lab.is_some() {
            return Err(invalid(
                "--lab says which lab an environment runs on: give ENV, not a URL",
            ));
        }
        http::Url::parse(&args.target).map_err(invalid)?
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
        let url = crate::commands::deploy::entrypoint_on(&env, lab.as_ref())
            .unwrap_or_else(|| "http://127.0.0.1/".into());
        http::Url::parse(&url)
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
}
