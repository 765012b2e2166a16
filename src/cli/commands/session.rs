//! What the Docker-facing commands share: which serviceset, signal
//! handling, and progress lines (the sink `ops` reports to).

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::cli::UsageError;
use crate::cli::args::Global;
use crate::cli::load;
use crate::cli::output::{errln, outln};
use telefig::engine::Event;
use telefig::ops::load::Loaded;
use telefig::ops::{self, Sink, Target};
use telefig::plan;
use telefig::state::StateDir;

/// The serviceset to act on: from `-c FILE`, else the record of `--name`
/// (or, with no record, its containers by label).
pub fn target(g: &Global, sink: Sink) -> anyhow::Result<Target> {
    if g.config.is_some() {
        let Loaded {
            name,
            expanded,
            graph,
            ..
        } = load::load(g)?;
        return Ok(Target::from_file(name, expanded, graph));
    }
    let name = g.name.as_ref().ok_or_else(|| {
        UsageError(
            "name the serviceset: pass -c FILE, or --name NAME of one telefig started".into(),
        )
    })?;
    Ok(Target::from_record(
        &StateDir::new(&g.state_dir),
        name,
        sink,
    )?)
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
        errln!(
            "received {name}: finishing the Docker call in flight, then stopping (a second signal exits at once)"
        );
        // Keep the sender alive so waiters see the flag rather than a closed channel.
        let _ = tx.send(true);
        let again = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        let left = left();
        errln!("error: received {again} again: exiting now, without finishing; {left}");
        errln!("telefig: failed (exit 1): interrupted twice; {left}");
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

    /// Abort on SIGTERM/SIGINT; a second signal exits saying what is left.
    pub fn abort_on_signal(
        self: &Arc<Self>,
    ) -> (watch::Receiver<bool>, tokio::task::JoinHandle<()>) {
        let me = self.clone();
        abort_on_signal(move || me.left())
    }

    /// An event from `ops`: the executor's steps go to stdout (not with
    /// `--json`), notes about the operation to stderr.
    pub fn record(&self, event: ops::Event) {
        match event {
            ops::Event::Step(e) => self.step(e),
            ops::Event::WaitingForLock { serviceset, holder } => {
                errln!("waiting for the lock on serviceset `{serviceset}`, held by {holder}")
            }
            ops::Event::Retrying { attempt, of, why } => {
                errln!("retrying (attempt {attempt} of {of}): {why}")
            }
            ops::Event::NoRecord {
                serviceset,
                state_dir,
            } => errln!(
                "no record of serviceset `{serviceset}` in {}: acting on its containers by label, without dependency order (pass -c FILE for the order)",
                state_dir.display()
            ),
            ops::Event::Drift { .. } => {}
            ops::Event::ImageRemoved { reference } if !self.quiet => {
                outln!("removed    image {reference} (image cleanup)")
            }
            ops::Event::ImageRemoved { .. } => {}
            ops::Event::PullSpace {
                fit: plan::space::Fit::Fits,
                ..
            } => {}
            ops::Event::PullSpace { space, .. } => {
                errln!("not enough disk space for the pull: it {space}; cleaning up images first")
            }
            ops::Event::Warning { message } => errln!("warning: {message}"),
        }
    }

    fn step(&self, event: Event) {
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
                Event::BakeStarted { .. } => waiting.clear(),
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
                    errln!("… waiting for {} to pass its gate", slow.join(", "));
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
        Event::Drained {
            container,
            outcome: telefig::engine::drain::DrainOutcome::Skipped,
            ..
        } => format!("not draining {container}: --no-drain"),
        Event::Drained {
            container,
            millis,
            outcome,
        } => format!(
            "draining   {container}: {:.1} s, {}",
            *millis as f64 / 1000.0,
            outcome.as_str()
        ),
        Event::KeptAside { container, aside } => format!("kept aside {container} as {aside}"),
        Event::Created { container } => format!("created    {container}"),
        Event::Updated { container } => format!("updated    {container} in place"),
        Event::Started { container } => format!("started    {container}"),
        Event::Passed {
            container,
            gate,
            millis,
        } => format!("{gate:<10} {container} after {millis} ms"),
        Event::Failed { container, why, .. } => format!("FAILED     {container}: {why}"),
        Event::BakeStarted { containers, millis } => format!(
            "baking     {} for {:.1} s",
            containers.join(", "),
            *millis as f64 / 1000.0
        ),
        Event::BakePassed { millis } => {
            format!("baked      after {:.1} s", *millis as f64 / 1000.0)
        }
        Event::BakeFailed { container, why, .. } => {
            format!("FAILED     {container}: {why} (bake)")
        }
        Event::PutBack { container } => format!("put back   {container} (previous version)"),
        Event::RolledBack { container } => {
            format!("rolled back {container} to its previous version")
        }
    };
    outln!("{line}");
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
