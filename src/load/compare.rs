//! A layout comparison (`twip bench ENV --service S --replicas 1,3,10`): one [`Row`] per
//! replica count, shown as a table and drawn as a chart. Pure; the runs are the command's.

use std::fmt::Write as _;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub replicas: u64,
    pub rps: f64,
    pub p50_s: Option<f64>,
    pub p99_s: Option<f64>,
    pub failed: u64,
    pub requests: u64,
    /// Cores the service's tasks used together (engine stats, halfway through the run).
    pub cpu_cores: Option<f64>,
}

fn ms(s: Option<f64>) -> String {
    s.map_or("-".into(), |s| format!("{:.2} ms", s * 1000.0))
}

/// The comparison as a table; the speed-up is against the first row.
pub fn table(svc: &str, rows: &[Row]) -> String {
    let mut out = String::new();
    let base = rows.first().map(|r| r.rps).filter(|r| *r > 0.0);
    let _ = writeln!(
        out,
        "{:>8}  {:>10}  {:>8}  {:>10}  {:>10}  {:>8}  {:>10}",
        "replicas",
        "rps",
        "speed-up",
        "p50",
        "p99",
        "failed",
        format!("{svc} cpu")
    );
    for r in rows {
        let speedup = base.map_or("-".into(), |b| format!("{:.2}x", r.rps / b));
        let cpu = r.cpu_cores.map_or("-".into(), |c| format!("{c:.2} cores"));
        let _ = writeln!(
            out,
            "{:>8}  {:>10.0}  {:>8}  {:>10}  {:>10}  {:>8}  {:>10}",
            r.replicas,
            r.rps,
            speedup,
            ms(r.p50_s),
            ms(r.p99_s),
            r.failed,
            cpu
        );
    }
    out
}

/// Requests/s (left axis) and p99 (right axis) against the replica count.
pub fn svg(svc: &str, rows: &[Row]) -> String {
    let (w, h, left, right, top, bottom) = (640.0, 360.0, 70.0, 70.0, 40.0, 50.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let max_n = rows.iter().map(|r| r.replicas).max().unwrap_or(1) as f64;
    let max_rps = rows.iter().map(|r| r.rps).fold(1.0, f64::max) * 1.1;
    let max_p99 = rows.iter().filter_map(|r| r.p99_s).fold(1e-6, f64::max) * 1.1 * 1000.0;
    let x = |n: u64| left + pw * (n as f64 / max_n);
    let y_rps = |v: f64| top + ph * (1.0 - v / max_rps);
    let y_p99 = |v: f64| top + ph * (1.0 - v * 1000.0 / max_p99);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{left}" y="24" font-size="14">{svc}: requests/s (blue) and p99 latency (red) against replicas</text>"#
    );
    let _ = write!(
        s,
        r#"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{left}" y1="{top}" x2="{left}" y2="{}" stroke="black"/><line x1="{}" y1="{top}" x2="{}" y2="{}" stroke="black"/>"#,
        top + ph,
        left + pw,
        top + ph,
        top + ph,
        left + pw,
        left + pw,
        top + ph
    );
    for i in 0..=4 {
        let f = f64::from(i) / 4.0;
        let yy = top + ph * (1.0 - f);
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end" fill="steelblue">{:.0}</text><text x="{}" y="{}" fill="firebrick">{:.1} ms</text>"#,
            left - 6.0,
            yy + 4.0,
            max_rps * f,
            left + pw + 6.0,
            yy + 4.0,
            max_p99 * f
        );
    }
    for r in rows {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            x(r.replicas),
            top + ph + 18.0,
            r.replicas
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">replicas</text>"#,
        left + pw / 2.0,
        h - 10.0
    );
    let line = |pts: Vec<(f64, f64)>, color: &str| {
        let p: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
        let dots: String = pts
            .iter()
            .map(|(a, b)| format!(r#"<circle cx="{a:.1}" cy="{b:.1}" r="3" fill="{color}"/>"#))
            .collect();
        format!(
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>{dots}"#,
            p.join(" ")
        )
    };
    s.push_str(&line(
        rows.iter().map(|r| (x(r.replicas), y_rps(r.rps))).collect(),
        "steelblue",
    ));
    s.push_str(&line(
        rows.iter()
            .filter_map(|r| r.p99_s.map(|p| (x(r.replicas), y_p99(p))))
            .collect(),
        "firebrick",
    ));
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Row> {
        vec![
            Row {
                replicas: 1,
                rps: 1000.0,
                p50_s: Some(0.01),
                p99_s: Some(0.05),
                failed: 0,
                requests: 10_000,
                cpu_cores: Some(0.9),
            },
            Row {
                replicas: 3,
                rps: 2500.0,
                p50_s: Some(0.004),
                p99_s: Some(0.02),
                failed: 0,
                requests: 25_000,
                cpu_cores: Some(1.8),
            },
        ]
    }

    #[test]
    fn the_table_shows_the_speed_up_against_the_first_count() {
        let t = table("web", &rows());
        assert!(t.contains("1.00x") && t.contains("2.50x"), "{t}");
        assert!(t.contains("1.80 cores"), "{t}");
        assert!(t.contains("50.00 ms"), "{t}");
    }

    #[test]
    fn the_chart_has_both_lines() {
        let s = svg("web", &rows());
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert_eq!(s.matches("<polyline").count(), 2);
        assert_eq!(s.matches("<circle").count(), 4);
    }
}
