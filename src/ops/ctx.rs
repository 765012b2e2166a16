//! What an operation runs with ([`Ctx`]: the Docker connection, the state
//! dir, the deadline, the abort flag, the sink, the deploy log entry under
//! way) and how a caller makes one ([`Ctx::connect`], [`Options`]); the
//! lock and list a `start` takes while its file loads ([`Early`]).

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{DEFAULT_TIMEOUT, Error, Event, Sink, journal};
use crate::engine::{self, Deadline, Engine};
use crate::name::ServicesetName;
use crate::plan;
use crate::state::{self, HostLock, StateDir};

/// Connect speaking the API version remembered in the state dir for this
/// `DOCKER_HOST` (no version round trip), remembering what is negotiated.
pub async fn connect_remembering(state: &StateDir) -> Result<Engine, crate::engine::Error> {
    let endpoint = crate::engine::endpoint();
    let known = state.api_version(&endpoint);
    let keeper = state.clone();
    let remember: crate::engine::Remember =
        std::sync::Arc::new(move |v: &str| keeper.remember_api_version(&endpoint, v));
    Engine::connect_known(known.as_deref(), remember).await
}

/// What every operation runs with: the Docker connection (bounded by the
/// deadline), the state dir, the deadline, the abort flag, the sink, and
/// the deploy log entry of the operation under way. Made by
/// [`Ctx::connect`] (a command) or [`Ctx::with_engine`] (the daemon, which
/// keeps one connection); only `ops` reads it.
pub struct Ctx<'a> {
    pub(super) engine: Engine,
    pub(super) state: StateDir,
    pub(super) deadline: Instant,
    /// Flips to true on SIGTERM/SIGINT (or the daemon's shutdown).
    pub(super) abort: watch::Receiver<bool>,
    pub(super) sink: Sink<'a>,
    /// `--no-drain`: stops do not wait (and say so).
    pub(super) no_drain: bool,
    /// The deploy log entry of the operation under way ([`journal::Slot::hold`]).
    pub(super) journal: journal::Slot,
}

/// How an operation runs, beyond where it reports: the bound on the whole
/// of it, and whether its stops drain first.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Every Docker call, the lock wait and the gates end within it
    /// (default [`DEFAULT_TIMEOUT`]).
    pub timeout: Option<Duration>,
    /// `--no-drain`: stops do not wait (and say so).
    pub no_drain: bool,
}

impl<'a> Ctx<'a> {
    /// Connect to Docker (remembering its API version in `state`) for one
    /// operation run with `options`.
    pub async fn connect(
        state: StateDir,
        options: Options,
        abort: watch::Receiver<bool>,
        sink: Sink<'a>,
    ) -> Result<Ctx<'a>, Error> {
        let engine = connect_remembering(&state).await?;
        Ok(Ctx::with_engine(engine, state, options, abort, sink))
    }

    /// A context on a connection already made: every call on it is bounded
    /// by `options.timeout` from now.
    pub fn with_engine(
        engine: Engine,
        state: StateDir,
        options: Options,
        abort: watch::Receiver<bool>,
        sink: Sink<'a>,
    ) -> Ctx<'a> {
        let bound = Deadline::after(options.timeout.unwrap_or(DEFAULT_TIMEOUT));
        Ctx {
            engine: engine.with_deadline(bound),
            state,
            deadline: bound.at,
            abort,
            sink,
            no_drain: options.no_drain,
            journal: journal::Slot::default(),
        }
    }

    /// Take the serviceset's host lock for `operation`, waiting until `until`.
    pub(super) async fn lock(
        &self,
        name: &ServicesetName,
        operation: &str,
        until: Instant,
    ) -> Result<HostLock, state::Error> {
        self.state
            .lock(name, operation, until, |holder| {
                (self.sink)(Event::WaitingForLock {
                    serviceset: name.clone(),
                    holder: holder.to_owned(),
                })
            })
            .await
    }

    pub(super) fn step(&self) -> impl Fn(engine::Event) + Sync + '_ {
        |e| {
            self.journal.note(&e);
            (self.sink)(Event::Step(e))
        }
    }
}

/// A serviceset's lock taken before its file is loaded, with the one list
/// call already under way beneath it ([`Ctx::observe_early`]): `start`
/// plans on that answer, so Docker's answer and the parsing of the file
/// overlap instead of adding up.
pub struct Early {
    pub(super) name: ServicesetName,
    pub(super) lock: HostLock,
    pub(super) observing: Observing,
}

/// Docker's list of containers, being fetched; dropped unused, it is
/// abandoned.
pub(crate) struct Observing(Option<JoinHandle<Result<Vec<plan::Observed>, engine::Error>>>);

impl Observing {
    /// The answer; a task that did not finish (it cannot panic, but it can
    /// be cancelled) is asked again.
    pub(super) async fn take(
        mut self,
        engine: &Engine,
    ) -> Result<Vec<plan::Observed>, engine::Error> {
        match self.0.take() {
            Some(task) => match task.await {
                Ok(listed) => listed,
                Err(_) => engine.list(None).await,
            },
            None => engine.list(None).await,
        }
    }
}

impl Drop for Observing {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

impl Ctx<'_> {
    /// Take `name`'s lock for `operation` if it is free right now, and start
    /// the list call under it. `None` if another operation holds the lock
    /// (or the lock file cannot be opened): the operation then locks, and
    /// says why it waits, as usual. Nothing is observed without the lock.
    pub fn observe_early(&self, name: &ServicesetName, operation: &str) -> Option<Early> {
        let lock = self.state.try_lock(name, operation).ok().flatten()?;
        let engine = self.engine.clone();
        let task = tokio::spawn(async move { engine.list(None).await });
        Some(Early {
            name: name.clone(),
            lock,
            observing: Observing(Some(task)),
        })
    }
}
