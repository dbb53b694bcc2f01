//! Thin, safe wrappers over the few Linux calls std does not offer. The crate's `unsafe` lives here.
//!
//! Every wrapper returns `io::Result` and retries on `EINTR` only where the call is idempotent.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn whole_file_lock(kind: libc::c_short) -> libc::flock {
    // SAFETY: flock is a plain C struct; all-zero is a valid value (whole file from offset 0).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl
}

/// Try to take an exclusive open-file-description lock on the whole file without waiting.
///
/// OFD locks conflict with uWSGI's classic POSIX `fcntl` locks (and with each other across
/// processes and threads), unlike `flock`, which is invisible to uWSGI. Returns `Ok(false)` if
/// another holder has it.
/// Take ownership of an inherited descriptor (a master re-executed by a reload gets its
/// control socket this way); an fd that is not open is an error, never adopted. It is made
/// close-on-exec again.
pub fn adopt_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD/F_SETFD only read and set flags of a descriptor number.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) })?;
    // SAFETY: the descriptor is open (F_GETFD succeeded) and the caller hands it over: nothing
    // else in this process owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Clear (`inherit` true) or set close-on-exec on `fd`.
pub fn set_inheritable(fd: RawFd, inherit: bool) -> io::Result<()> {
    // SAFETY: F_GETFD/F_SETFD only read and set flags of a descriptor number.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    let flags = if inherit {
        flags & !libc::FD_CLOEXEC
    } else {
        flags | libc::FD_CLOEXEC
    };
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, flags) })?;
    Ok(())
}

pub fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    let fl = whole_file_lock(libc::F_WRLCK as libc::c_short);
    // SAFETY: valid fd and a pointer to a live flock struct.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &fl) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(err),
    }
}

/// Take an exclusive OFD lock on the whole file, waiting for it. A signal ends the wait with
/// `Interrupted`, so that the caller can run its handlers (Ctrl-C) before trying again.
pub fn lock_exclusive(file: &File) -> io::Result<()> {
    let fl = whole_file_lock(libc::F_WRLCK as libc::c_short);
    // SAFETY: valid fd and a pointer to a live flock struct.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLKW, &fl) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// True if some process holds a conflicting lock (POSIX or OFD) on the file.
pub fn is_locked(file: &File) -> io::Result<bool> {
    let mut fl = whole_file_lock(libc::F_WRLCK as libc::c_short);
    // SAFETY: valid fd and a pointer to a live, writable flock struct.
    cvt(unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) })?;
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

/// Set a file's atime and mtime to `secs` (whole seconds), as uWSGI does for `at`.
pub fn set_times(file: &File, secs: i64) -> io::Result<()> {
    let ts = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: 0,
    };
    let times = [ts, ts];
    // SAFETY: valid fd and a pointer to two timespecs.
    cvt(unsafe { libc::futimens(file.as_raw_fd(), times.as_ptr()) })?;
    Ok(())
}

/// Rename without replacing an existing target. Falls back to plain rename where the
/// filesystem lacks RENAME_NOREPLACE (the names we generate are unique anyway).
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let (f, t) = (cpath(from)?, cpath(to)?);
    // SAFETY: two valid NUL-terminated paths.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOSYS) => std::fs::rename(from, to),
        _ => Err(err),
    }
}

/// Open an unnamed regular file in `dir` (`O_TMPFILE`): invisible until [`link_fd`] names it,
/// and gone without a trace if the process dies first. `Ok(None)` where the filesystem lacks it.
pub fn open_unnamed(dir: &Path, mode: libc::mode_t) -> io::Result<Option<File>> {
    let c = cpath(dir)?;
    // SAFETY: valid NUL-terminated path; on success we own the returned fd.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_TMPFILE | libc::O_WRONLY | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    if fd < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EOPNOTSUPP) | Some(libc::EISDIR) | Some(libc::EINVAL) => Ok(None),
            _ => Err(err),
        };
    }
    // SAFETY: fd is a fresh descriptor owned by nobody else.
    Ok(Some(unsafe {
        <File as std::os::fd::FromRawFd>::from_raw_fd(fd)
    }))
}

