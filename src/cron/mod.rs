//! The cron matcher: uWSGI's five integers and crontab strings, on civil (wall-clock) minutes.
//!
//! A spec is five bit sets (minute, hour, day of month, month, weekday) plus the rule that joins
//! day-of-month and weekday. uWSGI's integers map onto the same sets: `v >= 0` is the single value
//! `v`, and `v < 0` is every value divisible by `-v` (`-1` is "any"; day and month count from 1,
//! so day `-5` is 5, 10, ..., 30). A spec that could never fire is refused with a [`CronError`]
//! naming the field and the value (uWSGI accepts an out-of-range value, or day 31 of April, and
//! the entry silently never fires): so every spec that exists has a next fire time. uWSGI ORs day and weekday only when both integers are `>= 0`; crontab strings
//! follow Vixie cron: OR when neither field starts with `*`.
//!
//! [`CronSpec::next_after`] jumps field by field over the sets (a few dozen steps), it does not
//! scan minutes. Time zones are the caller's business ([`crate::cron::tz`]): this module only
//! sees civil minutes.

pub mod civil;
mod parse;
pub mod tz;

pub use civil::Civil;

/// Why a cron entry is refused; names the field and the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error("a cron spec has 5 fields (minute hour day month weekday), got {0}: {1:?}")]
    FieldCount(usize, String),
    #[error("cron {field} field: {item:?} is not a number, a name, '*', a range or a step")]
    Item { field: &'static str, item: String },
    #[error("cron {field} field: {value} is out of range {lo}-{hi}")]
    Range {
        field: &'static str,
        value: u32,
        lo: u32,
        hi: u32,
    },
    #[error("cron {field} field: step must be at least 1 in {item:?}")]
    Step { field: &'static str, item: String },
    #[error(
        "unknown cron macro {0:?} (known: @yearly @annually @monthly @weekly @daily @midnight @hourly)"
    )]
    Macro(String),
    /// One of uWSGI's integers names no value of its field.
    #[error(
        "cron {field} {value} is out of range: a {field} is {lo} to {hi}{extra}, or -N for every {field} divisible by N"
    )]
    IntRange {
        field: &'static str,
        value: i64,
        lo: i64,
        hi: i64,
        extra: &'static str,
    },
    /// uWSGI's `-N` with no value of the field divisible by N.
    #[error("cron {field} {value} matches no {field} (no {field} is divisible by {n})", n = value.unsigned_abs())]
    NoMultiple { field: &'static str, value: i64 },
    /// The days asked for exist in none of the months asked for (day 31 of April, February 30).
    #[error(
        "cron day {day} never falls in month {month} (no such date): the entry would never fire"
    )]
    NoSuchDate { day: String, month: String },
    /// Five numbers that name no wall-clock minute (month 13, February 30, hour 24...).
    #[error("not a valid wall-clock minute: {year}-{month:02}-{day:02} {hour:02}:{minute:02}")]
    BadCivil {
        year: i32,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
    },
    #[error("unknown time zone {0:?}")]
    UnknownZone(String),
    /// A unix time that is not finite.
    #[error("after must be a finite unix time, got {0}")]
    NotFinite(tz::Secs),
    /// A unix time outside the calendar's range.
    #[error("time out of range: {0}")]
    OutOfRange(tz::Secs),
}

/// A cron entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CronSpec {
    /// Bits 0..=59.
    pub minutes: u64,
    /// Bits 0..=23.
    pub hours: u32,
    /// Bits 1..=31.
    pub days: u32,
    /// Bits 1..=12.
    pub months: u16,
    /// Bits 0..=6, 0 = Sunday.
    pub weekdays: u8,
    /// Day of month OR weekday (else AND).
    pub day_or_weekday: bool,
}

fn divisible_bits(lo: u32, hi: u32, n: u32) -> u64 {
    (lo..=hi)
        .filter(|x| x % n == 0)
        .fold(0u64, |acc, x| acc | (1 << x))
}

