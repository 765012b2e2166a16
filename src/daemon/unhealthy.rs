//! The unhealthy budget: a container that stays unhealthy longer than the
//! budget is restarted, with exponential backoff between restarts and a cap
//! on how many; Docker's own restart policy only acts on exits. A container
//! healthy for [`HEALTHY_RESET`] without a break starts afresh: its count
//! and backoff are forgotten.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// After this many restarts the daemon stops trying and says so.
pub const MAX_RESTARTS: u32 = 5;
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// Healthy this long in one stretch: past restarts no longer count.
pub const HEALTHY_RESET: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
struct Entry {
    /// Unhealthy since.
    since: Option<Instant>,
    /// Healthy since (the last turn to healthy, or start).
    healthy_since: Option<Instant>,
    restarts: u32,
    next_allowed: Instant,
}

#[derive(Debug)]
pub struct Budget {
    budget: Duration,
    entries: HashMap<(String, String), Entry>,
}

/// What the daemon should do about one container now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Restart {
        serviceset: String,
        container: String,
        restarts: u32,
    },
    GiveUp {
        serviceset: String,
        container: String,
    },
}

impl Budget {
    pub fn new(budget: Duration) -> Budget {
        Budget {
            budget,
            entries: HashMap::new(),
        }
    }

    pub fn unhealthy(&mut self, serviceset: &str, container: &str, now: Instant) {
        let e = self
            .entries
            .entry((serviceset.to_owned(), container.to_owned()))
            .or_insert(Entry {
                since: None,
                healthy_since: None,
                restarts: 0,
                next_allowed: now,
            });
        let healthy_for = e.healthy_since.take().map(|h| now.duration_since(h));
        if healthy_for.is_some_and(|d| d >= HEALTHY_RESET) {
            e.restarts = 0;
            e.next_allowed = now;
        }
        e.since.get_or_insert(now);
    }

    pub fn healthy(&mut self, serviceset: &str, container: &str, now: Instant) {
        if let Some(e) = self
            .entries
            .get_mut(&(serviceset.to_owned(), container.to_owned()))
        {
            e.since = None;
            e.healthy_since.get_or_insert(now);
        }
    }

    /// Containers over budget now; each is counted as restarted.
    pub fn due(&mut self, now: Instant) -> Vec<Verdict> {
        let mut out = Vec::new();
        for ((s, c), e) in &mut self.entries {
            let Some(since) = e.since else { continue };
            if now < since + self.budget || now < e.next_allowed {
                continue;
            }
            if e.restarts >= MAX_RESTARTS {
                e.since = None;
                out.push(Verdict::GiveUp {
                    serviceset: s.clone(),
                    container: c.clone(),
                });
                continue;
            }
            e.restarts += 1;
            e.since = Some(now);
            let backoff = self
                .budget
                .saturating_mul(1 << e.restarts.min(16))
                .min(MAX_BACKOFF);
            e.next_allowed = now + backoff;
            out.push(Verdict::Restart {
                serviceset: s.clone(),
                container: c.clone(),
                restarts: e.restarts,
            });
        }
        out.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_after_the_budget_with_backoff_then_gives_up() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut b = Budget::new(s(10));
        b.unhealthy("svc", "web", t0);
        assert!(b.due(t0 + s(9)).is_empty());
        assert_eq!(
            b.due(t0 + s(10)),
            [Verdict::Restart {
                serviceset: "svc".into(),
                container: "web".into(),
                restarts: 1
            }]
        );
        // Still unhealthy: the next restart waits for the backoff (20 s), not just the budget.
        assert!(b.due(t0 + s(25)).is_empty());
        assert_eq!(b.due(t0 + s(31)).len(), 1);
        // Healthy again: nothing is due however long it runs.
        b.healthy("svc", "web", t0 + s(40));
        assert!(b.due(t0 + s(599)).is_empty());
        // Unhealthy again within 10 minutes of turning healthy: the count goes on.
        let mut t = t0 + s(600);
        b.unhealthy("svc", "web", t);
        let mut verdicts = Vec::new();
        for _ in 0..20 {
            t += s(700);
            verdicts.extend(b.due(t));
        }
        assert!(
            matches!(verdicts.last(), Some(Verdict::GiveUp { .. })),
            "{verdicts:?}"
        );
        assert_eq!(verdicts.len() as u32, MAX_RESTARTS - 2 + 1);
    }
}

#[cfg(test)]
mod reset_tests {
    use super::*;

    fn restart(n: u32) -> Verdict {
        Verdict::Restart {
            serviceset: "svc".into(),
            container: "web".into(),
            restarts: n,
        }
    }

    /// Regression: after five restarts over a container's whole lifetime
    /// the daemon never restarted it again, however long it ran healthy.
    #[test]
    fn the_unhealthy_budget_never_resets() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut b = Budget::new(s(10));
        let mut t = t0;
        // Five bad spells, each a restart, each followed by a short healthy one.
        for n in 1..=MAX_RESTARTS {
            b.unhealthy("svc", "web", t);
            t += s(700); // past any backoff
            assert_eq!(b.due(t), [restart(n)]);
            t += s(1);
            b.healthy("svc", "web", t);
            t += s(60);
        }
        // Healthy for 9 minutes only: still over the cap.
        b.unhealthy("svc", "web", t);
        t += s(700);
        assert!(matches!(b.due(t)[..], [Verdict::GiveUp { .. }]));
        b.healthy("svc", "web", t);
        t += HEALTHY_RESET - s(60);
        b.unhealthy("svc", "web", t);
        t += s(700);
        assert!(matches!(b.due(t)[..], [Verdict::GiveUp { .. }]));
        // Healthy for 10 minutes in one stretch: it starts afresh.
        b.healthy("svc", "web", t);
        t += HEALTHY_RESET;
        b.unhealthy("svc", "web", t);
        assert!(b.due(t + s(9)).is_empty(), "the budget still applies");
        assert_eq!(b.due(t + s(10)), [restart(1)]);
    }
}
