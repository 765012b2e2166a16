//! Keeps the live model ([`Model`]) current: a snapshot at start and after
//! every reconnect, then the events stream alone. Serves it on the socket
//! (`socket.rs`) and writes each container's probe history to the state
//! dir every few seconds, so it survives a restart of the daemon.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch as signal;
use tracing::{info, warn};

use super::happened::{Caused, Happened};
use super::model::{Model, Needs};
use super::{metrics, socket};
use crate::abort::aborted;
use crate::clock::now_nanos;
use crate::engine::Engine;
use crate::engine::live::Probe;
use crate::state::{DeployLog, FolderWatch, StateDir};

/// How often new probe results are written to the state dir.
const FLUSH_EVERY: Duration = Duration::from_secs(5);
/// How often the deploy logs and cron runs are looked at for changes.
const FILES_EVERY: Duration = Duration::from_millis(250);
/// Wait before re-reading after the events stream ended (dockerd restart).
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

pub type Shared = Arc<Mutex<Model>>;

/// Telefig-level events, to every `events` subscriber of the socket.
pub type Feed = tokio::sync::broadcast::Sender<Happened>;

/// Where the metrics go (`metrics.rs`), both optional.
pub struct Exports {
    pub listener: Option<tokio::net::TcpListener>,
    pub file: Option<std::path::PathBuf>,
}

/// Run until `stop`: build the model, follow events, serve the socket and
/// the metrics.
pub async fn run(
    engine: Engine,
    state: StateDir,
    exports: Exports,
    mut stop: signal::Receiver<bool>,
) {
    let model: Shared = Arc::default();
    let (feed, _) = tokio::sync::broadcast::channel(1024);
    let server = tokio::spawn(socket::serve(
        socket::path(&state),
        model.clone(),
        feed.clone(),
        stop.clone(),
    ));
    if let Some(listener) = exports.listener {
        tokio::spawn(metrics::serve(
            listener,
            model.clone(),
            state.clone(),
            stop.clone(),
        ));
    }
    tokio::spawn(follow_files(
        state.clone(),
        model.clone(),
        feed.clone(),
        stop.clone(),
    ));
    if let Some(path) = exports.file {
        tokio::spawn(metrics::write_file(
            path,
            model.clone(),
            state.clone(),
            stop.clone(),
        ));
    }
    let mut reconnects = 0u64;
    loop {
        let since = now_nanos() / 1_000_000_000;
        let snapshot = tokio::select! {
            s = engine.live_snapshot() => s,
            _ = aborted(&mut stop) => break,
        };
        match snapshot {
            Ok(snapshot) => {
                let count = snapshot.len();
                let st = state.clone();
                let fresh = Model::from_snapshot(snapshot, |name| st.health_history(name));
                let mut m = model.lock().expect("never poisoned");
                let deploys = std::mem::take(&mut m.deploys);
                let outbox = std::mem::take(&mut m.outbox);
                *m = fresh;
                m.reconnects = reconnects;
                m.deploys = deploys;
                m.outbox = outbox;
                // Docker replays its stream from `since` on; what came
                // before was missed, and is shown never: stop waiting for it.
                for h in m.outbox.docker_read_to(since * 1_000_000_000 - 1) {
                    let _ = feed.send(h); // no subscriber is fine
                }
                drop(m);
                give_back_freed_memory();
                info!("live model: {count} containers");
            }
            Err(e) => {
                warn!("live model: {e}; trying again");
                tokio::select! {
                    _ = tokio::time::sleep(RECONNECT_DELAY) => continue,
                    _ = aborted(&mut stop) => break,
                }
            }
        }
        follow(&engine, &state, &model, &feed, since, &mut stop).await;
        if *stop.borrow() {
            break;
        }
        reconnects += 1;
        tokio::select! {
            _ = tokio::time::sleep(RECONNECT_DELAY) => {}
            _ = aborted(&mut stop) => break,
        }
    }
    flush(&state, &model, None).await;
    server.abort();
    let _ = std::fs::remove_file(socket::path(&state));
}

