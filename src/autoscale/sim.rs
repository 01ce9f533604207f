//! A simulation of a service under a load pattern, driven by twip's autoscaler or by the
//! seed's naive +1/-1 loop, to compare the two: scale events, reversals (a change in the
//! opposite direction of the previous one), and time spent overloaded.
//!
//! The model: the load is a total demand in the metric's unit (CPU in percent of one core, or
//! requests per second); each task serves an equal share, up to `capacity` (100% for CPU: a
//! saturated task). A new task takes `startup` seconds before it carries load. Measurements
//! are noisy (a fixed-seed random walk of +-noise%), as real CPU samples are, and averaged over
//! a period: twip's over its evaluation interval (the growth of a counter since the last
//! reading), the seed's loop over a minute (its Prometheus query was
//! `avg(rate(container_cpu_usage_seconds_total[1m]))`, acted on every 2 s).

use std::time::Duration;

use serde::Serialize;

use super::{Autoscaler, Policy};

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub at_s: u64,
    pub from: u64,
    pub to: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub controller: String,
    pub events: Vec<Event>,
    pub reversals: usize,
    /// Reversals with no change of load between the two events (flapping).
    pub reversals_steady: usize,
    pub overloaded_s: u64,
    pub final_replicas: u64,
}

/// Total demand (CPU % of one core) at second `t`.
pub type Pattern = dyn Fn(u64) -> f64;

pub struct Setup {
    pub seconds: u64,
    /// Evaluation interval of the controller.
    pub interval: u64,
    pub startup: u64,
    pub noise: f64,
    pub start_replicas: u64,
    /// What one task can serve, in the metric's unit (100 for CPU percent).
    pub capacity: f64,
    /// Seconds the measurement averages over (1: an instantaneous sample).
    pub average_s: u64,
}

/// The seed's loop: every `every` seconds, +1 task when the measured load per task is above
/// `up`, -1 when below `down`, the measurement averaged over `average_s` seconds.
#[derive(Debug, Clone, Copy)]
pub struct Loop {
    pub every: u64,
    pub up: f64,
    pub down: f64,
    pub average_s: u64,
}

impl Loop {
    /// As the swarm course wrote it: every 2 s, on a 1-minute average.
    pub fn seed(up: f64, down: f64) -> Loop {
        Loop {
            every: 2,
            up,
            down,
            average_s: 60,
        }
    }
}

fn noise_seq(seconds: u64, amplitude: f64) -> Vec<f64> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..=seconds)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x % 10_000) as f64 / 10_000.0; // 0..1
            1.0 + amplitude * (2.0 * u - 1.0)
        })
        .collect()
}

/// Runs a controller over the pattern. `decide(t, current, per_task_cpu) -> desired`.
fn run(
    name: &str,
    setup: &Setup,
    pattern: &Pattern,
    mut decide: impl FnMut(u64, u64, f64) -> u64,
) -> Run {
    let noise = noise_seq(setup.seconds, setup.noise);
    let mut replicas = setup.start_replicas;
    // Tasks that started at (second) and carry load from startup on.
    let mut started: Vec<u64> = vec![0; replicas as usize];
    let mut events: Vec<Event> = Vec::new();
    let mut overloaded = 0;
    let mut loads: Vec<f64> = Vec::with_capacity(setup.seconds as usize);
    for t in 0..setup.seconds {
        let ready = started
            .iter()
            .filter(|s| t >= **s + setup.startup || **s == 0)
            .count()
            .max(1) as f64;
        let demand = pattern(t);
        let per_task = (demand / ready).min(setup.capacity);
        if demand / ready > setup.capacity {
            overloaded += 1;
        }
        loads.push(per_task);
        if t % setup.interval == 0 {
            let span = &loads[loads.len().saturating_sub(setup.average_s.max(1) as usize)..];
            let measured = span.iter().sum::<f64>() / span.len() as f64 * noise[t as usize];
            let want = decide(t, replicas, measured);
            if want != replicas {
                events.push(Event {
                    at_s: t,
                    from: replicas,
                    to: want,
                });
                if want > replicas {
                    started.extend(std::iter::repeat_n(t, (want - replicas) as usize));
                } else {
                    started.truncate(want as usize);
                }
                replicas = want;
            }
        }
    }
    let mut reversals = 0;
    let mut reversals_steady = 0;
    for w in events.windows(2) {
        let up0 = w[0].to > w[0].from;
        let up1 = w[1].to > w[1].from;
        if up0 != up1 {
            reversals += 1;
            let load = pattern(w[0].at_s);
            if (w[0].at_s..=w[1].at_s).all(|t| pattern(t) == load) {
                reversals_steady += 1;
            }
        }
    }
    Run {
        controller: name.to_string(),
        events,
        reversals,
        reversals_steady,
        overloaded_s: overloaded,
        final_replicas: replicas,
    }
}

