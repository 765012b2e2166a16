//! The stop walk: `stop`, `down`, the daemon's re-gating, and a start's
//! stops before it recreates or restarts. Which containers, whether each
//! drains first, and what follows its stop (kept aside, removed, nothing)
//! the plan decided; this walks the graph in stop order over them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Mutex;

use futures_util::stream::{BoxStream, FuturesUnordered, StreamExt};
use tokio::sync::watch;

use super::bounds::CONCURRENT_STOPS;
use super::events::{ContainerEvent, EventKind};
use super::execute::Event;
use super::{Engine, Error};
use crate::clock::now_nanos;
use crate::graph::{Direction, Graph, Milestone};
use crate::plan::{AfterStop, RemoveReason, StopAction};

/// Stop `actions`' containers, dependents first, each with its own grace
/// period (after its drain, if the plan gave one); independent ones
/// together, those the graph does not know alongside. A container kept
/// aside is renamed before its dependencies stop. With `abort`, no stop
/// begins once it is true. Returns, for each container kept aside, the id
/// of the one now aside.
///
/// Up to [`CONCURRENT_STOPS`] stops are under way at once (a drain waits
/// outside that bound); of the ready ones, the plan's longest chains go
/// first ([`StopAction::chain`]), and while a stop that others wait for is
/// under way, stops nothing waits for hold at most [`UNAWAITED_SHARE`]
/// permits ([`Admission`]). Removals (`down`) wait until every stop has
/// begun, then go while the last stops finish: a removal is work for
/// dockerd that nothing waits for.
///
/// A container's dependencies may stop once its process has exited:
/// Docker's `die` event says so 80–110 ms before its stop call returns
/// (the rest is dockerd unmounting and releasing what the container held),
/// so the walk follows the `die` events of the containers it stops and
/// goes on at whichever comes first. A container kept aside still goes on
/// only after its rename. Its removal, and the report that it stopped,
/// still wait for the stop call.
pub async fn stop_walk(
    engine: &Engine,
    graph: &Graph,
    actions: &[StopAction],
    abort: Option<&watch::Receiver<bool>>,
    emit: &(dyn Fn(Event) + Sync),
) -> Result<HashMap<String, String>, Error> {
    let to_stop = |name: &str| actions.iter().position(|a| a.container == name && a.stop);
    let check_abort = || match abort {
        Some(a) if *a.borrow() => Err(Error::Interrupted),
        _ => Ok(()),
    };
    let mut walk = graph.walk_subset(Direction::Stop, |n| to_stop(n).is_some());
    // Ready stops: the longest chain first, then the plan's order.
    let mut ready: BinaryHeap<(usize, Reverse<usize>)> = BinaryHeap::new();
    let mut unstarted = actions.iter().filter(|a| a.stop).count();
    let mut removals_due: Vec<&StopAction> = Vec::new();
    for (i, a) in actions.iter().enumerate() {
        if a.stop && !graph.contains(&a.container) {
            ready.push((a.chain, Reverse(i)));
        } else if let (false, Some(_)) = (a.stop, a.removal()) {
            removals_due.push(a);
        }
    }
    let exits = Mutex::new(Exits::default());
    let mut exit_events = actions
        .iter()
        .any(Exits::counts)
        .then(|| engine.exits(now_nanos() / 1_000_000_000));
    let mut stops = FuturesUnordered::new();
    let mut removals = FuturesUnordered::new();
    let mut kept_aside = HashMap::new();
    let mut admission = Admission::default();
    loop {
        for name in walk.ready() {
            let i = to_stop(&name).expect("walked nodes are in the plan");
            ready.push((actions[i].chain, Reverse(i)));
        }
        // The heap's top is its longest chain: once it must wait, so must
        // every other ready stop.
        while let Some(&(_, Reverse(i))) = ready.peek() {
            let a = &actions[i];
            if !admission.admits(a) {
                break;
            }
            ready.pop();
            check_abort()?;
            admission.begin(a);
            unstarted -= 1;
            stops.push(stop_one(engine, a, &exits, emit));
        }
        // Every stop has begun (or none can: nothing is under way).
        if unstarted == 0 || stops.is_empty() {
            for a in removals_due.drain(..) {
                let why = a.removal().expect("only removals are due");
                removals.push(remove_one(engine, a, why, emit));
            }
        }
        tokio::select! {
            Some(done) = stops.next() => {
                let a = done?;
                admission.answered(a);
                walk.reach(&a.container, Milestone::Stopped);
                if a.removal().is_some() {
                    removals_due.push(a);
                } else if let AfterStop::KeepAside { .. } = &a.then {
                    kept_aside.insert(a.container.clone(), a.id.clone());
                }
            }
            Some(done) = removals.next() => done?,
            Some(event) = next_exit(&mut exit_events), if !stops.is_empty() => {
                let exited = exits.lock().expect("exits lock").exited(&event);
                if let Some(a) = exited.and_then(|id| actions.iter().find(|a| a.id == id)) {
                    tracing::debug!(container = %a.container, "exited: its dependencies may stop");
                    admission.exited(a);
                    walk.reach(&a.container, Milestone::Stopped);
                }
            }
            else => break,
        }
    }
    Ok(kept_aside)
}

