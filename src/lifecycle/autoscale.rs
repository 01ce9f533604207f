//! The autoscaler's loop (`twip autoscale`): runs the manifest's autoscale policies. Each
//! evaluation reads the metric per task (CPU from the container stats of every node's engine that twip can reach, relative to the CPU each task
//! reserves or to one core; or requests per second from the stats page of every running proxy
//! task, summed), asks the controller in [`crate::autoscale`] for a count, logs
//! the decision with its inputs, and scales through the same converge path as `twip scale` (so
//! a later `up` keeps the count, and a scale-down drains: the app fails its health check first
//! and finishes what is in flight). `--dry-run` logs without acting. A stack that runs its
//! agent (`twip agent`, see [`crate::agent::autoscale`]) autoscales in the cluster: there the
//! endless loop refuses to run (exit 2); `--once` and `--dry-run` still do.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::autoscale::{Autoscaler, Decision, Policy};
use crate::context::Target;
use crate::engine::stats::{self, cpu_per_task_on, service_state};
use crate::engine::{self, SwarmApi};
use crate::exit;
use crate::lifecycle::lock::{self, Operation};
use crate::manifest::model::{Metric, PublishMode};
use crate::plan::Options;
use crate::ui::Ui;

struct Watched {
    short: String,
    full: String,
    scaler: Autoscaler,
    /// For rps: the last reading of HAProxy's counters: when, and `req_tot` per stats page.
    last_requests: Option<(Instant, HashMap<String, u64>)>,
}

/// How the autoscaler runs: once or every INTERVAL until Ctrl-C, acting or only logging
/// (`dry_run`), decisions as text or JSON lines.
#[derive(Debug, Clone)]
pub struct Settings {
    pub once: bool,
    pub dry_run: bool,
    pub json: bool,
    pub interval: Duration,
    /// How long an action waits for the stack's deploy lock (none: skip it when locked).
    pub lock_wait: Option<Duration>,
    pub reason: Option<String>,
}

