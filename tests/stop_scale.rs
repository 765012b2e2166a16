//! How `stop` and `down` carry out their order at scale, against the real
//! engine, read from each container's `FinishedAt` and from Docker's
//! `kill` and `die` events: dependents first within a stack (no container
//! signalled before each of its dependents' `die`, which is as soon as
//! telefig may), no stack waiting for another's slow container, every
//! grace period waited out, sidecars nothing waits for stopping only a
//! few at a time while a service still stops, and more containers leaving
//! at once than the 32 calls telefig hands dockerd for other work.

mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use support::events::EventFollower;

use support::*;

/// A shell loop that leaves at once on SIGTERM.
const LEAVES: &str = "trap 'exit 0' TERM; while :; do sleep 1 & wait; done";
/// A shell loop that ignores SIGTERM: Docker kills it at its grace period.
const STAYS: &str = "trap '' TERM; while :; do sleep 1 & wait; done";

/// Services named `<id>-s<i>` from the images `tf.local/{svc,logging,discovery}:1`;
/// `logging` starts before its service, `discovery` once it is healthy.
struct Set {
    guard: Cleanup,
    dir: PathBuf,
}

impl Set {
    fn new() -> Set {
        Set::with_logging(LEAVES, None)
    }

    /// Logging sidecars run `script`, with a grace period of `grace`
    /// seconds if given.
    fn with_logging(script: &str, grace: Option<u64>) -> Set {
        let base = busybox_image("1");
        for image in ["svc", "logging", "discovery"] {
            retag(&base, &format!("tf.local/{image}:1"));
        }
        let set = Set {
            guard: Cleanup::new(),
            dir: scratch_dir("stop-scale"),
        };
        let labels = platform_labels(set.id());
        let cmd = |script: &str| format!("[\"sh\", \"-c\", \"{script}\"]");
        let (logging, discovery) = (cmd(script), cmd(LEAVES));
        let grace = grace.map_or(String::new(), |g| format!(", stop_grace_period: {g}s"));
        std::fs::write(
            set.dir.join("platform.yaml"),
            format!(
                "registries: {{primary: \"tf.local\", mirrors: []}}\n{labels}\
                 sidecars:\n  logging: {{image: \"logging:1\", order: before, gate: started, command: {logging}{grace}}}\n  \
                 discovery: {{image: \"discovery:1\", order: after_healthy, params: {{port: ~}}, command: {discovery}}}\n"
            ),
        )
        .unwrap();
        set
    }

    fn id(&self) -> &str {
        self.guard.id()
    }

    fn name(&self, i: usize, kind: &str) -> String {
        match kind {
            "" => format!("{}-s{i}", self.id()),
            k => format!("{}-s{i}-{k}", self.id()),
        }
    }

    /// `count` services running `script(i)` with a grace period of
    /// `grace(i)` seconds, with both sidecars when `sidecars`.
    fn write(
        &self,
        count: usize,
        sidecars: bool,
        script: impl Fn(usize) -> &'static str,
        grace: impl Fn(usize) -> u64,
    ) {
        let mut text = String::from("version: 1\n");
        for i in 0..count {
            text += &format!(
                "{}:\n  docker:\n    image: svc\n    version: \"1\"\n    command: [\"sh\", \"-c\", \"{}\"]\n    stop_grace_period: {}s\n",
                self.name(i, ""),
                script(i),
                grace(i)
            );
            if sidecars {
                text += &format!(
                    "  sidecars:\n    logging:\n    discovery: {{port: {}}}\n",
                    20000 + i
                );
            }
        }
        std::fs::write(self.dir.join("serviceset.conf"), text).unwrap();
    }

    /// `count` stacks with both sidecars, s0's service ignoring SIGTERM
    /// for its `grace` seconds and the rest leaving at once: started, then
    /// stopped. Returns when the stop began (ns) and the first `kill` and
    /// the `die` of every container.
    fn stop_with_s0_slow(&self, count: usize, grace: u64) -> (i64, HashMap<String, (i64, i64)>) {
        self.write(
            count,
            true,
            |i| if i == 0 { STAYS } else { LEAVES },
            |i| if i == 0 { grace } else { 10 },
        );
        self.ok(&["start"]);
        let before = now_nanos();
        let mut events = follow_kills_and_dies(self, before);
        self.ok(&["stop"]);
        let names: Vec<String> = (0..count)
            .flat_map(|i| ["discovery", "", "logging"].map(|k| self.name(i, k)))
            .collect();
        (before, kills_and_dies(&mut events, &names))
    }

    fn telefig(&self, args: &[&str]) -> Output {
        let mut cmd = telefig_on(&self.dir, self.id(), args);
        output_within(&mut cmd, Duration::from_secs(300))
    }

