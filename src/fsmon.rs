//! File monitors over inotify: each monitor is a path (file or directory) and a token; a batch of
//! events touching a monitor reports its token once.
//!
//! uWSGI's event set: attribute change, create, delete, delete-self, modify, move-self,
//! moved-from, moved-to. Beyond uWSGI:
//! - a path that does not exist is an error at registration (uWSGI's watch fails silently);
//! - a file replaced by rename or delete-and-create (how editors and deploy tools save) keeps
//!   being watched: the parent directory is watched for the name, and the watch is re-added on
//!   the new inode (uWSGI's watch dies with the old inode);
//! - `recursive` directories watch every subdirectory, including ones created later.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};

/// Why a monitor could not be added.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("cannot monitor {path}: it does not exist")]
    NotFound { path: PathBuf },
    #[error("cannot monitor {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn events() -> WatchMask {
    WatchMask::ATTRIB
        | WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::DELETE_SELF
        | WatchMask::MODIFY
        | WatchMask::MOVE_SELF
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
}

/// The directory holding `path` (`.` for a bare name).
fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// What one inotify watch stands for.
#[derive(Debug, Clone)]
enum Role {
    /// The monitored object itself (a file or a directory, or a subdirectory of a recursive one).
    Target { monitor: usize },
    /// The parent directory of a monitored file, watched only for that file's name.
    Parent { monitor: usize },
}

#[derive(Debug)]
struct Monitor<T> {
    path: PathBuf,
    name: Option<OsString>,
    is_dir: bool,
    recursive: bool,
    token: T,
}

/// A set of monitors sharing one inotify descriptor.
pub struct FileMonitor<T> {
    inotify: Inotify,
    monitors: Vec<Monitor<T>>,
    roles: HashMap<WatchDescriptor, Vec<Role>>,
    /// Subdirectory paths of recursive monitors, by watch.
    dirs: HashMap<WatchDescriptor, PathBuf>,
    buf: Vec<u8>,
}

impl<T: Clone> FileMonitor<T> {
    pub fn new() -> io::Result<Self> {
        Ok(FileMonitor {
            inotify: Inotify::init()?,
            monitors: Vec::new(),
            roles: HashMap::new(),
            dirs: HashMap::new(),
            buf: vec![0; 64 * 1024],
        })
    }

    /// The descriptor to poll for readability.
    pub fn fd(&self) -> RawFd {
        self.inotify.as_raw_fd()
    }

    fn add_watch(
        &mut self,
        path: &Path,
        mask: WatchMask,
        role: Role,
    ) -> io::Result<WatchDescriptor> {
        let wd = self.inotify.watches().add(path, mask)?;
        let roles = self.roles.entry(wd.clone()).or_default();
        roles.push(role);
        Ok(wd)
    }