/// The next `die` event, or `None` once the stream has ended or failed
/// (dockerd restarting): the walk then goes on at each stop call's return.
async fn next_exit(
    events: &mut Option<BoxStream<'static, Result<ContainerEvent, Error>>>,
) -> Option<ContainerEvent> {
    let next = events.as_mut()?.next().await;
    if let Some(Ok(event)) = next {
        return Some(event);
    }
    *events = None;
    None
}

/// Of the [`CONCURRENT_STOPS`] permits, how many stops that nothing waits
/// for (chain 0: a sidecar whose dependents have all stopped) may hold
/// while a stop that others wait for is under way. Such a stop lets no
/// other begin, and on a busy host it competes for dockerd's CPU with the
/// stops that do, and with the health probes of services not yet stopped
/// (bench/NOTES-stop.md). More than none, so that a slow container in one
/// stack holds up no other stack's sidecars; the rest of the permits are
/// theirs once nothing awaited is under way.
pub const UNAWAITED_SHARE: usize = CONCURRENT_STOPS / 8;

/// Which ready stop may begin now: the walk's bound on stops under way.
/// Stops behind a drain hold no permit: a drain is a wait, not dockerd's
/// work. One that others wait for still holds back those nothing waits
/// for, from its drain to its exit.
#[derive(Debug, Default)]
struct Admission {
    /// Stops under way that hold a permit.
    holding: usize,
    /// Of those, the ones nothing waits for.
    unawaited: usize,
    /// The containers others wait for whose stop is under way (their drain
    /// included) and whose process has not yet exited.
    awaited: HashSet<String>,
}

impl Admission {
    fn admits(&self, a: &StopAction) -> bool {
        if a.drain.is_some() {
            return true;
        }
        if self.holding >= CONCURRENT_STOPS {
            return false;
        }
        a.chain > 0 || self.awaited.is_empty() || self.unawaited < UNAWAITED_SHARE
    }

    fn begin(&mut self, a: &StopAction) {
        if a.chain > 0 {
            self.awaited.insert(a.id.clone());
        }
        if a.drain.is_some() {
            return;
        }
        self.holding += 1;
        if a.chain == 0 {
            self.unawaited += 1;
        }
    }

    /// `a`'s process has exited: the stops waiting for it may begin, and it
    /// no longer holds back those nothing waits for.
    fn exited(&mut self, a: &StopAction) {
        self.awaited.remove(&a.id);
    }

    /// Docker answered `a`'s stop: its permit is free.
    fn answered(&mut self, a: &StopAction) {
        self.awaited.remove(&a.id);
        if a.drain.is_some() {
            return;
        }
        self.holding -= 1;
        if a.chain == 0 {
            self.unawaited -= 1;
        }
    }
}

