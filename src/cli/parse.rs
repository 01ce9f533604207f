//! The parsers of option values: durations, rates, sizes and `SVC=N`. One duration grammar
//! (humantime's: `500ms`, `30s`, `5m`, `1h30m`, `2 days`), read in one of two ways that differ
//! only on a bare number, as each command always has:
//!
//! - [`duration`] (the lifecycle commands' `--timeout`, `--interval`): a unit is required;
//!   `90` is refused.
//! - [`bench_duration`] (`twip bench -z` and `--timeout`, like ab and hey): a bare number is
//!   seconds (`90`, `1.5`, `0`); a negative or non-finite one is refused.
//!
//! Each keeps its own error message, so usage errors read as they always have.

use std::time::Duration;

/// How a number without a unit is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bare {
    /// Refused: a duration needs a unit.
    Refused,
    /// Seconds (may be fractional; not negative, not infinite).
    Seconds,
}

/// Why a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// A bare number that is negative or not finite (only with [`Bare::Seconds`]).
    BadNumber,
    /// Not in humantime's grammar: its message.
    Grammar(String),
}

/// The one duration parser: `s` trimmed, then a bare number as `bare` says, else humantime's
/// grammar.
pub fn parse_duration(s: &str, bare: Bare) -> Result<Duration, DurationError> {
    let s = s.trim();
    if bare == Bare::Seconds {
        if let Ok(secs) = s.parse::<f64>() {
            if secs.is_finite() && secs >= 0.0 {
                return Ok(Duration::from_secs_f64(secs));
            }
            return Err(DurationError::BadNumber);
        }
    }
    humantime::parse_duration(s).map_err(|e| DurationError::Grammar(e.to_string()))
}

/// A duration with a unit, such as `90s`, `5m`, `1h30m` or `250ms` (the lifecycle commands).
pub fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s, Bare::Refused).map_err(|e| match e {
        DurationError::Grammar(e) => {
            format!("`{s}` is not a duration ({e}); use e.g. 500ms, 30s, 5m, 1h")
        }
        DurationError::BadNumber => format!("`{s}` is not a duration"),
    })
}

/// A duration for `twip bench`: with a unit, or a bare number of seconds (`10`, `1.5`).
pub fn bench_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    parse_duration(s, Bare::Seconds).map_err(|e| match e {
        DurationError::BadNumber => format!("`{t}` is not a duration"),
        DurationError::Grammar(e) => format!("`{t}` is not a duration (10s, 1m, 500ms): {e}"),
    })
}

/// `twip bench --nap`: a duration up to 1 ms (`50us`, `0` for none).
pub fn nap(s: &str) -> Result<Duration, String> {
    let d = bench_duration(s)?;
    if d > Duration::from_millis(1) {
        return Err(format!(
            "`{}` is longer than 1ms: a response would wait that long to be read",
            s.trim()
        ));
    }
    Ok(d)
}

/// A share of requests: `0.01` or `1%`, between 0 and 1 (`--max-error-rate`).
pub fn rate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("`{s}` is not a rate (0.01 or 1%)"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("`{s}` is not between 0 and 1 (0%..100%)"));
    }
    Ok(v)
}

/// A size in bytes between 64 bytes and 64 MiB: `65536`, `64KiB`, `64k`, `1MiB`, `1m`
/// (`--max-header-size`).
pub fn size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        _ => return Err(format!("`{s}` is not a size (65536, 64KiB, 1MiB)")),
    };
    let n = num
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("`{s}` is not a size (65536, 64KiB, 1MiB)"))?;
    if !(64..=64 * 1024 * 1024).contains(&n) {
        return Err(format!("`{s}` is not between 64 bytes and 64 MiB"));
    }
    Ok(n)
}

