//! What the autoscaler must remember from one evaluation to the next, as labels of the scaled
//! service, so that a controller that restarts (the in-cluster agent rescheduled on another
//! node) goes on where the last one stopped: the stabilization window (every recommendation
//! with its time) and, for `rps`, the last reading of HAProxy's request counters. Pure: the
//! labels in, the labels out; times are wall-clock milliseconds since the Unix epoch (a
//! monotonic clock does not survive a restart).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Autoscaler, Decision, Policy};

/// The stabilization window: `[[ms, count], ...]`, oldest first (JSON).
pub const LABEL_WINDOW: &str = "io.twip.autoscale.window";
/// The last reading of HAProxy's `req_tot` counters: `{"at": ms, "totals": {page: n}}` (JSON).
pub const LABEL_REQUESTS: &str = "io.twip.autoscale.requests";
/// The last decision, one line (what `twip status` can show).
pub const LABEL_DECISION: &str = "io.twip.autoscale.decision";
/// The prefix of every label above: twip's own books, not drift, kept by `up`.
pub const LABEL_PREFIX: &str = "io.twip.autoscale.";

/// One reading of the request counters: when, and `req_tot` per stats page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requests {
    pub at: u64,
    pub totals: BTreeMap<String, u64>,
}

/// A scaled service's remembered state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    /// (ms since the epoch, recommended count), oldest first.
    pub window: Vec<(u64, u64)>,
    pub requests: Option<Requests>,
    pub decision: Option<String>,
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

impl State {
    /// The state kept in LABELS (a service's). A label that does not parse counts as absent:
    /// the window starts again empty, which delays nothing but a scale-down.
    pub fn from_labels(labels: &HashMap<String, String>) -> State {
        State {
            window: labels
                .get(LABEL_WINDOW)
                .and_then(|v| serde_json::from_str(v).ok())
                .unwrap_or_default(),
            requests: labels
                .get(LABEL_REQUESTS)
                .and_then(|v| serde_json::from_str(v).ok()),
            decision: labels.get(LABEL_DECISION).cloned(),
        }
    }

    /// The labels that keep this state (every one of [`LABEL_WINDOW`], [`LABEL_REQUESTS`] and
    /// [`LABEL_DECISION`] the state has).
    pub fn to_labels(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        out.insert(
            LABEL_WINDOW.to_string(),
            serde_json::to_string(&self.window).unwrap_or_default(),
        );
        if let Some(r) = &self.requests {
            out.insert(
                LABEL_REQUESTS.to_string(),
                serde_json::to_string(r).unwrap_or_default(),
            );
        }
        if let Some(d) = &self.decision {
            out.insert(LABEL_DECISION.to_string(), d.clone());
        }
        out
    }

    /// An autoscaler for POLICY that goes on from this state's window.
    pub fn scaler(&self, policy: Policy) -> Autoscaler {
        Autoscaler::restore(
            policy,
            self.window
                .iter()
                .map(|(t, n)| (Duration::from_millis(*t), *n)),
        )
    }

    /// Keeps SCALER's window (after a decision).
    pub fn keep(&mut self, scaler: &Autoscaler) {
        self.window = scaler.window().map(|(t, n)| (ms(t), n)).collect();
    }

    /// Requests per second per running task, from the growth of TOTALS (read at NOW) since the
    /// kept reading, which TOTALS then replaces. NaN without an earlier reading, without
    /// running tasks, or when no time passed. A page seen for the first time adds nothing
    /// until its next reading; a counter that went back (a restarted proxy) counts from zero.
    pub fn rate(&mut self, now: Duration, totals: BTreeMap<String, u64>, running: u64) -> f64 {
        let now = ms(now);
        let before = self.requests.replace(Requests { at: now, totals });
        let (Some(before), Some(after)) = (before, &self.requests) else {
            return f64::NAN;
        };
        let dt = now.saturating_sub(before.at) as f64 / 1000.0;
        let grown: u64 = after
            .totals
            .iter()
            .filter_map(|(page, total)| {
                let b = *before.totals.get(page)?;
                Some(if *total >= b { total - b } else { *total })
            })
            .sum();
        if dt > 0.0 && running > 0 {
            grown as f64 / dt / running as f64
        } else {
            f64::NAN
        }
    }
}

