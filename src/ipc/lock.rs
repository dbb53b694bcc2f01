//! uWSGI's user locks (`uwsgi.lock(n)`), in the region's lock table.
//!
//! Each lock is a process-shared, robust, error-checking pthread mutex, as uWSGI's are
//! process-shared and robust. Robust: when the holder dies (kill -9, or a thread ends while
//! holding it) the kernel marks the mutex and the next taker gets it at once with `EOWNERDEAD`;
//! we make it consistent and report the pid that last took it, so the caller logs one line.
//! Error-checking: unlocking a lock this thread does not hold, or taking one it already holds,
//! is an error instead of silent corruption or a deadlock.
//!
//! The pid reported for a dead holder is the last taker's, recorded right after each
//! acquisition (never cleared, so unlock stays one call): a holder killed between acquiring and
//! recording is reported as the taker before it. The pid is cached per process (reset in the
//! child of every fork), so taking a lock makes no system call when it is free.
//!
//! Waiting is bounded ([`Region::lock_for`]): the binding waits in slices with the GIL released
//! and looks at signals between them.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::region::Region;

// glibc's values (not exported by the libc crate for linux-gnu).
const PTHREAD_PROCESS_SHARED: libc::c_int = 1;
const PTHREAD_MUTEX_ERRORCHECK: libc::c_int = 2;
const PTHREAD_MUTEX_ROBUST: libc::c_int = 1;

/// What can go wrong with a lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("invalid lock number {n}: this instance has locks 0 to {last}", last = i64::from(*.count) - 1)]
    OutOfRange { n: i64, count: u32 },
    #[error("this instance has no locks")]
    NoLocks,
    #[error("lock {n} is not held by this thread: cannot unlock it")]
    NotHeld { n: u32 },
    #[error("lock {n} is already held by this thread (taking it again would deadlock)")]
    AlreadyHeld { n: u32 },
    #[error("lock {n}: {source}")]
    Os { n: u32, source: io::Error },
}

/// A successful acquisition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// `Some(pid)`: the previous holder died holding the lock (pid 0: never recorded); the
    /// data it protects may be half-updated.
    pub recovered_from: Option<u32>,
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// Initialise a lock slot's mutex (the region's creator, once, before anyone else maps it).
pub(crate) fn init(m: *mut libc::pthread_mutex_t) -> io::Result<()> {
    // SAFETY: `m` points to an unused lock slot of a fresh region; the attribute object is
    // initialised before use and destroyed after.
    unsafe {
        let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
        check(libc::pthread_mutexattr_init(&mut attr))?;
        let set = check(libc::pthread_mutexattr_setpshared(
            &mut attr,
            PTHREAD_PROCESS_SHARED,
        ))
        .and_then(|()| {
            check(libc::pthread_mutexattr_settype(
                &mut attr,
                PTHREAD_MUTEX_ERRORCHECK,
            ))
        })
        .and_then(|()| {
            check(libc::pthread_mutexattr_setrobust(
                &mut attr,
                PTHREAD_MUTEX_ROBUST,
            ))
        })
        .and_then(|()| check(libc::pthread_mutex_init(m, &attr)));
        libc::pthread_mutexattr_destroy(&mut attr);
        set
    }
}

impl Region {
    /// Lock number `n` checked against the table.
    pub fn lock_number(&self, n: i64) -> Result<u32, LockError> {
        let count = self.nlocks();
        if count == 0 {
            return Err(LockError::NoLocks);
        }
        u32::try_from(n)
            .ok()
            .filter(|&k| k < count)
            .ok_or(LockError::OutOfRange { n, count })
    }

    fn taken(&self, n: u32, rc: libc::c_int) -> Result<Option<Taken>, LockError> {
        match rc {
            0 => {
                self.holder(n)
                    .store(crate::sys::this_pid(), Ordering::Relaxed);
                Ok(Some(Taken {
                    recovered_from: None,
                }))
            }
            libc::EOWNERDEAD => {
                // SAFETY: this thread owns the mutex (EOWNERDEAD hands it over).
                unsafe { libc::pthread_mutex_consistent(self.mutex(n)) };
                let dead = self
                    .holder(n)
                    .swap(crate::sys::this_pid(), Ordering::Relaxed);
                Ok(Some(Taken {
                    recovered_from: Some(dead),
                }))
            }
            libc::EBUSY | libc::ETIMEDOUT => Ok(None),
            libc::EDEADLK => Err(LockError::AlreadyHeld { n }),
            e => Err(LockError::Os {
                n,
                source: io::Error::from_raw_os_error(e),
            }),
        }
    }

