//! `telefig events --json` followed on a thread: the lines it prints reach
//! the test through a channel, so a test waits for the event it wants with
//! a timeout and never blocks on a quiet stream. The follower is killed
//! when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running `telefig events --json` and the events it printed.
pub struct EventFollower {
    child: Child,
    lines: Receiver<String>,
    /// Every event read so far, for failure messages.
    seen: Vec<Value>,
}

impl EventFollower {
    /// Run `command` (a `telefig events --json …`), its stdout read line
    /// by line on a thread.
    pub fn spawn(mut command: Command) -> EventFollower {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        EventFollower {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first event from now on that `wanted` accepts, within `timeout`.
    /// `wanted` sees every event read on the way (in order), so it may also
    /// assert on or collect them. Panics on a line that is not JSON.
    pub fn next_where(
        &mut self,
        timeout: Duration,
        mut wanted: impl FnMut(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let event: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
                panic!("`telefig events --json` printed no JSON ({e}): {line}")
            });
            self.seen.push(event.clone());
            if wanted(&event) {
                return Some(event);
            }
        }
        None
    }

    /// Every event read so far, in order.
    pub fn seen(&self) -> &[Value] {
        &self.seen
    }

    /// Where (in [`seen`](Self::seen)) the first event from index `from`
    /// on that `wanted` accepts is.
    pub fn position_from(&self, from: usize, wanted: impl Fn(&Value) -> bool) -> Option<usize> {
        let later = self.seen.get(from..)?;
        later.iter().position(wanted).map(|i| from + i)
    }

    /// A break of `container` the daemon repairs, the last event seen being
    /// Docker's `gone` (`removed`, `stopped`) of it: where Docker's first
    /// event of the break is (`died` or `gone`, from index `from` on), and
    /// the daemon's `repaired` of the container, waited for up to `wait`
    /// or else one shown before `gone`.
    pub fn break_and_repair(
        &mut self,
        container: &str,
        gone: &str,
        from: usize,
        wait: Duration,
    ) -> (usize, Option<Value>) {
        let gone_at = self.seen.len().saturating_sub(1);
        let broke_at = self
            .position_from(from, |e| {
                e["container"] == container
                    && e["deploy"].is_null()
                    && (e["event"] == "died" || e["event"] == gone)
            })
            .unwrap_or_else(|| panic!("no `died` or `{gone}` of {container} from event {from} on"));
        let is_repaired = |e: &Value| e["container"] == container && e["event"] == "repaired";
        let repaired = self.next_where(wait, is_repaired).or_else(|| {
            self.seen[..gone_at]
                .iter()
                .rev()
                .find(|e| is_repaired(e))
                .cloned()
        });
        (broke_at, repaired)
    }

    /// The events of deploy-log entry `deploy` of `serviceset` seen before
    /// index `before`.
    pub fn of_deploy_before(&self, before: usize, deploy: &Value, serviceset: &str) -> Vec<&Value> {
        self.seen[..before]
            .iter()
            .filter(|e| e["deploy"] == *deploy && e["serviceset"] == serviceset)
            .collect()
    }

    /// Every event read so far, one a line, for a failure message.
    pub fn summary(&self) -> String {
        let lines: Vec<String> = self.seen.iter().map(Value::to_string).collect();
        format!(
            "events (follower pid {}):\n{}",
            self.child.id(),
            lines.join("\n")
        )
    }
}

impl Drop for EventFollower {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