/// Give an unnamed file (from [`open_unnamed`]) its name; fails with `AlreadyExists` rather than
/// replacing a file. `AT_EMPTY_PATH` names the descriptor itself but needs CAP_DAC_READ_SEARCH;
/// without it (ENOENT) the link goes through `/proc/self/fd`, which needs no privilege but costs
/// a path walk through procfs, and the process stops trying the first way.
pub fn link_fd(file: &File, to: &Path) -> io::Result<()> {
    use std::sync::atomic::{AtomicBool, Ordering};
    static EMPTY_PATH_OK: AtomicBool = AtomicBool::new(true);
    let dst = cpath(to)?;
    if EMPTY_PATH_OK.load(Ordering::Relaxed) {
        // SAFETY: valid fd, empty NUL-terminated source, NUL-terminated destination.
        let rc = unsafe {
            libc::linkat(
                file.as_raw_fd(),
                c"".as_ptr(),
                libc::AT_FDCWD,
                dst.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if !matches!(err.raw_os_error(), Some(libc::ENOENT) | Some(libc::EPERM)) {
            return Err(err);
        }
        let via_proc = link_fd_proc(file, &dst);
        if via_proc.is_ok() {
            EMPTY_PATH_OK.store(false, Ordering::Relaxed);
        }
        return via_proc;
    }
    link_fd_proc(file, &dst)
}

fn link_fd_proc(file: &File, dst: &CString) -> io::Result<()> {
    let src = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "bad fd path"))?;
    // SAFETY: two valid NUL-terminated paths.
    cvt(unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            src.as_ptr(),
            libc::AT_FDCWD,
            dst.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    })?;
    Ok(())
}

/// A directory handle for the `*_at` calls below: relative lookups skip walking the directory's
/// own path on every call.
pub fn open_dir_path(dir: &Path) -> io::Result<OwnedFd> {
    let c = cpath(dir)?;
    // SAFETY: NUL-terminated path; the returned fd is owned by the OwnedFd.
    let fd = cvt(unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: fd was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What the spooler needs from an `lstat` or an `fstat`.
#[derive(Debug, Clone, Copy)]
pub struct StatAt {
    pub is_file: bool,
    pub len: u64,
    pub mtime: i64,
    pub ctime: i64,
    pub nlink: u64,
    pub uid: u32,
    pub mode: u32,
    pub ino: u64,
}

impl StatAt {
    fn of(st: &libc::stat) -> Self {
        StatAt {
            is_file: st.st_mode & libc::S_IFMT == libc::S_IFREG,
            len: st.st_size as u64,
            mtime: st.st_mtime,
            ctime: st.st_ctime,
            nlink: st.st_nlink,
            uid: st.st_uid,
            mode: st.st_mode,
            ino: st.st_ino,
        }
    }
}

/// `fstat` of an open file (std's `metadata` asks `statx` for more than a claim needs).
pub fn fstat(file: &File) -> io::Result<StatAt> {
    // SAFETY: stat is a plain C struct filled by the kernel.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd, writable stat buffer.
    cvt(unsafe { libc::fstat(file.as_raw_fd(), &mut st) })?;
    Ok(StatAt::of(&st))
}

/// `lstat` of `rel` under `dir`.
pub fn lstat_at(dir: &OwnedFd, rel: &Path) -> io::Result<StatAt> {
    let c = cpath(rel)?;
    // SAFETY: stat is a plain C struct filled by the kernel.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid dir fd, NUL-terminated path, writable stat buffer.
    cvt(unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            c.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(StatAt::of(&st))
}

/// Open `rel` under `dir` read-write without following a symlink or blocking (a FIFO dropped in
/// the directory must not hang the spooler). Tries `O_NOATIME` first: a spooler reads every
/// file once, and updating its access time would cost an inode write per task; the kernel
/// refuses it (EPERM) for files of another owner, then `noatime` is cleared.
pub fn open_rw_at(dir: &OwnedFd, rel: &Path, noatime: &mut bool) -> io::Result<File> {
    let c = cpath(rel)?;
    let base = libc::O_RDWR | libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK;
    loop {
        let flags = if *noatime {
            base | libc::O_NOATIME
        } else {
            base
        };
        // SAFETY: valid dir fd, NUL-terminated path; the fd is owned by the File.
        let rc = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags) };
        if rc >= 0 {
            // SAFETY: fd was just opened and is owned by nobody else.
            return Ok(unsafe { File::from_raw_fd(rc) });
        }
        let err = io::Error::last_os_error();
        if *noatime && err.raw_os_error() == Some(libc::EPERM) {
            *noatime = false;
            continue;
        }
        return Err(err);
    }
}

/// Open `rel` under `dir` read-only (a probe that emits no write-close event).
pub fn open_ro_at(dir: &OwnedFd, rel: &Path) -> io::Result<File> {
    let c = cpath(rel)?;
    let flags = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK;
    // SAFETY: valid dir fd, NUL-terminated path; the fd is owned by the File.
    let fd = cvt(unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags) })?;
    // SAFETY: fd was just opened and is owned by nobody else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Remove the file `rel` under `dir`.
