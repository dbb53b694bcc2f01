//! What the processes of one instance share: the file-backed region ([`region`]) with the
//! process table, the direct-delivery routes and the lock table ([`lock`]), and the
//! file-backed queues of the mules and farms ([`mule_queue`]).

pub mod lock;
pub mod mule_queue;
pub mod region;

pub use lock::{LockError, Taken};
pub use region::Region;

use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

/// A new file (mode 0600) beside `path`, at a name of this process's, for the caller to fill
/// and rename into place; a file left at that name by a killed process of the same pid goes.
pub(crate) fn create_beside(path: &Path) -> io::Result<(File, PathBuf)> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".new-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(&tmp)?;
    Ok((file, tmp))
}

/// Map `len` bytes of `fd` shared, read and write (`fd` < 0: anonymous shared memory).
pub(crate) fn map_shared(fd: i32, len: usize) -> io::Result<NonNull<u8>> {
    let flags = if fd < 0 {
        libc::MAP_SHARED | libc::MAP_ANONYMOUS
    } else {
        libc::MAP_SHARED
    };
    // SAFETY: a fresh mapping of `len` bytes; no existing memory is touched.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            fd,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p.cast()).ok_or_else(io::Error::last_os_error)
}
