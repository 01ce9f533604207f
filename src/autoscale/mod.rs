//! The autoscaler's decisions, pure: no engine, no clock. Given a policy and, at each
//! evaluation, the current replica count and the metric per task, it recommends a count:
//!
//! - `desired = ceil(current × metric / target)`, within a tolerance band around the target
//!   (default 10%) where nothing changes;
//! - scale-ups act at once; scale-downs take the highest recommendation of the stabilization
//!   window (default 300 s), so a dip does not remove tasks a returning load needs, and only
//!   once that level is more than one passing reading (so a load that stops gives one
//!   scale-down, not a staircase through the evaluation that saw half of it);
//! - at most `max_step` tasks added or removed in one decision, always within `min..=max`;
//! - no decision while an update runs.
//!
//! The seed's bash loop (+1 above 20% CPU, -1 below 10%, every 2 s) is [`naive`], kept to
//! compare against: see [`sim`].

pub mod sim;
pub mod state;

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;

use crate::manifest::model::{Autoscale, Metric};

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub metric: Metric,
    pub target: f64,
    pub min: u64,
    pub max: u64,
    pub max_step: Option<u64>,
    pub tolerance: f64,
    pub scale_down_window: Duration,
}

impl From<&Autoscale> for Policy {
    fn from(a: &Autoscale) -> Self {
        Policy {
            metric: a.metric,
            target: a.target,
            min: a.min,
            max: a.max,
            max_step: a.max_step,
            tolerance: a.tolerance.unwrap_or(0.1),
            scale_down_window: a
                .scale_down_window
                .map_or(Duration::from_secs(300), |d| d.0),
        }
    }
}

/// One decision and everything it was made from (what `autoscale` logs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// Seconds on the autoscaler's clock: since `twip autoscale` started, or (the agent's
    /// controller, whose window outlives it) since the Unix epoch.
    pub at_s: f64,
    pub current: u64,
    /// The metric per task (CPU percent, or requests per second).
    pub metric: f64,
    pub target: f64,
    /// `ceil(current × metric / target)` clamped to min..max (or `current` within tolerance).
    pub recommended: u64,
    /// What to set: after stabilization and the step limit.
    pub desired: u64,
    pub reason: String,
}

impl Decision {
    pub fn changes(&self) -> bool {
        self.desired != self.current
    }
}

#[derive(Debug, Clone)]
pub struct Autoscaler {
    pub policy: Policy,
    /// Recommendations of the stabilization window: (time, count).
    window: VecDeque<(Duration, u64)>,
}

impl Autoscaler {
    pub fn new(policy: Policy) -> Self {
        Autoscaler {
            policy,
            window: VecDeque::new(),
        }
    }

    /// An autoscaler that goes on from an earlier one's window (kept across a restart: see
    /// [`state`]), its recommendations as (time, count), oldest first.
    pub fn restore(policy: Policy, window: impl IntoIterator<Item = (Duration, u64)>) -> Self {
        Autoscaler {
            policy,
            window: window.into_iter().collect(),
        }
    }

    /// The recommendations of the stabilization window: (time, count), oldest first.
    pub fn window(&self) -> impl Iterator<Item = (Duration, u64)> + '_ {
        self.window.iter().copied()
    }

    /// One evaluation at time `at` (monotonic, since start).
    pub fn decide(&mut self, at: Duration, current: u64, metric: f64, updating: bool) -> Decision {
        let p = &self.policy;
        let mut d = Decision {
            at_s: at.as_secs_f64(),
            current,
            metric,
            target: p.target,
            recommended: current,
            desired: current,
            reason: String::new(),
        };
        if updating {
            d.reason = "an update is running: no scaling until it ends".into();
            return d;
        }
        if current == 0 || !metric.is_finite() {
            d.desired = current.clamp(p.min, p.max);
            d.reason = "no tasks or no metric: only min/max apply".into();
            return d;
        }
        let ratio = metric / p.target;
        let raw = if (ratio - 1.0).abs() <= p.tolerance {
            current
        } else {
            (current as f64 * ratio).ceil() as u64
        };
        let recommended = raw.clamp(p.min, p.max);
        d.recommended = recommended;
        // The window keeps every recommendation younger than its length.
        self.window.push_back((at, recommended));
        while let Some((t, _)) = self.window.front() {
            if at.saturating_sub(*t) > p.scale_down_window {
                self.window.pop_front();
            } else {
                break;
            }
        }
        let highest = self
            .window
            .iter()
            .map(|(_, r)| *r)
            .max()
            .unwrap_or(recommended);
        // A scale-down goes to the highest recommendation of the window, and only when that
        // level is more than a passing reading: the latest one, or two evaluations in a row.
        // An evaluation that straddles a change of load (half the interval loaded) is such a
        // passing reading: it delays the scale-down instead of making it a staircase.
        let settled = highest == recommended
            || self
                .window
                .iter()
                .zip(self.window.iter().skip(1))
                .any(|(a, b)| a.1 == highest && b.1 == highest);
        let mut desired = if recommended >= current {
            recommended
        } else if highest < current && !settled {
            current
        } else {
            highest.min(current)
        };
        if let Some(step) = p.max_step {
            desired = if desired > current {
                desired.min(current + step)
            } else {
                desired.max(current.saturating_sub(step))
            };
        }
        d.desired = desired.clamp(p.min, p.max);
        d.reason = if (ratio - 1.0).abs() <= p.tolerance {
            format!("metric within {:.0}% of the target", p.tolerance * 100.0)
        } else if d.desired > current {
            format!(
                "scale up: {metric:.1} per task against a target of {}",
                p.target
            )
        } else if d.desired < current {
            format!(
                "scale down: {metric:.1} per task against a target of {}",
                p.target
            )
        } else if recommended < current && highest < current && !settled {
            format!(
                "would scale down, held until a passing recommendation of {highest} leaves the {}s window",
                p.scale_down_window.as_secs()
            )
        } else if recommended < current {
            format!(
                "would scale down to {recommended}, held by the {}s stabilization window",
                p.scale_down_window.as_secs()
            )
        } else if raw == current {
            "already at the recommended count".into()
        } else {
            format!("at a bound ({}..{})", p.min, p.max)
        };
        d
    }
}

