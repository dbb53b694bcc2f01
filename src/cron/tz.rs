//! Cron in a time zone: from an instant to the next instant whose wall-clock minute matches.
//!
//! Each civil minute fires at most once. A minute that a DST change skips fires once, at the
//! first instant after the gap that has its wall-clock reading (jiff's "compatible" rule); a
//! minute that a DST change repeats fires once, at its first occurrence.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use super::{Civil, CronSpec};

fn to_civil(dt: DateTime) -> Civil {
    Civil::new(
        i32::from(dt.year()),
        dt.month() as u8,
        dt.day() as u8,
        dt.hour() as u8,
        dt.minute() as u8,
    )
}

/// The wall-clock minute of `at` in `tz`.
pub fn civil_at(at: Timestamp, tz: &TimeZone) -> Civil {
    to_civil(tz.to_datetime(at))
}

/// The instant at which the wall-clock minute `c` starts in `tz`.
pub fn instant_of(c: &Civil, tz: &TimeZone) -> Option<Timestamp> {
    let dt = jiff::civil::date(c.year as i16, c.month as i8, c.day as i8).at(
        c.hour as i8,
        c.minute as i8,
        0,
        0,
    );
    tz.to_ambiguous_timestamp(dt).compatible().ok()
}

/// The first instant strictly after `after` whose wall-clock minute in `tz` matches `spec`
/// and that is the first occurrence of that minute.
pub fn next_fire(spec: &CronSpec, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
    let mut c = civil_at(after, tz);
    // A bounded number of candidates: only DST folds can make one fall at or before `after`.
    for _ in 0..10_000 {
        let next = spec.next_after(&c)?;
        let at = instant_of(&next, tz)?;
        if at > after {
            return Some(at);
        }
        c = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tz(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn skipped_minute_fires_once_after_the_gap() {
        // Europe/Berlin springs forward 2026-03-29 02:00 -> 03:00.
        let s = CronSpec::parse("30 2 * * *").unwrap();
        let z = tz("Europe/Berlin");
        let fire = next_fire(&s, ts("2026-03-28T12:00:00Z"), &z).unwrap();
        assert_eq!(fire, ts("2026-03-29T01:30:00Z")); // 03:30 CEST
        let again = next_fire(&s, fire, &z).unwrap();
        assert_eq!(again, ts("2026-03-30T00:30:00Z")); // next day 02:30 CEST
    }

    #[test]
    fn repeated_minute_fires_once() {
        // Europe/Berlin falls back 2026-10-25 03:00 CEST -> 02:00 CET; 02:30 happens twice.
        let s = CronSpec::parse("30 2 * * *").unwrap();
        let z = tz("Europe/Berlin");
        let fire = next_fire(&s, ts("2026-10-24T12:00:00Z"), &z).unwrap();
        assert_eq!(fire, ts("2026-10-25T00:30:00Z")); // first 02:30, CEST
        let again = next_fire(&s, fire, &z).unwrap();
        assert_eq!(again, ts("2026-10-26T01:30:00Z")); // not the second 02:30
    }
}
