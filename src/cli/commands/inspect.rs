//! `status` and `logs`: read-only views that need no serviceset file.

use std::process::ExitCode;

use comfy_table::{Table, presets::NOTHING};
use futures_util::StreamExt;

use crate::cli::args::{Global, LogsArgs, StatusArgs};
use crate::cli::commands::status_source;
use crate::cli::output::{MaskedLines, errln, outln, paint, print_json};
use crate::cli::{Outcome, UsageError};
use telefig::engine::status::human_duration;
use telefig::platform::LABEL_SERVICESET;
use telefig::state::StateDir;

/// Exit code when something is not running and healthy.
const UNHEALTHY: u8 = 3;

pub async fn status(g: &Global, args: &StatusArgs) -> Outcome {
    if let Some(container) = &args.container {
        return status_source::one(g, container).await;
    }
    let state = StateDir::new(&g.state_dir);
    // `--name` narrows; ENV_NAME does not (an operator wants the whole host).
    let (containers, source) = status_source::gather(g, &state).await?;
    let all_ok = containers.iter().all(|c| c.ok);
    // The daemon skips a record it cannot read; say so here too.
    for e in state.scan().unreadable {
        errln!("warning: {e}");
    }
    let mut cron = state.cron_runs();
    if let Some(name) = &g.name {
        cron.retain(|s, _| s == name.as_str());
    }
    // The evidence of the last failed deploy, until one succeeds.
    let failure = g
        .name
        .as_ref()
        .and_then(|n| telefig::ops::evidence::standing_in(&state, n));
    if g.json {
        print_json(&serde_json::json!({
            "ok": all_ok,
            "source": source,
            "containers": containers,
            "cron": cron,
            "last_failure": failure,
        }))?;
    } else if containers.is_empty() {
        outln!(
            "no telefig containers on this host{}",
            g.name
                .as_ref()
                .map(|n| format!(" for serviceset `{n}`"))
                .unwrap_or_default()
        );
    } else {
        let mut table = Table::new();
        table.load_preset(NOTHING);
        table.set_header([
            "NAME",
            "SERVICESET",
            "ROLE",
            "IMAGE",
            "STATE",
            "HEALTH",
            "UPTIME",
            "RESTARTS",
            "LAST EXIT",
        ]);
        for c in &containers {
            let state = if c.ok {
                paint(c.state.as_str(), "32")
            } else {
                paint(c.state.as_str(), "31")
            };
            table.add_row([
                c.name.clone(),
                c.serviceset.clone(),
                c.role.clone(),
                c.image.clone(),
                state,
                c.health.map_or("-".into(), |h| h.as_str().to_owned()),
                c.uptime_seconds.map_or("-".into(), human_duration),
                c.restart_count.map_or("?".into(), |n| n.to_string()),
                c.exit_code.map_or("-".into(), |e| e.to_string()),
            ]);
        }
        outln!("{table}");
        if containers.iter().any(|c| c.restart_count.is_none()) {
            outln!("(source: {source}; restarts `?` of running containers: ask the daemon)");
        } else {
            outln!("(source: {source})");
        }
    }
    if !g.json && cron.values().any(|runs| !runs.is_empty()) {
        let mut table = Table::new();
        table.load_preset(NOTHING);
        table.set_header([
            "CRON",
            "SERVICESET",
            "OWNER",
            "SCHEDULE",
            "LAST RUN",
            "EXIT",
            "OUTPUT",
        ]);
        let now = telefig::clock::now_secs();
        for (serviceset, runs) in &cron {
            for (name, run) in runs {
                let last = match (run.running, run.last_started) {
                    (true, _) => "running".to_owned(),
                    (false, Some(t)) => format!("{} ago", human_duration((now - t).max(0) as u64)),
                    (false, None) => "-".to_owned(),
                };
                table.add_row([
                    name.clone(),
                    serviceset.clone(),
                    run.owner.clone(),
                    run.schedule.clone(),
                    last,
                    run.exit_code.map_or("-".into(), |c| c.to_string()),
                    run.output_tail
                        .lines()
                        .last()
                        .unwrap_or_default()
                        .to_owned(),
                ]);
            }
        }
        outln!("{table}");
    }
    if let Some(f) = failure.as_ref().filter(|_| !g.json) {
        let commit = f.commit.as_deref().unwrap_or("no commit");
        outln!(
            "last failed deploy of {} (#{}, {commit}), until one succeeds:",
            f.serviceset,
            f.deploy
        );
        for line in f.evidence.iter().flat_map(|e| e.lines()) {
            outln!("  {line}");
        }
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(UNHEALTHY)
    })
}

pub async fn logs(g: &Global, args: &LogsArgs) -> Outcome {
    // The API version remembered for this host: no version round trip.
    let engine = telefig::ops::connect_remembering(&StateDir::new(&g.state_dir)).await?;
    let ours = engine.list(Some(LABEL_SERVICESET)).await?;
    let container = ours
        .iter()
        .filter(|o| g.name.as_deref().is_none_or(|n| o.serviceset() == Some(n)))
        .find(|o| o.name == args.container)
        .ok_or_else(|| {
            UsageError(format!(
                "no telefig container named `{}` on this host; `telefig status` lists them",
                args.container
            ))
        })?;
    let mut stream = engine.logs(&container.id, args.follow, args.tail);
    // The container's output may print a secret value: masked, by line.
    let mut stdout = MaskedLines::new(Box::new(std::io::stdout()));
    let mut stderr = MaskedLines::new(Box::new(std::io::stderr()));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let (to, other) = if chunk.stderr {
            (&mut stderr, &mut stdout)
        } else {
            (&mut stdout, &mut stderr)
        };
        // A partial line of the other stream goes out before this one.
        other.flush()?;
        to.write(&chunk.bytes)?;
    }
    stdout.flush()?;
    stderr.flush()?;
    Ok(ExitCode::SUCCESS)
}