/// The containers being stopped whose exit the walk may go on at, and when
/// each one's stop was sent.
#[derive(Debug, Default)]
struct Exits {
    /// Container id → when its stop was sent, in ns since the epoch.
    sent: HashMap<String, i64>,
}

impl Exits {
    /// Whether the walk may go on at `a`'s exit: a container kept aside is
    /// renamed before its dependencies stop.
    fn counts(a: &StopAction) -> bool {
        a.stop && !matches!(a.then, AfterStop::KeepAside { .. })
    }

    fn sent(&mut self, a: &StopAction, at: i64) {
        if Exits::counts(a) {
            self.sent.insert(a.id.clone(), at);
        }
    }

    /// The id of the container whose stop `event` ends: a `die` of one
    /// being stopped, at or after the moment its stop was sent. A `die`
    /// from before (a crash just before the stop, or one replayed from the
    /// stream's first second) does not count: Docker may restart that
    /// container before the stop reaches it.
    fn exited(&mut self, event: &ContainerEvent) -> Option<String> {
        if !matches!(event.kind, EventKind::Die { .. }) {
            return None;
        }
        let sent = *self.sent.get(&event.id)?;
        if event.time_nanos < sent {
            return None;
        }
        self.sent.remove(&event.id);
        Some(event.id.clone())
    }
}

/// Drain (if the plan says), stop, and rename aside (if the plan says).
async fn stop_one<'a>(
    engine: &Engine,
    a: &'a StopAction,
    exits: &Mutex<Exits>,
    emit: &(dyn Fn(Event) + Sync),
) -> Result<&'a StopAction, Error> {
    if let Some(d) = &a.drain {
        super::drain::drain(engine, &a.id, &a.container, d, emit).await?;
    }
    exits.lock().expect("exits lock").sent(a, now_nanos());
    engine.stop(&a.id, &a.container).await?;
    emit(Event::Stopped {
        container: a.container.clone(),
    });
    if let AfterStop::KeepAside { aside } = &a.then {
        engine.rename(&a.id, aside).await?;
        emit(Event::KeptAside {
            container: a.container.clone(),
            aside: aside.clone(),
        });
    }
    Ok(a)
}

