//! `export`: an expanded serviceset in another orchestrator's terms, for
//! when one host is outgrown. It reads the model `platform` and `graph`
//! produce, talks to nothing, and prints nothing: `kubernetes::export`
//! returns typed objects, the `render` command prints them.
//!
//! What cannot be expressed is an [`Error`] that names the container and
//! the way out; what has no equivalent but changes little (a CPU set, a
//! user given by name) is listed in an annotation of the result and
//! returned for the command to print on stderr.
//!
//! The Kubernetes export (and the k8s-openapi crate) is the cargo feature
//! `kubernetes`, on by default; `--no-default-features` leaves it out.

#[cfg(feature = "kubernetes")]
pub mod kubernetes;

/// Why a serviceset cannot be expressed in the target's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{what} name `{name}` is not valid in Kubernetes ({rule}); {fix}")]
    Name {
        what: &'static str,
        name: String,
        rule: &'static str,
        fix: &'static str,
    },
    #[error(
        "`{container}` must start before the Pod's containers, as an init container, but it depends on `{dependency}`, which runs as a regular container: a Pod cannot express that order; move one of them to a serviceset of its own"
    )]
    Order {
        container: String,
        dependency: String,
    },
    #[error(
        "`{container}` mounts `{bind}`, a named Docker volume or an incomplete bind: a Pod here takes host paths only; write it as `/host/path:/container/path[:ro]`"
    )]
    Bind { container: String, bind: String },
    #[error(
        "`{first}` uses network mode `{first_mode}` but `{second}` uses `{second_mode}`: a Pod has one network namespace; give every container the same network_mode"
    )]
    MixedNetwork {
        first: String,
        first_mode: String,
        second: String,
        second_mode: String,
    },
    #[error(
        "cron entry `{entry}` of `{owner}` runs on `{schedule}`, which a CronJob cannot take: {why}"
    )]
    Schedule {
        owner: String,
        entry: String,
        schedule: String,
        why: &'static str,
    },
    #[error(
        "environment keys `{first}` and `{second}` would both be `{key}` in the Secret, and one value would be lost: rename one of them"
    )]
    SecretKey {
        /// The declared container (a sidecar's owner) and its field.
        at: (String, String),
        first: String,
        second: String,
        key: String,
    },
}

impl Error {
    /// The declared container and the field of the serviceset file the
    /// error is about, when it is about one.
    pub fn place(&self) -> Option<(&str, &str)> {
        match self {
            Error::Schedule { owner, .. } => Some((owner, "cron")),
            Error::SecretKey { at, .. } => Some((&at.0, &at.1)),
            _ => None,
        }
    }
}