pub fn unlink_at(dir: &OwnedFd, rel: &Path) -> io::Result<()> {
    let c = cpath(rel)?;
    // SAFETY: valid dir fd, NUL-terminated path.
    cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) })?;
    Ok(())
}

/// Put the calling thread in the `SCHED_BATCH` class: background work whose wake-ups should not
/// preempt the thread that woke it. Best effort (the thread keeps its class if refused).
pub fn make_thread_batch() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; param is a live struct.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
}

/// A non-blocking datagram socket bound at `path`, replacing a socket file left there (by the
/// previous process of the same slot). The error names the path.
pub fn bind_datagram(path: &Path) -> io::Result<OwnedFd> {
    let at = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(at(e)),
    }
    let sock = std::os::unix::net::UnixDatagram::bind(path).map_err(at)?;
    sock.set_nonblocking(true).map_err(at)?;
    Ok(sock.into())
}

/// Ask the kernel to send `sig` to this process when its parent dies (`PR_SET_PDEATHSIG`).
pub fn set_parent_death_signal(sig: i32) -> io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number by value; no memory is passed.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::c_ulong::from(sig.unsigned_abs()),
            0,
            0,
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// fsync a directory, so that a rename or unlink inside it survives power loss.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

const ATTEMPTS_XATTR: &[u8] = b"user.uwsgidecorators.attempts\0";

/// Failed attempts recorded on the file (0 when none, or when xattrs are unsupported).
pub fn read_attempts(file: &File) -> u32 {
    let mut buf = [0u8; 16];
    // SAFETY: valid fd, NUL-terminated name, writable buffer of the given size.
    let n = unsafe {
        libc::fgetxattr(
            file.as_raw_fd(),
            ATTEMPTS_XATTR.as_ptr().cast(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n <= 0 {
        return 0;
    }
    std::str::from_utf8(&buf[..n as usize])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Record the failed attempts on the file itself, so every spooler process sees the count.
pub fn write_attempts(file: &File, attempts: u32) -> io::Result<()> {
    let text = attempts.to_string();
    // SAFETY: valid fd, NUL-terminated name, readable buffer of the given size.
    cvt(unsafe {
        libc::fsetxattr(
            file.as_raw_fd(),
            ATTEMPTS_XATTR.as_ptr().cast(),
            text.as_ptr().cast(),
            text.len(),
            0,
        )
    })?;
    Ok(())
}

/// An eventfd used to wake a blocked wait from another thread or a signal handler.
#[derive(Debug)]
pub struct EventFd(File);

impl EventFd {
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; on success we own the returned fd.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        // SAFETY: fd is a fresh descriptor owned by nobody else.
        Ok(EventFd(unsafe {
            <File as std::os::fd::FromRawFd>::from_raw_fd(fd)
        }))
    }

    pub fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64. A full counter (EAGAIN) already means "woken".
        unsafe { libc::write(self.0.as_raw_fd(), (&raw const one).cast(), 8) };
    }

    /// Consume pending notifications; true if there were any.
    pub fn drain(&self) -> bool {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64.
        unsafe { libc::read(self.0.as_raw_fd(), (&raw mut v).cast(), 8) == 8 }
    }

    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Wait until one of `fds` is readable or `timeout` passes. Returns which fds are readable.
/// An interrupted wait returns no readiness (the caller checks signals and loops).
pub fn poll_readable(fds: &[RawFd], timeout: Duration) -> io::Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // Round up so a 0.3 ms wait does not become a busy 0 ms poll.
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
    // SAFETY: pfds is a live array of the given length.
    let rc = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![false; fds.len()]);
        }
        return Err(err);
    }
    Ok(pfds.iter().map(|p| p.revents != 0).collect())
}

