//! A cron job runs as one of the host's jobs. Run as `user` it gets that
//! user's supplementary groups too, as cron gives them (initgroups): a job
//! that reads a group-owned socket or log directory works under telefig as
//! it did under cron. Where systemd is init, each run is a transient unit
//! that PID 1 starts, outside the daemon's sandbox; elsewhere it is the
//! daemon's child.

#[path = "support/stack.rs"]
mod stack;
mod support;

use std::process::Command;
use std::time::Duration;

use stack::*;
use support::*;

/// A host group and a user that is a member of it (not its primary group),
/// removed when dropped.
struct HostUser {
    user: String,
    group: String,
}

impl HostUser {
    fn create() -> HostUser {
        let tag = format!("{}", std::process::id());
        let (user, group) = (format!("tfcron{tag}"), format!("tfgrp{tag}"));
        let ok = |c: &mut Command| assert!(c.status().unwrap().success(), "{c:?}");
        ok(Command::new("groupadd").arg(&group));
        let made = HostUser { user, group };
        ok(Command::new("useradd")
            .args(["-M", "-N", "-s", "/bin/sh", "-G"])
            .arg(&made.group)
            .arg(&made.user));
        made
    }

    fn gid(&self) -> String {
        let out = Command::new("getent")
            .args(["group", &self.group])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split(':')
            .nth(2)
            .unwrap()
            .to_owned()
    }
}

impl Drop for HostUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.user).status();
        let _ = Command::new("groupdel").arg(&self.group).status();
    }
}

/// The output tail of `entry`'s first finished run (exit code 0).
fn first_run_output(s: &Stack, entry: &str) -> String {
    let status = || s.status_json();
    let ran = wait_until(Duration::from_secs(20), || {
        status()["cron"][s.id()][entry]["exit_code"] == 0
    });
    let log = s.daemon_log();
    assert!(ran, "{}\n{log}", status());
    status()["cron"][s.id()][entry]["output_tail"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

#[test]
fn a_cron_job_runs_with_its_users_supplementary_groups() {
    if !require_docker() {
        return;
    }
    assert!(
        is_root(),
        "creating a host user and group needs root: run the tests as root"
    );
    let host = HostUser::create();
    let gid = host.gid();
    let s = Stack::new();
    s.add_cron(&format!(
        "      Grouped: {{schedule: \"* * * * * *\", command: 'echo \"groups: $(id -G)\"', user: {}}}\n",
        host.user
    ));
    assert_exit(&s.start(&[]), 0);
    let _daemon = s.daemon(&[], &[]);
    let output = first_run_output(&s, "Grouped");
    let groups: Vec<&str> = output
        .trim()
        .trim_start_matches("groups:")
        .split_whitespace()
        .collect();
    assert!(
        groups.contains(&gid.as_str()),
        "the job's groups {groups:?} lack {} ({gid})",
        host.group
    );
}

/// Who starts a run, for real on this host: where systemd is init (and the
/// daemon is root) PID 1 does, as a transient unit; elsewhere — as on the
/// build machines — the daemon does, the run being its child.
#[test]
fn a_cron_run_is_started_by_systemd_where_it_is_init_else_by_the_daemon() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    s.add_cron("      Parent: {schedule: \"* * * * * *\", command: 'echo \"parent=$PPID\"'}\n");
    assert_exit(&s.start(&[]), 0);
    let daemon = s.daemon(&[], &[]);
    let output = first_run_output(&s, "Parent");
    let systemd = std::path::Path::new("/run/systemd/system").is_dir() && is_root();
    let parent = if systemd {
        "1".to_owned()
    } else {
        daemon.0.id().to_string()
    };
    assert_eq!(
        output.trim(),
        format!("parent={parent}"),
        "systemd is init: {systemd}"
    );
}
