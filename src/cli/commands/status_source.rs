//! Where `status` gets its answer: the daemon's live model when one
//! answers within milliseconds, else Docker (one list call).

use std::process::ExitCode;
use std::time::Duration;

use comfy_table::{Table, presets::NOTHING};
use serde_json::{Value, json};

use crate::cli::args::Global;
use crate::cli::output::{outln, print_json};
use crate::cli::{Outcome, UsageError};
use telefig::daemon::socket;
use telefig::engine::live::Probe;
use telefig::engine::status::{ContainerStatus, collect};
use telefig::ops::connect_remembering as connect;
use telefig::state::StateDir;

/// How long `status` waits for the daemon before asking Docker.
const DAEMON_TIMEOUT: Duration = Duration::from_millis(250);

pub const SOURCE_DAEMON: &str = "daemon";
pub const SOURCE_DOCKER: &str = "docker";

/// Every telefig container (of `--name`'s serviceset, if given), and which
/// source answered.
pub async fn gather(
    g: &Global,
    state: &StateDir,
) -> anyhow::Result<(Vec<ContainerStatus>, &'static str)> {
    let answer = socket::ask(&socket::path(state), "status", DAEMON_TIMEOUT).await;
    if let Some(Ok(mut rows)) =
        answer.map(|a| serde_json::from_value::<Vec<ContainerStatus>>(a["containers"].clone()))
    {
        if let Some(name) = &g.name {
            rows.retain(|c| c.serviceset == name.as_str());
        }
        return Ok((rows, SOURCE_DAEMON));
    }
    let engine = connect(state).await?;
    let rows = collect(&engine, g.name.as_deref()).await?;
    Ok((rows, SOURCE_DOCKER))
}

/// `telefig status CONTAINER`: its row and its last health probes.
pub async fn one(g: &Global, container: &str) -> Outcome {
    let state = StateDir::new(&g.state_dir);
    let request = format!("status {container}");
    let (row, probes, source): (Option<ContainerStatus>, Vec<Probe>, &str) =
        match socket::ask(&socket::path(&state), &request, DAEMON_TIMEOUT).await {
            Some(answer) if answer.get("container").is_some() => (
                serde_json::from_value(answer["container"].clone()).ok(),
                serde_json::from_value(answer["probes"].clone()).unwrap_or_default(),
                SOURCE_DAEMON,
            ),
            _ => {
                // No daemon: Docker for the row, the state dir for the history.
                let engine = connect(&state).await?;
                let row = collect(&engine, None)
                    .await?
                    .into_iter()
                    .find(|c| c.name == container);
                (row, state.health_history(container), SOURCE_DOCKER)
            }
        };
    let row = row.ok_or_else(|| {
        UsageError(format!(
            "no telefig container named `{container}` on this host; `telefig status` lists them"
        ))
    })?;
    if g.json {
        print_json(&json!({ "source": source, "container": row, "probes": probes }))?;
    } else {
        print_one(&row, &probes, source);
    }
    Ok(if row.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

fn print_one(row: &ContainerStatus, probes: &[Probe], source: &str) {
    let show = |v: Value| match v {
        Value::String(s) => s,
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let row_json = serde_json::to_value(row).unwrap_or_default();
    for key in [
        "name",
        "serviceset",
        "role",
        "image",
        "state",
        "health",
        "started_at",
        "restart_count",
        "exit_code",
    ] {
        outln!("{key:>14}: {}", show(row_json[key].clone()));
    }
    outln!("        source: {source}");
    if probes.is_empty() {
        outln!("no health probes recorded");
        return;
    }
    let mut table = Table::new();
    table.load_preset(NOTHING);
    table.set_header(["PROBE ENDED", "EXIT", "OUTPUT"]);
    for p in probes.iter().rev() {
        let at = jiff::Timestamp::from_nanosecond(p.at_nanos.into())
            .map_or_else(|_| "-".to_owned(), |t| t.to_string());
        table.add_row([at, p.exit_code.to_string(), p.output.clone()]);
    }
    outln!("{table}");
}
