//! uWSGI's spool file names:
//! `uwsgi_spoolfile_on_<hostname>_<pid>_<counter>_<rand>_<sec>_<usec>`.
//!
//! The hostname may itself contain `_`, so readers take the numeric fields from the right.
//! The counter is per process, starts at 1 and is not reset by `fork` (a static in memory is
//! copied into the child, which is what uWSGI's C static does too).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Every task file name starts with this; readers ignore any other name.
pub const PREFIX: &str = "uwsgi_spoolfile_on_";
/// Our writers' temporary files: invisible to uWSGI's and our readers until renamed.
pub const TEMP_PREFIX: &str = ".uwsgidecorators-tmp-";

static COUNTER: AtomicU64 = AtomicU64::new(0);
static RAND_STATE: AtomicU64 = AtomicU64::new(0);

/// The machine's hostname, read once (as `uwsgi.hostname`).
pub fn hostname() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let mut buf = [0u8; 256];
        // SAFETY: buf is writable for its whole length; gethostname NUL-terminates on success
        // when the name fits, and we stop at the first NUL or the end of the buffer.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc != 0 {
            return "localhost".to_owned();
        }
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    })
}

/// A non-negative 31-bit pseudo-random number, like C `rand()`'s range.
fn rand31() -> u32 {
    let mut state = RAND_STATE.load(Ordering::Relaxed);
    if state == 0 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        state = (now.as_nanos() as u64) ^ (u64::from(std::process::id()) << 32) | 1;
    }
    // splitmix64: one step per call; races between threads only repeat a value, and the
    // counter keeps names unique anyway.
    state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    RAND_STATE.store(state, Ordering::Relaxed);
    let mut z = state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 33) as u32
}

/// The next file name for a task spooled by this process now.
pub fn next_name() -> String {
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{PREFIX}{}_{}_{}_{}_{}_{}",
        hostname(),
        std::process::id(),
        counter,
        rand31(),
        now.as_secs(),
        now.subsec_micros()
    )
}

/// The numeric fields of a task name, taken from the right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NameFields {
    pub sec: u64,
    pub usec: u64,
    pub pid: u64,
    pub counter: u64,
    pub rand: u64,
}

/// Parse a task name; `None` for names that are not uWSGI's shape (still valid tasks).
pub fn parse(name: &str) -> Option<NameFields> {
    let rest = name.strip_prefix(PREFIX)?;
    let mut it = rest.rsplitn(6, '_');
    let usec = it.next()?.parse().ok()?;
    let sec = it.next()?.parse().ok()?;
    let rand = it.next()?.parse().ok()?;
    let counter = it.next()?.parse().ok()?;
    let pid = it.next()?.parse().ok()?;
    let _host = it.next()?;
    Some(NameFields {
        sec,
        usec,
        pid,
        counter,
        rand,
    })
}

/// True for a name a spooler considers: uWSGI's prefix, or all digits when `numeric` is allowed.
pub fn is_task_name(name: &[u8], numeric: bool) -> bool {
    name.starts_with(PREFIX.as_bytes())
        || (numeric && !name.is_empty() && name.iter().all(u8::is_ascii_digit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_from_the_right() {
        let f = parse("uwsgi_spoolfile_on_my_host_15564_1_1046067170_1795778084_539549").unwrap();
        assert_eq!(f.pid, 15564);
        assert_eq!(f.counter, 1);
        assert_eq!(f.rand, 1046067170);
        assert_eq!(f.sec, 1795778084);
        assert_eq!(f.usec, 539549);
        assert!(parse("uwsgi_spoolfile_on_x_1_2").is_none());
        assert!(parse("other").is_none());
    }

    #[test]
    fn names_are_unique_and_parse() {
        let a = next_name();
        let b = next_name();
        assert_ne!(a, b);
        let (fa, fb) = (parse(&a).unwrap(), parse(&b).unwrap());
        assert_eq!(fa.pid, u64::from(std::process::id()));
        assert_eq!(fb.counter, fa.counter + 1);
        assert!(fa.rand < (1 << 31));
    }

    #[test]
    fn task_names() {
        assert!(is_task_name(b"uwsgi_spoolfile_on_a_1_1_1_1_1", false));
        assert!(!is_task_name(b"123", false));
        assert!(is_task_name(b"123", true));
        assert!(!is_task_name(
            b".uwsgidecorators-tmp-uwsgi_spoolfile_on_a",
            true
        ));
    }
}
