//! An operation's entry in the deploy log (`state::deploys` owns the
//! format), written as it goes so the daemon can follow it: started, each
//! image pulled, container created, gate passed or failed, the bake
//! started, passed or failed (with a failure's evidence), version put
//! back; then the result, its duration and the gate waits.
//!
//! Nothing is written until the operation first changes something (or
//! fails): a no-op `start` of the same deploy, or a repair with nothing to
//! do, leaves no entry and costs no file I/O. Progress is replaced
//! atomically, off the async runtime and without waiting for the disk; the
//! finished entry is synced.
//! A log that cannot be written is a warning, never a failed operation.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tracing::warn;

use super::{Converged, Error};
use crate::clock::now_nanos;
use crate::engine::execute::Event;
use crate::name::ServicesetName;
use crate::state::{Deploy, DeployLog, GateWait, Operation, Outcome, Repaired, StateDir, Step};

pub(crate) struct Journal {
    state: StateDir,
    name: ServicesetName,
    inner: Mutex<Inner>,
}

struct Inner {
    entry: Deploy,
    /// The log as last written; `None` until the first write.
    log: Option<DeployLog>,
    began: Instant,
    rolled_back: BTreeSet<String>,
    /// Steps noted but not yet written.
    dirty: bool,
    /// A write failed: say so once, then stop trying.
    broken: bool,
}

impl Journal {
    /// An entry for `operation` on `name`, in memory until something happens.
    /// The caller holds the serviceset's lock until [`Journal::finish`].
    pub fn begin(
        state: &StateDir,
        name: &ServicesetName,
        operation: Operation,
        commit: Option<&str>,
        deploy_id: Option<&str>,
    ) -> Arc<Journal> {
        let mut entry = Deploy::new(operation, now_nanos());
        entry.commit = commit.map(str::to_owned);
        entry.deploy_id = deploy_id.map(str::to_owned);
        Arc::new(Journal {
            state: state.clone(),
            name: name.clone(),
            inner: Mutex::new(Inner {
                entry,
                log: None,
                began: Instant::now(),
                rolled_back: BTreeSet::new(),
                dirty: false,
                broken: false,
            }),
        })
    }

    /// The time (ns) of the newest Docker event the operation answers.
    pub fn caused_by(&self, nanos: i64) {
        self.inner.lock().expect("journal").entry.cause_nanos = Some(nanos);
    }

    /// The operation wrote the record numbered `record_seq`: it applied a version.
    pub fn applied(&self, record_seq: u64) {
        self.inner.lock().expect("journal").entry.record_seq = Some(record_seq);
    }

    /// A container the operation repairs, and why.
    pub fn repairing(&self, container: &str, cause: &str) {
        let mut inner = self.inner.lock().expect("journal");
        inner.entry.repaired.push(Repaired {
            container: container.to_owned(),
            cause: cause.to_owned(),
        });
    }