/// The seed's loop: +1 replica when the average CPU is above `up`%, -1 when below `down`%.
pub fn naive(current: u64, cpu: f64, up: f64, down: f64, min: u64, max: u64) -> u64 {
    if cpu > up {
        (current + 1).min(max)
    } else if cpu < down {
        current.saturating_sub(1).max(min)
    } else {
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            metric: Metric::Cpu,
            target: 60.0,
            min: 1,
            max: 10,
            max_step: None,
            tolerance: 0.1,
            scale_down_window: Duration::from_secs(300),
        }
    }

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn desired_is_ceil_of_current_times_metric_over_target() {
        let mut a = Autoscaler::new(policy());
        let d = a.decide(s(0), 2, 150.0, false);
        assert_eq!(d.recommended, 5); // ceil(2 * 150 / 60)
        assert_eq!(d.desired, 5);
        assert!(d.reason.starts_with("scale up"), "{}", d.reason);
    }

    #[test]
    fn nothing_changes_within_the_tolerance_band() {
        let mut a = Autoscaler::new(policy());
        assert_eq!(a.decide(s(0), 4, 65.0, false).desired, 4); // 8% above
        assert_eq!(a.decide(s(1), 4, 55.0, false).desired, 4); // 8% below
        assert_eq!(a.decide(s(2), 4, 70.0, false).desired, 5); // 17% above
    }

    #[test]
    fn scale_down_waits_for_the_window() {
        let mut a = Autoscaler::new(policy());
        assert_eq!(a.decide(s(0), 4, 60.0, false).desired, 4);
        // Load drops: the recommendation is 1, but 4 was recommended within the window.
        let d = a.decide(s(10), 4, 10.0, false);
        assert_eq!((d.recommended, d.desired), (1, 4));
        assert!(d.reason.contains("stabilization"), "{}", d.reason);
        assert_eq!(a.decide(s(200), 4, 10.0, false).desired, 4);
        // Once the 4 is older than the window, the highest left wins: 1.
        assert_eq!(a.decide(s(311), 4, 10.0, false).desired, 1);
    }

    #[test]
    fn a_passing_reading_delays_the_scale_down_instead_of_making_a_staircase() {
        let mut a = Autoscaler::new(policy());
        for t in [0, 15, 30] {
            assert_eq!(a.decide(s(t), 4, 60.0, false).desired, 4);
        }
        // The evaluation that saw half the interval loaded recommends 3, then the load is gone.
        assert_eq!(a.decide(s(45), 4, 40.0, false).recommended, 3);
        for t in (60..=330).step_by(15) {
            let d = a.decide(s(t), 4, 0.0, false);
            assert_eq!(d.desired, 4, "at {t}: {}", d.reason);
        }
        // 345 s: the 3 is still in the window but seen once only: held, with the reason said.
        let d = a.decide(s(345), 4, 0.0, false);
        assert_eq!(d.desired, 4);
        assert!(
            d.reason.contains("passing recommendation of 3"),
            "{}",
            d.reason
        );
        // Once it has left the window: one scale-down, to 1.
        assert_eq!(a.decide(s(360), 4, 0.0, false).desired, 1);
    }

    #[test]
    fn a_declining_load_steps_down_through_levels_it_held() {
        let mut a = Autoscaler::new(policy());
        assert_eq!(a.decide(s(0), 6, 60.0, false).desired, 6);
        // 5 twice in a row, then lower: after the window, the settled 5 is the next level.
        a.decide(s(15), 6, 50.0, false);
        a.decide(s(30), 6, 50.0, false);
        a.decide(s(45), 6, 30.0, false);
        assert_eq!(a.decide(s(299), 6, 30.0, false).desired, 6);
        assert_eq!(a.decide(s(301), 6, 30.0, false).desired, 5);
    }

    #[test]
    fn steps_and_bounds_limit_each_decision() {
        let mut p = policy();
        p.max_step = Some(2);
        p.max = 6;
        let mut a = Autoscaler::new(p);
        assert_eq!(a.decide(s(0), 1, 600.0, false).desired, 3); // wants 10, step 2
        assert_eq!(a.decide(s(1), 3, 600.0, false).desired, 5);
        assert_eq!(a.decide(s(2), 5, 600.0, false).desired, 6); // max 6
        assert_eq!(a.decide(s(3), 6, 600.0, false).desired, 6);
    }

    #[test]
    fn no_scaling_during_an_update() {
        let mut a = Autoscaler::new(policy());
        let d = a.decide(s(0), 2, 300.0, true);
        assert_eq!(d.desired, 2);
        assert!(d.reason.contains("update"));
    }

    #[test]
    fn the_naive_loop_moves_one_at_a_time() {
        assert_eq!(naive(3, 25.0, 20.0, 10.0, 1, 10), 4);
        assert_eq!(naive(3, 5.0, 20.0, 10.0, 1, 10), 2);
        assert_eq!(naive(3, 15.0, 20.0, 10.0, 1, 10), 3);
        assert_eq!(naive(1, 5.0, 20.0, 10.0, 1, 10), 1);
    }
}
