//! The cron matcher: uWSGI's five integers and crontab strings, on civil (wall-clock) minutes.
//!
//! A spec is five bit sets (minute, hour, day of month, month, weekday) plus the rule that joins
//! day-of-month and weekday. uWSGI's integers map onto the same sets: `v >= 0` is the single value
//! `v` (an out-of-range value is the empty set, so the entry never fires, as in uWSGI), and `v < 0`
//! is every value divisible by `-v` (`-1` is "any"; day and month count from 1, so day `-5` is
//! 5, 10, ..., 30). uWSGI ORs day and weekday only when both integers are `>= 0`; crontab strings
//! follow Vixie cron: OR when neither field starts with `*`.
//!
//! [`CronSpec::next_after`] jumps field by field over the sets (a few dozen steps), it does not
//! scan minutes. Time zones are the caller's business ([`crate::cron::tz`]): this module only
//! sees civil minutes.

pub mod civil;
mod parse;
pub mod tz;

pub use civil::Civil;
pub use parse::CronParseError;

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

/// One uWSGI integer field as a bit set over `lo..=hi`.
fn uwsgi_field(v: i64, lo: u32, hi: u32) -> u64 {
    if v >= 0 {
        if (lo as i64..=hi as i64).contains(&v) {
            1 << v
        } else {
            0
        }
    } else {
        divisible_bits(lo, hi, v.unsigned_abs().min(u64::from(u32::MAX)) as u32)
    }
}

impl CronSpec {
    /// uWSGI's `add_cron(sig, minute, hour, day, month, weekday)` integers.
    pub fn from_uwsgi(minute: i64, hour: i64, day: i64, month: i64, weekday: i64) -> CronSpec {
        // uWSGI compares a configured weekday 7 as Sunday.
        let weekday_bits = if weekday == 7 {
            1
        } else {
            uwsgi_field(weekday, 0, 6) as u8
        };
        CronSpec {
            minutes: uwsgi_field(minute, 0, 59),
            hours: uwsgi_field(hour, 0, 23) as u32,
            days: uwsgi_field(day, 1, 31) as u32,
            months: uwsgi_field(month, 1, 12) as u16,
            weekdays: weekday_bits,
            day_or_weekday: day >= 0 && weekday >= 0,
        }
    }

    /// A crontab line's five fields (`"*/5 9-17 * * mon-fri"`) or a `@daily`-style macro.
    pub fn parse(text: &str) -> Result<CronSpec, CronParseError> {
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
        (CronSpec::from_uwsgi(out[0], out[1], out[2], out[3], out[4]) == *self).then_some(out)
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
        let every = CronSpec::from_uwsgi(-1, -1, -1, -1, -1);
        assert_eq!(every.next_after(&c), Some(Civil::new(2026, 11, 28, 10, 8)));
        let five = CronSpec::from_uwsgi(-5, -1, -1, -1, -1);
        assert_eq!(five.next_after(&c), Some(Civil::new(2026, 11, 28, 10, 10)));
        let even_hours = CronSpec::from_uwsgi(0, -2, -1, -1, -1);
        assert_eq!(
            even_hours.next_after(&c),
            Some(Civil::new(2026, 11, 28, 12, 0))
        );
        let sunday = CronSpec::from_uwsgi(0, 9, -1, -1, 7);
        assert_eq!(sunday.next_after(&c), Some(Civil::new(2026, 11, 29, 9, 0)));
        let first_or_friday = CronSpec::from_uwsgi(0, 0, 1, -1, 5);
        assert_eq!(
            first_or_friday.next_after(&c),
            Some(Civil::new(2026, 12, 1, 0, 0))
        );
        let even_mondays = CronSpec::from_uwsgi(0, 0, -2, -1, 1);
        // Mondays after 2026-11-28: 30 Nov (even), so that one.
        assert_eq!(
            even_mondays.next_after(&c),
            Some(Civil::new(2026, 11, 30, 0, 0))
        );
        let tens = CronSpec::from_uwsgi(0, 0, -10, -1, -1);
        assert_eq!(tens.next_after(&c), Some(Civil::new(2026, 11, 30, 0, 0)));
        let invalid = CronSpec::from_uwsgi(61, -1, -1, -1, -1);
        assert_eq!(invalid.next_after(&c), None);
        let sevens = CronSpec::from_uwsgi(-7, -1, -1, -1, -1);
        assert_eq!(
            sevens.next_after(&Civil::new(2026, 1, 1, 0, 56)),
            Some(Civil::new(2026, 1, 1, 1, 0))
        );
        let feb30 = CronSpec::from_uwsgi(0, 0, 30, 2, -1);
        assert_eq!(feb30.next_after(&c), None);
        let leap = CronSpec::from_uwsgi(0, 0, 29, 2, -1);
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
            let s = CronSpec::from_uwsgi(ints[0], ints[1], ints[2], ints[3], ints[4]);
            assert_eq!(s.to_uwsgi(), Some(ints));
        }
    }

    #[test]
    fn django_seed_entry() {
        // @cron(40, 2, -1, -1, -1): 02:40 every day.
        let s = CronSpec::from_uwsgi(40, 2, -1, -1, -1);
        assert_eq!(
            s.next_after(&Civil::new(2026, 12, 31, 2, 40)),
            Some(Civil::new(2027, 1, 1, 2, 40))
        );
    }

    fn field() -> impl Strategy<Value = i64> {
        prop_oneof![-1i64..=-1, -12i64..=-2, 0i64..=62]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn next_after_agrees_with_brute_force(
            mi in field(), h in field(), d in field(), mo in field(), w in -8i64..=8,
            y in 1990i32..2100, month in 1u8..=12, day in 1u8..=28, hour in 0u8..24, minute in 0u8..60,
        ) {
            let spec = CronSpec::from_uwsgi(mi, h, d, mo, w);
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
}
