//! Cron entries of the recorded servicesets, run on the host by the daemon:
//! one run at a time per entry, as the entry's user, each run's exit code
//! and output tail kept in the state dir for `status`, and counted (by
//! result, with its run time) in the entry's running totals for the metrics.
//! How a run is started, as a host job outside the daemon's sandbox, is
//! `launch`.

mod launch;

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tracing::{info, warn};

use crate::engine::Engine;
use crate::name::ServicesetName;
use crate::platform::CronJob;
use crate::platform::schedule::Schedule;
use crate::state::{CronRun, Record, StateDir, restore_cron_command};

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
    pub fn tick(&mut self, records: &[Record], state: &StateDir, engine: &Engine, now: i64) {
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
                    engine.clone(),
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

async fn run(
    state: StateDir,
    engine: Engine,
    serviceset: ServicesetName,
    job: CronJob,
    running: Arc<AtomicBool>,
) {
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
    let launcher = launch::Launcher::detect();
    // As the record keeps it: secret values as placeholders.
    info!(%serviceset, cron = %job.name, "running {:?} ({launcher:?})", job.command);
    let runnable = with_secrets(&engine, &serviceset, &job).await;
    let mut command =
        match runnable.and_then(|job| launch::command(launcher, serviceset.as_str(), &job)) {
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

/// `job` with the secret values its record keeps as digests put back,
/// from the environment of the serviceset's containers.
async fn with_secrets(
    engine: &Engine,
    serviceset: &ServicesetName,
    job: &CronJob,
) -> Result<CronJob, String> {
    if !job
        .command
        .iter()
        .any(|w| crate::redact::has_placeholder(w))
    {
        return Ok(job.clone());
    }
    let candidates = engine
        .serviceset_env_values(serviceset.as_str())
        .await
        .unwrap_or_default();
    let command = restore_cron_command(job, candidates.iter().map(String::as_str)).map_err(|_| {
        format!(
            "cron job `{}`: its command holds a secret value that the record keeps only as a digest, and no container of serviceset `{serviceset}` holds it in its environment; pass the value to the owner's environment, or deploy again",
            job.name
        )
    })?;
    Ok(CronJob {
        command,
        ..job.clone()
    })
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
