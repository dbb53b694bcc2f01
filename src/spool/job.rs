//! The checks of one job before it is enqueued, in one place for every way in (the binding's
//! fast path for an all-bytes dict, the shim's path after it converted other values, the
//! directory writer itself).
//!
//! A job is refused when uWSGI would lose it or refuses it: a `spooler` that is not one of the
//! configured directories, a `priority` that is not all digits (uWSGI writes it into a directory
//! it never scans), an `at` that is not a unix time, vars over the packet's 64 KiB. The checks
//! borrow the job's bytes and allocate nothing unless they refuse.

use std::fmt::{self, Write as _};

use crate::spool::packet::MAX_VARS_SIZE;

/// The spool directories a job may name in its `spooler` var (their realpaths).
pub trait Spoolers {
    /// True if `dir` is one of them.
    fn contains(&self, dir: &[u8]) -> bool;
    /// All of them, for an error message.
    fn names(&self) -> Vec<Vec<u8>>;
}

impl<T: AsRef<[u8]>> Spoolers for [T] {
    fn contains(&self, dir: &[u8]) -> bool {
        self.iter().any(|d| d.as_ref() == dir)
    }

    fn names(&self) -> Vec<Vec<u8>> {
        self.iter().map(|d| d.as_ref().to_vec()).collect()
    }
}

/// Why a job is refused. Each message starts with uWSGI's own text ("unable to spool job").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    #[error(
        "unable to spool job: unknown spooler {}; the \"spooler\" value must be the realpath of a configured spooler directory ({})",
        BytesRepr(name),
        Joined(known)
    )]
    UnknownSpooler { name: Vec<u8>, known: Vec<Vec<u8>> },
    #[error(
        "unable to spool job: priority must be all digits, got {} (uWSGI only ever runs numeric priority directories, and only with --spooler-ordered)",
        BytesRepr(.0)
    )]
    BadPriority(Vec<u8>),
    #[error(
        "unable to spool job: 'at' must be a unix timestamp (seconds, optionally with a fraction), got {:?}",
        String::from_utf8_lossy(.0)
    )]
    BadAt(Vec<u8>),
    #[error(
        "unable to spool job: its vars take {size} bytes, over the 65535-byte limit of the uwsgi packet; put big values in the 'body' key (bytes), which has no size limit and reaches the spooler function as the job's 'body' item"
    )]
    TooLarge { size: usize },
    #[error("unable to spool job: no spooler directory is configured")]
    NoSpooler,
}

impl JobError {
    /// The line uWSGI logs when it refuses such a job, if it logs one.
    pub fn uwsgi_log(&self) -> Option<String> {
        match self {
            JobError::UnknownSpooler { name, .. } => Some(format!(
                "[uwsgi-spooler] unable to find spooler \"{}\"",
                String::from_utf8_lossy(name)
            )),
            JobError::TooLarge { .. } => Some(
                "[uwsgi-spooler] args buffer is limited to 64k, use the 'body' for bigger values"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}

/// A job that passed [`check`]: the values that decide where and when it runs (the last of each
/// key, as the directory writer reads them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Checked<'a> {
    /// The `spooler` named (None or empty: the first configured one).
    pub spooler: Option<&'a [u8]>,
    pub priority: Option<&'a [u8]>,
    pub at: Option<&'a [u8]>,
    /// The vars' encoded size (without the 4-byte header and the body).
    pub vars_size: usize,
}

/// Check a job's vars (the body apart) as uWSGI would, and more where uWSGI loses the job. The
/// first bad `spooler` or `priority` in var order is reported, then the size, then `at`.
pub fn check<'a, K, V, S>(vars: &'a [(K, V)], spoolers: &S) -> Result<Checked<'a>, JobError>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
    S: Spoolers + ?Sized,
{
    let mut out = Checked::default();
    for (key, value) in vars {
        let (key, value) = (key.as_ref(), value.as_ref());
        out.vars_size += 4 + key.len() + value.len();
        match key {
            b"spooler" if !value.is_empty() => {
                if !spoolers.contains(value) {
                    return Err(JobError::UnknownSpooler {
                        name: value.to_vec(),
                        known: spoolers.names(),
                    });
                }
                out.spooler = Some(value);
            }
            b"priority" => {
                if !value.is_empty() {
                    parse_priority(value)?;
                }
                out.priority = Some(value);
            }
            b"at" => out.at = Some(value),
            _ => {}
        }
    }
    if out.vars_size > MAX_VARS_SIZE {
        return Err(JobError::TooLarge {
            size: out.vars_size,
        });
    }
    if let Some(at) = out.at.filter(|v| !v.is_empty()) {
        parse_at(at)?;
    }
    Ok(out)
}

/// Check a `priority` value: all ASCII digits (uWSGI's spooler never runs anything else).
/// Returns it as the subdirectory's name.
pub fn parse_priority(value: &[u8]) -> Result<&str, JobError> {
    match std::str::from_utf8(value) {
        Ok(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => Ok(s),
        _ => Err(JobError::BadPriority(value.to_vec())),
    }
}

/// Parse `at` as uWSGI does (the digits before the first `.`), refusing what is not a number.
pub fn parse_at(value: &[u8]) -> Result<i64, JobError> {
    let bad = || JobError::BadAt(value.to_vec());
    let text = std::str::from_utf8(value).map_err(|_| bad())?.trim();
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    if int.is_empty() {
        return if frac.is_empty() { Err(bad()) } else { Ok(0) };
    }
    if !int.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    int.parse().map_err(|_| bad())
}

/// Bytes written as Python's `repr(bytes)` writes them (`b'x'`, `b"it's"`, `b'\x00'`), so the
/// messages read as the shim's always did.
struct BytesRepr<'a>(&'a [u8]);

impl fmt::Display for BytesRepr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quote = if self.0.contains(&b'\'') && !self.0.contains(&b'"') {
            b'"'
        } else {
            b'\''
        };
        f.write_char('b')?;
        f.write_char(char::from(quote))?;
        for &b in self.0 {
            match b {
                b'\\' => f.write_str("\\\\")?,
                b'\t' => f.write_str("\\t")?,
                b'\n' => f.write_str("\\n")?,
                b'\r' => f.write_str("\\r")?,
                _ if b == quote => write!(f, "\\{}", char::from(b))?,
                0x20..=0x7e => f.write_char(char::from(b))?,
                _ => write!(f, "\\x{b:02x}")?,
            }
        }
        f.write_char(char::from(quote))
    }
}

