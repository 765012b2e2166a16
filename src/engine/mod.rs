//! `engine`: the only module that talks to Docker (through bollard).
//!
//! [`Engine`] wraps the client with the calls telefig needs, each returning
//! a typed [`Error`] that names the container or image and Docker's answer.
//! Every call runs under one limit on concurrent calls and the operation's
//! deadline (`bounds`). Registry credentials come from `registry`
//! (found as the docker CLI finds them) and go to dockerd with a pull.
//! [`execute`] walks a [`Plan`](crate::plan::Plan) over the graph: it pulls,
//! stops, creates, starts, waits for gates (from the events stream, see
//! [`gate`]) and rolls back, making no decision the plan did not make.

mod bounds;
mod details;
mod docker;
pub mod drain;
pub mod events;
pub mod execute;
pub mod gate;
mod host;
pub mod images;
pub mod live;
mod observe;
pub mod pull;
mod registry;
pub mod status;
pub mod stop;
mod update;
mod version;

pub use bounds::{CONCURRENT_CALLS, Deadline};
pub use details::ContainerDetails;
pub use docker::{Engine, LogChunk};
pub use execute::{Event, Outcome, Report};
pub use host::{ContainerRestart, HostFacts, SignedDuration, endpoint};
pub use registry::RegistryAnswer;
pub use version::{ApiVersion, Remember};

use std::time::Duration;

/// What went wrong talking to Docker, and on what.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // The Docker error is folded into the message (not a `#[source]`), so
    // the printed chain says it once.
    #[error(
        "cannot reach the Docker Engine at {endpoint}: {}; is dockerd running, and is DOCKER_HOST right?",
        root_cause(.source)
    )]
    Connect {
        endpoint: String,
        source: bollard::errors::Error,
    },
    #[error("docker {op} {target} failed: {}", docker_message(.source))]
    Docker {
        op: &'static str,
        target: String,
        source: bollard::errors::Error,
    },
    #[error("could not pull {image}: {}; check the registries in the platform file and that the tag exists", .attempts.join("; "))]
    Pull {
        image: String,
        attempts: Vec<String>,
    },
    #[error("image {image} is not present and --pull never forbids pulling it")]
    ImageMissing { image: String },
    #[error("{container} did not become {gate}: {why}")]
    Gate {
        container: String,
        gate: &'static str,
        why: String,
    },
    #[error("interrupted by a signal; nothing half-created was left behind, re-run to converge")]
    Interrupted,
    #[error("timed out after {}s ({what}); raise --timeout or look at the container's logs", .after.as_secs())]
    Timeout { what: String, after: Duration },
    #[error(
        "timed out {} {target}: its {}s deadline passed while Docker was still at it; {}",
        bounds::doing(op), .after.as_secs(), bounds::left_behind(op)
    )]
    Deadline {
        op: &'static str,
        target: String,
        after: Duration,
    },
    #[error("{0} container(s) failed: {1}")]
    Failed(usize, String),
    /// What the plan refuses to touch, found by the executor (a name taken
    /// after the plan looked, `plan::name_conflict`).
    #[error(transparent)]
    Refused(#[from] crate::plan::Error),
}

impl Error {
    /// Whether planning afresh may succeed: the container changed or
    /// vanished under us (404, 409, or a 500 about its files — dockerd
    /// still finishing a killed client's request), or dockerd is restarting.
    pub fn is_transient(&self) -> bool {
        use bollard::errors::Error as B;
        match self {
            Error::Docker { source, .. } => match source {
                B::DockerResponseServerError { status_code, .. } => {
                    matches!(status_code, 404 | 409 | 500)
                }
                B::HyperResponseError { .. }
                | B::HyperLegacyError { .. }
                | B::IOError { .. }
                | B::SocketNotFoundError(_)
                | B::RequestTimeoutError => true,
                _ => false,
            },
            Error::Connect { .. } => true,
            _ => false,
        }
    }
}

/// Docker's own message, without bollard's wrapping.
fn docker_message(err: &bollard::errors::Error) -> String {
    match err {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => {
            format!("{message} (HTTP {status_code})")
        }
        bollard::errors::Error::HyperLegacyError { .. }
        | bollard::errors::Error::HyperResponseError { .. }
        | bollard::errors::Error::IOError { .. }
        | bollard::errors::Error::SocketNotFoundError(_) => {
            format!(
                "the Docker Engine did not answer ({}); is dockerd running?",
                root_cause(err)
            )
        }
        other => other.to_string(),
    }
}

/// The innermost error's message: the one that says what actually happened.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// Whether Docker answered with this HTTP status.
pub(crate) fn status_is(err: &bollard::errors::Error, code: u16) -> bool {
    matches!(err, bollard::errors::Error::DockerResponseServerError { status_code, .. } if *status_code == code)
}
