//! The host lock: one file per serviceset, `File::try_lock`, released by the
//! kernel if the holder dies. The file says who holds it — pid, subcommand
//! and start time, nothing from the command line (it may carry secrets).

use std::fs::{self, File};
use std::io::{Read, Seek, Write};
use std::time::Duration;

use tokio::time::Instant;

use super::{Error, StateDir, open_private};
use crate::name::ServicesetName;

/// Held for the length of an operation; the kernel drops it if we die.
#[derive(Debug)]
pub struct HostLock {
    _file: File,
}

impl StateDir {
    /// Take the serviceset's lock for `operation` (e.g. `start`), waiting
    /// until `deadline`; `on_wait` is told who holds it, once.
    pub async fn lock(
        &self,
        serviceset: &ServicesetName,
        operation: &str,
        deadline: Instant,
        on_wait: impl FnOnce(&str),
    ) -> Result<HostLock, Error> {
        let path = self.dir("locks")?.join(format!("{serviceset}.lock"));
        let mut file = open_private(&path, false).map_err(Self::io(&path))?;
        let started = Instant::now();
        let mut on_wait = Some(on_wait);
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) => {
                    let holder = holder(&mut file);
                    if let Some(tell) = on_wait.take() {
                        tell(&holder);
                    }
                    if Instant::now() >= deadline {
                        return Err(Error::LockTimeout {
                            serviceset: serviceset.clone(),
                            holder,
                            waited: started.elapsed(),
                        });
                    }
                    // No event announces a lock's release; a short sleep is the wait.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(fs::TryLockError::Error(e)) => return Err(Self::io(&path)(e)),
            }
        }
        write_holder(&mut file, operation).map_err(Self::io(&path))?;
        Ok(HostLock { _file: file })
    }
}

impl StateDir {
    /// Take the serviceset's lock for `operation` only if it is free right
    /// now: `None` when another process holds it (then [`StateDir::lock`]
    /// waits for it and says who holds it).
    pub fn try_lock(
        &self,
        serviceset: &ServicesetName,
        operation: &str,
    ) -> Result<Option<HostLock>, Error> {
        let path = self.dir("locks")?.join(format!("{serviceset}.lock"));
        let mut file = open_private(&path, false).map_err(Self::io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Ok(None),
            Err(fs::TryLockError::Error(e)) => return Err(Self::io(&path)(e)),
        }
        write_holder(&mut file, operation).map_err(Self::io(&path))?;
        Ok(Some(HostLock { _file: file }))
    }
}

fn write_holder(file: &mut File, operation: &str) -> std::io::Result<()> {
    let me = holder_line(operation);
    file.set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| file.write_all(me.as_bytes()))
}

/// What the lock file says: `pid 42 (telefig start, since 2026-11-27T14:00:00Z)`.
fn holder_line(operation: &str) -> String {
    let since = jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_default();
    format!(
        "pid {} (telefig {operation}, since {since})",
        std::process::id()
    )
}

fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind().and_then(|_| file.read_to_string(&mut text));
    if text.trim().is_empty() {
        "another telefig process".into()
    } else {
        text.trim().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn try_lock_takes_a_free_lock_and_never_waits_for_a_held_one() {
        let dir = std::env::temp_dir().join(format!("telefig-trylock-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let state = StateDir::new(&dir);
        let svc = ServicesetName::parse("svc").unwrap();
        let first = state.try_lock(&svc, "start").unwrap().expect("free");
        assert!(state.try_lock(&svc, "start").unwrap().is_none(), "held");
        // A waiting locker is told the try-locker holds it.
        let mut told = String::new();
        let err = state
            .lock(&svc, "stop", Instant::now(), |h| told = h.to_owned())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::LockTimeout { .. }), "{err}");
        assert!(told.contains("(telefig start, since "), "{told}");
        drop(first);
        assert!(state.try_lock(&svc, "start").unwrap().is_some(), "released");
        let _ = fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn second_locker_waits_and_is_told_who_holds_it() {
        let dir = std::env::temp_dir().join(format!("telefig-lock-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let state = StateDir::new(&dir);
        let svc = ServicesetName::parse("svc").unwrap();
        let first = state
            .lock(&svc, "start", Instant::now(), |_| {})
            .await
            .unwrap();
        let mut told = String::new();
        let err = state
            .lock(
                &svc,
                "stop",
                Instant::now() + Duration::from_millis(200),
                |h| told = h.to_owned(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::LockTimeout { .. }), "{err}");
        let me = format!("pid {} (telefig start, since ", std::process::id());
        assert!(told.starts_with(&me), "{told}");
        let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("locks/svc.lock")), 0o600);
        drop(first);
        state
            .lock(&svc, "stop", Instant::now(), |_| {})
            .await
            .unwrap();
        fs::remove_dir_all(dir).unwrap();
    }
}
