//! Prometheus metrics from the live model, rendered at each scrape (the
//! `prometheus-client` text format): served over HTTP on
//! `--metrics-listen ADDR` and/or written to `--metrics-file PATH` (a
//! node_exporter textfile) every few seconds. Both are off by default.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch as signal;
use tracing::warn;

use super::live::Shared;

mod cron;
mod deploys;
use crate::abort::aborted;
use crate::state::{DeployLog, StateDir};

/// How often `--metrics-file` is rewritten.
const FILE_EVERY: Duration = Duration::from_secs(10);

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The metrics text of the model as it is now.
pub fn render(model: &Shared, state: &StateDir) -> String {
    let mut registry = Registry::default();
    let containers = Family::<Labels, Gauge>::default();
    let restarts = Family::<Labels, Gauge>::default();
    let probes_failed = Family::<Labels, Gauge>::default();
    let reconnects = Counter::<u64>::default();
    {
        let m = model.lock().expect("never poisoned");
        for e in m.containers.values() {
            let health = e.health.map_or("none", |h| h.as_str());
            containers
                .get_or_create(&labels(&[
                    ("serviceset", &e.serviceset),
                    ("role", &e.role),
                    ("state", e.state.as_str()),
                    ("health", health),
                ]))
                .inc();
            let who = labels(&[("serviceset", &e.serviceset), ("container", &e.name)]);
            restarts.get_or_create(&who).set(e.restart_count);
            let failed = e.probes.iter().filter(|p| p.exit_code != 0).count();
            probes_failed.get_or_create(&who).set(failed as i64);
        }
        reconnects.inc_by(m.reconnects);
        // A serviceset that `down` removed keeps its deploy log and cron
        // runs on disk as history, but is no longer reported: its
        // last-deploy time would otherwise age forever on every dashboard.
        let current: BTreeMap<String, DeployLog> = m
            .deploys
            .logs
            .iter()
            .filter(|(serviceset, _)| state.has_record(serviceset))
            .map(|(s, log)| (s.clone(), log.clone()))
            .collect();
        deploys::register(&mut registry, &current);
    }
    let mut runs = state.cron_runs();
    runs.retain(|serviceset, _| state.has_record(serviceset));
    cron::register(&mut registry, &runs);
    registry.register(
        "telefig_containers",
        "Telefig containers by serviceset, role, state and health",
        containers,
    );
    registry.register(
        "telefig_container_restarts",
        "Docker's restart count of each telefig container",
        restarts,
    );
    registry.register(
        "telefig_container_failed_probes",
        "Failed health probes among each container's last 50",
        probes_failed,
    );
    registry.register(
        "telefig_daemon_reconnects",
        "Times the daemon re-read Docker after its events stream ended",
        reconnects,
    );
    let mut text = String::new();
    encode(&mut text, &registry).expect("writing to a String cannot fail");
    text_format(&text) + &cron::durations(&runs)
}

/// OpenMetrics (what the crate writes) → Prometheus text format 0.0.4 (what
/// node_exporter's textfile collector and `promtool check metrics` read):
/// a counter's HELP and TYPE name its `_total` samples, and no `# EOF`.
fn text_format(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// Serve `/metrics` on `listener` until `stop`.
pub async fn serve(
    listener: TcpListener,
    model: Shared,
    state: StateDir,
    mut stop: signal::Receiver<bool>,
) {
    loop {
        tokio::select! {
            conn = listener.accept() => match conn {
                Ok((stream, _)) => { tokio::spawn(answer(stream, model.clone(), state.clone())); }
                Err(e) => warn!("metrics listener: {e}"),
            },
            _ = aborted(&mut stop) => return,
        }
    }
}

/// One HTTP/1.x request, one answer, then close.
async fn answer(mut stream: TcpStream, model: Shared, state: StateDir) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    let read = async {
        while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        true
    };
    if !matches!(
        tokio::time::timeout(Duration::from_secs(5), read).await,
        Ok(true)
    ) {
        return;
    }
    let line = String::from_utf8_lossy(&request);
    let path = line.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = if path == "/metrics" || path.starts_with("/metrics?") {
        let state = state.clone();
        let body = tokio::task::spawn_blocking(move || render(&model, &state))
            .await
            .unwrap_or_default();
        ("200 OK", body)
    } else {
        ("404 Not Found", "only /metrics is served here\n".to_owned())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Rewrite `path` (atomically: a temporary file renamed over) until `stop`.
pub async fn write_file(
    path: PathBuf,
    model: Shared,
    state: StateDir,
    mut stop: signal::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(FILE_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = aborted(&mut stop) => return,
        }
        let (model, state, path) = (model.clone(), state.clone(), path.clone());
        let written = tokio::task::spawn_blocking(move || {
            let text = render(&model, &state);
            let tmp = path.with_extension("prom.tmp");
            std::fs::write(&tmp, text)?;
            std::fs::rename(&tmp, &path)
        })
        .await;
        if let Ok(Err(e)) = written {
            warn!("cannot write the metrics file: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_by_their_samples() {
        let om = "# HELP a_b Things.\n# TYPE a_b counter\na_b_total 3\n# HELP g G.\n# TYPE g gauge\ng 1\n# EOF\n";
        assert_eq!(
            text_format(om),
            "# HELP a_b_total Things.\n# TYPE a_b_total counter\na_b_total 3\n# HELP g G.\n# TYPE g gauge\ng 1\n"
        );
    }
}
