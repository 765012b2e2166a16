//! `ops`: one function per operation — `start`, `rollback`, `restart`,
//! `stop`, `down`, `gc`, and the daemon's `repair`, `regate` and
//! `restart_unhealthy`. Each takes the serviceset's host lock, observes,
//! plans, has the engine execute the plan (re-planning on a transient
//! Docker error) and keeps the record; the converging ones also write
//! their entry in the deploy log (`journal`). `cli` and `daemon` both call
//! these; neither locks, plans or records on its own. Progress goes out
//! through the caller's sink as [`Event`]s: the CLI prints them, the
//! daemon logs.
//!
//! Not here: the decisions (`plan`), the Docker calls (`engine`), flags
//! and printing (`cli`), the events stream and budgets (`daemon`).

mod converge;
mod ctx;
pub mod evidence;
mod gc;
pub mod history;
mod journal;
pub mod load;
pub mod observe;
mod repair;
mod space;
mod start;
mod stop;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::engine;
use crate::graph::Graph;
use crate::name::ServicesetName;
use crate::plan::{self, ActionKind, Plan};
use crate::platform::{ContainerSpec, Expanded};
use crate::state::{self, StateDir, restore_secrets};

pub use converge::Converged;
pub(crate) use ctx::Observing;
pub use ctx::{Ctx, Early, Options, connect_remembering};
pub use gc::gc;
pub use observe::observe;
pub use repair::{Seen, regate, repair, restart_unhealthy};
pub use start::{StartOptions, deploy_plan, preview, restart, rollback, start};
pub use stop::{down, stop};

/// The default bound on one operation, under the deploy agent's 30-minute hook limit.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] engine::Error),
    #[error(transparent)]
    State(#[from] state::Error),
    #[error(transparent)]
    Graph(#[from] crate::graph::Error),
    #[error(transparent)]
    Plan(#[from] plan::Error),
    #[error("serviceset `{0}` has no earlier record to roll back to")]
    NoEarlierRecord(ServicesetName),
    /// `rollback --to` named no version it may go to; nothing was changed.
    #[error("cannot roll serviceset `{serviceset}` back: {refused}")]
    Rollback {
        serviceset: ServicesetName,
        refused: plan::rollback::Refused,
    },
    #[error(
        "`{container}` is not a container of serviceset `{serviceset}`; `telefig status --name {serviceset}` lists them"
    )]
    NotAContainer {
        serviceset: ServicesetName,
        container: String,
    },
    /// Secret values the record keeps only as digests, and the caller could
    /// pass again (`-e`).
    #[error("{0}; or pass each value again with -e KEY=VALUE")]
    SecretsNotGiven(state::Error),
    /// The pull does not fit on Docker's data root, even after the image
    /// cleanup; nothing running was touched.
    #[error(
        "not enough disk space to pull the images of serviceset `{serviceset}`: it {space}{}; no container was changed; free space on that file system (`docker system df`, `docker image prune`) or lower `images: {{pull_margin: …}}` in the platform file, then deploy again",
        if *.removed > 0 { format!(" after removing {} old image(s)", .removed) } else { " and the image cleanup found nothing to remove".to_owned() }
    )]
    NoRoom {
        serviceset: ServicesetName,
        space: plan::space::Space,
        removed: usize,
    },
}

impl Error {
    /// The input was wrong (exit 2), rather than something failing.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Rollback { refused, .. } => refused.is_bad_input(),
            other => matches!(
                other,
                Error::Graph(_)
                    | Error::NoEarlierRecord(_)
                    | Error::NotAContainer { .. }
                    | Error::SecretsNotGiven(_)
            ),
        }
    }
}

