//! `twip bench ENV --service web --replicas 1,3,10`: the answer to "do 10 replicas give 10x?"
//! in numbers. For each count: scale the service through the lifecycle's converge path, wait,
//! run the same bench for the same duration (the `twip bench` of this binary, with `--json`),
//! and read the service's CPU from the engine's stats halfway through. The original count is
//! restored at the end, also after a failure.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::BenchArgs;
use crate::cli::GlobalArgs;
use crate::context::{self, Target};
use crate::exit::{self, invalid};
use crate::lifecycle;
use crate::plan::Options;
use crate::ui::Ui;

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub replicas: u64,
    pub rps: f64,
    pub p50_s: Option<f64>,
    pub p99_s: Option<f64>,
    pub failed: u64,
    pub requests: u64,
    /// Cores the service's tasks used together (engine stats, halfway through the run).
    pub cpu_cores: Option<f64>,
}

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
            rows.push(one_run(args, g, &t, &full, n, duration).await?);
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
        print!("{}", table(&svc, &rows));
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

async fn one_run(
    args: &BenchArgs,
    g: &GlobalArgs,
    t: &Target,
    full: &str,
    n: u64,
    duration: Duration,
) -> anyhow::Result<Row> {
    let exe = std::env::current_exe()?;
    let mut cmd = tokio::process::Command::new(exe);
    if let Some(dir) = &g.project_dir {
        cmd.arg("--project-dir").arg(dir);
    }
    cmd.args(["bench", &args.target, "--json", "-z"])
        .arg(format!("{}ms", duration.as_millis()))
        .arg("-c")
        .arg(args.connections.to_string())
        .arg("--timeout")
        .arg(format!("{}ms", args.timeout.as_millis()));
    if let Some(n) = args.threads {
        cmd.arg("--threads").arg(n.to_string());
    }
    if args.no_keepalive {
        cmd.arg("--no-keepalive");
    }
    let r = &args.request;
    if let Some(p) = &r.path {
        cmd.args(["--path", p]);
    }
    if let Some(m) = &r.method {
        cmd.args(["-m", m]);
    }
    for h in &r.headers {
        cmd.args(["-H", h]);
    }
    if let Some(d) = &r.data {
        cmd.args(["-d", d]);
    }
    if let Some(f) = &r.data_file {
        cmd.arg("-D").arg(f);
    }
    if let Some(ct) = &r.content_type {
        cmd.args(["-T", ct]);
    }
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let child = cmd.spawn()?;
    // The service's CPU halfway through the run.
    tokio::time::sleep(duration / 2).await;
    let cpu = crate::engine::stats::cpu_cores(&t.docker, full).await.ok();
    let out = child.wait_with_output().await?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| anyhow::anyhow!("the bench with {n} replicas gave no report: {e}"))?;
    let lat = |k: &str| v["latency_s"][k].as_f64();
    Ok(Row {
        replicas: n,
        rps: v["rps"].as_f64().unwrap_or(0.0),
        p50_s: lat("p50"),
        p99_s: lat("p99"),
        failed: v["failed"].as_u64().unwrap_or(0),
        requests: v["requests"].as_u64().unwrap_or(0),
        cpu_cores: cpu,
    })
}

fn ms(s: Option<f64>) -> String {
    s.map_or("-".into(), |s| format!("{:.2} ms", s * 1000.0))
}

/// The comparison as a table; the speed-up is against the first row.
pub fn table(svc: &str, rows: &[Row]) -> String {
    let mut out = String::new();
    let base = rows.first().map(|r| r.rps).filter(|r| *r > 0.0);
    let _ = writeln!(
        out,
        "{:>8}  {:>10}  {:>8}  {:>10}  {:>10}  {:>8}  {:>10}",
        "replicas",
        "rps",
        "speed-up",
        "p50",
        "p99",
        "failed",
        format!("{svc} cpu")
    );
    for r in rows {
        let speedup = base.map_or("-".into(), |b| format!("{:.2}x", r.rps / b));
        let cpu = r.cpu_cores.map_or("-".into(), |c| format!("{c:.2} cores"));
        let _ = writeln!(
            out,
            "{:>8}  {:>10.0}  {:>8}  {:>10}  {:>10}  {:>8}  {:>10}",
            r.replicas,
            r.rps,
            speedup,
            ms(r.p50_s),
            ms(r.p99_s),
            r.failed,
            cpu
        );
    }
    out
}

