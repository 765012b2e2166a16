//! The unhealthy budget: a container that stays unhealthy longer than the
//! budget is restarted, with exponential backoff between restarts and a cap
//! on how many; Docker's own restart policy only acts on exits.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// After this many restarts the daemon stops trying and says so.
pub const MAX_RESTARTS: u32 = 5;
const MAX_BACKOFF: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
struct Entry {
    since: Option<Instant>,
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
                restarts: 0,
                next_allowed: now,
            });
        e.since.get_or_insert(now);
    }

    pub fn healthy(&mut self, serviceset: &str, container: &str) {
        if let Some(e) = self
            .entries
            .get_mut(&(serviceset.to_owned(), container.to_owned()))
        {
            e.since = None;
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
        b.healthy("svc", "web");
        assert!(b.due(t0 + s(1000)).is_empty());
        let mut t = t0 + s(1000);
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
