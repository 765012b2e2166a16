//! Following Docker's events after the boot repair: drift is repaired, a
//! dependency that goes down has its `healthy` dependents stopped, a
//! container unhealthy past its budget is restarted, cron entries run.
//! Events the daemon's own repairs caused, or that a boot repair already
//! saw, are not drift (`plan::OwnEvents` decides); what an event triggers
//! is `daemon::react`'s decision, carried out here. Every task spawned here
//! is kept in a `JoinSet` and drained on shutdown.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch as signal;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::notify::Notifier;
use super::react::{self, BudgetUpdate};
use super::regate::{self, Next, RegateRetry};
use super::repair::Repairer;
use super::unhealthy::{self, Budget, Verdict};
use super::{boot_repair, connect, cron, footprint, now_nanos};
use crate::abort::aborted;
use crate::engine::events::ContainerEvent;
use crate::state::{FolderWatch, RecordCache};

/// Wait after an event before repairing, so a burst becomes one repair.
const DEBOUNCE: Duration = Duration::from_millis(300);
const TICK: Duration = Duration::from_millis(250);
/// With nothing pending, this long without an event that mattered is "idle".
const SETTLE: Duration = Duration::from_secs(1);

pub struct Watcher {
    repairer: Repairer,
    pub notifier: Notifier,
    budget: Budget,
    cron: cron::CronRunner,
    /// Servicesets to repair, and when.
    pending: HashMap<String, Instant>,
    /// The newest Docker event (its time, ns) that made each pending
    /// serviceset pending: the repair's events are shown after it.
    causes: HashMap<String, i64>,
    /// Servicesets with a repair running now.
    busy: Arc<Mutex<HashSet<String>>>,
    /// Servicesets whose repair Docker did not answer in time: tried again
    /// `--docker-timeout` later, event or not.
    retry: Arc<Mutex<Vec<String>>>,
    /// Re-gates that failed, tried again when due (see [`RegateRetry`]).
    regates: Arc<Mutex<Vec<regate::Due>>>,
    /// Which connection to dockerd a re-gate was started on: one that
    /// failed on an earlier connection is not tried again (the repair after
    /// reconnecting puts the order right from what Docker says then).
    connection: Arc<AtomicU64>,
    regate_retry: RegateRetry,
    /// Repairs, re-gates and restarts spawned, drained on shutdown.
    tasks: JoinSet<()>,
    /// Tasks ran since memory was last handed back: once none runs, what
    /// they freed goes back to the system ([`footprint`]).
    trim_due: bool,
    /// The last event that mattered (or the stream's connection).
    last_news: Instant,
    idle: bool,
    last_watchdog: Instant,
    /// The records, read again only when one changed.
    records: RecordCache,
    /// The records and the secrets noted by an operation under way: what
    /// the daemon masks is learned again when one changes.
    secrets: (FolderWatch, FolderWatch),
}

impl Watcher {
    pub fn new(repairer: Repairer, notifier: Notifier, budget: Duration) -> Watcher {
        Watcher {
            repairer,
            notifier,
            budget: Budget::new(budget),
            cron: cron::CronRunner::default(),
            pending: HashMap::new(),
            causes: HashMap::new(),
            busy: Arc::default(),
            retry: Arc::default(),
            regates: Arc::default(),
            connection: Arc::default(),
            regate_retry: RegateRetry::default(),
            tasks: JoinSet::new(),
            trim_due: false,
            last_news: Instant::now(),
            idle: false,
            last_watchdog: Instant::now(),
            records: RecordCache::default(),
            secrets: Default::default(),
        }
    }

    /// Follow events from `since` (seconds since the epoch) until `stop`.
    pub async fn watch(&mut self, stop: &mut signal::Receiver<bool>, mut since: i64) {
        let mut tick = tokio::time::interval(TICK);
        loop {
            let mut events = self.repairer.engine.container_events(None, since);
            self.last_news = Instant::now();
            self.idle = false;
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
            let Some(engine) = connect(&self.notifier, stop, self.repairer.margin).await else {
                return;
            };
            self.repairer.engine = engine;
            self.forget_every_regate();
            info!("reconnected to Docker; checking every serviceset");
            // Events were missed, and without live-restore dockerd restarted
            // every container at once: repair as at boot, order included.
            if let Err(e) = boot_repair(&self.repairer, &self.notifier).await {
                warn!("repair after reconnecting: {e}");
            }
        }
    }

    /// Wait for every task spawned to finish (an aborted repair rolls back
    /// what it started). A second signal exits at once (see `cli`).
    pub async fn drain(&mut self) {
        if !self.tasks.is_empty() {
            info!(
                "shutting down: waiting for {} repair task(s) to finish",
                self.tasks.len()
            );
        }
        while self.tasks.join_next().await.is_some() {}
    }

    fn on_event(&mut self, e: ContainerEvent) {
        let Some(serviceset) = e.serviceset.clone() else {
            return;
        };
        let Some(container) = e.container.clone().filter(|c| *c == e.name) else {
            return;
        };
        // One stat per event: cheap next to the event itself, and never stale.
        if !self.repairer.state.has_record(&serviceset) {
            return;
        }
        let verdict = self.repairer.own.lock().expect("own events").judge(
            &serviceset,
            &container,
            react::change(e.kind),
            e.time_nanos,
        );
        if let Some(why) = verdict {
            debug!(%serviceset, %container, "not drift ({why:?}): {:?}", e.kind);
        }
        let reaction = react::react(e.kind, verdict);
        let now = Instant::now();
        if reaction.news {
            self.last_news = now;
            self.idle = false;
        }
        match reaction.budget {
            Some(BudgetUpdate::Unhealthy) => self.budget.unhealthy(&serviceset, &container, now),
            Some(BudgetUpdate::Healthy) => self.budget.healthy(&serviceset, &container, now),
            None => {}
        }
        if reaction.forget_regates {
            self.forget_regates(&serviceset, &container);
        }
        if reaction.regate {
            self.spawn_regate(serviceset.clone(), container.clone(), 1);
        }
        if !reaction.repair {
            return;
        }
        let due = Instant::now() + DEBOUNCE;
        self.causes
            .entry(serviceset.clone())
            .and_modify(|t| *t = (*t).max(e.time_nanos))
            .or_insert(e.time_nanos);
        self.pending
            .entry(serviceset)
            .and_modify(|d| *d = (*d).min(due))
            .or_insert(due);
    }

