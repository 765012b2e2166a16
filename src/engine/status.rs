//! `status` from Docker, when no daemon answers: every telefig container
//! on the host, from one list call.
//!
//! The list's status text carries state, health, exit code and uptime
//! ("Up 3 minutes (healthy)", "Exited (1) 2 minutes ago"). Only the few
//! containers whose restart count matters (restarting, exited, unhealthy)
//! are inspected; for the rest the restart count is unknown (`None`: the
//! daemon, which counts restarts from the events stream, knows it).
//! Uptime comes from `StartedAt` where a container was inspected; the list
//! (`GET /containers/json`) carries no start time, only `Created` and the
//! text, so for the rest it is read from the text rather than paying one
//! inspect per running container.

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::{ContainerDetails, Engine, Error};
use crate::plan::{Health, Observed, RunState};
use crate::platform::{LABEL_ROLE, LABEL_SERVICESET};

/// Inspect calls in flight at once.
const INSPECT_CONCURRENCY: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerStatus {
    pub name: String,
    pub serviceset: String,
    pub role: String,
    pub image: String,
    pub state: RunState,
    pub health: Option<Health>,
    pub started_at: Option<String>,
    pub uptime_seconds: Option<u64>,
    /// `None` when not known: the list call does not carry it.
    pub restart_count: Option<i64>,
    pub exit_code: Option<i64>,
    /// Running and healthy (or without a healthcheck), or a job that completed.
    pub ok: bool,
}

pub async fn collect(
    engine: &Engine,
    serviceset: Option<&str>,
) -> Result<Vec<ContainerStatus>, Error> {
    let label = match serviceset {
        Some(s) => format!("{LABEL_SERVICESET}={s}"),
        None => LABEL_SERVICESET.to_owned(),
    };
    let listed = engine.list_with_status(Some(&label)).await?;
    // A few inspects at a time: dockerd answers them no faster all at once,
    // and each queues behind the health probes.
    let details: Vec<Option<ContainerDetails>> =
        futures_util::stream::iter(listed.iter().map(|(o, _)| async move {
            if needs_inspect(o) {
                engine.inspect(&o.id).await.ok()
            } else {
                None
            }
        }))
        .buffered(INSPECT_CONCURRENCY)
        .collect()
        .await;
    let now = crate::clock::now_secs();
    let mut out: Vec<ContainerStatus> = listed
        .into_iter()
        .zip(details)
        .map(|((o, text), d)| container_status(o, &text, d, now))
        .collect();
    out.sort_by(|a, b| (&a.serviceset, &a.name).cmp(&(&b.serviceset, &b.name)));
    Ok(out)
}

/// Whether the restart count or last exit matter enough to inspect: it is
/// restarting, stopped, or unhealthy.
pub fn needs_inspect(o: &Observed) -> bool {
    o.state != RunState::Running || o.health == Some(Health::Unhealthy)
}

/// One row of `status` from a list entry, its status text and, when it
/// was inspected, the details (which win where both speak).
pub fn container_status(
    o: Observed,
    status_text: &str,
    d: Option<ContainerDetails>,
    now: i64,
) -> ContainerStatus {
    let role = o.labels.get(LABEL_ROLE).cloned().unwrap_or_default();
    let running = o.state == RunState::Running;
    let d_ref = d.as_ref();
    let exit_code = if running {
        None
    } else {
        d_ref.and_then(|d| d.exit_code).or(o.exit_code)
    };
    let health = if running {
        d_ref.and_then(|d| d.health).or(o.health)
    } else {
        None
    };
    let ok = is_ok(&role, running, health, exit_code);
    let started_at = d_ref
        .and_then(|d| d.started_at.clone())
        .filter(|s| !s.starts_with("0001-"));
    let uptime_seconds = if !running {
        None
    } else if let Some(t) = started_at.as_deref().and_then(rfc3339_seconds) {
        Some((now - t).max(0) as u64)
    } else {
        uptime_from_status(status_text)
    };
    ContainerStatus {
        serviceset: o.serviceset().unwrap_or_default().to_owned(),
        role,
        image: d_ref.and_then(|d| d.image.clone()).unwrap_or(o.image),
        name: o.name,
        state: o.state,
        health,
        started_at,
        uptime_seconds,
        restart_count: d_ref.map(|d| d.restart_count),
        exit_code,
        ok,
    }
}

/// Running and healthy (or without a healthcheck), or a job that completed.
/// (The rule is `plan::status_ok`'s.)
pub fn is_ok(role: &str, running: bool, health: Option<Health>, exit_code: Option<i64>) -> bool {
    crate::plan::status_ok(
        role == "job",
        running,
        exit_code,
        health == Some(Health::Unhealthy),
        matches!(health, None | Some(Health::Healthy)),
    )
}

/// The uptime in Docker's status text, as precise as Docker wrote it:
/// "Up 3 minutes (healthy)" → 180, "Up About an hour" → 3600.
pub fn uptime_from_status(text: &str) -> Option<u64> {
    let rest = text.strip_prefix("Up ")?;
    let human = rest.split(" (").next()?.trim();
    match human {
        "Less than a second" => return Some(0),
        "About a minute" => return Some(60),
        "About an hour" => return Some(3600),
        _ => {}
    }
    let (count, unit) = human.split_once(' ')?;
    let count: u64 = count.parse().ok()?;
    let unit_seconds = match unit.trim_end_matches('s') {
        "second" => 1,
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        "week" => 7 * 86_400,
        "month" => 30 * 86_400,
        "year" => 365 * 86_400,
        _ => return None,
    };
    Some(count * unit_seconds)
}