/// One decision as one line: what the controller logs and keeps in [`LABEL_DECISION`].
pub fn line(service: &str, p: &Policy, d: &Decision) -> String {
    let unit = if p.metric == crate::manifest::model::Metric::Cpu {
        "% cpu"
    } else {
        " req/s"
    };
    let act = if d.changes() {
        format!("scale {} → {}", d.current, d.desired)
    } else {
        format!("keep {}", d.current)
    };
    format!(
        "{service}: {act} (metric {:.1}{unit} per task, target {}, recommended {}; {})",
        d.metric, d.target, d.recommended, d.reason
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::model::Metric;

    fn policy() -> Policy {
        Policy {
            metric: Metric::Rps,
            target: 40.0,
            min: 1,
            max: 10,
            max_step: None,
            tolerance: 0.1,
            scale_down_window: Duration::from_secs(20),
        }
    }

    fn s(secs: u64) -> Duration {
        Duration::from_secs(1_800_000_000 + secs)
    }

    #[test]
    fn the_state_survives_its_labels() {
        let mut st = State::default();
        let mut a = st.scaler(policy());
        a.decide(s(0), 1, 160.0, false);
        a.decide(s(3), 4, 40.0, false);
        st.keep(&a);
        st.rate(
            s(3),
            BTreeMap::from([("http://10.0.1.5:1936/;csv".into(), 77)]),
            4,
        );
        st.decision = Some("web: keep 4".into());
        let labels: HashMap<String, String> = st.to_labels().into_iter().collect();
        assert_eq!(
            labels[LABEL_WINDOW],
            "[[1800000000000,4],[1800000003000,4]]"
        );
        let back = State::from_labels(&labels);
        assert_eq!(back, st);
        // Labels of other owners and a broken window are not state.
        let mut other = labels.clone();
        other.insert(LABEL_WINDOW.into(), "not json".into());
        other.insert("team".into(), "web".into());
        assert!(State::from_labels(&other).window.is_empty());
        assert_eq!(State::from_labels(&HashMap::new()), State::default());
    }

    /// A controller that restarts between two evaluations decides what one that kept running
    /// decides: the scale-down still waits for the window.
    #[test]
    fn a_restored_window_holds_the_scale_down_like_the_one_that_kept_running() {
        let mut running = Autoscaler::new(policy());
        let mut st = State::default();
        for (t, current, metric) in [(0, 1, 160.0), (3, 4, 40.0), (6, 4, 0.0), (15, 4, 0.0)] {
            let kept = running.decide(s(t), current, metric, false);
            // A new controller every evaluation: only the labels go from one to the next.
            let labels: HashMap<String, String> = st.to_labels().into_iter().collect();
            let mut st2 = State::from_labels(&labels);
            let mut fresh = st2.scaler(policy());
            let restored = fresh.decide(s(t), current, metric, false);
            st2.keep(&fresh);
            st = st2;
            assert_eq!(restored, kept, "at {t}");
        }
        // Within the window: held at 4 by both.
        assert_eq!(st.scaler(policy()).decide(s(18), 4, 0.0, false).desired, 4);
        // A controller without the kept window would have scaled down at once.
        assert_eq!(
            Autoscaler::new(policy())
                .decide(s(18), 4, 0.0, false)
                .desired,
            1
        );
        // After it: one scale-down, to 1.
        assert_eq!(st.scaler(policy()).decide(s(27), 4, 0.0, false).desired, 1);
    }

    #[test]
    fn the_rate_is_the_growth_of_the_counters_since_the_kept_reading() {
        let mut st = State::default();
        let page = |a: u64, b: u64| BTreeMap::from([("a".to_string(), a), ("b".to_string(), b)]);
        assert!(st.rate(s(0), page(100, 50), 2).is_nan());
        // 300 more requests over 3 s, 2 tasks: 50 per task per second.
        assert_eq!(st.rate(s(3), page(250, 200), 2), 50.0);
        // A proxy restarted (its counter went back): counted from zero.
        assert_eq!(st.rate(s(6), page(10, 260), 1), (10.0 + 60.0) / 3.0);
        // A page seen for the first time adds nothing yet.
        let mut three = page(10, 260);
        three.insert("c".into(), 1000);
        assert_eq!(st.rate(s(9), three, 1), 0.0);
        assert!(st.rate(s(9), page(10, 260), 1).is_nan(), "no time passed");
        assert!(st.rate(s(12), page(10, 260), 0).is_nan(), "no task runs");
    }
}
