//! Direct delivery of signals aimed at one known worker (`workerN`), one hop instead of two.
//!
//! The master's table stays the only authority; it mirrors, for each signal number, whether the
//! target is a single worker (and whether it is any worker) into a 512-byte table shared by
//! every process of the instance ([`DirectRoutes`]: the routes section of the instance's
//! [`Region`], inherited across the fork and mapped by attached processes): 0 = through the
//! master, N = worker N. A raising
//! process reads its byte and sends the signal straight to that worker's direct socket, a
//! datagram socket bound next to the control socket (`<control>.w<N>`). Anything else goes to
//! the master as before, and so does every failed direct send (no such socket, its worker dead,
//! its queue full): the master then delivers or logs exactly as it always did. The table only
//! ever says "worker N" for a `workerN` target, so "first available", "all workers",
//! unregistered numbers and missing processes keep the master's semantics.

use std::io;
use std::os::fd::RawFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::fsmon::FileMonitor;
use crate::ipc::Region;
use crate::proto::control::Control;
use crate::signal::Target;

/// The table byte for `target`: the worker id if it names one worker (1-255), else 0.
pub fn table_byte(target: &Target) -> u8 {
    match target {
        Target::Worker(n) => u8::try_from(*n).unwrap_or(0),
        _ => 0,
    }
}

/// Path of worker `id`'s direct socket for the control socket at `control`.
pub fn socket_path(control: &Path, id: u32) -> PathBuf {
    let mut s = control.as_os_str().to_owned();
    s.push(format!(".w{id}"));
    PathBuf::from(s)
}

/// Bind worker `id`'s direct socket (non-blocking), replacing a stale one left by its
/// predecessor.
pub fn bind(control: &Path, id: u32) -> io::Result<UnixDatagram> {
    crate::sys::bind_datagram(&socket_path(control, id)).map(UnixDatagram::from)
}

/// The shared table: one byte per signal number (its single worker, or 0), then one byte per
/// signal number that is 1 when the target is `worker` (one idle worker). Cloning shares the
/// same mapping.
#[derive(Debug, Clone)]
pub struct DirectRoutes {
    region: Arc<Region>,
}

impl DirectRoutes {
    /// A table of its own (an anonymous region shared with later forks only).
    pub fn new() -> io::Result<Self> {
        Ok(DirectRoutes::on(Arc::new(Region::anonymous(0, 0)?)))
    }

    /// The routes section of `region`.
    pub fn on(region: Arc<Region>) -> Self {
        DirectRoutes { region }
    }

    /// Record `num`'s current target.
    pub fn set(&self, num: u8, target: &Target) {
        let any = u8::from(matches!(target, Target::AnyWorker));
        self.set_bytes(num, table_byte(target), any);
    }

    /// Set `num`'s bytes: its worker (0: through the master, N: worker N) and its 'any worker'
    /// flag (1: the target is `worker`).
    pub fn set_bytes(&self, num: u8, worker: u8, any: u8) {
        self.region.route(num).store(worker, Ordering::Relaxed);
        self.region.route_any(num).store(any, Ordering::Relaxed);
    }

    /// Copy every route of `other` into this table.
    pub fn copy_from(&self, other: &DirectRoutes) {
        for num in 0..=255u8 {
            self.set_bytes(
                num,
                other.region.route(num).load(Ordering::Relaxed),
                other.region.route_any(num).load(Ordering::Relaxed),
            );
        }
    }

    /// True if `num` goes to one idle worker (`worker`), whichever it is.
    pub fn any_worker(&self, num: u8) -> bool {
        self.region.route_any(num).load(Ordering::Relaxed) != 0
    }

    /// The worker `num` goes to directly, if any.
    pub fn worker(&self, num: u8) -> Option<u32> {
        match self.region.route(num).load(Ordering::Relaxed) {
            0 => None,
            n => Some(u32::from(n)),
        }
    }
}

/// A raising process's sender: its own non-blocking socket, the shared table, the control path.
#[derive(Debug)]
pub struct DirectSender {
    routes: DirectRoutes,
    control: PathBuf,
    sock: UnixDatagram,
}

impl DirectSender {
    pub fn new(routes: DirectRoutes, control: &Path) -> io::Result<Self> {
        let sock = UnixDatagram::unbound()?;
        sock.set_nonblocking(true)?;
        Ok(DirectSender {
            routes,
            control: control.to_path_buf(),
            sock,
        })
    }

    /// Deliver `num` straight to its worker. `false`: not a direct target, or the send failed
    /// (no socket, worker gone, queue full); the caller then sends it to the master.
    pub fn send(&self, num: u8) -> bool {
        match self.routes.worker(num) {
            Some(id) => self
                .sock
                .send_to(&[num], socket_path(&self.control, id))
                .is_ok(),
            None => false,
        }
    }