/// This process's pid, read once and again after a fork (a `pthread_atfork` child handler
/// forgets it): lock holders and mule claims record it on every call, without a system call.
pub fn this_pid() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
    static PID: AtomicU32 = AtomicU32::new(0);
    static AT_FORK: std::sync::Once = std::sync::Once::new();
    extern "C" fn forget() {
        PID.store(0, Relaxed);
    }
    let p = PID.load(Relaxed);
    if p != 0 {
        return p;
    }
    // Registered before the first store: a fork after it always runs `forget` in the child.
    // SAFETY: `forget` is async-signal-safe (one atomic store) and lives forever.
    AT_FORK.call_once(|| unsafe {
        libc::pthread_atfork(None, None, Some(forget));
    });
    let p = std::process::id();
    PID.store(p, Relaxed);
    p
}

/// Nanoseconds on CLOCK_MONOTONIC (the clock `timerfd` deadlines use).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The wall clock as `time(2)` reads it: CLOCK_REALTIME_COARSE, which lags CLOCK_REALTIME by
/// up to a kernel tick. Python's `time.localtime()` and `time.gmtime()` read this one, so a cron
/// handler run as soon as the precise clock enters a minute could still see the previous one.
pub fn realtime_coarse() -> (i64, i32) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec; CLOCK_REALTIME_COARSE exists on Linux since 2.6.32.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    (ts.tv_sec, ts.tv_nsec as i32)
}

/// A CLOCK_MONOTONIC timerfd armed at absolute deadlines: wakes a poll with nanosecond
/// precision, where a poll timeout only has milliseconds.
#[derive(Debug)]
pub struct TimerFd(File);

impl TimerFd {
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; on success we own the returned fd.
        let fd = cvt(unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_CLOEXEC | libc::TFD_NONBLOCK,
            )
        })?;
        // SAFETY: fd is a fresh descriptor owned by nobody else.
        Ok(TimerFd(unsafe {
            <File as std::os::fd::FromRawFd>::from_raw_fd(fd)
        }))
    }

    /// Arm for the absolute monotonic time `deadline_ns`, or disarm with `None`.
    pub fn set(&self, deadline_ns: Option<u64>) -> io::Result<()> {
        let value = match deadline_ns {
            // A zero it_value disarms, so a deadline of 0 becomes 1 ns (already past: fires).
            Some(ns) => libc::timespec {
                tv_sec: (ns / 1_000_000_000) as libc::time_t,
                tv_nsec: (ns % 1_000_000_000).max(1) as libc::c_long,
            },
            None => libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
        };
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: value,
        };
        // SAFETY: valid fd, pointer to a live itimerspec, null old value.
        cvt(unsafe {
            libc::timerfd_settime(
                self.0.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        })?;
        Ok(())
    }

    /// Clear a pending expiration.
    pub fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64; EAGAIN (nothing pending) is fine.
        unsafe { libc::read(self.0.as_raw_fd(), (&raw mut v).cast(), 8) };
    }

    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Send one datagram without blocking. `Ok(false)` when the receiver's queue is full.
pub fn send_nonblocking(fd: RawFd, data: &[u8]) -> io::Result<bool> {
    loop {
        // SAFETY: valid buffer of the given length; fd validity is the caller's contract (a bad
        // fd only yields EBADF).
        let rc = unsafe {
            libc::send(
                fd,
                data.as_ptr().cast(),
                data.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if rc >= 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) | Some(libc::ENOBUFS) => return Ok(false),
            _ => return Err(err),
        }
    }
}

