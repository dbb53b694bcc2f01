//! Civil (wall-clock) minutes in the proleptic Gregorian calendar, with no time zone.

use super::CronError;

/// A wall-clock minute. Field order makes the derived ordering chronological.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Civil {
    pub year: i32,
    /// 1..=12
    pub month: u8,
    /// 1..=31
    pub day: u8,
    /// 0..=23
    pub hour: u8,
    /// 0..=59
    pub minute: u8,
}

pub fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(year) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
pub fn civil_from_days(z: i64) -> (i32, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y as i32, m, d)
}

impl Civil {
    /// The minute the five numbers name, or [`CronError::BadCivil`] if there is none (years
    /// -9999 to 9999).
    pub fn checked(
        year: i32,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
    ) -> Result<Civil, CronError> {
        let dim = days_in_month(year, month.clamp(1, 12));
        if !(-9999..=9999).contains(&year)
            || !(1..=12).contains(&month)
            || day == 0
            || day > dim
            || hour > 23
            || minute > 59
        {
            return Err(CronError::BadCivil {
                year,
                month,
                day,
                hour,
                minute,
            });
        }
        Ok(Civil::new(year, month, day, hour, minute))
    }

    pub fn new(year: i32, month: u8, day: u8, hour: u8, minute: u8) -> Civil {
        Civil {
            year,
            month,
            day,
            hour,
            minute,
        }
    }

    /// 0 = Sunday .. 6 = Saturday.
    pub fn weekday(&self) -> u8 {
        // 1970-01-01 was a Thursday (4).
        (days_from_civil(self.year, self.month, self.day) + 4).rem_euclid(7) as u8
    }

    /// Minutes since 1970-01-01 00:00 of the same calendar (a naive, zone-less count).
    pub fn to_minutes(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * 1440
            + i64::from(self.hour) * 60
            + i64::from(self.minute)
    }

    pub fn from_minutes(m: i64) -> Civil {
        let (y, mo, d) = civil_from_days(m.div_euclid(1440));
        let r = m.rem_euclid(1440);
        Civil::new(y, mo, d, (r / 60) as u8, (r % 60) as u8)
    }

    pub fn plus_minute(&self) -> Civil {
        if self.minute < 59 {
            Civil {
                minute: self.minute + 1,
                ..*self
            }
        } else {
            self.next_hour()
        }
    }

    /// The start of the next hour.
    pub fn next_hour(&self) -> Civil {
        if self.hour < 23 {
            Civil::new(self.year, self.month, self.day, self.hour + 1, 0)
        } else {
            self.next_day()
        }
    }

    /// Midnight of the next day.
    pub fn next_day(&self) -> Civil {
        if self.day < days_in_month(self.year, self.month) {
            Civil::new(self.year, self.month, self.day + 1, 0, 0)
        } else if self.month < 12 {
            Civil::new(self.year, self.month + 1, 1, 0, 0)
        } else {
            Civil::new(self.year + 1, 1, 1, 0, 0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        assert_eq!(Civil::new(1970, 1, 1, 0, 0).weekday(), 4);
        assert_eq!(Civil::new(2000, 2, 29, 0, 0).weekday(), 2);
        assert_eq!(Civil::new(2026, 11, 27, 0, 0).weekday(), 5);
        assert_eq!(days_in_month(1900, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
    }

    proptest! {
        #[test]
        fn minutes_roundtrip(m in -100_000_000i64..100_000_000) {
            let c = Civil::from_minutes(m);
            prop_assert_eq!(c.to_minutes(), m);
            prop_assert_eq!(c.plus_minute().to_minutes(), m + 1);
        }
    }

    #[test]
    fn checked_refuses_what_is_no_minute() {
        assert_eq!(
            Civil::checked(2024, 2, 29, 23, 59),
            Ok(Civil::new(2024, 2, 29, 23, 59))
        );
        for (y, mo, d, h, mi) in [
            (2023, 2, 29, 0, 0),
            (2024, 13, 1, 0, 0),
            (2024, 0, 1, 0, 0),
            (2024, 1, 0, 0, 0),
            (2024, 1, 1, 24, 0),
            (2024, 1, 1, 0, 60),
            (10000, 1, 1, 0, 0),
        ] {
            assert!(
                Civil::checked(y, mo, d, h, mi).is_err(),
                "{y}-{mo}-{d} {h}:{mi}"
            );
        }
        assert_eq!(
            Civil::checked(2023, 2, 29, 7, 5).unwrap_err().to_string(),
            "not a valid wall-clock minute: 2023-02-29 07:05"
        );
    }
}
