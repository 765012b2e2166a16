//! The daemon's reaction to one Docker event about a recorded serviceset's
//! container: pure. Which event counts as news, updates the unhealthy
//! budget, drops pending re-gate retries, re-gates the container's
//! `healthy` dependents now, or schedules a repair. `daemon::watch` owns
//! the clocks, the debounce and the spawning, and does what this returns.

use crate::engine::events::EventKind;
use crate::plan::{Change, Health, NotDrift};

/// What an event does to the unhealthy budget (`daemon::unhealthy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetUpdate {
    /// An unhealthy spell starts (or goes on).
    Unhealthy,
    /// Healthy, or started afresh: a spell is over.
    Healthy,
}

/// What the daemon does about one event, in this order: the budget, the
/// re-gate retries, a re-gate, a repair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reaction {
    /// Something happened that the daemon acts on: it is not idle.
    pub news: bool,
    pub budget: Option<BudgetUpdate>,
    /// Drop the re-gate retries of this container's dependents: it went
    /// down again (a new re-gate follows) or is healthy again (they would
    /// stop its dependents for nothing; started is not enough, they wait
    /// for healthy).
    pub forget_regates: bool,
    /// Stop, now, the running containers that wait for it to be healthy.
    pub regate: bool,
    /// Bring the serviceset back to its record, after the debounce.
    pub repair: bool,
}

/// The lifecycle change `plan::OwnEvents` judges an event by: whether it
/// is one a repair announced, or one a boot repair already saw.
pub fn change(kind: EventKind) -> Option<Change> {
    match kind {
        EventKind::Create => Some(Change::Created),
        EventKind::Start => Some(Change::Started),
        EventKind::Die { .. } => Some(Change::Died),
        EventKind::Stop => Some(Change::Stopped),
        EventKind::Destroy => Some(Change::Destroyed),
        EventKind::Oom | EventKind::Health(_) | EventKind::Other => None,
    }
}

/// React to `kind`, which `not_drift` says the daemon caused or has seen
/// (`None`: drift, or news about health).
pub fn react(kind: EventKind, not_drift: Option<NotDrift>) -> Reaction {
    if let Some(why) = not_drift {
        // Started afresh by a repair: an unhealthy spell before it is over.
        let fresh = why == NotDrift::Own && kind == EventKind::Start;
        return Reaction {
            budget: fresh.then_some(BudgetUpdate::Healthy),
            ..Reaction::default()
        };
    }
    let went_down = matches!(
        kind,
        EventKind::Die { .. } | EventKind::Health(Health::Unhealthy)
    );
    let budget = match kind {
        EventKind::Health(Health::Unhealthy) => Some(BudgetUpdate::Unhealthy),
        EventKind::Health(Health::Healthy) | EventKind::Start => Some(BudgetUpdate::Healthy),
        _ => None,
    };
    match kind {
        EventKind::Other => Reaction::default(),
        // A create is followed by its start: the repair waits for that.
        EventKind::Create => Reaction {
            news: true,
            ..Reaction::default()
        },
        _ => Reaction {
            news: true,
            budget,
            forget_regates: went_down || kind == EventKind::Health(Health::Healthy),
            regate: went_down,
            repair: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reaction(
        news: bool,
        budget: Option<BudgetUpdate>,
        forget_regates: bool,
        regate: bool,
        repair: bool,
    ) -> Reaction {
        Reaction {
            news,
            budget,
            forget_regates,
            regate,
            repair,
        }
    }

    /// Every kind of event, as drift: the table the daemon follows.
    #[test]
    fn each_event_of_drift_triggers_what_the_table_says() {
        use BudgetUpdate::{Healthy, Unhealthy};
        let died = EventKind::Die {
            exit_code: Some(137),
        };
        let table = [
            (EventKind::Create, reaction(true, None, false, false, false)),
            (
                EventKind::Start,
                reaction(true, Some(Healthy), false, false, true),
            ),
            (died, reaction(true, None, true, true, true)),
            (EventKind::Oom, reaction(true, None, false, false, true)),
            (EventKind::Stop, reaction(true, None, false, false, true)),
            (EventKind::Destroy, reaction(true, None, false, false, true)),
            (
                EventKind::Health(Health::Unhealthy),
                reaction(true, Some(Unhealthy), true, true, true),
            ),
            (
                EventKind::Health(Health::Healthy),
                reaction(true, Some(Healthy), true, false, true),
            ),
            (
                EventKind::Health(Health::Starting),
                reaction(true, None, false, false, true),
            ),
            (EventKind::Other, Reaction::default()),
        ];
        for (kind, want) in table {
            assert_eq!(react(kind, None), want, "{kind:?}");
        }
    }

    /// The daemon's own doing, or what a boot repair saw, is no news: only
    /// a start by its own repair ends an unhealthy spell.
    #[test]
    fn what_the_daemon_caused_or_saw_is_not_news() {
        let own_start = react(EventKind::Start, Some(NotDrift::Own));
        assert_eq!(
            own_start,
            reaction(false, Some(BudgetUpdate::Healthy), false, false, false)
        );
        for kind in [
            EventKind::Die { exit_code: None },
            EventKind::Stop,
            EventKind::Destroy,
            EventKind::Create,
        ] {
            assert_eq!(react(kind, Some(NotDrift::Own)), Reaction::default());
        }
        for kind in [EventKind::Start, EventKind::Die { exit_code: Some(0) }] {
            assert_eq!(react(kind, Some(NotDrift::Seen)), Reaction::default());
        }
    }

    #[test]
    fn only_lifecycle_events_are_judged_as_a_repair_s_own() {
        assert_eq!(change(EventKind::Start), Some(Change::Started));
        assert_eq!(
            change(EventKind::Die { exit_code: None }),
            Some(Change::Died)
        );
        assert_eq!(change(EventKind::Health(Health::Unhealthy)), None);
        assert_eq!(change(EventKind::Oom), None);
    }
}