    /// Watch `path`; events on it report `token`.
    pub fn add(&mut self, path: &Path, recursive: bool, token: T) -> Result<(), MonitorError> {
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => MonitorError::NotFound {
                path: path.to_path_buf(),
            },
            _ => MonitorError::Io {
                path: path.to_path_buf(),
                source: e,
            },
        })?;
        let io_err = |source| MonitorError::Io {
            path: path.to_path_buf(),
            source,
        };
        let monitor = self.monitors.len();
        let is_dir = meta.is_dir();
        self.monitors.push(Monitor {
            path: path.to_path_buf(),
            name: path.file_name().map(OsStr::to_os_string),
            is_dir,
            recursive: recursive && is_dir,
            token,
        });
        self.add_watch(path, events(), Role::Target { monitor })
            .map_err(io_err)?;
        if is_dir {
            if recursive {
                self.watch_tree(path, monitor);
            }
        } else {
            self.add_watch(
                &parent_of(path),
                WatchMask::CREATE | WatchMask::MOVED_TO | WatchMask::ONLYDIR,
                Role::Parent { monitor },
            )
            .map_err(io_err)?;
        }
        Ok(())
    }

    /// Learn the watches again from the paths, as registration made them: after another
    /// process sharing this inotify instance re-watched a replaced file or a new subdirectory,
    /// this copy does not know the new watch descriptors (inotify gives an existing watch's own
    /// descriptor back when its inode is watched again, so nothing is watched twice).
    pub fn resync(&mut self) {
        self.roles.clear();
        self.dirs.clear();
        for monitor in 0..self.monitors.len() {
            let (path, is_dir, recursive) = {
                let m = &self.monitors[monitor];
                (m.path.clone(), m.is_dir, m.recursive)
            };
            let _ = self.add_watch(&path, events(), Role::Target { monitor });
            if is_dir {
                if recursive {
                    self.watch_tree(&path, monitor);
                }
            } else {
                let _ = self.add_watch(
                    &parent_of(&path),
                    WatchMask::CREATE | WatchMask::MOVED_TO | WatchMask::ONLYDIR,
                    Role::Parent { monitor },
                );
            }
        }
    }

    fn watch_tree(&mut self, dir: &Path, monitor: usize) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in rd.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let sub = entry.path();
                if let Ok(wd) = self.add_watch(&sub, events(), Role::Target { monitor }) {
                    self.dirs.insert(wd, sub.clone());
                }
                self.watch_tree(&sub, monitor);
            }
        }
    }

    /// Read what is pending (one read, never blocks) and return the tokens of the monitors it
    /// touched, each once, in registration order.
    pub fn read(&mut self) -> io::Result<Vec<T>> {
        let mut touched: HashSet<usize> = HashSet::new();
        let mut rewatch: Vec<usize> = Vec::new();
        let mut new_dirs: Vec<(usize, PathBuf)> = Vec::new();
        let mut buf = std::mem::take(&mut self.buf);
        let mut resynced = false;
        // One read per wake-up (uWSGI's too): a second one would only say EAGAIN, on the event's
        // path. Whatever did not fit in the buffer wakes the next poll at once.
        let result: io::Result<()> = 'read: {
            let evs = match self.inotify.read_events(&mut buf) {
                Ok(evs) => evs,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break 'read Ok(()),
                Err(e) => break 'read Err(e),
            };
            for ev in evs {
                if ev.mask.contains(EventMask::Q_OVERFLOW) {
                    // Events were lost: report every monitor rather than miss one.
                    touched.extend(0..self.monitors.len());
                    continue;
                }
                if !resynced
                    && !ev.mask.contains(EventMask::IGNORED)
                    && !self.roles.contains_key(&ev.wd)
                {
                    // A watch another reader of this instance added (see `resync`).
                    self.resync();
                    resynced = true;
                }
                let Some(roles) = self.roles.get(&ev.wd) else {
                    continue;
                };
                for role in roles {
                    match role {
                        Role::Target { monitor } => {
                            if ev.mask.contains(EventMask::IGNORED) {
                                continue;
                            }
                            touched.insert(*monitor);
                            let m = &self.monitors[*monitor];
                            if ev.mask.contains(EventMask::ISDIR)
                                && m.recursive
                                && ev.mask.intersects(EventMask::CREATE | EventMask::MOVED_TO)
                            {
                                if let Some(name) = ev.name {
                                    let base = self
                                        .dirs
                                        .get(&ev.wd)
                                        .cloned()
                                        .unwrap_or_else(|| m.path.clone());
                                    new_dirs.push((*monitor, base.join(name)));
                                }
                            }
                        }
                        Role::Parent { monitor } => {
                            let m = &self.monitors[*monitor];
                            if ev.name.is_some_and(|n| Some(n) == m.name.as_deref()) {
                                // The file was (re)created or renamed into place.
                                touched.insert(*monitor);
                                rewatch.push(*monitor);
                            }
                        }
                    }
                }
                if ev.mask.contains(EventMask::IGNORED) {
                    self.roles.remove(&ev.wd);
                    self.dirs.remove(&ev.wd);
                }
            }
            Ok(())
        };
        self.buf = buf;
        result?;
        for monitor in rewatch {
            let path = self.monitors[monitor].path.clone();
            let _ = self.add_watch(&path, events(), Role::Target { monitor });
            // inotify returns the same descriptor for the same inode: drop duplicate roles.
            for roles in self.roles.values_mut() {
                let mut seen = false;
                roles.retain(|r| match r {
                    Role::Target { monitor: m } if *m == monitor => {
                        !std::mem::replace(&mut seen, true)
                    }
                    _ => true,
                });
            }
        }
        for (monitor, dir) in new_dirs {
            if let Ok(wd) = self.add_watch(&dir, events(), Role::Target { monitor }) {
                self.dirs.insert(wd, dir.clone());
            }
            self.watch_tree(&dir, monitor);
        }
        let mut order: Vec<usize> = touched.into_iter().collect();
        order.sort_unstable();
        Ok(order
            .into_iter()
            .map(|i| self.monitors[i].token.clone())
            .collect())
    }

    /// Number of monitors.
    pub fn len(&self) -> usize {
        self.monitors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.monitors.is_empty()
    }

    /// The path and kind of monitor `i`, for logs.
    pub fn describe(&self, i: usize) -> Option<(&Path, bool)> {
        self.monitors.get(i).map(|m| (m.path.as_path(), m.is_dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn wait(m: &mut FileMonitor<u32>) -> Vec<u32> {
        for _ in 0..100 {
            let got = m.read().unwrap();
            if !got.is_empty() {
                return got;
            }
            crate::sys::poll_readable(&[m.fd()], Duration::from_millis(20)).unwrap();
        }
        vec![]
    }

    #[test]
    fn missing_path_is_an_error() {
        let mut m = FileMonitor::<u32>::new().unwrap();
        let err = m.add(Path::new("/nonexistent/zzz"), false, 1).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }

    #[test]
    fn file_write_and_replace_by_rename() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("conf.txt");
        std::fs::write(&f, "a").unwrap();
        let mut m = FileMonitor::new().unwrap();
        m.add(&f, false, 7).unwrap();
        std::fs::write(&f, "b").unwrap();
        assert_eq!(wait(&mut m), vec![7]);
        // An editor's save: write a new file, rename it over the old one.
        let new = tmp.path().join(".conf.txt.swp");
        std::fs::write(&new, "c").unwrap();
        std::fs::rename(&new, &f).unwrap();
        assert_eq!(wait(&mut m), vec![7]);
        // The watch follows the new inode.
        std::fs::write(&f, "d").unwrap();
        assert_eq!(wait(&mut m), vec![7]);
        // Other files in the same directory do not count.
        std::fs::write(tmp.path().join("other"), "x").unwrap();
        assert_eq!(wait(&mut m), Vec::<u32>::new());
    }

    #[test]
    fn directory_children_and_recursive() {
        let tmp = tempfile::tempdir().unwrap();
        let mut flat = FileMonitor::new().unwrap();
        flat.add(tmp.path(), false, 1).unwrap();
        let mut deep = FileMonitor::new().unwrap();
        deep.add(tmp.path(), true, 2).unwrap();
        std::fs::create_dir(tmp.path().join("sub")).unwrap();
        assert_eq!(wait(&mut flat), vec![1]);
        assert_eq!(wait(&mut deep), vec![2]);
        std::fs::write(tmp.path().join("sub/file"), "x").unwrap();
        assert_eq!(wait(&mut deep), vec![2]);
        assert_eq!(wait(&mut flat), Vec::<u32>::new());
    }
}
