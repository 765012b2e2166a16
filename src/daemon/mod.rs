//! `daemon`: keeps every recorded serviceset as recorded, after the deploy
//! hook has exited — the part of the graph Docker cannot keep.
//!
//! At start (boot) it repairs each serviceset through the same plan/engine
//! path as `start`, including dependents Docker started too early; then it
//! tells systemd it is ready. Then it follows the events stream: a removed
//! or stopped container is drift and is repaired; a dependency that dies or
//! turns unhealthy has its `healthy` dependents stopped at once and started
//! again once it passes; a container unhealthy past its budget is restarted
//! with backoff. It reconnects when dockerd restarts, runs cron entries,
//! and never stops a container on its own shutdown.

mod cron;
pub mod notify;
mod repair;
mod unhealthy;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::engine::events::{ContainerEvent, EventKind};
use crate::engine::gate::aborted;
use crate::engine::{self, Engine};
use crate::plan::Health;
use crate::state::{RecordCache, StateDir};
use notify::Notifier;
use repair::Repairer;
use unhealthy::{Budget, Verdict};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] engine::Error),
    #[error(transparent)]
    State(#[from] crate::state::Error),
    #[error(transparent)]
    Graph(#[from] crate::graph::Error),
    #[error(transparent)]
    Plan(#[from] crate::plan::Error),
    #[error("repair of serviceset `{serviceset}` failed: {why}")]
    RepairFailed { serviceset: String, why: String },
}

pub struct Options {
    pub state_dir: PathBuf,
    pub unhealthy_budget: Duration,
    /// Boot repair only, then return.
    pub once: bool,
}

/// Wait after an event before repairing, so a burst becomes one repair.
const DEBOUNCE: Duration = Duration::from_millis(300);
const TICK: Duration = Duration::from_millis(250);

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Run until `stop` turns true. Containers are never stopped on the way out.
pub async fn run(opts: Options, mut stop: watch::Receiver<bool>) -> Result<(), Error> {
    let notifier = Notifier::from_env();
    let state = StateDir::new(&opts.state_dir);
    let Some(engine) = connect(&notifier, &mut stop).await else {
        return Ok(());
    };
    let repairer = Repairer {
        engine,
        state: state.clone(),
        abort: stop.clone(),
    };

    let started = Instant::now();
    // The watch loop pings the watchdog; until it runs, a long boot repair must not look hung.
    let pinger = notifier.watchdog_every.map(|every| {
        tokio::spawn(async move {
            let notifier = Notifier::from_env();
            loop {
                notifier.watchdog();
                tokio::time::sleep(every).await;
            }
        })
    });
    let repaired = boot_repair(&repairer, &notifier).await;
    if let Some(p) = pinger {
        p.abort();
    }
    repaired?;
    info!("boot repair done in {} ms", started.elapsed().as_millis());
    notifier.ready();
    if opts.once {
        notifier.stopping();
        return Ok(());
    }
    let mut watcher = Watcher {
        repairer,
        notifier,
        budget: Budget::new(opts.unhealthy_budget),
        cron: cron::CronRunner::default(),
        pending: HashMap::new(),
        busy: Arc::default(),
        last_watchdog: Instant::now(),
        records: RecordCache::default(),
    };
    watcher.watch(&mut stop).await;
    watcher.notifier.stopping();
    Ok(())
}

/// Connect, retrying while dockerd is not up yet (at boot it may start after us).
async fn connect(notifier: &Notifier, stop: &mut watch::Receiver<bool>) -> Option<Engine> {
    let mut delay = Duration::from_millis(250);
    loop {
        match Engine::connect().await {
            Ok(engine) => return Some(engine),
            Err(e) => {
                notifier.status(&format!("waiting for Docker: {e}"));
                notifier.extend_timeout(delay + Duration::from_secs(30));
                warn!("{e}; retrying in {} ms", delay.as_millis());
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = aborted(stop) => return None,
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Every recorded, not-stopped serviceset, all at once; READY comes after.
/// A record that cannot be read is skipped, with a log line naming it: one
/// bad file must not keep the rest of the host unrepaired.
async fn boot_repair(repairer: &Repairer, notifier: &Notifier) -> Result<(), Error> {
    let state = repairer.state.clone();
    let scan = tokio::task::spawn_blocking(move || state.scan())
        .await
        .unwrap_or_default();
    for e in &scan.unreadable {
        error!("skipping a record: {e}");
    }
    let records: Vec<String> = scan
        .records
        .into_iter()
        .filter(|r| !r.stopped)
        .map(|r| r.serviceset.to_string())
        .collect();
    notifier.status(&format!("boot repair of {} servicesets", records.len()));
    // Gates can take minutes; keep systemd's start timeout ahead of us.
    notifier.extend_timeout(Duration::from_secs(660));
    let repairs = records.iter().map(|name| async move {
        match repairer.repair(name, true).await {
            Ok(Some(summary)) => info!(serviceset = %name, "boot repair: {summary}"),
            Ok(None) => info!(serviceset = %name, "boot repair: as recorded"),
            Err(e) => error!(serviceset = %name, "boot repair failed: {e}"),
        }
    });
    futures_util::future::join_all(repairs).await;
    notifier.status(&format!("watching {} servicesets", records.len()));
    Ok(())
}

struct Watcher {
    repairer: Repairer,
    notifier: Notifier,
    budget: Budget,
    cron: cron::CronRunner,
    /// Servicesets to repair, and when.
    pending: HashMap<String, Instant>,
    /// Servicesets with a repair running now.
    busy: Arc<Mutex<HashSet<String>>>,
    last_watchdog: Instant,
    /// The records, read again only when one changed.
    records: RecordCache,
}

impl Watcher {
    async fn watch(&mut self, stop: &mut watch::Receiver<bool>) {
        let mut since = now_secs();
        let mut tick = tokio::time::interval(TICK);
        loop {
            let mut events = self.repairer.engine.container_events(None, since);
            loop {
                tokio::select! {
                    _ = aborted(stop) => return,
                    event = events.next() => match event {
                        Some(Ok(e)) => {
                            since = e.time_nanos / 1_000_000_000;
                            self.on_event(e);
                        }
                        Some(Err(e)) => { warn!("events stream failed: {e}"); break; }
                        None => { warn!("events stream ended (dockerd restarting?); reconnecting"); break; }
                    },
                    _ = tick.tick() => self.on_tick(),
                }
            }
            let Some(engine) = connect(&self.notifier, stop).await else {
                return;
            };
            self.repairer.engine = engine;
            info!("reconnected to Docker; checking every serviceset");
            // Events were missed, and without live-restore dockerd restarted
            // every container at once: repair as at boot, order included.
            if let Err(e) = boot_repair(&self.repairer, &self.notifier).await {
                warn!("repair after reconnecting: {e}");
            }
        }
    }

    fn on_event(&mut self, e: ContainerEvent) {
        let Some(serviceset) = e.serviceset.clone() else {
            return;
        };
        let Some(container) = e.container.clone().filter(|c| *c == e.name) else {
            return;
        };
        match e.kind {
            EventKind::Die { .. } | EventKind::Health(Health::Unhealthy) => {
                if e.kind == EventKind::Health(Health::Unhealthy) {
                    self.budget
                        .unhealthy(&serviceset, &container, Instant::now());
                }
                let repairer = self.repairer.clone();
                let (s, c) = (serviceset.clone(), container.clone());
                tokio::spawn(async move {
                    match repairer.regate(&s, &c).await {
                        Ok(stopped) if !stopped.is_empty() => {
                            info!(serviceset = %s, "`{c}` went down: stopped {stopped:?} until it is healthy again");
                        }
                        Err(err) => warn!(serviceset = %s, "re-gating dependents of `{c}`: {err}"),
                        _ => {}
                    }
                });
            }
            EventKind::Health(Health::Healthy) | EventKind::Start => {
                self.budget.healthy(&serviceset, &container)
            }
            _ => {}
        }
        if matches!(e.kind, EventKind::Other | EventKind::Create) {
            return;
        }
        let due = Instant::now() + DEBOUNCE;
        self.pending
            .entry(serviceset)
            .and_modify(|d| *d = (*d).min(due))
            .or_insert(due);
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        let due: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(s, _)| s.clone())
            .collect();
        for serviceset in due {
            if !self
                .busy
                .lock()
                .expect("busy set")
                .insert(serviceset.clone())
            {
                continue; // a repair runs; this one stays pending until it is done
            }
            self.pending.remove(&serviceset);
            let repairer = self.repairer.clone();
            let busy = self.busy.clone();
            tokio::spawn(async move {
                match repairer.repair(&serviceset, false).await {
                    Ok(Some(summary)) => info!(%serviceset, "repaired: {summary}"),
                    Ok(None) => {}
                    Err(e) => {
                        warn!(%serviceset, "repair failed, will retry on the next event: {e}")
                    }
                }
                busy.lock().expect("busy set").remove(&serviceset);
            });
        }
        for verdict in self.budget.due(now) {
            match verdict {
                Verdict::Restart {
                    serviceset,
                    container,
                    restarts,
                } => {
                    warn!(%serviceset, %container, "unhealthy past its budget: restarting it (restart {restarts} of at most {})", unhealthy::MAX_RESTARTS);
                    let repairer = self.repairer.clone();
                    tokio::spawn(async move {
                        if let Err(e) = repairer.restart_unhealthy(&serviceset, &container).await {
                            warn!(%serviceset, %container, "restart failed: {e}");
                        }
                    });
                }
                Verdict::GiveUp {
                    serviceset,
                    container,
                } => {
                    error!(%serviceset, %container, "still unhealthy after {} restarts; leaving it to an operator", unhealthy::MAX_RESTARTS);
                }
            }
        }
        let records = &self.records.get(&self.repairer.state).records;
        self.cron.tick(records, &self.repairer.state, now_secs());
        if let Some(every) = self.notifier.watchdog_every
            && self.last_watchdog.elapsed() >= every
        {
            self.notifier.watchdog();
            self.last_watchdog = Instant::now();
        }
    }
}
