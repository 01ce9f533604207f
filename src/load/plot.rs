//! `--plot FILE.svg`: the latency histogram, latency over time and throughput over time of a
//! run, as a hand-written SVG. Pure: returns the document as a string.

use std::fmt::Write as _;
use std::time::Duration;

use super::report::{RunInfo, Unit};
use super::stats::{Bar, Summary, Timeline};

const W: f64 = 900.0;
const H: f64 = 820.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 30.0;
const PLOT_W: f64 = W - LEFT - RIGHT;

const BLUE: &str = "#2b6cb0";
const ORANGE: &str = "#dd6b20";
const RED: &str = "#c53030";
const GREY: &str = "#718096";

/// A rectangle to draw a chart in.
#[derive(Clone, Copy)]
struct Panel {
    top: f64,
    height: f64,
}

impl Panel {
    fn bottom(self) -> f64 {
        self.top + self.height
    }
}

pub fn svg(s: &Summary, bars: &[Bar], timeline: &Timeline, info: &RunInfo) -> String {
    let mut o = String::with_capacity(32 * 1024);
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let title = format!(
        "twip bench: {} {} ({} connection{}{}{})",
        info.method,
        info.url,
        info.connections,
        if info.connections == 1 { "" } else { "s" },
        if info.keepalive {
            ""
        } else {
            ", no keep-alive"
        },
        info.rate
            .map(|r| format!(", {r} req/s scheduled"))
            .unwrap_or_default()
    );
    let subtitle = format!(
        "{} responses in {:.2} s: {:.0}/s; {} failed ({:.2}%){}",
        s.responses,
        s.duration.as_secs_f64(),
        s.rps,
        s.failed,
        s.error_rate * 100.0,
        s.latency
            .as_ref()
            .and_then(|l| Some((l.percentile("p50")?, l.percentile("p99")?)))
            .map(|(p50, p99)| {
                let u = Unit::for_max(p99);
                format!("; p50 {}, p99 {}", u.fmt(p50), u.fmt(p99))
            })
            .unwrap_or_default()
    );
    text(&mut o, LEFT, 22.0, "start", 14.0, &title);
    text(&mut o, LEFT, 40.0, "start", 12.0, &subtitle);

    let unit = s
        .latency
        .as_ref()
        .map_or(Unit::Millis, |l| Unit::for_max(l.max));
    histogram(
        &mut o,
        Panel {
            top: 80.0,
            height: 200.0,
        },
        bars,
        unit,
    );
    latency_over_time(
        &mut o,
        Panel {
            top: 350.0,
            height: 200.0,
        },
        s,
        timeline,
        unit,
    );
    throughput(
        &mut o,
        Panel {
            top: 620.0,
            height: 150.0,
        },
        s,
        timeline,
    );
    o.push_str("</svg>\n");
    o
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn text(o: &mut String, x: f64, y: f64, anchor: &str, size: f64, s: &str) {
    let _ = writeln!(
        o,
        r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" font-size="{size}">{}</text>"#,
        esc(s)
    );
}

fn frame(o: &mut String, p: Panel, title: &str) {
    text(o, LEFT, p.top - 10.0, "start", 13.0, title);
    let _ = writeln!(
        o,
        r##"<rect x="{LEFT}" y="{:.1}" width="{PLOT_W}" height="{:.1}" fill="none" stroke="#a0aec0"/>"##,
        p.top, p.height
    );
}

fn no_data(o: &mut String, p: Panel) {
    text(
        o,
        LEFT + PLOT_W / 2.0,
        p.top + p.height / 2.0,
        "middle",
        13.0,
        "no responses",
    );
}

/// Round tick values covering `[lo, hi]`, about `n` of them.
pub fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater)
        || !lo.is_finite()
        || !hi.is_finite()
        || n == 0
    {
        return vec![lo];
    }
    let raw = (hi - lo) / n as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * mag);
    let mut v = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while v <= hi + step * 1e-9 {
        out.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        v += step;
    }
    out
}

/// 1-2-5 ticks of a log axis covering `[lo, hi]` (both > 0).
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    if lo <= 0.0 || hi <= lo || lo.is_nan() || hi.is_nan() {
        return out;
    }
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi {
        for m in [1.0, 2.0, 5.0] {
            let v = decade * m;
            if v >= lo && v <= hi {
                out.push(v);
            }
        }
        decade *= 10.0;
    }
    out
}

fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        // Three significant digits.
        let digits = (-v.abs().log10().floor()) as usize + 2;
        let s = format!("{v:.digits$}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn histogram(o: &mut String, p: Panel, bars: &[Bar], unit: Unit) {
    frame(
        o,
        p,
        &format!("Latency histogram (responses per bar; {})", unit.suffix()),
    );
    let top = bars.iter().map(|b| b.count).max().unwrap_or(0);
    if bars.is_empty() || top == 0 {
        no_data(o, p);
        return;
    }
    let y = |c: f64| p.bottom() - c / top as f64 * (p.height - 10.0);
    for t in ticks(0.0, top as f64, 4) {
        let yy = y(t);
        let _ = writeln!(
            o,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#edf2f7"/>"##,
            LEFT + PLOT_W
        );
        text(o, LEFT - 6.0, yy + 4.0, "end", 11.0, &fmt_num(t));
    }
    let slot = PLOT_W / bars.len() as f64;
    let label_every = bars.len().div_ceil(10).max(1);
    for (i, b) in bars.iter().enumerate() {
        let x = LEFT + i as f64 * slot;
        let yy = y(b.count as f64);
        let color = if b.tail { ORANGE } else { BLUE };
        let _ = writeln!(
            o,
            r#"<rect x="{:.1}" y="{yy:.1}" width="{:.1}" height="{:.1}" fill="{color}"><title>{} – {}: {}</title></rect>"#,
            x + 1.0,
            (slot - 2.0).max(0.5),
            p.bottom() - yy,
            esc(&unit.fmt(b.from)),
            esc(&unit.fmt(b.to)),
            b.count
        );
        if b.tail {
            text(
                o,
                x + slot / 2.0,
                p.bottom() + 16.0,
                "middle",
                11.0,
                "> p99.9",
            );
            text(
                o,
                x + slot / 2.0,
                p.bottom() + 30.0,
                "middle",
                11.0,
                &format!("≤ {}", fmt_num(b.to.as_secs_f64() * unit.scale())),
            );
        } else if i % label_every == 0 || i + 1 == bars.len() {
            text(
                o,
                x + slot,
                p.bottom() + 16.0,
                "middle",
                11.0,
                &fmt_num(b.to.as_secs_f64() * unit.scale()),
            );
        }
    }
}

/// The most points a line over time gets: slices are merged to stay under it.
const MAX_POINTS: usize = 200;

/// One point of a line over time: what finished in `[start, start + len)` seconds.
struct Point {
    start: f64,
    len: f64,
    responses: u64,
    errors: u64,
    latency_sum_ns: u64,
    latency_max_ns: u64,
}

/// The timeline as at most [`MAX_POINTS`] points. The last one is cut at the end of the run,
/// and dropped when it covers less than half of a point (too short for a rate).
fn points(timeline: &Timeline, total: Duration) -> Vec<Point> {
    let slices = timeline.slices();
    let group = slices.len().div_ceil(MAX_POINTS).max(1);
    let w = timeline.width().as_secs_f64() * group as f64;
    let total = total.as_secs_f64();
    let mut out: Vec<Point> = slices
        .chunks(group)
        .enumerate()
        .map(|(i, c)| Point {
            start: i as f64 * w,
            len: (total - i as f64 * w).min(w),
            responses: c.iter().map(|s| s.responses).sum(),
            errors: c.iter().map(|s| s.errors).sum(),
            latency_sum_ns: c.iter().map(|s| s.latency_sum_ns).sum(),
            latency_max_ns: c.iter().map(|s| s.latency_max_ns).max().unwrap_or(0),
        })
        .collect();
    if out.len() > 1 && out.last().is_some_and(|p| p.len < w / 2.0) {
        out.pop();
    }
    out
}