/// `SERVICE=COUNT` (`twip scale`).
pub fn scale(s: &str) -> Result<(String, u64), String> {
    let (name, count) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not SERVICE=COUNT, e.g. web=3"))?;
    if name.is_empty() {
        return Err(format!(
            "`{s}` has no service name; use SERVICE=COUNT, e.g. web=3"
        ));
    }
    let n = count
        .parse::<u64>()
        .map_err(|_| format!("`{count}` in `{s}` is not a whole number of replicas"))?;
    Ok((name.to_string(), n))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;
    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn both_readings_accept_the_same_durations_with_units() {
        for (s, d) in [
            ("90s", S(90)),
            ("5m", S(300)),
            ("1h30m", S(5400)),
            ("250ms", MS(250)),
            (" 10s ", S(10)),
            ("2 days", S(2 * 86_400)),
            ("1m 30s", S(90)),
            ("0s", S(0)),
            ("1.5s", MS(1500)),
        ] {
            assert_eq!(duration(s).unwrap(), d, "{s:?}");
            assert_eq!(bench_duration(s).unwrap(), d, "{s:?}");
        }
    }

    #[test]
    fn both_readings_refuse_what_is_not_a_duration() {
        for s in ["soon", "", "10 parsecs", "s", "-1s", "10x"] {
            assert!(
                duration(s).unwrap_err().contains("is not a duration"),
                "{s:?}"
            );
            assert!(
                bench_duration(s).unwrap_err().contains("is not a duration"),
                "{s:?}"
            );
        }
    }

    #[test]
    fn a_bare_number_is_seconds_for_bench_only() {
        for (s, d) in [
            ("10", S(10)),
            ("1.5", MS(1500)),
            ("0", S(0)),
            (".25", MS(250)),
            ("+2", S(2)),
        ] {
            assert_eq!(bench_duration(s).unwrap(), d, "{s:?}");
        }
        for s in ["-1", "inf", "NaN", "-0.5"] {
            assert_eq!(
                bench_duration(s).unwrap_err(),
                format!("`{s}` is not a duration"),
                "{s:?}"
            );
        }
        for s in ["10", "1.5", "-1"] {
            assert!(duration(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn each_reading_keeps_its_message() {
        let e = duration("soon").unwrap_err();
        assert!(e.starts_with("`soon` is not a duration ("), "{e}");
        assert!(e.ends_with("); use e.g. 500ms, 30s, 5m, 1h"), "{e}");
        let e = bench_duration(" soon ").unwrap_err();
        assert!(
            e.starts_with("`soon` is not a duration (10s, 1m, 500ms): "),
            "{e}"
        );
        assert!(parse_duration("1.5", Bare::Refused).is_err());
        assert_eq!(
            parse_duration("-1", Bare::Seconds),
            Err(DurationError::BadNumber)
        );
    }

    #[test]
    fn rates() {
        assert_eq!(rate("1%").unwrap(), 0.01);
        assert_eq!(rate(" 2.5 % ").unwrap(), 0.025);
        assert_eq!(rate("0.05").unwrap(), 0.05);
        assert_eq!(rate("0").unwrap(), 0.0);
        assert_eq!(rate("1").unwrap(), 1.0);
        assert_eq!(rate("100%").unwrap(), 1.0);
        assert!(rate("2").unwrap_err().contains("between 0 and 1"));
        assert!(rate("101%").unwrap_err().contains("between 0 and 1"));
        assert!(rate("-0.1").unwrap_err().contains("between 0 and 1"));
        assert!(rate("x").unwrap_err().contains("is not a rate"));
        assert!(rate("%").unwrap_err().contains("is not a rate"));
    }

    #[test]
    fn sizes() {
        assert_eq!(size("65536").unwrap(), 65536);
        assert_eq!(size("64KiB").unwrap(), 65536);
        assert_eq!(size("64k").unwrap(), 65536);
        assert_eq!(size("64kb").unwrap(), 65536);
        assert_eq!(size("1 MiB").unwrap(), 1 << 20);
        assert_eq!(size("1m").unwrap(), 1 << 20);
        assert_eq!(size("64b").unwrap(), 64);
        assert_eq!(size("64MiB").unwrap(), 64 << 20);
        assert!(size("1").unwrap_err().contains("between"));
        assert!(size("65MiB").unwrap_err().contains("between"));
        assert!(size("lots").unwrap_err().contains("is not a size"));
        assert!(size("1GiB").unwrap_err().contains("is not a size"));
        assert!(size("-1").is_err());
        assert!(size("99999999999999999999").is_err());
    }

    #[test]
    fn scale_specs_parse_and_reject_nonsense() {
        assert_eq!(scale("web=3").unwrap(), ("web".to_string(), 3));
        assert_eq!(scale("web=0").unwrap(), ("web".to_string(), 0));
        assert_eq!(
            scale("a=b=1").unwrap_err(),
            "`b=1` in `a=b=1` is not a whole number of replicas"
        );
        assert!(scale("web").unwrap_err().contains("SERVICE=COUNT"));
        assert!(scale("=3").unwrap_err().contains("no service name"));
        assert!(scale("web=-1").unwrap_err().contains("whole number"));
        assert!(scale("web=").unwrap_err().contains("whole number"));
    }
}
