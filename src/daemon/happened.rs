//! The telefig-level events `telefig events` shows: [`Happened`], and
//! what a Docker event means ([`happened`]) for the live model as it was
//! before it. Pure, as the model is.

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
}
