//! The telefig-level events `telefig events` shows: [`Happened`], what a
//! Docker event means ([`happened`]) for the live model as it was before
//! it, and the order they are shown in ([`Outbox`]). Pure, as the model is.
//!
//! Two readers feed the stream: Docker's events (the live model's own
//! subscription) and the deploy logs an operation writes. The daemon's
//! repair watcher has a subscription of its own and may act, and write its
//! repair to the log, before the live model has read the Docker event that
//! caused the repair. The outbox holds such a repair's events until Docker's
//! stream has been read up to that event, so the cause is always shown
//! before the cure.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::model::{Entry, Model};
use crate::engine::live::{LiveEvent, LiveKind};
use crate::platform::LABEL_SERVICESET;

/// A telefig-level event, as `telefig events` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Happened {
    /// Nanoseconds since the epoch.
    pub time_nanos: i64,
    pub serviceset: String,
    /// Empty for an event of the whole serviceset (a deploy's start and end).
    #[serde(default)]
    pub container: String,
    /// From Docker: created, started, restarted (by Docker's policy), died,
    /// stopped, removed, renamed, healthy, unhealthy, starting, probe-failed.
    /// From the deploy log (with `deploy`): deploy-, rollback-, restart- or
    /// repair-started and -finished, pulled, created, gate-passed,
    /// gate-failed, rolled-back, repaired. From cron runs: cron-ran.
    pub event: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// The deploy log entry (its number) the event belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<u64>,
    /// start, rollback, restart or repair (deploy-log events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// succeeded, failed or rolled_back (`*-finished`); succeeded or failed
    /// (`cron-ran`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

/// A telefig-level event that must not be shown before Docker's event at
/// `after_nanos` (the one that caused it), when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caused {
    pub after_nanos: Option<i64>,
    pub happened: Happened,
}

/// What is shown, and when: Docker's events at once, as read; every other
/// event in the order it came, none before Docker's event that caused it.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Docker's stream has been read up to here (ns): every Docker event
    /// before it has been shown, or never will be.
    read_to_nanos: i64,
    /// Events waiting for Docker's stream to reach their cause, in order.
    held: VecDeque<Caused>,
}

impl Outbox {
    /// Docker's stream has been read up to `nanos`: an event at that time
    /// was applied, or a fresh snapshot was taken and the stream starts
    /// after it. Returns the held events now due, in order.
    pub fn docker_read_to(&mut self, nanos: i64) -> Vec<Happened> {
        self.read_to_nanos = self.read_to_nanos.max(nanos);
        self.due()
    }

    /// Events from the deploy logs and cron runs, in order: those that may
    /// be shown now (after any held before them), the rest held.
    pub fn push(&mut self, news: impl IntoIterator<Item = Caused>) -> Vec<Happened> {
        self.held.extend(news);
        self.due()
    }

    fn due(&mut self) -> Vec<Happened> {
        let mut out = Vec::new();
        while let Some(next) = self.held.front()
            && next.after_nanos.is_none_or(|t| t <= self.read_to_nanos)
        {
            out.extend(self.held.pop_front().map(|c| c.happened));
        }
        out
    }
}

