//! How a cron run is started so that it is one of the host's jobs, not a
//! part of the daemon. Where systemd is init and the daemon is root, each
//! run is its own transient service unit (`systemd-run --wait --pipe`):
//! PID 1 starts it, so it inherits none of the sandbox of telefig's unit,
//! and systemd keeps the run's processes in its own cgroup. Elsewhere (no
//! systemd, or a daemon that is not root) a run is the daemon's child,
//! switched to the entry's user the way cron does it.
//!
//! Either way the daemon gets the run's exit code and its output (stdout
//! and stderr) on its own pipes; only how the process is started differs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use uzers::os::unix::UserExt;

use crate::platform::CronJob;

/// Present when systemd is PID 1: systemd's own test (`sd_booted`).
const SYSTEMD_BOOTED: &str = "/run/systemd/system";

/// The longest unit name systemd takes, suffix included.
const UNIT_NAME_MAX: usize = 255;

/// How the runs of this host are started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Launcher {
    /// `systemd-run`: each run a transient unit started by PID 1.
    TransientUnit,
    /// A child of the daemon (no systemd, or a daemon that is not root and
    /// so may not ask PID 1 for units).
    Child,
}

impl Launcher {
    /// This host's, now.
    pub(super) fn detect() -> Launcher {
        Launcher::choose(
            Path::new(SYSTEMD_BOOTED).is_dir(),
            uzers::get_effective_uid(),
        )
    }

    fn choose(systemd_booted: bool, euid: u32) -> Launcher {
        if systemd_booted && euid == 0 {
            Launcher::TransientUnit
        } else {
            Launcher::Child
        }
    }
}

/// Whom a run runs as.
enum RunAs {
    /// The daemon's own user: the entry names none, names the daemon's, or
    /// the daemon is not root and cannot switch.
    Daemon,
    /// Another user of the host.
    User(uzers::User),
}

/// The command for one run of `job` of `serviceset`, or why there is none.
pub(super) fn command(
    launcher: Launcher,
    serviceset: &str,
    job: &CronJob,
) -> Result<tokio::process::Command, String> {
    let run_as = run_as(job)?;
    Ok(match launcher {
        Launcher::TransientUnit => {
            let user = match &run_as {
                RunAs::User(user) => user.name().to_owned(),
                RunAs::Daemon => OsString::from(uzers::get_effective_uid().to_string()),
            };
            let argv = transient_unit_argv(serviceset, job, &user.to_string_lossy());
            let mut command = tokio::process::Command::new(&argv[0]);
            command.args(&argv[1..]);
            command
        }
        Launcher::Child => child_command(job, &run_as),
    })
}

/// The entry's `user`, looked up on this host.
fn run_as(job: &CronJob) -> Result<RunAs, String> {
    let Some(name) = job.user.as_deref() else {
        return Ok(RunAs::Daemon);
    };
    let me = uzers::get_effective_uid();
    let own_name = uzers::get_user_by_uid(me).map(|u| u.name().to_string_lossy().into_owned());
    if me != 0 || own_name.as_deref() == Some(name) {
        return Ok(RunAs::Daemon);
    }
    uzers::get_user_by_name(name)
        .map(RunAs::User)
        .ok_or_else(|| {
            format!(
                "cron job `{}`: no user `{name}` on this host; create it or change `user:`",
                job.name
            )
        })
}

/// `systemd-run` for one run as `user` (a name, or the daemon's uid): the
/// unit's processes get that user's uid, groups (initgroups), `HOME`,
/// `USER` and `LOGNAME` from systemd, as a cron job gets them; `SHELL` is
/// `/bin/sh` and the working directory the user's home (`/` if it has
/// none), as cron sets them; SIGPIPE is not ignored (systemd's default for
/// services, not cron's). `--wait --pipe` hand back the exit code and
/// output on the daemon's pipes; `--collect` unloads the unit even when
/// the run failed, so the next run can take its name.
fn transient_unit_argv(serviceset: &str, job: &CronJob, user: &str) -> Vec<String> {
    let mut argv: Vec<String> = [
        "systemd-run".to_owned(),
        format!("--unit={}", unit_name(serviceset, &job.name)),
        format!("--description=telefig cron job {serviceset}/{}", job.name),
        "--quiet".to_owned(),
        "--no-ask-password".to_owned(),
        "--collect".to_owned(),
        "--wait".to_owned(),
        "--pipe".to_owned(),
        format!("--uid={user}"),
        "--setenv=SHELL=/bin/sh".to_owned(),
        "--property=WorkingDirectory=-~".to_owned(),
        "--property=IgnoreSIGPIPE=no".to_owned(),
        "--".to_owned(),
    ]
    .into();
    argv.extend(job.command.iter().cloned());
    argv
}

