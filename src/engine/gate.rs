//! Gates, noticed from Docker's events stream rather than by polling.
//!
//! A [`Monitor`] follows the container events of one serviceset and keeps
//! the latest status of each container id in a watch channel. A waiter
//! seeds the status with one inspect (events from before that moment are
//! ignored), then sleeps on the channel until the gate is met or failed
//! (`plan::judge_gate` says which), its deadline passes or the operation
//! is aborted. Only if the events stream
//! breaks (dockerd restarting) does a waiter fall back to inspecting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::time::Instant;

use super::events::{ContainerEvent, EventKind};
use super::{Engine, Error};
use crate::abort::aborted;
use crate::graph::Gate;
use crate::plan::bake::{BakeFailure, judge_bake};
use crate::plan::{GateStatus, judge_gate};

/// The latest status of a container, and when it was seen.
#[derive(Debug, Clone, Default)]
struct Tracked {
    status: GateStatus,
    /// Events older than this (ns since the epoch) are stale and ignored.
    seen_at: i64,
}

type Channels = Arc<Mutex<HashMap<String, watch::Sender<Tracked>>>>;

pub struct Monitor {
    engine: Engine,
    channels: Channels,
    connected: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

use crate::clock::now_nanos;

impl Monitor {
    /// Follow `serviceset`'s container events from this moment on.
    pub fn start(engine: &Engine, serviceset: &str) -> Monitor {
        let channels: Channels = Arc::default();
        let (connected_tx, connected) = watch::channel(true);
        let since = now_nanos() / 1_000_000_000;
        let mut events = engine.container_events(Some(serviceset), since);
        let task_channels = channels.clone();
        let task = tokio::spawn(async move {
            while let Some(Ok(event)) = events.next().await {
                apply_event(&task_channels, &event);
            }
            // The stream ends when dockerd restarts: waiters fall back to inspecting.
            let _ = connected_tx.send(false);
        });
        Monitor {
            engine: engine.on_own_limit(),
            channels,
            connected,
            task,
        }
    }

    fn subscribe(&self, id: &str) -> (watch::Sender<Tracked>, watch::Receiver<Tracked>) {
        let mut map = self.channels.lock().expect("monitor lock");
        let tx = map
            .entry(id.to_owned())
            .or_insert_with(|| watch::channel(Tracked::default()).0);
        (tx.clone(), tx.subscribe())
    }

    /// Read the container's state now and make it the baseline.
    async fn seed(&self, id: &str, tx: &watch::Sender<Tracked>) -> Result<(), Error> {
        let at = now_nanos();
        let d = self.engine.inspect(id).await?;
        tx.send_modify(|s| {
            if s.seen_at <= at {
                *s = Tracked {
                    status: GateStatus {
                        running: d.running || d.restarting,
                        exit_code: (!d.running).then_some(d.exit_code).flatten(),
                        health: d.health,
                        oom: d.oom_killed,
                        removed: false,
                        starts: s.status.starts,
                    },
                    seen_at: at,
                };
            }
        });
        Ok(())
    }

    /// Wait until container `id` meets `gate`, failing fast when it cannot.
    /// `has_healthcheck` says whether `healthy` means Docker health or just running.
    pub async fn wait(
        &self,
        id: &str,
        gate: Gate,
        has_healthcheck: bool,
        deadline: Instant,
        abort: &mut watch::Receiver<bool>,
    ) -> Result<(), GateFailure> {
        let mut seeded: Option<bool> = None;
        let followed = self
            .follow(id, deadline, abort, |status| {
                // An image may bring its own HEALTHCHECK: Docker then reports
                // a health state (read from the first status, the inspect's).
                let has = *seeded.get_or_insert(has_healthcheck || status.health.is_some());
                judge_gate(status, gate, has)
            })
            .await;
        match followed {
            Followed::Judged(verdict) => verdict,
            Followed::Until => Err(GateFailure::Timeout),
            Followed::Aborted => Err(GateFailure::Interrupted),
            Followed::Docker(e) => Err(GateFailure::Docker(e)),
        }
    }

