//! Which time slot of a job is due (pure). A slot is due when it is the latest time of the
//! schedule at or before now, later than the baseline (the last claimed slot, or when the
//! job was deployed), and its window has not passed: the window ends at the next slot. So a
//! slot missed while the agent was away runs once when it comes back before the next one,
//! and earlier missed slots never pile up; a claimed slot is never due again.

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;

/// The slot to run now, if any.
pub fn due(cron: &Cron, baseline: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let slot = cron.find_previous_occurrence(&now, true).ok()?;
    if slot <= baseline {
        return None;
    }
    let next = cron.find_next_occurrence(&slot, false).ok()?;
    (now < next).then_some(slot)
}

/// The first slot after NOW.
pub fn next(cron: &Cron, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    cron.find_next_occurrence(&now, false).ok()
}

/// A slot's id, as claims, records and run names carry it: `20261201T101500Z`.
pub fn slot_id(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// The time of a slot id (`None` for a manual run's `manual-...`).
pub fn parse_slot_id(s: &str) -> Option<DateTime<Utc>> {
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ").ok()?;
    Some(Utc.from_utc_datetime(&naive))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::model::parse_schedule;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_current_slot_is_due_once() {
        let c = parse_schedule("* * * * *").unwrap();
        let deployed = t("2026-12-01T10:00:30Z");
        // Nothing before the first slot after deploying.
        assert_eq!(due(&c, deployed, t("2026-12-01T10:00:59Z")), None);
        let s = due(&c, deployed, t("2026-12-01T10:01:02Z")).unwrap();
        assert_eq!(s, t("2026-12-01T10:01:00Z"));
        // Claimed: the same slot is not due again within its minute.
        assert_eq!(due(&c, s, t("2026-12-01T10:01:40Z")), None);
        assert_eq!(
            due(&c, s, t("2026-12-01T10:02:00Z")),
            Some(t("2026-12-01T10:02:00Z"))
        );
    }

    #[test]
    fn a_slot_missed_while_away_runs_once_within_its_window() {
        let c = parse_schedule("0 * * * *").unwrap();
        let last = t("2026-12-01T09:00:00Z");
        // The agent was away at 10:00 and is back at 10:20: the 10:00 slot runs.
        assert_eq!(
            due(&c, last, t("2026-12-01T10:20:00Z")),
            Some(t("2026-12-01T10:00:00Z"))
        );
        // Back after 11:00: only the 11:00 slot (10:00's window has passed), not both.
        assert_eq!(
            due(&c, last, t("2026-12-01T11:05:00Z")),
            Some(t("2026-12-01T11:00:00Z"))
        );
    }

    #[test]
    fn seconds_schedules_and_slot_ids() {
        let c = parse_schedule("*/15 * * * * *").unwrap();
        let s = due(&c, t("2026-12-01T10:00:01Z"), t("2026-12-01T10:00:16Z")).unwrap();
        assert_eq!(slot_id(s), "20261201T100015Z");
        assert_eq!(parse_slot_id("20261201T100015Z"), Some(s));
        assert_eq!(parse_slot_id("manual-20261201T100015Z"), None);
        assert_eq!(next(&c, s), Some(t("2026-12-01T10:00:30Z")));
    }

    #[test]
    fn bad_schedules_say_why() {
        assert!(parse_schedule("* * *").unwrap_err().contains("3 fields"));
        assert!(parse_schedule("61 * * * *").is_err());
        assert!(parse_schedule("0 0 1 1 * 2030").is_err());
    }
}
