//! Mule message queues: one file-backed shared mapping (`<control socket>.mules`, 0600) that the
//! master creates before it forks and every process finds next to the control socket, holding
//! one bounded queue per mule, one per farm and one for "any mule".
//!
//! Layout: a header (magic, version, the mule count, the farms with their names and members,
//! the message size limit, one process-shared robust mutex, a `sleeping` word per mule, a
//! `retired` word), then one queue per destination (index 0: any mule; 1..=N: mule N; then the
//! farms in declaration order). A queue is a byte ring of records aligned to 16 bytes:
//! `len u32, state u32, pid u32, deaths u32`, then the message. `head` and `tail` grow for ever (the
//! ring offset is `% cap`); a record that does not fit before the end is preceded by a `WRAP`
//! record filling the rest of the ring, and so is the first record of an empty queue, which
//! starts again at the front (a mule that keeps up reuses the ring's first page).
//!
//! Delivery: a sender appends a `READY` record under the mutex. A mule claims the first `READY`
//! record of its queues (`CLAIMED`, its pid), runs it, and acknowledges it (`DONE`); the head
//! moves over `DONE` and `WRAP` records only, so a claimed record stays in the file until it is
//! acknowledged. When a mule dies, [`MuleQueues::reclaim`] turns the records it had claimed back
//! into `READY` (at-least-once for the message it was running, exactly once for the others).
//! Every store that publishes something is the last of its step (the record, then `tail`; the
//! state, then the counters), so a process killed while holding the mutex leaves a consistent
//! ring; the next locker (robust mutex, `EOWNERDEAD`) recounts the counters.
//!
//! Wake-up: an idle mule sets its `sleeping` word, looks at its queues once more, then sleeps in
//! `poll` on its wake socket (`<control>.m<N>`, a datagram socket it binds). A sender that
//! appended swaps each candidate mule's `sleeping` word to 0 and, only where it was 1, sends it
//! one byte (every sleeping candidate: one asleep in a wait that does not read this queue must
//! not take the only wake-up): a busy mule costs its senders no system call. Both sides use sequentially consistent
//! operations on the word and on the queue's `ready` counter, so either the mule sees the
//! message or the sender sees the sleeping mule.
//!
//! The file survives the master (a respawned mule, a re-executed master and the next master on
//! the same control socket find the queued messages); [`MuleQueues::retire_if_empty`] removes it
//! at a real exit when nothing is queued. A retired file (removed, or replaced by one of another
//! layout) is marked so: senders holding the old mapping open the new one.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};

const MAGIC: u64 = 0x7577_7364_6d75_6c65; // "uwsdmule"
const VERSION: u32 = 1;
/// Most mules one master runs.
pub const MAX_MULES: u32 = 256;
/// Most farms.
pub const MAX_FARMS: usize = 64;
/// Longest farm name, in bytes.
pub const MAX_FARM_NAME: usize = 63;
/// uWSGI's default `--mule-msg-size`.
pub const DEFAULT_MSG_SIZE: u32 = 65536;
/// Bytes of ring per queue by default (a queue holds at least 4 messages of the largest size).
pub const DEFAULT_QUEUE_BYTES: u64 = 4 << 20;
/// A message whose mule died this many times while running it is dropped (a poison message
/// would otherwise kill its mules for ever).
pub const MAX_DEATHS: u32 = 3;

const HEADER_BYTES: usize = 16384;
const QHEAD_BYTES: usize = 64;
const REC: u64 = 16;

const READY: u32 = 1;
const CLAIMED: u32 = 2;
const DONE: u32 = 3;
const WRAP: u32 = 4;

#[repr(C)]
struct Header {
    magic: u64,
    version: u32,
    mules: u32,
    farms: u32,
    msg_size: u32,
    queue_bytes: u64,
    total_len: u64,
    retired: AtomicU32,
    /// How long a sender waits for room (ms): the master's `--mule-send-timeout`.
    send_timeout_ms: AtomicU32,
    _pad0: [u8; 16],
    mutex: libc::pthread_mutex_t,
    _pad1: [u8; 64 - std::mem::size_of::<libc::pthread_mutex_t>() % 64],
    sleeping: [AtomicU32; MAX_MULES as usize + 1],
    farm_name_len: [u32; MAX_FARMS],
    farm_names: [[u8; MAX_FARM_NAME + 1]; MAX_FARMS],
    farm_members: [[u64; 4]; MAX_FARMS],
}

const _: () = assert!(std::mem::size_of::<Header>() <= HEADER_BYTES);

