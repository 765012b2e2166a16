//! Telling drift from telefig's own doing in Docker's events stream.
//!
//! A repair that stops, creates and starts containers makes Docker report
//! exactly those changes; read back as drift they would make the daemon undo
//! its own repair (stop discovery again right after it registered). So a
//! repair announces, before it acts, the changes its plan will cause, and
//! the daemon checks each event against them. A boot (or reconnect) repair
//! also marks when it looked: what happened before that, it has seen and
//! repaired, and a replay of those events is not news.
//!
//! Pure bookkeeping over literal times (ns since the epoch); no I/O.

use std::collections::HashMap;

use super::{ActionKind, Plan};

/// A container lifecycle change, as Docker's events report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    Created,
    Started,
    Died,
    Stopped,
    Destroyed,
}

/// Why an event is not drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotDrift {
    /// Caused by a repair telefig ran.
    Own,
    /// From before a boot repair looked at the serviceset: already repaired.
    Seen,
}

/// How long after a repair ends its events may still be dated: Docker
/// stamps an event before the call that caused it returns, so this only
/// covers clock granularity.
const SLACK_NANOS: i64 = 500_000_000;

/// Expectations and cut-offs older than this are forgotten.
const FORGET_AFTER_NANOS: i64 = 10 * 60 * 1_000_000_000;

#[derive(Debug, Clone)]
struct Expected {
    repair: u64,
    serviceset: String,
    container: String,
    change: Change,
    from: i64,
    until: i64,
}

/// What the daemon's repairs announced, and when boot repairs looked.
#[derive(Debug, Default)]
pub struct OwnEvents {
    expected: Vec<Expected>,
    seen_until: HashMap<String, i64>,
    next_repair: u64,
}

/// A repair's handle, to say when it is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepairId(u64);

/// The changes Docker reports when telefig carries out an action.
fn changes(action: ActionKind) -> &'static [Change] {
    use Change::*;
    match action {
        // Docker's `update` event is not one the daemon follows.
        ActionKind::Keep | ActionKind::Update => &[],
        ActionKind::Create => &[Created, Started],
        // The old version dies under its own name, then is renamed aside.
        ActionKind::Recreate => &[Died, Stopped, Created, Started],
        ActionKind::Start => &[Started],
        ActionKind::Restart => &[Died, Stopped, Started],
        ActionKind::Remove => &[Died, Stopped, Destroyed],
    }
}

impl OwnEvents {
    /// A boot repair listed `serviceset`'s containers at `at`: events from
    /// before then are accounted for.
    pub fn looked(&mut self, serviceset: &str, at: i64) {
        let t = self.seen_until.entry(serviceset.to_owned()).or_insert(at);
        *t = (*t).max(at);
    }

    /// A repair is about to carry out `plan`, from `now` on.
    pub fn expect(&mut self, plan: &Plan, now: i64) -> RepairId {
        let repair = self.next_repair;
        self.next_repair += 1;
        for a in &plan.actions {
            for &change in changes(a.action) {
                self.expected.push(Expected {
                    repair,
                    serviceset: plan.serviceset.clone(),
                    container: a.container.clone(),
                    change,
                    from: now,
                    until: i64::MAX,
                });
            }
        }
        RepairId(repair)
    }

    /// The repair ended at `now`: events dated later are not its own.
    pub fn finished(&mut self, id: RepairId, now: i64) {
        for e in self.expected.iter_mut().filter(|e| e.repair == id.0) {
            e.until = now.saturating_add(SLACK_NANOS);
        }
        let horizon = now.saturating_sub(FORGET_AFTER_NANOS);
        self.expected.retain(|e| e.until >= horizon);
        self.seen_until.retain(|_, t| *t >= horizon);
    }

