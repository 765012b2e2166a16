//! The bounds on every Docker call telefig makes: how many at once, and by
//! when.
//!
//! One [`Limit`] per process keeps the work telefig hands dockerd within
//! what a small host's daemon takes at once: every mutating call (pull,
//! create, start, rename, remove, tag) and every inspect holds a permit
//! while Docker works on it, whether it comes from a start walk, a
//! rollback or the daemon's repairs. A stop holds a permit of its own
//! kind ([`CONCURRENT_STOPS`]): it is mostly a wait for the container to
//! leave within its grace period, not work for dockerd. The operation's deadline (`--timeout`)
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

/// Stops in flight at once, on permits of their own. Docker signals the
/// container and waits up to its grace period for it to leave: a stop
/// holding one of the [`CONCURRENT_CALLS`] permits held up every other call
/// for as long as the slowest container took, and let no more than 32
/// containers leave at once, which made `down` of 250 containers 1.3× the
/// engine's floor (64 stops at once; bench/NOTES-stop.md). Bounded all the
/// same: each is a connection to dockerd, and its clean-up is work.
pub const CONCURRENT_STOPS: usize = 64;

/// The permits shared by every clone of an [`Engine`](super::Engine).
#[derive(Clone)]
pub(super) struct Limit {
    calls: Arc<Semaphore>,
    stops: Arc<Semaphore>,
}

impl Limit {
    /// The permits `op` takes, and how many there are.
    fn for_op(&self, op: &str) -> (&Semaphore, usize) {
        if op == "stop" {
            (&self.stops, CONCURRENT_STOPS)
        } else {
            (&self.calls, CONCURRENT_CALLS)
        }
    }
}

/// Milliseconds with a fraction, for the trace.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Default for Limit {
    fn default() -> Limit {
        Limit {
            calls: Arc::new(Semaphore::new(CONCURRENT_CALLS)),
            stops: Arc::new(Semaphore::new(CONCURRENT_STOPS)),
        }
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

/// Run one Docker call under a permit and the deadline. With
/// `TELEFIG_LOG=telefig::engine=trace` each call logs when it begins (the
/// calls of its kind then in flight, how long it waited for a permit) and
/// when Docker answered: `bench/down-trace` draws its timeline from these lines.
pub(super) async fn bounded<F: Future>(
    limit: &Limit,
    deadline: Option<Deadline>,
    op: &'static str,
    target: &str,
    call: F,
) -> Result<F::Output, Error> {
    let work = async {
        let asked = Instant::now();
        let (permits, size) = limit.for_op(op);
        let _permit = permits.acquire().await.expect("the limit is never closed");
        let began = Instant::now();
        tracing::trace!(
            op,
            target,
            in_flight = size - permits.available_permits(),
            queued_ms = ms(began - asked),
            "docker call begins"
        );
        let out = call.await;
        tracing::trace!(
            op,
            target,
            took_ms = ms(began.elapsed()),
            "docker call ends"
        );
        out
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

    /// The most calls of `op` running at once, of `3 × bound` sent together.
    async fn most_at_once(op: &'static str, bound: usize) -> usize {
        let limit = Limit::default();
        let (running, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let (running, most) = (&running, &most);
        let calls = (0..3 * bound).map(|i| {
            bounded(&limit, None, op, "c", async move {
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
        assert_eq!(done.len(), 3 * bound);
        assert!(done.iter().all(Result::is_ok));
        most.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn no_more_than_the_limit_run_at_once() {
        assert_eq!(
            most_at_once("create", CONCURRENT_CALLS).await,
            CONCURRENT_CALLS
        );
        assert_eq!(
            most_at_once("remove", CONCURRENT_CALLS).await,
            CONCURRENT_CALLS
        );
        assert_eq!(
            most_at_once("stop", CONCURRENT_STOPS).await,
            CONCURRENT_STOPS
        );
    }

    /// `down` of 250 containers: 64 stops overlap, as the floor's do, and
    /// stops waiting out grace periods hold up no other call.
    #[tokio::test]
    async fn stops_waiting_for_containers_to_leave_hold_up_no_other_call() {
        const { assert!(CONCURRENT_STOPS >= 64, "the floor stops 64 at once") };
        let limit = Limit::default();
        let (release, wait) = tokio::sync::watch::channel(false);
        let stops: Vec<_> = (0..CONCURRENT_STOPS)
            .map(|_| {
                let limit = limit.clone();
                let mut wait = wait.clone();
                tokio::spawn(async move {
                    bounded(&limit, None, "stop", "c", async move {
                        wait.wait_for(|go| *go).await.map(|_| ())
                    })
                    .await
                })
            })
            .collect();
        let all_stopping = async {
            while limit.stops.available_permits() > 0 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), all_stopping)
            .await
            .expect("every stop has a permit at once");
        // Every stop permit is held; a create and a remove still go at once.
        for op in ["create", "remove", "inspect"] {
            let call = bounded(&limit, None, op, "c", async {});
            tokio::time::timeout(Duration::from_secs(10), call)
                .await
                .unwrap_or_else(|_| panic!("{op} waited for the stops"))
                .unwrap();
        }
        release.send(true).unwrap();
        for s in stops {
            s.await.unwrap().unwrap().unwrap();
        }
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
            futures_util::future::join_all((0..CONCURRENT_STOPS).map(|_| limit.stops.acquire()))
                .await;
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
