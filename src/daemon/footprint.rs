//! The daemon's memory: one malloc arena, and freed memory handed back to
//! the system once the boot repair is over and after each burst of repairs.
//!
//! glibc gives each thread that allocates its own arena (up to eight per
//! core) and keeps what is freed in it. The daemon's threads are few but
//! come and go (tokio's blocking pool: record writes, metrics, deploy-log
//! reads), and a boot repair of 500 containers touches many pages on each:
//! with 100 servicesets its resident set settled anywhere from 33 to 69 MiB
//! depending on which threads had run, against 27 MiB with one arena
//! (bench/RESULTS.md). The daemon's allocations are small and rare next to
//! its Docker calls, so one arena costs nothing measurable.

/// Use one malloc arena for the whole process. Call it before any thread
/// other than the main one exists (before the async runtime is built).
pub fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets a tunable of the C allocator; it is
    // called while the process has a single thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Hand the pages malloc holds free back to the system: after the boot
/// repair, and whenever the watch's repairs have all finished (a burst of
/// repairs' peak is not needed while the daemon only watches).
pub fn give_back_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only releases memory the allocator holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}