fn time_axis(o: &mut String, p: Panel, total: f64) -> impl Fn(f64) -> f64 {
    let total = total.max(1e-3);
    for t in ticks(0.0, total, 8) {
        let x = LEFT + t / total * PLOT_W;
        let _ = writeln!(
            o,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#edf2f7"/>"##,
            p.top,
            p.bottom()
        );
        text(o, x, p.bottom() + 16.0, "middle", 11.0, &fmt_num(t));
    }
    text(
        o,
        LEFT + PLOT_W,
        p.bottom() + 30.0,
        "end",
        11.0,
        "seconds since start",
    );
    move |t: f64| LEFT + t / total * PLOT_W
}

fn polyline(o: &mut String, pts: &[(f64, f64)], color: &str, width: f64, dash: &str) {
    if pts.is_empty() {
        return;
    }
    let mut d = String::with_capacity(pts.len() * 14);
    for (x, y) in pts {
        let _ = write!(d, "{x:.1},{y:.1} ");
    }
    let _ = writeln!(
        o,
        r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="{width}"{dash}/>"#,
        d.trim_end()
    );
}

fn legend(o: &mut String, p: Panel, items: &[(&str, &str)]) {
    let mut x = LEFT + PLOT_W;
    for (label, color) in items.iter().rev() {
        let w = 14.0 + 7.0 * label.chars().count() as f64;
        x -= w + 16.0;
        let _ = writeln!(
            o,
            r#"<rect x="{x:.1}" y="{:.1}" width="10" height="10" fill="{color}"/>"#,
            p.top - 20.0
        );
        text(o, x + 14.0, p.top - 11.0, "start", 11.0, label);
    }
}

fn latency_over_time(o: &mut String, p: Panel, s: &Summary, timeline: &Timeline, unit: Unit) {
    frame(
        o,
        p,
        &format!("Latency over time ({}, log scale)", unit.suffix()),
    );
    let Some(lat) = &s.latency else {
        no_data(o, p);
        return;
    };
    legend(
        o,
        p,
        &[("mean", BLUE), ("max", ORANGE), ("p99 of the run", GREY)],
    );
    let scale = unit.scale();
    let mut pts_mean = Vec::new();
    let mut pts_max = Vec::new();
    for p in points(timeline, s.duration) {
        if p.responses == 0 {
            continue;
        }
        let t = p.start + p.len / 2.0;
        let mean = p.latency_sum_ns as f64 / p.responses as f64 / 1e9 * scale;
        let max = p.latency_max_ns as f64 / 1e9 * scale;
        pts_mean.push((t, mean));
        pts_max.push((t, max));
    }
    let lo = pts_mean
        .iter()
        .map(|p| p.1)
        .fold(f64::INFINITY, f64::min)
        .min(lat.min.as_secs_f64() * scale)
        .max(1e-6);
    let hi = pts_max
        .iter()
        .map(|p| p.1)
        .fold(0.0, f64::max)
        .max(lat.max.as_secs_f64() * scale)
        .max(lo * 1.01);
    let (llo, lhi) = ((lo / 1.2).log10(), (hi * 1.2).log10());
    let y = |v: f64| p.bottom() - (v.max(1e-12).log10() - llo) / (lhi - llo) * p.height;
    for t in log_ticks(lo / 1.2, hi * 1.2) {
        let yy = y(t);
        let _ = writeln!(
            o,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#edf2f7"/>"##,
            LEFT + PLOT_W
        );
        text(o, LEFT - 6.0, yy + 4.0, "end", 11.0, &fmt_num(t));
    }
    let x = time_axis(o, p, s.duration.as_secs_f64());
    if let Some(p99) = lat.percentile("p99") {
        let yy = y(p99.as_secs_f64() * scale);
        let _ = writeln!(
            o,
            r#"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="{GREY}" stroke-dasharray="4 3"/>"#,
            LEFT + PLOT_W
        );
    }
    let map = |pts: &[(f64, f64)]| -> Vec<(f64, f64)> {
        pts.iter().map(|&(t, v)| (x(t), y(v))).collect()
    };
    polyline(o, &map(&pts_max), ORANGE, 1.0, "");
    polyline(o, &map(&pts_mean), BLUE, 1.8, "");
}