/// Requests/s (left axis) and p99 (right axis) against the replica count.
pub fn svg(svc: &str, rows: &[Row]) -> String {
    let (w, h, left, right, top, bottom) = (640.0, 360.0, 70.0, 70.0, 40.0, 50.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let max_n = rows.iter().map(|r| r.replicas).max().unwrap_or(1) as f64;
    let max_rps = rows.iter().map(|r| r.rps).fold(1.0, f64::max) * 1.1;
    let max_p99 = rows.iter().filter_map(|r| r.p99_s).fold(1e-6, f64::max) * 1.1 * 1000.0;
    let x = |n: u64| left + pw * (n as f64 / max_n);
    let y_rps = |v: f64| top + ph * (1.0 - v / max_rps);
    let y_p99 = |v: f64| top + ph * (1.0 - v * 1000.0 / max_p99);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{left}" y="24" font-size="14">{svc}: requests/s (blue) and p99 latency (red) against replicas</text>"#
    );
    let _ = write!(
        s,
        r#"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{left}" y1="{top}" x2="{left}" y2="{}" stroke="black"/><line x1="{}" y1="{top}" x2="{}" y2="{}" stroke="black"/>"#,
        top + ph,
        left + pw,
        top + ph,
        top + ph,
        left + pw,
        left + pw,
        top + ph
    );
    for i in 0..=4 {
        let f = f64::from(i) / 4.0;
        let yy = top + ph * (1.0 - f);
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end" fill="steelblue">{:.0}</text><text x="{}" y="{}" fill="firebrick">{:.1} ms</text>"#,
            left - 6.0,
            yy + 4.0,
            max_rps * f,
            left + pw + 6.0,
            yy + 4.0,
            max_p99 * f
        );
    }
    for r in rows {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            x(r.replicas),
            top + ph + 18.0,
            r.replicas
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">replicas</text>"#,
        left + pw / 2.0,
        h - 10.0
    );
    let line = |pts: Vec<(f64, f64)>, color: &str| {
        let p: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
        let dots: String = pts
            .iter()
            .map(|(a, b)| format!(r#"<circle cx="{a:.1}" cy="{b:.1}" r="3" fill="{color}"/>"#))
            .collect();
        format!(
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>{dots}"#,
            p.join(" ")
        )
    };
    s.push_str(&line(
        rows.iter().map(|r| (x(r.replicas), y_rps(r.rps))).collect(),
        "steelblue",
    ));
    s.push_str(&line(
        rows.iter()
            .filter_map(|r| r.p99_s.map(|p| (x(r.replicas), y_p99(p))))
            .collect(),
        "firebrick",
    ));
    s.push_str("</svg>\n");
    s
}

fn write_plot(path: &Path, svc: &str, rows: &[Row]) -> anyhow::Result<()> {
    std::fs::write(path, svg(svc, rows))
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Row> {
        vec![
            Row {
                replicas: 1,
                rps: 1000.0,
                p50_s: Some(0.01),
                p99_s: Some(0.05),
                failed: 0,
                requests: 10_000,
                cpu_cores: Some(0.9),
            },
            Row {
                replicas: 3,
                rps: 2500.0,
                p50_s: Some(0.004),
                p99_s: Some(0.02),
                failed: 0,
                requests: 25_000,
                cpu_cores: Some(1.8),
            },
        ]
    }

    #[test]
    fn the_table_shows_the_speed_up_against_the_first_count() {
        let t = table("web", &rows());
        assert!(t.contains("1.00x") && t.contains("2.50x"), "{t}");
        assert!(t.contains("1.80 cores"), "{t}");
        assert!(t.contains("50.00 ms"), "{t}");
    }

    #[test]
    fn the_chart_has_both_lines() {
        let s = svg("web", &rows());
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert_eq!(s.matches("<polyline").count(), 2);
        assert_eq!(s.matches("<circle").count(), 4);
    }
}
