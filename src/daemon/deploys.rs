//! The daemon's view of the deploy logs and cron runs in the state dir
//! (pure: `live.rs` reads the files when they change). Each fresh read
//! gives the events it adds, in order — an entry's start, its new steps,
//! its end — for `telefig events`; the logs' totals feed the metrics.
//!
//! The first read at the daemon's start is history, not news: it gives
//! no events. A repair's events carry the time of the Docker event that
//! caused it, so they are not shown before it (see `happened::Outbox`).

use std::collections::BTreeMap;

use super::happened::{Caused, Happened};
use crate::state::{CronRun, CronTotals, Deploy, DeployLog, Step};

#[derive(Debug, Default)]
pub struct Deploys {
    /// By serviceset, as last read.
    pub logs: BTreeMap<String, DeployLog>,
    /// When each cron entry's last run that was seen finished.
    cron: BTreeMap<(String, String), i64>,
}

impl Deploys {
    /// `serviceset`'s log as read now (`None`: it was removed); `live` is
    /// false for the first read. Returns the events it adds, each with the
    /// time of the Docker event its entry answers (a repair's cause).
    pub fn update(&mut self, serviceset: &str, log: Option<DeployLog>, live: bool) -> Vec<Caused> {
        let Some(log) = log else {
            self.logs.remove(serviceset);
            return Vec::new();
        };
        let mut out: Vec<Caused> = Vec::new();
        let before = self.logs.get(serviceset);
        let known_last = before.and_then(|b| b.deploys.last()).map_or(0, |d| d.seq);
        for d in log.deploys.iter().filter(|_| live) {
            let old = before.and_then(|b| b.deploys.iter().find(|o| o.seq == d.seq));
            if old.is_none() && d.seq <= known_last {
                continue; // left the log before we saw it; not news
            }
            let caused = |happened| Caused {
                after_nanos: d.cause_nanos,
                happened,
            };
            if old.is_none() {
                out.push(caused(event(
                    serviceset,
                    d,
                    d.started_at_nanos,
                    "",
                    &format!("{}-started", d.operation.noun()),
                    String::new(),
                )));
            }
            let seen = old.map_or(0, |o| o.steps.len());
            out.extend(
                d.steps
                    .iter()
                    .skip(seen)
                    .map(|s| caused(step(serviceset, d, s))),
            );
            if d.result.is_some() && old.is_none_or(|o| o.result.is_none()) {
                out.push(caused(finished(serviceset, d)));
            }
        }
        self.logs.insert(serviceset.to_owned(), log);
        out
    }

    /// Every serviceset's cron runs as read now; a run that finished since
    /// the last read is a `cron-ran` event (none when `live` is false).
    pub fn update_cron(
        &mut self,
        runs: &BTreeMap<String, BTreeMap<String, CronRun>>,
        live: bool,
    ) -> Vec<Happened> {
        let mut out = Vec::new();
        for (serviceset, entries) in runs {
            for (name, run) in entries {
                let Some(finished) = run.last_finished.filter(|_| !run.running) else {
                    continue;
                };
                let key = (serviceset.clone(), name.clone());
                if self.cron.insert(key, finished) == Some(finished) || !live {
                    continue;
                }
                let took = run.last_started.map_or(0, |s| (finished - s).max(0));
                let code = run
                    .exit_code
                    .map_or_else(|| "no exit code".to_owned(), |c| format!("exit code {c}"));
                out.push(Happened {
                    time_nanos: finished.saturating_mul(1_000_000_000),
                    serviceset: serviceset.clone(),
                    container: run.owner.clone(),
                    event: "cron-ran".into(),
                    detail: format!("{name}: {code} after {took} s"),
                    result: Some(CronTotals::result_of(run.exit_code).to_owned()),
                    ..Happened::default()
                });
            }
        }
        out
    }
}

fn event(
    serviceset: &str,
    d: &Deploy,
    at: i64,
    container: &str,
    what: &str,
    detail: String,
) -> Happened {
    Happened {
        time_nanos: at,
        serviceset: serviceset.to_owned(),
        container: container.to_owned(),
        event: what.to_owned(),
        detail,
        deploy: Some(d.seq),
        operation: Some(d.operation.as_str().to_owned()),
        result: None,
    }
}

fn step(serviceset: &str, d: &Deploy, s: &Step) -> Happened {
    event(
        serviceset,
        d,
        s.at_nanos,
        &s.container,
        &s.event,
        s.detail.clone(),
    )
}

