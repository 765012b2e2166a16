//! The bake: once every gate passed, watch what the plan says (`plan.bake`)
//! for as long as it says, following the events stream; the first
//! container that fails it fails the deploy as a failed gate would. The
//! operation's deadline (`--timeout`) covers the bake.

use std::collections::HashMap;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;

use super::{Event, NodeResult, Run};
use crate::engine::gate::Monitor;
use crate::plan::Plan;

impl Run<'_> {
    /// Bake what `plan` says; a failure turns that container's result into
    /// a failed one (with its evidence), so the rollback puts back its
    /// previous version.
    pub(super) async fn bake(&self, plan: &Plan, results: &mut HashMap<String, NodeResult>) {
        let created = |name: &str| match results.get(name) {
            Some(NodeResult::Passed {
                created: Some(id), ..
            }) => Some(id.clone()),
            _ => None,
        };
        let watched: Vec<(String, String, std::time::Duration)> = plan
            .bake
            .iter()
            .filter_map(|w| Some((w.container.clone(), created(&w.container)?, w.period)))
            .collect();
        if watched.is_empty() {
            return;
        }
        let period = plan.bake_period();
        (self.emit)(Event::BakeStarted {
            containers: watched.iter().map(|(n, ..)| n.clone()).collect(),
            millis: period.as_millis(),
        });
        let began = Instant::now();
        let monitor = self
            .monitor
            .get_or_init(|| Monitor::start(self.engine, &self.expanded.serviceset));
        let mut watches: FuturesUnordered<_> = watched
            .iter()
            .map(|(name, id, own)| {
                let mut abort = self.opts.abort.clone();
                let end = began + *own;
                let (until, timeout) = if self.opts.deadline < end {
                    (self.opts.deadline, true)
                } else {
                    (end, false)
                };
                async move {
                    let outcome = monitor.bake(id, until, timeout, &mut abort).await;
                    (name, id, *own, outcome)
                }
            })
            .collect();
        while let Some((name, id, own, outcome)) = watches.next().await {
            let Err(failure) = outcome else { continue };
            drop(watches);
            let (why, evidence) = self
                .describe_bake(id, name, &failure, began.elapsed(), own)
                .await;
            (self.emit)(Event::BakeFailed {
                container: name.clone(),
                why: why.clone(),
                evidence: evidence.clone(),
            });
            results.insert(
                name.clone(),
                NodeResult::Failed {
                    created: Some(id.clone()),
                    why,
                    evidence,
                    retryable: false,
                },
            );
            return;
        }
        (self.emit)(Event::BakePassed {
            millis: began.elapsed().as_millis(),
        });
    }
}
