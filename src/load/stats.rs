//! What a run measured, and the figures drawn from it. Pure: no I/O, no clock, no runtime.
//!
//! Each worker thread fills one [`Stats`]; they are merged at the end. Memory is constant
//! whatever the number of requests: latencies go into an HDR histogram (fixed bounds, 3
//! significant digits) and the timeline keeps at most [`Timeline::MAX_BUCKETS`] buckets,
//! doubling their width when the run outgrows them.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Latencies above this are recorded as this (the histogram's upper bound): one hour.
pub const MAX_LATENCY_NS: u64 = 3_600 * 1_000_000_000;

/// The percentiles the report and the JSON object show, with their JSON key.
pub const PERCENTILES: [(f64, &str); 8] = [
    (10.0, "p10"),
    (25.0, "p25"),
    (50.0, "p50"),
    (75.0, "p75"),
    (90.0, "p90"),
    (95.0, "p95"),
    (99.0, "p99"),
    (99.9, "p999"),
];

/// Why a request got no response. A request cut by the `-z` deadline or by Ctrl-C is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// Nothing listens on the port (ECONNREFUSED).
    Refused,
    /// The peer reset or aborted the connection (ECONNRESET, EPIPE, ECONNABORTED).
    Reset,
    /// No complete response within `--timeout` (connect included).
    Timeout,
    /// The server closed the connection before the response was complete.
    Closed,
    /// The bytes that came back are not an HTTP/1.x response.
    Invalid,
    /// No local address or port left to connect from (EADDRNOTAVAIL, EADDRINUSE).
    NoLocalPort,
    /// The host or its network is unreachable.
    Unreachable,
    /// Any other I/O error.
    Other,
    /// On a kept-alive connection, the request was written and the server closed or reset
    /// the connection without a byte of response. The server may or may not have processed
    /// it, so it is not sent again (unless `--retry-idempotent` allows it).
    DroppedOnReuse,
    /// The response head (status line and headers) is larger than `--max-header-size`.
    HeadTooLarge,
    /// The connection was not established within `--timeout`: the request was not sent.
    ConnectTimeout,
    /// The TLS handshake failed (certificate not trusted or not for the host, no common
    /// version or cipher): the request was not sent.
    Tls,
}

impl Failure {
    pub const COUNT: usize = 12;
    pub const ALL: [Failure; Self::COUNT] = [
        Failure::Refused,
        Failure::Reset,
        Failure::Timeout,
        Failure::Closed,
        Failure::Invalid,
        Failure::NoLocalPort,
        Failure::Unreachable,
        Failure::Other,
        Failure::DroppedOnReuse,
        Failure::HeadTooLarge,
        Failure::ConnectTimeout,
        Failure::Tls,
    ];

    /// The key in `--json`'s `errors` object and in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Refused => "refused",
            Failure::Reset => "reset",
            Failure::Timeout => "timeout",
            Failure::Closed => "closed",
            Failure::Invalid => "invalid_response",
            Failure::NoLocalPort => "no_local_port",
            Failure::Unreachable => "unreachable",
            Failure::Other => "other",
            Failure::DroppedOnReuse => "dropped_on_reuse",
            Failure::HeadTooLarge => "head_too_large",
            Failure::ConnectTimeout => "connect_timeout",
            Failure::Tls => "tls",
        }
    }

    /// A phrase for people.
    pub fn describe(self) -> &'static str {
        match self {
            Failure::Refused => "connection refused",
            Failure::Reset => "connection reset by the server",
            Failure::Timeout => "timed out",
            Failure::Closed => "connection closed before the response was complete",
            Failure::Invalid => "not an HTTP/1.x response",
            Failure::NoLocalPort => "no local port or address available",
            Failure::Unreachable => "host or network unreachable",
            Failure::Other => "other I/O error",
            Failure::DroppedOnReuse => {
                "written on a reused connection, which the server closed without answering"
            }
            Failure::HeadTooLarge => "response head larger than --max-header-size",
            Failure::ConnectTimeout => "no connection within --timeout; the request was not sent",
            Failure::Tls => {
                "TLS handshake failed (see --cacert, --insecure); the request was not sent"
            }
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One time slice of the run: what finished in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slice {
    pub responses: u64,
    pub errors: u64,
    pub latency_sum_ns: u64,
    pub latency_max_ns: u64,
}

impl Slice {
    fn add(&mut self, o: &Slice) {
        self.responses += o.responses;
        self.errors += o.errors;
        self.latency_sum_ns = self.latency_sum_ns.saturating_add(o.latency_sum_ns);
        self.latency_max_ns = self.latency_max_ns.max(o.latency_max_ns);
    }
}

/// Responses, errors and latency per time slice since the start, in constant memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    width_ns: u64,
    slices: Vec<Slice>,
}