/// The transient unit of an entry's runs:
/// `telefig-cron-<serviceset>:<job>.service`, each part escaped the way
/// systemd escapes (`\xNN` for each byte outside `[A-Za-z0-9_.-]`, `:`
/// included, so the first `:` separates the two). One name per entry: while
/// a run is active systemd refuses a second one under its name, even one
/// from a daemon started after a restart. A name past systemd's limit keeps
/// a readable start and ends with a digest of the two parts.
fn unit_name(serviceset: &str, job: &str) -> String {
    let (prefix, suffix) = ("telefig-cron-", ".service");
    let both = format!("{}:{}", escape(serviceset), escape(job));
    if prefix.len() + both.len() + suffix.len() <= UNIT_NAME_MAX {
        return format!("{prefix}{both}{suffix}");
    }
    let mut hasher = Sha256::new();
    hasher.update(serviceset.as_bytes());
    hasher.update([0]);
    hasher.update(job.as_bytes());
    let digest: String = hasher.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let keep = UNIT_NAME_MAX - prefix.len() - suffix.len() - 1 - digest.len();
    // Escaped text is ASCII: any byte is a character boundary.
    format!("{prefix}{}-{digest}{suffix}", &both[..keep])
}

fn escape(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for b in part.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The job's argv as a child of the daemon, run as its user the way cron
/// does: that user's uid, primary gid and supplementary groups
/// (initgroups), `HOME`, `USER`, `LOGNAME` and `SHELL`, in its home
/// directory.
fn child_command(job: &CronJob, run_as: &RunAs) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(&job.command[0]);
    command.args(&job.command[1..]);
    let RunAs::User(user) = run_as else {
        return command;
    };
    let name = user.name().to_string_lossy();
    let home = user.home_dir();
    as_user(&mut command, &name, user.uid(), user.primary_group_id());
    command
        .env("HOME", home)
        .env("USER", &*name)
        .env("LOGNAME", &*name)
        .env("SHELL", "/bin/sh")
        .current_dir(if home.is_dir() {
            home.to_owned()
        } else {
            PathBuf::from("/")
        });
    command
}