    /// Take lock `n` if it is free (`None`: another thread holds it).
    pub fn try_lock(&self, n: u32) -> Result<Option<Taken>, LockError> {
        let n = self.lock_number(i64::from(n))?;
        // SAFETY: `n` is in range, so the mutex lies in the mapping and was initialised.
        let rc = unsafe { libc::pthread_mutex_trylock(self.mutex(n)) };
        self.taken(n, rc)
    }

    /// Take lock `n`, waiting up to `max` (`None`: still held by another thread then).
    pub fn lock_for(&self, n: u32, max: Duration) -> Result<Option<Taken>, LockError> {
        let n = self.lock_number(i64::from(n))?;
        // The timed wait takes a CLOCK_REALTIME deadline: a clock step only changes one
        // slice's length, the caller loops anyway.
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: writes the current time into `now`.
        unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
        let nanos = i64::from(max.subsec_nanos()) + now.tv_nsec;
        let secs = i64::try_from(max.as_secs()).unwrap_or(i64::MAX / 2);
        let abs = libc::timespec {
            tv_sec: now
                .tv_sec
                .saturating_add(secs)
                .saturating_add(nanos / 1_000_000_000),
            tv_nsec: nanos % 1_000_000_000,
        };
        // SAFETY: as in `try_lock`; `abs` is a valid timespec.
        let rc = unsafe { libc::pthread_mutex_timedlock(self.mutex(n), &abs) };
        self.taken(n, rc)
    }

    /// Release lock `n`, which this thread must hold.
    pub fn unlock(&self, n: u32) -> Result<(), LockError> {
        let n = self.lock_number(i64::from(n))?;
        // SAFETY: as in `try_lock`. An error-checking mutex refuses a non-owner (EPERM).
        match unsafe { libc::pthread_mutex_unlock(self.mutex(n)) } {
            0 => Ok(()),
            libc::EPERM => Err(LockError::NotHeld { n }),
            e => Err(LockError::Os {
                n,
                source: io::Error::from_raw_os_error(e),
            }),
        }
    }

    /// Whether lock `n` is held (by anyone, this thread included). A dead holder's lock is
    /// recovered on the way (reported in the second value) and then free.
    pub fn is_locked(&self, n: u32) -> Result<(bool, Option<Taken>), LockError> {
        match self.try_lock(n) {
            Ok(Some(t)) => {
                self.unlock(n)?;
                Ok((false, t.recovered_from.is_some().then_some(t)))
            }
            Ok(None) | Err(LockError::AlreadyHeld { .. }) => Ok((true, None)),
            Err(e) => Err(e),
        }
    }

    /// The pid that last took lock `n` (0: none yet).
    pub fn last_taker(&self, n: u32) -> Result<u32, LockError> {
        let n = self.lock_number(i64::from(n))?;
        Ok(self.holder(n).load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_child(pid: libc::pid_t) -> i32 {
        let mut status = 0;
        // SAFETY: waits for a child forked by the test.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        status
    }

    /// Fork a child that runs `f` and leaves with its result as exit code.
    fn fork_child(f: impl FnOnce() -> i32) -> libc::pid_t {
        // SAFETY: the test harness's other threads hold no lock the child needs: the child only
        // calls pthread and atomics on the shared region and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let code = f();
            // SAFETY: leaving the child without running the harness's destructors.
            unsafe { libc::_exit(code) };
        }
        pid
    }

    #[test]
    fn numbers_are_checked() {
        let r = Region::anonymous(0, 3).unwrap();
        assert_eq!(r.lock_number(2).unwrap(), 2);
        let e = r.lock_number(3).unwrap_err();
        assert!(e.to_string().contains("locks 0 to 2"), "{e}");
        assert!(r.lock_number(-1).is_err());
        assert!(matches!(
            r.try_lock(3),
            Err(LockError::OutOfRange { n: 3, count: 3 })
        ));
        assert!(matches!(
            Region::anonymous(0, 0).unwrap().lock_number(0),
            Err(LockError::NoLocks)
        ));
    }

    #[test]
    fn one_thread_takes_releases_and_is_told_its_mistakes() {
        let r = Region::anonymous(0, 2).unwrap();
        assert_eq!(r.is_locked(0).unwrap(), (false, None));
        assert_eq!(
            r.try_lock(0).unwrap(),
            Some(Taken {
                recovered_from: None
            })
        );
        assert_eq!(r.last_taker(0).unwrap(), std::process::id());
        assert!(r.is_locked(0).unwrap().0);
        assert!(!r.is_locked(1).unwrap().0);
        assert!(matches!(
            r.try_lock(0),
            Err(LockError::AlreadyHeld { n: 0 })
        ));
        assert!(matches!(
            r.lock_for(0, Duration::from_millis(10)),
            Err(LockError::AlreadyHeld { n: 0 })
        ));
        assert!(matches!(r.unlock(1), Err(LockError::NotHeld { n: 1 })));
        r.unlock(0).unwrap();
        assert!(matches!(r.unlock(0), Err(LockError::NotHeld { n: 0 })));
    }

    #[test]
    fn another_process_waits_and_cannot_unlock() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("r");
        let r = Region::create(&path, 0, 1).unwrap();
        r.try_lock(0).unwrap().unwrap();
        let child = fork_child(|| {
            let r = Region::open(&path).unwrap();
            let busy = r.try_lock(0).unwrap().is_none();
            let timed_out = r.lock_for(0, Duration::from_millis(50)).unwrap().is_none();
            let refused = matches!(r.unlock(0), Err(LockError::NotHeld { .. }));
            let seen = r.is_locked(0).unwrap().0;
            i32::from(busy)
                + 2 * i32::from(timed_out)
                + 4 * i32::from(refused)
                + 8 * i32::from(seen)
        });
        let status = wait_child(child);
        assert!(libc::WIFEXITED(status));
        assert_eq!(libc::WEXITSTATUS(status), 15);
        r.unlock(0).unwrap();
    }

