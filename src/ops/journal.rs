//! An operation's entry in the deploy log (`state::deploys` owns the
//! format), written as it goes so the daemon can follow it: started, each
//! image pulled, container created, gate passed or failed, version put
//! back; then the result, its duration and the gate waits.
//!
//! Nothing is written until the operation first changes something (or
//! fails): a no-op `start` of the same deploy, or a repair with nothing to
//! do, leaves no entry and costs no file I/O. Progress is replaced
//! atomically without waiting for the disk; the finished entry is synced.
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
                broken: false,
            }),
        })
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
    pub fn note(&self, event: &Event) {
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
            Event::Passed {
                container,
                gate,
                millis,
            } => {
                inner.entry.gates.push(GateWait {
                    container: container.clone(),
                    gate: (*gate).to_owned(),
                    seconds: *millis as f64 / 1000.0,
                });
                let took = format!("{gate} after {:.1} s", *millis as f64 / 1000.0);
                step("gate-passed", container, &took)
            }
            // `why` may quote the container's output: never written here.
            Event::Failed { container, .. } => {
                inner.entry.failed.push(container.clone());
                step("gate-failed", container, "")
            }
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
        self.write(&mut inner, false);
    }

    /// The operation ended with `outcome`. `quiet`: it changed nothing, so
    /// unless something was already written, no entry is kept.
    pub async fn finish(self: Arc<Self>, outcome: &Result<Converged, Error>, quiet: bool) {
        let ok_report = outcome.as_ref().ok().map(|done| done.ok());
        let journal = self.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let mut inner = journal.inner.lock().expect("journal");
            if quiet && ok_report == Some(true) && inner.log.is_none() {
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
