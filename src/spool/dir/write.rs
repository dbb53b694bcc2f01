//! Enqueue: write one task file into a spool directory so that no reader ever sees it partial.
//!
//! A small task (one page, no `at`, not durable) is written as uWSGI writes it: created at its
//! final name, locked (`fcntl`, which every reader honours), filled with one `write` and closed.
//! A reader that opens it before the lock finds it empty and leaves it; the writer's close brings
//! it back. One `write` of at most a page is all or nothing even for a writer killed in it (the
//! kernel looks for a fatal signal between pages, not within one), so a killed writer leaves at
//! worst an empty file, which no reader runs. This is the cheapest way the kernel offers: an
//! unnamed file costs 10-15% more per enqueue (its orphan-list entry and the link).
//!
//! Every other task goes to an unnamed file (`O_TMPFILE`) that is linked under its final
//! uWSGI-style name only once complete, so the final name always holds a whole file, whatever the
//! writer's fate: a writer killed half-way through a big body leaves nothing, and an `at` is set
//! before the name appears. Where the filesystem has no `O_TMPFILE` the file is written under a
//! temporary name that no reader considers (readers look only at `uwsgi_spoolfile_on_*`) and
//! renamed; that file is filled under an exclusive `fcntl` lock, as uWSGI's writers do. In
//! durable mode the file and then the directory are fsynced before `spool_write` returns.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::name;
use crate::spool::job::{JobError, parse_at, parse_priority};
use crate::spool::packet::{self, PacketError, Var};
use crate::sys;

/// Why a task could not be enqueued.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Packet(#[from] PacketError),
    /// A `priority` or `at` refused by [`crate::spool::job`]'s checks.
    #[error(transparent)]
    Job(#[from] JobError),
    #[error("cannot write spool file in {dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Write one task into `dir` (an existing spool directory). Returns the full path of the file.
///
/// A writer waits only for a reader that opened its file while still empty (readers leave such a
/// file at once). A signal during that wait fails the write with an `Interrupted` I/O error and
/// leaves nothing behind, so that the caller can run its signal handlers and write again.
pub fn spool_write(
    dir: &Path,
    vars: &[Var],
    body: &[u8],
    durable: bool,
) -> Result<PathBuf, WriteError> {
    let bytes = packet::encode(vars, body)?;
    let priority = packet::lookup(vars, b"priority");
    let at = packet::lookup(vars, b"at");
    spool_write_packet(dir, &bytes, priority, at, durable)
}

/// Write one task already encoded (`bytes`, see [`packet::encode_into`]) into `dir`;
/// `priority` and `at` are the values of those vars, if any.
pub fn spool_write_packet(
    dir: &Path,
    bytes: &[u8],
    priority: Option<&[u8]>,
    at: Option<&[u8]>,
    durable: bool,
) -> Result<PathBuf, WriteError> {
    let mut target = dir.to_path_buf();
    if let Some(p) = priority.filter(|v| !v.is_empty()) {
        target.push(parse_priority(p)?);
        // Never writable by others (uWSGI: 0777 & umask): a task there may be code to run.
        match fs::DirBuilder::new().mode(0o770).create(&target) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                return Err(WriteError::Io {
                    dir: target,
                    source: e,
                });
            }
            _ => {}
        }
    }
    let at = match at.filter(|v| !v.is_empty()) {
        Some(v) => parse_at(v)?,
        None => 0,
    };
    write_file(&target, bytes, at, durable).map_err(|source| WriteError::Io {
        dir: target.clone(),
        source,
    })
}

/// The largest task written in place: one page, so that one `write` fills it all or nothing.
const IN_PLACE_MAX: usize = 4096;

