//! Discovery: full scans (at start, every `frequency`, after an inotify overflow; incremental
//! between tasks once started) and inotify events on the directory and its priority
//! subdirectories, feeding the ready set.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use inotify::{EventMask, WatchMask};

use super::order::{TOP_BUCKET, priority_of};
use super::task::{Book, held_lock};
use super::{STALE_TEMP_AGE, Spooler, name};
use crate::spool::queue::Notice;

impl Spooler {
    pub(super) fn watch(&mut self, dir: &Path, bucket: u64) -> io::Result<()> {
        // CREATE: a new name (a complete file linked into place, or one to be filled in place).
        // CLOSE_WRITE: a writer that created, then filled its file closes it (uWSGI's; ours for
        // a small task).
        // MOVED_TO: writers that rename a finished file into place.
        // EXCL_UNLINK: nothing about a file once its name is gone. A finished task is unlinked
        // before its last close (ours, another spooler's, uWSGI's), and that close would
        // otherwise cost the closing thread an event and every spooler a read of it, per task.
        let mask = WatchMask::CREATE
            | WatchMask::CLOSE_WRITE
            | WatchMask::MOVED_TO
            | WatchMask::ONLYDIR
            | WatchMask::EXCL_UNLINK;
        let wd = self.inotify.watches().add(dir, mask)?;
        self.watches.insert(wd, bucket);
        Ok(())
    }

    /// Note a candidate file (`announced`: by a write-close event, see `announced`); `book` is this
    /// spooler's, locked once by the caller for a batch of offers.
    pub(super) fn offer(&mut self, book: &mut Book, bucket: u64, name: &[u8], announced: bool) {
        if !name::is_task_name(name, bucket == TOP_BUCKET && self.cfg.numeric_names) {
            return;
        }
        let rel = self.rel_of(bucket, name);
        if self.known.contains(&rel) {
            return;
        }
        if book.held.contains(&rel) || book.left.remove(&rel) {
            return;
        }
        let fields = std::str::from_utf8(name).ok().and_then(name::parse);
        self.known.insert(&rel);
        if announced {
            self.announced.insert(&rel);
        }
        self.ready.insert(self.key(bucket, fields, rel), ());
    }

    pub(super) fn scan_dir(&mut self, dir: &Path, bucket: u64, now: SystemTime) -> io::Result<()> {
        self.scan.push((bucket, fs::read_dir(dir)?));
        while !self.scan_step(usize::MAX, now) {}
        Ok(())
    }

    /// List up to `budget` entries of the scan in progress; true when the scan is finished.
    pub(super) fn scan_step(&mut self, budget: usize, now: SystemTime) -> bool {
        let held = self.held.clone();
        let mut book = held_lock(&held);
        let mut left = budget;
        while let Some((bucket, mut rd)) = self.scan.pop() {
            let mut done = true;
            for entry in rd.by_ref() {
                let Ok(entry) = entry else { continue };
                let fname = entry.file_name();
                let name = fname.as_bytes();
                if bucket == TOP_BUCKET {
                    if let Some(p) = priority_of(name) {
                        if entry.file_type().is_ok_and(|t| t.is_dir()) {
                            let sub = entry.path();
                            // Watch first, then list: a file arriving in between is seen
                            // twice at worst, never missed.
                            if !self.watches.values().any(|&b| b == p) {
                                let _ = self.watch(&sub, p);
                            }
                            if let Ok(sub_rd) = fs::read_dir(&sub) {
                                self.scan.push((bucket, rd));
                                self.scan.push((p, sub_rd));
                                done = false;
                                break;
                            }
                            continue;
                        }
                    }
                }
                if name.starts_with(name::TEMP_PREFIX.as_bytes()) {
                    self.remove_stale_temp(&entry.path(), now);
                } else {
                    self.offer(&mut book, bucket, name, false);
                }
                left -= 1;
                if left == 0 {
                    self.scan.push((bucket, rd));
                    return false;
                }
            }
            if !done {
                continue;
            }
        }
        true
    }

