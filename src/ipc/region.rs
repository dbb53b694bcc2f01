//! One file-backed shared region per master: the process table (with the names of the functions
//! its deadlines guard), the direct-delivery routes and the lock table, reachable by every process of the master's tree (inherited across fork) and
//! by processes the master did not fork (they map the file the master publishes).
//!
//! Layout (native endianness, every field naturally aligned so a single load or store is never
//! torn):
//!
//! ```text
//! header (128 bytes)  magic u64, layout version u32, header length u32, total length u64,
//!                     nslots u32, nlocks u32, table offset u64, routes offset u64,
//!                     locks offset u64, creator pid u64, names offset u64, zeros
//! table               TABLE_HEADER i64 words (word 0: spooler frequency in ms, 0 = unset),
//!                     then nslots x SLOT_FIELDS i64 words (see the Python wrapper `_uwsgidecorators_runtime/shared.py`)
//! names               nslots x SLOT_NAMES x NAME_BYTES bytes: per slot, the qualified name of the
//!                     function each deadline (task, user) was armed for (UTF-8, NUL-padded)
//! routes              512 bytes: signal number -> worker id for direct delivery (0 = master),
//!                     then signal number -> 1 if its target is any worker (`worker`), else 0
//! locks               nlocks x LOCK_SLOT bytes: a process-shared robust pthread mutex and the
//!                     pid of its holder (see [`crate::ipc::lock`])
//! ```
//!
//! Invariants: sections start on 64-byte boundaries; the creator fills everything, then renames
//! the file into place, so a process that can open the final name always sees a whole region;
//! [`Region::open`] refuses a file whose magic, version or lengths do not match, so a stray or
//! truncated file never becomes memory we index into.

use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU32, AtomicU64, Ordering};

/// Tag of our region files ("UWSGIRGN"), checked before anything else is read.
pub const MAGIC: u64 = 0x5557_5347_4952_474E;
/// Bumped whenever the layout changes; a process refuses a region of another version.
pub const VERSION: u32 = 2;
/// Bytes of the header.
pub const HEADER_LEN: usize = 128;
/// i64 words at the start of the table section (word 0: the spooler frequency in ms).
pub const TABLE_HEADER: usize = 4;
/// i64 fields per process slot.
pub const SLOT_FIELDS: usize = 8;
/// Name fields per process slot (one per deadline: the task's, the user's).
pub const SLOT_NAMES: usize = 2;
/// Bytes of one name field.
pub const NAME_BYTES: usize = 96;
/// Bytes of the routes section: 256 worker bytes, then 256 'any worker' flags.
pub const ROUTES_LEN: usize = 512;
/// Bytes per lock: a `pthread_mutex_t` (40 on x86_64 glibc) and the holder's pid, one cache line.
pub const LOCK_SLOT: usize = 64;
/// Offset of the holder pid inside a lock slot.
pub(crate) const HOLDER_OFF: usize = 48;
/// Most slots and locks a region may hold (keeps every offset computation far from overflow).
pub const MAX_ENTRIES: u32 = 1 << 16;

const _: () = assert!(std::mem::size_of::<libc::pthread_mutex_t>() <= HOLDER_OFF);

// Header field offsets.
const H_MAGIC: usize = 0;
const H_VERSION: usize = 8;
const H_HEADER_LEN: usize = 12;
const H_TOTAL: usize = 16;
const H_NSLOTS: usize = 24;
const H_NLOCKS: usize = 28;
const H_TABLE: usize = 32;
const H_ROUTES: usize = 40;
const H_LOCKS: usize = 48;
const H_CREATOR: usize = 56;
const H_NAMES: usize = 64;

fn align64(n: usize) -> usize {
    n.div_ceil(64) * 64
}

/// Where each section starts, computed from the counts alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub nslots: u32,
    pub nlocks: u32,
    pub table: usize,
    pub names: usize,
    pub routes: usize,
    pub locks: usize,
    pub total: usize,
}

impl Layout {
    /// The layout for `nslots` process slots and `nlocks` locks.
    pub fn new(nslots: u32, nlocks: u32) -> io::Result<Layout> {
        if nslots > MAX_ENTRIES || nlocks > MAX_ENTRIES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a region holds at most {MAX_ENTRIES} slots and locks"),
            ));
        }
        let table = HEADER_LEN;
        let names = align64(table + 8 * (TABLE_HEADER + SLOT_FIELDS * nslots as usize));
        let routes = align64(names + SLOT_NAMES * NAME_BYTES * nslots as usize);
        let locks = align64(routes + ROUTES_LEN);
        let total = locks + LOCK_SLOT * nlocks as usize;
        Ok(Layout {
            nslots,
            nlocks,
            table,
            names,
            routes,
            locks,
            total,
        })
    }
}

