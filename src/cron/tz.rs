//! Cron in a time zone: from an instant to the next instant whose wall-clock minute matches.
//!
//! Each civil minute fires at most once. A minute that a DST change skips fires once, at the
//! first instant after the gap that has its wall-clock reading (jiff's "compatible" rule); a
//! minute that a DST change repeats fires once, at its first occurrence.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use super::{Civil, CronError, CronSpec};

/// Unix seconds as given (a float), compared by bits so that errors carrying one stay `Eq`.
#[derive(Debug, Clone, Copy)]
pub struct Secs(pub f64);

impl PartialEq for Secs {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Secs {}

impl std::fmt::Display for Secs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The time zone named `name` (IANA), or the system's for None.
pub fn zone(name: Option<&str>) -> Result<TimeZone, CronError> {
    match name {
        None => Ok(TimeZone::system()),
        Some(n) => TimeZone::get(n).map_err(|_| CronError::UnknownZone(n.to_owned())),
    }
}

/// [`next_fire`] for an instant given as unix seconds (a float; fractions of a second inside a
/// minute do not change the answer) in the zone named `tz` (None: the system's). Returns unix
/// seconds.
pub fn next_fire_secs(
    spec: &CronSpec,
    after: f64,
    tz: Option<&str>,
) -> Result<Option<i64>, CronError> {
    let zone = zone(tz)?;
    if !after.is_finite() {
        return Err(CronError::NotFinite(Secs(after)));
    }
    let ts = Timestamp::from_second(after.floor() as i64)
        .map_err(|_| CronError::OutOfRange(Secs(after)))?;
    Ok(next_fire(spec, ts, &zone).map(|t| t.as_second()))
}

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

/// The instant at which the wall-clock minute `c` starts in `tz`; `None` outside jiff's range
/// (years -9999..=9999).
pub fn instant_of(c: &Civil, tz: &TimeZone) -> Option<Timestamp> {
    let year = i16::try_from(c.year).ok()?;
    let dt = jiff::civil::Date::new(year, c.month as i8, c.day as i8)
        .ok()?
        .at(c.hour as i8, c.minute as i8, 0, 0);
    tz.to_ambiguous_timestamp(dt).compatible().ok()
}

/// Longest wall-clock shift a transition can make (Samoa skipped a whole day in 2011), with margin.
const MAX_SHIFT_SECS: i64 = 26 * 3600;

/// The first instant strictly after `after` whose wall-clock minute in `tz` matches `spec`.
///
/// Away from offset transitions wall-clock order is instant order, so the answer is the first
/// matching minute after `after`'s own. Near a transition (rare: a window of a day around it)
/// a minute skipped by a gap lands later than its wall-clock neighbours, and one shifted past
/// `after` may have a wall-clock reading before `after`'s; there every candidate in the window
/// is mapped and the earliest instant wins.
pub fn next_fire(spec: &CronSpec, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
    let simple = next_in_wall_order(spec, after, tz);
    // Only a transition within a day of `after` or of the answer can reorder candidates.
    let near = |t: Timestamp| -> Option<bool> {
        let from = Timestamp::from_second(t.as_second().checked_sub(MAX_SHIFT_SECS)?).ok()?;
        Some(tz.following(from).next().is_some_and(|tr| {
            tr.timestamp().as_second() <= t.as_second().saturating_add(MAX_SHIFT_SECS)
        }))
    };
    let near_transition = near(after)? || simple.map_or(Some(false), near)?;
    if !near_transition {
        return simple;
    }
    let window_start =
        Timestamp::from_second(after.as_second().checked_sub(MAX_SHIFT_SECS)?).ok()?;
    // Candidates whose wall-clock reading is past the answer's by more than any shift cannot
    // land before it; without an answer, a day past `after` bounds the search.
    let window_end = simple
        .unwrap_or(after)
        .as_second()
        .saturating_add(MAX_SHIFT_SECS);
    let mut best = simple;
    let mut c = civil_at(window_start, tz);
    let stop = civil_at(Timestamp::from_second(window_end).ok()?, tz);
    while let Some(next) = spec.next_after(&c) {
        if next > stop {
            break;
        }
        if let Some(at) = instant_of(&next, tz) {
            if at > after && best.is_none_or(|b| at < b) {
                best = Some(at);
            }
        }
        c = next;
    }
    best
}

/// The first matching wall-clock minute after `after`'s that maps past `after`.
fn next_in_wall_order(spec: &CronSpec, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
    let mut c = civil_at(after, tz);
    // Bounded: only a fold can map a later wall-clock minute to an instant at or before `after`.
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
    fn gap_shorter_than_an_hour_keeps_instant_order() {
        // Lord Howe springs forward 02:00 -> 02:30 on 2025-10-05: wall 02:00 fires at 02:30 and
        // wall 02:10 at 02:40; neither is lost.
        let s = CronSpec::parse("0,10 2 * * *").unwrap();
        let z = tz("Australia/Lord_Howe");
        let first = next_fire(&s, ts("2025-10-04T12:00:00Z"), &z).unwrap();
        assert_eq!(first, ts("2025-10-04T15:30:00Z")); // 02:30 +11
        assert_eq!(
            next_fire(&s, first, &z).unwrap(),
            ts("2025-10-04T15:40:00Z")
        );
    }

    #[test]
    fn minute_shifted_past_after_is_not_missed() {
        // Berlin 2026-03-29: wall 02:15 does not exist and fires at 03:15 CEST; asked at 03:05.
        let s = CronSpec::parse("15 2 * * *").unwrap();
        let z = tz("Europe/Berlin");
        assert_eq!(
            next_fire(&s, ts("2026-03-29T01:05:00Z"), &z).unwrap(),
            ts("2026-03-29T01:15:00Z")
        );
    }

    #[test]
    fn beyond_year_9999_is_none() {
        let s = CronSpec::parse("0 0 29 2 *").unwrap();
        assert_eq!(
            next_fire(&s, ts("9996-03-01T00:00:00Z"), &TimeZone::UTC),
            None
        );
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

    #[test]
    fn float_instants_and_zone_names_are_checked() {
        let s = CronSpec::parse("0 * * * *").unwrap();
        assert_eq!(next_fire_secs(&s, 3599.9, Some("UTC")).unwrap(), Some(3600));
        assert_eq!(
            next_fire_secs(&s, 0.0, Some("Nowhere/City")).unwrap_err(),
            CronError::UnknownZone("Nowhere/City".into())
        );
        assert_eq!(
            next_fire_secs(&s, f64::NAN, Some("UTC"))
                .unwrap_err()
                .to_string(),
            "after must be a finite unix time, got NaN"
        );
        assert_eq!(
            next_fire_secs(&s, 1e13, Some("UTC"))
                .unwrap_err()
                .to_string(),
            "time out of range: 10000000000000"
        );
    }
}