/// Seconds since the epoch of `2026-11-23T21:50:12.123456789Z` (UTC only,
/// which is what Docker reports).
pub fn rfc3339_seconds(text: &str) -> Option<i64> {
    rfc3339_nanos(text).map(|n| n.div_euclid(1_000_000_000))
}

/// Nanoseconds since the epoch of an RFC 3339 time (`Z` or a `±hh:mm`
/// offset, any fraction), as Docker reports times; Docker's zero time
/// (`0001-…`) and anything unreadable are `None`.
pub fn rfc3339_nanos(text: &str) -> Option<i64> {
    let at: jiff::Timestamp = text.parse().ok()?;
    if at.as_second() < -62_000_000_000 {
        return None; // 0001-01-01: "never"
    }
    i64::try_from(at.as_nanosecond()).ok()
}

/// "3d4h", "5m12s", "42s".
pub fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s}s"),
        (0, _, _) => format!("{h}h{m}m"),
        _ => format!("{d}d{h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_seconds("2000-03-01T00:00:01.5Z"), Some(951_868_801));
        assert_eq!(rfc3339_seconds("nonsense"), None);
        assert_eq!(rfc3339_nanos("1970-01-01T00:00:01.5Z"), Some(1_500_000_000));
        assert!(
            rfc3339_nanos("2026-01-01T00:00:12.5Z") > rfc3339_nanos("2026-01-01T00:00:12.49999Z")
        );
        assert_eq!(rfc3339_nanos("0001-01-01T00:00:00Z"), None);
    }

    /// The hand-written parser dropped the offset when a fraction was present.
    #[test]
    fn timestamps_with_offsets_and_fractions() {
        let utc = 1_795_470_897_500_000_000; // 2026-11-23T21:54:57.5Z
        for (text, want) in [
            ("2026-11-23T21:54:57.5Z", Some(utc)),
            ("2026-11-23T21:54:57.500000000Z", Some(utc)),
            ("2026-11-23T22:54:57.5+01:00", Some(utc)),
            ("2026-11-23T16:24:57.5-05:30", Some(utc)),
            ("2026-11-23T21:54:57.5+00:00", Some(utc)),
            ("2026-11-23T21:54:57Z", Some(utc - 500_000_000)),
            ("2026-11-23T22:54:57+01:00", Some(utc - 500_000_000)),
            ("2026-11-23T21:54:57.123456789Z", Some(utc - 376_543_211)),
            ("2026-11-24T03:24:57.5+05:30", Some(utc)),
            ("2026-11-23T21:54:57.5", None),
            ("yesterday", None),
            ("", None),
        ] {
            assert_eq!(rfc3339_nanos(text), want, "{text}");
        }
    }

    #[test]
    fn uptime_in_status_text() {
        for (text, want) in [
            ("Up 3 minutes (healthy)", Some(180)),
            ("Up Less than a second", Some(0)),
            ("Up 1 second", Some(1)),
            ("Up 42 seconds (health: starting)", Some(42)),
            ("Up About a minute", Some(60)),
            ("Up About an hour (unhealthy)", Some(3600)),
            ("Up 5 hours", Some(5 * 3600)),
            ("Up 3 days (Paused)", Some(3 * 86_400)),
            ("Up 2 weeks", Some(14 * 86_400)),
            ("Exited (1) 2 minutes ago", None),
            ("Restarting (1) 3 seconds ago", None),
            ("Created", None),
            ("", None),
        ] {
            assert_eq!(uptime_from_status(text), want, "{text}");
        }
    }

    fn listed(state: RunState, health: Option<Health>, exit_code: Option<i64>) -> Observed {
        Observed {
            state,
            health,
            exit_code,
            ..Observed::listed("web", &[(LABEL_SERVICESET, "shop"), (LABEL_ROLE, "main")])
        }
    }

    /// Only a stopped, restarting or unhealthy container costs an inspect.
    #[test]
    fn inspects_only_containers_whose_restarts_matter() {
        let cases = [
            (RunState::Running, None, false),
            (RunState::Running, Some(Health::Healthy), false),
            (RunState::Running, Some(Health::Starting), false),
            (RunState::Running, Some(Health::Unhealthy), true),
            (RunState::Restarting, None, true),
            (RunState::Exited, None, true),
            (RunState::Created, None, true),
        ];
        for (state, health, want) in cases {
            assert_eq!(
                needs_inspect(&listed(state, health, None)),
                want,
                "{state:?} {health:?}"
            );
        }
    }

    #[test]
    fn a_row_from_the_list_alone() {
        let row = container_status(
            listed(RunState::Running, Some(Health::Healthy), None),
            "Up 3 minutes (healthy)",
            None,
            0,
        );
        assert_eq!(row.uptime_seconds, Some(180));
        assert_eq!(row.restart_count, None);
        assert!(row.ok);
        let row = container_status(
            listed(RunState::Exited, None, Some(1)),
            "Exited (1) 2 minutes ago",
            Some(ContainerDetails {
                restart_count: 4,
                exit_code: Some(1),
                ..Default::default()
            }),
            0,
        );
        assert_eq!(
            (row.restart_count, row.exit_code, row.ok),
            (Some(4), Some(1), false)
        );
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(42), "42s");
        assert_eq!(human_duration(312), "5m12s");
        assert_eq!(human_duration(3 * 86_400 + 4 * 3600), "3d4h");
    }
}