/// A mapped region (see the module docs). Cloning is not offered: share it with `Arc`.
#[derive(Debug)]
pub struct Region {
    base: NonNull<u8>,
    layout: Layout,
    /// The file behind the mapping (`None`: anonymous, private to this process and its forks).
    path: Option<PathBuf>,
}

// SAFETY: the mapping lives as long as `Region`; every access goes through atomics or the
// pthread mutex API, both made for memory shared between threads and processes.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

fn invalid(path: &Path, why: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{} is not a uwsgidecorators region: {why}", path.display()),
    )
}

impl Region {
    /// Create the region file at `path` (mode 0600) for `nslots` slots and `nlocks` locks,
    /// replacing a file left there by a master that was killed. The region is filled under a
    /// temporary name and renamed into place.
    pub fn create(path: &Path, nslots: u32, nlocks: u32) -> io::Result<Region> {
        let layout = Layout::new(nslots, nlocks)?;
        let (file, tmp) = super::create_beside(path)?;
        let made = (|| {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            file.set_len(layout.total as u64)?;
            let base = super::map_shared(file.as_raw_fd(), layout.total)?;
            let region = Region {
                base,
                layout,
                path: Some(path.to_path_buf()),
            };
            region.init()?;
            std::fs::rename(&tmp, path)?;
            Ok(region)
        })();
        if made.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        made
    }

    /// An anonymous region: private to this process and the children it forks afterwards.
    pub fn anonymous(nslots: u32, nlocks: u32) -> io::Result<Region> {
        let layout = Layout::new(nslots, nlocks)?;
        let base = super::map_shared(-1, layout.total)?;
        let region = Region {
            base,
            layout,
            path: None,
        };
        region.init()?;
        Ok(region)
    }

