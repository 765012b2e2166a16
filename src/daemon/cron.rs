//! Cron entries of the recorded servicesets, run on the host by the daemon:
//! one run at a time per entry, each run's exit code and output tail kept in
//! the state dir for `status`.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{info, warn};

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
                        let Ok(schedule) = Schedule::parse(&job.schedule) else {
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
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    };
    let mut record = CronRun {
        owner: job.owner.clone(),
        schedule: job.schedule.clone(),
        running: true,
        last_started: Some(now()),
        ..Default::default()
    };
    let _ = save(&state, &serviceset, &job.name, &record).await;
    info!(%serviceset, cron = %job.name, "running {:?}", job.command);
    let mut command = match &job.user {
        Some(user) if user != "root" => {
            let mut c = tokio::process::Command::new("runuser");
            c.args(["-u", user, "--"]).args(&job.command);
            c
        }
        _ => {
            let mut c = tokio::process::Command::new(&job.command[0]);
            c.args(&job.command[1..]);
            c
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
    let lines: Vec<&str> = output.lines().collect();
    record.output_tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
    record.exit_code = code;
    record.running = false;
    record.last_finished = Some(now());
    if code != Some(0) {
        warn!(%serviceset, cron = %job.name, "exited with {code:?}");
    }
    if let Err(e) = save(&state, &serviceset, &job.name, &record).await {
        warn!(%serviceset, cron = %job.name, "{e}");
    }
    running.store(false, Ordering::SeqCst);
}

/// Save a run off the async runtime: the write is synced to disk.
async fn save(
    state: &StateDir,
    serviceset: &ServicesetName,
    entry: &str,
    run: &CronRun,
) -> Result<(), crate::state::Error> {
    let (state, serviceset, entry, run) = (
        state.clone(),
        serviceset.clone(),
        entry.to_owned(),
        run.clone(),
    );
    tokio::task::spawn_blocking(move || state.save_cron_run(&serviceset, &entry, &run))
        .await
        .unwrap_or(Ok(()))
}