#[repr(C)]
struct QueueHead {
    head: AtomicU64,
    tail: AtomicU64,
    ready: AtomicU32,
    claimed: AtomicU32,
    _pad: [u8; QHEAD_BYTES - 24],
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    /// Any one mule (uWSGI's shared queue: target omitted or 0).
    Any,
    /// Mule N (1-based).
    Mule(u32),
    /// One mule of the farm at this index (declaration order).
    Farm(usize),
}

/// A claimed message, to acknowledge once run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    queue: u32,
    at: u64,
}

impl Token {
    /// As one integer (for Python).
    pub fn to_u64(self) -> u64 {
        (u64::from(self.queue) << 40) | self.at
    }
    pub fn from_u64(v: u64) -> Token {
        Token {
            queue: (v >> 40) as u32,
            at: v & ((1 << 40) - 1),
        }
    }
}

/// What the queues refuse.
#[derive(Debug, thiserror::Error)]
pub enum MuleError {
    #[error(
        "mule message of {len} bytes is larger than the --mule-msg-size limit of {limit} bytes"
    )]
    TooLarge { len: usize, limit: u32 },
    #[error("mule {0} does not exist (mules are 1 to {1})")]
    NoSuchMule(u32, u32),
    #[error("unknown farm {0:?}")]
    NoSuchFarm(String),
    #[error("no mule configured")]
    NoMules,
    #[error("mule message not queued: {0}")]
    Full(String),
    #[error("bad mule setup: {0}")]
    BadSetup(String),
    #[error("{path}: not a mule queue file of this version ({why})")]
    BadFile { path: PathBuf, why: &'static str },
    #[error("the mule queues' lock is not recoverable")]
    NotRecoverable,
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// The file's path for the control socket at `control`.
pub fn queue_path(control: &Path) -> PathBuf {
    let mut s = control.as_os_str().to_owned();
    s.push(".mules");
    PathBuf::from(s)
}

/// Mule `id`'s wake socket for the control socket at `control`.
pub fn wake_path(control: &Path, id: u32) -> PathBuf {
    let mut s = control.as_os_str().to_owned();
    s.push(format!(".m{id}"));
    PathBuf::from(s)
}

/// Bind mule `id`'s wake socket (non-blocking), replacing one left by its predecessor.
pub fn bind_wake(control: &Path, id: u32) -> io::Result<UnixDatagram> {
    crate::sys::bind_datagram(&wake_path(control, id)).map(UnixDatagram::from)
}

fn round16(n: u64) -> u64 {
    (n + 15) & !15
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> MuleError + '_ {
    move |source| MuleError::Io {
        path: path.to_owned(),
        source,
    }
}

fn pid_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// One mapping of the queue file.
pub struct MuleQueues {
    ptr: NonNull<u8>,
    len: usize,
    path: PathBuf,
    /// The mules' wake socket paths (index: mule id), made once.
    wake_paths: Vec<PathBuf>,
    /// A datagram socket per mule, connected to its wake socket on first use (a send to a
    /// connected socket skips the path lookup); connected again when the mule was replaced.
    wakers: Vec<std::sync::Mutex<Option<UnixDatagram>>>,
    _file: File,
}

// SAFETY: the mapping is only touched through atomics, or under the process-shared mutex.
unsafe impl Send for MuleQueues {}
// SAFETY: as above.
unsafe impl Sync for MuleQueues {}

/// A live message read out of a file, with where it was queued (for migration).
struct Moved {
    dest: Dest,
    body: Vec<u8>,
}

struct Guard<'a> {
    q: &'a MuleQueues,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        // SAFETY: the mutex is locked by this thread (Guard exists only after a successful lock).
        unsafe { libc::pthread_mutex_unlock(self.q.mutex()) };
    }
}

