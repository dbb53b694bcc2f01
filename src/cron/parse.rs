//! Crontab strings: five fields (`minute hour day month weekday`) with `*`, values, ranges
//! `a-b`, lists `a,b`, steps `*/n` and `a-b/n`, month and weekday names (`jan`, `mon`), weekday
//! 7 as Sunday, and the macros `@yearly` `@annually` `@monthly` `@weekly` `@daily` `@midnight`
//! `@hourly`.

use super::{CronError, CronSpec};

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

struct Field {
    name: &'static str,
    lo: u32,
    hi: u32,
    names: &'static [&'static str],
    /// Value of the first name (1 for months, 0 for weekdays).
    names_base: u32,
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        lo: 0,
        hi: 59,
        names: &[],
        names_base: 0,
    },
    Field {
        name: "hour",
        lo: 0,
        hi: 23,
        names: &[],
        names_base: 0,
    },
    Field {
        name: "day",
        lo: 1,
        hi: 31,
        names: &[],
        names_base: 0,
    },
    Field {
        name: "month",
        lo: 1,
        hi: 12,
        names: &MONTHS,
        names_base: 1,
    },
    // 7 is accepted as Sunday and folded onto 0 afterwards.
    Field {
        name: "weekday",
        lo: 0,
        hi: 7,
        names: &WEEKDAYS,
        names_base: 0,
    },
];

fn value(f: &Field, text: &str, item: &str) -> Result<u32, CronError> {
    let lower = text.to_ascii_lowercase();
    if let Some(i) = f.names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + f.names_base);
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) || text.len() > 4 {
        return Err(CronError::Item {
            field: f.name,
            item: item.to_owned(),
        });
    }
    let v: u32 = text.parse().unwrap_or(u32::MAX);
    if v < f.lo || v > f.hi {
        return Err(CronError::Range {
            field: f.name,
            value: v,
            lo: f.lo,
            hi: f.hi,
        });
    }
    Ok(v)
}

fn field_bits(f: &Field, text: &str) -> Result<u64, CronError> {
    let mut bits = 0u64;
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| CronError::Item {
                    field: f.name,
                    item: item.to_owned(),
                })?;
                if step == 0 {
                    return Err(CronError::Step {
                        field: f.name,
                        item: item.to_owned(),
                    });
                }
                (r, step)
            }
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" {
            (f.lo, if f.name == "weekday" { 6 } else { f.hi })
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(f, a, item)?, value(f, b, item)?);
            if a > b {
                return Err(CronError::Item {
                    field: f.name,
                    item: item.to_owned(),
                });
            }
            (a, b)
        } else {
            let a = value(f, range, item)?;
            // `5/15` (and `5/1`) means from 5 to the end of the range, as cronie reads it.
            (a, if item.contains('/') { f.hi } else { a })
        };
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

pub(super) fn parse(text: &str) -> Result<CronSpec, CronError> {
    let text = text.trim();
    let expanded = match text.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        m if m.starts_with('@') => return Err(CronError::Macro(text.to_owned())),
        _ => text,
    };
    let parts: Vec<&str> = expanded.split_whitespace().collect();
    if parts.len() != 5 {
        return Err(CronError::FieldCount(parts.len(), text.to_owned()));
    }
    let mut bits = [0u64; 5];
    for (i, (f, p)) in FIELDS.iter().zip(&parts).enumerate() {
        bits[i] = field_bits(f, p)?;
    }
    let mut weekdays = bits[4];
    if weekdays & (1 << 7) != 0 {
        weekdays = (weekdays & 0x7f) | 1;
    }
    let spec = CronSpec {
        minutes: bits[0],
        hours: bits[1] as u32,
        days: bits[2] as u32,
        months: bits[3] as u16,
        weekdays: weekdays as u8,
        // Vixie cron: if either field starts with '*', both must match; otherwise either.
        day_or_weekday: !parts[2].starts_with('*') && !parts[4].starts_with('*'),
    };
    spec.check_dates(parts[2], parts[3])?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cron::Civil;

    #[test]
    fn fields_and_names() {
        let s = parse("*/15 9-17 * jan,jul mon-fri").unwrap();
        assert_eq!(s.minutes, 1 | 1 << 15 | 1 << 30 | 1 << 45);
        assert_eq!(s.hours, (9..=17).fold(0, |a, h| a | 1 << h));
        assert_eq!(s.months, 1 << 1 | 1 << 7);
        assert_eq!(s.weekdays, 0b0111110);
        assert!(!s.day_or_weekday);
        assert_eq!(parse("0 0 * * 7").unwrap().weekdays, 1);
        assert_eq!(parse("0 0 * * 5-7").unwrap().weekdays, 0b1100001);
        assert!(parse("0 0 1 * 5").unwrap().day_or_weekday);
        assert_eq!(parse("@daily").unwrap(), parse("0 0 * * *").unwrap());
        assert_eq!(
            parse("5/20 * * * *").unwrap().minutes,
            1 << 5 | 1 << 25 | 1 << 45
        );
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse("61 * * * *").unwrap_err().to_string();
        assert!(e.contains("minute") && e.contains("61"), "{e}");
        let e = parse("* * * foo *").unwrap_err().to_string();
        assert!(e.contains("month") && e.contains("foo"), "{e}");
        assert!(
            parse("* * * *")
                .unwrap_err()
                .to_string()
                .contains("5 fields")
        );
        assert!(
            parse("*/0 * * * *")
                .unwrap_err()
                .to_string()
                .contains("step")
        );
        assert!(parse("@sometimes").is_err());
        assert!(parse("5-1 * * * *").is_err());
    }

    #[test]
    fn next_fire_of_a_crontab() {
        let s = parse("30 2 * * sun").unwrap();
        assert_eq!(
            s.next_after(&Civil::new(2026, 11, 27, 12, 0)),
            Some(Civil::new(2026, 11, 29, 2, 30))
        );
    }
}