    /// Stop the `healthy` dependents of `dependency` (attempt `attempt`);
    /// when that fails, put it on the retry list as the policy says.
    fn spawn_regate(&mut self, serviceset: String, dependency: String, attempt: u32) {
        let repairer = self.repairer.clone();
        let (regates, policy) = (self.regates.clone(), self.regate_retry);
        let connection = self.connection.clone();
        let started_on = connection.load(Ordering::SeqCst);
        let (s, c) = (serviceset, dependency);
        self.tasks.spawn(async move {
            let err = match repairer.regate(&s, &c).await {
                Ok(stopped) if !stopped.is_empty() => {
                    info!(serviceset = %s, "`{c}` went down: stopped {stopped:?} until it is healthy again");
                    return;
                }
                Ok(_) => return,
                Err(err) => err,
            };
            match policy.after_failure(attempt, !err.is_bad_input()) {
                Next::Retry { attempt: next, after } => {
                    let mut regates = regates.lock().expect("regate list");
                    if connection.load(Ordering::SeqCst) != started_on {
                        warn!(serviceset = %s, "re-gating dependents of `{c}` failed: {err}; not tried again: the repair after reconnecting to Docker checks the order");
                        return;
                    }
                    warn!(serviceset = %s, "re-gating dependents of `{c}` failed (attempt {attempt} of {}): {err}; trying again in {} ms", policy.attempts, after.as_millis());
                    regates.push(regate::Due {
                        serviceset: s,
                        dependency: c,
                        attempt: next,
                        due: Instant::now() + after,
                    });
                }
                Next::GiveUp { attempts } => {
                    error!(serviceset = %s, "re-gating dependents of `{c}` failed {attempts} time(s), giving up: {err}; they keep running until the next repair, or stop them with `telefig stop`");
                }
                Next::Hopeless => {
                    error!(serviceset = %s, "re-gating dependents of `{c}` failed and trying again cannot help: {err}");
                }
            }
        });
    }

    /// Drop every re-gate retry, and those of re-gates still running: they
    /// were decided on what an earlier connection saw.
    fn forget_every_regate(&self) {
        let mut regates = self.regates.lock().expect("regate list");
        self.connection.fetch_add(1, Ordering::SeqCst);
        regates.clear();
    }

    /// Drop the retries of re-gates for `dependency`.
    fn forget_regates(&self, serviceset: &str, dependency: &str) {
        self.regates
            .lock()
            .expect("regate list")
            .retain(|r| r.serviceset != serviceset || r.dependency != dependency);
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        self.trim_due |= !self.tasks.is_empty();
        while self.tasks.try_join_next().is_some() {}
        if self.tasks.is_empty() && std::mem::take(&mut self.trim_due) {
            footprint::give_back_free_memory();
        }
        let due = regate::take_due(&mut self.regates.lock().expect("regate list"), now);
        for r in due {
            self.spawn_regate(r.serviceset, r.dependency, r.attempt);
        }
        for serviceset in std::mem::take(&mut *self.retry.lock().expect("retry list")) {
            let due = now + self.repairer.margin;
            self.pending
                .entry(serviceset)
                .and_modify(|d| *d = (*d).min(due))
                .or_insert(due);
        }
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
            let cause = self.causes.remove(&serviceset);
            let repairer = self.repairer.clone();
            let (busy, retry) = (self.busy.clone(), self.retry.clone());
            self.tasks.spawn(async move {
                match repairer.repair(&serviceset, false, cause, None).await {
                    Ok(Some(summary)) => info!(%serviceset, "repaired: {summary}"),
                    Ok(None) => {}
                    Err(e) if e.timed_out() => {
                        warn!(%serviceset, "repair abandoned, Docker did not answer: {e}; trying again in {}s", repairer.margin.as_secs());
                        retry.lock().expect("retry list").push(serviceset.clone());
                    }
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
                    self.tasks.spawn(async move {
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
        let state = &self.repairer.state;
        let (records, noted) = &mut self.secrets;
        let changed = |watch: &mut FolderWatch, sub| {
            let (changed, removed) = watch.changed(state, sub);
            !changed.is_empty() || !removed.is_empty()
        };
        if changed(records, "servicesets") | changed(noted, "secrets") {
            crate::redact::learn(&state.recorded_secrets());
        }
        let records = &self.records.get(&self.repairer.state).records;
        self.cron.tick(
            records,
            &self.repairer.state,
            &self.repairer.engine,
            now_nanos() / 1_000_000_000,
        );
        if !self.idle
            && self.pending.is_empty()
            && self.tasks.is_empty()
            && self.regates.lock().expect("regate list").is_empty()
            && self.last_news.elapsed() >= SETTLE
        {
            self.idle = true;
            info!("idle: events settled, no repair pending");
        }
        if let Some(every) = self.notifier.watchdog_every
            && self.last_watchdog.elapsed() >= every
        {
            self.notifier.watchdog();
            self.last_watchdog = Instant::now();
        }
    }
}
