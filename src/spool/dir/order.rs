//! Ordering: numeric priority subdirectories first, lowest number first, then top-level files,
//! each group oldest first by the enqueue time in the file name; within one second, this
//! process's share of names first. Files whose mtime is in the future wait in a timer heap.

use std::cmp::Reverse;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{Spooler, name, unix_now};

/// Ordering key of a ready task: priority bucket, then enqueue time from the name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Key {
    pub(super) bucket: u64,
    /// Enqueue second from the name (None for names not of uWSGI's shape: first).
    pub(super) sec: Option<u64>,
    /// Not in this process's share (see [`super::SpoolerConfig::share`]).
    pub(super) foreign: bool,
    pub(super) fields: Option<name::NameFields>,
    pub(super) rel: PathBuf,
}

/// A stable spread of file names over the spooler processes: FNV-1a, then a final mix (FNV's
/// low bits alone follow the parity of the bytes, and uWSGI names repeat digits).
pub(super) fn name_hash(name: &[u8]) -> u64 {
    let mut h = name.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// Bucket of top-level tasks: after every priority directory.
pub(super) const TOP_BUCKET: u64 = u64::MAX;

pub(super) fn priority_of(name: &[u8]) -> Option<u64> {
    if !name.is_empty() && name.iter().all(u8::is_ascii_digit) {
        std::str::from_utf8(name).ok()?.parse().ok()
    } else {
        None
    }
}

impl Spooler {
    pub(super) fn key(&self, bucket: u64, fields: Option<name::NameFields>, rel: PathBuf) -> Key {
        let (index, count) = self.cfg.share;
        let foreign = count > 1
            && name_hash(rel.file_name().map_or(b"", |n| n.as_bytes())) % u64::from(count)
                != u64::from(index);
        Key {
            bucket,
            sec: fields.as_ref().map(|f| f.sec),
            foreign,
            fields,
            rel,
        }
    }

    pub(super) fn rel_of(&self, bucket: u64, name: &[u8]) -> PathBuf {
        let name = Path::new(std::ffi::OsStr::from_bytes(name));
        if bucket == TOP_BUCKET {
            name.to_path_buf()
        } else {
            Path::new(&bucket.to_string()).join(name)
        }
    }

    /// Move the delayed files whose time has come to the ready set.
    pub(super) fn promote_due(&mut self) {
        let now = unix_now();
        while let Some(Reverse((at, bucket, _))) = self.delayed.peek() {
            if *at > now {
                break;
            }
            let bucket = *bucket;
            let Some(Reverse((_, _, rel))) = self.delayed.pop() else {
                break;
            };
            let fields = rel
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(name::parse);
            self.ready.insert(self.key(bucket, fields, rel), ());
        }
    }
}
