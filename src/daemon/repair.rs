//! Repairing one serviceset back to its record, through the same planner
//! and executor as `start`. Every repair takes the serviceset's host lock,
//! so it never races a deploy; it re-reads the record under the lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use super::{Error, now_nanos};
use crate::engine::execute::{self, Options};
use crate::engine::pull::Policy;
use crate::engine::stop::stop_in_order;
use crate::engine::{Engine, Event};
use crate::graph::Graph;
use crate::name::ServicesetName;
use crate::plan::{self, OwnEvents, RunState};
use crate::platform::{ContainerSpec, Expanded};
use crate::state::{StateDir, restore_secrets};

/// Longest a repair may take, lock wait included.
const REPAIR_DEADLINE: Duration = Duration::from_secs(600);

#[derive(Clone)]
pub struct Repairer {
    pub engine: Engine,
    pub state: StateDir,
    pub abort: watch::Receiver<bool>,
    /// What this daemon's repairs announced, for telling drift from their echo.
    pub own: Arc<Mutex<OwnEvents>>,
}

fn log_event(serviceset: &str, event: Event) {
    info!(
        serviceset,
        "{}",
        serde_json::to_string(&event).unwrap_or_default()
    );
}

impl Repairer {
    /// Bring `serviceset` back to its record: recreate what was removed,
    /// start what was stopped outside telefig, and — at boot — restart
    /// dependents Docker started before their dependency met its gate.
    /// Returns the plan's summary when something was done.
    pub async fn repair(&self, serviceset: &str, boot: bool) -> Result<Option<String>, Error> {
        // A label that is no valid name cannot have a record.
        let Ok(name) = ServicesetName::parse(serviceset) else {
            return Ok(None);
        };
        let deadline = Instant::now() + REPAIR_DEADLINE;
        let _lock = self
            .state
            .lock(&name, "daemon repair", deadline, |holder| {
                info!(serviceset, "waiting for the lock, held by {holder}")
            })
            .await?;
        let Some(record) = self.state.load(&name)? else {
            return Ok(None);
        };
        if record.stopped {
            return Ok(None);
        }
        let mut expanded = record.expanded;
        let graph = Graph::build(&expanded)?;
        if boot {
            self.own
                .lock()
                .expect("own events")
                .looked(serviceset, now_nanos());
        }
        let observed = self.engine.list(None).await?;
        let specs: BTreeMap<String, ContainerSpec> = expanded
            .containers
            .iter()
            .map(|c| (c.name.clone(), c.clone()))
            .collect();
        let mut plan = plan::plan(&expanded, &graph, &observed, &specs)?;
        self.restore_secrets(&name, &mut expanded, &plan).await?;
        let expanded = &expanded;
        if boot {
            let ours: Vec<_> = observed
                .iter()
                .filter(|o| o.serviceset() == Some(serviceset) && !o.is_backup())
                .collect();
            let details = join_all(ours.iter().map(|o| self.engine.inspect(&o.id))).await;
            let timings: HashMap<String, plan::Timing> = ours
                .iter()
                .zip(details)
                .filter_map(|(o, d)| d.ok().map(|d| (o.name.clone(), d.timing())))
                .collect();
            plan::reorder_after_boot(&mut plan, &graph, &timings);
        }
        if plan.is_noop() {
            return Ok(None);
        }
        for a in plan.actions.iter().filter(|a| a.action.mutates()) {
            warn!(serviceset, container = %a.container, "drift: {} ({})", a.action.as_str(), a.reason);
        }
        let opts = Options {
            pull: Policy::Missing,
            deadline,
            abort: self.abort.clone(),
        };
        let emit = |e: Event| log_event(serviceset, e);
        let announced = self
            .own
            .lock()
            .expect("own events")
            .expect(&plan, now_nanos());
        let report = execute::apply(&self.engine, expanded, &graph, &plan, opts, &emit).await;
        self.own
            .lock()
            .expect("own events")
            .finished(announced, now_nanos());
        let report = report?;
        match report.failure {
            None => Ok(Some(plan.summary())),
            Some(why) => Err(Error::RepairFailed {
                serviceset: serviceset.to_owned(),
                why,
            }),
        }
    }

    /// A record keeps secret values as digests: put back the values of the
    /// containers the plan creates from the serviceset's other containers
    /// (backups included), or refuse, saying to run the deploy again.
    async fn restore_secrets(
        &self,
        name: &ServicesetName,
        expanded: &mut Expanded,
        plan: &plan::Plan,
    ) -> Result<(), Error> {
        let creates: Vec<&str> = plan
            .actions
            .iter()
            .filter(|a| {
                matches!(
                    a.action,
                    plan::ActionKind::Create | plan::ActionKind::Recreate
                )
            })
            .map(|a| a.container.as_str())
            .collect();
        if creates.is_empty() {
            return Ok(());
        }
        let candidates = self.engine.serviceset_env_values(name).await?;
        let missing = restore_secrets(expanded, candidates.iter().map(String::as_str), |c| {
            creates.contains(&c)
        });
        if missing.is_empty() {
            return Ok(());
        }
        Err(crate::state::Error::SecretsNotStored {
            serviceset: name.clone(),
            missing,
        }
        .into())
    }

    /// `dependency` died or turned unhealthy: stop, now, the running
    /// containers that wait for it to be healthy (discovery deregisters).
    /// The next repair starts them once it is healthy again. Skipped when
    /// a deploy holds the lock: that deploy gates them itself.
    pub async fn regate(&self, serviceset: &str, dependency: &str) -> Result<Vec<String>, Error> {
        let deadline = Instant::now() + Duration::from_millis(200);
        let Ok(name) = ServicesetName::parse(serviceset) else {
            return Ok(Vec::new());
        };
        let Ok(_lock) = self
            .state
            .lock(&name, "daemon regate", deadline, |_| {})
            .await
        else {
            return Ok(Vec::new());
        };
        let Some(record) = self.state.load(&name)? else {
            return Ok(Vec::new());
        };
        let graph = Graph::build(&record.expanded)?;
        let observed = self.engine.list_serviceset(serviceset).await?;
        let plan = plan::regate(serviceset, &graph, &observed, dependency)
            .with_drain(Some(&record.expanded), false);
        if plan.is_empty() {
            return Ok(Vec::new());
        }
        let emit = |e: Event| log_event(serviceset, e);
        stop_in_order(&self.engine, &graph, &plan, &emit).await?;
        Ok(plan.actions.into_iter().map(|a| a.container).collect())
    }

    /// Restart a container that stayed unhealthy past its budget.
    pub async fn restart_unhealthy(
        &self,
        serviceset: &str,
        container: &str,
    ) -> Result<bool, Error> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let Ok(name) = ServicesetName::parse(serviceset) else {
            return Ok(false);
        };
        let Ok(_lock) = self
            .state
            .lock(&name, "daemon restart", deadline, |_| {})
            .await
        else {
            return Ok(false);
        };
        let Some(record) = self.state.load(&name)? else {
            return Ok(false);
        };
        if record.expanded.get(container).is_none() {
            return Ok(false);
        }
        let observed = self.engine.list_serviceset(serviceset).await?;
        let Some(o) = observed
            .iter()
            .find(|o| o.name == container && o.state == RunState::Running)
        else {
            return Ok(false);
        };
        self.engine.stop(&o.id, container).await?;
        self.engine.start(&o.id, container).await?;
        Ok(true)
    }
}
