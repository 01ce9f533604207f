//! `twip autoscale ENV [--once] [--dry-run] [--interval DUR] [--json]`: runs the manifest's
//! autoscale policies. Each evaluation reads the metric per task (CPU from the engine's
//! container stats, relative to the CPU each task reserves or to one core; or requests per
//! second from HAProxy's stats), asks the controller in [`crate::autoscale`] for a count, logs
//! the decision with its inputs, and scales through the same converge path as `twip scale` (so
//! a later `up` keeps the count, and a scale-down drains: the app fails its health check first
//! and finishes what is in flight). `--dry-run` logs without acting.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::models::{ServiceUpdateStatusStateEnum, TaskState};
use bollard::query_parameters::{
    InspectServiceOptions, ListContainersOptionsBuilder, StatsOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;

use crate::autoscale::{Autoscaler, Decision, Policy};
use crate::cli::{AutoscaleArgs, GlobalArgs};
use crate::engine::error::EngineResult;
use crate::engine::observe;
use crate::exit;
use crate::manifest::model::Metric;
use crate::plan::Options;
use crate::ui::Ui;

struct Watched {
    short: String,
    full: String,
    scaler: Autoscaler,
    /// For rps: the last (time, total requests) read from HAProxy.
    last_requests: Option<(Instant, u64)>,
}

pub async fn run(g: &GlobalArgs, args: &AutoscaleArgs, ui: &Ui) -> anyhow::Result<i32> {
    let t = super::deploy::open(g, &args.env).await?;
    let stack = t.env.stack().to_string();
    let mut watched: Vec<Watched> = t
        .env
        .manifest
        .services
        .iter()
        .filter_map(|(name, s)| {
            s.autoscale.as_ref().map(|a| Watched {
                short: name.clone(),
                full: format!("{stack}_{name}"),
                scaler: Autoscaler::new(Policy::from(a)),
                last_requests: None,
            })
        })
        .collect();
    if watched.is_empty() {
        return Err(exit::invalid(format!(
            "{}: no service has an `autoscale` policy (see docs/manifest.md)",
            t.env.name
        )));
    }
    let stats_url = t.env.manifest.proxy.as_ref().and_then(|p| {
        let st = p.stats.as_ref();
        if st.is_some_and(|s| !s.enabled) {
            return None;
        }
        let port = st.and_then(|s| s.port).unwrap_or(1936);
        let uri = st.and_then(|s| s.uri.clone()).unwrap_or_else(|| "/".into());
        Some(format!("http://127.0.0.1:{port}{uri};csv"))
    });
    let quiet = Ui {
        quiet: true,
        ..ui.clone()
    };
    let start = Instant::now();
    loop {
        for w in &mut watched {
            let (current, updating, running) = service_state(&t.docker, &w.full).await?;
            let metric = match w.scaler.policy.metric {
                Metric::Cpu => cpu_per_task(&t.docker, &w.full).await?,
                Metric::Rps => {
                    let url = stats_url.as_deref().ok_or_else(|| {
                        exit::invalid(format!(
                            "{}: an rps policy needs the proxy's stats page (proxy.stats)",
                            w.short
                        ))
                    })?;
                    requests_per_task(url, &w.short, running, &mut w.last_requests).await?
                }
            };
            let d = w.scaler.decide(start.elapsed(), current, metric, updating);
            log(&w.short, &w.scaler.policy, &d, args.json, args.dry_run);
            if d.changes() && !args.dry_run {
                let opts = Options {
                    scale: [(w.short.clone(), d.desired)].into(),
                    ..Options::default()
                };
                let timeout = (args.interval * 8).max(Duration::from_secs(120));
                if let Err(e) = super::deploy::converge(&t, &opts, false, timeout, &quiet).await {
                    ui.warn(&format!(
                        "{}: scaling to {} did not converge: {e:#}",
                        w.short, d.desired
                    ));
                }
            }
        }
        if args.once {
            return Ok(exit::SUCCESS);
        }
        tokio::select! {
            _ = tokio::time::sleep(args.interval) => {}
            _ = tokio::signal::ctrl_c() => return Ok(exit::SUCCESS),
        }
    }
}

fn log(service: &str, p: &Policy, d: &Decision, json: bool, dry_run: bool) {
    if json {
        let mut v = serde_json::to_value(d).unwrap_or_default();
        v["service"] = service.into();
        v["metric_kind"] = if p.metric == Metric::Cpu {
            "cpu"
        } else {
            "rps"
        }
        .into();
        v["dry_run"] = dry_run.into();
        println!("{v}");
    } else {
        let unit = if p.metric == Metric::Cpu {
            "% cpu"
        } else {
            " req/s"
        };
        let act = match (d.changes(), dry_run) {
            (true, true) => format!("would scale {} → {}", d.current, d.desired),
            (true, false) => format!("scale {} → {}", d.current, d.desired),
            (false, _) => format!("keep {}", d.current),
        };
        println!(
            "[{:>7.1}s] {service}: {act}  (metric {:.1}{unit} per task, target {}, recommended {}; {})",
            d.at_s, d.metric, d.target, d.recommended, d.reason
        );
    }
}

/// (replicas wanted, an update runs, tasks running).
async fn service_state(docker: &Docker, full: &str) -> anyhow::Result<(u64, bool, u64)> {
    let svc = docker
        .inspect_service(full, None::<InspectServiceOptions>)
        .await
        .engine("inspect service", full)?;
    let replicas = svc
        .spec
        .as_ref()
        .and_then(|s| s.mode.as_ref())
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas)
        .unwrap_or(0) as u64;
    let updating = matches!(
        svc.update_status.and_then(|u| u.state),
        Some(
            ServiceUpdateStatusStateEnum::UPDATING | ServiceUpdateStatusStateEnum::ROLLBACK_STARTED
        )
    );
    let running = observe::tasks(docker, full)
        .await?
        .iter()
        .filter(|t| {
            t.desired_state == Some(TaskState::RUNNING)
                && t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING)
        })
        .count() as u64;
    Ok((replicas, updating, running))
}