/// Read and discard what is waiting on a wake-up pipe the caller saw readable: one read, so a
/// pipe left blocking cannot hang it (anything beyond 4 KiB wakes the next poll again).
pub fn drain_fd(fd: RawFd) {
    let mut buf = [0u8; 4096];
    // SAFETY: reads into a live buffer of the given length.
    unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
}

/// Receive one datagram without blocking into `buf`; `Ok(None)` when none is waiting.
pub fn recv_nonblocking(fd: RawFd, buf: &mut [u8]) -> io::Result<Option<usize>> {
    loop {
        // SAFETY: writes at most buf.len() bytes into a live buffer.
        let rc = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if rc >= 0 {
            return Ok(Some(rc as usize));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => return Ok(None),
            _ => return Err(err),
        }
    }
}

/// `poll(2)` over caller-built entries (events chosen per fd); `revents` are filled in. An
/// interrupted wait returns 0 (nothing ready), so the caller checks signals and loops.
pub fn poll_fds(pfds: &mut [libc::pollfd], timeout: Duration) -> io::Result<usize> {
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
    // SAFETY: pfds is a live, exclusively borrowed array of the given length.
    let rc = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(err);
    }
    Ok(rc as usize)
}

/// Set the accept backlog of a listening socket (`listen(2)` again updates it on Linux).
pub fn set_backlog(fd: RawFd, backlog: i32) -> io::Result<()> {
    // SAFETY: listen on a caller-owned socket; no memory is passed.
    if unsafe { libc::listen(fd, backlog) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Connect a Unix stream socket without blocking: a listener whose backlog is full gives
/// `WouldBlock` (EAGAIN) at once instead of a connect that waits for ever. The stream is
/// returned in blocking mode.
pub fn unix_connect_nonblocking(
    path: &std::path::Path,
) -> io::Result<std::os::unix::net::UnixStream> {
    use std::os::fd::FromRawFd;
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a usable Unix socket path", path.display()),
        ));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    // SAFETY: creates a socket; the fd is owned by the UnixStream below at once.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket nobody else owns.
    let stream = unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) };
    let len = (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;
    // SAFETY: addr is a live sockaddr_un and len does not exceed its size.
    let rc = unsafe { libc::connect(fd, (&raw const addr).cast(), len) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// The address family of a socket (`SO_DOMAIN`).
pub fn socket_family(fd: RawFd) -> io::Result<i32> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `v`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            (&raw mut v).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v)
}