/// One uWSGI integer field as a bit set over `lo..=hi` (`extra_hi`: a larger value also taken,
/// weekday 7), or why it is refused.
fn uwsgi_field(
    field: &'static str,
    v: i64,
    lo: u32,
    hi: u32,
    extra: (u32, &'static str),
) -> Result<u64, CronError> {
    let bits = if v >= 0 {
        let top = hi.max(extra.0);
        if !(i64::from(lo)..=i64::from(top)).contains(&v) {
            return Err(CronError::IntRange {
                field,
                value: v,
                lo: i64::from(lo),
                hi: i64::from(top),
                extra: extra.1,
            });
        }
        // Only weekday has an extra value (7, Sunday): it folds onto the field's low end.
        if v > i64::from(hi) { 1 << lo } else { 1 << v }
    } else {
        divisible_bits(lo, hi, v.unsigned_abs().min(u64::from(u32::MAX)) as u32)
    };
    if bits == 0 {
        return Err(CronError::NoMultiple { field, value: v });
    }
    Ok(bits)
}

/// A bit set as a crontab list (`1,15,30`).
fn bits_text(bits: u64) -> String {
    (0..64)
        .filter(|b| bits & (1 << b) != 0)
        .map(|b| b.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

impl CronSpec {
    /// uWSGI's `add_cron(sig, minute, hour, day, month, weekday)` integers: `-1` any, `-N` every
    /// value divisible by N, weekday 0 or 7 Sunday. A value out of its field's range, a `-N`
    /// that matches nothing, or a day that none of the months has is refused.
    pub fn from_uwsgi(
        minute: i64,
        hour: i64,
        day: i64,
        month: i64,
        weekday: i64,
    ) -> Result<CronSpec, CronError> {
        let spec = CronSpec {
            minutes: uwsgi_field("minute", minute, 0, 59, (0, ""))?,
            hours: uwsgi_field("hour", hour, 0, 23, (0, ""))? as u32,
            days: uwsgi_field("day", day, 1, 31, (0, ""))? as u32,
            months: uwsgi_field("month", month, 1, 12, (0, ""))? as u16,
            // uWSGI compares a configured weekday 7 as Sunday.
            weekdays: uwsgi_field("weekday", weekday, 0, 6, (7, " (0 and 7 are Sunday)"))? as u8,
            day_or_weekday: day >= 0 && weekday >= 0,
        };
        spec.check_dates(&day.to_string(), &month.to_string())?;
        Ok(spec)
    }

    /// Refuse a spec whose days exist in none of its months (day 31 with month 4, 6, 9 or 11;
    /// day 30 or 31 with month 2), unless the weekday, ORed with the day, rescues it. `day` and
    /// `month` are the fields as the caller wrote them, for the message.
    fn check_dates(&self, day: &str, month: &str) -> Result<(), CronError> {
        if self.day_or_weekday && self.weekdays != 0 {
            return Ok(());
        }
        // Longest each month gets (February 29 in leap years): bits 1..=len.
        let some_date = (1..=12u8).any(|m| {
            let len = civil::days_in_month(2000, m);
            self.months & (1 << m) != 0 && self.days & (((1u64 << (len + 1)) - 2) as u32) != 0
        });
        if some_date {
            return Ok(());
        }
        let text = |given: &str, bits: u64| {
            if !given
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b',')
            {
                format!("{given} ({})", bits_text(bits))
            } else {
                given.to_owned()
            }
        };
        Err(CronError::NoSuchDate {
            day: text(day, u64::from(self.days)),
            month: text(month, u64::from(self.months)),
        })
    }

    /// A crontab line's five fields (`"*/5 9-17 * * mon-fri"`) or a `@daily`-style macro.
    pub fn parse(text: &str) -> Result<CronSpec, CronError> {
        parse::parse(text)
    }

    /// The five `uwsgi.add_cron` integers that fire exactly when this spec does, if uWSGI's
    /// syntax can say it (each field any, one value, or "divisible by N"; day and weekday ORed
    /// only when both are single values).
    pub fn to_uwsgi(&self) -> Option<[i64; 5]> {
        fn field(bits: u64, lo: u32, hi: u32) -> Option<i64> {
            let full = divisible_bits(lo, hi, 1);
            if bits == full {
                return Some(-1);
            }
            if bits.count_ones() == 1 {
                return Some(i64::from(bits.trailing_zeros()));
            }
            (2..=hi)
                .find(|&n| divisible_bits(lo, hi, n) == bits)
                .map(|n| -i64::from(n))
        }
        let out = [
            field(self.minutes, 0, 59)?,
            field(u64::from(self.hours), 0, 23)?,
            field(u64::from(self.days), 1, 31)?,
            field(u64::from(self.months), 1, 12)?,
            field(u64::from(self.weekdays), 0, 6)?,
        ];
        // Re-derive and compare: this also checks the day/weekday join.
        (CronSpec::from_uwsgi(out[0], out[1], out[2], out[3], out[4]).as_ref() == Ok(self))
            .then_some(out)
    }

    /// The days (bits 1..=dim) of a month that match the day-of-month/weekday rule.
    fn day_mask(&self, year: i32, month: u8, dim: u8) -> u32 {
        let first = u32::from(Civil::new(year, month, 1, 0, 0).weekday());
        let w = u32::from(self.weekdays);
        // Rotate so bit i means "weekday of day i+1", then repeat it every 7 days from day 1.
        let week = (w >> first | w << (7 - first)) & 0x7f;
        let mut weekday_days = 0u32;
        let mut k = 1;
        while k <= 31 {
            weekday_days |= week << k;
            k += 7;
        }
        let days = if self.day_or_weekday {
            self.days | weekday_days
        } else {
            self.days & weekday_days
        };
        days & (((1u64 << (dim + 1)) - 2) as u32)
    }

    fn day_matches(&self, c: &Civil) -> bool {
        let d = self.days & (1 << c.day) != 0;
        let w = self.weekdays & (1 << c.weekday()) != 0;
        if self.day_or_weekday { d || w } else { d && w }
    }

    /// True if the civil minute `c` matches.
    pub fn matches(&self, c: &Civil) -> bool {
        self.minutes & (1 << c.minute) != 0
            && self.hours & (1 << c.hour) != 0
            && self.months & (1 << c.month) != 0
            && self.day_matches(c)
    }

    /// True if no minute can ever match (an empty field, or a day that no month has).
    fn never(&self) -> bool {
        self.minutes == 0
            || self.hours == 0
            || self.months == 0
            || (self.day_or_weekday && self.days == 0 && self.weekdays == 0)
            || (!self.day_or_weekday && (self.days == 0 || self.weekdays == 0))
    }

    /// The first matching civil minute strictly after `after`, or `None` if there is none
    /// within the 400-year Gregorian cycle (then there is none ever).
    pub fn next_after(&self, after: &Civil) -> Option<Civil> {
        if self.never() {
            return None;
        }
        let mut c = after.plus_minute();
        let limit = after.year.saturating_add(401);
        while c.year <= limit {
            if self.months & (1 << c.month) == 0 {
                match next_bit(u64::from(self.months), c.month as u32 + 1, 12) {
                    Some(m) => c = Civil::new(c.year, m as u8, 1, 0, 0),
                    None => {
                        c = Civil::new(c.year + 1, first_bit(u64::from(self.months)) as u8, 1, 0, 0)
                    }
                }
                continue;
            }
            if !self.day_matches(&c) {
                // Jump straight to the next matching day of this month, or the next month.
                let dim = civil::days_in_month(c.year, c.month);
                let mask = self.day_mask(c.year, c.month, dim);
                c = match next_bit(u64::from(mask), u32::from(c.day) + 1, u32::from(dim)) {
                    Some(d) => Civil::new(c.year, c.month, d as u8, 0, 0),
                    None => Civil::new(c.year, c.month, dim, 0, 0).next_day(),
                };
                continue;
            }
            if self.hours & (1 << c.hour) == 0 {
                match next_bit(u64::from(self.hours), c.hour as u32 + 1, 23) {
                    Some(h) => c = Civil::new(c.year, c.month, c.day, h as u8, 0),
                    None => c = c.next_day(),
                }
                continue;
            }
            if self.minutes & (1 << c.minute) == 0 {
                match next_bit(self.minutes, c.minute as u32 + 1, 59) {
                    Some(m) => c.minute = m as u8,
                    None => {
                        c = c.next_hour();
                    }
                }
                continue;
            }
            return Some(c);
        }
        None
    }
}

fn first_bit(mask: u64) -> u32 {
    mask.trailing_zeros()
}

/// The lowest set bit of `mask` in `from..=hi`.
fn next_bit(mask: u64, from: u32, hi: u32) -> Option<u32> {
    if from > hi || from >= 64 {
        return None;
    }
    let m = mask >> from;
    if m == 0 {
        return None;
    }
    let b = from + m.trailing_zeros();
    (b <= hi).then_some(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spec(mi: i64, h: i64, d: i64, mo: i64, w: i64) -> CronSpec {
        CronSpec::from_uwsgi(mi, h, d, mo, w).unwrap()
    }

    fn brute_next(spec: &CronSpec, after: &Civil, max_minutes: u32) -> Option<Civil> {
        let mut c = after.plus_minute();
        for _ in 0..max_minutes {
            if spec.matches(&c) {
                return Some(c);
            }
            c = c.plus_minute();
        }
        None
    }

    #[test]
    fn uwsgi_table() {
        // Saturday 2026-11-28 is weekday 6.
        let c = Civil::new(2026, 11, 28, 10, 7);
        assert_eq!(c.weekday(), 6);
        let every = spec(-1, -1, -1, -1, -1);
        assert_eq!(every.next_after(&c), Some(Civil::new(2026, 11, 28, 10, 8)));
        let five = spec(-5, -1, -1, -1, -1);
        assert_eq!(five.next_after(&c), Some(Civil::new(2026, 11, 28, 10, 10)));
        let even_hours = spec(0, -2, -1, -1, -1);
        assert_eq!(
            even_hours.next_after(&c),
            Some(Civil::new(2026, 11, 28, 12, 0))
        );
        let sunday = spec(0, 9, -1, -1, 7);
        assert_eq!(sunday.next_after(&c), Some(Civil::new(2026, 11, 29, 9, 0)));
        let first_or_friday = spec(0, 0, 1, -1, 5);
        assert_eq!(
            first_or_friday.next_after(&c),
            Some(Civil::new(2026, 12, 1, 0, 0))
        );
        let even_mondays = spec(0, 0, -2, -1, 1);
        // Mondays after 2026-11-28: 30 Nov (even), so that one.
        assert_eq!(
            even_mondays.next_after(&c),
            Some(Civil::new(2026, 11, 30, 0, 0))
        );
        let tens = spec(0, 0, -10, -1, -1);
        assert_eq!(tens.next_after(&c), Some(Civil::new(2026, 11, 30, 0, 0)));
        let sevens = spec(-7, -1, -1, -1, -1);
        assert_eq!(
            sevens.next_after(&Civil::new(2026, 1, 1, 0, 56)),
            Some(Civil::new(2026, 1, 1, 1, 0))
        );
        let leap = spec(0, 0, 29, 2, -1);
        assert_eq!(leap.next_after(&c), Some(Civil::new(2028, 2, 29, 0, 0)));
    }

    #[test]
    fn to_uwsgi_when_expressible() {
        assert_eq!(
            CronSpec::parse("*/5 * * * *").unwrap().to_uwsgi(),
            Some([-5, -1, -1, -1, -1])
        );
        assert_eq!(
            CronSpec::parse("40 2 * * *").unwrap().to_uwsgi(),
            Some([40, 2, -1, -1, -1])
        );
        assert_eq!(
            CronSpec::parse("0 0 1 * 5").unwrap().to_uwsgi(),
            Some([0, 0, 1, -1, 5])
        );
        assert_eq!(
            CronSpec::parse("0 0 * * 7").unwrap().to_uwsgi(),
            Some([0, 0, -1, -1, 0])
        );
        assert_eq!(
            CronSpec::parse("0 */2 * * *").unwrap().to_uwsgi(),
            Some([0, -2, -1, -1, -1])
        );
        // crontab's */5 days are 1, 6, 11...; uWSGI's -5 is 5, 10, 15...
        assert_eq!(CronSpec::parse("0 0 */5 * *").unwrap().to_uwsgi(), None);
        assert_eq!(CronSpec::parse("0 9-17 * * *").unwrap().to_uwsgi(), None);
        assert_eq!(CronSpec::parse("0 0 1 * 1-5").unwrap().to_uwsgi(), None);
        for ints in [
            [-7, -1, -1, -1, -1],
            [0, 0, -10, -1, -1],
            [30, 3, -1, -2, 1],
        ] {
            let s = spec(ints[0], ints[1], ints[2], ints[3], ints[4]);
            assert_eq!(s.to_uwsgi(), Some(ints));
        }
    }

    #[test]
    fn django_seed_entry() {
        // @cron(40, 2, -1, -1, -1): 02:40 every day.
        let s = spec(40, 2, -1, -1, -1);
        assert_eq!(
            s.next_after(&Civil::new(2026, 12, 31, 2, 40)),
            Some(Civil::new(2027, 1, 1, 2, 40))
        );
    }

    #[test]
    fn uwsgi_integers_that_never_fire_are_refused() {
        let err = |f: [i64; 5]| CronSpec::from_uwsgi(f[0], f[1], f[2], f[3], f[4]).unwrap_err();
        for (f, field, value) in [
            ([60, -1, -1, -1, -1], "minute", 60),
            ([0, 24, -1, -1, -1], "hour", 24),
            ([0, 0, 32, -1, -1], "day", 32),
            ([0, 0, 0, -1, -1], "day", 0),
            ([0, 0, -1, 13, -1], "month", 13),
            ([0, 0, -1, 0, -1], "month", 0),
            ([0, 0, -1, -1, 8], "weekday", 8),
        ] {
            let e = err(f);
            assert!(
                matches!(e, CronError::IntRange { field: n, value: v, .. } if n == field && v == value),
                "{f:?}: {e:?}"
            );
            let text = e.to_string();
            assert!(
                text.contains(field) && text.contains(&value.to_string()),
                "{text}"
            );
        }
        assert!(matches!(
            err([0, 0, -32, -1, -1]),
            CronError::NoMultiple {
                field: "day",
                value: -32
            }
        ));
        assert!(matches!(
            err([0, 0, -1, -13, -1]),
            CronError::NoMultiple {
                field: "month",
                value: -13
            }
        ));
        for f in [
            [0, 0, 31, 2, -1],
            [0, 0, 30, 2, -1],
            [0, 0, 31, 4, -1],
            [0, 0, 31, 6, -1],
            [0, 0, 31, 9, -1],
            [0, 0, 31, 11, -1],
            [0, 0, -30, 2, -1],
            [0, 0, 31, -11, -1],
        ] {
            let e = err(f);
            assert!(matches!(e, CronError::NoSuchDate { .. }), "{f:?}: {e:?}");
            let text = e.to_string();
            assert!(
                text.contains(&format!("day {}", f[2]))
                    && text.contains(&format!("month {}", f[3])),
                "{text}"
            );
        }
        // Kept: weekday 7 (Sunday), -N meaning every N, February 29, and a day ORed with a
        // weekday (uWSGI ORs them when both are values: day 31 of April, or any Monday).
        assert_eq!(spec(0, 0, -1, -1, 7).weekdays, 1);
        assert_eq!(spec(-70, -1, -1, -1, -8).minutes, 1);
        assert!(CronSpec::from_uwsgi(0, 0, 29, 2, -1).is_ok());
        assert!(CronSpec::from_uwsgi(0, 0, 31, 4, 1).is_ok());
        assert!(CronSpec::from_uwsgi(59, 23, 31, 12, 6).is_ok());
    }

    #[test]
    fn crontab_dates_that_never_occur_are_refused() {
        for (text, day, month) in [
            ("0 0 31 4 *", "day 31", "month 4"),
            ("0 0 30,31 feb *", "day 30,31", "month feb"),
            (
                "0 0 31 4,6,9,11 *",
                "day 31",
                "month 4,6,9,11 (no such date)",
            ),
            ("0 0 30-31 2-2 *", "day 30-31 (30,31)", "month 2-2 (2)"),
        ] {
            let e = CronSpec::parse(text).unwrap_err();
            assert!(matches!(e, CronError::NoSuchDate { .. }), "{text}: {e:?}");
            let msg = e.to_string();
            assert!(msg.contains(day) && msg.contains(month), "{msg}");
        }
        // ORed with a weekday (neither field starts with '*'): Mondays of April fire.
        assert!(CronSpec::parse("0 0 31 apr mon").is_ok());
        // ANDed (the day starts with '*'), a day every month has: fine.
        assert!(CronSpec::parse("0 0 */29 feb mon").is_ok());
        assert!(CronSpec::parse("0 0 29 2 *").is_ok());
        assert!(CronSpec::parse("0 0 */30 2 *").is_ok()); // days 1 and 31: the 1st exists
    }

    fn field() -> impl Strategy<Value = i64> {
        prop_oneof![-1i64..=-1, -12i64..=-2, -40i64..=-13, 0i64..=62]
    }

    /// A crontab field over `lo..=hi` (values may stray past `hi`, to be refused).
    fn crontab_field(lo: u32, hi: u32) -> impl Strategy<Value = String> {
        let item = prop_oneof![
            Just("*".to_owned()),
            (1..=hi + 1).prop_map(|n| format!("*/{n}")),
            (lo..=hi + 1).prop_map(|v| v.to_string()),
            (lo..=hi, 0..=hi).prop_map(move |(a, n)| format!("{a}-{}", (a + n).min(hi))),
            (lo..=hi, 1..=hi).prop_map(|(a, n)| format!("{a}/{n}")),
        ];
        proptest::collection::vec(item, 1..3).prop_map(|v| v.join(","))
    }

    fn crontab() -> impl Strategy<Value = String> {
        (
            crontab_field(0, 59),
            crontab_field(0, 23),
            crontab_field(1, 31),
            crontab_field(1, 12),
            crontab_field(0, 7),
        )
            .prop_map(|(a, b, c, d, e)| format!("{a} {b} {c} {d} {e}"))
    }

    fn start() -> impl Strategy<Value = Civil> {
        (1970i32..2400, 1u8..=12, 1u8..=28, 0u8..24, 0u8..60)
            .prop_map(|(y, mo, d, h, mi)| Civil::new(y, mo, d, h, mi))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn next_after_agrees_with_brute_force(
            mi in field(), h in field(), d in field(), mo in field(), w in -8i64..=8,
            y in 1990i32..2100, month in 1u8..=12, day in 1u8..=28, hour in 0u8..24, minute in 0u8..60,
        ) {
            let Ok(spec) = CronSpec::from_uwsgi(mi, h, d, mo, w) else {
                return Ok(());
            };
            let start = Civil::new(y, month, day, hour, minute);
            // Two years of minutes covers every spec whose next match is that close.
            let brute = brute_next(&spec, &start, 2 * 366 * 24 * 60);
            let fast = spec.next_after(&start);
            if let Some(b) = brute {
                prop_assert_eq!(fast, Some(b));
            } else if let Some(f) = fast {
                prop_assert!(f > start);
                prop_assert!(spec.matches(&f));
                // Nothing matched in between (checked by the brute window being shorter).
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Whatever uWSGI integers are accepted fire again, from any minute: a refused spec is
        /// the only way to have none.
        #[test]
        fn every_accepted_uwsgi_spec_has_a_next_fire(
            mi in field(), h in field(), d in field(), mo in field(), w in -9i64..=9, at in start(),
        ) {
            if let Ok(spec) = CronSpec::from_uwsgi(mi, h, d, mo, w) {
                let next = spec.next_after(&at);
                prop_assert!(next.is_some(), "{:?} accepted but never fires after {:?}", (mi, h, d, mo, w), at);
                prop_assert!(spec.matches(&next.unwrap()));
            }
        }

        #[test]
        fn every_accepted_crontab_has_a_next_fire(text in crontab(), at in start()) {
            if let Ok(spec) = CronSpec::parse(&text) {
                let next = spec.next_after(&at);
                prop_assert!(next.is_some(), "{text:?} accepted but never fires after {at:?}");
                prop_assert!(spec.matches(&next.unwrap()));
            }
        }
    }
}