/// Cores each running container of the service uses on this engine (read concurrently, one
/// stats sample each), and the cores each task reserves (1 when it reserves none).
pub async fn cpu_samples(docker: &Docker, full: &str) -> anyhow::Result<(Vec<f64>, f64)> {
    let svc = docker
        .inspect_service(full, None::<InspectServiceOptions>)
        .await
        .engine("inspect service", full)?;
    let reserved = svc
        .spec
        .as_ref()
        .and_then(|s| s.task_template.as_ref())
        .and_then(|t| t.resources.as_ref())
        .and_then(|r| r.reservations.as_ref())
        .and_then(|r| r.nano_cpus)
        .filter(|n| *n > 0)
        .map_or(1.0, |n| n as f64 / 1e9);
    let f = HashMap::from([
        (
            "label".to_string(),
            vec![format!("com.docker.swarm.service.name={full}")],
        ),
        ("status".to_string(), vec!["running".to_string()]),
    ]);
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default().filters(&f).build(),
        ))
        .await
        .engine("list containers of service", full)?;
    let reads = containers
        .into_iter()
        .filter_map(|c| c.id)
        .map(|id| async move {
            let opts = StatsOptionsBuilder::default()
                .stream(false)
                .one_shot(false)
                .build();
            let Some(Ok(st)) = docker.stats(&id, Some(opts)).next().await else {
                return None;
            };
            let (cpu, pre) = (
                st.cpu_stats.unwrap_or_default(),
                st.precpu_stats.unwrap_or_default(),
            );
            let total = |s: &bollard::models::ContainerCpuStats| {
                s.cpu_usage
                    .as_ref()
                    .and_then(|u| u.total_usage)
                    .unwrap_or(0)
            };
            let delta = total(&cpu).saturating_sub(total(&pre)) as f64;
            let sys = cpu
                .system_cpu_usage
                .unwrap_or(0)
                .saturating_sub(pre.system_cpu_usage.unwrap_or(0)) as f64;
            let cpus = f64::from(cpu.online_cpus.unwrap_or(1).max(1));
            (sys > 0.0).then(|| delta / sys * cpus)
        });
    let samples = futures_util::future::join_all(reads)
        .await
        .into_iter()
        .flatten()
        .collect();
    Ok((samples, reserved))
}

/// Mean CPU of the service's running containers on this engine, in percent of what each task
/// reserves (or of one core when nothing is reserved). NaN when no container runs here.
pub async fn cpu_per_task(docker: &Docker, full: &str) -> anyhow::Result<f64> {
    let (samples, reserved) = cpu_samples(docker, full).await?;
    if samples.is_empty() {
        return Ok(f64::NAN);
    }
    Ok(samples.iter().sum::<f64>() / samples.len() as f64 / reserved * 100.0)
}

/// Cores the service's containers on this engine use together.
pub async fn cpu_cores(docker: &Docker, full: &str) -> anyhow::Result<f64> {
    Ok(cpu_samples(docker, full).await?.0.iter().sum())
}

/// Requests per second per running task, from the growth of HAProxy's `req_tot` counter of the
/// service's backend since the last reading (NaN on the first reading).
async fn requests_per_task(
    url: &str,
    backend: &str,
    running: u64,
    last: &mut Option<(Instant, u64)>,
) -> anyhow::Result<f64> {
    let reply = super::smoke::get(url, Duration::from_secs(5)).await?;
    let text = String::from_utf8_lossy(&reply.body);
    let total = parse_req_tot(&text, backend)
        .ok_or_else(|| anyhow::anyhow!("HAProxy's stats at {url} have no backend `{backend}`"))?;
    let now = Instant::now();
    let rate = match last.replace((now, total)) {
        Some((then, before)) => {
            let dt = now.duration_since(then).as_secs_f64();
            if dt > 0.0 && running > 0 {
                total.saturating_sub(before) as f64 / dt / running as f64
            } else {
                f64::NAN
            }
        }
        None => f64::NAN,
    };
    Ok(rate)
}

/// The `req_tot` column of the `BACKEND` row of `backend` in HAProxy's CSV stats.
pub fn parse_req_tot(csv: &str, backend: &str) -> Option<u64> {
    let mut lines = csv.lines();
    let header = lines.next()?.trim_start_matches("# ");
    let col = header.split(',').position(|c| c == "req_tot")?;
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&backend) && f.get(1) == Some(&"BACKEND"))
        .and_then(|f| f.get(col)?.parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn req_tot_is_read_from_the_backend_row() {
        let csv = "# pxname,svname,qcur,req_tot,\nweb,web-1,0,5,\nweb,BACKEND,0,42,\nstatic,BACKEND,0,7,\n";
        assert_eq!(super::parse_req_tot(csv, "web"), Some(42));
        assert_eq!(super::parse_req_tot(csv, "static"), Some(7));
        assert_eq!(super::parse_req_tot(csv, "nope"), None);
    }
}
