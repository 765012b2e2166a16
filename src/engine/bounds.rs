//! The bounds on every Docker call telefig makes: how many at once, and by
//! when.
//!
//! One [`Limit`] per process keeps the work telefig hands dockerd within
//! what a small host's daemon takes at once: every mutating call (pull,
//! create, start, stop, rename, remove, tag) and every inspect holds a
//! permit while Docker works on it, whether it comes from a start walk, a
//! rollback or the daemon's repairs. The operation's deadline (`--timeout`)
//! bounds each call too, the wait for a permit included, so that nothing
//! outlives it: a call still running at the deadline is abandoned with a
//! [`Error::Deadline`] that says what was in flight and what it may have
//! left behind.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::Error;

/// Calls in flight against dockerd at once: enough to start a serviceset's
/// independent containers together, few enough for dockerd on two cores.
pub const CONCURRENT_CALLS: usize = 8;

/// The permits shared by every clone of an [`Engine`](super::Engine).
#[derive(Clone)]
pub(super) struct Limit(Arc<Semaphore>);

impl Default for Limit {
    fn default() -> Limit {
        Limit(Arc::new(Semaphore::new(CONCURRENT_CALLS)))
    }
}

/// When calls must have answered: the operation's deadline, and the
/// `--timeout` it came from (for the message).
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    pub at: Instant,
    pub budget: Duration,
}

impl Deadline {
    /// `budget` from now.
    pub fn after(budget: Duration) -> Deadline {
        Deadline {
            at: Instant::now()
                .checked_add(budget)
                .unwrap_or_else(far_future),
            budget,
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

/// Run one Docker call under a permit and the deadline.
pub(super) async fn bounded<F: Future>(
    limit: &Limit,
    deadline: Option<Deadline>,
    op: &'static str,
    target: &str,
    call: F,
) -> Result<F::Output, Error> {
    let work = async {
        let _permit = limit.0.acquire().await.expect("the limit is never closed");
        call.await
    };
    match deadline {
        None => Ok(work.await),
        Some(d) => tokio::time::timeout_at(d.at, work)
            .await
            .map_err(|_| Error::Deadline {
                op,
                target: target.to_owned(),
                after: d.budget,
            }),
    }
}

/// What a call abandoned at the deadline may have left, and what to do.
pub(super) fn left_behind(op: &str) -> &'static str {
    match op {
        "pull" | "tag" | "inspect image" => {
            "no container was changed; re-run to converge (raise --timeout if the registry is slow)"
        }
        "create" => {
            "the container may be left created but not started; re-running adopts or replaces it"
        }
        "start" => "the container may still be starting; re-running converges",
        "stop" => {
            "the container may still be stopping (Docker finishes on its own); re-running converges"
        }
        _ => "Docker may still finish it on its own; re-running converges",
    }
}

/// `pull` → `pulling`, for the message.
pub(super) fn doing(op: &str) -> String {
    match op {
        "stop" => "stopping".to_owned(),
        "tag" => "tagging".to_owned(),
        "inspect image" => "inspecting image".to_owned(),
        _ => format!("{}ing", op.trim_end_matches('e')),
    }
}
