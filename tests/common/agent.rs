//! The in-cluster agent's autoscaling as a test sees it from outside: its rounds from its log
//! (`twip logs ENV agent`, one line per round, in order), and the stabilization window it keeps
//! in the scaled service's labels (`io.twip.autoscale.window`), watched while it runs.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One autoscaling round of the agent, parsed from its log line, e.g.
/// `autoscale: web: scale 1 → 4 (metric 148.2 req/s per task, target 40, recommended 4; scale
/// up: ...) [release 12] (next in 3s)`.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRound {
    /// The line as logged (after `autoscale: `).
    pub line: String,
    pub current: u64,
    pub desired: u64,
    pub recommended: u64,
    pub metric: f64,
    /// The release the rescale was recorded as.
    pub release: Option<u64>,
}

impl AgentRound {
    pub fn changes(&self) -> bool {
        self.desired != self.current
    }
}

/// The rounds of SERVICE in the agent's log LOG, in order, and the lines of the autoscaling
/// controller that are no decision of it (errors, failed rescales, skipped rounds).
pub fn autoscale_rounds(log: &str, service: &str) -> (Vec<AgentRound>, Vec<String>) {
    let mut rounds = Vec::new();
    let mut other = Vec::new();
    for l in log.lines() {
        let Some(i) = l.find("autoscale: ") else {
            continue;
        };
        let line = l[i + "autoscale: ".len()..].trim().to_string();
        match parse(&line, service) {
            Some(r) => rounds.push(r),
            None => other.push(line),
        }
    }
    (rounds, other)
}

fn parse(line: &str, service: &str) -> Option<AgentRound> {
    let rest = line.strip_prefix(&format!("{service}: "))?;
    let (act, rest) = rest.split_once(" (metric ")?;
    let (current, desired) = match act.strip_prefix("keep ") {
        Some(n) => (n.parse().ok()?, n.parse().ok()?),
        None => {
            let (a, b) = act.strip_prefix("scale ")?.split_once(" → ")?;
            (a.parse().ok()?, b.parse().ok()?)
        }
    };
    let metric = rest.split_whitespace().next()?.parse().unwrap_or(f64::NAN);
    let recommended = rest
        .split_once("recommended ")?
        .1
        .split(';')
        .next()?
        .parse()
        .ok()?;
    let release = line
        .split_once("[release ")
        .and_then(|(_, r)| r.split(']').next()?.parse().ok());
    Some(AgentRound {
        line: line.to_string(),
        current,
        desired,
        recommended,
        metric,
        release,
    })
}

/// The recommendations of the window SERVICE (full name) keeps in its labels, read through
/// ENGINE: (ms since the epoch on the agent's clock, count).
pub fn window_of(engine: &str, service: &str) -> Vec<(u64, u64)> {
    let out = super::lab::on(
        engine,
        &[
            "service",
            "inspect",
            "--format",
            "{{json .Spec.Labels}}",
            service,
        ],
    );
    out.first()
        .and_then(|l| serde_json::from_str::<BTreeMap<String, String>>(l).ok())
        .and_then(|labels| serde_json::from_str(labels.get("io.twip.autoscale.window")?).ok())
        .unwrap_or_default()
}

/// The stats pages whose request counters SERVICE (full name) keeps in its labels
/// (`io.twip.autoscale.requests`): the proxy tasks the agent read at its last round.
pub fn stats_pages_of(engine: &str, service: &str) -> Vec<String> {
    let out = super::lab::on(
        engine,
        &[
            "service",
            "inspect",
            "--format",
            "{{json .Spec.Labels}}",
            service,
        ],
    );
    out.first()
        .and_then(|l| serde_json::from_str::<BTreeMap<String, String>>(l).ok())
        .and_then(|labels| {
            serde_json::from_str::<serde_json::Value>(labels.get("io.twip.autoscale.requests")?)
                .ok()
        })
        .and_then(|v| Some(v["totals"].as_object()?.keys().cloned().collect()))
        .unwrap_or_default()
}

/// Watches SERVICE's window every second until stopped: every recommendation seen in it (a
/// recommendation stays in the window for its length, so none is missed).
pub struct WindowWatch {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<BTreeMap<u64, u64>>,
}

impl WindowWatch {
    pub fn start(engine: &str, service: &str) -> WindowWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, e, svc) = (stop.clone(), engine.to_string(), service.to_string());
        let handle = std::thread::spawn(move || {
            let mut seen = BTreeMap::new();
            while !s.load(Ordering::Relaxed) {
                seen.extend(window_of(&e, &svc));
                std::thread::sleep(Duration::from_secs(1)); // the watch's pace
            }
            seen.extend(window_of(&e, &svc));
            seen
        });
        WindowWatch { stop, handle }
    }

    /// Every recommendation seen: ms → count.
    pub fn stop(self) -> BTreeMap<u64, u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}
