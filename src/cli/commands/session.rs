//! What the Docker-facing commands share: the deadline, the engine
//! connection, the host lock, signal handling, and progress lines.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::cli::UsageError;
use crate::cli::args::Global;
use crate::cli::load::{self, Loaded};
use crate::engine::{Deadline, Engine, Event};
use crate::graph::Graph;
use crate::name::ServicesetName;
use crate::platform::Expanded;
use crate::state::{HostLock, StateDir};

/// The default bound on one operation, under the deploy agent's 30-minute hook limit.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

pub struct Session {
    pub engine: Engine,
    pub state: StateDir,
    pub deadline: Instant,
    _lock: Option<HostLock>,
}

impl Session {
    /// Connect to Docker and, when `lock` names a serviceset, take its host
    /// lock for `operation` (the subcommand, which the lock file names).
    pub async fn open(
        g: &Global,
        timeout: Option<Duration>,
        lock: Option<&ServicesetName>,
        operation: &str,
    ) -> anyhow::Result<Session> {
        // Every Docker call is bounded by it too, not only the lock wait and the gates.
        let bound = Deadline::after(timeout.unwrap_or(DEFAULT_TIMEOUT));
        let deadline = bound.at;
        let state = StateDir::new(&g.state_dir);
        let engine = connect(&state).await?.with_deadline(bound);
        let lock = match lock {
            Some(name) => Some(
                state
                    .lock(name, operation, deadline, |holder| {
                        eprintln!("waiting for the lock on serviceset `{name}`, held by {holder}");
                    })
                    .await?,
            ),
            None => None,
        };
        Ok(Session {
            engine,
            state,
            deadline,
            _lock: lock,
        })
    }
}

/// Connect speaking the API version remembered for this `DOCKER_HOST`
/// (no version round trip), remembering whatever is negotiated.
pub async fn connect(state: &StateDir) -> Result<Engine, crate::engine::Error> {
    let endpoint = crate::engine::endpoint();
    let known = state.api_version(&endpoint);
    let keeper = state.clone();
    let remember: crate::engine::Remember =
        Arc::new(move |v: &str| keeper.remember_api_version(&endpoint, v));
    Engine::connect_known(known.as_deref(), remember).await
}

/// The serviceset to act on: from `-c FILE`, else the record of `--name`.
pub fn target(g: &Global) -> anyhow::Result<(ServicesetName, Expanded, Graph)> {
    if g.config.is_some() {
        let Loaded {
            name,
            expanded,
            graph,
            ..
        } = load::load(g)?;
        return Ok((name, expanded, graph));
    }
    let name = g.name.as_ref().ok_or_else(|| {
        UsageError(
            "name the serviceset: pass -c FILE, or --name NAME of one telefig started".into(),
        )
    })?;
    match StateDir::new(&g.state_dir).load(name)? {
        Some(record) => {
            let graph = Graph::build(&record.expanded)?;
            Ok((name.clone(), record.expanded, graph))
        }
        None => {
            // A first deploy that failed leaves containers but no record; an
            // operator tearing it down by name should not need the file.
            eprintln!(
                "no record of serviceset `{name}` in {}: acting on its containers by label, without dependency order (pass -c FILE for the order)",
                g.state_dir.display()
            );
            let expanded = Expanded {
                serviceset: name.to_string(),
                containers: Vec::new(),
                cron: Vec::new(),
            };
            let graph = Graph::build(&expanded)?;
            Ok((name.clone(), expanded, graph))
        }
    }
}

/// A flag that turns true on SIGTERM or SIGINT. A second signal exits at
/// once (status 1), saying what `left` reports is left as is — a rollback
/// or a stop with a long grace period is not interruptible otherwise. Keep
/// the returned task alive for as long as the flag matters.
pub fn abort_on_signal(
    left: impl Fn() -> String + Send + 'static,
) -> (watch::Receiver<bool>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        eprintln!(
            "received {name}: finishing the Docker call in flight, then stopping (a second signal exits at once)"
        );
        // Keep the sender alive so waiters see the flag rather than a closed channel.
        let _ = tx.send(true);
        let again = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        let left = left();
        eprintln!("error: received {again} again: exiting now, without finishing; {left}");
        eprintln!("telefig: failed (exit 1): interrupted twice; {left}");
        std::process::exit(1);
    });
    (rx, task)
}

/// What an interrupted operation leaves as is, from its events: versions
/// kept aside and not put back, containers stopped and not started again.
#[derive(Debug, Default)]
pub struct LeftAsIs {
    aside: BTreeMap<String, String>,
    put_back: BTreeSet<String>,
    stopped: BTreeSet<String>,
}

impl LeftAsIs {
    pub fn record(&mut self, event: &Event) {
        match event {
            Event::KeptAside { container, aside } => {
                self.aside.insert(container.clone(), aside.clone());
            }
            Event::Stopped { container } => {
                self.stopped.insert(container.clone());
            }
            Event::Started { container } => {
                self.stopped.remove(container);
            }
            Event::PutBack { container } => {
                self.aside.remove(container);
                self.put_back.insert(container.clone());
            }
            Event::Passed { container, .. } | Event::RolledBack { container } => {
                self.aside.remove(container);
                self.put_back.remove(container);
            }
            _ => {}
        }
    }
}