    /// Whether an event (`change` of `container` at `at`) is drift. Each
    /// announced change accounts for one event only, so a container that
    /// crashes after its repair started it is still seen.
    pub fn judge(
        &mut self,
        serviceset: &str,
        container: &str,
        change: Option<Change>,
        at: i64,
    ) -> Option<NotDrift> {
        if self.seen_until.get(serviceset).is_some_and(|t| at < *t) {
            return Some(NotDrift::Seen);
        }
        let change = change?;
        let index = self.expected.iter().position(|e| {
            e.serviceset == serviceset
                && e.container == container
                && e.change == change
                && (e.from..=e.until).contains(&at)
        })?;
        self.expected.remove(index);
        Some(NotDrift::Own)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, Reason};

    const S: i64 = 1_000_000_000;

    fn plan(actions: &[(&str, ActionKind)]) -> Plan {
        Plan {
            serviceset: "shop".into(),
            actions: actions
                .iter()
                .map(|(c, a)| Action {
                    container: (*c).into(),
                    action: *a,
                    reason: Reason::Requested,
                    existing_id: None,
                    backup_id: None,
                    readiness: None,
                    drain: None,
                })
                .collect(),
            bake: Vec::new(),
        }
    }

    /// Regression: the daemon read the stop/die of its own boot repair as
    /// drift and stopped discovery again right after READY.
    #[test]
    fn the_daemon_undoes_its_own_boot_repair() {
        let mut own = OwnEvents::default();
        // Docker started everything at 100 s; the boot repair looked at 101 s.
        own.looked("shop", 101 * S);
        let id = own.expect(
            &plan(&[
                ("web-logging", ActionKind::Keep),
                ("web", ActionKind::Restart),
                ("web-discovery", ActionKind::Restart),
            ]),
            101 * S,
        );
        own.finished(id, 104 * S);
        use Change::*;
        // Docker's own restarts at boot, replayed: seen already.
        assert_eq!(
            own.judge("shop", "web", Some(Started), 100 * S),
            Some(NotDrift::Seen)
        );
        // The repair's stop and start of web, and of discovery: its own.
        for (c, change, at) in [
            ("web-discovery", Died, 101 * S + 1),
            ("web-discovery", Stopped, 101 * S + 2),
            ("web", Died, 101 * S + 3),
            ("web", Stopped, 101 * S + 4),
            ("web", Started, 102 * S),
            ("web-discovery", Started, 103 * S),
        ] {
            assert_eq!(
                own.judge("shop", c, Some(change), at),
                Some(NotDrift::Own),
                "{c} {change:?}"
            );
        }
        // web dies once more, after the repair: drift, even within the window.
        assert_eq!(own.judge("shop", "web", Some(Died), 103 * S), None);
        assert_eq!(own.judge("shop", "web", Some(Died), 110 * S), None);
        // Nothing announced for logging, nor for another serviceset.
        assert_eq!(own.judge("shop", "web-logging", Some(Died), 102 * S), None);
        assert_eq!(own.judge("cart", "web", Some(Started), 100 * S), None);
        // A health event is the container's own doing, never telefig's.
        assert_eq!(own.judge("shop", "web", None, 102 * S), None);
    }

    #[test]
    fn a_repair_still_running_owns_its_events_and_only_after_it_began() {
        let mut own = OwnEvents::default();
        let id = own.expect(
            &plan(&[
                ("web-logging", ActionKind::Create),
                ("web", ActionKind::Start),
            ]),
            50 * S,
        );
        use Change::*;
        assert_eq!(
            own.judge("shop", "web-logging", Some(Created), 49 * S),
            None
        );
        assert_eq!(
            own.judge("shop", "web-logging", Some(Created), 50 * S + 1),
            Some(NotDrift::Own)
        );
        // Still running an hour later (a long gate): its start is its own.
        assert_eq!(
            own.judge("shop", "web-logging", Some(Started), 3600 * S),
            Some(NotDrift::Own)
        );
        own.finished(id, 3601 * S);
        assert_eq!(
            own.judge("shop", "web-logging", Some(Started), 3601 * S),
            None
        );
        // web's announced start never came; forgotten after a while.
        let later = own.expect(&plan(&[("web", ActionKind::Start)]), 9000 * S);
        own.finished(later, 9001 * S);
        assert_eq!(own.expected.len(), 1, "only the later repair's is left");
        assert_eq!(own.expected[0].repair, later.0);
    }
}
