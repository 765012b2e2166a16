//! `telefig events`: the daemon's live stream of telefig-level events
//! (created, started, restarted, died, health changes, failed probes …),
//! one line each, until interrupted.

use std::process::ExitCode;
use std::time::Duration;

use crate::cli::Outcome;
use crate::cli::args::Global;
use crate::daemon::model::Happened;
use crate::daemon::socket;
use crate::state::StateDir;

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
                println!("{line}"); // e.g. {"lagged": N}
            }
            continue;
        };
        if g.name.as_deref().is_some_and(|n| n != h.serviceset) {
            continue;
        }
        if g.json {
            println!("{line}");
        } else {
            let at = jiff::Timestamp::from_nanosecond(h.time_nanos.into())
                .map_or_else(|_| "-".to_owned(), |t| t.to_string());
            println!(
                "{at}  {}  {}  {}{}",
                h.serviceset,
                h.container,
                h.event,
                if h.detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", h.detail)
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
