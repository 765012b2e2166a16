//! Cron entries of the recorded servicesets, run on the host by the daemon:
//! one run at a time per entry, as the entry's user, each run's exit code
//! and output tail kept in the state dir for `status`, and counted (by
//! result, with its run time) in the entry's running totals for the metrics.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tracing::{info, warn};
use uzers::os::unix::UserExt;

use crate::name::ServicesetName;
use crate::platform::CronJob;
use crate::platform::schedule::Schedule;
use crate::state::{CronRun, Record, StateDir};

/// Lines of output kept per run.
const TAIL_LINES: usize = 20;

#[derive(Default)]
pub struct CronRunner {
    entries: HashMap<(String, String), Entry>,
}

struct Entry {
    schedule: Schedule,
    due: Option<i64>,
    running: Arc<AtomicBool>,
}

impl CronRunner {
    /// Start every entry whose time has come (`now` in seconds since the
    /// epoch); `@reboot` entries run on the first tick only.
    pub fn tick(&mut self, records: &[Record], state: &StateDir, now: i64) {
        let mut live = Vec::new();
        for record in records.iter().filter(|r| !r.stopped) {
            for job in &record.expanded.cron {
                let key = (record.serviceset.to_string(), job.name.clone());
                live.push(key.clone());
                let entry = match self.entries.get_mut(&key) {
                    Some(e) => e,
                    None => {
                        let Ok(schedule) = Schedule::parse(&job.schedule, job.tz.as_deref()) else {
                            continue;
                        };
                        let due = match schedule {
                            Schedule::Reboot => Some(now),
                            ref s => s.next_after(now),
                        };
                        let running = Arc::new(AtomicBool::new(false));
                        self.entries.entry(key).or_insert(Entry {
                            schedule,
                            due,
                            running,
                        })
                    }
                };
                let Some(due) = entry.due.filter(|d| *d <= now) else {
                    continue;
                };
                entry.due = entry.schedule.next_after(due.max(now));
                if entry.running.swap(true, Ordering::SeqCst) {
                    warn!(serviceset = %record.serviceset, cron = %job.name, "previous run still going; skipping this one");
                    continue;
                }
                tokio::spawn(run(
                    state.clone(),
                    record.serviceset.clone(),
                    job.clone(),
                    entry.running.clone(),
                ));
            }
        }
        // Entries of servicesets no longer recorded are forgotten.
        self.entries.retain(|k, _| live.contains(k));
    }
}

async fn run(state: StateDir, serviceset: ServicesetName, job: CronJob, running: Arc<AtomicBool>) {
    let now = crate::clock::now_secs;
    let (began, started_at) = (Instant::now(), now());
    let started = CronRun {
        owner: job.owner.clone(),
        schedule: job.schedule.clone(),
        running: true,
        last_started: Some(started_at),
        ..Default::default()
    };
    // A fresh record for this run; the totals carry over.
    let _ = save(&state, &serviceset, &job.name, move |run| {
        let totals = std::mem::take(&mut run.totals);
        *run = CronRun { totals, ..started };
    })
    .await;
    info!(%serviceset, cron = %job.name, "running {:?}", job.command);
    let mut command = match host_command(&job) {
        Ok(command) => command,
        Err(message) => {
            let ended = Ended {
                code: Some(127),
                output: message,
                started_at,
                at: now(),
                seconds: began.elapsed().as_secs_f64(),
            };
            finish(&state, &serviceset, &job, ended).await;
            running.store(false, Ordering::SeqCst);
            return;
        }
    };
    command.stdin(Stdio::null()).kill_on_drop(true);
    let (code, output) = match command.output().await {
        Ok(out) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            (out.status.code().or(Some(-1)), text)
        }
        Err(e) => (Some(127), format!("cannot run {:?}: {e}", job.command)),
    };
    let ended = Ended {
        code,
        output,
        started_at,
        at: now(),
        seconds: began.elapsed().as_secs_f64(),
    };
    finish(&state, &serviceset, &job, ended).await;
    running.store(false, Ordering::SeqCst);
}

/// How a run ended.
struct Ended {
    code: Option<i32>,
    output: String,
    /// When it started and ended, seconds since the epoch.
    started_at: i64,
    at: i64,
    /// How long it ran.
    seconds: f64,
}

/// Record a finished run: its exit code, the tail of its output, and its
/// count and run time in the entry's totals.
async fn finish(state: &StateDir, serviceset: &ServicesetName, job: &CronJob, ended: Ended) {
    let Ended {
        code,
        output,
        started_at,
        at,
        seconds,
    } = ended;
    if code != Some(0) {
        warn!(%serviceset, cron = %job.name, "exited with {code:?}");
    }
    let lines: Vec<&str> = output.lines().collect();
    let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
    let (owner, schedule) = (job.owner.clone(), job.schedule.clone());
    // The whole run again, in case its start could not be saved.
    let saved = save(state, serviceset, &job.name, move |run| {
        run.owner = owner;
        run.schedule = schedule;
        run.last_started = Some(started_at);
        run.output_tail = tail;
        run.exit_code = code;
        run.running = false;
        run.last_finished = Some(at);
        run.totals.count(code, seconds);
    })
    .await;
    if let Err(e) = saved {
        warn!(%serviceset, cron = %job.name, "{e}");
    }
}

/// The job's argv, run as its `user` the way cron does: that user's uid,
/// primary gid and supplementary groups (initgroups), `HOME`, `USER`, `LOGNAME` and `SHELL`, in its home
/// directory. When the daemon is not root, or the user is the daemon's own,
/// the command runs as the daemon's user.
fn host_command(job: &CronJob) -> Result<tokio::process::Command, String> {
    let mut command = tokio::process::Command::new(&job.command[0]);
    command.args(&job.command[1..]);
    let Some(name) = job.user.as_deref() else {
        return Ok(command);
    };
    let me = uzers::get_effective_uid();
    let own_name = uzers::get_user_by_uid(me).map(|u| u.name().to_string_lossy().into_owned());
    if me != 0 || own_name.as_deref() == Some(name) {
        return Ok(command);
    }
    let user = uzers::get_user_by_name(name).ok_or_else(|| {
        format!(
            "cron job `{}`: no user `{name}` on this host; create it or change `user:`",
            job.name
        )
    })?;
    let home = user.home_dir();
    as_user(&mut command, name, user.uid(), user.primary_group_id());
    command
        .env("HOME", home)
        .env("USER", name)
        .env("LOGNAME", name)
        .env("SHELL", "/bin/sh")
        .current_dir(if home.is_dir() {
            home
        } else {
            std::path::Path::new("/")
        });
    Ok(command)
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

/// Change an entry's stored run off the async runtime: the write is synced
/// to disk.
async fn save(
    state: &StateDir,
    serviceset: &ServicesetName,
    entry: &str,
    change: impl FnOnce(&mut CronRun) + Send + 'static,
) -> Result<(), crate::state::Error> {
    let (state, serviceset, entry) = (state.clone(), serviceset.clone(), entry.to_owned());
    tokio::task::spawn_blocking(move || state.update_cron_run(&serviceset, &entry, change))
        .await
        .unwrap_or(Ok(()))
}
