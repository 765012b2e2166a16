//! What the daemon's live model reads from Docker: a snapshot (one list,
//! one inspect each) at start and after every reconnect, then the events
//! stream — lifecycle, health transitions and each health probe (Docker
//! runs a probe as an exec: `exec_create: <test>` … `exec_die`).

use std::collections::BTreeMap;

use bollard::models::ContainerInspectResponse;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde::{Deserialize, Serialize};

use super::details::details;
use super::status::rfc3339_nanos;
use super::{Engine, Error};
use crate::plan::{Health, Observed, RunState};
use crate::platform::LABEL_SERVICESET;

/// Docker cuts a probe's output at 4096 bytes; the model keeps less.
const OUTPUT_KEPT: usize = 200;

/// One health probe's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// When it ended, nanoseconds since the epoch.
    pub at_nanos: i64,
    pub exit_code: i64,
    /// The start of its output (from a snapshot; events carry none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
}

/// A container as the snapshot reads it.
#[derive(Debug, Clone)]
pub struct LiveContainer {
    /// Its list entry: id, name, labels, image. Its state may be older
    /// than the inspect's: `state` is the one to use.
    pub listed: Observed,
    /// The state as inspected, at the moment of every other field here.
    pub state: RunState,
    pub started_at: Option<i64>,
    pub restart_count: i64,
    pub exit_code: Option<i64>,
    pub health: Option<Health>,
    /// The probe's command as Docker's exec events spell it
    /// ("/bin/sh -c test -e /ready"), when it has a healthcheck.
    pub health_command: Option<String>,
    /// Docker's last few probes (it keeps 5).
    pub probes: Vec<Probe>,
    /// `HostConfig.RestartPolicy.Name` ("no" when none).
    pub restart_policy: String,
    /// When the inspect was asked (ns): events before then are in it.
    pub asked_nanos: i64,
    /// When its answer came (ns): events from then on are not. Whether
    /// one between the two is cannot be told.
    pub as_of_nanos: i64,
}

/// One event the model applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveEvent {
    pub id: String,
    pub name: String,
    /// Its labels and `image` (Docker puts both in the event's attributes).
    pub attributes: BTreeMap<String, String>,
    pub time_nanos: i64,
    pub kind: LiveKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveKind {
    Create,
    Start,
    Die { exit_code: Option<i64> },
    Kill,
    Stop,
    Destroy,
    Rename,
    Health(Health),
    ExecCreate { exec: String, command: String },
    ExecDie { exec: String, exit_code: i64 },
    Other,
}

impl Engine {
    /// Every telefig container, inspected (a few at a time).
    pub async fn live_snapshot(&self) -> Result<Vec<LiveContainer>, Error> {
        let listed = self.list(Some(LABEL_SERVICESET)).await?;
        let inspected: Vec<_> = futures_util::stream::iter(listed.into_iter().map(|o| async {
            let id = o.id.clone();
            let asked = now_nanos();
            let answer = self
                .call("inspect", &id, self.docker.inspect_container(&id, None))
                .await;
            (o, answer, asked, now_nanos())
        }))
        .buffered(4)
        .collect()
        .await;
        let mut out = Vec::new();
        for (o, answer, asked, at) in inspected {
            match answer? {
                Ok(r) => out.push(live_container(o, r, asked, at)),
                // Removed since the list: the events will say so.
                Err(e) if super::status_is(&e, 404) => {}
                Err(source) => {
                    return Err(Error::Docker {
                        op: "inspect",
                        target: o.name,
                        source,
                    });
                }
            }
        }
        Ok(out)
    }

    /// One container of the model inspected again (`listed` as the model
    /// knows it); `None` when it is gone or Docker does not answer.
    pub async fn live_reread(&self, listed: Observed) -> Option<LiveContainer> {
        let asked = now_nanos();
        let r = self
            .call(
                "inspect",
                &listed.id,
                self.docker.inspect_container(&listed.id, None),
            )
            .await
            .ok()?
            .ok()?;
        Some(live_container(listed, r, asked, now_nanos()))
    }

    /// The health probe command (`None` without a healthcheck) and the
    /// restart policy of one container created after the snapshot;
    /// `None` when it is gone.
    pub async fn created_facts(&self, id: &str) -> Option<(Option<String>, String)> {
        let r = self
            .call("inspect", id, self.docker.inspect_container(id, None))
            .await
            .ok()?
            .ok()?;
        Some((probe_command(&r), restart_policy(&r)))
    }

