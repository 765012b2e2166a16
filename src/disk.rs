//! How full a local file system is: `statvfs`, counted as `df` counts.
//!
//! telefig runs on the Docker host, so Docker's data root is a local path;
//! cleanup (`ops::gc`), the disk check before a pull (`ops::space`) and
//! `doctor` measure it here. What to do about the numbers is `plan`'s.

use std::path::Path;

use serde::Serialize;

/// Bytes used and total on a file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Disk {
    pub used: u64,
    pub total: u64,
}

impl Disk {
    pub fn percent(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        self.used as f64 * 100.0 / self.total as f64
    }
}

/// Disk use of the file system holding `path` (None: cannot be read, e.g.
/// the Docker Engine is on another host).
pub fn disk_use(path: &Path) -> Option<Disk> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frag = st.f_frsize as u64;
    let total = st.f_blocks as u64 * frag;
    let avail = st.f_bavail as u64 * frag;
    let free = st.f_bfree as u64 * frag;
    // As `df`: used of (used + available to unprivileged users).
    let used = total.saturating_sub(free);
    Some(Disk {
        used,
        total: used + avail,
    })
}
