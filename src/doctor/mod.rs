//! `doctor`: is this host fit to run telefig? The checks, as data.
//!
//! Docker reachable, its API version, live-restore, the restart policies of
//! telefig's containers (`host`), the platform's registries as dockerd sees
//! them (`registry`), the state dir and the clock (`local`). Each gives a
//! [`Check`]: `ok`, `warn` (works, but with a risk; the fix is given) or
//! `fail` (telefig will not work). The checks only read, except a probe
//! file in the state dir that is removed at once. Printing and the exit
//! code are the `doctor` command's.

mod disk;
mod host;
mod local;
mod logs;
mod registry;

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::engine::{Engine, endpoint};

/// How long the Docker Engine gets to answer the questions about itself.
const DOCKER_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

/// One verdict: which check, how it went, what was seen, what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub status: Status,
    pub detail: String,
    /// What to do about it; `None` when the check passed.
    pub fix: Option<String>,
}

impl Check {
    fn ok(check: &'static str, detail: impl Into<String>) -> Check {
        Check {
            check,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }
    fn warn(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            status: Status::Warn,
            fix: Some(fix.into()),
            ..Check::ok(check, detail)
        }
    }
    fn fail(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            status: Status::Fail,
            ..Check::warn(check, detail, fix)
        }
    }
}

/// The platform's image cleanup settings (defaults when it cannot be read:
/// the registry check reports that).
fn images_policy(platform: Option<&Path>) -> crate::platform::GcPolicy {
    crate::platform::Platform::load(platform)
        .map(|p| p.images)
        .unwrap_or_default()
}

/// Every check, in the order they are shown. A Docker Engine that does not
/// answer is one failed check; the checks that need it say they did not run.
pub async fn run(state_dir: &Path, platform: Option<&Path>) -> Vec<Check> {
    let connected = tokio::time::timeout(DOCKER_TIMEOUT, async {
        // The API version the other commands remembered for this host, read
        // only (doctor leaves nothing in a state dir): no extra round trip.
        let known = crate::state::StateDir::new(state_dir).api_version(&endpoint());
        let engine =
            Engine::connect_known(known.as_deref(), std::sync::Arc::new(|_: &str| {})).await?;
        let facts = engine.host_facts().await?;
        Ok::<_, crate::engine::Error>((engine, facts))
    })
    .await;
    let (engine, facts) = match connected {
        Ok(Ok((engine, facts))) => (Some(engine), Ok(facts)),
        Ok(Err(e)) => (None, Err(host::docker_unreachable(&e))),
        Err(_) => (
            None,
            Err(Check::fail(
                "docker",
                format!(
                    "the Docker Engine at {} did not answer within {}s",
                    endpoint(),
                    DOCKER_TIMEOUT.as_secs()
                ),
                "look at dockerd (`systemctl status docker`, `journalctl -u docker`)",
            )),
        ),
    };
    let mut checks = match &facts {
        Ok(facts) => {
            let records = host::recorded_policies(state_dir);
            vec![
                host::docker(facts),
                host::api_version(facts),
                host::live_restore(facts),
                host::restart_policies(facts, &records),
                logs::log_limits(
                    facts.logging_driver.as_deref(),
                    logs::read_daemon_json(Path::new(logs::DAEMON_JSON)),
                ),
                disk::data_root(facts.docker_root_dir.as_deref(), &images_policy(platform)),
            ]
        }
        Err(unreachable) => vec![unreachable.clone()],
    };
    checks.extend(registry::registries(engine.as_ref(), platform).await);
    checks.push(local::state_dir(state_dir));
    checks.push(local::clock(facts.as_ref().ok(), SystemTime::now()));
    checks
}
