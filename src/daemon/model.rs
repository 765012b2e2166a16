//! The daemon's live model of every telefig container: built from a
//! snapshot (one list + inspect each) at start and after every reconnect,
//! then kept current from the events stream alone. Pure: no I/O here;
//! `live.rs` feeds it and serves it.
//!
//! Docker's restart count: a start after a `stop` (or a first start) is an
//! API start, which resets it to 0. A start after a `die` that no `stop`
//! followed may be the restart policy's (+1) or an API start (0) — the
//! events do not tell which, so that container alone is inspected.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::happened::{Happened, Outbox, happened};
use crate::engine::live::{LiveContainer, LiveEvent, LiveKind, Probe};
use crate::engine::status::{ContainerStatus, is_ok};
use crate::plan::{Health, Observed, RunState};
use crate::platform::{LABEL_ROLE, LABEL_SERVICESET};

/// Probe results kept per container.
pub const PROBES_KEPT: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    pub name: String,
    pub serviceset: String,
    pub role: String,
    pub image: String,
    pub state: RunState,
    pub health: Option<Health>,
    pub started_at_nanos: Option<i64>,
    pub restart_count: i64,
    pub exit_code: Option<i64>,
    /// Newest last.
    pub probes: VecDeque<Probe>,
    health_command: Option<String>,
    restart_policy: String,
    /// A `die` since the last start, and whether a `stop` followed it.
    died: bool,
    stopped: bool,
    /// Events before this (ns) are in the snapshot; from `as_of_nanos` on
    /// they are not; between the two, the inspect was being answered.
    asked_nanos: i64,
    as_of_nanos: i64,
}

impl Entry {
    pub fn status(&self, now_nanos: i64) -> ContainerStatus {
        let running = self.state == RunState::Running;
        ContainerStatus {
            name: self.name.clone(),
            serviceset: self.serviceset.clone(),
            role: self.role.clone(),
            image: self.image.clone(),
            state: self.state,
            health: self.health.filter(|_| running),
            started_at: self.started_at_nanos.and_then(|n| {
                jiff::Timestamp::from_nanosecond(n.into())
                    .ok()
                    .map(|t| t.to_string())
            }),
            uptime_seconds: self
                .started_at_nanos
                .filter(|_| running)
                .map(|t| ((now_nanos - t).max(0) / 1_000_000_000) as u64),
            restart_count: Some(self.restart_count),
            exit_code: self.exit_code.filter(|_| !running),
            ok: is_ok(&self.role, running, self.health, self.exit_code),
        }
    }

    /// The entry of an inspected container; `earlier` probes (stored by
    /// name) come before Docker's.
    fn inspected(c: LiveContainer, earlier: Vec<Probe>) -> Entry {
        let o = c.listed;
        let mut probes = earlier;
        let newest = probes.last().map_or(i64::MIN, |p| p.at_nanos);
        probes.extend(c.probes.into_iter().filter(|p| p.at_nanos > newest));
        let skip = probes.len().saturating_sub(PROBES_KEPT);
        Entry {
            serviceset: o.serviceset().unwrap_or_default().to_owned(),
            role: o.labels.get(LABEL_ROLE).cloned().unwrap_or_default(),
            id: o.id,
            image: o.image,
            name: o.name,
            state: c.state,
            health: c.health,
            started_at_nanos: c.started_at,
            restart_count: c.restart_count,
            exit_code: c.exit_code,
            probes: probes.into_iter().skip(skip).collect(),
            health_command: c.health_command,
            restart_policy: c.restart_policy,
            died: c.state == RunState::Restarting,
            stopped: false,
            asked_nanos: c.asked_nanos,
            as_of_nanos: c.as_of_nanos,
        }
    }

    /// A start now is dockerd's restart: a `die` that no `stop` followed.
    pub(super) fn restarts_now(&self) -> bool {
        self.died && !self.stopped
    }

    /// What dockerd does after a `die`: restart it (policy), or leave it exited.
    fn restarts_after(&self, exit_code: Option<i64>) -> bool {
        match self.restart_policy.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => exit_code != Some(0),
            _ => false,
        }
    }
}

