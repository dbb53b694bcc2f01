//! The receiving end of a process's signal channels (a worker's, a spooler's, a mule's): what
//! `_core.recv_signals` reads, one wait at a time.
//!
//! Each signal is one byte. The `private` channel (the master's socketpair to this process) and
//! the `direct` socket (senders that bypass the master) belong to this process alone, so every
//! byte waiting there is taken. The `shared` queue is read by every process of the kind, so a
//! wait takes one datagram and leaves the rest to the others. Two more fds only end a wait: the
//! signal wake-up fd (`signal.set_wakeup_fd`, so Python's handlers run) and a notify pipe
//! (another thread ran the signal `uwsgi.signal_wait` waits for); both are drained. A worker
//! also polls the file monitors it reads itself ([`crate::direct::WorkerMonitors`], one hop);
//! their signals come after the channels' in a wake-up.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use crate::sys;

/// A process's channels; a negative fd is not watched.
#[derive(Debug, Clone)]
pub struct Channels {
    /// The fds polled, in the order read: private, direct, shared, wake, notify, then the
    /// file monitors' (from `watched` on).
    fds: Vec<RawFd>,
    watched: usize,
    /// Shared queues (the kind's, and a mule's farms'): one datagram per wait.
    shared: Vec<RawFd>,
    wake: RawFd,
    notify: RawFd,
    /// The notify fd is drained by the caller before it next waits, not here (see
    /// [`Channels::notify_drained_by_caller`]).
    keep_notify: bool,
}

impl Channels {
    pub fn new(private: RawFd, direct: RawFd, shared: RawFd, wake: RawFd, notify: RawFd) -> Self {
        let fds = [private, direct, shared, wake, notify]
            .into_iter()
            .filter(|&fd| fd >= 0)
            .collect::<Vec<_>>();
        Channels {
            watched: fds.len(),
            fds,
            shared: vec![shared],
            wake,
            notify,
            keep_notify: false,
        }
    }

    /// Leave the notify fd's bytes in place when it ends a wait: the caller drains it with
    /// [`Channels::drain_kept_notify`] just before it next waits. A mule's wake socket is such
    /// an fd: reading it after the wake-up would put a system call between the sender's
    /// wake-up and the message (one per message), where reading it before the next sleep
    /// costs the same call after the message ran.
    pub fn notify_drained_by_caller(mut self) -> Self {
        self.keep_notify = true;
        self
    }

    /// Read one datagram waiting on a notify fd left in place (see
    /// [`Channels::notify_drained_by_caller`]), without blocking; nothing otherwise.
    pub fn drain_kept_notify(&self) {
        if self.keep_notify && self.notify >= 0 {
            let _ = sys::recv_nonblocking(self.notify, &mut [0u8; 16]);
        }
    }

    /// Also watch these shared queues (a mule's farms' signal queues): one datagram per wait.
    pub fn with_more_shared(mut self, fds: &[RawFd]) -> Self {
        for &fd in fds.iter().filter(|&&fd| fd >= 0) {
            self.fds.insert(self.watched, fd);
            self.watched += 1;
            self.shared.push(fd);
        }
        self
    }

    /// Also poll the file monitor descriptors `fds` (see [`Channels::recv_with`]).
    pub fn with_monitors(mut self, fds: impl IntoIterator<Item = RawFd>) -> Self {
        self.fds.extend(fds);
        self
    }

    /// Wait up to `max_wait` for any channel. `Ok(None)`: nothing happened. `Ok(Some(nums))`:
    /// the signal numbers read, possibly none (the wait was woken, or a peer hung up, so the
    /// caller should look at its own state).
    pub fn recv(&self, max_wait: Duration) -> io::Result<Option<Vec<u8>>> {
        self.recv_with(max_wait, |_| Ok(Vec::new()))
    }