    pub(super) fn remove_stale_temp(&mut self, path: &Path, now: SystemTime) {
        // ctime, not mtime: a writer sets the mtime to `at`, which may be long past.
        let Ok(meta) = fs::symlink_metadata(path) else {
            return;
        };
        let ctime = UNIX_EPOCH + Duration::from_secs(meta.ctime().max(0) as u64);
        if now.duration_since(ctime).unwrap_or_default() > STALE_TEMP_AGE
            && fs::remove_file(path).is_ok()
        {
            self.notices.push(Notice::RemovedTemp {
                path: path.to_path_buf(),
            });
        }
    }

    /// List the whole directory again (start, periodic fallback, inotify overflow).
    pub fn full_scan(&mut self) -> io::Result<()> {
        self.scan.clear();
        let root = self.root.clone();
        self.scan_dir(&root, TOP_BUCKET, SystemTime::now())?;
        self.next_scan = Instant::now() + self.cfg.frequency;
        Ok(())
    }

    /// Start a rescan that [`Spooler::next`] carries out a slice at a time between tasks, so a
    /// directory of 200000 files never stalls the queue.
    pub(super) fn start_rescan(&mut self) -> io::Result<()> {
        if self.scan.is_empty() {
            self.scan.push((TOP_BUCKET, fs::read_dir(&self.root)?));
        }
        self.next_scan = Instant::now() + self.cfg.frequency;
        Ok(())
    }

    pub(super) fn read_events(&mut self) -> io::Result<()> {
        let mut buf = std::mem::take(&mut self.event_buf);
        let result = self.read_events_into(&mut buf);
        self.event_buf = buf;
        result
    }

    /// One read of what inotify has (never blocks): a second read would mostly say EAGAIN, on
    /// the path from an enqueue to its start; what did not fit in the buffer (16 KiB) is read
    /// at the next call, and wakes the next poll at once.
    pub(super) fn read_events_into(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let events = match self.inotify.read_events(buf) {
            Ok(ev) => ev,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut new_dirs: Vec<(PathBuf, u64)> = Vec::new();
        let mut overflow = false;
        // The book is locked once per batch of events (the reaper threads share it).
        let held = self.held.clone();
        let mut book = held_lock(&held);
        for ev in events {
            if ev.mask.contains(EventMask::Q_OVERFLOW) {
                overflow = true;
                continue;
            }
            if ev.mask.contains(EventMask::IGNORED) {
                self.watches.remove(&ev.wd);
                continue;
            }
            let Some(&bucket) = self.watches.get(&ev.wd) else {
                continue;
            };
            let Some(n) = ev.name else { continue };
            let n = n.as_bytes();
            if ev.mask.contains(EventMask::ISDIR) {
                if bucket == TOP_BUCKET {
                    if let Some(p) = priority_of(n) {
                        new_dirs.push((self.root.join(std::ffi::OsStr::from_bytes(n)), p));
                    }
                }
                continue;
            }
            if ev.mask.contains(EventMask::MOVED_TO) {
                // Renamed into place: a complete file.
                self.offer(&mut book, bucket, n, false);
            } else if ev.mask.contains(EventMask::CREATE) {
                // A new name: a complete file linked into place, or (most often) an empty one
                // that an in-place writer is about to lock and fill. Look before opening: an
                // open and lock of the empty file would make that writer wait for our lock (a
                // wake-up more on the task's way to its handler); its close brings it back.
                self.offer(&mut book, bucket, n, true);
            } else if ev.mask.contains(EventMask::CLOSE_WRITE) {
                // A writer finished, or another spooler left the file: look before opening.
                self.offer(&mut book, bucket, n, true);
            }
        }
        drop(book);
        for (dir, p) in new_dirs {
            if !self.watches.values().any(|&b| b == p) {
                let _ = self.watch(&dir, p);
            }
            let _ = self.scan_dir(&dir, p, SystemTime::now());
        }
        if overflow {
            self.full_scan()?;
        }
        Ok(())
    }
}