/// The telefig-level event `ev` means for the model as it was before it.
pub fn happened(model: &Model, ev: &LiveEvent) -> Option<Happened> {
    let entry = model.containers.get(&ev.id);
    let (event, detail) = match &ev.kind {
        LiveKind::Create => ("created", String::new()),
        LiveKind::Start if entry.is_some_and(Entry::restarts_now) => ("restarted", String::new()),
        LiveKind::Start => ("started", String::new()),
        LiveKind::Die { exit_code } => (
            "died",
            exit_code.map_or_else(String::new, |c| format!("exit code {c}")),
        ),
        LiveKind::Stop => ("stopped", String::new()),
        LiveKind::Destroy => ("removed", String::new()),
        LiveKind::Rename => ("renamed", String::new()),
        LiveKind::Health(h) => (h.as_str(), String::new()),
        LiveKind::ExecDie { exec, exit_code } if *exit_code != 0 && model.is_probe(exec) => {
            ("probe-failed", format!("exit code {exit_code}"))
        }
        _ => return None,
    };
    let entry_name = entry.map(|e| e.name.clone());
    Some(Happened {
        time_nanos: ev.time_nanos,
        serviceset: entry.map_or_else(
            || {
                ev.attributes
                    .get(LABEL_SERVICESET)
                    .cloned()
                    .unwrap_or_default()
            },
            |e| e.serviceset.clone(),
        ),
        container: entry_name
            .filter(|_| !matches!(ev.kind, LiveKind::Rename))
            .unwrap_or_else(|| ev.name.clone()),
        event: event.to_owned(),
        detail,
        ..Happened::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::LABEL_ROLE;

    fn event(kind: LiveKind, name: &str) -> LiveEvent {
        LiveEvent {
            id: "c1".into(),
            name: name.into(),
            attributes: [
                (LABEL_SERVICESET.to_owned(), "shop".to_owned()),
                (LABEL_ROLE.to_owned(), "main".to_owned()),
            ]
            .into(),
            time_nanos: 7,
            kind,
        }
    }

    /// What `ev` means, then applied: (serviceset container event detail).
    fn seen(m: &mut Model, kind: LiveKind, name: &str) -> Option<String> {
        let ev = event(kind, name);
        let h = happened(m, &ev);
        m.apply(&ev);
        h.map(|h| {
            assert_eq!(h.time_nanos, 7);
            format!("{} {} {} {}", h.serviceset, h.container, h.event, h.detail)
        })
    }

    #[test]
    fn docker_events_as_telefig_events() {
        let mut m = Model::default();
        let probe = "/bin/sh -c test -e /ready";
        assert_eq!(
            seen(&mut m, LiveKind::Create, "web").unwrap(),
            "shop web created "
        );
        m.learn(
            "c1",
            Some(probe.into()),
            "unless-stopped".into(),
            Vec::new(),
        );
        assert_eq!(
            seen(&mut m, LiveKind::Start, "web").unwrap(),
            "shop web started "
        );
        let exec = |exec: &str, command: &str| LiveKind::ExecCreate {
            exec: exec.into(),
            command: command.into(),
        };
        let died = |exec: &str| LiveKind::ExecDie {
            exec: exec.into(),
            exit_code: 1,
        };
        assert_eq!(seen(&mut m, exec("e1", probe), "web"), None);
        assert_eq!(
            seen(&mut m, died("e1"), "web").unwrap(),
            "shop web probe-failed exit code 1"
        );
        // An exec that is not the health probe is nothing to tell.
        assert_eq!(seen(&mut m, exec("e2", "sh -c other"), "web"), None);
        assert_eq!(seen(&mut m, died("e2"), "web"), None);
        // A crash, then dockerd's restart (no stop between).
        let crash = LiveKind::Die { exit_code: Some(3) };
        assert_eq!(
            seen(&mut m, crash, "web").unwrap(),
            "shop web died exit code 3"
        );
        assert_eq!(
            seen(&mut m, LiveKind::Start, "web").unwrap(),
            "shop web restarted "
        );
        // A rename says the new name.
        assert_eq!(
            seen(&mut m, LiveKind::Rename, "web.previous-c1").unwrap(),
            "shop web.previous-c1 renamed "
        );
    }

    /// A deploy-log event of deploy 1, waiting for Docker's event at `after`.
    fn logged(event: &str, after: Option<i64>) -> Caused {
        Caused {
            after_nanos: after,
            happened: Happened {
                serviceset: "shop".into(),
                container: "web".into(),
                event: event.into(),
                deploy: Some(1),
                ..Happened::default()
            },
        }
    }

    fn said(events: &[Happened]) -> Vec<String> {
        events.iter().map(|h| h.event.clone()).collect()
    }

    /// Regression: the repair watcher has its own subscription to Docker's
    /// events. It repaired a container removed by hand, and the repair's
    /// events (read from the deploy log) were shown before the live model
    /// had read Docker's `removed`: the cure before the disease.
    #[test]
    fn a_repairs_events_wait_for_the_docker_event_that_caused_it() {
        let mut m = Model::default();
        let (news, _) = m.docker_event(&event(LiveKind::Create, "web"));
        assert_eq!(said(&news), ["created"]);
        let removed = LiveEvent {
            time_nanos: 20,
            ..event(LiveKind::Destroy, "web")
        };
        // The repair's start and first step are read before `removed` is.
        let early = m.outbox.push([
            logged("repair-started", Some(20)),
            logged("created", Some(20)),
        ]);
        assert!(early.is_empty(), "{early:?}");
        // Whatever is logged after them waits behind them, cause or not.
        assert!(m.outbox.push([logged("deploy-started", None)]).is_empty());
        // An earlier Docker event is not the cause.
        let (news, _) = m.docker_event(&event(LiveKind::Stop, "web"));
        assert_eq!(said(&news), ["stopped"]);
        let (news, _) = m.docker_event(&removed);
        assert_eq!(
            said(&news),
            ["removed", "repair-started", "created", "deploy-started"]
        );
        // Once Docker's stream has passed the cause, nothing waits.
        let late = m.outbox.push([logged("repaired", Some(20))]);
        assert_eq!(said(&late), ["repaired"]);
    }

    /// After a reconnect Docker replays its stream from the snapshot's
    /// second on: a cause before that was missed and will never be shown,
    /// so its repair's events go at once; a cause after it is waited for.
    #[test]
    fn a_cause_missed_while_reconnecting_is_not_waited_for() {
        let mut outbox = Outbox::default();
        let second = 1_000_000_000;
        assert!(
            outbox
                .push([logged("repair-started", Some(5 * second + 7))])
                .is_empty()
        );
        assert!(
            outbox
                .push([logged("created", Some(6 * second + 1))])
                .is_empty()
        );
        let released = outbox.docker_read_to(6 * second - 1);
        assert_eq!(released.len(), 1, "{released:?}");
        assert_eq!(released[0].event, "repair-started");
        let released = outbox.docker_read_to(6 * second + 1);
        assert_eq!(released[0].event, "created");
        // Events with no cause go straight through.
        assert_eq!(outbox.push([logged("cron-ran", None)]).len(), 1);
    }
}
