//! Numbers in range: counts, durations, sizes, ratios and ports.

use super::Checker;
use crate::manifest::model::*;

/// Largest count anywhere (replicas, retries, parallelism, ...): beyond it a value is a typo,
/// and every count must fit the engine's signed 64-bit fields.
pub const MAX_COUNT: u64 = 100_000;
/// Longest duration: HAProxy takes at most 2^31-1 ms (about 24 days).
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_millis((1 << 31) - 1);
/// Largest memory amount (64 TiB).
pub const MAX_MEMORY: u64 = 64 << 40;

pub(super) fn check_numbers(m: &Manifest, c: &mut Checker) {
    service_numbers(m, c);
    proxy_numbers(m, c);
    monitoring_numbers(m, c);
}

/// A count, when given, between `min` and `max`.
fn count(c: &mut Checker, path: &[&str], v: Option<u64>, min: u64, max: u64) {
    if let Some(v) = v {
        if v < min || v > max {
            c.err(path, format!("{v} is out of range: use {min} to {max}"));
        }
    }
}

/// A duration, when given, between `min_ms` and [`MAX_DURATION`], in whole milliseconds.
fn dur(c: &mut Checker, path: &[&str], d: Option<&Duration>, min_ms: u64) {
    if let Some(d) = d {
        let min = std::time::Duration::from_millis(min_ms);
        if d.0 < min || d.0 > MAX_DURATION {
            c.err(
                path,
                format!(
                    "`{}` is out of range: use {} to 24 days (whole milliseconds)",
                    humantime::format_duration(d.0),
                    if min_ms == 0 {
                        "0s".to_string()
                    } else {
                        format!("{min_ms}ms")
                    }
                ),
            );
        } else if d.0.subsec_nanos() % 1_000_000 != 0 {
            c.err(
                path,
                format!("`{:?}` has a part below a millisecond, which would be lost; use whole milliseconds", d.0),
            );
        }
    }
}

/// Replicas, healthcheck timings, update and restart settings, resources and autoscaling of
/// each service.
fn service_numbers(m: &Manifest, c: &mut Checker) {
    for (name, s) in &m.services {
        let n = name.as_str();
        count(c, &["services", n, "replicas"], s.replicas, 0, MAX_COUNT);
        if let Some(h) = &s.healthcheck {
            let p = |k: &'static str| ["services", n, "healthcheck", k];
            dur(c, &p("interval"), h.interval.as_ref(), 1);
            dur(c, &p("timeout"), h.timeout.as_ref(), 1);
            dur(c, &p("start_period"), h.start_period.as_ref(), 0);
            count(c, &p("retries"), h.retries, 0, 1000);
        }
        if let Some(pl) = &s.placement {
            count(
                c,
                &["services", n, "placement", "max_replicas_per_node"],
                pl.max_replicas_per_node,
                1,
                MAX_COUNT,
            );
        }
        for (key, u) in [("update", &s.update), ("rollback", &s.rollback)] {
            if let Some(u) = u {
                count(
                    c,
                    &["services", n, key, "parallelism"],
                    u.parallelism,
                    0,
                    MAX_COUNT,
                );
                dur(c, &["services", n, key, "delay"], u.delay.as_ref(), 0);
                dur(c, &["services", n, key, "monitor"], u.monitor.as_ref(), 0);
            }
        }
        if let Some(r) = &s.restart {
            count(
                c,
                &["services", n, "restart", "max_attempts"],
                r.max_attempts,
                0,
                MAX_COUNT,
            );
            dur(c, &["services", n, "restart", "delay"], r.delay.as_ref(), 0);
            dur(
                c,
                &["services", n, "restart", "window"],
                r.window.as_ref(),
                0,
            );
        }
        dur(
            c,
            &["services", n, "stop_grace_period"],
            s.stop_grace_period.as_ref(),
            0,
        );
        if let Some(res) = &s.resources {
            for (k, spec) in [("limits", &res.limits), ("reservations", &res.reservations)] {
                if let Some(mem) = spec.as_ref().and_then(|x| x.memory) {
                    if mem.0 > MAX_MEMORY {
                        c.err(
                            &["services", n, "resources", k, "memory"],
                            format!(
                                "{} bytes is more than the largest amount twip takes (64T)",
                                mem.0
                            ),
                        );
                    }
                }
            }
        }
        if let Some(a) = &s.autoscale {
            count(
                c,
                &["services", n, "autoscale", "max"],
                Some(a.max),
                1,
                MAX_COUNT,
            );
            count(
                c,
                &["services", n, "autoscale", "max_step"],
                a.max_step,
                1,
                MAX_COUNT,
            );
            if !a.target.is_finite() || a.target > 1e9 {
                c.err(
                    &["services", n, "autoscale", "target"],
                    "the target is out of range: use more than 0, up to 1e9",
                );
            }
            dur(
                c,
                &["services", n, "autoscale", "scale_down_window"],
                a.scale_down_window.as_ref(),
                0,
            );
        }
    }
}

/// The proxy's replicas, placement, ports, timeouts and health settings.
fn proxy_numbers(m: &Manifest, c: &mut Checker) {
    if let Some(p) = &m.proxy {
        count(c, &["proxy", "replicas"], p.replicas, 0, MAX_COUNT);
        if let Some(pl) = &p.placement {
            count(
                c,
                &["proxy", "placement", "max_replicas_per_node"],
                pl.max_replicas_per_node,
                1,
                MAX_COUNT,
            );
        }
        if let Some(t) = &p.timeouts {
            dur(c, &["proxy", "timeouts", "connect"], t.connect.as_ref(), 1);
            dur(c, &["proxy", "timeouts", "client"], t.client.as_ref(), 1);
            dur(c, &["proxy", "timeouts", "server"], t.server.as_ref(), 1);
        }
        if let Some(h) = &p.health {
            dur(c, &["proxy", "health", "interval"], h.interval.as_ref(), 1);
            count(c, &["proxy", "health", "fall"], h.fall, 1, 1000);
            count(c, &["proxy", "health", "rise"], h.rise, 1, 1000);
        }
        if let Some(st) = &p.stats {
            dur(c, &["proxy", "stats", "refresh"], st.refresh.as_ref(), 1000);
        }
        for (i, r) in p.routes.iter().enumerate() {
            if r.port == Some(0) {
                let idx = i.to_string();
                c.err(
                    &["proxy", "routes", &idx, "port"],
                    "0 is not a port: use 1 to 65535",
                );
            }
        }
        if p.port == Some(0) {
            c.err(&["proxy", "port"], "0 is not a port: use 1 to 65535");
        }
    }
}

/// Prometheus's port, scrape interval and targets' ports.
fn monitoring_numbers(m: &Manifest, c: &mut Checker) {
    if let Some(mon) = &m.monitoring {
        dur(
            c,
            &["monitoring", "scrape_interval"],
            mon.scrape_interval.as_ref(),
            1000,
        );
        if mon.port == Some(0) {
            c.err(&["monitoring", "port"], "0 is not a port: use 1 to 65535");
        }
        for (i, t) in mon.targets.iter().enumerate() {
            if t.port == 0 {
                let idx = i.to_string();
                c.err(
                    &["monitoring", "targets", &idx, "port"],
                    "0 is not a port: use 1 to 65535",
                );
            }
        }
    }
}
