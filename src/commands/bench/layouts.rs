//! `twip bench ENV --service web --replicas 1,3,10`: the answer to "do 10 replicas give 10x?"
//! in numbers. For each count: scale the service through the lifecycle's converge path, wait,
//! run the same load for the same duration (the load library, in this process), and read the
//! service's CPU from the engine's stats halfway through. The original count is restored at
//! the end, also after a failure.

use std::path::Path;
use std::time::Duration;

use crate::cli::{BenchArgs, GlobalArgs};
use crate::context::{self, Target};
use crate::exit::{self, invalid};
use crate::lifecycle;
use crate::load::{self, compare, compare::Row};
use crate::plan::Options;
use crate::ui::Ui;

pub async fn run(args: &BenchArgs, g: &GlobalArgs, ui: &Ui) -> anyhow::Result<i32> {
    let svc = args.service.clone().unwrap_or_default();
    if args.target.contains("://") {
        return Err(invalid(
            "--replicas compares layouts of an environment: give ENV, not a URL",
        ));
    }
    if args.replicas.contains(&0) {
        return Err(invalid("--replicas counts must be at least 1"));
    }
    let t = context::open_on(g, &args.target, args.lab.as_deref()).await?;
    let m = &t.env.manifest;
    let Some(s) = m.services.get(&svc) else {
        let names: Vec<&str> = m.services.keys().map(String::as_str).collect();
        return Err(invalid(format!(
            "{}: no service `{svc}`; services: {}",
            t.env.name,
            names.join(", ")
        )));
    };
    if s.mode == crate::manifest::model::Mode::Global {
        return Err(invalid(format!(
            "`{svc}` is global (one task per node): it cannot be scaled"
        )));
    }
    let full = format!("{}_{svc}", t.env.stack());
    let original = crate::engine::stats::service_replicas(&t.docker, &full)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{full} is not running (run `twip up {}` first): {e}",
                t.env.name
            )
        })?
        .unwrap_or(1);
    let duration = args.duration.unwrap_or(Duration::from_secs(10));
    let cfg = config(args, g, duration)?;
    let quiet = Ui {
        quiet: true,
        ..ui.clone()
    };
    let mut rows = Vec::new();
    let result: anyhow::Result<()> = async {
        for &n in &args.replicas {
            ui.info(&format!(
                "{svc}: {n} replica{} ...",
                if n == 1 { "" } else { "s" }
            ));
            scale(&t, &svc, n, &quiet).await?;
            rows.push(one_run(&cfg, &t, &full, n).await?);
        }
        Ok(())
    }
    .await;
    ui.info(&format!(
        "{svc}: back to {original} replica{}",
        if original == 1 { "" } else { "s" }
    ));
    let restored = scale(&t, &svc, original, &quiet).await;
    result?;
    restored?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"service": svc, "duration_s": duration.as_secs_f64(), "rows": rows})
            )?
        );
    } else {
        print!("{}", compare::table(&svc, &rows));
    }
    if let Some(path) = &args.plot {
        write_plot(path, &svc, &rows)?;
        ui.ok(&format!("wrote {}", path.display()));
    }
    Ok(exit::SUCCESS)
}

async fn scale(t: &Target, svc: &str, n: u64, ui: &Ui) -> anyhow::Result<()> {
    let opts = Options {
        scale: [(svc.to_string(), n)].into(),
        ..Options::default()
    };
    lifecycle::converge(t, &opts, false, Duration::from_secs(300), ui).await?;
    Ok(())
}

/// The load of every count: the arguments' request and connections for `duration`. As when
/// each count ran `twip bench ENV --json -z DURATION` in a process of its own, only these
/// arguments carry over: no `-n`, `--rate`, `--max-header-size` or `--retry-idempotent`.
fn config(args: &BenchArgs, g: &GlobalArgs, duration: Duration) -> anyhow::Result<load::Config> {
    Ok(load::Config {
        requests: None,
        duration: Some(duration),
        rate: None,
        max_head: load::DEFAULT_MAX_HEAD,
        retry_idempotent: false,
        ..super::config::config(args, g)?
    })
}

async fn one_run(cfg: &load::Config, t: &Target, full: &str, n: u64) -> anyhow::Result<Row> {
    let half = cfg.duration.unwrap_or_default() / 2;
    // The service's CPU halfway through the run.
    let cpu = async {
        tokio::time::sleep(half).await;
        crate::engine::stats::cpu_cores(&t.docker, full).await.ok()
    };
    let (run, cpu) = tokio::join!(load::run(cfg), cpu);
    let (_, outcome) = run?;
    let s = outcome.summary();
    let lat = |k: &str| {
        s.latency
            .as_ref()
            .and_then(|l| l.percentile(k))
            .map(|d| d.as_secs_f64())
    };
    Ok(Row {
        replicas: n,
        rps: s.rps,
        p50_s: lat("p50"),
        p99_s: lat("p99"),
        failed: s.failed,
        requests: s.requests,
        cpu_cores: cpu,
    })
}

fn write_plot(path: &Path, svc: &str, rows: &[Row]) -> anyhow::Result<()> {
    std::fs::write(path, compare::svg(svc, rows))
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
}
