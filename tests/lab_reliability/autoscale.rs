//! The autoscaler part of lab_reliability: the in-cluster agent that `twip up labas` deploys
//! (its image built from this twip binary, on the lab's manager) under a load step, checked
//! from what the agent did: its log (one line per round, in order), the window it keeps in
//! web's labels, its record in `twip status --json`, and the releases its rescales recorded.

use std::process::Command;
use std::time::{Duration, Instant};

use super::common::agent::*;
use super::common::lab::*;
use super::common::*;
use super::Ctx;

/// The autoscaler's policy: requests per second through HAProxy, 40 per task.
pub const RATE: u64 = 150;
pub const TARGET: u64 = 40;
pub const WINDOW_S: u64 = 20;
/// The agent runs (autoscale has work) and evaluates every 3 s.
pub const LABAS: &str = "extends: labzd
agent:
  autoscale_interval: 3s
services:
  web:
    replicas: 1
    autoscale:
      metric: rps
      target: 40
      min: 1
      max: 10
      scale_down_window: 20s
";
/// The same stack without the agent: what the parts after the autoscaler's run on (no
/// rescale under their loads).
pub const LABQUIET: &str = "extends: labas
agent:
  enabled: false
";

const WEB: &str = "twiptest_labrel_web";

/// The agent's autoscaling rounds so far, from `twip logs labas agent`, and its other lines
/// of the autoscaler (errors, failed rescales).
fn rounds(ctx: &Ctx) -> (Vec<AgentRound>, Vec<String>) {
    let out = ctx.ok(
        &[("TWIP_WEB_VERSION", "3.0.0")],
        &["logs", "labas", "agent"],
    );
    autoscale_rounds(&out, "web")
}