/// What applying an event asks of the caller.
#[derive(Debug, PartialEq, Eq)]
pub enum Needs {
    Nothing,
    /// A container created after the snapshot: find its probe command and
    /// restart policy ([`Model::learn`]).
    Facts(String),
    /// A probe result was added to this container's history.
    Probe(String),
    /// Started after a crash: read its restart count ([`Model::set_restart_count`]).
    RestartCount(String),
    /// Its state changed while it was being inspected: whether the answer
    /// saw it cannot be told, so read it again ([`Model::listed`],
    /// [`Model::reread`]).
    Reread(String),
}

#[derive(Debug, Default)]
pub struct Model {
    /// By container id.
    pub containers: BTreeMap<String, Entry>,
    /// Probe execs in flight: exec id → container id.
    probes_running: HashMap<String, String>,
    /// Times the events stream was re-read after it ended.
    pub reconnects: u64,
    /// The deploy logs and cron runs, as last read from the state dir.
    pub deploys: super::deploys::Deploys,
    /// The order `telefig events` shows things in.
    pub outbox: Outbox,
}

impl Model {
    /// The model of a fresh snapshot; `history` gives each container's
    /// earlier probes by name (from the state dir), merged with Docker's.
    pub fn from_snapshot(
        snapshot: Vec<LiveContainer>,
        history: impl Fn(&str) -> Vec<Probe>,
    ) -> Model {
        let containers = snapshot
            .into_iter()
            .map(|c| {
                let earlier = history(&c.listed.name);
                (c.listed.id.clone(), Entry::inspected(c, earlier))
            })
            .collect();
        Model {
            containers,
            probes_running: HashMap::new(),
            reconnects: 0,
            deploys: Default::default(),
            outbox: Default::default(),
        }
    }

    /// The probe command, restart policy and stored probe history (of an
    /// earlier container of that name) of one created after the snapshot.
    pub fn learn(
        &mut self,
        id: &str,
        health_command: Option<String>,
        restart_policy: String,
        history: Vec<Probe>,
    ) {
        if let Some(e) = self.containers.get_mut(id) {
            e.health_command = health_command;
            e.restart_policy = restart_policy;
            let mut probes: VecDeque<Probe> = history.into();
            probes.append(&mut e.probes);
            while probes.len() > PROBES_KEPT {
                probes.pop_front();
            }
            e.probes = probes;
        }
    }

    /// Docker's event `ev`, applied: the telefig events to show now, in
    /// order — what `ev` means, then what was held until it was read — and
    /// what the caller must do.
    pub fn docker_event(&mut self, ev: &LiveEvent) -> (Vec<Happened>, Needs) {
        let mut news: Vec<Happened> = happened(self, ev).into_iter().collect();
        let needs = self.apply(ev);
        news.extend(self.outbox.docker_read_to(ev.time_nanos));
        (news, needs)
    }