    fn ok(&self, args: &[&str]) {
        let out = self.telefig(args);
        assert!(
            out.status.success(),
            "telefig {args:?} exited {:?}\n{}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// When the container stopped, in ns since the epoch.
fn finished(name: &str) -> i64 {
    let c = inspect(name);
    assert_eq!(c["State"]["Status"], "exited", "{name} is not stopped");
    nanos(c["State"]["FinishedAt"].as_str().unwrap())
}

const SECOND: i64 = 1_000_000_000;

/// Docker's `kill` and `die` events of the set's containers from `since`
/// (ns) on, as they come: `docker events` replays those from before it
/// subscribed, so nothing between `since` and now is missed.
fn follow_kills_and_dies(set: &Set, since: i64) -> EventFollower {
    let label = test_label(set.id());
    EventFollower::spawn(docker_events_since(
        since,
        &[("label", &label), ("event", "kill"), ("event", "die")],
    ))
}

/// (first `kill`, `die`) of each container, in ns, read from `events`
/// until every one of `names` has died.
fn kills_and_dies(events: &mut EventFollower, names: &[String]) -> HashMap<String, (i64, i64)> {
    let mut seen: HashMap<String, (Option<i64>, Option<i64>)> = HashMap::new();
    let died = |seen: &HashMap<_, (_, Option<i64>)>| {
        names
            .iter()
            .all(|n| seen.get(n).is_some_and(|s| s.1.is_some()))
    };
    while !died(&seen) {
        let event = events.next_where(Duration::from_secs(60), |_| true);
        let event = event.unwrap_or_else(|| panic!("not every container died: {seen:?}"));
        let name = event["Actor"]["Attributes"]["name"]
            .as_str()
            .unwrap_or_default();
        let at = event["timeNano"].as_i64().expect("timeNano");
        let entry = seen.entry(name.to_owned()).or_default();
        match event["Action"].as_str() {
            Some(a) if a.starts_with("kill") => {
                entry.0.get_or_insert(at);
            }
            Some("die") => entry.1 = Some(at),
            _ => {}
        }
    }
    seen.into_iter()
        .filter_map(|(n, (k, d))| Some((n, (k?, d?))))
        .collect::<HashMap<_, _>>()
}

#[test]
fn each_container_stops_after_its_own_dependents_and_no_stack_waits_for_another() {
    if !require_docker() {
        return;
    }
    let set = Set::new();
    // s0 takes its 3 s grace period to stop; s1 and s2 leave at once.
    let (before, seen) = set.stop_with_s0_slow(3, 3);
    let at = |i, kind| finished(&set.name(i, kind));
    for i in 0..3 {
        let (discovery, service, logging) = (at(i, "discovery"), at(i, ""), at(i, "logging"));
        assert!(
            discovery <= service && service <= logging,
            "stack s{i} stopped out of order: discovery {discovery}, service {service}, logging {logging}"
        );
    }
    // Each container is signalled only once each of its dependents has
    // died: Docker's `die` comes when the process and its task are gone.
    for i in 0..3 {
        let kill = |k: &str| seen[&set.name(i, k)].0;
        let die = |k: &str| seen[&set.name(i, k)].1;
        assert!(
            die("discovery") <= kill("") && die("") <= kill("logging"),
            "stack s{i} was signalled before a dependent died: {seen:?}"
        );
    }
    // The grace period is waited out, and the slow service's sidecar waits
    // for it; the other stacks do not.
    assert!(
        at(0, "") - before >= 3 * SECOND,
        "s0 was killed before its grace period"
    );
    for i in 1..3 {
        assert!(
            at(i, "logging") < at(0, ""),
            "s{i}'s sidecar waited for s0 to stop: {} ≥ {}",
            at(i, "logging"),
            at(0, "")
        );
    }
    set.ok(&["down"]);
    assert!(container_ids_by_label(&test_label(set.id())).is_empty());
}

#[test]
fn sidecars_nothing_waits_for_stop_a_few_at_a_time_while_a_service_is_stopping() {
    if !require_docker() {
        return;
    }
    // 12 stacks. s0's service takes its 6 s grace period; every logging
    // sidecar (nothing waits for it) takes its 3 s one. While s0 stops,
    // the other 11 loggings may hold only 8 stops (telefig's
    // UNAWAITED_SHARE): the 9th begins once one of the first 8 is killed.
    let set = Set::with_logging(STAYS, Some(3));
    let (_, seen) = set.stop_with_s0_slow(12, 6);
    let mut signalled: Vec<i64> = (1..12).map(|i| seen[&set.name(i, "logging")].0).collect();
    signalled.sort_unstable();
    let s0_died = seen[&set.name(0, "")].1;
    assert!(
        signalled[7] < s0_died,
        "8 sidecars did not stop while s0 stopped: {signalled:?}, s0 died at {s0_died}"
    );
    assert!(
        signalled[8] - signalled[0] >= 3 * SECOND,
        "more than 8 sidecars stopped at once while s0 stopped: \
         the 9th was signalled {:.1} s after the 1st ({:?}, kill and die of each: {seen:?})",
        (signalled[8] - signalled[0]) as f64 / SECOND as f64,
        signalled
            .iter()
            .map(|t| t - signalled[0])
            .collect::<Vec<_>>()
    );
    set.ok(&["down"]);
    assert!(container_ids_by_label(&test_label(set.id())).is_empty());
}

#[test]
fn more_containers_leave_at_once_than_the_32_calls_telefig_makes_at_once() {
    if !require_docker() {
        return;
    }
    let set = Set::new();
    // 40 services that ignore SIGTERM, each killed at its 4 s grace period.
    // 32 stops at a time would leave the last 8 to a second round, 4 s later.
    set.write(40, false, |_| STAYS, |_| 4);
    set.ok(&["start"]);
    let before = now_nanos();
    set.ok(&["stop"]);
    let times: Vec<i64> = (0..40).map(|i| finished(&set.name(i, ""))).collect();
    let (first, last) = (*times.iter().min().unwrap(), *times.iter().max().unwrap());
    // Every grace period was waited out, and all 40 together.
    assert!(
        first - before >= 4 * SECOND,
        "a container was killed before its grace period"
    );
    assert!(
        last - first < 3 * SECOND,
        "40 containers with a 4 s grace period stopped over {:.1} s: they did not stop together",
        (last - first) as f64 / SECOND as f64
    );
    set.ok(&["down"]);
    assert!(container_ids_by_label(&test_label(set.id())).is_empty());
}