/// The agent (deployed by `up labas`) while a fixed rate of RATE requests/s runs for 30 s,
/// reading HAProxy's stats of every proxy task (`tasks.STACK_proxy`) itself. Its rounds are
/// checked by their order in its log: those logged while the load ran take web from 1 up to
/// ceil(RATE / TARGET) and hold it (no scale-down, never above); after the load, rounds that
/// would scale down are held by the window, then exactly one scale-down, to 1, the last event,
/// and only once every higher recommendation (the window as the agent kept it in web's labels,
/// watched all along, on the agent's clock) is more than the window older than it. Every scale
/// event is a release recorded by the agent (`twip history`), whose plan is that one scale.
pub fn autoscaler_follows_a_load_step(ctx: &Ctx) {
    let t_up = Instant::now();
    ctx.ok(&[("TWIP_WEB_VERSION", "3.0.0")], &["up", "labas"]);
    println!(
        "up labas (the agent built and deployed): {:.1} s",
        t_up.elapsed().as_secs_f64()
    );
    assert_eq!(ctx.hosts("web").len(), 1);
    let expected = RATE.div_ceil(TARGET);
    let watch = WindowWatch::start(&ctx.manager_engine, WEB);
    let started = Instant::now();
    // The agent runs on the manager and records its rounds; two rounds first (the first has
    // no rate yet).
    let status = eventually(180, || {
        let out = ctx.twip(
            &[("TWIP_WEB_VERSION", "3.0.0")],
            &["status", "labas", "--json"],
        );
        let st: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let recorded = st["agent"]["controllers"]
            .as_array()?
            .iter()
            .any(|r| r["controller"] == "autoscale");
        (st["agent"]["running"] == true && recorded && rounds(ctx).0.len() >= 2).then_some(st)
    })
    .unwrap_or_else(|| panic!("the agent does not run its rounds: {:?}", rounds(ctx)));
    println!("agent: {}", status["agent"]);

    println!(
        "agent running, two rounds logged: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The load step. Rounds logged from `first_loaded` to `first_after` (exclusive) were
    // logged while it ran.
    let first_loaded = rounds(ctx).0.len();
    let load_start = started.elapsed().as_secs_f64();
    let bench = Command::new(env!("CARGO_BIN_EXE_twip"))
        .args(["bench", &ctx.url(), "--rate", &RATE.to_string()])
        .args(["-z", "30s", "-c", "50", "--json"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let load_end = started.elapsed().as_secs_f64();
    let first_after = rounds(ctx).0.len();
    let report: serde_json::Value = serde_json::from_slice(&bench.stdout)
        .unwrap_or_else(|e| panic!("bench JSON: {e}\n{}", stderr(&bench)));
    assert_eq!(
        failed(&report),
        0,
        "requests failed while scaling: {report}"
    );
    assert!(
        report["responses"].as_u64().unwrap_or(0) >= RATE * 20,
        "the load step did not run at {RATE}/s: {report}"
    );
    println!(
        "load step: {RATE} requests/s asked, {:.1} sent, p99 {:.3} s, failed {}",
        report["rps"],
        report["latency_s"]["p99"],
        failed(&report)
    );

    // After the load: one scale-down (the window, then the next round), then two more rounds.
    let down_seen = eventually(WINDOW_S + 180, || {
        let r = rounds(ctx).0;
        let i = (first_after..r.len()).find(|i| r[*i].desired < r[*i].current)?;
        (r.len() >= i + 3).then_some(i)
    });
    let seen = watch.stop();
    println!(
        "scale-down and two rounds after it logged: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let (rounds, other) = rounds(ctx);
    let log: Vec<String> = rounds
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mark = if i == first_loaded {
                "   <- first logged under load"
            } else if i == first_after {
                "   <- first logged after the load"
            } else {
                ""
            };
            format!("{i:3} {}{mark}", r.line)
        })
        .collect();
    let log = log.join("\n");
    println!("the agent's autoscaler on the lab (rps, target {TARGET}, window {WINDOW_S} s, every 3 s):\n{log}");
    // Rounds skipped while `up labas` (which deployed the agent) held the stack's lock change
    // nothing; any other line of the controller is an error or a failed rescale.
    let (skipped, failed_rounds): (Vec<String>, Vec<String>) = other
        .into_iter()
        .partition(|l| l.contains("skipped this round, locked by") && l.contains("(up)"));
    println!("rounds skipped while `up` held the lock: {}", skipped.len());
    assert!(
        failed_rounds.is_empty(),
        "rounds that failed: {failed_rounds:?}\n{log}"
    );
    let down_i = down_seen.unwrap_or_else(|| {
        panic!("no scale-down after the load (load {load_start:.1}..{load_end:.1} s):\n{log}")
    });
    let events: Vec<(usize, &AgentRound)> = rounds
        .iter()
        .enumerate()
        .filter(|(_, r)| r.changes())
        .collect();

    // Nothing moved before the load; up to the formula's count while it ran, never above,
    // never down, then held.
    assert!(
        events.iter().all(|e| e.0 >= first_loaded),
        "a scale event before the load:\n{log}"
    );
    let during = &rounds[first_loaded..first_after];
    let reached = during
        .iter()
        .position(|r| r.desired == expected)
        .unwrap_or_else(|| {
            panic!(
                "web did not reach ceil({RATE}/{TARGET}) = {expected} while the load ran:\n{log}"
            )
        });
    assert!(
        events
            .iter()
            .filter(|e| e.0 < first_after)
            .all(|(_, r)| r.desired > r.current && r.desired <= expected),
        "a reversal or an overshoot while the load held:\n{log}"
    );
    assert!(
        during[reached..].iter().all(|r| r.desired == expected),
        "web did not hold {expected} while the load held:\n{log}"
    );
    // After: rounds held by the window, then exactly one scale-down, to 1, the last event.
    let downs: Vec<usize> = events
        .iter()
        .filter(|e| e.1.desired < e.1.current)
        .map(|e| e.0)
        .collect();
    assert_eq!(downs, [down_i], "scale-downs:\n{log}");
    assert_eq!(rounds[down_i].desired, 1, "{log}");
    assert_eq!(
        events.last().map(|e| e.0),
        Some(down_i),
        "events after the scale-down:\n{log}"
    );
    assert!(
        rounds[first_after..down_i]
            .iter()
            .any(|r| r.recommended < r.current && r.desired == r.current),
        "no round after the load was held by the window before the scale-down:\n{log}"
    );

    // Each event a release by the agent, its plan the one scale, in the log's order.
    let releases: Vec<u64> = events.iter().filter_map(|e| e.1.release).collect();
    assert_eq!(
        releases.len(),
        events.len(),
        "a rescale without a release:\n{log}"
    );
    assert!(releases.windows(2).all(|w| w[0] < w[1]), "{releases:?}");
    let mut down_created = 0;
    for (i, r) in &events {
        let n = r.release.unwrap().to_string();
        let out = ctx.twip(
            &[("TWIP_WEB_VERSION", "3.0.0")],
            &["history", "labas", &n, "--json"],
        );
        let rel: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("history {n}: {e}: {}{}", stdout(&out), stderr(&out)));
        assert_eq!(rel["user"], "twip-agent", "{rel}");
        assert_eq!(rel["command"], "autoscale (agent)", "{rel}");
        assert_eq!(rel["outcome"], "converged", "{rel}");
        let plan = rel["plan"].as_array().cloned().unwrap_or_default();
        assert!(
            plan.len() == 1 && plan[0]["op"] == "scale" && plan[0]["name"] == WEB,
            "release {n}'s plan is not the one scale of web: {rel}"
        );
        let time = rel["time"].as_str().unwrap_or_default();
        println!(
            "event: round {i}, web {} → {}, release {n} at {time} ({})",
            r.current, r.desired, plan[0]["cause"]
        );
        if *i == down_i {
            down_created = chrono::DateTime::parse_from_rfc3339(time)
                .unwrap_or_else(|e| panic!("{time}: {e}"))
                .timestamp() as u64;
        }
    }

    // The window on the agent's clock: the scale-down's round is the last recommendation kept
    // before its release was recorded (the next round starts after it); every recommendation
    // above 1 is more than the window older than it.
    let (down_at, _) = seen
        .range(..(down_created + 1) * 1000)
        .next_back()
        .map(|(t, n)| (*t, *n))
        .unwrap_or_else(|| panic!("no recommendation seen before the scale-down: {seen:?}"));
    let last_high = seen
        .range(..down_at)
        .filter(|(_, n)| **n > 1)
        .map(|(t, _)| *t)
        .max()
        .unwrap_or_else(|| panic!("no recommendation above 1 seen: {seen:?}"));
    println!(
        "window: {} recommendations seen; the last above 1 at -{:.1} s, the scale-down's at 0",
        seen.len(),
        (down_at - last_high) as f64 / 1000.0
    );
    assert!(
        down_at - last_high > WINDOW_S * 1000,
        "scaled down at {down_at} ms, within the {WINDOW_S} s window of a recommendation above 1 at {last_high} ms: {seen:?}\n{log}"
    );

    // The same load pattern in simulation: twip's controller against the seed's +1/-1 loop.
    let (twip_run, naive_run) = compare_on_pattern(load_start, load_end, started.elapsed());
    println!(
        "{:<34} {:>12} {:>10} {:>28}",
        "controller", "scale events", "reversals", "reversals under steady load"
    );
    // A reversal is under steady load when both events fall in one phase of the load (before
    // the step, during it, or after it).
    let phase = |i: usize| (i >= first_loaded) as u8 + (i >= first_after) as u8;
    let up = |r: &AgentRound| r.desired > r.current;
    let reversals: Vec<&[(usize, &AgentRound)]> = events
        .windows(2)
        .filter(|w| up(w[0].1) != up(w[1].1))
        .collect();
    let steady = reversals
        .iter()
        .filter(|w| phase(w[0].0) == phase(w[1].0))
        .count();
    println!(
        "{:<34} {:>12} {:>10} {:>28}",
        "twip's agent on the lab",
        events.len(),
        reversals.len(),
        steady
    );
    assert_eq!(steady, 0, "twip reversed itself under steady load:\n{log}");
    for r in [&twip_run, &naive_run] {
        println!(
            "{:<34} {:>12} {:>10} {:>28}",
            format!("{} (simulated)", r.controller),
            r.events.len(),
            r.reversals,
            r.reversals_steady
        );
    }
    assert_eq!(twip_run.reversals_steady, 0);
    assert!(
        naive_run.events.len() > twip_run.events.len(),
        "naive {:?} twip {:?}",
        naive_run.events,
        twip_run.events
    );

    // The agent read the stats page of every proxy task (one per node: all the load went
    // through the manager's, yet each page is summed).
    let pages = stats_pages_of(&ctx.manager_engine, WEB);
    let proxies = ctx.hosts("proxy");
    println!("stats pages read by the agent: {pages:?}; proxy tasks on {proxies:?}");
    assert_eq!(proxies.len(), 3, "{proxies:?}");
    assert_eq!(
        pages.len(),
        proxies.len(),
        "the agent did not read every proxy task's stats: {pages:?}"
    );
    println!(
        "autoscaler checked: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The agent off for what follows (web stays at 1).
    ctx.ok(&[("TWIP_WEB_VERSION", "3.0.0")], &["up", "labquiet"]);
    let agents = || {
        on(
            &ctx.manager_engine,
            &[
                "service",
                "ls",
                "-q",
                "--filter",
                "name=twiptest_labrel_agent",
            ],
        )
    };
    assert!(
        eventually(60, || agents().is_empty().then_some(())).is_some(),
        "the agent still runs after `up labquiet`: {:?}",
        agents()
    );
}

/// The lab's load pattern (idle, RATE requests/s from `start` to `end`, idle) simulated with
/// twip's controller (the test's policy) and the seed's loop: see `sim::rps_step`.
fn compare_on_pattern(
    start: f64,
    end: f64,
    total: Duration,
) -> (twip::autoscale::sim::Run, twip::autoscale::sim::Run) {
    twip::autoscale::sim::rps_step(
        RATE as f64,
        TARGET as f64,
        Duration::from_secs(WINDOW_S),
        start.round() as u64,
        (end - start).round() as u64,
        total.as_secs() + 1,
    )
}

#[test]
fn a_round_is_parsed_from_the_agent_s_log_line() {
    let log = "twip agent 0.1.0 for stack s (environment labas)
autoscale: web: keep 1 (metric NaN req/s per task, target 40, recommended 1; no tasks or no metric: only min/max apply) (next in 3s)
autoscale: web: scale 1 → 4 (metric 148.2 req/s per task, target 40, recommended 4; scale up: 148.2 per task against a target of 40) [release 12] (next in 3s)
autoscale: web: skipped this round, held by someone (next in 3s)
jobs: nothing due";
    let (rounds, other) = autoscale_rounds(log, "web");
    assert_eq!(rounds.len(), 2, "{rounds:?}");
    assert!(!rounds[0].changes() && rounds[0].metric.is_nan() && rounds[0].release.is_none());
    let r = &rounds[1];
    assert_eq!(
        (r.current, r.desired, r.recommended, r.release),
        (1, 4, 4, Some(12))
    );
    assert_eq!(r.metric, 148.2);
    assert_eq!(
        other,
        ["web: skipped this round, held by someone (next in 3s)"]
    );
}