    pub fn routes(&self) -> &DirectRoutes {
        &self.routes
    }

    /// Send a control datagram to the master without blocking; false if it could not go.
    pub fn to_master(&self, msg: &[u8]) -> bool {
        self.sock.send_to(msg, &self.control).is_ok()
    }
}

/// The file monitors a worker reads itself (see `crate::master::MasterLoop::worker_monitors`):
/// the inotify instances of the monitors whose signal went to this worker (`workerN`) or to any
/// worker (`worker`) when they were added. The instance was made by the master before the fork,
/// so every process holding it reads the same queue and each read takes what it finds: the
/// event makes one hop (inotify to the worker) instead of two (inotify to the master, the master
/// to the worker).
pub struct WorkerMonitors {
    me: u32,
    monitors: Vec<FileMonitor<u8>>,
    sender: DirectSender,
}

impl WorkerMonitors {
    pub fn new(me: u32, monitors: Vec<FileMonitor<u8>>, sender: DirectSender) -> Self {
        WorkerMonitors {
            me,
            monitors,
            sender,
        }
    }

    /// The descriptors to poll.
    pub fn fds(&self) -> Vec<RawFd> {
        self.monitors.iter().map(FileMonitor::fd).collect()
    }

    /// Read instance `fd` (one read, never blocks; another worker may have taken the events)
    /// and return the signals this worker runs itself: those whose target, as the table says
    /// now, is this worker or any worker. The others go where the master would send them: to
    /// their worker directly, else to the master (`F<num>`), which routes or logs them as if it
    /// had read the event itself.
    pub fn read(&mut self, fd: RawFd) -> io::Result<Vec<u8>> {
        let Some(m) = self.monitors.iter_mut().find(|m| m.fd() == fd) else {
            return Ok(Vec::new());
        };
        let mut mine = Vec::new();
        for num in m.read()? {
            let routes = self.sender.routes();
            let worker = routes.worker(num);
            if worker == Some(self.me) || (worker.is_none() && routes.any_worker(num)) {
                mine.push(num);
            } else if !self.sender.send(num) {
                if let Ok(msg) = (Control::FileEvent { num }).encode() {
                    let _ = self.sender.to_master(&msg);
                }
            }
        }
        Ok(mine)
    }
}

impl std::fmt::Debug for WorkerMonitors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerMonitors")
            .field("me", &self.me)
            .field("instances", &self.monitors.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_single_worker_targets_are_direct() {
        assert_eq!(table_byte(&Target::Worker(3)), 3);
        assert_eq!(table_byte(&Target::Worker(256)), 0);
        for t in [
            Target::AnyWorker,
            Target::AllWorkers,
            Target::ActiveWorkers,
            Target::AnySpooler,
            Target::Mule(1),
            Target::Subscribed,
        ] {
            assert_eq!(table_byte(&t), 0, "{t:?}");
        }
    }

    #[test]
    fn sends_to_a_bound_worker_and_refuses_otherwise() {
        let tmp = tempfile::tempdir().unwrap();
        let control = tmp.path().join("control");
        let routes = DirectRoutes::new().unwrap();
        routes.set(5, &Target::Worker(2));
        routes.set(6, &Target::AllWorkers);
        routes.set(7, &Target::Worker(3));
        let sender = DirectSender::new(routes.clone(), &control).unwrap();
        let w2 = bind(&control, 2).unwrap();
        assert!(sender.send(5));
        assert!(!sender.send(6), "not a single worker: through the master");
        assert!(!sender.send(7), "no socket for worker 3");
        assert!(!sender.send(8), "unregistered: through the master");
        let mut b = [0u8; 8];
        assert_eq!(w2.recv(&mut b).unwrap(), 1);
        assert_eq!(b[0], 5);
        // Its worker gone: the socket file stays, the send is refused. Another test forking
        // at this moment holds a copy of the socket until its child exits: wait that out.
        drop(w2);
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while sender.send(5) {
            assert!(
                std::time::Instant::now() < until,
                "the send is still accepted"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // A new worker 2 binds again over the stale file.
        let w2 = bind(&control, 2).unwrap();
        assert!(sender.send(5));
        assert_eq!(w2.recv(&mut b).unwrap(), 1);
    }

    #[test]
    fn the_table_is_shared_across_fork() {
        let routes = DirectRoutes::new().unwrap();
        // SAFETY: the child only stores a byte and exits with _exit (no allocation, no locks).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            routes.set(9, &Target::Worker(4));
            // SAFETY: leaving the child without running the test harness's destructors.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(routes.worker(9), Some(4));
    }
}