fn write_file(dir: &Path, bytes: &[u8], at: i64, durable: bool) -> io::Result<PathBuf> {
    if bytes.len() <= IN_PLACE_MAX && at == 0 && !durable {
        return write_in_place(dir, bytes);
    }
    if let Some(file) = sys::open_unnamed(dir, 0o600)? {
        fill(&file, bytes, at, durable)?;
        let fin = loop {
            let fin = dir.join(name::next_name());
            match sys::link_fd(&file, &fin) {
                Ok(()) => break fin,
                // A name collision (same pid, counter and microsecond): take the next name.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        };
        drop(file);
        if durable {
            sys::sync_dir(dir)?;
        }
        return Ok(fin);
    }
    write_renamed(dir, bytes, at, durable)
}

/// Create `path` for writing, mode 0600 as uWSGI's files; fails if it exists.
fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

fn write_in_place(dir: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
    loop {
        let fin = dir.join(name::next_name());
        let file = match create_new(&fin) {
            Ok(f) => f,
            // A name collision (same pid, counter and microsecond): take the next name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        };
        // Waits only for a reader that opened the empty file first; it leaves it at once. A
        // signal ends the wait: the file goes, the caller runs its handlers and writes again.
        let written = sys::lock_exclusive(&file).and_then(|()| (&file).write_all(bytes));
        if written.is_err() {
            // Never leave a short task behind (a full disk): the name goes while the file is
            // still ours (locked), so no reader can run what was written of it.
            let _ = fs::remove_file(&fin);
        }
        drop(file);
        return written.map(|()| fin);
    }
}

fn write_renamed(dir: &Path, bytes: &[u8], at: i64, durable: bool) -> io::Result<PathBuf> {
    loop {
        let name = name::next_name();
        let temp = dir.join(format!("{}{name}", name::TEMP_PREFIX));
        let fin = dir.join(&name);
        let file = create_new(&temp)?;
        // A named temporary file is visible: hold the lock readers honour while filling it.
        let written = sys::lock_exclusive(&file).and_then(|()| fill(&file, bytes, at, durable));
        drop(file);
        let renamed = written.and_then(|()| sys::rename_noreplace(&temp, &fin));
        match renamed {
            Ok(()) => {
                if durable {
                    sys::sync_dir(dir)?;
                }
                return Ok(fin);
            }
            Err(e) => {
                let _ = fs::remove_file(&temp);
                if e.kind() != io::ErrorKind::AlreadyExists {
                    return Err(e);
                }
                // A name collision (same pid, counter and microsecond): take the next name.
            }
        }
    }
}

fn fill(mut file: &File, bytes: &[u8], at: i64, durable: bool) -> io::Result<()> {
    file.write_all(bytes)?;
    if at > 0 {
        sys::set_times(file, at)?;
    }
    if durable {
        file.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn v(k: &str, val: &str) -> Var {
        (k.as_bytes().to_vec(), val.as_bytes().to_vec())
    }

    #[test]
    fn writes_complete_file_with_uwsgi_name() {
        let tmp = tempfile::tempdir().unwrap();
        let path = spool_write(tmp.path(), &[v("a", "1")], b"", false).unwrap();
        let fname = path.file_name().unwrap().to_str().unwrap();
        assert!(name::parse(fname).is_some(), "{fname}");
        assert_eq!(
            fs::read(&path).unwrap(),
            b"\x11\x06\x00\x00\x01\x00a\x01\x001"
        );
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn priority_subdir_and_at() {
        let tmp = tempfile::tempdir().unwrap();
        let path = spool_write(
            tmp.path(),
            &[v("priority", "5"), v("at", "1900000000.25")],
            b"B",
            true,
        )
        .unwrap();
        assert_eq!(path.parent().unwrap(), tmp.path().join("5"));
        assert_eq!(fs::metadata(&path).unwrap().mtime(), 1_900_000_000);
    }

    #[test]
    fn refuses_bad_priority_and_at() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(matches!(
            spool_write(tmp.path(), &[v("priority", "high")], b"", false),
            Err(WriteError::Job(JobError::BadPriority(_)))
        ));
        assert!(matches!(
            spool_write(tmp.path(), &[v("at", "tomorrow")], b"", false),
            Err(WriteError::Job(JobError::BadAt(_)))
        ));
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    /// The names that a write-close event reports in `dir`, after `f` ran.
    fn closed_names(dir: &Path, f: impl FnOnce() -> PathBuf) -> (PathBuf, Vec<String>) {
        use inotify::{Inotify, WatchMask};
        let mut ino = Inotify::init().unwrap();
        ino.watches().add(dir, WatchMask::CLOSE_WRITE).unwrap();
        let path = f();
        let mut buf = [0u8; 4096];
        let names = match ino.read_events(&mut buf) {
            Ok(evs) => evs
                .filter_map(|e| e.name.map(|n| n.to_string_lossy().into_owned()))
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Vec::new(),
            Err(e) => panic!("{e}"),
        };
        (path, names)
    }

    #[test]
    fn small_task_is_filled_in_place_and_closed_under_its_name() {
        // The spooler relies on this close: a reader that opened the file empty comes back for it.
        let tmp = tempfile::tempdir().unwrap();
        let body = vec![b'b'; IN_PLACE_MAX - 10];
        let (path, closed) = closed_names(tmp.path(), || {
            spool_write(tmp.path(), &[v("a", "1")], &body, false).unwrap()
        });
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(closed, vec![name.to_owned()]);
        assert_eq!(fs::read(&path).unwrap().len(), IN_PLACE_MAX);
    }

    #[test]
    fn big_or_dated_task_appears_only_when_complete() {
        // Over a page (a killed writer could leave part of it), or with an `at` (the mtime is set
        // after the bytes): the name appears with the whole file, so no close is seen under it.
        let tmp = tempfile::tempdir().unwrap();
        let body = vec![b'b'; IN_PLACE_MAX];
        let (big, closed) = closed_names(tmp.path(), || {
            spool_write(tmp.path(), &[v("a", "1")], &body, false).unwrap()
        });
        let big_name = big.file_name().unwrap().to_str().unwrap();
        assert!(!closed.iter().any(|n| n == big_name), "{closed:?}");
        assert_eq!(fs::read(&big).unwrap().len(), IN_PLACE_MAX + 10);
        let (dated, closed) = closed_names(tmp.path(), || {
            spool_write(tmp.path(), &[v("at", "1900000000")], b"", false).unwrap()
        });
        let dated_name = dated.file_name().unwrap().to_str().unwrap();
        assert!(!closed.iter().any(|n| n == dated_name), "{closed:?}");
        assert_eq!(fs::metadata(&dated).unwrap().mtime(), 1_900_000_000);
    }
}
