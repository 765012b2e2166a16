//! The daemon's socket, `<state dir>/daemon.sock` (0600): a one-line
//! request, a one-line JSON answer, then the connection closes.
//!
//! ```text
//! status          → {"source":"daemon","containers":[…]}   (as `status --json`)
//! status NAME     → {"source":"daemon","container":{…},"probes":[…]}
//! events          → one JSON line per telefig-level event, until closed
//! ```
//!
//! The client side ([`ask`]) gives up within milliseconds when no daemon
//! listens, so `status` can fall back to Docker. Every line sent is
//! masked with what the daemon knows of the secret values.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch as signal;
use tracing::warn;

use super::live::{Feed, Shared};
use crate::abort::aborted;
use crate::clock::now_nanos;
use crate::state::StateDir;

/// The longest a request line may take to arrive.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

pub fn path(state: &StateDir) -> PathBuf {
    state.root().join("daemon.sock")
}

/// Serve `model` on `path` until `stop`.
pub async fn serve(path: PathBuf, model: Shared, feed: Feed, mut stop: signal::Receiver<bool>) {
    let _ = std::fs::remove_file(&path);
    let listener = match UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            warn!("cannot serve the live model on {}: {e}", path.display());
            return;
        }
    };
    if let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
        warn!("cannot make {} private: {e}", path.display());
        return;
    }
    loop {
        tokio::select! {
            conn = listener.accept() => match conn {
                Ok((stream, _)) => { tokio::spawn(answer(stream, model.clone(), feed.clone())); }
                Err(e) => warn!("live model socket: {e}"),
            },
            _ = aborted(&mut stop) => return,
        }
    }
}

async fn answer(stream: UnixStream, model: Shared, feed: Feed) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read);
    if tokio::time::timeout(READ_TIMEOUT, reader.read_line(&mut line))
        .await
        .is_err()
    {
        return;
    }
    if line.trim() == "events" {
        let mut events = feed.subscribe();
        loop {
            let text = match events.recv().await {
                Ok(h) => masked(&h),
                Err(RecvError::Lagged(n)) => json!({ "lagged": n }).to_string(),
                Err(RecvError::Closed) => return,
            };
            if write
                .write_all(format!("{text}\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    }
    let reply = respond(line.trim(), &model);
    let mut text = masked(&reply);
    text.push('\n');
    let _ = write.write_all(text.as_bytes()).await;
}

/// One line of JSON, with every secret value the daemon knows of masked
/// in its strings: a probe's output, an error's text may hold one.
fn masked(value: &impl serde::Serialize) -> String {
    let mut json = serde_json::to_value(value).expect("an answer serializes");
    crate::redact::current().mask_json(&mut json, true);
    json.to_string()
}

/// The answer to one request line.
pub fn respond(request: &str, model: &Shared) -> Value {
    let m = model.lock().expect("never poisoned");
    let mut words = request.split_whitespace();
    match (words.next(), words.next()) {
        (Some("status"), None) => json!({
            "source": "daemon",
            "containers": m.statuses(now_nanos()),
        }),
        (Some("status"), Some(name)) => match m.by_name(name) {
            Some(e) => json!({
                "source": "daemon",
                "container": e.status(now_nanos()),
                "probes": e.probes,
            }),
            None => {
                json!({ "source": "daemon", "error": format!("no telefig container named `{name}`") })
            }
        },
        _ => {
            json!({ "error": format!("unknown request `{request}`; try `status [NAME]` or `events`") })
        }
    }
}

/// Ask the daemon listening on `path`; `None` when none answers in time.
pub async fn ask(path: &Path, request: &str, timeout: Duration) -> Option<Value> {
    let exchange = async {
        let mut stream = UnixStream::connect(path).await.ok()?;
        stream
            .write_all(format!("{request}\n").as_bytes())
            .await
            .ok()?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).await.ok()?;
        serde_json::from_str(&line).ok()
    };
    tokio::time::timeout(timeout, exchange).await.ok().flatten()
}

/// Subscribe to the daemon's events on `path`: lines of JSON, as they come.
pub async fn subscribe(
    path: &Path,
    timeout: Duration,
) -> Option<tokio::io::Lines<BufReader<UnixStream>>> {
    let mut stream = tokio::time::timeout(timeout, UnixStream::connect(path))
        .await
        .ok()?
        .ok()?;
    stream.write_all(b"events\n").await.ok()?;
    Some(BufReader::new(stream).lines())
}