/// Progress of an operation, for the caller's sink.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Event {
    /// What the executor did.
    Step(engine::Event),
    /// Another operation holds the serviceset's lock; this one waits.
    WaitingForLock {
        serviceset: ServicesetName,
        holder: String,
    },
    /// A transient failure: the operation looks and plans again.
    Retrying { attempt: u32, of: u32, why: String },
    /// No record of the serviceset: acting on its containers by label.
    NoRecord {
        serviceset: ServicesetName,
        state_dir: PathBuf,
    },
    /// The daemon found a container away from its record: what the plan
    /// does about it, and why (in JSON, `reason` as text and `reason_code`).
    Drift {
        container: String,
        action: &'static str,
        #[serde(flatten, serialize_with = "plan::reason_and_code")]
        reason: plan::Reason,
    },
    /// The image cleanup removed (untagged) an image.
    ImageRemoved { reference: String },
    /// Room for a pull on Docker's data root, and the verdict.
    PullSpace {
        space: plan::space::Space,
        fit: plan::space::Fit,
    },
    /// Something went wrong that does not fail the operation.
    Warning { message: String },
}

pub type Sink<'a> = &'a (dyn Fn(Event) + Sync);

/// The serviceset an operation acts on, with its containers and graph.
pub struct Target {
    pub name: ServicesetName,
    pub expanded: Expanded,
    pub graph: Graph,
    /// Taken from the record (secret values are digests there), not a file.
    pub from_record: bool,
}

impl Target {
    /// From a loaded file.
    pub fn from_file(name: ServicesetName, expanded: Expanded, graph: Graph) -> Target {
        Target {
            name,
            expanded,
            graph,
            from_record: false,
        }
    }

    /// From the record of `name`; with none (a first deploy that failed
    /// leaves containers but no record), its containers by label, without
    /// dependency order — an operator tearing it down need not have the file.
    pub fn from_record(
        state: &StateDir,
        name: &ServicesetName,
        sink: Sink,
    ) -> Result<Target, Error> {
        if let Some(record) = state.load(name)? {
            let graph = Graph::build(&record.expanded)?;
            return Ok(Target {
                name: name.clone(),
                expanded: record.expanded,
                graph,
                from_record: true,
            });
        }
        sink(Event::NoRecord {
            serviceset: name.clone(),
            state_dir: state.root().to_path_buf(),
        });
        let expanded = Expanded {
            serviceset: name.to_string(),
            containers: Vec::new(),
            cron: Vec::new(),
            secrets: Default::default(),
        };
        let graph = Graph::build(&expanded)?;
        Ok(Target {
            name: name.clone(),
            expanded,
            graph,
            from_record: true,
        })
    }
}

/// The containers the last `start` applied, to name changed fields.
pub fn recorded_specs(
    state: &StateDir,
    serviceset: &ServicesetName,
) -> BTreeMap<String, ContainerSpec> {
    state
        .load(serviceset)
        .ok()
        .flatten()
        .map(specs_of)
        .unwrap_or_default()
}

/// A record's containers by name.
fn specs_of(record: state::Record) -> BTreeMap<String, ContainerSpec> {
    record
        .expanded
        .containers
        .into_iter()
        .map(|c| (c.name.clone(), c))
        .collect()
}

/// A record keeps secret values as digests: before creating a container
/// from one, take the values back from the serviceset's containers (backups
/// included) or from `env` (the caller's `-e`), matched by digest; refuse
/// if one is missing.
async fn put_back_secrets(
    ctx: &Ctx<'_>,
    name: &ServicesetName,
    expanded: &mut Expanded,
    plan: &Plan,
    env: Option<&[(String, String)]>,
) -> Result<(), Error> {
    let creates: Vec<&str> = plan
        .actions
        .iter()
        .filter(|a| matches!(a.action, ActionKind::Create | ActionKind::Recreate))
        .map(|a| a.container.as_str())
        .collect();
    if creates.is_empty() {
        return Ok(());
    }
    let mut candidates = ctx.engine.serviceset_env_values(name).await?;
    candidates.extend(env.unwrap_or_default().iter().map(|(_, v)| v.clone()));
    let missing = restore_secrets(expanded, candidates.iter().map(String::as_str), |c| {
        creates.contains(&c)
    });
    if missing.is_empty() {
        return Ok(());
    }
    let err = state::Error::SecretsNotStored {
        serviceset: name.clone(),
        missing,
    };
    Err(match env {
        Some(_) => Error::SecretsNotGiven(err),
        None => Error::State(err),
    })
}