/// Evaluates every autoscale policy of the environment and scales through converge; see the
/// module's documentation.
pub async fn run(t: &Target, args: &Settings, ui: &Ui) -> anyhow::Result<i32> {
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
    if !args.once && !args.dry_run {
        if let Some(agent) = agent_service(&t.docker, &stack).await? {
            return Err(exit::invalid(format!(
                "{}: the stack runs its agent ({agent}), which autoscales in the cluster; `twip autoscale` runs only with --once or --dry-run here (the agent's decisions: `twip status {}`)",
                t.env.name, t.env.name
            )));
        }
    }
    let stats = t.env.manifest.proxy.as_ref().and_then(|p| {
        let st = p.stats.as_ref();
        if st.is_some_and(|s| !s.enabled) {
            return None;
        }
        let port = st.and_then(|s| s.port).unwrap_or(1936);
        let uri = st.and_then(|s| s.uri.clone()).unwrap_or_else(|| "/".into());
        let host_mode = p.publish_mode != Some(PublishMode::Ingress);
        Some((port, uri, host_mode))
    });
    if stats.is_none() {
        if let Some(w) = watched
            .iter()
            .find(|w| w.scaler.policy.metric == Metric::Rps)
        {
            return Err(exit::invalid(format!(
                "{}: an rps policy needs the proxy's stats page (proxy.stats)",
                w.short
            )));
        }
    }
    // CPU is read from every node's engine twip can reach: all of a lab's nodes, else the
    // manifest's engine only (the average is then over the tasks that run on that node).
    let mut engines = vec![t.docker.clone()];
    if let Some(lab) = &t.lab {
        let manager = lab.manager()?.name.clone();
        for n in lab.nodes.iter().filter(|n| n.name != manager) {
            engines.push(crate::engine::connect(&n.endpoint()).await?);
        }
    }
    let quiet = Ui {
        quiet: true,
        ..ui.clone()
    };
    let start = Instant::now();
    loop {
        // The stats pages, found once per evaluation (for every rps policy).
        let mut urls: Option<Vec<String>> = None;
        for w in &mut watched {
            let (current, updating, running) = service_state(&t.docker, &w.full).await?;
            let metric = match (w.scaler.policy.metric, &stats) {
                (Metric::Cpu, _) => cpu_per_task_on(&engines, &w.full).await?,
                (Metric::Rps, Some((port, uri, host_mode))) => {
                    if urls.is_none() {
                        urls = Some(stats_urls(t, *port, uri, *host_mode).await?);
                    }
                    let urls = urls.as_deref().unwrap_or_default();
                    requests_per_task(urls, &w.short, running, &mut w.last_requests).await?
                }
                // Refused before the first evaluation; no metric if it ever came to this.
                (Metric::Rps, None) => f64::NAN,
            };
            let d = w.scaler.decide(start.elapsed(), current, metric, updating);
            log(&w.short, &w.scaler.policy, &d, args.json, args.dry_run);
            if d.changes() && !args.dry_run {
                let opts = Options {
                    scale: [(w.short.clone(), d.desired)].into(),
                    ..Options::default()
                };
                let timeout = (args.interval * 8).max(Duration::from_secs(120));
                // Only an action takes the deploy lock; a locked stack skips this one.
                let op = Operation::here(&format!("autoscale {}={}", w.short, d.desired))
                    .reason(args.reason.as_deref())
                    .hooks(false);
                let ttl = lock::ttl_for(timeout);
                let scaled =
                    lock::with_lock(&t.docker, &stack, op, args.lock_wait, ttl, ui, async {
                        crate::lifecycle::converge::converge(t, &opts, false, timeout, &quiet).await
                    });
                if let Err(e) = scaled.await {
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

/// The stack's agent service, if it runs one (a service of STACK labelled
/// [`crate::labels::AGENT`]`=true`): that agent autoscales, so an endless loop here would fight it.
pub async fn agent_service(api: &dyn SwarmApi, stack: &str) -> anyhow::Result<Option<String>> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![
            format!("{}={stack}", crate::labels::NAMESPACE),
            format!("{}=true", crate::labels::AGENT),
        ],
    )]);
    let found = api
        .list_services(&filters)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(found.into_iter().filter_map(|s| s.spec?.name).min())
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

/// The stats pages to read: with host-mode ports, one per node that runs a proxy task (each
/// HAProxy counts only what it forwarded); with ingress ports, the entry point's.
async fn stats_urls(
    t: &crate::context::Target,
    port: u16,
    uri: &str,
    host_mode: bool,
) -> anyhow::Result<Vec<String>> {
    let url = |host: &str| format!("http://{host}:{port}{uri};csv");
    let entry_host = || {
        t.lab
            .as_ref()
            .and_then(|l| l.manager().ok())
            .map_or_else(|| "127.0.0.1".to_string(), |m| m.address.clone())
    };
    if !host_mode {
        return Ok(vec![url(&entry_host())]);
    }
    let proxy = format!(
        "{}_{}",
        t.env.stack(),
        crate::manifest::validate::PROXY_SERVICE
    );
    let nodes = engine::nodes::addresses(&t.docker).await?;
    let mut urls: Vec<String> = stats::running_task_nodes(&t.docker, &proxy)
        .await?
        .iter()
        .filter_map(|id| nodes.get(id))
        .map(|a| url(a))
        .collect();
    urls.sort();
    urls.dedup();
    if urls.is_empty() {
        urls.push(url(&entry_host()));
    }
    Ok(urls)
}

/// Requests per second per running task, from the growth of HAProxy's `req_tot` counters of the
/// service's backend on every stats page since the last reading (NaN on the first reading). A
/// page seen for the first time adds nothing until its next reading; a counter that went back
/// (a restarted proxy) counts from zero.
async fn requests_per_task(
    urls: &[String],
    backend: &str,
    running: u64,
    last: &mut Option<(Instant, HashMap<String, u64>)>,
) -> anyhow::Result<f64> {
    let reads = urls.iter().map(|url| async move {
        let reply = crate::http::get(url, Duration::from_secs(5)).await?;
        let text = String::from_utf8_lossy(&reply.body);
        let total = parse_req_tot(&text, backend).ok_or_else(|| {
            anyhow::anyhow!("HAProxy's stats at {url} have no backend `{backend}`")
        })?;
        anyhow::Ok((url.clone(), total))
    });
    let mut totals = HashMap::new();
    for r in futures_util::future::join_all(reads).await {
        let (url, total) = r?;
        totals.insert(url, total);
    }
    let now = Instant::now();
    let rate = match last.replace((now, totals.clone())) {
        Some((then, before)) => {
            let dt = now.duration_since(then).as_secs_f64();
            let grown: u64 = totals
                .iter()
                .filter_map(|(url, total)| {
                    let b = *before.get(url)?;
                    Some(if *total >= b { total - b } else { *total })
                })
                .sum();
            if dt > 0.0 && running > 0 {
                grown as f64 / dt / running as f64
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
