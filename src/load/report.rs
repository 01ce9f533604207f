//! The report for people (like hey's) and the `--json` object. Pure: strings in, strings out.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::stats::{Bar, Failure, Latency, Summary};

/// How the run was set up, for the report's header and the JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    pub url: String,
    pub method: String,
    pub connections: usize,
    pub threads: usize,
    pub keepalive: bool,
    pub requests: Option<u64>,
    pub duration: Option<Duration>,
    pub rate: Option<f64>,
    pub timeout: Option<Duration>,
    /// `--max-header-size`, in bytes.
    pub max_head: usize,
    /// `--retry-idempotent`.
    pub retry_idempotent: bool,
    /// `--busy-poll`.
    pub busy_poll: bool,
    /// `--nap` as it applied to this run (zero when it did not).
    pub nap: Duration,
    /// The load threads' scheduling policy: as asked before the run, as they ran after it.
    pub sched: super::Sched,
    /// Stopped by Ctrl-C.
    pub interrupted: bool,
}

/// A phrase for an error kind, with the run's figures where they say more.
pub fn describe(kind: Failure, info: &RunInfo) -> String {
    match kind {
        Failure::HeadTooLarge => format!(
            "response head larger than {} bytes (--max-header-size)",
            info.max_head
        ),
        k => k.describe().to_string(),
    }
}

/// The unit latencies are shown in, chosen once per report so columns compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Micros,
    Millis,
    Secs,
}

impl Unit {
    pub fn for_max(max: Duration) -> Unit {
        if max < Duration::from_millis(1) {
            Unit::Micros
        } else if max < Duration::from_secs(10) {
            Unit::Millis
        } else {
            Unit::Secs
        }
    }

    pub fn fmt(self, d: Duration) -> String {
        let s = d.as_secs_f64();
        match self {
            Unit::Micros => format!("{:.1} µs", s * 1e6),
            Unit::Millis => format!("{:.3} ms", s * 1e3),
            Unit::Secs => format!("{:.3} s", s),
        }
    }

    pub fn suffix(self) -> &'static str {
        match self {
            Unit::Micros => "µs",
            Unit::Millis => "ms",
            Unit::Secs => "s",
        }
    }

    pub fn scale(self) -> f64 {
        match self {
            Unit::Micros => 1e6,
            Unit::Millis => 1e3,
            Unit::Secs => 1.0,
        }
    }
}

/// `1234567` → `1.2 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// The width of the longest bar in the terminal histogram.
const BAR_WIDTH: u64 = 40;