fn finished(serviceset: &str, d: &Deploy) -> Happened {
    let mut detail = Vec::new();
    if let Some(commit) = &d.commit {
        detail.push(format!("commit {commit}"));
    }
    if let Some(s) = d.duration_seconds {
        detail.push(format!("in {s:.1} s"));
    }
    if !d.failed.is_empty() {
        detail.push(format!("failed: {}", d.failed.join(", ")));
    }
    if !d.put_back.is_empty() {
        detail.push(format!("put back: {}", d.put_back.join(", ")));
    }
    let mut h = event(
        serviceset,
        d,
        d.finished_at_nanos.unwrap_or(d.started_at_nanos),
        "",
        &format!("{}-finished", d.operation.noun()),
        detail.join("; "),
    );
    h.result = d.result.map(|r| r.as_str().to_owned());
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Operation, Outcome};

    fn step(at: i64, event: &str, container: &str) -> Step {
        Step {
            at_nanos: at,
            event: event.into(),
            container: container.into(),
            detail: String::new(),
        }
    }

    fn names(events: &[Caused]) -> Vec<String> {
        events
            .iter()
            .map(|c| &c.happened)
            .map(|h| format!("{}#{} {}", h.event, h.deploy.unwrap_or(0), h.container))
            .collect()
    }

    /// The log as an operation writes it: begun, two steps, a third, finished.
    #[test]
    fn each_read_gives_what_it_adds_in_order() {
        let mut model = Deploys::default();
        let mut log = DeployLog::default();
        let mut d = Deploy::new(Operation::Start, 10);
        log.begin(d.clone());
        d.seq = 1;
        d.push_step(step(11, "pulled", ""));
        d.push_step(step(12, "created", "web"));
        log.update(d.clone());
        let first = model.update("shop", Some(log.clone()), true);
        assert_eq!(
            names(&first),
            ["deploy-started#1 ", "pulled#1 ", "created#1 web"]
        );
        d.push_step(step(13, "gate-passed", "web"));
        d.result = Some(Outcome::Succeeded);
        d.finished_at_nanos = Some(14);
        log.update(d);
        let second = model.update("shop", Some(log.clone()), true);
        assert_eq!(names(&second), ["gate-passed#1 web", "deploy-finished#1 "]);
        assert_eq!(second[1].happened.result.as_deref(), Some("succeeded"));
        assert_eq!(second[1].happened.operation.as_deref(), Some("start"));
        assert_eq!(second[1].after_nanos, None, "a deploy answers no event");
        assert!(model.update("shop", Some(log.clone()), true).is_empty());
        assert_eq!(model.logs["shop"].totals.deploys["succeeded"], 1);
    }

    /// `telefig events` shows a deploy's bake as it goes.
    #[test]
    fn a_bake_is_three_events_of_its_deploy() {
        let mut model = Deploys::default();
        let mut log = DeployLog::default();
        let mut d = Deploy::new(Operation::Start, 10);
        log.begin(d.clone());
        d.seq = 1;
        d.push_step(step(11, "gate-passed", "web"));
        d.push_step(step(12, "bake-started", ""));
        log.update(d.clone());
        let first = model.update("shop", Some(log.clone()), true);
        assert_eq!(
            names(&first),
            ["deploy-started#1 ", "gate-passed#1 web", "bake-started#1 "]
        );
        d.push_step(step(13, "bake-failed", "web"));
        d.result = Some(Outcome::RolledBack);
        log.update(d);
        let second = model.update("shop", Some(log), true);
        assert_eq!(names(&second), ["bake-failed#1 web", "deploy-finished#1 "]);
    }

    #[test]
    fn the_first_read_is_history_and_a_new_entry_is_news() {
        let mut model = Deploys::default();
        let mut log = DeployLog::default();
        let mut d = Deploy::new(Operation::Start, 10);
        d.result = Some(Outcome::Failed);
        log.begin(d);
        assert!(model.update("shop", Some(log.clone()), false).is_empty());
        let mut repair = Deploy::new(Operation::Repair, 20);
        repair.cause_nanos = Some(19);
        repair.steps.push(step(21, "created", "web-logging"));
        log.begin(repair);
        let news = model.update("shop", Some(log), true);
        assert_eq!(names(&news), ["repair-started#2 ", "created#2 web-logging"]);
        assert!(
            news.iter().all(|c| c.after_nanos == Some(19)),
            "a repair's events wait for its cause: {news:?}"
        );
        assert!(model.update("shop", None, true).is_empty());
        assert!(model.logs.is_empty());
    }

    #[test]
    fn a_finished_cron_run_is_news_once() {
        let mut model = Deploys::default();
        let run = |finished: i64| {
            let entry = CronRun {
                owner: "web".into(),
                last_started: Some(finished - 2),
                last_finished: Some(finished),
                exit_code: Some(0),
                ..Default::default()
            };
            BTreeMap::from([(
                "shop".to_owned(),
                BTreeMap::from([("Sweep".to_owned(), entry)]),
            )])
        };
        assert!(model.update_cron(&run(100), false).is_empty());
        assert!(model.update_cron(&run(100), true).is_empty());
        let ran = model.update_cron(&run(160), true);
        assert_eq!(ran.len(), 1);
        assert_eq!(
            (ran[0].event.as_str(), ran[0].detail.as_str()),
            ("cron-ran", "Sweep: exit code 0 after 2 s")
        );
        assert_eq!(ran[0].result.as_deref(), Some("succeeded"));
    }
}
