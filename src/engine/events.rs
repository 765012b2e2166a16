//! Docker's container events as telefig reads them.
//!
//! [`ContainerEvent`] is the part of an event the gates and the daemon act
//! on; action suffixes (`health_status: healthy`) are parsed here, once.

use std::collections::HashMap;

use bollard::query_parameters::EventsOptions;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::{Engine, Error};
use crate::plan::Health;
use crate::platform::{LABEL_CONTAINER, LABEL_SERVICESET};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    pub id: String,
    /// The container's name, without the leading `/`.
    pub name: String,
    pub serviceset: Option<String>,
    /// The `telefig.container` label (differs from `name` for a version kept aside).
    pub container: Option<String>,
    pub kind: EventKind,
    /// Nanoseconds since the epoch.
    pub time_nanos: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Create,
    Start,
    Die {
        exit_code: Option<i64>,
    },
    Oom,
    Stop,
    Destroy,
    Health(Health),
    /// Anything else (exec, attach, rename …).
    Other,
}

impl Engine {
    /// Container events of telefig's containers — one serviceset's, or all —
    /// from `since` (seconds since the epoch) on. The stream ends when
    /// dockerd restarts; reconnect with a later `since`, then re-list.
    pub fn container_events(
        &self,
        serviceset: Option<&str>,
        since: i64,
    ) -> BoxStream<'static, Result<ContainerEvent, Error>> {
        let label = match serviceset {
            Some(s) => format!("{LABEL_SERVICESET}={s}"),
            None => LABEL_SERVICESET.to_owned(),
        };
        self.label_events(label, since, Some(&WATCHED), parse)
    }

    /// The `die` events of telefig's containers from `since` (seconds since
    /// the epoch) on: the stop walk's early word that a container's process
    /// has exited. Docker sends `die` once the process and its task are gone,
    /// and returns from the stop call only after it has also unmounted and
    /// released what the container held (on Docker 20.10, 80–110 ms later).
    pub(super) fn exits(&self, since: i64) -> BoxStream<'static, Result<ContainerEvent, Error>> {
        self.label_events(LABEL_SERVICESET.to_owned(), since, Some(&["die"]), parse)
    }

    /// Container events carrying `label` (`key` or `key=value`) from
    /// `since` (seconds since the epoch), each read by `read`; messages it
    /// returns `None` for are skipped. Shared by the repair watcher and the
    /// daemon's live model.
    /// `actions`, when given, are the only actions dockerd sends (it
    /// matches `health_status` against `health_status: healthy` too).
    pub(super) fn label_events<T: Send + 'static>(
        &self,
        label: String,
        since: i64,
        actions: Option<&[&str]>,
        read: fn(&bollard::models::EventMessage) -> Option<T>,
    ) -> BoxStream<'static, Result<T, Error>> {
        let mut filters = HashMap::from([
            ("type".to_owned(), vec!["container".to_owned()]),
            ("label".to_owned(), vec![label]),
        ]);
        if let Some(actions) = actions {
            let actions = actions.iter().map(|a| (*a).to_owned()).collect();
            filters.insert("event".to_owned(), actions);
        }
        let options = EventsOptions {
            since: Some(since.to_string()),
            until: None,
            filters: Some(filters),
        };
        self.docker
            .events(Some(options))
            .filter_map(move |item| async move {
                match item {
                    Ok(message) => read(&message).map(Ok),
                    Err(source) => Some(Err(Error::Docker {
                        op: "events",
                        target: "stream".into(),
                        source,
                    })),
                }
            })
            .boxed()
    }
}

/// The actions [`parse`] tells apart; every other one is `Other`, which no
/// reader of [`Engine::container_events`] acts on. Asking dockerd for these
/// only keeps each health probe's `exec_create`/`exec_start`/`exec_die` off
/// the stream: on a busy host those are most of the events, and dockerd
/// drops events for a subscriber that falls behind (a gate would then miss
/// the `start` it waits for).
const WATCHED: [&str; 7] = [
    "create",
    "start",
    "die",
    "oom",
    "stop",
    "destroy",
    "health_status",
];

fn parse(message: &bollard::models::EventMessage) -> Option<ContainerEvent> {
    let actor = message.actor.as_ref()?;
    let attributes = actor.attributes.clone().unwrap_or_default();
    let action = message.action.as_deref()?;
    let kind = match action.split(':').next().unwrap_or(action) {
        "create" => EventKind::Create,
        "start" => EventKind::Start,
        "die" => EventKind::Die {
            exit_code: attributes.get("exitCode").and_then(|c| c.parse().ok()),
        },
        "oom" => EventKind::Oom,
        "stop" => EventKind::Stop,
        "destroy" => EventKind::Destroy,
        "health_status" => EventKind::Health(match action.rsplit(' ').next() {
            Some("healthy") => Health::Healthy,
            Some("unhealthy") => Health::Unhealthy,
            _ => Health::Starting,
        }),
        _ => EventKind::Other,
    };
    Some(ContainerEvent {
        id: actor.id.clone()?,
        name: attributes.get("name").cloned().unwrap_or_default(),
        serviceset: attributes.get(LABEL_SERVICESET).cloned(),
        container: attributes.get(LABEL_CONTAINER).cloned(),
        kind,
        time_nanos: message.time_nano.unwrap_or_default(),
    })
}
