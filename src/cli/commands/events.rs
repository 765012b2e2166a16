//! `telefig events`: the daemon's live stream of telefig-level events —
//! from Docker (created, started, restarted, died, health changes, failed
//! probes …), from the deploy log (deploy started and finished, pulled,
//! created, gate passed or failed, rolled back, repaired) and cron runs —
//! one line each, until interrupted.

use std::process::ExitCode;
use std::time::Duration;

use crate::cli::Outcome;
use crate::cli::args::Global;
use crate::cli::output::outln;
use telefig::daemon::happened::Happened;
use telefig::daemon::socket;
use telefig::state::StateDir;

pub async fn events(g: &Global) -> Outcome {
    let path = socket::path(&StateDir::new(&g.state_dir));
    let Some(mut lines) = socket::subscribe(&path, Duration::from_millis(250)).await else {
        anyhow::bail!(
            "no telefig daemon answers on {}; events come from `telefig daemon` (is it running with this --state-dir?)",
            path.display()
        );
    };
    while let Some(line) = lines.next_line().await? {
        let Ok(h) = serde_json::from_str::<Happened>(&line) else {
            if g.json {
                outln!("{line}"); // e.g. {"lagged": N}
            }
            continue;
        };
        if g.name.as_deref().is_some_and(|n| n != h.serviceset) {
            continue;
        }
        if g.json {
            outln!("{line}");
        } else {
            let at = jiff::Timestamp::from_nanosecond(h.time_nanos.into())
                .map_or_else(|_| "-".to_owned(), |t| t.to_string());
            let container = if h.container.is_empty() {
                "-"
            } else {
                &h.container
            };
            let mut line = format!("{at}  {}  {container}  {}", h.serviceset, h.event);
            if let Some(result) = &h.result {
                line.push_str(&format!(": {result}"));
            }
            if !h.detail.is_empty() {
                line.push_str(&format!(" ({})", h.detail));
            }
            if let (Some(n), Some(op)) = (h.deploy, &h.operation) {
                line.push_str(&format!("  [{op} #{n}]"));
            }
            outln!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
