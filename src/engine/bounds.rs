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

/// Calls in flight against dockerd at once: enough to start many
/// servicesets' independent containers together (a boot repair, a host of
/// 250 containers), with a bound all the same. Measured on two cores with
/// 250 containers probed every 200 ms: a cold start took 36.5 s with 8,
/// 27–30 s with 16, 23–24 s with 32, against 30 s for Compose (bench/RESULTS.md).
pub const CONCURRENT_CALLS: usize = 32;

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

/// Whether `op` only reads dockerd's own state (no registry, no change):
/// such a call answers in moments unless dockerd is wedged.
pub(super) fn is_read(op: &str) -> bool {
    matches!(op, "list" | "inspect" | "inspect image")
}

/// The deadline one call runs under: the operation's, and for a read, at
/// most `read_bound` from now.
pub(super) fn for_call(
    deadline: Option<Deadline>,
    read_bound: Option<Duration>,
    op: &str,
) -> Option<Deadline> {
    let read = read_bound.filter(|_| is_read(op)).map(Deadline::after);
    match (deadline, read) {
        (Some(d), Some(r)) if r.at < d.at => Some(r),
        (Some(d), _) => Some(d),
        (None, r) => r,
    }
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn no_more_than_the_limit_run_at_once() {
        let limit = Limit::default();
        let (running, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let (running, most) = (&running, &most);
        let calls = (0..3 * CONCURRENT_CALLS).map(|i| {
            bounded(&limit, None, "create", "c", async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                for _ in 0..10 {
                    tokio::task::yield_now().await;
                }
                running.fetch_sub(1, Ordering::SeqCst);
                i
            })
        });
        let done = futures_util::future::join_all(calls).await;
        assert_eq!(done.len(), 3 * CONCURRENT_CALLS);
        assert!(done.iter().all(Result::is_ok));
        assert_eq!(most.load(Ordering::SeqCst), CONCURRENT_CALLS);
    }

    #[tokio::test]
    async fn a_read_is_bounded_by_the_read_bound_even_far_from_the_deadline() {
        let limit = Limit::default();
        let far = Some(Deadline::after(Duration::from_secs(3600)));
        let short = Some(Duration::from_millis(50));
        let list = for_call(far, short, "list");
        assert_eq!(list.map(|d| d.budget), short);
        let err = bounded(
            &limit,
            list,
            "list",
            "containers",
            std::future::pending::<()>(),
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("timed out listing containers"),
            "{err}"
        );
        // A change, or a pull, keeps the operation's deadline.
        for op in ["pull", "create", "stop", "distribution inspect"] {
            let d = for_call(far, short, op).unwrap();
            assert_eq!(d.budget, Duration::from_secs(3600), "{op}");
        }
        // Without a deadline, a read still has its bound; anything else none.
        assert_eq!(for_call(None, short, "inspect").map(|d| d.budget), short);
        assert!(for_call(None, short, "start").is_none());
        // A deadline nearer than the read bound wins.
        let near = Some(Deadline::after(Duration::from_millis(10)));
        let d = for_call(near, Some(Duration::from_secs(60)), "inspect").unwrap();
        assert_eq!(d.budget, Duration::from_millis(10));
    }

    #[tokio::test]
    async fn a_call_still_running_at_the_deadline_is_abandoned_and_says_what() {
        let limit = Limit::default();
        let deadline = Deadline::after(Duration::from_millis(50));
        let err = bounded(
            &limit,
            Some(deadline),
            "pull",
            "reg:5000/web:v1",
            std::future::pending::<()>(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("timed out pulling reg:5000/web:v1"),
            "{err}"
        );
        assert!(err.contains("no container was changed"), "{err}");
        // Waiting for a permit counts against the deadline too.
        let held: Vec<_> =
            futures_util::future::join_all((0..CONCURRENT_CALLS).map(|_| limit.0.acquire())).await;
        let err = bounded(
            &limit,
            Some(Deadline::after(Duration::from_millis(50))),
            "stop",
            "web",
            async {},
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("timed out stopping web"), "{err}");
        drop(held);
    }

    #[test]
    fn words() {
        let cases = [
            ("pull", "pulling"),
            ("create", "creating"),
            ("start", "starting"),
            ("stop", "stopping"),
            ("rename", "renaming"),
            ("remove", "removing"),
            ("tag", "tagging"),
            ("inspect", "inspecting"),
            ("list", "listing"),
        ];
        for (op, want) in cases {
            assert_eq!(doing(op), want);
        }
    }
}