/// The report printed on stdout without `--json`.
pub fn text(s: &Summary, bars: &[Bar], info: &RunInfo) -> String {
    let mut o = String::new();
    let w = &mut o;
    let _ = writeln!(w, "Summary:");
    let _ = writeln!(
        w,
        "  Target:\t{} {}  ({} connection{}, {}, {} thread{}{}{})",
        info.method,
        info.url,
        info.connections,
        if info.connections == 1 { "" } else { "s" },
        if info.keepalive {
            "keep-alive"
        } else {
            "no keep-alive"
        },
        info.threads,
        if info.threads == 1 { "" } else { "s" },
        if info.busy_poll {
            " busy-polling".to_string()
        } else if !info.nap.is_zero() {
            format!(" napping {}µs", info.nap.as_micros())
        } else {
            String::new()
        },
        info.rate
            .map(|r| format!(", {r} req/s scheduled"))
            .unwrap_or_default()
    );
    if info.interrupted {
        let _ = writeln!(w, "  Stopped:\tby Ctrl-C; the figures cover what ran");
    }
    let _ = writeln!(w, "  Total time:\t{:.4} s", s.duration.as_secs_f64());
    let cut = if s.cut > 0 {
        format!(
            "; {} in flight cut at the {} (not errors)",
            s.cut,
            if info.interrupted { "stop" } else { "deadline" }
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        w,
        "  Requests:\t{} ({} responses, {} errors{cut})",
        s.requests, s.responses, s.errors
    );
    let _ = writeln!(w, "  Requests/sec:\t{:.1} (responses per second)", s.rps);
    let _ = writeln!(
        w,
        "  Failed:\t{} ({:.2}%: {} errors, {} HTTP 4xx/5xx)",
        s.failed,
        s.error_rate * 100.0,
        s.errors,
        s.http_failures
    );
    let _ = writeln!(
        w,
        "  Received:\t{} ({} of bodies)",
        human_bytes(s.bytes_received),
        human_bytes(s.body_bytes)
    );
    let _ = writeln!(
        w,
        "  Sent:\t\t{} request{} ({})",
        s.sent,
        if s.sent == 1 { "" } else { "s" },
        human_bytes(s.bytes_sent)
    );
    if let Some(sc) = &s.schedule {
        let _ = writeln!(
            w,
            "  Schedule:\t{} due, {} sent, {} not sent ({} all connections busy, {} connection failed, {} run ended first)",
            sc.due,
            s.sent,
            sc.not_sent(),
            sc.connections_busy,
            sc.connect_failed,
            sc.run_ended
        );
    }
    if info.retry_idempotent {
        let _ = writeln!(
            w,
            "  Retries:\t{} (sent again after a reused connection dropped them)",
            s.retries
        );
    }
    let _ = writeln!(w, "  Connections:\t{} opened", s.connects);

    if let Some(l) = &s.latency {
        latency(w, l, bars);
    }

    if !s.status_codes.is_empty() {
        let _ = writeln!(w);
        let _ = writeln!(w, "Status code distribution:");
        for (code, n) in &s.status_codes {
            let _ = writeln!(
                w,
                "  [{code}] {n} response{} ({:.2}%)",
                if *n == 1 { "" } else { "s" },
                percent(*n, s.responses)
            );
        }
    }

    if !s.error_kinds.is_empty() {
        errors(w, s, info);
    }
    expand_tabs(&o)
}

/// The report's latency figures: slowest to stdev, the histogram and the percentiles.
fn latency(w: &mut String, l: &Latency, bars: &[Bar]) {
    let unit = Unit::for_max(l.max);
    let _ = writeln!(w);
    let _ = writeln!(w, "  Slowest:\t{}", unit.fmt(l.max));
    let _ = writeln!(w, "  Fastest:\t{}", unit.fmt(l.min));
    let _ = writeln!(w, "  Average:\t{}", unit.fmt(l.mean));
    let _ = writeln!(w, "  Stdev:\t{}", unit.fmt(l.stdev));

    let _ = writeln!(w);
    let _ = writeln!(w, "Latency histogram:");
    let labels: Vec<String> = bars.iter().map(|b| unit.fmt(b.to)).collect();
    let counts: Vec<String> = bars.iter().map(|b| format!("[{}]", b.count)).collect();
    let lw = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let cw = counts.iter().map(String::len).max().unwrap_or(0);
    let top = bars.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    for (i, b) in bars.iter().enumerate() {
        let len = if b.count == 0 {
            0
        } else {
            (b.count * BAR_WIDTH).div_ceil(top)
        };
        let tail = if b.tail { "  (above p99.9)" } else { "" };
        let _ = writeln!(
            w,
            "  {:>lw$} {:<cw$} |{}{tail}",
            labels[i],
            counts[i],
            "■".repeat(len as usize),
        );
    }

    let _ = writeln!(w);
    let _ = writeln!(w, "Latency distribution:");
    for (p, _, d) in &l.percentiles {
        let _ = writeln!(w, "  {:>5}% in {}", format_pct(*p), unit.fmt(*d));
    }
}

/// The report's errors by kind, most frequent first.
fn errors(w: &mut String, s: &Summary, info: &RunInfo) {
    let _ = writeln!(w);
    let _ = writeln!(w, "Errors:");
    let kw = s
        .error_kinds
        .iter()
        .map(|(k, _)| k.as_str().len())
        .max()
        .unwrap_or(0)
        + 2;
    for (k, n) in &s.error_kinds {
        let _ = writeln!(
            w,
            "  {:<kw$} {n} ({})",
            format!("[{}]", k.as_str()),
            describe(*k, info)
        );
    }
}

fn format_pct(p: f64) -> String {
    if p.fract() == 0.0 {
        format!("{p:.0}")
    } else {
        format!("{p}")
    }
}

/// Aligns `label:\tvalue` lines on a column.
fn expand_tabs(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 256);
    for line in s.lines() {
        if let Some((a, b)) = line.split_once('\t') {
            let b = b.trim_start_matches('\t');
            let _ = writeln!(out, "{a:<16}{b}");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The `--json` object (documented in docs/bench.md).
pub fn json(s: &Summary, bars: &[Bar], info: &RunInfo) -> Value {
    let latency = match &s.latency {
        Some(l) => {
            let mut m = Map::new();
            m.insert("min".into(), json!(secs(l.min)));
            m.insert("mean".into(), json!(secs(l.mean)));
            m.insert("stdev".into(), json!(secs(l.stdev)));
            m.insert("max".into(), json!(secs(l.max)));
            for (_, key, d) in &l.percentiles {
                m.insert((*key).into(), json!(secs(*d)));
            }
            Value::Object(m)
        }
        None => Value::Null,
    };
    let status: Map<String, Value> = s
        .status_codes
        .iter()
        .map(|(c, n)| (c.to_string(), json!(n)))
        .collect();
    let errors: Map<String, Value> = s
        .error_kinds
        .iter()
        .map(|(k, n)| (k.as_str().to_string(), json!(n)))
        .collect();
    let histogram: Vec<Value> = bars
        .iter()
        .map(|b| json!({"from_s": secs(b.from), "to_s": secs(b.to), "count": b.count, "tail": b.tail}))
        .collect();
    json!({
        "target": info.url,
        "method": info.method,
        "connections": info.connections,
        "threads": info.threads,
        "keepalive": info.keepalive,
        "rate": info.rate,
        "timeout_s": info.timeout.map(secs),
        "interrupted": info.interrupted,
        "duration_s": secs(s.duration),
        "requests": s.requests,
        "responses": s.responses,
        "rps": s.rps,
        "failed": s.failed,
        "error_rate": s.error_rate,
        "http_failures": s.http_failures,
        "cut": s.cut,
        "latency_s": latency,
        "status_codes": status,
        "errors": errors,
        "histogram": histogram,
        "bytes": {
            "received": s.bytes_received,
            "body": s.body_bytes,
            "sent": s.bytes_sent,
        },
        "connections_opened": s.connects,
        "sent": s.sent,
        "retries": s.retries,
        "retry_idempotent": info.retry_idempotent,
        "busy_poll": info.busy_poll,
        "nap_us": info.nap.as_micros() as u64,
        "naps": s.naps,
        "sched": info.sched.as_str(),
        "max_header_size": info.max_head,
        "due": s.schedule.map(|sc| sc.due),
        "not_sent": s.schedule.map(|sc| json!({
            "total": sc.not_sent(),
            "connections_busy": sc.connections_busy,
            "connect_failed": sc.connect_failed,
            "run_ended": sc.run_ended,
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::stats::{bars, summarize, Failure, Stats};

    const MS: u64 = 1_000_000;

    fn info() -> RunInfo {
        RunInfo {
            url: "http://127.0.0.1:8080/".into(),
            method: "GET".into(),
            connections: 50,
            threads: 1,
            keepalive: true,
            requests: None,
            duration: Some(Duration::from_secs(10)),
            rate: None,
            timeout: Some(Duration::from_secs(20)),
            max_head: 65536,
            retry_idempotent: false,
            busy_poll: false,
            nap: Duration::ZERO,
            sched: crate::load::Sched::Batch,
            interrupted: false,
        }
    }

    fn sample() -> Stats {
        let mut s = Stats::new();
        for i in 0..1989u64 {
            s.record_response(i * MS, (1 + i % 10) * MS, 200);
        }
        for _ in 0..10 {
            s.record_response(0, 12 * MS, 503);
        }
        s.record_response(0, 250 * MS, 200);
        s.record_error(0, Failure::Reset);
        s.record_error(0, Failure::Reset);
        s.record_error(0, Failure::Timeout);
        s.bytes_received = 3 * 1024 * 1024;
        s.body_bytes = 1024;
        s
    }

    #[test]
    fn the_text_report_has_every_section() {
        let st = sample();
        let sum = summarize(&st, Duration::from_secs(2), 7);
        let b = bars(&st.latency, 10);
        let t = text(&sum, &b, &info());
        for needle in [
            "Summary:",
            "  Total time:   2.0000 s\n",
            "  Requests:     2003 (2000 responses, 3 errors; 7 in flight cut at the deadline (not errors))\n",
            "  Requests/sec: 1000.0 (responses per second)\n",
            "  Failed:       13 (0.65%: 3 errors, 10 HTTP 4xx/5xx)\n",
            "  Received:     3.0 MiB (1.0 KiB of bodies)\n",
            "  Slowest:      250.",
            "  Fastest:      1.0",
            "Latency histogram:",
            "(above p99.9)",
            "Latency distribution:",
            "     10% in 2.0",
            "   99.9% in 12.0",
            "[200] 1990 responses (99.50%)",
            "[503] 10 responses (0.50%)",
            "Errors:",
            "[reset]   2 (connection reset by the server)",
            "[timeout] 1 (timed out)",
        ] {
            assert!(t.contains(needle), "missing {needle:?} in:\n{t}");
        }
        let hist_lines = t
            .lines()
            .skip_while(|l| !l.starts_with("Latency histogram"))
            .skip(1)
            .take_while(|l| !l.is_empty())
            .count();
        assert_eq!(hist_lines, b.len());
        assert!(t.contains(&"■".repeat(BAR_WIDTH as usize)));
    }

    #[test]
    fn no_latency_section_without_responses() {
        let mut st = Stats::new();
        st.record_error(0, Failure::Refused);
        let sum = summarize(&st, Duration::from_secs(1), 0);
        let t = text(&sum, &[], &info());
        assert!(!t.contains("Latency"));
        assert!(t.contains("[refused] 1 (connection refused)"));
    }

    #[test]
    fn the_json_object() {
        let st = sample();
        let sum = summarize(&st, Duration::from_secs(2), 7);
        let b = bars(&st.latency, 10);
        let v = json(&sum, &b, &info());
        assert_eq!(v["requests"], 2003);
        assert_eq!(v["responses"], 2000);
        assert_eq!(v["duration_s"], 2.0);
        assert_eq!(v["rps"], 1000.0);
        assert_eq!(v["cut"], 7);
        assert_eq!(v["failed"], 13);
        assert_eq!(v["status_codes"]["200"], 1990);
        assert_eq!(v["status_codes"]["503"], 10);
        assert_eq!(v["errors"]["reset"], 2);
        assert_eq!(v["errors"]["timeout"], 1);
        for k in [
            "min", "mean", "p10", "p25", "p50", "p75", "p90", "p95", "p99", "p999", "max",
        ] {
            assert!(v["latency_s"][k].as_f64().unwrap() > 0.0, "{k}");
        }
        let max = v["latency_s"]["max"].as_f64().unwrap();
        assert!((max - 0.25).abs() < 0.001, "{max}");
        let hist_total: u64 = v["histogram"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["count"].as_u64().unwrap())
            .sum();
        assert_eq!(hist_total, 2000);
        assert_eq!(v["bytes"]["received"], 3 * 1024 * 1024);
    }

    #[test]
    fn units_and_bytes() {
        assert_eq!(Unit::for_max(Duration::from_micros(900)), Unit::Micros);
        assert_eq!(Unit::for_max(Duration::from_millis(900)), Unit::Millis);
        assert_eq!(Unit::for_max(Duration::from_secs(20)), Unit::Secs);
        assert_eq!(Unit::Millis.fmt(Duration::from_micros(1500)), "1.500 ms");
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