    pub fn apply(&mut self, ev: &LiveEvent) -> Needs {
        if let LiveKind::Create = ev.kind {
            // Docker replays the stream from the second before the
            // snapshot: a container the snapshot read is kept as read (its
            // probes' outputs come only from that read).
            if self.containers.contains_key(&ev.id) {
                return Needs::Nothing;
            }
            let attr = |k: &str| ev.attributes.get(k).cloned().unwrap_or_default();
            self.containers.insert(
                ev.id.clone(),
                Entry {
                    id: ev.id.clone(),
                    name: ev.name.clone(),
                    serviceset: attr(LABEL_SERVICESET),
                    role: attr(LABEL_ROLE),
                    image: attr("image"),
                    state: RunState::Created,
                    health: None,
                    started_at_nanos: None,
                    restart_count: 0,
                    exit_code: None,
                    probes: VecDeque::new(),
                    health_command: None,
                    restart_policy: "no".into(),
                    died: false,
                    stopped: false,
                    asked_nanos: ev.time_nanos,
                    as_of_nanos: ev.time_nanos,
                },
            );
            return Needs::Facts(ev.id.clone());
        }
        let Some(e) = self.containers.get_mut(&ev.id) else {
            return Needs::Nothing;
        };
        if ev.time_nanos < e.asked_nanos {
            return Needs::Nothing; // already in the snapshot
        }
        if ev.time_nanos < e.as_of_nanos {
            // While the inspect was answered: a change of state may or may
            // not be in it; a removal or rename is the same either way.
            match ev.kind {
                LiveKind::Start | LiveKind::Die { .. } | LiveKind::Stop | LiveKind::Health(_) => {
                    return Needs::Reread(ev.id.clone());
                }
                LiveKind::Destroy | LiveKind::Rename => {}
                _ => return Needs::Nothing,
            }
        }
        match &ev.kind {
            LiveKind::Create | LiveKind::Other | LiveKind::Kill => {}
            LiveKind::Start => {
                let after_crash = e.died && !e.stopped;
                e.restart_count = if after_crash { e.restart_count + 1 } else { 0 };
                e.state = RunState::Running;
                e.started_at_nanos = Some(ev.time_nanos);
                e.exit_code = None;
                e.health = e.health_command.as_ref().map(|_| Health::Starting);
                e.died = false;
                e.stopped = false;
                if after_crash {
                    return Needs::RestartCount(ev.id.clone());
                }
            }
            LiveKind::Die { exit_code } => {
                e.died = true;
                e.exit_code = *exit_code;
                e.health = None;
                e.state = if e.restarts_after(*exit_code) {
                    RunState::Restarting
                } else {
                    RunState::Exited
                };
            }
            LiveKind::Stop => {
                e.stopped = true;
                if e.state != RunState::Running {
                    e.state = RunState::Exited;
                }
            }
            LiveKind::Destroy => {
                self.containers.remove(&ev.id);
                self.probes_running.retain(|_, c| c != &ev.id);
            }
            LiveKind::Rename => e.name = ev.name.clone(),
            LiveKind::Health(h) => e.health = Some(*h),
            LiveKind::ExecCreate { exec, command } => {
                if e.health_command.as_deref() == Some(command.as_str()) {
                    self.probes_running.insert(exec.clone(), ev.id.clone());
                }
            }
            LiveKind::ExecDie { exec, exit_code } => {
                if self.probes_running.remove(exec).is_some() {
                    e.probes.push_back(Probe {
                        at_nanos: ev.time_nanos,
                        exit_code: *exit_code,
                        output: String::new(),
                    });
                    while e.probes.len() > PROBES_KEPT {
                        e.probes.pop_front();
                    }
                    return Needs::Probe(ev.id.clone());
                }
            }
        }
        Needs::Nothing
    }

    /// A container as a list entry, to read it again ([`Needs::Reread`]).
    pub fn listed(&self, id: &str) -> Option<Observed> {
        let e = self.containers.get(id)?;
        Some(Observed {
            id: e.id.clone(),
            name: e.name.clone(),
            image: e.image.clone(),
            labels: [
                (LABEL_SERVICESET.to_owned(), e.serviceset.clone()),
                (LABEL_ROLE.to_owned(), e.role.clone()),
            ]
            .into(),
            state: e.state,
            health: e.health,
            exit_code: e.exit_code,
            updatable: None,
        })
    }

    /// A container read again: its state from the new inspect, its probe
    /// history kept.
    pub fn reread(&mut self, c: LiveContainer) {
        if let Some(e) = self.containers.get_mut(&c.listed.id) {
            let probes = std::mem::take(&mut e.probes);
            *e = Entry::inspected(c, Vec::new());
            e.probes = probes;
        }
    }

    pub fn set_restart_count(&mut self, id: &str, count: i64) {
        if let Some(e) = self.containers.get_mut(id) {
            e.restart_count = count;
        }
    }

    /// Every container's status row, sorted by serviceset and name.
    pub fn statuses(&self, now_nanos: i64) -> Vec<ContainerStatus> {
        let mut rows: Vec<_> = self
            .containers
            .values()
            .map(|e| e.status(now_nanos))
            .collect();
        rows.sort_by(|a, b| (&a.serviceset, &a.name).cmp(&(&b.serviceset, &b.name)));
        rows
    }

