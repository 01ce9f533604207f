//! `twip bench URL|ENV`: the wiring of the load generator ([`crate::load`]). The arguments are
//! checked and turned into a [`load::Config`] (an environment stands for its proxy's
//! entrypoint), the run shows a live progress line on a terminal and stops cleanly on Ctrl-C,
//! then the report is printed and the exit code says how it went. `--replicas` compares
//! layouts ([`layouts`]).

mod layouts;

use std::io::Write as _;
use std::time::Duration;

use crate::cli::{BenchArgs, GlobalArgs};
use crate::exit::{self, invalid};
use crate::http::{self, Url};
use crate::load::{self, report, stats, Failure, Handle, Outcome, RunInfo, Summary};
use crate::ui::Ui;

/// Exit code when the run was stopped by Ctrl-C (the report is still printed).
pub const EXIT_INTERRUPTED: i32 = 130;

pub async fn run(args: &BenchArgs, global: &GlobalArgs, ui: &Ui) -> anyhow::Result<i32> {
    if !args.replicas.is_empty() {
        return layouts::run(args, global, ui).await;
    }
    let cfg = config(args, global)?;
    let prepared = load::prepare(&cfg).await?;
    let info = prepared.info.clone();
    announce(&info, ui);
    let mut interrupt = Interrupt::new()?;
    let (handle, done) = load::start(prepared)?;
    let (outcome, interrupted) = watch(&handle, done, &mut interrupt, ui).await?;
    let info = RunInfo {
        interrupted,
        ..info
    };
    let summary = outcome.summary();
    print_report(args, &outcome, &summary, &info, ui)?;
    Ok(verdict(args, &summary, &info, ui))
}

/// The run the arguments ask for, every argument checked before anything is sent (exit 2).
fn config(args: &BenchArgs, global: &GlobalArgs) -> anyhow::Result<load::Config> {
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
    let r = &args.request;
    let headers = r
        .headers
        .iter()
        .map(|h| http::parse_header(h).map_err(invalid))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let body: Option<Vec<u8>> = match (&r.data, &r.data_file) {
        (Some(d), _) => Some(d.clone().into_bytes()),
        (None, Some(f)) => Some(
            std::fs::read(f)
                .map_err(|e| invalid(format!("cannot read the body file {}: {e}", f.display())))?,
        ),
        (None, None) => None,
    };
    let method = match &r.method {
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
    Ok(load::Config {
        url: resolve_url(args, global)?,
        method,
        headers,
        body,
        content_type: r.content_type.clone(),
        keepalive: !args.no_keepalive,
        connections: args.connections,
        threads: args.threads,
        requests: args.requests,
        duration: args.duration,
        rate: args.rate,
        timeout: (!args.timeout.is_zero()).then_some(args.timeout),
        max_head: args.max_header_size,
        retry_idempotent: args.retry_idempotent,
    })
}

/// The URL a TARGET stands for: itself, or an environment's proxy entrypoint.
fn resolve_url(args: &BenchArgs, global: &GlobalArgs) -> anyhow::Result<Url> {
    let mut target = if args.target.contains("://") {
        if args.lab.is_some() {
            return Err(invalid(
                "--lab says which lab an environment runs on: give ENV, not a URL",
            ));
        }
        Url::parse(&args.target).map_err(invalid)?
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
        Url::parse(&url)
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

/// `Benchmarking GET http://... with 50 connections for 200 requests`.
fn announce(info: &RunInfo, ui: &Ui) {
    let what = match (info.requests, info.duration) {
        (Some(n), Some(d)) => format!("{n} requests or {}", humantime::format_duration(d)),
        (Some(n), None) => format!("{n} requests"),
        (None, Some(d)) => humantime::format_duration(d).to_string(),
        (None, None) => unreachable!(),
    };
    let connections = info.connections;
    ui.info(&format!(
        "Benchmarking {} {} with {connections} connection{}{} for {what}{}",
        info.method,
        info.url,
        if connections == 1 { "" } else { "s" },
        if info.keepalive {
            ""
        } else {
            " (no keep-alive)"
        },
        info.rate
            .map(|r| format!(" at {r} req/s"))
            .unwrap_or_default(),
    ));
}

/// Waits for the run, drawing the progress line on a terminal (stderr) every 250 ms and
/// stopping the run on Ctrl-C. Returns the outcome and whether Ctrl-C stopped it.
async fn watch(
    handle: &Handle,
    done: impl std::future::Future<Output = anyhow::Result<Outcome>>,
    interrupt: &mut Interrupt,
    ui: &Ui,
) -> anyhow::Result<(Outcome, bool)> {
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
    Ok((outcome, interrupted))
}

/// The report on stdout (text or `--json`), and the SVG with `--plot`.
fn print_report(
    args: &BenchArgs,
    outcome: &Outcome,
    summary: &Summary,
    info: &RunInfo,
    ui: &Ui,
) -> anyhow::Result<()> {
    let bars = stats::bars(&outcome.stats.latency, 10);
    let out = if args.json {
        let mut s = serde_json::to_string_pretty(&report::json(summary, &bars, info))?;
        s.push('\n');
        s
    } else {
        report::text(summary, &bars, info)
    };
    {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(out.as_bytes())?;
        stdout.flush()?;
    }
    if let Some(path) = &args.plot {
        let plot_bars = stats::bars(&outcome.stats.latency, 40);
        let svg = load::plot::svg(summary, &plot_bars, &outcome.stats.timeline, info);
        std::fs::write(path, svg)
            .map_err(|e| anyhow::anyhow!("cannot write the plot {}: {e}", path.display()))?;
        ui.ok(&format!("plot written to {}", path.display()));
    }
    Ok(())
}

/// The exit code: 130 after Ctrl-C; 1 when nothing answered or when more requests failed
/// than `--max-error-rate` allows (saying why); else 0.
fn verdict(args: &BenchArgs, summary: &Summary, info: &RunInfo, ui: &Ui) -> i32 {
    if info.interrupted {
        ui.warn("stopped by Ctrl-C");
        return EXIT_INTERRUPTED;
    }
    if summary.responses == 0 {
        let first = summary.error_kinds.first();
        let why = first
            .map(|&(k, n)| format!("; {n} × {}", report::describe(k, info)))
            .unwrap_or_else(|| "; every request was still in flight at the deadline".into());
        // "Unreachable" only when no connection could be made at all.
        let unreachable = first.is_some_and(|&(k, _)| {
            matches!(
                k,
                Failure::Refused
                    | Failure::Unreachable
                    | Failure::ConnectTimeout
                    | Failure::NoLocalPort
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
        return exit::FAILURE;
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
            return exit::FAILURE;
        }
    }
    exit::SUCCESS
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