async fn remove_one(
    engine: &Engine,
    a: &StopAction,
    why: RemoveReason,
    emit: &(dyn Fn(Event) + Sync),
) -> Result<(), Error> {
    engine.remove(&a.id, &a.container).await?;
    emit(Event::Removed {
        container: a.container.clone(),
        why,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{StopAction, StopReason};

    fn action(id: &str, then: AfterStop) -> StopAction {
        StopAction {
            container: format!("c-{id}"),
            id: id.to_owned(),
            stop: true,
            then,
            reason: StopReason::Requested,
            drain: None,
            chain: 0,
        }
    }

    fn event(id: &str, kind: EventKind, time_nanos: i64) -> ContainerEvent {
        ContainerEvent {
            id: id.to_owned(),
            name: format!("c-{id}"),
            serviceset: None,
            container: None,
            kind,
            time_nanos,
        }
    }

    const DIE: EventKind = EventKind::Die { exit_code: Some(0) };

    fn chained(id: &str, chain: usize) -> StopAction {
        StopAction {
            chain,
            ..action(id, AfterStop::Remove)
        }
    }

    /// Drains 3 s before its stop.
    fn draining(id: &str, chain: usize) -> StopAction {
        StopAction {
            drain: Some(crate::plan::Drain {
                period: std::time::Duration::from_secs(3),
                check: None,
                skipped: false,
            }),
            ..chained(id, chain)
        }
    }

    #[test]
    fn stops_nothing_waits_for_hold_a_share_of_the_permits_while_an_awaited_one_is_under_way() {
        let mut adm = Admission::default();
        let service = chained("svc", 1);
        adm.begin(&service);
        let leaves: Vec<StopAction> = (0..CONCURRENT_STOPS)
            .map(|i| chained(&format!("leaf{i}"), 0))
            .collect();
        for leaf in &leaves[..UNAWAITED_SHARE] {
            assert!(adm.admits(leaf));
            adm.begin(leaf);
        }
        let next = &leaves[UNAWAITED_SHARE];
        assert!(!adm.admits(next), "more than the share while svc stops");
        // Another awaited stop still may begin, and a drained one always.
        assert!(adm.admits(&chained("other-svc", 2)));
        assert!(adm.admits(&draining("drained", 0)));
        // A leaf's answer frees its place in the share.
        adm.answered(&leaves[0]);
        assert!(adm.admits(next));
        adm.begin(next);
        assert!(!adm.admits(&leaves[UNAWAITED_SHARE + 1]));
        // Once svc's process has exited, the rest of the permits are theirs.
        adm.exited(&service);
        for leaf in &leaves[UNAWAITED_SHARE + 1..] {
            assert!(adm.admits(leaf), "{} held back", leaf.id);
            adm.begin(leaf);
        }
        // svc's permit is held until Docker answers its stop.
        assert_eq!(adm.holding, CONCURRENT_STOPS);
        let one_more = chained("one-more", 0);
        assert!(!adm.admits(&one_more));
        adm.answered(&service);
        assert!(adm.admits(&one_more));
    }

    #[test]
    fn a_draining_service_holds_no_permit_but_holds_back_stops_nothing_waits_for() {
        let mut adm = Admission::default();
        let draining = draining("svc", 1);
        adm.begin(&draining);
        assert_eq!(adm.holding, 0);
        for i in 0..UNAWAITED_SHARE {
            adm.begin(&chained(&format!("leaf{i}"), 0));
        }
        assert!(!adm.admits(&chained("late", 0)));
        adm.exited(&draining);
        assert!(adm.admits(&chained("late", 0)));
        adm.answered(&draining);
        assert_eq!(adm.holding, UNAWAITED_SHARE);
    }

    #[test]
    fn an_awaited_stop_answered_without_its_exit_holds_nothing_back() {
        // The events stream ended: the walk goes on at answers alone.
        let mut adm = Admission::default();
        let service = chained("svc", 1);
        adm.begin(&service);
        for i in 0..UNAWAITED_SHARE {
            adm.begin(&chained(&format!("leaf{i}"), 0));
        }
        assert!(!adm.admits(&chained("late", 0)));
        adm.answered(&service);
        assert!(adm.admits(&chained("late", 0)));
    }

    #[test]
    fn a_die_at_or_after_the_stop_was_sent_ends_the_stop_once() {
        let mut exits = Exits::default();
        exits.sent(&action("a", AfterStop::Remove), 100);
        assert_eq!(exits.exited(&event("a", DIE, 100)), Some("a".into()));
        assert_eq!(exits.exited(&event("a", DIE, 150)), None, "counted twice");
    }

    #[test]
    fn a_die_from_before_the_stop_or_of_another_container_does_not_count() {
        let mut exits = Exits::default();
        exits.sent(&action("a", AfterStop::Remove), 100);
        // A crash just before the stop: Docker may still restart it.
        assert_eq!(exits.exited(&event("a", DIE, 99)), None);
        // A container this walk does not stop, or has not sent a stop to.
        assert_eq!(exits.exited(&event("b", DIE, 200)), None);
        // Any other action of the stopped one.
        assert_eq!(exits.exited(&event("a", EventKind::Stop, 200)), None);
        assert_eq!(exits.exited(&event("a", DIE, 200)), Some("a".into()));
    }

    #[test]
    fn a_container_kept_aside_goes_on_only_after_its_rename() {
        let aside = action(
            "a",
            AfterStop::KeepAside {
                aside: "c-a-old".into(),
            },
        );
        assert!(!Exits::counts(&aside));
        let mut exits = Exits::default();
        exits.sent(&aside, 100);
        assert_eq!(exits.exited(&event("a", DIE, 200)), None);
    }
}