impl Default for Timeline {
    fn default() -> Self {
        Self::new()
    }
}

impl Timeline {
    pub const MAX_BUCKETS: usize = 1024;
    /// The first width: 10 ms, so a 10 s run fills the buckets.
    pub const INITIAL_WIDTH_NS: u64 = 10_000_000;

    pub fn new() -> Self {
        Timeline {
            width_ns: Self::INITIAL_WIDTH_NS,
            slices: Vec::with_capacity(Self::MAX_BUCKETS),
        }
    }

    pub fn width(&self) -> Duration {
        Duration::from_nanos(self.width_ns)
    }

    /// The slices, the first starting at the run's start, each [`Self::width`] long.
    pub fn slices(&self) -> &[Slice] {
        &self.slices
    }

    fn slot(&mut self, at_ns: u64) -> &mut Slice {
        let mut idx = at_ns / self.width_ns;
        while idx as usize >= Self::MAX_BUCKETS {
            self.coarsen();
            idx = at_ns / self.width_ns;
        }
        let idx = idx as usize;
        if idx >= self.slices.len() {
            self.slices.resize(idx + 1, Slice::default());
        }
        &mut self.slices[idx]
    }

    pub fn record_response(&mut self, at_ns: u64, latency_ns: u64) {
        let s = self.slot(at_ns);
        s.responses += 1;
        s.latency_sum_ns = s.latency_sum_ns.saturating_add(latency_ns);
        s.latency_max_ns = s.latency_max_ns.max(latency_ns);
    }

    pub fn record_error(&mut self, at_ns: u64) {
        self.slot(at_ns).errors += 1;
    }

    /// Doubles the width, merging slices pairwise.
    fn coarsen(&mut self) {
        let n = self.slices.len();
        for i in 0..n.div_ceil(2) {
            let mut s = self.slices[2 * i];
            if 2 * i + 1 < n {
                let o = self.slices[2 * i + 1];
                s.add(&o);
            }
            self.slices[i] = s;
        }
        self.slices.truncate(n.div_ceil(2));
        self.width_ns *= 2;
    }

    pub fn merge(&mut self, other: &Timeline) {
        let mut other = other.clone();
        while other.width_ns < self.width_ns {
            other.coarsen();
        }
        while self.width_ns < other.width_ns {
            self.coarsen();
        }
        if other.slices.len() > self.slices.len() {
            self.slices.resize(other.slices.len(), Slice::default());
        }
        for (a, b) in self.slices.iter_mut().zip(other.slices.iter()) {
            a.add(b);
        }
    }
}

