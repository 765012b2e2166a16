//! The checks that need no Docker: the state dir is writable, and the
//! local clock is set and agrees with the Docker daemon's.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::Check;
use crate::engine::HostFacts;
use crate::state::StateDir;

/// Beyond this, daemon timestamps and local deadlines disagree.
const MAX_SKEW: Duration = Duration::from_secs(5);
/// A clock before this year has never been set.
const MIN_YEAR: i64 = 2024;

/// Create and remove a file in the state dir. A dir that does not exist yet
/// is created for the test and removed again, as `start` would create it.
pub(super) fn state_dir(dir: &Path) -> Check {
    let fix = "pass --state-dir DIR, or run telefig as a user that can write there (the deploy hook runs it as root)";
    let missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
        .map(Path::to_path_buf)
        .collect();
    let shown = dir.display();
    let probe = dir.join(format!(".telefig-doctor-{}", std::process::id()));
    let written = std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create {shown}: {e}"))
        .and_then(|()| {
            std::fs::write(&probe, b"telefig doctor\n")
                .map_err(|e| format!("cannot write in {shown}: {e}"))
        })
        .and_then(|()| {
            std::fs::remove_file(&probe)
                .map_err(|e| format!("cannot remove {}: {e}", probe.display()))
        });
    // Deepest first, so each is empty when its turn comes.
    for created in &missing {
        let _ = std::fs::remove_dir(created);
    }
    if let Err(detail) = written {
        return Check::fail("state dir", detail, fix);
    }
    if !missing.is_empty() {
        return Check::ok(
            "state dir",
            format!("{shown} does not exist yet and can be created (`start` will)"),
        );
    }
    match StateDir::new(dir).list() {
        Ok(records) => Check::ok(
            "state dir",
            format!(
                "{shown} is writable; {} serviceset(s) recorded",
                records.len()
            ),
        ),
        Err(e) => Check::warn(
            "state dir",
            format!("{shown} is writable, but a record is unreadable"),
            e.to_string(),
        ),
    }
}

pub(super) fn clock(facts: Option<&HostFacts>, now: SystemTime) -> Check {
    let secs = crate::clock::unix_secs(now);
    let (year, month, day) = crate::platform::schedule::civil_from_days(secs.div_euclid(86_400));
    let local = format!("{year:04}-{month:02}-{day:02}");
    let ntp = "sync the clock with NTP (`timedatectl set-ntp true`, or chrony/ntpd)";
    if year < MIN_YEAR {
        return Check::fail(
            "clock",
            format!("the local clock says {local}: it was never set"),
            ntp,
        );
    }
    let Some(facts) = facts else {
        return Check::ok(
            "clock",
            format!("local date {local}; the daemon's clock not compared (Docker unreachable)"),
        );
    };
    match facts.clock_skew() {
        Some(skew) if skew.abs() >= MAX_SKEW => Check::fail(
            "clock",
            format!(
                "the Docker daemon's clock is {:.1}s {} the local one (limit {}s)",
                skew.as_secs_f64().abs(),
                if skew.0 > 0 { "ahead of" } else { "behind" },
                MAX_SKEW.as_secs()
            ),
            format!("{ntp}, on this host and on the Docker host"),
        ),
        Some(skew) => Check::ok(
            "clock",
            format!(
                "local date {local}; the Docker daemon's clock is within {:.1}s",
                skew.as_secs_f64().abs()
            ),
        ),
        None => Check::warn(
            "clock",
            format!(
                "local date {local}; the daemon reported no readable time ({:?})",
                facts.system_time
            ),
            "run `docker info --format '{{.SystemTime}}'` and compare it with `date -u`",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;
    use crate::doctor::host::tests::facts;

    #[test]
    fn civil_dates() {
        assert_eq!(crate::platform::schedule::civil_from_days(0), (1970, 1, 1));
        assert_eq!(
            crate::platform::schedule::civil_from_days(19_723),
            (2024, 1, 1)
        );
        assert_eq!(
            crate::platform::schedule::civil_from_days(20_513),
            (2026, 3, 1)
        );
    }

    #[test]
    fn clock_checks_the_year_and_the_skew() {
        let mut f = facts();
        let now = f.observed_at;
        assert_eq!(clock(Some(&f), now).status, Status::Ok);
        f.system_time = Some("2026-03-01T12:00:09Z".into());
        let c = clock(Some(&f), now);
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("9.0s ahead of"), "{}", c.detail);
        let never_set = std::time::UNIX_EPOCH + Duration::from_secs(86_400);
        assert_eq!(clock(None, never_set).status, Status::Fail);
        assert_eq!(clock(None, now).status, Status::Ok);
    }

    #[test]
    fn state_dir_probe_leaves_nothing_behind() {
        let root = std::env::temp_dir().join(format!("telefig-doctor-unit-{}", std::process::id()));
        let dir = root.join("a/b");
        let c = state_dir(&dir);
        assert_eq!(c.status, Status::Ok, "{c:?}");
        assert!(!root.exists(), "created dirs are removed again");
        std::fs::create_dir_all(&dir).unwrap();
        assert!(state_dir(&dir).detail.contains("is writable"));
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(state_dir(Path::new("/proc/forbidden")).status, Status::Fail);
    }
}