/// Run `command` as `uid`, with `gid` and every group `name` is a member
/// of. std's `uid()` would drop the supplementary groups (setgroups(0)),
/// and a `pre_exec` runs after it, too late; so all three are set here.
fn as_user(command: &mut tokio::process::Command, name: &str, uid: u32, gid: u32) {
    let mut groups: Vec<libc::gid_t> = uzers::get_user_groups(name, gid)
        .map(|gs| gs.iter().map(uzers::Group::gid).collect())
        .unwrap_or_default();
    if !groups.contains(&gid) {
        groups.push(gid);
    }
    // SAFETY: the closure runs in the child between fork and exec; it calls
    // only setgroups, setgid and setuid (async-signal-safe) and reads
    // memory allocated before the fork.
    unsafe {
        command.pre_exec(move || {
            if libc::setgroups(groups.len() as _, groups.as_ptr()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, command: &[&str], user: Option<&str>) -> CronJob {
        CronJob {
            owner: "web".into(),
            name: name.into(),
            schedule: "* * * * *".into(),
            command: command.iter().map(|s| (*s).to_owned()).collect(),
            user: user.map(str::to_owned),
            tz: None,
        }
    }

    #[test]
    fn a_transient_unit_only_where_systemd_is_init_and_the_daemon_is_root() {
        let cases = [
            (true, 0, Launcher::TransientUnit),
            (true, 1000, Launcher::Child),
            (false, 0, Launcher::Child),
            (false, 1000, Launcher::Child),
        ];
        for (booted, euid, want) in cases {
            assert_eq!(
                Launcher::choose(booted, euid),
                want,
                "booted {booted}, euid {euid}"
            );
        }
    }

    #[test]
    fn the_argv_runs_the_entrys_command_as_its_user_in_its_own_unit() {
        let line = "docker exec -i vtctld bash -c /vt/scripts/cron.sh > /tmp/x";
        let argv = transient_unit_argv(
            "vtctld",
            &job(
                "VtctldPeriodicMonitoring",
                &["/bin/sh", "-c", line],
                Some("vitess"),
            ),
            "vitess",
        );
        let want = [
            "systemd-run",
            "--unit=telefig-cron-vtctld:VtctldPeriodicMonitoring.service",
            "--description=telefig cron job vtctld/VtctldPeriodicMonitoring",
            "--quiet",
            "--no-ask-password",
            "--collect",
            "--wait",
            "--pipe",
            "--uid=vitess",
            "--setenv=SHELL=/bin/sh",
            "--property=WorkingDirectory=-~",
            "--property=IgnoreSIGPIPE=no",
            "--",
            "/bin/sh",
            "-c",
            line,
        ];
        assert_eq!(argv, want);
    }

    #[test]
    fn an_argv_command_follows_the_double_dash_word_for_word() {
        // A command word that looks like an option stays the command's.
        let argv = transient_unit_argv(
            "web",
            &job("j", &["/usr/bin/env", "--unit=x", "-q"], None),
            "0",
        );
        let dash = argv.iter().position(|a| a == "--").unwrap();
        assert_eq!(argv[dash + 1..], ["/usr/bin/env", "--unit=x", "-q"]);
        assert!(argv.contains(&"--uid=0".to_owned()), "{argv:?}");
    }

    #[test]
    fn unit_names_are_escaped_as_systemd_escapes_and_never_collide() {
        let cases = [
            ("web", "tick", "telefig-cron-web:tick.service"),
            (
                "my-app.prod",
                "Sweep_1",
                "telefig-cron-my-app.prod:Sweep_1.service",
            ),
            (
                "web",
                "nightly backup",
                "telefig-cron-web:nightly\\x20backup.service",
            ),
            ("web", "a:b/c", "telefig-cron-web:a\\x3ab\\x2fc.service"),
            ("web", "café", "telefig-cron-web:caf\\xc3\\xa9.service"),
            // `-` is kept; the `:` cannot be confused with one of the job's.
            ("a-b", "c", "telefig-cron-a-b:c.service"),
            ("a", "b-c", "telefig-cron-a:b-c.service"),
        ];
        for (serviceset, job, want) in cases {
            assert_eq!(unit_name(serviceset, job), want, "{serviceset} / {job}");
        }
    }

    #[test]
    fn a_long_unit_name_is_cut_to_systemds_limit_with_a_digest() {
        let long = "j".repeat(300);
        let name = unit_name("web", &long);
        assert_eq!(name.len(), UNIT_NAME_MAX, "{name}");
        assert!(name.starts_with("telefig-cron-web:jjj"), "{name}");
        assert!(name.ends_with(".service"), "{name}");
        let other = unit_name("web", &format!("{long}k"));
        assert_ne!(
            name, other,
            "two long names that share a start differ in the digest"
        );
        // At the limit exactly, the name is still the plain one.
        let just = "j".repeat(UNIT_NAME_MAX - "telefig-cron-web:.service".len());
        assert_eq!(
            unit_name("web", &just),
            format!("telefig-cron-web:{just}.service")
        );
    }

    /// systemd-run's own option parser takes the argv. `--user`, with no
    /// user manager to reach, makes it stop at connecting, which it does
    /// only once every option parsed, on any host, and starts nothing.
    #[test]
    fn systemd_run_parses_the_argv() {
        let argv = transient_unit_argv("web", &job("a b", &["/bin/true", "-x"], None), "0");
        let nowhere = std::env::temp_dir().join("telefig-no-user-manager");
        let out = std::process::Command::new(&argv[0])
            .arg("--user")
            .args(&argv[1..])
            .env("XDG_RUNTIME_DIR", &nowhere)
            .env("DBUS_SESSION_BUS_ADDRESS", format!("unix:path={}/bus", nowhere.display()))
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run systemd-run ({e}): run `tests/setup`, which installs Debian's systemd")
            });
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.trim().starts_with("Failed to connect to bus"),
            "systemd-run did not take the argv {argv:?}: {said}"
        );
    }
}