impl MuleQueues {
    /// The master's: create the file for `mules` mules and `farms` (name, member ids), or take
    /// over the one a previous master left at that place (its queued messages are kept; a file
    /// of another layout is migrated message by message into a new one). Returns the queues and
    /// how many messages were found waiting.
    pub fn create(
        control: &Path,
        mules: u32,
        farms: &[(String, Vec<u32>)],
        msg_size: u32,
        queue_bytes: u64,
    ) -> Result<(MuleQueues, usize), MuleError> {
        if mules == 0 || mules > MAX_MULES {
            return Err(MuleError::BadSetup(format!(
                "the number of mules must be 1 to {MAX_MULES}, got {mules}"
            )));
        }
        if farms.len() > MAX_FARMS {
            return Err(MuleError::BadSetup(format!(
                "at most {MAX_FARMS} farms, got {}",
                farms.len()
            )));
        }
        for (name, members) in farms {
            if name.is_empty() || name.len() > MAX_FARM_NAME {
                return Err(MuleError::BadSetup(format!(
                    "a farm name must be 1 to {MAX_FARM_NAME} bytes, got {name:?}"
                )));
            }
            if members.is_empty() {
                return Err(MuleError::BadSetup(format!("farm {name:?} has no mule")));
            }
            if let Some(m) = members.iter().find(|&&m| m == 0 || m > mules) {
                return Err(MuleError::BadSetup(format!(
                    "farm {name:?} names mule {m}, but mules are 1 to {mules}"
                )));
            }
        }
        if msg_size == 0 {
            return Err(MuleError::BadSetup(
                "--mule-msg-size must be positive".into(),
            ));
        }
        let min_ring = 4 * round16(u64::from(msg_size) + REC);
        let cap = queue_bytes.max(min_ring).div_ceil(4096) * 4096;
        let path = queue_path(control);
        let old = match MuleQueues::open(control) {
            Ok(q) => Some(q),
            Err(MuleError::Io { ref source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                None
            }
            Err(MuleError::BadFile { .. }) => {
                // Not ours (or an older version): keep it aside rather than delete anything.
                let aside = path.with_extension(format!("mules.bad-{}", std::process::id()));
                std::fs::rename(&path, &aside).map_err(io_at(&path))?;
                None
            }
            Err(e) => return Err(e),
        };
        if let Some(old) = old {
            let same = {
                let h = old.header();
                h.mules == mules
                    && h.msg_size == msg_size
                    && h.queue_bytes == cap
                    && old.farms() == farms
            };
            if same {
                old.reclaim_dead();
                for i in 0..=MAX_MULES as usize {
                    old.header().sleeping[i].store(0, SeqCst);
                }
                let n = old.pending();
                return Ok((old, n));
            }
            // Another layout: move every live message into a new file, then retire the old one.
            let _g = old.lock()?;
            let moved = old.live_messages();
            let (new, tmp) = MuleQueues::fresh(control, mules, farms, msg_size, cap)?;
            let n = moved.len();
            for m in moved {
                let dest = match m.dest {
                    Dest::Mule(k) if k <= mules => Dest::Mule(k),
                    Dest::Farm(f) => {
                        let name = old.farm_name(f);
                        match farms.iter().position(|(n, _)| *n == name) {
                            Some(i) => Dest::Farm(i),
                            None => Dest::Any,
                        }
                    }
                    _ => Dest::Any,
                };
                if new.try_send(&dest, &m.body)?.is_none() {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(MuleError::BadSetup(format!(
                        "{} holds more queued messages than the new layout's queues take: \
                         start with the previous mule options to drain it",
                        path.display()
                    )));
                }
            }
            std::fs::rename(&tmp, &path).map_err(io_at(&path))?;
            old.header().retired.store(1, SeqCst);
            return Ok((new, n));
        }
        let (new, tmp) = MuleQueues::fresh(control, mules, farms, msg_size, cap)?;
        std::fs::rename(&tmp, &path).map_err(io_at(&path))?;
        Ok((new, 0))
    }

    /// A new file at a temporary name (the caller renames it into place).
    fn fresh(
        control: &Path,
        mules: u32,
        farms: &[(String, Vec<u32>)],
        msg_size: u32,
        cap: u64,
    ) -> Result<(MuleQueues, PathBuf), MuleError> {
        let path = queue_path(control);
        let (file, tmp) = super::create_beside(&path).map_err(io_at(&path))?;
        let queues = 1 + mules as u64 + farms.len() as u64;
        let total = HEADER_BYTES as u64 + queues * (QHEAD_BYTES as u64 + cap);
        file.set_len(total).map_err(io_at(&tmp))?;
        let q = MuleQueues::map(file, total as usize, path)?;
        // SAFETY: a fresh mapping no other process has yet: plain writes to the header.
        unsafe {
            let h = q.ptr.as_ptr().cast::<Header>();
            let hm = &mut *h;
            hm.version = VERSION;
            hm.mules = mules;
            hm.farms = farms.len() as u32;
            hm.msg_size = msg_size;
            hm.queue_bytes = cap;
            hm.total_len = total;
            for (i, (name, members)) in farms.iter().enumerate() {
                hm.farm_name_len[i] = name.len() as u32;
                hm.farm_names[i][..name.len()].copy_from_slice(name.as_bytes());
                for &m in members {
                    hm.farm_members[i][(m / 64) as usize] |= 1 << (m % 64);
                }
            }
            // The same robust, process-shared mutex as the region's locks (every setup call
            // checked).
            if let Err(e) = super::lock::init(std::ptr::addr_of_mut!(hm.mutex)) {
                let _ = std::fs::remove_file(&tmp);
                return Err(io_at(&tmp)(e));
            }
            hm.magic = MAGIC;
        }
        let mut q = q;
        q.set_wakers(control, mules);
        Ok((q, tmp))
    }

    /// Any process's: map the file the master made for the control socket at `control`.
    pub fn open(control: &Path) -> Result<MuleQueues, MuleError> {
        let path = queue_path(control);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io_at(&path))?;
        let len = file.metadata().map_err(io_at(&path))?.len();
        if len < HEADER_BYTES as u64 {
            return Err(MuleError::BadFile {
                path,
                why: "too short",
            });
        }
        let mut q = MuleQueues::map(file, len as usize, path.clone())?;
        let h = q.header();
        if h.magic != MAGIC || h.version != VERSION {
            return Err(MuleError::BadFile {
                path,
                why: "bad magic or version",
            });
        }
        let queues = 1 + u64::from(h.mules) + u64::from(h.farms);
        if h.total_len != len
            || h.mules == 0
            || h.mules > MAX_MULES
            || h.farms as usize > MAX_FARMS
            || h.queue_bytes % 16 != 0
            || HEADER_BYTES as u64 + queues * (QHEAD_BYTES as u64 + h.queue_bytes) != len
        {
            return Err(MuleError::BadFile {
                path,
                why: "inconsistent header",
            });
        }
        let mules = h.mules;
        q.set_wakers(control, mules);
        Ok(q)
    }