    /// Telefig containers' events from `since` (seconds since the epoch);
    /// the stream ends when dockerd restarts.
    pub fn live_events(&self, since: i64) -> BoxStream<'static, Result<LiveEvent, Error>> {
        self.label_events(LABEL_SERVICESET.to_owned(), since, Some(&READ), parse)
    }
}

fn live_container(
    o: Observed,
    r: ContainerInspectResponse,
    asked_nanos: i64,
    as_of_nanos: i64,
) -> LiveContainer {
    let command = probe_command(&r);
    let policy = restart_policy(&r);
    let probes = r
        .state
        .as_ref()
        .and_then(|s| s.health.as_ref())
        .and_then(|h| h.log.clone())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|l| {
            Some(Probe {
                at_nanos: l.end.as_deref().and_then(rfc3339_nanos)?,
                exit_code: l.exit_code?,
                output: l
                    .output
                    .unwrap_or_default()
                    .trim()
                    .chars()
                    .take(OUTPUT_KEPT)
                    .collect(),
            })
        })
        .collect();
    let state = r
        .state
        .as_ref()
        .and_then(|s| s.status)
        .map_or(o.state, |s| RunState::parse(s.as_ref()));
    let d = details(r);
    LiveContainer {
        state,
        started_at: d.started_at.as_deref().and_then(rfc3339_nanos),
        restart_count: d.restart_count,
        exit_code: if d.running { None } else { d.exit_code },
        health: if d.running { d.health } else { None },
        health_command: command,
        probes,
        restart_policy: policy,
        asked_nanos,
        as_of_nanos,
        listed: o,
    }
}

fn restart_policy(r: &ContainerInspectResponse) -> String {
    r.host_config
        .as_ref()
        .and_then(|h| h.restart_policy.as_ref())
        .and_then(|p| p.name)
        .map_or_else(|| "no".to_owned(), |n| n.to_string())
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// `["CMD-SHELL", "x"]` → "/bin/sh -c x"; `["CMD", "a", "b"]` → "a b".
fn probe_command(r: &ContainerInspectResponse) -> Option<String> {
    let test = r.config.as_ref()?.healthcheck.as_ref()?.test.clone()?;
    match test.split_first()? {
        (kind, rest) if kind == "CMD-SHELL" => Some(format!("/bin/sh -c {}", rest.join(" "))),
        (kind, rest) if kind == "CMD" => Some(rest.join(" ")),
        _ => None,
    }
}

/// The actions [`parse`] tells apart. Asking dockerd for these only keeps
/// every health probe's `exec_start` (a third of a busy host's events) and
/// attach, resize, top … off the stream the daemon reads all day.
const READ: [&str; 10] = [
    "create",
    "start",
    "die",
    "kill",
    "stop",
    "destroy",
    "rename",
    "health_status",
    "exec_create",
    "exec_die",
];

fn parse(message: &bollard::models::EventMessage) -> Option<LiveEvent> {
    let actor = message.actor.as_ref()?;
    let attributes: BTreeMap<String, String> = actor
        .attributes
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let action = message.action.as_deref()?;
    let (verb, arg) = match action.split_once(": ") {
        Some((verb, arg)) => (verb, arg),
        None => (action, ""),
    };
    let exec = || attributes.get("execID").cloned().unwrap_or_default();
    let kind = match verb {
        "create" => LiveKind::Create,
        "start" => LiveKind::Start,
        "die" => LiveKind::Die {
            exit_code: attributes.get("exitCode").and_then(|c| c.parse().ok()),
        },
        "kill" => LiveKind::Kill,
        "stop" => LiveKind::Stop,
        "destroy" => LiveKind::Destroy,
        "rename" => LiveKind::Rename,
        "health_status" => LiveKind::Health(match arg {
            "healthy" => Health::Healthy,
            "unhealthy" => Health::Unhealthy,
            _ => Health::Starting,
        }),
        "exec_create" => LiveKind::ExecCreate {
            exec: exec(),
            command: arg.to_owned(),
        },
        "exec_die" => LiveKind::ExecDie {
            exec: exec(),
            exit_code: attributes.get("exitCode")?.parse().ok()?,
        },
        _ => LiveKind::Other,
    };
    Some(LiveEvent {
        id: actor.id.clone()?,
        name: attributes.get("name").cloned().unwrap_or_default(),
        time_nanos: message.time_nano.unwrap_or_default(),
        attributes,
        kind,
    })
}