    #[test]
    fn a_killed_holder_never_leaves_the_lock_stuck() {
        let r = Region::anonymous(0, 1).unwrap();
        let (rd, wr) = {
            let mut fds = [0; 2];
            // SAFETY: fills two fds.
            assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
            (fds[0], fds[1])
        };
        let holder = fork_child(|| {
            r.try_lock(0).unwrap().unwrap();
            // SAFETY: tell the parent, then sleep until killed.
            unsafe {
                libc::write(wr, b"x".as_ptr().cast(), 1);
                libc::pause();
            }
            0
        });
        let mut b = [0u8; 1];
        // SAFETY: waits for the child's byte.
        assert_eq!(unsafe { libc::read(rd, b.as_mut_ptr().cast(), 1) }, 1);
        assert!(r.is_locked(0).unwrap().0);
        // SAFETY: kills the child forked above.
        unsafe { libc::kill(holder, libc::SIGKILL) };
        wait_child(holder);
        // Handed over at once (robust mutex), well inside the one second promised.
        let t = r.lock_for(0, Duration::from_secs(1)).unwrap().unwrap();
        assert_eq!(t.recovered_from, Some(holder as u32));
        r.unlock(0).unwrap();
        // Consistent again: an ordinary lock from now on.
        assert_eq!(r.try_lock(0).unwrap().unwrap().recovered_from, None);
        r.unlock(0).unwrap();
    }

    #[test]
    fn processes_count_under_the_lock_without_losing_an_increment() {
        let r = Region::anonymous(1, 1).unwrap();
        let counter = r.slot_field(0, 0).unwrap();
        let n = 4;
        let per = 20_000;
        let children: Vec<_> = (0..n)
            .map(|_| {
                fork_child(|| {
                    for _ in 0..per {
                        while r.lock_for(0, Duration::from_millis(100)).unwrap().is_none() {}
                        // A read-modify-write that only the lock makes safe.
                        let v = counter.load(Ordering::Relaxed);
                        counter.store(v + 1, Ordering::Relaxed);
                        r.unlock(0).unwrap();
                    }
                    0
                })
            })
            .collect();
        for c in children {
            assert_eq!(libc::WEXITSTATUS(wait_child(c)), 0);
        }
        assert_eq!(counter.load(Ordering::Relaxed), i64::from(n * per));
    }

    #[test]
    fn the_cached_pid_follows_fork() {
        let r = Region::anonymous(0, 1).unwrap();
        r.try_lock(0).unwrap().unwrap();
        r.unlock(0).unwrap();
        assert_eq!(r.last_taker(0).unwrap(), std::process::id());
        let child = fork_child(|| {
            r.try_lock(0).unwrap().unwrap();
            r.unlock(0).unwrap();
            0
        });
        wait_child(child);
        assert_eq!(r.last_taker(0).unwrap(), child as u32);
    }
}