fn throughput(o: &mut String, p: Panel, s: &Summary, timeline: &Timeline) {
    frame(o, p, "Responses and errors per second");
    if s.requests == 0 {
        no_data(o, p);
        return;
    }
    legend(o, p, &[("responses/s", BLUE), ("errors/s", RED)]);
    let rate: Vec<(f64, f64, f64)> = points(timeline, s.duration)
        .iter()
        .filter(|p| p.len > 0.0)
        .map(|p| {
            (
                p.start + p.len / 2.0,
                p.responses as f64 / p.len,
                p.errors as f64 / p.len,
            )
        })
        .collect();
    let hi = rate
        .iter()
        .map(|r| r.1.max(r.2))
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.1;
    let y = |v: f64| p.bottom() - v / hi * p.height;
    for t in ticks(0.0, hi, 4) {
        let yy = y(t);
        let _ = writeln!(
            o,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#edf2f7"/>"##,
            LEFT + PLOT_W
        );
        text(o, LEFT - 6.0, yy + 4.0, "end", 11.0, &fmt_num(t));
    }
    let x = time_axis(o, p, s.duration.as_secs_f64());
    let resp: Vec<(f64, f64)> = rate.iter().map(|r| (x(r.0), y(r.1))).collect();
    polyline(o, &resp, BLUE, 1.5, "");
    if rate.iter().any(|r| r.2 > 0.0) {
        let err: Vec<(f64, f64)> = rate.iter().map(|r| (x(r.0), y(r.2))).collect();
        polyline(o, &err, RED, 1.5, "");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::stats::{bars, summarize, Failure, Stats};

    fn info() -> RunInfo {
        RunInfo {
            url: "http://127.0.0.1:1/<&>".into(),
            method: "GET".into(),
            connections: 2,
            threads: 1,
            keepalive: true,
            requests: Some(10),
            duration: None,
            rate: None,
            timeout: None,
            max_head: 65536,
            retry_idempotent: false,
            busy_poll: false,
            nap: Duration::ZERO,
            sched: crate::load::Sched::Batch,
            interrupted: false,
        }
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(ticks(0.0, 10.0, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(ticks(0.0, 0.9, 4), vec![0.0, 0.25, 0.5, 0.75]);
        assert_eq!(log_ticks(0.3, 30.0), vec![0.5, 1.0, 2.0, 5.0, 10.0, 20.0]);
        assert!(log_ticks(0.0, 1.0).is_empty());
    }

    #[test]
    fn numbers_and_points() {
        assert_eq!(fmt_num(0.9052), "0.905");
        assert_eq!(fmt_num(0.012345), "0.0123");
        assert_eq!(fmt_num(2.5), "2.5");
        assert_eq!(fmt_num(1234.4), "1234");
        let mut t = Timeline::new();
        let w = Timeline::INITIAL_WIDTH_NS;
        for i in 0..1000u64 {
            t.record_response(i * w + 1, 10);
        }
        let pts = points(&t, Duration::from_nanos(1000 * w));
        assert!(pts.len() <= MAX_POINTS);
        assert_eq!(pts.iter().map(|p| p.responses).sum::<u64>(), 1000);
        // A last point much shorter than the others is dropped.
        let pts = points(&t, Duration::from_nanos(995 * w + w / 10));
        assert_eq!(pts.len(), 199);
    }

    #[test]
    fn an_svg_with_three_charts() {
        let mut st = Stats::new();
        for i in 0..5000u64 {
            st.record_response(i * 2_000_000, 100_000 + (i % 97) * 10_000, 200);
        }
        st.record_error(3_000_000_000, Failure::Timeout);
        let sum = summarize(&st, Duration::from_secs(10), 0);
        let b = bars(&st.latency, 40);
        let svg = svg(&sum, &b, &st.timeline, &info());
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("&lt;&amp;&gt;"), "the URL is escaped");
        assert!(!svg.contains("<&>"));
        assert_eq!(
            svg.matches("<polyline").count(),
            4,
            "mean, max, rps, errors"
        );
        assert_eq!(svg.matches("<title>").count(), b.len());
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn an_svg_without_responses() {
        let mut st = Stats::new();
        st.record_error(0, Failure::Refused);
        let sum = summarize(&st, Duration::from_millis(5), 0);
        let svg = svg(&sum, &[], &st.timeline, &info());
        assert_eq!(svg.matches("no responses").count(), 2);
        assert!(!svg.contains("NaN"));
    }
}