/// Accept one connection, non-blocking and close-on-exec from the start (`accept4`): one
/// system call where `accept` + `set_nonblocking` take two. `WouldBlock` when none is waiting.
pub fn accept_nonblocking(listener: RawFd) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    loop {
        // SAFETY: accept4 with null address pointers writes no memory.
        let fd = unsafe {
            libc::accept4(
                listener,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            )
        };
        if fd >= 0 {
            // SAFETY: a fresh descriptor that nothing else owns.
            return Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Connect a TCP stream in blocking mode, the connect itself bounded by `timeout` (Linux honours
/// `SO_SNDTIMEO` in `connect`): three system calls where a non-blocking connect and a poll take
/// seven. The stream keeps that send timeout.
pub fn tcp_connect_timeout(
    addr: &std::net::SocketAddr,
    timeout: Duration,
) -> io::Result<std::net::TcpStream> {
    use std::os::fd::FromRawFd;
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: creates a socket; the fd is owned by the TcpStream below at once.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket nobody else owns.
    let stream = unsafe { std::net::TcpStream::from_raw_fd(fd) };
    stream.set_write_timeout(Some(timeout.max(Duration::from_micros(1))))?;
    // SAFETY: sockaddr_in/sockaddr_in6 are plain data; each is filled from `addr` and passed
    // with its own size.
    let rc = unsafe {
        match addr {
            std::net::SocketAddr::V4(a) => {
                let mut sa: libc::sockaddr_in = std::mem::zeroed();
                sa.sin_family = libc::AF_INET as libc::sa_family_t;
                sa.sin_port = a.port().to_be();
                sa.sin_addr = libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                };
                libc::connect(
                    fd,
                    (&raw const sa).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            }
            std::net::SocketAddr::V6(a) => {
                let mut sa: libc::sockaddr_in6 = std::mem::zeroed();
                sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sa.sin6_port = a.port().to_be();
                sa.sin6_addr = libc::in6_addr {
                    s6_addr: a.ip().octets(),
                };
                sa.sin6_flowinfo = a.flowinfo();
                sa.sin6_scope_id = a.scope_id();
                libc::connect(
                    fd,
                    (&raw const sa).cast(),
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                )
            }
        }
    };
    if rc < 0 {
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            // A connect cut by the send timeout reports EINPROGRESS (or EAGAIN).
            Some(libc::EINPROGRESS | libc::EAGAIN) => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"));
            }
            // Interrupted: the handshake goes on; wait for it (bounded) and take its result.
            Some(libc::EINTR) => {
                let mut pfd = [libc::pollfd {
                    fd,
                    events: libc::POLLOUT,
                    revents: 0,
                }];
                if poll_fds(&mut pfd, timeout)? == 0 {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"));
                }
                if let Some(e) = stream.take_error()? {
                    return Err(e);
                }
            }
            _ => return Err(err),
        }
    }
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    extern "C" fn ignore(_: libc::c_int) {}

    #[test]
    fn this_pid_is_read_again_in_a_forked_child() {
        let parent = this_pid();
        assert_eq!(parent, std::process::id());
        // SAFETY: the child only calls getpid-level functions, then _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let ok = this_pid() == std::process::id() && this_pid() != parent;
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child saw a stale pid"
        );
        assert_eq!(this_pid(), parent);
    }

    #[test]
    fn binds_a_datagram_socket_over_a_stale_one_and_names_the_path_on_error() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("w1");
        let first = bind_datagram(&path).unwrap();
        drop(first); // the file stays, as a dead process leaves it
        let fd = bind_datagram(&path).unwrap();
        let peer = std::os::unix::net::UnixDatagram::unbound().unwrap();
        peer.send_to(b"x", &path).unwrap();
        let sock = std::os::unix::net::UnixDatagram::from(fd);
        let mut b = [0u8; 4];
        assert_eq!(sock.recv(&mut b).unwrap(), 1);
        // non-blocking: nothing more to read is an error at once, not a wait
        assert_eq!(
            sock.recv(&mut b).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let missing = tmp.path().join("no-such-dir").join("w2");
        let err = bind_datagram(&missing).unwrap_err();
        assert!(err.to_string().contains("no-such-dir/w2"), "{err}");
    }

    #[test]
    fn a_signal_ends_the_wait_for_a_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        let holder = File::options().read(true).write(true).open(&path).unwrap();
        assert!(try_lock_exclusive(&holder).unwrap());
        // A handler installed without SA_RESTART, as Python installs its own.
        // SAFETY: a zeroed sigaction is valid; the handler does nothing.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = ignore as extern "C" fn(libc::c_int) as libc::sighandler_t;
            assert_eq!(libc::sigaction(libc::SIGURG, &sa, std::ptr::null_mut()), 0);
        }
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() } as usize;
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = done.clone();
        // Poke until the waiter is out (a signal before its fcntl would be lost); after 2 s let
        // go of the lock, so a wait that ignores signals fails the test instead of hanging it.
        let poke = std::thread::spawn(move || {
            let end = std::time::Instant::now() + Duration::from_secs(2);
            while !seen.load(std::sync::atomic::Ordering::SeqCst) && std::time::Instant::now() < end
            {
                std::thread::sleep(Duration::from_millis(20));
                // SAFETY: the waiting thread outlives this one (it joins it below).
                unsafe { libc::pthread_kill(me as libc::pthread_t, libc::SIGURG) };
            }
            drop(holder);
        });
        let waiter = File::options().read(true).write(true).open(&path).unwrap();
        let waited = lock_exclusive(&waiter);
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        poke.join().unwrap();
        assert_eq!(waited.unwrap_err().kind(), io::ErrorKind::Interrupted);
        lock_exclusive(&waiter).unwrap();
    }
}