/// Everything one worker (or, merged, the whole run) measured.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Latency of every response (any status), in nanoseconds.
    pub latency: Histogram<u64>,
    /// Responses by status code (index = code, 0..=999).
    pub status: Vec<u64>,
    pub errors: [u64; Failure::COUNT],
    pub responses: u64,
    /// Bytes read from the server: status lines, headers and bodies.
    pub bytes_received: u64,
    /// Bytes of response bodies (after chunked decoding).
    pub body_bytes: u64,
    pub bytes_sent: u64,
    /// TCP connections opened (established, whether or not a request completed on them).
    pub connects: u64,
    /// Requests written (at least one byte accepted by the kernel), each counted once.
    pub sent: u64,
    /// Requests written again on a new connection (`--retry-idempotent`).
    pub retries: u64,
    /// Naps taken while waiting for responses (`--nap`).
    pub naps: u64,
    /// `--rate`: requests picked up by a connection (their scheduled time had come).
    pub taken: u64,
    /// Requests that failed before a byte of them was written (connect errors).
    pub unsent_errors: u64,
    /// `--rate`: requests whose scheduled time came before the run ended (set once merged).
    pub due: Option<u64>,
    pub timeline: Timeline,
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    pub fn new() -> Self {
        Stats {
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
                .expect("valid histogram bounds"),
            status: vec![0; 1000],
            errors: [0; Failure::COUNT],
            responses: 0,
            bytes_received: 0,
            body_bytes: 0,
            bytes_sent: 0,
            connects: 0,
            sent: 0,
            retries: 0,
            naps: 0,
            taken: 0,
            unsent_errors: 0,
            due: None,
            timeline: Timeline::new(),
        }
    }

    /// A response arrived `latency_ns` after its (intended) send time, `at_ns` after the start.
    pub fn record_response(&mut self, at_ns: u64, latency_ns: u64, status: u16) {
        self.responses += 1;
        self.latency
            .saturating_record(latency_ns.clamp(1, MAX_LATENCY_NS));
        let idx = (status as usize).min(self.status.len() - 1);
        self.status[idx] += 1;
        self.timeline.record_response(at_ns, latency_ns);
    }

    pub fn record_error(&mut self, at_ns: u64, kind: Failure) {
        self.errors[kind.index()] += 1;
        self.timeline.record_error(at_ns);
    }

    pub fn error_count(&self) -> u64 {
        self.errors.iter().sum()
    }

    pub fn merge(&mut self, o: &Stats) {
        self.latency
            .add(&o.latency)
            .expect("histograms with the same bounds");
        for (a, b) in self.status.iter_mut().zip(o.status.iter()) {
            *a += b;
        }
        for (a, b) in self.errors.iter_mut().zip(o.errors.iter()) {
            *a += b;
        }
        self.responses += o.responses;
        self.bytes_received += o.bytes_received;
        self.body_bytes += o.body_bytes;
        self.bytes_sent += o.bytes_sent;
        self.connects += o.connects;
        self.sent += o.sent;
        self.retries += o.retries;
        self.naps += o.naps;
        self.taken += o.taken;
        self.unsent_errors += o.unsent_errors;
        self.timeline.merge(&o.timeline);
    }
}

/// Latency figures of the responses.
#[derive(Debug, Clone, PartialEq)]
pub struct Latency {
    pub min: Duration,
    pub mean: Duration,
    pub stdev: Duration,
    pub max: Duration,
    /// (percentile, JSON key, value), in the order of [`PERCENTILES`].
    pub percentiles: Vec<(f64, &'static str, Duration)>,
}

impl Latency {
    pub fn percentile(&self, key: &str) -> Option<Duration> {
        self.percentiles
            .iter()
            .find(|(_, k, _)| *k == key)
            .map(|(_, _, d)| *d)
    }
}

/// One bar of a latency histogram: responses with latency in `(from, to]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bar {
    pub from: Duration,
    pub to: Duration,
    pub count: u64,
    /// The bar of the tail above the 99.9th percentile (wider than the others).
    pub tail: bool,
}

/// The figures of a run, ready for the report, the JSON object and the plot.
#[derive(Debug, Clone)]
pub struct Summary {
    pub duration: Duration,
    /// Requests that finished: responses plus errors (cut ones excluded).
    pub requests: u64,
    pub responses: u64,
    /// Requests without a response (transport errors).
    pub errors: u64,
    /// Responses with status >= 400.
    pub http_failures: u64,
    /// `errors + http_failures`.
    pub failed: u64,
    /// `failed / requests` (0 when nothing finished).
    pub error_rate: f64,
    /// Requests in flight when the `-z` deadline (or Ctrl-C) stopped the run: not errors.
    pub cut: u64,
    /// Responses per second.
    pub rps: f64,
    pub latency: Option<Latency>,
    /// (status, count), ascending by status.
    pub status_codes: Vec<(u16, u64)>,
    /// (kind, count) for kinds that happened, most frequent first.
    pub error_kinds: Vec<(Failure, u64)>,
    pub bytes_received: u64,
    pub body_bytes: u64,
    pub bytes_sent: u64,
    pub connects: u64,
    /// Requests written, each once (a retry is not counted again).
    pub sent: u64,
    pub retries: u64,
    /// Naps taken while waiting for responses (`--nap`).
    pub naps: u64,
    /// With `--rate`: what the schedule asked for and what became of it.
    pub schedule: Option<Schedule>,
}