    /// [`Channels::recv`], where `read_monitor(fd)` reads a ready file monitor descriptor (one
    /// of [`Channels::with_monitors`]') and returns the signals this process runs itself.
    pub fn recv_with(
        &self,
        max_wait: Duration,
        mut read_monitor: impl FnMut(RawFd) -> io::Result<Vec<u8>>,
    ) -> io::Result<Option<Vec<u8>>> {
        let ready = sys::poll_readable(&self.fds, max_wait)?;
        let mut nums = Vec::new();
        let mut buf = [0u8; 256];
        let mut woken = false;
        for (i, (&fd, &r)) in self.fds.iter().zip(&ready).enumerate() {
            if !r {
                continue;
            }
            if i >= self.watched {
                nums.extend(read_monitor(fd)?);
            } else if fd == self.notify && self.keep_notify {
                woken = true;
            } else if fd == self.wake || fd == self.notify {
                sys::drain_fd(fd);
                woken = true;
            } else if self.shared.contains(&fd) {
                if let Some(n) = sys::recv_nonblocking(fd, &mut buf)? {
                    nums.extend_from_slice(&buf[..n]);
                }
            } else {
                while let Some(n) = sys::recv_nonblocking(fd, &mut buf)? {
                    if n == 0 {
                        break;
                    }
                    nums.extend_from_slice(&buf[..n]);
                }
            }
        }
        // Ready without data (a peer hung up) also returns, so the caller looks at its flags.
        Ok((woken || !nums.is_empty() || ready.iter().any(|&r| r)).then_some(nums))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::{UnixDatagram, UnixStream};

    #[test]
    fn private_is_read_whole_and_shared_one_datagram_at_a_time() {
        let (priv_w, priv_r) = UnixDatagram::pair().unwrap();
        let (queue_w, queue_r) = UnixDatagram::pair().unwrap();
        let ch = Channels::new(priv_r.as_raw_fd(), -1, queue_r.as_raw_fd(), -1, -1);
        assert_eq!(ch.recv(Duration::from_millis(10)).unwrap(), None);
        priv_w.send(&[1]).unwrap();
        priv_w.send(&[2, 3]).unwrap();
        queue_w.send(&[4]).unwrap();
        queue_w.send(&[5]).unwrap();
        assert_eq!(
            ch.recv(Duration::from_secs(5)).unwrap(),
            Some(vec![1, 2, 3, 4])
        );
        assert_eq!(ch.recv(Duration::from_secs(5)).unwrap(), Some(vec![5]));
        assert_eq!(ch.recv(Duration::ZERO).unwrap(), None);
    }

    #[test]
    fn a_wake_up_ends_the_wait_empty_and_is_drained() {
        let (priv_w, priv_r) = UnixDatagram::pair().unwrap();
        let (mut wake_w, wake_r) = UnixStream::pair().unwrap();
        wake_r.set_nonblocking(true).unwrap();
        let ch = Channels::new(priv_r.as_raw_fd(), -1, -1, wake_r.as_raw_fd(), -1);
        wake_w.write_all(b"\x02\x02").unwrap();
        assert_eq!(ch.recv(Duration::from_secs(5)).unwrap(), Some(vec![]));
        assert_eq!(ch.recv(Duration::ZERO).unwrap(), None, "drained");
        drop(priv_w);
    }

    #[test]
    fn a_ready_monitor_is_read_by_the_callback_after_the_channels() {
        let (priv_w, priv_r) = UnixDatagram::pair().unwrap();
        let (mon_w, mon_r) = UnixDatagram::pair().unwrap();
        mon_r.set_nonblocking(true).unwrap();
        let ch =
            Channels::new(priv_r.as_raw_fd(), -1, -1, -1, -1).with_monitors([mon_r.as_raw_fd()]);
        mon_w.send(&[9]).unwrap();
        priv_w.send(&[1]).unwrap();
        let mut asked = Vec::new();
        let got = ch
            .recv_with(Duration::from_secs(5), |fd| {
                asked.push(fd);
                let mut b = [0u8; 8];
                let n = mon_r.recv(&mut b)?;
                Ok(b[..n].to_vec())
            })
            .unwrap();
        assert_eq!(got, Some(vec![1, 9]));
        assert_eq!(asked, vec![mon_r.as_raw_fd()]);
        // Without a callback's data the channels still work as before.
        assert_eq!(ch.recv(Duration::ZERO).unwrap(), None);
    }

    #[test]
    fn a_hung_up_channel_ends_the_wait_empty() {
        // the caller then looks at its own state (a stream peer closed: readable, 0 bytes)
        let (priv_w, priv_r) = UnixStream::pair().unwrap();
        let ch = Channels::new(priv_r.as_raw_fd(), -1, -1, -1, -1);
        drop(priv_w);
        assert_eq!(ch.recv(Duration::from_secs(5)).unwrap(), Some(vec![]));
    }
}
