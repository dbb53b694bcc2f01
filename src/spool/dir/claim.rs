//! Claiming one file: look (when an event says a writer may still be at it), open read-write,
//! take the non-blocking exclusive OFD lock, check owner, time and size under the lock, read and
//! decode; or move a malformed file to `quarantine/`.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::task::{Task, held_lock};
use super::{QUARANTINE_DIR, Spooler, is_old, unix_now};
use crate::spool::packet::{self, PacketError};
use crate::spool::queue::Notice;
use crate::sys;

/// Write `<to>.reason` beside a file moved to quarantine or `dead/` (best effort: the move is
/// what matters, and the log line says the same).
pub(super) fn write_reason(to: &Path, reason: &str) {
    let mut reason_path = to.to_path_buf().into_os_string();
    reason_path.push(".reason");
    let text = if reason.ends_with('\n') {
        reason.to_owned()
    } else {
        format!("{reason}\n")
    };
    let _ = fs::write(reason_path, text);
}

/// Move `path` into `dir` (created if needed), keeping its name; returns the new path.
pub(super) fn move_aside(path: &Path, dir: &Path) -> io::Result<PathBuf> {
    match fs::create_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let to = dir.join(path.file_name().unwrap_or_default());
    fs::rename(path, &to)?;
    Ok(to)
}

pub(super) enum Claim {
    Got(Task),
    /// Not runnable now (gone, locked, not yet complete); events will bring it back.
    Skip,
    /// Its mtime is in the future.
    Later(i64),
    Quarantine(String),
}

impl Spooler {
    /// First time `rel` cannot be opened for lack of permission: a notice saying whose it is.
    pub(super) fn note_unreadable(&mut self, rel: &Path, err: &io::Error) {
        if !self.unreadable.insert(rel) {
            return;
        }
        let owner = match sys::lstat_at(&self.dir, rel) {
            Ok(m) => format!("owned by uid {}, mode {:04o}", m.uid, m.mode & 0o7777),
            Err(_) => "owner unknown".to_owned(),
        };
        // SAFETY: geteuid cannot fail.
        let me = unsafe { libc::geteuid() };
        self.notices.push(Notice::Unreadable {
            path: self.root.join(rel),
            reason: format!(
                "{err} ({owner}; this spooler runs as uid {me}, which must be able to read and \
                 write task files: have the writer run as that user, or make the file \
                 readable and writable by it)"
            ),
        });
    }

    pub(super) fn try_claim(&mut self, rel: &Path) -> io::Result<Claim> {
        self.claim_attempts += 1;
        if !self.contended.is_empty() && self.contended.contains(rel) {
            // Held elsewhere at our last try: probe read-only, so that our failed attempts emit
            // no write-close events that other spoolers would react to.
            match sys::open_ro_at(&self.dir, rel) {
                Ok(probe) if sys::is_locked(&probe)? => return Ok(Claim::Skip),
                Ok(_) => {
                    self.contended.remove(rel);
                }
                Err(_) => {
                    self.contended.remove(rel);
                    return Ok(Claim::Skip);
                }
            }
        }
        if !self.announced.is_empty() && self.announced.remove(rel) {
            // A write-close named it: maybe another spooler's look at an in-place writer's file
            // between its create and its write. Look before opening it for writing, whose close
            // would announce it to the other spoolers again (a ping-pong while a writer stalls).
            let meta = match sys::lstat_at(&self.dir, rel) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Claim::Skip),
                Err(e) => return Err(e),
            };
            if !meta.is_file {
                return Ok(Claim::Skip);
            }
            if meta.mtime > unix_now() {
                return Ok(Claim::Later(meta.mtime));
            }
            if meta.len < packet::HEADER_LEN as u64 && !is_old(meta.ctime) {
                return Ok(Claim::Skip); // the writer's close brings it back
            }
        }
        // Found by a scan or a create event (or looked at above): open and lock first, check
        // after, one lookup per claim. The file may still be being written; our close of it is
        // skipped by `own_close`, and the other spoolers look before they open what that close
        // announces.
        let file = match sys::open_rw_at(&self.dir, rel, &mut self.noatime) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                // Not ours to read: said once per file, counted, left where it is (a spooler
                // of its owner, uWSGI's say, may share the directory).
                self.note_unreadable(rel, &e);
                return Ok(Claim::Skip);
            }
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || matches!(
                        e.raw_os_error(),
                        Some(libc::ELOOP) | Some(libc::EISDIR) | Some(libc::ENXIO)
                    ) =>
            {
                return Ok(Claim::Skip); // gone, not ours to read, or not a regular file
            }
            Err(e) => return Err(e),
        };
        if !sys::try_lock_exclusive(&file)? {
            self.contended.insert(rel);
            return Ok(Claim::Skip);
        }
        let meta = sys::fstat(&file)?;
        if !meta.is_file {
            return Ok(Claim::Skip);
        }
        // The previous holder may have finished and unlinked it while we waited to open it.
        if meta.nlink == 0 {
            return Ok(Claim::Skip);
        }
        if meta.uid != self.euid && meta.uid != 0 && !self.cfg.trusted_uids.contains(&meta.uid) {
            return Ok(Claim::Quarantine(format!(
                "owned by uid {}, not by this spooler's user (uid {}) nor root: a task may carry \
                 a pickle, that is code, so only trusted users' files run (trust that user with \
                 --spooler-trusted-user {})",
                meta.uid, self.euid, meta.uid
            )));
        }
        if meta.mtime > unix_now() {
            return Ok(Claim::Later(meta.mtime));
        }
        if meta.len < packet::HEADER_LEN as u64 && !is_old(meta.ctime) {
            // A writer between its open and its write (it waits for our lock): its
            // close brings the file back; ours must not.
            self.own_close(rel);
            return Ok(Claim::Skip);
        }
        // Under our lock the content is final (writers hold the lock while they write).
        let mut data = vec![0u8; meta.len as usize];
        if let Err(e) = (&file).read_exact(&mut data) {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                return Ok(Claim::Skip);
            }
            return Err(e);
        }
        let decoded = match packet::decode(&data) {
            Ok(p) => p,
            Err(PacketError::ShortHeader { .. }) => {
                if !is_old(meta.ctime) {
                    self.own_close(rel);
                    return Ok(Claim::Skip);
                }
                return Ok(Claim::Quarantine(
                    PacketError::ShortHeader { len: data.len() }.to_string(),
                ));
            }
            Err(e) => return Ok(Claim::Quarantine(e.to_string())),
        };
        held_lock(&self.held).held.insert(rel);
        Ok(Claim::Got(Task {
            file: Some(file),
            rel: rel.to_path_buf(),
            root: self.root.clone(),
            vars: decoded.vars,
            body: decoded.body,
            ino: meta.ino,
            held: self.held.clone(),
            reaper: self.reaper.clone(),
            dir: self.dir.clone(),
        }))
    }

    /// We opened `rel` for writing and leave it: skip the write-close event our close makes.
    pub(super) fn own_close(&self, rel: &Path) {
        held_lock(&self.held).remember_left(rel);
    }

    pub(super) fn quarantine(&mut self, rel: &Path, reason: String) -> io::Result<Notice> {
        let from = self.root.join(rel);
        let dir = self.root.join(QUARANTINE_DIR);
        let to = move_aside(&from, &dir)?;
        write_reason(&to, &reason);
        Ok(Notice::Quarantined { from, to, reason })
    }
}