/// `--rate` accounting: `due = sent + connections_busy + connect_failed + run_ended`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Requests whose scheduled time came before the run ended.
    pub due: u64,
    /// Due, but never picked up: every connection was busy until the run ended.
    pub connections_busy: u64,
    /// Picked up, but the connection failed before a byte was written (also errors).
    pub connect_failed: u64,
    /// Picked up, but the run ended before it was written.
    pub run_ended: u64,
}

impl Schedule {
    pub fn not_sent(&self) -> u64 {
        self.connections_busy + self.connect_failed + self.run_ended
    }
}

/// Draws the figures from merged stats. `duration` is the wall time of the run.
pub fn summarize(stats: &Stats, duration: Duration, cut: u64) -> Summary {
    let errors = stats.error_count();
    let http_failures: u64 = stats.status.iter().skip(400).sum();
    let requests = stats.responses + errors;
    let failed = errors + http_failures;
    let secs = duration.as_secs_f64();
    let rps = if secs > 0.0 {
        stats.responses as f64 / secs
    } else {
        0.0
    };
    let latency = (stats.responses > 0).then(|| {
        let h = &stats.latency;
        let ns = Duration::from_nanos;
        Latency {
            min: ns(h.min()),
            mean: Duration::from_secs_f64(h.mean() / 1e9),
            stdev: Duration::from_secs_f64(h.stdev() / 1e9),
            max: ns(h.max()),
            percentiles: PERCENTILES
                .iter()
                .map(|&(p, k)| (p, k, ns(h.value_at_percentile(p))))
                .collect(),
        }
    });
    let status_codes = stats
        .status
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(code, &n)| (code as u16, n))
        .collect();
    let mut error_kinds: Vec<(Failure, u64)> = Failure::ALL
        .iter()
        .map(|&k| (k, stats.errors[k.index()]))
        .filter(|&(_, n)| n > 0)
        .collect();
    error_kinds.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    Summary {
        duration,
        requests,
        responses: stats.responses,
        errors,
        http_failures,
        failed,
        error_rate: if requests > 0 {
            failed as f64 / requests as f64
        } else {
            0.0
        },
        cut,
        rps,
        latency,
        status_codes,
        error_kinds,
        bytes_received: stats.bytes_received,
        body_bytes: stats.body_bytes,
        bytes_sent: stats.bytes_sent,
        connects: stats.connects,
        sent: stats.sent,
        retries: stats.retries,
        naps: stats.naps,
        schedule: stats.due.map(|due| {
            // Every request of a --rate run was picked up first, so `taken >= sent`; the
            // `max` and `min` only keep the sum exact should a clock edge disagree.
            let taken = stats.taken.max(stats.sent);
            let due = due.max(taken);
            let connect_failed = stats.unsent_errors.min(taken - stats.sent);
            Schedule {
                due,
                connections_busy: due - taken,
                connect_failed,
                run_ended: taken - stats.sent - connect_failed,
            }
        }),
    }
}