impl std::fmt::Display for LeftAsIs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts: Vec<String> = self
            .aside
            .iter()
            .map(|(c, aside)| format!("the previous `{c}` is kept aside, stopped, as `{aside}`"))
            .collect();
        parts.extend(
            self.put_back
                .iter()
                .map(|c| format!("the previous `{c}` is back but has not passed its gate")),
        );
        let stopped: Vec<&str> = self
            .stopped
            .iter()
            .filter(|c| !self.aside.contains_key(*c) && !self.put_back.contains(*c))
            .map(String::as_str)
            .collect();
        if !stopped.is_empty() {
            parts.push(format!("stopped: {}", stopped.join(", ")));
        }
        if parts.is_empty() {
            parts.push("nothing was stopped or kept aside".into());
        }
        write!(
            f,
            "{}; re-run `telefig start` to converge",
            parts.join("; ")
        )
    }
}

/// Progress of an operation: one line per event for people (none with
/// `--json`), and, when stderr is a terminal, a note every few seconds on
/// what is still being waited for.
pub struct Progress {
    quiet: bool,
    waiting: Mutex<BTreeMap<String, std::time::Instant>>,
    left: Mutex<LeftAsIs>,
}

impl Progress {
    pub fn new(quiet: bool) -> Arc<Progress> {
        Arc::new(Progress {
            quiet,
            waiting: Mutex::default(),
            left: Mutex::default(),
        })
    }

    /// What is left as is, should the operation end now.
    pub fn left(&self) -> String {
        self.left
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .to_string()
    }

    pub fn record(&self, event: Event) {
        self.left
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(&event);
        {
            let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            match &event {
                Event::Started { container } => {
                    waiting.insert(container.clone(), std::time::Instant::now());
                }
                Event::Passed { container, .. } | Event::Failed { container, .. } => {
                    waiting.remove(container);
                }
                _ => {}
            }
        }
        if !self.quiet {
            print_event(&event);
        }
    }

    /// The periodic note, if stderr is a terminal.
    pub fn ticker(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        if self.quiet || !std::io::stderr().is_terminal() {
            return None;
        }
        let me = self.clone();
        Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(3)).await;
                let waiting = me.waiting.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let slow: Vec<String> = waiting
                    .iter()
                    .filter(|(_, since)| since.elapsed() >= Duration::from_secs(3))
                    .map(|(name, since)| format!("{name} ({}s)", since.elapsed().as_secs()))
                    .collect();
                if !slow.is_empty() {
                    eprintln!("… waiting for {} to pass its gate", slow.join(", "));
                }
            }
        }))
    }
}

/// One line per event, for people.
pub fn print_event(event: &Event) {
    let line = match event {
        Event::Pulled(p) if p.from != p.reference => {
            format!(
                "pulled     {} (from mirror {}) in {} ms",
                p.reference, p.from, p.millis
            )
        }
        Event::Pulled(p) => format!("pulled     {} in {} ms", p.reference, p.millis),
        Event::Removed { container, why } => format!("removed    {container} ({why})"),
        Event::Stopped { container } => format!("stopped    {container}"),
        Event::KeptAside { container, aside } => format!("kept aside {container} as {aside}"),
        Event::Created { container } => format!("created    {container}"),
        Event::Started { container } => format!("started    {container}"),
        Event::Passed {
            container,
            gate,
            millis,
        } => format!("{gate:<10} {container} after {millis} ms"),
        Event::Failed { container, why } => format!("FAILED     {container}: {why}"),
        Event::PutBack { container } => format!("put back   {container} (previous version)"),
        Event::RolledBack { container } => {
            format!("rolled back {container} to its previous version")
        }
    };
    println!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_an_interrupted_rollback_leaves_is_said() {
        let mut left = LeftAsIs::default();
        let stopped = |c: &str| Event::Stopped {
            container: c.into(),
        };
        left.record(&stopped("web-discovery"));
        left.record(&stopped("web"));
        left.record(&Event::KeptAside {
            container: "web".into(),
            aside: "web.previous-abc".into(),
        });
        assert_eq!(
            left.to_string(),
            "the previous `web` is kept aside, stopped, as `web.previous-abc`; stopped: web-discovery; re-run `telefig start` to converge"
        );
        left.record(&Event::PutBack {
            container: "web".into(),
        });
        left.record(&Event::Started {
            container: "web".into(),
        });
        assert_eq!(
            left.to_string(),
            "the previous `web` is back but has not passed its gate; stopped: web-discovery; re-run `telefig start` to converge"
        );
        left.record(&Event::RolledBack {
            container: "web".into(),
        });
        left.record(&Event::Started {
            container: "web-discovery".into(),
        });
        assert_eq!(
            left.to_string(),
            "nothing was stopped or kept aside; re-run `telefig start` to converge"
        );
    }
}
