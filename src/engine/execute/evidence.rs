//! A failure described: the short cause the last line names, and the
//! typed evidence (`plan::Evidence`: health probe outputs, exit code, OOM,
//! restart count, last lines of output) read from Docker, each text masked
//! through the process's redactor as it is read.

use std::time::Duration;

use tokio::time::Instant;

use super::Run;
use crate::engine::gate::GateFailure;
use crate::engine::{Deadline, Error};
use crate::graph::Gate;
use crate::plan::bake::BakeFailure;
use crate::plan::evidence::{self, Evidence};

impl Run<'_> {
    /// A gate failure: its cause in words and, when Docker still has the
    /// container, the evidence.
    pub(super) async fn describe(
        &self,
        id: &str,
        name: &str,
        gate: Gate,
        failure: GateFailure,
        budget: Duration,
    ) -> (String, Option<Box<Evidence>>) {
        let gate_name = gate.word();
        let cause = match &failure {
            GateFailure::Exited(Some(code)) => {
                format!("exited with code {code} before it was {gate_name}")
            }
            GateFailure::Exited(None) => format!("exited before it was {gate_name}"),
            GateFailure::OutOfMemory => "was killed for running out of memory (OOM)".to_owned(),
            GateFailure::Unhealthy => "turned unhealthy".to_owned(),
            GateFailure::Removed => "was removed while starting".to_owned(),
            GateFailure::Timeout => format!(
                "was not {gate_name} within {}s",
                budget
                    .min(self.opts.deadline.saturating_duration_since(Instant::now()) + budget)
                    .as_secs()
            ),
            GateFailure::Interrupted => return (Error::Interrupted.to_string(), None),
            GateFailure::Docker(e) => return (e.clone(), None),
        };
        let oom_too = failure != GateFailure::OutOfMemory;
        self.with_evidence(id, name, "gate", cause, oom_too).await
    }

    /// A bake failure (`after`: how far into the bake), as [`Run::describe`].
    pub(super) async fn describe_bake(
        &self,
        id: &str,
        name: &str,
        failure: &BakeFailure,
        after: Duration,
        period: Duration,
    ) -> (String, Option<Box<Evidence>>) {
        let cause = match failure {
            BakeFailure::Interrupted => return (Error::Interrupted.to_string(), None),
            BakeFailure::Docker(e) => return (e.clone(), None),
            other => format!(
                "{other} {:.1} s into its {:.1} s bake",
                after.as_secs_f64(),
                period.as_secs_f64()
            ),
        };
        let oom_too = *failure != BakeFailure::OutOfMemory;
        self.with_evidence(id, name, "bake", cause, oom_too).await
    }

    /// `cause`, with " (OOM killed)" when Docker says so and the cause did
    /// not (`oom_too`), and the evidence Docker has of container `id`.
    async fn with_evidence(
        &self,
        id: &str,
        name: &str,
        during: &str,
        mut cause: String,
        oom_too: bool,
    ) -> (String, Option<Box<Evidence>>) {
        let mask = crate::redact::current();
        let masked = |t: &str| mask.mask(t).into_owned();
        // A moment past the deadline, should that be what failed it.
        let engine = self
            .engine
            .with_deadline(Deadline::after(Duration::from_secs(10)));
        let Ok(d) = engine.inspect(id).await else {
            return (cause, None);
        };
        if d.oom_killed && oom_too {
            cause.push_str(" (OOM killed)");
        }
        let logs = engine.log_tail(id, evidence::LOG_LINES as u64).await;
        let evidence = Evidence {
            container: name.to_owned(),
            during: during.to_owned(),
            cause: cause.clone(),
            exit_code: (!d.running).then_some(d.exit_code).flatten(),
            oom_killed: d.oom_killed,
            restart_count: Some(d.restart_count),
            health_probes: d
                .health_outputs
                .iter()
                .flat_map(|o| evidence::last_lines(o, 1))
                .map(|o| masked(&o))
                .collect(),
            log_tail: evidence::last_lines(&logs, evidence::LOG_LINES)
                .iter()
                .map(|l| masked(l))
                .collect(),
        };
        (cause, Some(Box::new(evidence)))
    }
}