/// A latency histogram in `bars` bars from the fastest response to the 99.9th percentile,
/// plus one bar for the tail above it (when there is one), so that a few outliers do not
/// squash the rest into the first bar. The bars are log-spaced (each one the same ratio
/// wider than the previous), since latencies are skewed: the body gets as many bars as the
/// tail; a narrow distribution gets near-equal bars.
pub fn bars(h: &Histogram<u64>, bars: usize) -> Vec<Bar> {
    if h.is_empty() || bars == 0 {
        return Vec::new();
    }
    let lo = h.min().max(1);
    let max = h.max();
    let ns = Duration::from_nanos;
    if h.lowest_equivalent(max) <= lo {
        // Every value in one bucket of the histogram's precision: one bar.
        return vec![Bar {
            from: ns(lo),
            to: ns(max),
            count: h.len(),
            tail: false,
        }];
    }
    let hi = h.value_at_percentile(99.9).clamp(lo, max);
    let hi = if h.lowest_equivalent(hi) <= lo {
        lo
    } else {
        hi
    };
    // bounds[i]..=bounds[i + 1] is bar i.
    let bounds: Vec<u64> = if hi == lo {
        vec![lo, hi]
    } else {
        let ratio = hi as f64 / lo as f64;
        let mut b: Vec<u64> = (0..=bars)
            .map(|i| (lo as f64 * ratio.powf(i as f64 / bars as f64)).round() as u64)
            .collect();
        b[0] = lo;
        b[bars] = hi;
        b.dedup();
        b
    };
    let mut out: Vec<Bar> = bounds
        .windows(2)
        .map(|w| Bar {
            from: ns(w[0]),
            to: ns(w[1]),
            count: 0,
            tail: false,
        })
        .collect();
    let main = out.len();
    if max > hi {
        out.push(Bar {
            from: ns(hi),
            to: ns(max),
            count: 0,
            tail: true,
        });
    }
    for v in h.iter_recorded() {
        let value = h.highest_equivalent(v.value_iterated_to()).min(max);
        let count = v.count_since_last_iteration();
        let idx = if value > hi {
            out.len() - 1
        } else {
            // Bar i holds (from_i, to_i]; the first one also holds `lo`.
            bounds[1..].partition_point(|&b| b < value).min(main - 1)
        };
        out[idx].count += count;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn stats_with(latencies_ms: &[u64]) -> Stats {
        let mut s = Stats::new();
        for (i, &l) in latencies_ms.iter().enumerate() {
            s.record_response(i as u64 * MS, l * MS, 200);
        }
        s
    }

    #[test]
    fn percentiles_of_a_uniform_sample() {
        let sample: Vec<u64> = (1..=1000).collect();
        let s = stats_with(&sample);
        let sum = summarize(&s, Duration::from_secs(2), 0);
        let l = sum.latency.unwrap();
        let close = |d: Duration, ms: f64| {
            let got = d.as_secs_f64() * 1e3;
            assert!((got - ms).abs() / ms < 0.002, "{got} ms vs {ms} ms");
        };
        close(l.min, 1.0);
        close(l.max, 1000.0);
        close(l.mean, 500.5);
        close(l.percentile("p50").unwrap(), 500.0);
        close(l.percentile("p90").unwrap(), 900.0);
        close(l.percentile("p99").unwrap(), 990.0);
        close(l.percentile("p999").unwrap(), 999.0);
        assert_eq!(sum.responses, 1000);
        assert_eq!(sum.requests, 1000);
        assert!((sum.rps - 500.0).abs() < 1e-9);
        assert_eq!(sum.status_codes, vec![(200, 1000)]);
        assert!(sum.error_kinds.is_empty());
        assert_eq!(sum.error_rate, 0.0);
    }

    #[test]
    fn failures_count_errors_and_http_4xx_5xx_but_not_cut_requests() {
        let mut s = Stats::new();
        for _ in 0..6 {
            s.record_response(0, MS, 200);
        }
        s.record_response(0, MS, 404);
        s.record_response(0, MS, 503);
        s.record_error(0, Failure::Reset);
        s.record_error(0, Failure::Timeout);
        s.record_error(0, Failure::Timeout);
        let sum = summarize(&s, Duration::from_secs(1), 5);
        assert_eq!(sum.requests, 11);
        assert_eq!(sum.responses, 8);
        assert_eq!(sum.errors, 3);
        assert_eq!(sum.http_failures, 2);
        assert_eq!(sum.failed, 5);
        assert_eq!(sum.cut, 5);
        assert!((sum.error_rate - 5.0 / 11.0).abs() < 1e-12);
        assert_eq!(
            sum.error_kinds,
            vec![(Failure::Timeout, 2), (Failure::Reset, 1)]
        );
        assert_eq!(sum.status_codes, vec![(200, 6), (404, 1), (503, 1)]);
        // rps counts responses, failed ones included, not transport errors.
        assert!((sum.rps - 8.0).abs() < 1e-9);
    }

    #[test]
    fn no_response_means_no_latency() {
        let mut s = Stats::new();
        s.record_error(0, Failure::Refused);
        let sum = summarize(&s, Duration::from_millis(10), 0);
        assert!(sum.latency.is_none());
        assert_eq!(sum.error_rate, 1.0);
        assert_eq!(sum.rps, 0.0);
    }

    #[test]
    fn merge_adds_everything() {
        let mut a = stats_with(&[1, 2, 3]);
        let mut b = stats_with(&[10, 20]);
        b.record_error(0, Failure::Refused);
        b.bytes_received = 100;
        b.connects = 2;
        a.bytes_received = 50;
        a.merge(&b);
        assert_eq!(a.responses, 5);
        assert_eq!(a.latency.len(), 5);
        assert_eq!(a.status[200], 5);
        assert_eq!(a.error_count(), 1);
        assert_eq!(a.bytes_received, 150);
        assert_eq!(a.connects, 2);
        assert_eq!(a.latency.max(), a.latency.highest_equivalent(20 * MS));
    }

    #[test]
    fn memory_stays_constant_whatever_the_count() {
        let mut s = Stats::new();
        let before = s.latency.distinct_values();
        for i in 0..200_000u64 {
            s.record_response(i * 1_000_000, (i % 5000 + 1) * 1000, 200);
        }
        assert_eq!(s.latency.distinct_values(), before);
        assert!(s.timeline.slices().len() <= Timeline::MAX_BUCKETS);
        let total: u64 = s.timeline.slices().iter().map(|x| x.responses).sum();
        assert_eq!(total, 200_000);
    }

    #[test]
    fn timeline_coarsens_and_keeps_totals() {
        let mut t = Timeline::new();
        let w = Timeline::INITIAL_WIDTH_NS;
        for i in 0..3000u64 {
            t.record_response(i * w, 5);
        }
        t.record_error(0);
        assert!(t.slices().len() <= Timeline::MAX_BUCKETS);
        assert_eq!(t.width(), Duration::from_nanos(w * 4));
        let responses: u64 = t.slices().iter().map(|s| s.responses).sum();
        assert_eq!(responses, 3000);
        assert_eq!(t.slices()[0].responses, 4);
        assert_eq!(t.slices()[0].errors, 1);
        assert_eq!(t.slices()[0].latency_sum_ns, 20);
        assert_eq!(t.slices()[0].latency_max_ns, 5);
    }

    #[test]
    fn timelines_of_different_widths_merge() {
        let w = Timeline::INITIAL_WIDTH_NS;
        let mut a = Timeline::new();
        a.record_response(0, 1);
        let mut b = Timeline::new();
        for i in 0..2000u64 {
            b.record_response(i * w, 2);
        }
        a.merge(&b);
        assert_eq!(a.width(), Duration::from_nanos(2 * w));
        assert_eq!(a.slices()[0].responses, 3);
        let total: u64 = a.slices().iter().map(|s| s.responses).sum();
        assert_eq!(total, 2001);
    }

    #[test]
    fn bars_cover_every_response_and_isolate_the_tail() {
        let mut sample = vec![10u64; 1000];
        sample.extend(vec![20u64; 999]);
        sample.push(5000); // one outlier, above p99.9
        let s = stats_with(&sample);
        let bars = bars(&s.latency, 10);
        let total: u64 = bars.iter().map(|b| b.count).sum();
        assert_eq!(total, 2000);
        assert_eq!(bars.len(), 11, "ten bars plus the tail");
        assert_eq!(bars.last().unwrap().count, 1);
        assert!(bars.last().unwrap().tail);
        assert!(!bars[9].tail);
        assert_eq!(bars[0].count, 1000);
        assert_eq!(bars[9].count, 999);
        for w in bars.windows(2) {
            assert_eq!(w[0].to, w[1].from);
        }
        // Log-spaced: each bar is the same ratio wider.
        let ratio = |b: &Bar| b.to.as_secs_f64() / b.from.as_secs_f64();
        assert!((ratio(&bars[1]) - ratio(&bars[8])).abs() < 0.01);
        assert!(bars[8].to - bars[8].from > bars[1].to - bars[1].from);
    }

    #[test]
    fn bars_of_a_single_value() {
        let s = stats_with(&[7, 7, 7]);
        let b = bars(&s.latency, 10);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].count, 3);
    }

    #[test]
    fn status_codes_out_of_range_do_not_panic() {
        let mut s = Stats::new();
        s.record_response(0, 1, 999);
        s.record_response(0, 1, u16::MAX);
        assert_eq!(s.status[999], 2);
    }
}