    /// What the executor did; the steps `events` shows are written now.
    pub fn note(self: &Arc<Self>, event: &Event) {
        let mut inner = self.inner.lock().expect("journal");
        let step = |event: &str, container: &str, detail: &str| Step {
            at_nanos: now_nanos(),
            event: event.to_owned(),
            container: container.to_owned(),
            detail: detail.to_owned(),
        };
        let step = match event {
            Event::Pulled(p) => step("pulled", "", &p.reference),
            Event::Created { container } => step("created", container, ""),
            Event::Updated { container } => step("updated", container, ""),
            Event::Passed {
                container,
                gate,
                millis,
            } => {
                let wait = GateWait {
                    container: container.clone(),
                    gate: (*gate).to_owned(),
                    seconds: *millis as f64 / 1000.0,
                };
                // Once a version is put back, passes are the rollback's.
                let own = inner.entry.put_back.is_empty();
                let slowest = &mut inner.entry.slowest_gate;
                if own && slowest.as_ref().is_none_or(|s| s.seconds < wait.seconds) {
                    *slowest = Some(wait.clone());
                }
                inner.entry.gates.push(wait);
                let took = format!("{gate} after {:.1} s", *millis as f64 / 1000.0);
                step("gate-passed", container, &took)
            }
            // A gate's `why` may quote Docker's error: the evidence is the
            // record. A bake's names what Docker reported (see `plan::bake`).
            Event::Failed {
                container,
                evidence,
                ..
            }
            | Event::BakeFailed {
                container,
                evidence,
                ..
            } => {
                inner.entry.failed.push(container.clone());
                inner
                    .entry
                    .evidence
                    .extend(evidence.iter().map(|e| (**e).clone()));
                match event {
                    Event::BakeFailed { why, .. } => step("bake-failed", container, why),
                    _ => step("gate-failed", container, ""),
                }
            }
            Event::BakeStarted { containers, millis } => step(
                "bake-started",
                "",
                &format!(
                    "{} for {:.1} s",
                    containers.join(", "),
                    *millis as f64 / 1000.0
                ),
            ),
            Event::BakePassed { millis } => step(
                "bake-passed",
                "",
                &format!("after {:.1} s", *millis as f64 / 1000.0),
            ),
            Event::PutBack { container } => {
                inner.entry.put_back.push(container.clone());
                return;
            }
            Event::RolledBack { container } => {
                inner.rolled_back.insert(container.clone());
                step("rolled-back", container, "")
            }
            _ => return,
        };
        inner.entry.push_step(step);
        inner.dirty = true;
        drop(inner);
        // Off the caller's thread (a rename costs milliseconds on ext4); a
        // write takes every step noted so far, so writes queued behind it
        // find nothing left to do.
        let journal = self.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(move || journal.write_progress())),
            Err(_) => journal.write_progress(),
        }
    }

    fn write_progress(&self) {
        let mut inner = self.inner.lock().expect("journal");
        if inner.dirty {
            self.write(&mut inner, false);
        }
    }

    /// The operation ended with `outcome`. `quiet`: it changed nothing, so
    /// unless something was already written, no entry is kept.
    pub async fn finish(self: Arc<Self>, outcome: &Result<Converged, Error>, quiet: bool) {
        let ended = match outcome {
            Ok(done) => Ok(done.ok()),
            Err(e) => Err(e.to_string()),
        };
        self.finish_as(ended, quiet).await;
    }

    /// [`Journal::finish`] with `ended`: whether the report said every
    /// container passed, or the error the operation failed with.
    async fn finish_as(self: Arc<Self>, ended: Result<bool, String>, quiet: bool) {
        let ok_report = ended.as_ref().ok().copied();
        let nothing_to_keep = move |inner: &Inner| {
            quiet && ok_report == Some(true) && inner.log.is_none() && !inner.dirty
        };
        // A no-op: no thread for a write that would not happen.
        if nothing_to_keep(&self.inner.lock().expect("journal")) {
            return;
        }
        let journal = self.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let mut inner = journal.inner.lock().expect("journal");
            if nothing_to_keep(&inner) {
                return;
            }
            let entry = &mut inner.entry;
            let result = match ok_report {
                Some(true) => Outcome::Succeeded,
                _ if !entry.put_back.is_empty() => Outcome::RolledBack,
                _ => Outcome::Failed,
            };
            let now = now_nanos();
            if result == Outcome::Succeeded {
                for r in entry.repaired.clone() {
                    entry.push_step(Step {
                        at_nanos: now,
                        event: "repaired".into(),
                        container: r.container,
                        detail: r.cause,
                    });
                }
            }
            entry.result = Some(result);
            entry.error = ended.err();
            entry.finished_at_nanos = Some(now);
            let rolled_back = &inner.rolled_back;
            let all_back = inner.entry.put_back.iter().all(|c| rolled_back.contains(c));
            inner.entry.rollback_passed = (!inner.entry.put_back.is_empty()).then_some(all_back);
            inner.entry.duration_seconds = Some(inner.began.elapsed().as_secs_f64());
            journal.write(&mut inner, true);
        })
        .await;
    }

    fn write(&self, inner: &mut Inner, durable: bool) {
        inner.dirty = false;
        if inner.broken {
            return;
        }
        let entry = inner.entry.clone();
        let log = match &mut inner.log {
            Some(log) => {
                log.update(entry);
                log
            }
            None => {
                let mut log = self.state.deploy_log(&self.name);
                let seq = log.begin(Deploy {
                    result: None,
                    ..entry.clone()
                });
                inner.entry.seq = seq;
                log.update(Deploy { seq, ..entry });
                inner.log.insert(log)
            }
        };
        if let Err(e) = self.state.save_deploy_log(&self.name, log, durable) {
            warn!(serviceset = %self.name, "the deploy log was not written: {e}");
            inner.broken = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::pull::Pulled;

    fn state(what: &str) -> (StateDir, std::path::PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("telefig-journal-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        (StateDir::new(&dir), dir)
    }

    #[tokio::test]
    async fn a_quiet_operation_that_did_nothing_leaves_no_entry() {
        let (state, dir) = state("quiet");
        let name = ServicesetName::parse("shop").unwrap();
        let journal = Journal::begin(&state, &name, Operation::Start, Some("abc"), None);
        journal.finish_as(Ok(true), true).await;
        assert!(!dir.join("deploys").exists(), "no file I/O at all");
    }

    /// A deploy that failed with an error (a pull, say) kept no cause.
    #[tokio::test]
    async fn an_operation_that_failed_with_an_error_keeps_its_message() {
        let (state, dir) = state("error");
        let name = ServicesetName::parse("shop").unwrap();
        let journal = Journal::begin(&state, &name, Operation::Start, Some("abc"), None);
        journal.applied(7);
        journal
            .finish_as(
                Err("could not pull r/web:abc: manifest unknown".into()),
                false,
            )
            .await;
        let d = state.deploy_log(&name).deploys.remove(0);
        assert_eq!(d.result, Some(Outcome::Failed));
        assert_eq!(
            d.error.as_deref(),
            Some("could not pull r/web:abc: manifest unknown")
        );
        assert_eq!(d.record_seq, Some(7));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn steps_are_written_as_they_happen_and_the_end_is_counted() {
        let (state, dir) = state("steps");
        let name = ServicesetName::parse("shop").unwrap();
        let journal = Journal::begin(&state, &name, Operation::Start, Some("abc"), Some("d-1"));
        journal.note(&Event::Pulled(Pulled {
            reference: "registry/web:abc".into(),
            from: "registry/web:abc".into(),
            millis: 5,
        }));
        journal.note(&Event::Created {
            container: "web".into(),
        });
        // Written in the background: wait for both steps to be there.
        let mut log = state.deploy_log(&name);
        for _ in 0..200 {
            if log.deploys.first().is_some_and(|d| d.steps.len() == 2) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            log = state.deploy_log(&name);
        }
        assert_eq!(log.deploys.len(), 1);
        assert_eq!(log.deploys[0].result, None, "still running");
        assert_eq!(log.deploys[0].steps.len(), 2);
        journal.note(&Event::Failed {
            container: "web".into(),
            why: "turned unhealthy; last log lines: DB_PASSWORD=hunter2".into(),
            evidence: None,
        });
        journal.note(&Event::PutBack {
            container: "web".into(),
        });
        journal.note(&Event::Passed {
            container: "web".into(),
            gate: "healthy",
            millis: 1500,
        });
        journal.note(&Event::RolledBack {
            container: "web".into(),
        });
        journal.finish_as(Ok(false), true).await;
        let log = state.deploy_log(&name);
        let d = &log.deploys[0];
        assert_eq!(d.result, Some(Outcome::RolledBack));
        assert_eq!(
            (d.commit.as_deref(), d.deploy_id.as_deref()),
            (Some("abc"), Some("d-1"))
        );
        assert_eq!(d.failed, ["web"]);
        assert_eq!(d.rollback_passed, Some(true));
        // The boot repair reads when web passed its healthy gate from here.
        assert!(
            log.healthy_gates_seen().contains_key("web"),
            "{:?}",
            d.steps
        );
        assert_eq!(d.gates[0].seconds, 1.5);
        assert_eq!(
            d.slowest_gate, None,
            "the pass after the put-back is the rollback's"
        );
        let events: Vec<&str> = d.steps.iter().map(|s| s.event.as_str()).collect();
        assert_eq!(
            events,
            [
                "pulled",
                "created",
                "gate-failed",
                "gate-passed",
                "rolled-back"
            ]
        );
        assert_eq!(log.totals.deploys["rolled_back"], 1);
        assert_eq!(log.totals.rollbacks["succeeded"], 1);
        let text = std::fs::read_to_string(dir.join("deploys/shop.json")).unwrap();
        assert!(!text.contains("hunter2"), "no container output is kept");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_failed_bake_is_three_steps_and_keeps_its_evidence() {
        let (state, dir) = state("bake");
        let name = ServicesetName::parse("shop").unwrap();
        let journal = Journal::begin(&state, &name, Operation::Start, Some("abc"), None);
        journal.note(&Event::BakeStarted {
            containers: vec!["web".into(), "web-discovery".into()],
            millis: 8000,
        });
        let evidence = crate::plan::evidence::Evidence {
            container: "web".into(),
            during: "bake".into(),
            cause: "turned unhealthy 2.1 s into its 8.0 s bake".into(),
            restart_count: Some(0),
            health_probes: vec!["db down".into()],
            log_tail: vec!["lost the database".into()],
            ..Default::default()
        };
        journal.note(&Event::BakeFailed {
            container: "web".into(),
            why: evidence.cause.clone(),
            evidence: Some(Box::new(evidence.clone())),
        });
        journal.note(&Event::PutBack {
            container: "web".into(),
        });
        journal.finish_as(Ok(false), false).await;
        let d = state.deploy_log(&name).deploys.remove(0);
        assert_eq!(d.result, Some(Outcome::RolledBack));
        assert_eq!(d.failed, ["web"]);
        assert_eq!(d.evidence, [evidence]);
        let steps: Vec<(&str, &str, &str)> = d
            .steps
            .iter()
            .map(|s| (s.event.as_str(), s.container.as_str(), s.detail.as_str()))
            .collect();
        assert_eq!(
            steps,
            [
                ("bake-started", "", "web, web-discovery for 8.0 s"),
                (
                    "bake-failed",
                    "web",
                    "turned unhealthy 2.1 s into its 8.0 s bake"
                ),
            ]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}

/// Where the operation under way keeps its entry, so every step the engine
/// reports is noted in it ([`super::Ctx`] holds one).
#[derive(Default)]
pub(crate) struct Slot(Arc<Mutex<Option<Arc<Journal>>>>);

impl Slot {
    /// Note the steps in `journal` until the returned guard is dropped,
    /// however the operation ends (an error, a panic, a cancelled future).
    pub(crate) fn hold(&self, journal: &Arc<Journal>) -> Held {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(journal.clone());
        Held(self.0.clone())
    }

    /// Note `event` in the entry under way, if there is one.
    pub(crate) fn note(&self, event: &Event) {
        let current = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(journal) = current {
            journal.note(event);
        }
    }
}

/// Steps go to a journal while this lives ([`Slot::hold`]).
pub(crate) struct Held(Arc<Mutex<Option<Arc<Journal>>>>);

impl Drop for Held {
    fn drop(&mut self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}