/// Paths joined with ", " (lossy UTF-8), as the shim's message listed the spoolers.
struct Joined<'a>(&'a [Vec<u8>]);

impl fmt::Display for Joined<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(&String::from_utf8_lossy(d))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: &str) -> (Vec<u8>, Vec<u8>) {
        (k.as_bytes().to_vec(), v.as_bytes().to_vec())
    }

    const DIRS: [&[u8]; 2] = [b"/var/spool/a", b"/var/spool/b"];

    #[test]
    fn accepts_and_reports_the_deciding_values() {
        let vars = [
            kv("spooler", "/var/spool/b"),
            kv("priority", "3"),
            kv("at", "1900000000.5"),
            kv("x", "y"),
        ];
        let c = check(&vars, &DIRS[..]).unwrap();
        assert_eq!(c.spooler, Some(&b"/var/spool/b"[..]));
        assert_eq!(c.priority, Some(&b"3"[..]));
        assert_eq!(c.at, Some(&b"1900000000.5"[..]));
        assert_eq!(c.vars_size, 4 * 4 + (7 + 12) + (8 + 1) + (2 + 12) + (1 + 1));
        // an empty spooler is the default one; an empty priority is none
        let vars = [kv("spooler", ""), kv("priority", "")];
        let c = check(&vars, &DIRS[..]).unwrap();
        assert_eq!(c.spooler, None);
    }

    #[test]
    fn unknown_spooler_names_the_known_ones() {
        let e = check(&[kv("spooler", "rel/dir")], &DIRS[..]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to spool job: unknown spooler b'rel/dir'; the \"spooler\" value must be the \
             realpath of a configured spooler directory (/var/spool/a, /var/spool/b)"
        );
        assert_eq!(
            e.uwsgi_log().unwrap(),
            "[uwsgi-spooler] unable to find spooler \"rel/dir\""
        );
    }

    #[test]
    fn bad_priority_at_and_size() {
        let e = check(&[kv("priority", "high")], &DIRS[..]).unwrap_err();
        assert_eq!(e, JobError::BadPriority(b"high".to_vec()));
        assert!(
            e.to_string()
                .starts_with("unable to spool job: priority must be all digits, got b'high' (")
        );
        let e = check(&[kv("at", "soon")], &DIRS[..]).unwrap_err();
        assert!(e.to_string().contains("'at' must be a unix timestamp"));
        let big = [(b"a".to_vec(), vec![b'x'; 65531])];
        assert_eq!(
            check(&big, &DIRS[..]).unwrap_err(),
            JobError::TooLarge { size: 65536 }
        );
        // the largest that fits
        let fits = [(b"a".to_vec(), vec![b'x'; 65530])];
        assert_eq!(check(&fits, &DIRS[..]).unwrap().vars_size, 65535);
    }

    #[test]
    fn first_refusal_wins_in_uwsgis_order() {
        // a bad priority before an unknown spooler, both before the size, the size before `at`
        let vars = [
            kv("priority", "x"),
            kv("spooler", "/nowhere"),
            (b"big".to_vec(), vec![0; 70000]),
            kv("at", "soon"),
        ];
        assert!(matches!(
            check(&vars, &DIRS[..]),
            Err(JobError::BadPriority(_))
        ));
        assert!(matches!(
            check(&vars[1..], &DIRS[..]),
            Err(JobError::UnknownSpooler { .. })
        ));
        assert!(matches!(
            check(&vars[2..], &DIRS[..]),
            Err(JobError::TooLarge { .. })
        ));
        assert!(matches!(
            check(&vars[3..], &DIRS[..]),
            Err(JobError::BadAt(_))
        ));
    }

    #[test]
    fn bytes_repr_is_pythons() {
        assert_eq!(BytesRepr(b"a'b").to_string(), "b\"a'b\"");
        assert_eq!(BytesRepr(b"a'\"b").to_string(), "b'a\\'\"b'");
        assert_eq!(
            BytesRepr(b"\x00\\\n\xff").to_string(),
            "b'\\x00\\\\\\n\\xff'"
        );
    }

    #[test]
    fn at_parsing() {
        assert_eq!(parse_at(b"123").unwrap(), 123);
        assert_eq!(parse_at(b"123.9").unwrap(), 123);
        assert!(parse_at(b"-5").is_err());
        assert!(parse_at(b"").is_err());
        assert!(parse_at(b"1e9").is_err());
    }
}