    fn map(file: File, len: usize, path: PathBuf) -> Result<MuleQueues, MuleError> {
        // The whole file; its length was checked or set by the caller.
        let ptr = super::map_shared(file.as_raw_fd(), len).map_err(io_at(&path))?;
        Ok(MuleQueues {
            ptr,
            len,
            path,
            wake_paths: Vec::new(),
            wakers: Vec::new(),
            _file: file,
        })
    }

    fn header(&self) -> &Header {
        // SAFETY: the mapping is at least HEADER_BYTES long (checked) and lives as long as self.
        unsafe { &*self.ptr.as_ptr().cast::<Header>() }
    }

    fn mutex(&self) -> *mut libc::pthread_mutex_t {
        // SAFETY: inside the header of the live mapping.
        unsafe { std::ptr::addr_of_mut!((*self.ptr.as_ptr().cast::<Header>()).mutex) }
    }

    fn lock(&self) -> Result<Guard<'_>, MuleError> {
        // SAFETY: the mutex was initialised (process-shared, robust) by the file's creator.
        let rc = unsafe { libc::pthread_mutex_lock(self.mutex()) };
        match rc {
            0 => Ok(Guard { q: self }),
            libc::EOWNERDEAD => {
                // The owner died inside a step: every store is consistent on its own, but the
                // counters may be off by that step. Recount them, then mark the mutex usable.
                // SAFETY: we own the mutex now.
                unsafe { libc::pthread_mutex_consistent(self.mutex()) };
                let g = Guard { q: self };
                self.recount();
                Ok(g)
            }
            libc::ENOTRECOVERABLE => Err(MuleError::NotRecoverable),
            e => Err(io_at(&self.path)(io::Error::from_raw_os_error(e))),
        }
    }

    /// The number of mules.
    pub fn mules(&self) -> u32 {
        self.header().mules
    }

    /// The largest message, in bytes (`--mule-msg-size`).
    pub fn msg_size(&self) -> u32 {
        self.header().msg_size
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How long a sender waits for room in a full queue (the master's setting).
    pub fn send_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(u64::from(self.header().send_timeout_ms.load(SeqCst)))
    }

    /// Set it (the master, at start).
    pub fn set_send_timeout(&self, t: std::time::Duration) {
        let ms = u32::try_from(t.as_millis()).unwrap_or(u32::MAX);
        self.header().send_timeout_ms.store(ms, SeqCst);
    }

    /// The file was removed or replaced: open it again.
    pub fn retired(&self) -> bool {
        self.header().retired.load(SeqCst) != 0
    }

    fn farm_name(&self, i: usize) -> String {
        let h = self.header();
        let n = (h.farm_name_len[i] as usize).min(MAX_FARM_NAME);
        String::from_utf8_lossy(&h.farm_names[i][..n]).into_owned()
    }

    fn farm_has(&self, i: usize, mule: u32) -> bool {
        mule <= MAX_MULES
            && self.header().farm_members[i][(mule / 64) as usize] & (1 << (mule % 64)) != 0
    }

    /// The farms: (name, member mule ids), in declaration order.
    pub fn farms(&self) -> Vec<(String, Vec<u32>)> {
        let h = self.header();
        (0..h.farms as usize)
            .map(|i| {
                let members = (1..=h.mules).filter(|&m| self.farm_has(i, m)).collect();
                (self.farm_name(i), members)
            })
            .collect()
    }

    /// The index of farm `name`.
    pub fn farm_index(&self, name: &str) -> Option<usize> {
        (0..self.header().farms as usize).find(|&i| self.farm_name(i) == name)
    }

    /// The destination `mule` (0: any mule) or `farm`, checked.
    pub fn dest_mule(&self, mule: u32) -> Result<Dest, MuleError> {
        match mule {
            0 => Ok(Dest::Any),
            n if n <= self.mules() => Ok(Dest::Mule(n)),
            n => Err(MuleError::NoSuchMule(n, self.mules())),
        }
    }

    pub fn dest_farm(&self, name: &str) -> Result<Dest, MuleError> {
        self.farm_index(name)
            .map(Dest::Farm)
            .ok_or_else(|| MuleError::NoSuchFarm(name.to_owned()))
    }

    fn queue_index(&self, dest: &Dest) -> u32 {
        match *dest {
            Dest::Any => 0,
            Dest::Mule(n) => n,
            Dest::Farm(f) => self.mules() + 1 + f as u32,
        }
    }

    fn dest_of(&self, q: u32) -> Dest {
        let m = self.mules();
        match q {
            0 => Dest::Any,
            n if n <= m => Dest::Mule(n),
            n => Dest::Farm((n - m - 1) as usize),
        }
    }

    fn queue_count(&self) -> u32 {
        1 + self.header().mules + self.header().farms
    }

    fn qbase(&self, q: u32) -> *mut u8 {
        let off = HEADER_BYTES + q as usize * (QHEAD_BYTES + self.header().queue_bytes as usize);
        debug_assert!(off + QHEAD_BYTES <= self.len);
        // SAFETY: q < queue_count, so the queue lies inside the mapping (checked at open).
        unsafe { self.ptr.as_ptr().add(off) }
    }

    fn qhead(&self, q: u32) -> &QueueHead {
        // SAFETY: qbase is 64-aligned inside the mapping.
        unsafe { &*self.qbase(q).cast::<QueueHead>() }
    }

    fn ring(&self, q: u32) -> *mut u8 {
        // SAFETY: the ring follows the queue head, inside the mapping.
        unsafe { self.qbase(q).add(QHEAD_BYTES) }
    }

    fn rec_state(&self, q: u32, off: u64) -> &AtomicU32 {
        // SAFETY: off is 16-aligned and at most cap - 16, inside the ring.
        unsafe { &*self.ring(q).add(off as usize + 4).cast::<AtomicU32>() }
    }

    fn rec_u32(&self, q: u32, off: u64, field: usize) -> u32 {
        // SAFETY: as above; field is 0 (len) or 2 (pid).
        unsafe {
            self.ring(q)
                .add(off as usize + 4 * field)
                .cast::<u32>()
                .read_volatile()
        }
    }

    fn set_rec_u32(&self, q: u32, off: u64, field: usize, v: u32) {
        // SAFETY: as above, under the mutex.
        unsafe {
            self.ring(q)
                .add(off as usize + 4 * field)
                .cast::<u32>()
                .write_volatile(v)
        }
    }

    /// The size a record at ring offset `off` takes (a WRAP record's length is its size).
    fn rec_size(&self, q: u32, off: u64, state: u32) -> u64 {
        let len = u64::from(self.rec_u32(q, off, 0));
        if state == WRAP {
            len
        } else {
            REC + round16(len)
        }
    }

    /// A `WRAP` record of `len` bytes at `pos` (the rest of the ring), its state stored last.
    fn put_wrap(&self, q: u32, pos: u64, len: u64) {
        self.set_rec_u32(q, pos, 0, len as u32);
        self.set_rec_u32(q, pos, 2, 0);
        self.rec_state(q, pos).store(WRAP, SeqCst);
    }

    /// Append without waiting. `Ok(None)`: the queue is full. `Ok(Some(()))`: queued (and a
    /// sleeping mule woken).
    pub fn try_send(&self, dest: &Dest, msg: &[u8]) -> Result<Option<()>, MuleError> {
        let limit = self.msg_size();
        if msg.len() > limit as usize {
            return Err(MuleError::TooLarge {
                len: msg.len(),
                limit,
            });
        }
        let q = self.queue_index(dest);
        {
            let _g = self.lock()?;
            let cap = self.header().queue_bytes;
            let qh = self.qhead(q);
            let mut head = qh.head.load(SeqCst);
            let mut tail = qh.tail.load(SeqCst);
            let need = REC + round16(msg.len() as u64);
            let mut pos = tail % cap;
            if head == tail && pos != 0 {
                // An empty queue starts again at the front of its ring: a mule that keeps up
                // then reuses the ring's first page, hot and mapped in every process, instead
                // of walking all of it (the first touch of each page faults, in the sender and
                // in the mule: one message in 32 of 100 bytes; and a disk file's writeback
                // write-protects its pages again). A WRAP record over the rest goes first, so
                // that a process killed between the two stores leaves a consistent ring.
                self.put_wrap(q, pos, cap - pos);
                let front = tail + (cap - pos);
                qh.tail.store(front, SeqCst);
                qh.head.store(front, SeqCst);
                (head, tail, pos) = (front, front, 0);
            }
            let extra = if pos + need > cap { cap - pos } else { 0 };
            if tail - head + extra + need > cap {
                return Ok(None);
            }
            if extra > 0 {
                self.put_wrap(q, pos, extra);
                pos = 0;
            }
            // SAFETY: pos + need <= cap (checked above), inside the ring; under the mutex.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    msg.as_ptr(),
                    self.ring(q).add(pos as usize + REC as usize),
                    msg.len(),
                );
            }
            self.set_rec_u32(q, pos, 0, msg.len() as u32);
            self.set_rec_u32(q, pos, 2, 0);
            self.set_rec_u32(q, pos, 3, 0);
            self.rec_state(q, pos).store(READY, SeqCst);
            qh.tail.store(tail + extra + need, SeqCst);
            qh.ready.fetch_add(1, SeqCst);
        }
        self.wake(dest);
        Ok(Some(()))
    }

    /// Wake every sleeping mule that may read `dest`. Not just the first: a mule asleep in a
    /// wait that does not read this queue (a `farm_get_msg`, a `mule_get_msg(farms=False)` loop)
    /// would take the wake-up and leave the message to a mule that sleeps on until its next
    /// slice (up to a minute); a woken mule that finds nothing goes back to sleep.
    fn wake(&self, dest: &Dest) {
        let h = self.header();
        let candidates: Box<dyn Iterator<Item = u32>> = match *dest {
            Dest::Mule(n) => Box::new(std::iter::once(n)),
            Dest::Any => Box::new(1..=h.mules),
            Dest::Farm(f) => Box::new((1..=h.mules).filter(move |&m| self.farm_has(f, m))),
        };
        for m in candidates {
            if h.sleeping[m as usize].load(SeqCst) == 1
                && h.sleeping[m as usize].swap(0, SeqCst) == 1
            {
                self.send_wake(m);
            }
        }
    }

    fn send_wake(&self, mule: u32) -> bool {
        let (Some(slot), Some(path)) = (
            self.wakers.get(mule as usize),
            self.wake_paths.get(mule as usize),
        ) else {
            return false;
        };
        let mut g = slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for fresh in [false, true] {
            if fresh || g.is_none() {
                *g = UnixDatagram::unbound()
                    .and_then(|s| s.set_nonblocking(true).map(|()| s))
                    .and_then(|s| s.connect(path).map(|()| s))
                    .ok();
            }
            let Some(s) = g.as_ref() else { return false };
            match s.send(&[1]) {
                Ok(_) => return true,
                // Its queue of wake-ups is full: it is awake enough.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                // The mule was replaced (a new socket at the path), or is gone: connect again once.
                Err(_) => {}
            }
        }
        false
    }

    fn set_wakers(&mut self, control: &Path, mules: u32) {
        self.wake_paths = (0..=mules).map(|m| wake_path(control, m)).collect();
        self.wakers = (0..=mules).map(|_| std::sync::Mutex::new(None)).collect();
    }

    /// Mark mule `mule` as about to sleep (then look at its queues once more before sleeping).
    pub fn set_sleeping(&self, mule: u32, sleeping: bool) {
        if mule >= 1 && mule <= self.mules() {
            self.header().sleeping[mule as usize].store(u32::from(sleeping), SeqCst);
        }
    }

    /// The queues mule `mule` reads, in the order it reads them: its own, its farms', any.
    fn reads(&self, mule: u32, own: bool, farms: bool) -> Vec<u32> {
        let h = self.header();
        let mut qs = Vec::with_capacity(2 + h.farms as usize);
        if own {
            qs.push(mule);
        }
        if farms {
            for f in 0..h.farms as usize {
                if self.farm_has(f, mule) {
                    qs.push(h.mules + 1 + f as u32);
                }
            }
        }
        if own {
            qs.push(0);
        }
        qs
    }

    /// Claim the next message for mule `mule` (process `pid`): from its own queue and the any-
    /// mule queue when `own`, from its farms' queues when `farms`.
    pub fn try_take(
        &self,
        mule: u32,
        pid: u32,
        own: bool,
        farms: bool,
    ) -> Result<Option<(Token, Vec<u8>)>, MuleError> {
        let qs = self.reading(mule, own, farms)?;
        self.try_take_from(&qs, pid, <[u8]>::to_vec)
    }

    /// The queues mule `mule` reads (see [`MuleQueues::try_take`]), for
    /// [`MuleQueues::try_take_from`]; an unknown mule is an error.
    pub fn reading(&self, mule: u32, own: bool, farms: bool) -> Result<Vec<u32>, MuleError> {
        if mule == 0 || mule > self.mules() {
            return Err(MuleError::NoSuchMule(mule, self.mules()));
        }
        Ok(self.reads(mule, own, farms))
    }

    /// Whether any of the queues `qs` (from [`MuleQueues::reading`]) holds a ready message.
    pub fn any_ready(&self, qs: &[u32]) -> bool {
        let n = self.queue_count();
        qs.iter()
            .any(|&q| q < n && self.qhead(q).ready.load(SeqCst) != 0)
    }

    /// Claim the next message of the queues `qs` (from [`MuleQueues::reading`] on this same
    /// mapping) for process `pid`; `copy` makes the caller's copy of the body (called under the
    /// queues' mutex: keep it short, never block in it).
    pub fn try_take_from<T>(
        &self,
        qs: &[u32],
        pid: u32,
        copy: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<(Token, T)>, MuleError> {
        if !self.any_ready(qs) {
            return Ok(None);
        }
        let _g = self.lock()?;
        let cap = self.header().queue_bytes;
        for &q in qs {
            if q >= self.queue_count() {
                continue;
            }
            let qh = self.qhead(q);
            if qh.ready.load(SeqCst) == 0 {
                continue;
            }
            let tail = qh.tail.load(SeqCst);
            let mut p = qh.head.load(SeqCst);
            while p < tail {
                let off = p % cap;
                let state = self.rec_state(q, off).load(SeqCst);
                if state == READY {
                    let len = self.rec_u32(q, off, 0) as usize;
                    // SAFETY: a READY record's body lies inside the ring (written by try_send),
                    // and stays put while we hold the mutex.
                    let body = unsafe {
                        std::slice::from_raw_parts(
                            self.ring(q).add(off as usize + REC as usize),
                            len,
                        )
                    };
                    let out = copy(body);
                    self.set_rec_u32(q, off, 2, pid);
                    self.rec_state(q, off).store(CLAIMED, SeqCst);
                    qh.claimed.fetch_add(1, SeqCst);
                    qh.ready.fetch_sub(1, SeqCst);
                    return Ok(Some((Token { queue: q, at: off }, out)));
                }
                p += self.rec_size(q, off, state).max(16);
            }
        }
        Ok(None)
    }

    /// The message `token` ran: remove it (ignored if it was reclaimed meanwhile).
    pub fn ack(&self, token: Token, pid: u32) -> Result<(), MuleError> {
        if token.queue >= self.queue_count()
            || token.at % 16 != 0
            || token.at + REC > self.header().queue_bytes
        {
            return Ok(());
        }
        let q = token.queue;
        let _g = self.lock()?;
        let st = self.rec_state(q, token.at);
        if st.load(SeqCst) == CLAIMED && self.rec_u32(q, token.at, 2) == pid {
            st.store(DONE, SeqCst);
            self.qhead(q).claimed.fetch_sub(1, SeqCst);
            self.advance(q);
        }
        Ok(())
    }

    fn advance(&self, q: u32) {
        let cap = self.header().queue_bytes;
        let qh = self.qhead(q);
        let tail = qh.tail.load(SeqCst);
        let mut head = qh.head.load(SeqCst);
        while head < tail {
            let off = head % cap;
            let state = self.rec_state(q, off).load(SeqCst);
            if state != DONE && state != WRAP {
                break;
            }
            head += self.rec_size(q, off, state).max(16);
            qh.head.store(head.min(tail), SeqCst);
        }
    }

    /// Turn the messages claimed by `pred(pid)` back into ready ones (their mule died) and wake
    /// a mule for each queue touched; a message that has now killed [`MAX_DEATHS`] mules, or
    /// every one when `drop` (its mule is being killed for it: harakiri), is removed instead.
    /// Returns (requeued, dropped).
    fn reclaim_where(
        &self,
        pred: impl Fn(u32) -> bool,
        drop: bool,
    ) -> Result<(usize, usize), MuleError> {
        let mut touched = Vec::new();
        let mut n = 0;
        let mut dropped = 0;
        {
            let _g = self.lock()?;
            let cap = self.header().queue_bytes;
            for q in 0..self.queue_count() {
                let qh = self.qhead(q);
                if qh.claimed.load(SeqCst) == 0 {
                    continue;
                }
                let tail = qh.tail.load(SeqCst);
                let mut p = qh.head.load(SeqCst);
                while p < tail {
                    let off = p % cap;
                    let state = self.rec_state(q, off).load(SeqCst);
                    if state == CLAIMED && pred(self.rec_u32(q, off, 2)) {
                        let deaths = self.rec_u32(q, off, 3).saturating_add(1);
                        self.set_rec_u32(q, off, 3, deaths);
                        if drop || deaths >= MAX_DEATHS {
                            self.rec_state(q, off).store(DONE, SeqCst);
                            qh.claimed.fetch_sub(1, SeqCst);
                            dropped += 1;
                        } else {
                            self.set_rec_u32(q, off, 2, 0);
                            self.rec_state(q, off).store(READY, SeqCst);
                            qh.claimed.fetch_sub(1, SeqCst);
                            qh.ready.fetch_add(1, SeqCst);
                            n += 1;
                            if !touched.contains(&q) {
                                touched.push(q);
                            }
                        }
                    }
                    p += self.rec_size(q, off, state).max(16);
                }
                if dropped > 0 {
                    self.advance(q);
                }
            }
        }
        for q in touched {
            self.wake(&self.dest_of(q));
        }
        Ok((n, dropped))
    }

    /// Mule process `pid` died: what it had claimed is ready again (at-least-once for the
    /// message it was running), unless that message has killed [`MAX_DEATHS`] mules. Also
    /// forgets its sleeping mark (`mule`). Returns (requeued, dropped).
    pub fn reclaim(&self, mule: u32, pid: u32) -> Result<(usize, usize), MuleError> {
        self.set_sleeping(mule, false);
        self.reclaim_where(|p| p == pid, false)
    }

    /// Process `pid` is about to be killed for the message it runs (harakiri): remove what it
    /// claimed, as uWSGI loses it (run again, it would be killed again). Returns how many.
    pub fn drop_claims(&self, pid: u32) -> Result<usize, MuleError> {
        Ok(self.reclaim_where(|p| p == pid, true)?.1)
    }

    /// Reclaim what processes that are gone had claimed (a master taking over the file).
    pub fn reclaim_dead(&self) -> usize {
        self.reclaim_where(|p| !pid_alive(p), false)
            .map_or(0, |(n, _)| n)
    }

    /// Messages queued or running.
    pub fn pending(&self) -> usize {
        (0..self.queue_count())
            .map(|q| {
                let qh = self.qhead(q);
                (qh.ready.load(SeqCst) + qh.claimed.load(SeqCst)) as usize
            })
            .sum()
    }

    /// Per queue (any, mule 1..N, farms): messages queued (not yet claimed).
    pub fn ready_counts(&self) -> Vec<u32> {
        (0..self.queue_count())
            .map(|q| self.qhead(q).ready.load(SeqCst))
            .collect()
    }

    fn recount(&self) {
        let cap = self.header().queue_bytes;
        for q in 0..self.queue_count() {
            let qh = self.qhead(q);
            let tail = qh.tail.load(SeqCst);
            let mut p = qh.head.load(SeqCst);
            let (mut ready, mut claimed) = (0, 0);
            while p < tail {
                let off = p % cap;
                let state = self.rec_state(q, off).load(SeqCst);
                match state {
                    READY => ready += 1,
                    CLAIMED => claimed += 1,
                    _ => {}
                }
                p += self.rec_size(q, off, state).max(16);
            }
            qh.ready.store(ready, SeqCst);
            qh.claimed.store(claimed, SeqCst);
        }
    }

    /// Every message still in the file (ready or claimed), with its queue. Under the lock.
    fn live_messages(&self) -> Vec<Moved> {
        let cap = self.header().queue_bytes;
        let mut out = Vec::new();
        for q in 0..self.queue_count() {
            let qh = self.qhead(q);
            let tail = qh.tail.load(SeqCst);
            let mut p = qh.head.load(SeqCst);
            while p < tail {
                let off = p % cap;
                let state = self.rec_state(q, off).load(SeqCst);
                if state == READY || state == CLAIMED {
                    let len = self.rec_u32(q, off, 0) as usize;
                    let mut body = vec![0u8; len];
                    // SAFETY: a live record's body lies inside the ring.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            self.ring(q).add(off as usize + REC as usize),
                            body.as_mut_ptr(),
                            len,
                        );
                    }
                    out.push(Moved {
                        dest: self.dest_of(q),
                        body,
                    });
                }
                p += self.rec_size(q, off, state).max(16);
            }
        }
        out
    }

    /// At the master's real exit: remove the file if nothing is queued or running (and mark it
    /// retired, so senders holding it look again and find no master). Returns the number of
    /// messages left when it keeps the file.
    pub fn retire_if_empty(&self) -> Result<usize, MuleError> {
        let _g = self.lock()?;
        self.recount();
        let n = self.pending();
        if n == 0 {
            let _ = std::fs::remove_file(&self.path);
            self.header().retired.store(1, SeqCst);
        }
        Ok(n)
    }
}

impl Drop for MuleQueues {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`; no reference outlives self.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests;