/// Apply events until the stream ends or `stop`.
async fn follow(
    engine: &Engine,
    state: &StateDir,
    model: &Shared,
    feed: &Feed,
    since: i64,
    stop: &mut signal::Receiver<bool>,
) {
    let mut events = engine.live_events(since);
    let mut dirty: HashSet<String> = HashSet::new();
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    loop {
        tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(ev)) => {
                    // A test build can read Docker's stream late here, as a
                    // loaded host does.
                    if let Some(late) = crate::failpoint_delay!("before", "live-event", &ev.name) {
                        tokio::time::sleep(late).await;
                    }
                    let needs = {
                        let mut m = model.lock().expect("never poisoned");
                        let (news, needs) = m.docker_event(&ev);
                        // Sent under the lock: the files' events cannot
                        // come between. No subscriber is fine.
                        for h in news {
                            let _ = feed.send(h);
                        }
                        needs
                    };
                    match needs {
                        Needs::Nothing => {}
                        Needs::Probe(id) => { dirty.insert(id); }
                        Needs::RestartCount(id) => {
                            if let Ok(d) = engine.inspect(&id).await {
                                model.lock().expect("never poisoned").set_restart_count(&id, d.restart_count);
                            }
                        }
                        Needs::Reread(id) => {
                            let listed = model.lock().expect("never poisoned").listed(&id);
                            // Gone meanwhile: its removal is in the stream.
                            if let Some(c) = match listed {
                                Some(listed) => engine.live_reread(listed).await,
                                None => None,
                            } {
                                model.lock().expect("never poisoned").reread(c);
                            }
                        }
                        Needs::Facts(id) => {
                            if let Some((command, policy)) = engine.created_facts(&id).await {
                                let history: Vec<Probe> = state.health_history(&ev.name);
                                model.lock().expect("never poisoned").learn(&id, command, policy, history);
                            }
                        }
                    }
                }
                Some(Err(e)) => {
                    warn!("live model: the events stream ended: {e}");
                    break;
                }
                None => break,
            },
            _ = tick.tick() => {
                flush(state, model, Some(std::mem::take(&mut dirty))).await;
                give_back_freed_memory();
            }
            _ = aborted(stop) => break,
        }
    }
    flush(state, model, Some(dirty)).await;
}

/// Follow the deploy logs and cron runs in the state dir: read a file again
/// when it changed (off the runtime), update the model, and send the events
/// it adds — in the order they happened, a repair's after Docker's event
/// that caused it — to the `events` subscribers.
async fn follow_files(
    state: StateDir,
    model: Shared,
    feed: Feed,
    mut stop: signal::Receiver<bool>,
) {
    let mut watches = (FolderWatch::default(), FolderWatch::default());
    let mut live = false;
    let mut tick = tokio::time::interval(FILES_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = aborted(&mut stop) => return,
        }
        let st = state.clone();
        let read = tokio::task::spawn_blocking(move || {
            let (deploys, cron) = &mut watches;
            let (changed, removed) = deploys.changed(&st, "deploys");
            let logs: Vec<(String, Option<DeployLog>)> = changed
                .into_iter()
                .filter_map(|name| Some((name.clone(), Some(st.read_deploy_log(&name)?))))
                .chain(removed.into_iter().map(|name| (name, None)))
                .collect();
            let (changed, removed) = cron.changed(&st, "cron");
            let runs = (!changed.is_empty() || !removed.is_empty()).then(|| st.cron_runs());
            (watches, logs, runs)
        })
        .await;
        let Ok((back, logs, runs)) = read else {
            return;
        };
        watches = back;
        let mut m = model.lock().expect("never poisoned");
        let mut news = Vec::new();
        for (name, log) in logs {
            news.extend(m.deploys.update(&name, log, live));
        }
        if let Some(runs) = runs {
            let ran = m.deploys.update_cron(&runs, live);
            news.extend(ran.into_iter().map(|happened| Caused {
                after_nanos: None,
                happened,
            }));
        }
        // A repair's events wait for Docker's event that caused it.
        for h in m.outbox.push(news) {
            let _ = feed.send(h); // no subscriber is fine
        }
        live = true;
    }
}

/// Return the heap's free pages to the kernel. The snapshot's inspect
/// answers (about 10 KiB each) and each flush's buffers are freed at once,
/// but glibc keeps freed pages below a live allocation: without this, a
/// daemon that has done one snapshot of a few hundred containers keeps the
/// peak as its resident size all day.
fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only reads and trims glibc's own arenas; it is
    // safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Write the probe history of the containers in `ids` (all, for `None`).
async fn flush(state: &StateDir, model: &Shared, ids: Option<HashSet<String>>) {
    if ids.as_ref().is_some_and(HashSet::is_empty) {
        return;
    }
    let histories: Vec<(String, Vec<Probe>)> = {
        let m = model.lock().expect("never poisoned");
        m.containers
            .values()
            .filter(|e| ids.as_ref().is_none_or(|ids| ids.contains(&e.id)))
            .filter(|e| !e.probes.is_empty())
            .map(|e| (e.name.clone(), e.probes.iter().cloned().collect()))
            .collect()
    };
    let state = state.clone();
    let _ = tokio::task::spawn_blocking(move || {
        for (name, probes) in histories {
            if let Err(e) = state.save_health_history(&name, &probes) {
                warn!("live model: {e}");
            }
        }
    })
    .await;
}
