//! Trying a failed re-gate again. When a dependency goes down, its
//! `healthy` dependents are stopped at once (see [`crate::ops::regate`]);
//! if Docker fails or does not answer, they would otherwise keep running
//! against a dead dependency until the next repair. [`RegateRetry`] decides
//! whether and when to try again: a few attempts, each pause twice the one
//! before, then it gives up and says so. Pure: the watcher keeps the list
//! of retries due and spawns them.

use std::time::Duration;

use tokio::time::Instant;

/// How a failed re-gate is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegateRetry {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The pause after the first failure; each later one is twice the last.
    pub first_pause: Duration,
    /// No pause is longer than this.
    pub max_pause: Duration,
}

/// What to do after a re-gate failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try again after this pause, as attempt `attempt`.
    Retry { attempt: u32, after: Duration },
    /// The failure is not one trying again can fix (bad input).
    Hopeless,
    /// Every attempt failed.
    GiveUp { attempts: u32 },
}

impl Default for RegateRetry {
    fn default() -> RegateRetry {
        RegateRetry {
            attempts: 4,
            first_pause: Duration::from_millis(500),
            max_pause: Duration::from_secs(10),
        }
    }
}

impl RegateRetry {
    /// Attempt `failed` (1 for the first) failed; `retryable` is false for
    /// a failure another attempt cannot fix (the record's graph is bad).
    pub fn after_failure(&self, failed: u32, retryable: bool) -> Next {
        if !retryable {
            return Next::Hopeless;
        }
        if failed >= self.attempts {
            return Next::GiveUp { attempts: failed };
        }
        let doublings = failed.saturating_sub(1).min(31);
        let after = self
            .first_pause
            .saturating_mul(1u32 << doublings)
            .min(self.max_pause);
        Next::Retry {
            attempt: failed + 1,
            after,
        }
    }
}

/// A re-gate to try again at `due`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub serviceset: String,
    pub dependency: String,
    pub attempt: u32,
    pub due: Instant,
}

/// Split `retries` into those due at `now` (returned) and those still waiting (kept).
pub fn take_due(retries: &mut Vec<Due>, now: Instant) -> Vec<Due> {
    let (due, waiting) = std::mem::take(retries)
        .into_iter()
        .partition(|r| r.due <= now);
    *retries = waiting;
    due
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_regate_is_tried_again_with_growing_pauses_then_given_up() {
        let policy = RegateRetry::default();
        let ms = Duration::from_millis;
        assert_eq!(
            policy.after_failure(1, true),
            Next::Retry {
                attempt: 2,
                after: ms(500)
            }
        );
        assert_eq!(
            policy.after_failure(2, true),
            Next::Retry {
                attempt: 3,
                after: ms(1000)
            }
        );
        assert_eq!(
            policy.after_failure(3, true),
            Next::Retry {
                attempt: 4,
                after: ms(2000)
            }
        );
        assert_eq!(policy.after_failure(4, true), Next::GiveUp { attempts: 4 });
        assert_eq!(policy.after_failure(9, true), Next::GiveUp { attempts: 9 });
    }

    #[test]
    fn pauses_are_capped_and_never_overflow() {
        let policy = RegateRetry {
            attempts: u32::MAX,
            first_pause: Duration::from_secs(1),
            max_pause: Duration::from_secs(10),
        };
        for failed in [5, 40, u32::MAX - 1] {
            let Next::Retry { after, .. } = policy.after_failure(failed, true) else {
                panic!("attempt {failed} is retried");
            };
            assert_eq!(after, Duration::from_secs(10));
        }
    }

    #[test]
    fn a_failure_no_attempt_can_fix_is_not_retried() {
        assert_eq!(
            RegateRetry::default().after_failure(1, false),
            Next::Hopeless
        );
    }

    #[test]
    fn only_due_retries_are_taken() {
        let now = Instant::now();
        let at = |dependency: &str, due| Due {
            serviceset: "shop".into(),
            dependency: dependency.into(),
            attempt: 2,
            due,
        };
        let mut list = vec![
            at("web", now),
            at("db", now + Duration::from_secs(1)),
            at("cache", now - Duration::from_secs(1)),
        ];
        let due = take_due(&mut list, now);
        assert_eq!(
            due,
            vec![at("web", now), at("cache", now - Duration::from_secs(1))]
        );
        assert_eq!(list, vec![at("db", now + Duration::from_secs(1))]);
    }
}
