//! `twip bench URL|ENV`: the wiring of the load generator ([`crate::load`]). The arguments are
//! checked and turned into a [`load::Config`] (an environment stands for its proxy's
//! entrypoint), the run shows a live progress line on a terminal and stops cleanly on Ctrl-C,
//! then the report is printed and the exit code says how it went. `--replicas` compares
//! layouts (`layouts`).

mod config;
mod layouts;
mod live;

use std::io::Write as _;

use crate::cli::{BenchArgs, GlobalArgs};
use crate::exit;
use crate::load::{self, report, stats, Failure, Outcome, RunInfo, Summary};
use crate::ui::Ui;

/// Exit code when the run was stopped by Ctrl-C (the report is still printed).
pub const EXIT_INTERRUPTED: i32 = 130;

pub async fn run(args: &BenchArgs, global: &GlobalArgs, ui: &Ui) -> anyhow::Result<i32> {
    if !args.replicas.is_empty() {
        return layouts::run(args, global, ui).await;
    }
    let cfg = config::config(args, global)?;
    let prepared = load::prepare(&cfg).await?;
    let info = prepared.info.clone();
    announce(&info, ui);
    let mut interrupt = live::Interrupt::new()?;
    let (handle, done) = load::start(prepared)?;
    let (outcome, interrupted) = live::watch(&handle, done, &mut interrupt, ui).await?;
    let info = RunInfo {
        interrupted,
        sched: outcome.sched,
        ..info
    };
    let summary = outcome.summary();
    print_report(args, &outcome, &summary, &info, ui)?;
    Ok(verdict(args, &summary, &info, ui))
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