    /// Map the region a master created at `path`, after checking that it is one of ours.
    pub fn open(path: &Path) -> io::Result<Region> {
        let file = File::options()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(path)?;
        let size = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
        if size < HEADER_LEN {
            return Err(invalid(path, format!("{size} bytes")));
        }
        let mut head = [0u8; HEADER_LEN];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut head, 0)?;
        let u64_at = |o: usize| u64::from_ne_bytes(head[o..o + 8].try_into().unwrap_or([0; 8]));
        let u32_at = |o: usize| u32::from_ne_bytes(head[o..o + 4].try_into().unwrap_or([0; 4]));
        if u64_at(H_MAGIC) != MAGIC {
            return Err(invalid(path, "wrong magic"));
        }
        if u32_at(H_VERSION) != VERSION {
            return Err(invalid(
                path,
                format!(
                    "layout version {} (this build reads {VERSION}): restart the master with this version",
                    u32_at(H_VERSION)
                ),
            ));
        }
        let layout = Layout::new(u32_at(H_NSLOTS), u32_at(H_NLOCKS))?;
        let same = u32_at(H_HEADER_LEN) as usize == HEADER_LEN
            && u64_at(H_TOTAL) == layout.total as u64
            && u64_at(H_TABLE) == layout.table as u64
            && u64_at(H_NAMES) == layout.names as u64
            && u64_at(H_ROUTES) == layout.routes as u64
            && u64_at(H_LOCKS) == layout.locks as u64
            && size >= layout.total;
        if !same {
            return Err(invalid(
                path,
                "its lengths or offsets do not match its counts",
            ));
        }
        let base = super::map_shared(file.as_raw_fd(), layout.total)?;
        Ok(Region {
            base,
            layout,
            path: Some(path.to_path_buf()),
        })
    }

    fn init(&self) -> io::Result<()> {
        let l = self.layout;
        self.u32_at(H_VERSION).store(VERSION, Ordering::Relaxed);
        self.u32_at(H_HEADER_LEN)
            .store(HEADER_LEN as u32, Ordering::Relaxed);
        self.u64_at(H_TOTAL)
            .store(l.total as u64, Ordering::Relaxed);
        self.u32_at(H_NSLOTS).store(l.nslots, Ordering::Relaxed);
        self.u32_at(H_NLOCKS).store(l.nlocks, Ordering::Relaxed);
        self.u64_at(H_TABLE)
            .store(l.table as u64, Ordering::Relaxed);
        self.u64_at(H_NAMES)
            .store(l.names as u64, Ordering::Relaxed);
        self.u64_at(H_ROUTES)
            .store(l.routes as u64, Ordering::Relaxed);
        self.u64_at(H_LOCKS)
            .store(l.locks as u64, Ordering::Relaxed);
        self.u64_at(H_CREATOR)
            .store(u64::from(std::process::id()), Ordering::Relaxed);
        for n in 0..l.nlocks {
            crate::ipc::lock::init(self.mutex(n))?;
        }
        self.u64_at(H_MAGIC).store(MAGIC, Ordering::Release);
        Ok(())
    }

    fn u64_at(&self, off: usize) -> &AtomicU64 {
        debug_assert!(off % 8 == 0 && off + 8 <= self.layout.total);
        // SAFETY: every caller passes an 8-aligned offset inside the mapping (header fields or
        // computed from the layout); the mapping is page aligned and lives as long as `self`.
        unsafe { &*self.base.as_ptr().add(off).cast::<AtomicU64>() }
    }

    fn u32_at(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off % 4 == 0 && off + 4 <= self.layout.total);
        // SAFETY: as in `u64_at`, 4-aligned.
        unsafe { &*self.base.as_ptr().add(off).cast::<AtomicU32>() }
    }

    fn i64_at(&self, off: usize) -> &AtomicI64 {
        debug_assert!(off % 8 == 0 && off + 8 <= self.layout.total);
        // SAFETY: as in `u64_at`.
        unsafe { &*self.base.as_ptr().add(off).cast::<AtomicI64>() }
    }

    /// The section sizes and offsets.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The file behind the region (`None` for an anonymous one).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The pid of the process that created the region.
    pub fn creator(&self) -> u32 {
        u32::try_from(self.u64_at(H_CREATOR).load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// Remove the region's file (the master at exit); the mappings stay valid.
    pub fn remove_file(&self) -> io::Result<()> {
        match &self.path {
            Some(p) => std::fs::remove_file(p),
            None => Ok(()),
        }
    }

    // -- process table ---------------------------------------------------------------------

    /// Word `i` of the table header (`None` past it).
    pub fn table_header(&self, i: usize) -> Option<&AtomicI64> {
        (i < TABLE_HEADER).then(|| self.i64_at(self.layout.table + 8 * i))
    }

    /// Field `field` of process slot `slot` (`None` when either is out of range).
    pub fn slot_field(&self, slot: usize, field: usize) -> Option<&AtomicI64> {
        (slot < self.layout.nslots as usize && field < SLOT_FIELDS).then(|| {
            self.i64_at(self.layout.table + 8 * (TABLE_HEADER + slot * SLOT_FIELDS + field))
        })
    }

    /// Clear the process table: its header words, every slot's fields and names (a master that
    /// adopts the region after a reload: none of the slots' processes is alive any more).
    pub fn reset_table(&self) {
        for i in 0..TABLE_HEADER {
            if let Some(w) = self.table_header(i) {
                w.store(0, Ordering::Relaxed);
            }
        }
        for slot in 0..self.layout.nslots as usize {
            for field in 0..SLOT_FIELDS {
                if let Some(w) = self.slot_field(slot, field) {
                    w.store(0, Ordering::Relaxed);
                }
            }
            for which in 0..SLOT_NAMES {
                self.set_name(slot, which, "");
            }
        }
    }

    // -- names -------------------------------------------------------------------------------

    fn name_bytes(&self, slot: usize, which: usize) -> Option<&[AtomicU8]> {
        (slot < self.layout.nslots as usize && which < SLOT_NAMES).then(|| {
            let off = self.layout.names + NAME_BYTES * (slot * SLOT_NAMES + which);
            // SAFETY: off..off+NAME_BYTES lies inside the names section (slot < nslots,
            // which < SLOT_NAMES); AtomicU8 has no alignment needs; the mapping lives as long
            // as `self`.
            unsafe {
                std::slice::from_raw_parts(
                    self.base.as_ptr().add(off).cast::<AtomicU8>(),
                    NAME_BYTES,
                )
            }
        })
    }

    /// Name field `which` (0: task deadline, 1: user deadline) of slot `slot`: the bytes before
    /// the first NUL (`None` when either index is out of range). A name being rewritten at the
    /// same time may read as a mix of both (each byte is read once, never torn).
    pub fn name(&self, slot: usize, which: usize) -> Option<Vec<u8>> {
        self.name_bytes(slot, which).map(|f| {
            f.iter()
                .map(|b| b.load(Ordering::Relaxed))
                .take_while(|&b| b != 0)
                .collect()
        })
    }

    /// Set name field `which` of slot `slot` to `name`, cut to [`NAME_BYTES`] (a UTF-8 string is
    /// cut on a character boundary) and NUL-padded. `false` when either index is out of range.
    pub fn set_name(&self, slot: usize, which: usize, name: &str) -> bool {
        let Some(f) = self.name_bytes(slot, which) else {
            return false;
        };
        let mut end = name.len().min(NAME_BYTES);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let raw = &name.as_bytes()[..end];
        for (i, b) in f.iter().enumerate() {
            b.store(raw.get(i).copied().unwrap_or(0), Ordering::Relaxed);
        }
        true
    }

    // -- routes ------------------------------------------------------------------------------

    fn route_byte(&self, i: usize) -> &AtomicU8 {
        debug_assert!(i < ROUTES_LEN);
        // SAFETY: routes..routes+ROUTES_LEN lies inside the mapping and i < ROUTES_LEN; AtomicU8
        // has no alignment needs.
        unsafe {
            &*self
                .base
                .as_ptr()
                .add(self.layout.routes + i)
                .cast::<AtomicU8>()
        }
    }

    /// The route byte of signal `num`: its worker id, 0 for through the master.
    pub fn route(&self, num: u8) -> &AtomicU8 {
        self.route_byte(usize::from(num))
    }

    /// The 'any worker' flag of signal `num` (1: its target is `worker`).
    pub fn route_any(&self, num: u8) -> &AtomicU8 {
        self.route_byte(256 + usize::from(num))
    }

    // -- locks -------------------------------------------------------------------------------

    /// Number of locks (lock numbers are 0..nlocks).
    pub fn nlocks(&self) -> u32 {
        self.layout.nlocks
    }

    /// Lock `n`'s mutex. `n` must be below `nlocks` (checked by the callers in `lock.rs`).
    pub(crate) fn mutex(&self, n: u32) -> *mut libc::pthread_mutex_t {
        debug_assert!(n < self.layout.nlocks);
        // SAFETY: lock slot n lies inside the mapping (n < nlocks), 64-aligned.
        unsafe {
            self.base
                .as_ptr()
                .add(self.layout.locks + LOCK_SLOT * n as usize)
                .cast()
        }
    }

    /// Lock `n`'s holder pid (0: none recorded).
    pub(crate) fn holder(&self, n: u32) -> &AtomicU32 {
        self.u32_at(self.layout.locks + LOCK_SLOT * n as usize + HOLDER_OFF)
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made for `self`; no reference outlives `self`.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.layout.total) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn sections_are_aligned_and_do_not_overlap() {
        for (s, l) in [(0, 0), (1, 1), (7, 3), (300, 65)] {
            let lay = Layout::new(s, l).unwrap();
            assert_eq!(lay.names % 64, 0);
            assert_eq!(lay.routes % 64, 0);
            assert_eq!(lay.locks % 64, 0);
            assert!(lay.table + 8 * (TABLE_HEADER + SLOT_FIELDS * s as usize) <= lay.names);
            assert!(lay.names + SLOT_NAMES * NAME_BYTES * s as usize <= lay.routes);
            assert!(lay.routes + ROUTES_LEN <= lay.locks);
            assert_eq!(lay.total, lay.locks + LOCK_SLOT * l as usize);
        }
        assert!(Layout::new(MAX_ENTRIES + 1, 0).is_err());
    }

    #[test]
    fn create_then_open_shares_the_same_memory() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("control.region");
        let a = Region::create(&path, 3, 2).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = Region::open(&path).unwrap();
        assert_eq!(b.layout(), a.layout());
        assert_eq!(b.creator(), std::process::id());
        a.slot_field(2, 7).unwrap().store(-42, Ordering::Relaxed);
        a.table_header(0).unwrap().store(5000, Ordering::Relaxed);
        a.route(9).store(4, Ordering::Relaxed);
        a.route_any(255).store(1, Ordering::Relaxed);
        assert!(a.set_name(2, 1, "mod.func"));
        assert_eq!(b.slot_field(2, 7).unwrap().load(Ordering::Relaxed), -42);
        assert_eq!(b.route_any(255).load(Ordering::Relaxed), 1);
        assert_eq!(b.route_any(9).load(Ordering::Relaxed), 0);
        assert_eq!(b.route(255).load(Ordering::Relaxed), 0);
        assert_eq!(b.name(2, 1).unwrap(), b"mod.func");
        assert_eq!(b.name(2, 0).unwrap(), b"");
        assert!(b.name(3, 0).is_none() && b.name(0, SLOT_NAMES).is_none());
        assert!(!b.set_name(3, 0, "x"));
        assert_eq!(b.table_header(0).unwrap().load(Ordering::Relaxed), 5000);
        assert_eq!(b.route(9).load(Ordering::Relaxed), 4);
        assert!(b.slot_field(3, 0).is_none());
        assert!(b.slot_field(0, SLOT_FIELDS).is_none());
        assert!(b.table_header(TABLE_HEADER).is_none());
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn names_are_cut_on_a_character_boundary_and_padded() {
        let r = Region::anonymous(2, 0).unwrap();
        let long = "é".repeat(NAME_BYTES); // 2 bytes each
        assert!(r.set_name(1, 0, &long));
        let got = r.name(1, 0).unwrap();
        assert_eq!(got.len(), NAME_BYTES);
        assert_eq!(
            std::str::from_utf8(&got).unwrap(),
            "é".repeat(NAME_BYTES / 2)
        );
        let odd = format!("a{}", "é".repeat(NAME_BYTES));
        r.set_name(1, 0, &odd);
        let got = r.name(1, 0).unwrap();
        assert_eq!(got.len(), NAME_BYTES - 1);
        assert!(std::str::from_utf8(&got).is_ok());
        // A shorter name leaves no tail of the longer one.
        r.set_name(1, 0, "short");
        assert_eq!(r.name(1, 0).unwrap(), b"short");
        // Neighbouring fields are untouched.
        assert_eq!(r.name(1, 1).unwrap(), b"");
        assert_eq!(r.name(0, 1).unwrap(), b"");
    }

    #[test]
    fn reset_table_clears_slots_and_names_and_keeps_routes_and_locks() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("r");
        let r = Region::create(&path, 2, 1).unwrap();
        r.table_header(0).unwrap().store(3000, Ordering::Relaxed);
        r.slot_field(1, 0).unwrap().store(1234, Ordering::Relaxed);
        r.set_name(1, 0, "mod.f");
        r.route(3).store(2, Ordering::Relaxed);
        let again = Region::open(&path).unwrap();
        again.reset_table();
        assert_eq!(r.table_header(0).unwrap().load(Ordering::Relaxed), 0);
        assert_eq!(r.slot_field(1, 0).unwrap().load(Ordering::Relaxed), 0);
        assert_eq!(r.name(1, 0).unwrap(), b"");
        assert_eq!(r.route(3).load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_stale_region_is_replaced_and_its_mappers_keep_theirs() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("r");
        let old = Region::create(&path, 1, 1).unwrap();
        old.route(1).store(7, Ordering::Relaxed);
        let new = Region::create(&path, 2, 1).unwrap();
        assert_eq!(new.route(1).load(Ordering::Relaxed), 0);
        assert_eq!(Region::open(&path).unwrap().layout().nslots, 2);
        assert_eq!(old.route(1).load(Ordering::Relaxed), 7);
        new.remove_file().unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn open_refuses_what_is_not_a_region() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("r");
        std::fs::write(&path, b"short").unwrap();
        assert_eq!(
            Region::open(&path).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        std::fs::write(&path, [0u8; 4096]).unwrap();
        let e = Region::open(&path).unwrap_err();
        assert!(e.to_string().contains("magic"), "{e}");
        // A real region cut short.
        let r = Region::create(&path, 4, 4).unwrap();
        let total = r.layout().total as u64;
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(total - 1)
            .unwrap();
        assert!(Region::open(&path).is_err());
        // Another layout version.
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(total)
            .unwrap();
        std::os::unix::fs::FileExt::write_all_at(
            &File::options().write(true).open(&path).unwrap(),
            &99u32.to_ne_bytes(),
            H_VERSION as u64,
        )
        .unwrap();
        let e = Region::open(&path).unwrap_err();
        assert!(e.to_string().contains("version 99"), "{e}");
        assert_eq!(
            Region::open(&tmp.path().join("missing"))
                .unwrap_err()
                .kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn anonymous_regions_are_shared_with_forked_children() {
        let r = Region::anonymous(1, 0).unwrap();
        // SAFETY: the child only stores a word and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            r.slot_field(0, 1).unwrap().store(11, Ordering::Relaxed);
            // SAFETY: leaving the child without running the harness's destructors.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(r.slot_field(0, 1).unwrap().load(Ordering::Relaxed), 11);
    }
}