    /// Watch container `id` until `until` (`timeout`: that moment is the
    /// operation's deadline, not the bake's end), failing as soon as
    /// `plan::judge_bake` says what Docker reports fails its bake.
    pub async fn bake(
        &self,
        id: &str,
        until: Instant,
        timeout: bool,
        abort: &mut watch::Receiver<bool>,
    ) -> Result<(), BakeFailure> {
        let mut starts_before = None;
        let followed = self
            .follow(id, until, abort, |status| {
                judge_bake(status, *starts_before.get_or_insert(status.starts))
            })
            .await;
        match followed {
            Followed::Judged(failure) => Err(failure),
            Followed::Until if timeout => Err(BakeFailure::Timeout),
            Followed::Until => Ok(()),
            Followed::Aborted => Err(BakeFailure::Interrupted),
            Followed::Docker(e) => Err(BakeFailure::Docker(e)),
        }
    }

    /// Follow container `id`'s status until `judge` says something of it,
    /// `until` passes or `abort` turns true. Events are the signal; a slow
    /// re-inspect guards against one lost in a reconnect, and takes over
    /// if the stream breaks.
    async fn follow<T>(
        &self,
        id: &str,
        until: Instant,
        abort: &mut watch::Receiver<bool>,
        mut judge: impl FnMut(&GateStatus) -> Option<T>,
    ) -> Followed<T> {
        let (tx, mut rx) = self.subscribe(id);
        if let Err(e) = self.seed(id, &tx).await {
            return Followed::Docker(e.to_string());
        }
        let mut connected = self.connected.clone();
        loop {
            let status = rx.borrow_and_update().status.clone();
            if let Some(judged) = judge(&status) {
                return Followed::Judged(judged);
            }
            let fallback = async {
                if *connected.borrow() {
                    tokio::select! {
                        _ = connected.changed() => {}
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                } else {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            };
            tokio::select! {
                _ = rx.changed() => {}
                _ = tokio::time::sleep_until(until) => return Followed::Until,
                _ = aborted(abort) => return Followed::Aborted,
                _ = fallback => {
                    if let Err(e) = self.seed(id, &tx).await {
                        return Followed::Docker(e.to_string());
                    }
                }
            }
        }
    }
}

/// How following a container ended ([`Monitor::follow`]).
enum Followed<T> {
    /// The judge said this.
    Judged(T),
    /// The time given passed.
    Until,
    Aborted,
    /// Docker could not be asked.
    Docker(String),
}

pub use crate::plan::GateFailure;

fn apply_event(channels: &Channels, event: &ContainerEvent) {
    let map = channels.lock().expect("monitor lock");
    let Some(tx) = map.get(&event.id) else { return };
    // An event that carries no state (an exec of a health probe, a create,
    // a stop before its die) must not move `seen_at` either: an inspect made
    // while it arrived would be thrown away as older, and with probes every
    // few hundred milliseconds and a slow dockerd, every inspect was, so a
    // started container was never seen running.
    let carries_state = !matches!(
        event.kind,
        EventKind::Create | EventKind::Stop | EventKind::Other
    );
    tx.send_if_modified(|s| {
        if event.time_nanos < s.seen_at || !carries_state {
            return false;
        }
        s.seen_at = event.time_nanos;
        let s = &mut s.status;
        match event.kind {
            EventKind::Start => {
                s.starts += 1;
                s.running = true;
                s.exit_code = None;
                s.oom = false;
                s.health = None;
            }
            EventKind::Die { exit_code } => {
                s.running = false;
                s.exit_code = exit_code.or(Some(-1));
            }
            EventKind::Oom => s.oom = true,
            EventKind::Destroy => s.removed = true,
            EventKind::Health(h) => s.health = Some(h),
            EventKind::Create | EventKind::Stop | EventKind::Other => return false,
        }
        true
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, kind: EventKind, time_nanos: i64) -> ContainerEvent {
        ContainerEvent {
            id: id.into(),
            name: "web".into(),
            serviceset: Some("s".into()),
            container: Some("web".into()),
            kind,
            time_nanos,
        }
    }

    #[test]
    fn an_event_without_state_does_not_make_a_later_inspect_stale() {
        let channels: Channels = Arc::default();
        let (tx, rx) = watch::channel(Tracked::default());
        channels.lock().unwrap().insert("c1".into(), tx);
        // A probe's exec events arrive while an inspect (begun at 5) is answered.
        for (i, kind) in [EventKind::Other, EventKind::Create, EventKind::Stop]
            .into_iter()
            .enumerate()
        {
            apply_event(&channels, &event("c1", kind, 10 + i as i64));
        }
        assert_eq!(rx.borrow().seen_at, 0, "an inspect begun at 5 still counts");
        // A start does carry state, and does move it.
        apply_event(&channels, &event("c1", EventKind::Start, 20));
        assert_eq!(rx.borrow().seen_at, 20);
        assert!(rx.borrow().status.running);
    }
}
