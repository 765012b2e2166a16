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
pub mod deploys;
pub mod footprint;
pub mod happened;
mod live;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod react;
mod regate;
mod repair;
pub mod socket;
mod unhealthy;
mod watch;

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch as signal;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::abort::aborted;
use crate::engine::{self, Engine};
use crate::state::StateDir;
use notify::Notifier;
use repair::Repairer;

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
    #[error("cannot listen for metrics on {addr}: {source}; pick another --metrics-listen address")]
    MetricsListen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Ops(#[from] crate::ops::Error),
    #[error("repair of serviceset `{serviceset}` failed: {why}")]
    RepairFailed { serviceset: String, why: String },
}

impl Error {
    /// The input was wrong (the record's graph, a name): trying again
    /// cannot help.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Graph(_) => true,
            Error::Ops(e) => e.is_bad_input(),
            _ => false,
        }
    }

    /// Whether Docker did not answer in time (a hung dockerd): worth trying
    /// again soon, unlike a failure Docker reported.
    pub fn timed_out(&self) -> bool {
        matches!(
            self,
            Error::Engine(engine::Error::Deadline { .. })
                | Error::Ops(crate::ops::Error::Engine(engine::Error::Deadline { .. }))
        )
    }
}

pub struct Options {
    pub state_dir: PathBuf,
    pub unhealthy_budget: Duration,
    /// Boot repair only, then return.
    pub once: bool,
    /// Serve Prometheus metrics here (`/metrics`).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Write Prometheus metrics to this file (node_exporter textfile).
    pub metrics_file: Option<PathBuf>,
    /// Bound on each Docker read (list, inspect, the connect), and the
    /// margin a repair gets beyond its gates' budgets (`--docker-timeout`).
    pub docker_timeout: Duration,
}

use crate::clock::now_nanos;

/// Run until `stop` turns true. Containers are never stopped on the way out.
pub async fn run(opts: Options, mut stop: signal::Receiver<bool>) -> Result<(), Error> {
    let notifier = Notifier::from_env();
    let state = StateDir::new(&opts.state_dir);
    // What it logs, answers and keeps is masked with the recorded secrets
    // (learned again as records change: `watch`).
    crate::redact::learn(&state.recorded_secrets());
    let metrics_listener = match opts.metrics_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| Error::MetricsListen { addr, source })?,
        ),
        None => None,
    };
    let Some(engine) = connect(&notifier, &mut stop, opts.docker_timeout).await else {
        return Ok(());
    };
    // The live model (status, health history) runs beside the repairs.
    let live = (!opts.once).then(|| {
        let exports = live::Exports {
            listener: metrics_listener,
            file: opts.metrics_file.clone(),
        };
        tokio::spawn(live::run(
            engine.clone(),
            state.clone(),
            exports,
            stop.clone(),
        ))
    });
    let repairer = Repairer {
        engine,
        state: state.clone(),
        abort: stop.clone(),
        own: Default::default(),
        margin: opts.docker_timeout,
    };

    let started = Instant::now();
    // Events from the boot repair's start on are read once it is done:
    // those it caused, or saw, are not drift; anything else that happened
    // meanwhile is.
    let since = now_nanos() / 1_000_000_000;
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
    footprint::give_back_free_memory();
    notifier.ready();
    if opts.once {
        notifier.stopping();
        return Ok(());
    }
    let mut watcher = watch::Watcher::new(repairer, notifier, opts.unhealthy_budget);
    watcher.watch(&mut stop, since).await;
    watcher.notifier.stopping();
    watcher.drain().await;
    if let Some(live) = live {
        let _ = live.await;
    }
    Ok(())
}

/// Connect, retrying while dockerd is not up yet (at boot it may start
/// after us) or does not answer within `bound`; every read the connection
/// makes is bounded by `bound` too.
async fn connect(
    notifier: &Notifier,
    stop: &mut signal::Receiver<bool>,
    bound: Duration,
) -> Option<Engine> {
    let mut delay = Duration::from_millis(250);
    loop {
        match tokio::time::timeout(bound, Engine::connect()).await {
            Ok(Ok(engine)) => return Some(engine.with_read_bound(bound)),
            Err(_) => {
                let e = format!(
                    "Docker did not answer the version check within {}s (--docker-timeout)",
                    bound.as_secs()
                );
                notifier.status(&format!("waiting for Docker: {e}"));
                warn!("{e}; retrying in {} ms", delay.as_millis());
            }
            Ok(Err(e)) => {
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

/// Every recorded, not-stopped serviceset, all at once, from one list of
/// the host; READY comes after.
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
    // One look at the host for all of them, not one each (see `ops::repair`).
    let at_nanos = now_nanos();
    let seen = match repairer.engine.list(None).await {
        Ok(observed) => Some(crate::ops::Seen { at_nanos, observed }),
        Err(e) => {
            warn!("boot repair: listing the host failed, each serviceset looks for itself: {e}");
            None
        }
    };
    let seen = seen.as_ref();
    let repairs = records.iter().map(|name| async move {
        match repairer.repair(name, true, None, seen).await {
            Ok(Some(summary)) => info!(serviceset = %name, "boot repair: {summary}"),
            Ok(None) => info!(serviceset = %name, "boot repair: as recorded"),
            Err(e) => error!(serviceset = %name, "boot repair failed: {e}"),
        }
    });
    futures_util::future::join_all(repairs).await;
    notifier.status(&format!("watching {} servicesets", records.len()));
    Ok(())
}