    /// Whether `exec` is a health probe in flight.
    pub(super) fn is_probe(&self, exec: &str) -> bool {
        self.probes_running.contains_key(exec)
    }

    pub fn by_name(&self, name: &str) -> Option<&Entry> {
        self.containers.values().find(|e| e.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: LiveKind, at: i64) -> LiveEvent {
        LiveEvent {
            id: "c1".into(),
            name: "web".into(),
            attributes: [
                (LABEL_SERVICESET.to_owned(), "shop".to_owned()),
                (LABEL_ROLE.to_owned(), "main".to_owned()),
                ("image".to_owned(), "busybox:1".to_owned()),
            ]
            .into(),
            time_nanos: at,
            kind,
        }
    }

    fn created() -> Model {
        let mut m = Model::default();
        assert_eq!(
            m.apply(&event(LiveKind::Create, 1)),
            Needs::Facts("c1".into())
        );
        m.learn(
            "c1",
            Some("/bin/sh -c test -e /ready".into()),
            "unless-stopped".into(),
            Vec::new(),
        );
        m
    }

    #[test]
    fn lifecycle_from_events() {
        let mut m = created();
        m.apply(&event(LiveKind::Start, 2));
        let web = m.by_name("web").unwrap().status(2);
        assert_eq!(
            (web.state, web.health, web.restart_count),
            (RunState::Running, Some(Health::Starting), Some(0))
        );
        m.apply(&event(LiveKind::Health(Health::Healthy), 3));
        assert!(m.by_name("web").unwrap().status(3).ok);
        // A crash: the policy restarts it; the count is read from Docker.
        m.apply(&event(LiveKind::Die { exit_code: Some(1) }, 4));
        assert_eq!(m.by_name("web").unwrap().state, RunState::Restarting);
        assert_eq!(
            m.apply(&event(LiveKind::Start, 5)),
            Needs::RestartCount("c1".into())
        );
        // Stopped by request, then started: an API start resets the count.
        m.set_restart_count("c1", 1);
        m.apply(&event(LiveKind::Kill, 6));
        m.apply(&event(LiveKind::Die { exit_code: Some(0) }, 6));
        m.apply(&event(LiveKind::Stop, 6));
        let web = m.by_name("web").unwrap().status(6);
        assert_eq!((web.state, web.exit_code), (RunState::Exited, Some(0)));
        assert_eq!(m.apply(&event(LiveKind::Start, 7)), Needs::Nothing);
        assert_eq!(m.by_name("web").unwrap().restart_count, 0);
        m.apply(&event(LiveKind::Destroy, 8));
        assert!(m.by_name("web").is_none());
    }

    /// `web` of serviceset `shop` as inspected: `state`, started at 5,
    /// the inspect asked at `asked` and answered at `as_of`.
    fn inspected(state: RunState, asked: i64, as_of: i64) -> LiveContainer {
        let running = state == RunState::Running;
        LiveContainer {
            listed: Observed {
                id: "c1".into(),
                image: "busybox:1".into(),
                state: RunState::Exited,
                exit_code: Some(0),
                ..Observed::listed("web", &[(LABEL_SERVICESET, "shop"), (LABEL_ROLE, "main")])
            },
            state,
            started_at: Some(5),
            restart_count: 0,
            exit_code: if running { None } else { Some(1) },
            health: running.then_some(Health::Starting),
            health_command: Some("/bin/sh -c test -e /ready".into()),
            probes: Vec::new(),
            restart_policy: "unless-stopped".into(),
            asked_nanos: asked,
            as_of_nanos: as_of,
        }
    }

    /// Regression: a `create` replayed from the second before the snapshot
    /// replaced the container the snapshot had read, and with it the probe
    /// outputs only that read brings (events carry none).
    #[test]
    fn a_replayed_create_keeps_what_the_snapshot_read() {
        let mut c = inspected(RunState::Running, 6, 7);
        c.probes = vec![Probe {
            at_nanos: 4,
            exit_code: 0,
            output: "probe ok".into(),
        }];
        let mut m = Model::from_snapshot(vec![c], |_| Vec::new());
        assert_eq!(m.apply(&event(LiveKind::Create, 3)), Needs::Nothing);
        let web = m.by_name("web").unwrap();
        assert_eq!(web.probes.len(), 1);
        assert_eq!(web.probes[0].output, "probe ok");
        assert_eq!(web.state, RunState::Running);
    }

    /// Regression: the snapshot took the state from the list call and the
    /// rest from the inspect after it. A container started between the two
    /// (by the daemon's own repair, just after a dockerd restart) stayed
    /// `exited` in the model for good: its start event is older than the
    /// inspect, so it counts as already in the snapshot.
    #[test]
    fn a_start_between_the_list_and_the_inspect_is_in_the_snapshot() {
        // Listed as exited, inspected running.
        let mut m = Model::from_snapshot(vec![inspected(RunState::Running, 6, 7)], |_| Vec::new());
        assert_eq!(m.apply(&event(LiveKind::Start, 5)), Needs::Nothing);
        let web = m.by_name("web").unwrap().status(8);
        assert_eq!(
            (web.state, web.health, web.exit_code, web.restart_count),
            (RunState::Running, Some(Health::Starting), None, Some(0))
        );
        // Later events still apply.
        m.apply(&event(LiveKind::Health(Health::Healthy), 9));
        assert!(m.by_name("web").unwrap().status(9).ok);
    }

    /// An event after the inspect was asked and before its answer came may
    /// or may not be in it. It was dropped: a container that died just as
    /// it was read stayed `running` in the model until its next event. A
    /// change of state there is read again; a removal applies as is.
    #[test]
    fn a_change_while_the_inspect_was_answered_is_read_again() {
        let mut m = Model::from_snapshot(vec![inspected(RunState::Running, 4, 6)], |_| Vec::new());
        assert_eq!(m.apply(&event(LiveKind::Start, 3)), Needs::Nothing);
        let died = event(LiveKind::Die { exit_code: Some(1) }, 5);
        assert_eq!(m.apply(&died), Needs::Reread("c1".into()));
        let listed = m.listed("c1").unwrap();
        assert_eq!(
            (listed.name.as_str(), listed.serviceset()),
            ("web", Some("shop"))
        );
        m.reread(LiveContainer {
            listed,
            ..inspected(RunState::Restarting, 7, 8)
        });
        let web = m.by_name("web").unwrap().status(8);
        assert_eq!((web.state, web.exit_code), (RunState::Restarting, Some(1)));
        // Its policy's restart after that counts, as after any crash.
        assert_eq!(
            m.apply(&event(LiveKind::Start, 9)),
            Needs::RestartCount("c1".into())
        );
        // A removal while read: gone, whatever the answer said.
        let mut m = Model::from_snapshot(vec![inspected(RunState::Running, 4, 6)], |_| Vec::new());
        assert_eq!(m.apply(&event(LiveKind::Destroy, 5)), Needs::Nothing);
        assert!(m.by_name("web").is_none());
    }

    #[test]
    fn only_health_probe_execs_count_and_history_is_bounded() {
        let mut m = created();
        for i in 0..60 {
            let exec = format!("e{i}");
            let command = if i == 0 {
                "sh -c other"
            } else {
                "/bin/sh -c test -e /ready"
            };
            m.apply(&event(
                LiveKind::ExecCreate {
                    exec: exec.clone(),
                    command: command.into(),
                },
                10 + i,
            ));
            m.apply(&event(
                LiveKind::ExecDie {
                    exec,
                    exit_code: i % 2,
                },
                10 + i,
            ));
        }
        let probes = &m.by_name("web").unwrap().probes;
        assert_eq!(probes.len(), PROBES_KEPT);
        assert_eq!(probes.back().unwrap().at_nanos, 69);
        assert_eq!(probes.front().unwrap().at_nanos, 20);
    }
}
