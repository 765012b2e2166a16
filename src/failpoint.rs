//! Named points where a test build kills its own process, to prove that a
//! rerun converges from a crash at exactly that point.
//!
//! Compiled in only with the `failpoints` cargo feature (the integration
//! tests turn it on through the crate's dev-dependency on itself); in any
//! other build [`failpoint!`](crate::failpoint) expands to nothing. A point
//! is named `<when>:<what>:<target>`: `before` or `after` one Docker call
//! (`pull`, `create`, `start`, `stop`, `rename`, `remove`) or one record
//! write (`record`), and the container, image or serviceset it is about.
//! `TELEFIG_FAILPOINT` names where to die, in full (`after:create:web`) or
//! without the target (`after:create`: the first such point reached); the
//! process then sends itself SIGKILL, as the OOM killer or a host crash
//! would. While it is set (to anything: `none` kills nowhere), every point
//! reached is announced on stderr (`failpoint: NAME`), so a test can see
//! which points a run passes.
//!
//! `TELEFIG_FAILPOINT_ERROR` names, the same way, a point before a Docker
//! call that fails once instead, as if Docker had not answered: the first
//! time it is reached the call is not made and returns an error; later
//! passes go through. It shows that a failed call is tried again. Named
//! `after:…`, the call is made and its answer lost (a create Docker
//! carried out that telefig never heard of).
//!
//! `TELEFIG_FAILPOINT_DELAY` names, the same way, a point where the code
//! waits [`DELAY`] each time it is reached: the daemon's live model reading
//! Docker's stream late (`before:live-event:<container>`), as on a loaded
//! host. It shows that what is shown does not depend on that race.

/// How long a point named by `TELEFIG_FAILPOINT_DELAY` waits.
pub const DELAY: std::time::Duration = std::time::Duration::from_secs(2);

/// Mark a point: `failpoint!("before", "create", name)`.
#[macro_export]
macro_rules! failpoint {
    ($when:expr, $what:expr, $target:expr) => {
        #[cfg(feature = "failpoints")]
        $crate::failpoint::reached($when, $what, $target);
    };
}

/// Whether the call at this point fails (see [`fails`]): always `false`
/// outside a test build.
#[macro_export]
macro_rules! failpoint_fails {
    ($when:expr, $what:expr, $target:expr) => {{
        #[cfg(feature = "failpoints")]
        let fails = $crate::failpoint::fails($when, $what, $target);
        #[cfg(not(feature = "failpoints"))]
        let fails = false;
        fails
    }};
}

/// How long to wait at this point (see [`delay`]): always `None` outside a
/// test build.
#[macro_export]
macro_rules! failpoint_delay {
    ($when:expr, $what:expr, $target:expr) => {{
        #[cfg(feature = "failpoints")]
        let delay = $crate::failpoint::delay($when, $what, $target);
        #[cfg(not(feature = "failpoints"))]
        let delay: Option<std::time::Duration> = None;
        delay
    }};
}

/// [`DELAY`] when `TELEFIG_FAILPOINT_DELAY` names this point.
#[cfg(feature = "failpoints")]
pub fn delay(when: &str, what: &str, target: &str) -> Option<std::time::Duration> {
    use std::sync::OnceLock;
    static WANTED: OnceLock<Option<String>> = OnceLock::new();
    let wanted = WANTED
        .get_or_init(|| std::env::var("TELEFIG_FAILPOINT_DELAY").ok())
        .as_ref()?;
    let kind = format!("{when}:{what}");
    let name = format!("{kind}:{target}");
    (*wanted == name || *wanted == kind).then(|| {
        eprintln!("failpoint: waiting {} ms at {name}", DELAY.as_millis());
        DELAY
    })
}

/// Whether `TELEFIG_FAILPOINT_ERROR` names this point and it has not failed yet.
#[cfg(feature = "failpoints")]
pub fn fails(when: &str, what: &str, target: &str) -> bool {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicBool, Ordering};
    static WANTED: OnceLock<Option<String>> = OnceLock::new();
    static FAILED: AtomicBool = AtomicBool::new(false);
    let Some(wanted) = WANTED.get_or_init(|| std::env::var("TELEFIG_FAILPOINT_ERROR").ok()) else {
        return false;
    };
    let kind = format!("{when}:{what}");
    let name = format!("{kind}:{target}");
    if (*wanted == name || *wanted == kind) && !FAILED.swap(true, Ordering::SeqCst) {
        eprintln!("failpoint: failing once at {name}");
        return true;
    }
    false
}

/// Die here if `TELEFIG_FAILPOINT` names this point.
#[cfg(feature = "failpoints")]
pub fn reached(when: &str, what: &str, target: &str) {
    use std::sync::OnceLock;
    static WANTED: OnceLock<Option<String>> = OnceLock::new();
    let Some(wanted) = WANTED.get_or_init(|| std::env::var("TELEFIG_FAILPOINT").ok()) else {
        return;
    };
    let kind = format!("{when}:{what}");
    let name = format!("{kind}:{target}");
    eprintln!("failpoint: {name}");
    if *wanted == name || *wanted == kind {
        eprintln!("failpoint: killing telefig at {name}");
        // SAFETY: kill(2) on our own pid with a constant signal number.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
        // SIGKILL is not delivered synchronously on every kernel; never go on.
        loop {
            std::thread::park();
        }
    }
}