/// twip's autoscaler against the naive loop, on the same pattern.
pub fn compare(setup: &Setup, policy: Policy, pattern: &Pattern, naive: Loop) -> (Run, Run) {
    let (min, max) = (policy.min, policy.max);
    let mut a = Autoscaler::new(policy);
    let twip = run("twip", setup, pattern, |t, cur, m| {
        a.decide(Duration::from_secs(t), cur, m, false).desired
    });
    let naive_setup = Setup {
        interval: naive.every,
        average_s: naive.average_s,
        ..*setup
    };
    let loop_run = run("naive +1/-1", &naive_setup, pattern, |_, cur, m| {
        super::naive(cur, m, naive.up, naive.down, min, max)
    });
    (twip, loop_run)
}

impl Clone for Setup {
    fn clone(&self) -> Self {
        Setup { ..*self }
    }
}

/// The pattern the tests use: idle, a step to `high` that holds for `hold` seconds, then idle
/// again.
pub fn step_pattern(idle: f64, high: f64, step_at: u64, hold: u64) -> impl Fn(u64) -> f64 {
    move |t| {
        if t >= step_at && t < step_at + hold {
            high
        } else {
            idle
        }
    }
}

/// A square step of requests per second (none, `rate` from `step_at` for `hold` seconds, none;
/// `seconds` in all) under an `rps` policy (`target` per task, 1..10 tasks, the given window,
/// evaluated every 3 s), against the seed's loop every 2 s on a 1-minute average with its
/// 20%/10% thresholds on the target's scale (+1 above `target`, -1 below half of it). What
/// tests/lab_reliability.rs runs for real on a lab.
pub fn rps_step(
    rate: f64,
    target: f64,
    window: Duration,
    step_at: u64,
    hold: u64,
    seconds: u64,
) -> (Run, Run) {
    let setup = Setup {
        seconds,
        interval: 3,
        // twip evaluates again only once a scale-up has converged; the loop's new tasks serve
        // before its next evaluation too.
        startup: 2,
        noise: 0.08,
        start_replicas: 1,
        capacity: f64::INFINITY,
        // twip divides the requests of the interval by the tasks running at its end.
        average_s: 1,
    };
    let policy = Policy {
        metric: crate::manifest::model::Metric::Rps,
        target,
        min: 1,
        max: 10,
        max_step: None,
        tolerance: 0.1,
        scale_down_window: window,
    };
    let pattern = step_pattern(0.0, rate, step_at, hold);
    compare(&setup, policy, &pattern, Loop::seed(target, target / 2.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::model::Metric;

    #[test]
    fn twip_scales_with_far_fewer_events_and_never_flaps_under_steady_load() {
        let setup = Setup {
            seconds: 1200,
            interval: 15,
            startup: 5,
            noise: 0.08,
            start_replicas: 1,
            capacity: 100.0,
            average_s: 1,
        };
        let policy = Policy {
            metric: Metric::Cpu,
            target: 60.0,
            min: 1,
            max: 12,
            max_step: None,
            tolerance: 0.1,
            scale_down_window: Duration::from_secs(300),
        };
        let pattern = step_pattern(20.0, 240.0, 60, 600);
        let (twip, naive) = compare(&setup, policy, &pattern, Loop::seed(20.0, 10.0));
        for r in [&twip, &naive] {
            println!(
                "{}: {} scale events, {} reversals ({} under steady load), {} s overloaded, ends at {}",
                r.controller,
                r.events.len(),
                r.reversals,
                r.reversals_steady,
                r.overloaded_s,
                r.final_replicas
            );
        }
        // Under the step, twip reaches ceil(240/60) = 4 and holds it.
        assert_eq!(twip.reversals_steady, 0, "{:?}", twip.events);
        assert!(twip.events.iter().any(|e| e.to == 4), "{:?}", twip.events);
        // One scale-down after the load stops, after the window.
        let downs: Vec<&Event> = twip.events.iter().filter(|e| e.to < e.from).collect();
        assert_eq!(downs.len(), 1, "{:?}", twip.events);
        assert!(downs[0].at_s >= 660 + 300, "{:?}", downs);
        assert!(
            naive.events.len() >= 10 * twip.events.len(),
            "naive {} events, twip {}",
            naive.events.len(),
            twip.events.len()
        );
        assert!(
            naive.reversals_steady > 0,
            "the naive loop flaps: {:?}",
            naive.events.len()
        );
    }

    /// The lab test's pattern (tests/lab_reliability.rs): 150 requests/s for 45 s against a
    /// target of 40 per task.
    #[test]
    fn a_square_request_step_scales_once_each_way() {
        let (twip, naive) = rps_step(150.0, 40.0, Duration::from_secs(20), 5, 45, 80);
        println!("twip {:?}\nnaive {:?}", twip.events, naive.events);
        let moves: Vec<(u64, u64)> = twip.events.iter().map(|e| (e.from, e.to)).collect();
        assert_eq!(moves, [(1, 4), (4, 1)]);
        // The window counts from the last evaluation that saw the load.
        assert!(twip.events[1].at_s >= 50 + 20 - 3, "{:?}", twip.events);
        assert_eq!(twip.reversals_steady, 0);
        assert!(naive.events.len() > twip.events.len(), "{:?}", naive.events);
    }
}
