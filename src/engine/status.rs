//! `status`: every telefig container on the host, from Docker's labels.
//!
//! One list call finds them; one inspect each (in parallel) adds what the
//! list lacks: restart count, start time, last exit code.

use futures_util::StreamExt;
use serde::Serialize;

use super::{Engine, Error};
use crate::plan::{Health, RunState};
use crate::platform::{LABEL_ROLE, LABEL_SERVICESET};

/// Inspect calls in flight at once.
const INSPECT_CONCURRENCY: usize = 16;

#[derive(Debug, Clone, Serialize)]
pub struct ContainerStatus {
    pub name: String,
    pub serviceset: String,
    pub role: String,
    pub image: String,
    pub state: RunState,
    pub health: Option<Health>,
    pub started_at: Option<String>,
    pub uptime_seconds: Option<u64>,
    pub restart_count: i64,
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
    let listed = engine.list(Some(&label)).await?;
    // A few inspects at a time: dockerd answers them no faster all at once.
    let details: Vec<_> = futures_util::stream::iter(listed.iter().map(|o| engine.inspect(&o.id)))
        .buffered(INSPECT_CONCURRENCY)
        .collect()
        .await;
    let now = crate::clock::now_secs();
    let mut out: Vec<ContainerStatus> = listed
        .into_iter()
        .zip(details)
        .map(|(o, d)| {
            let d = d.ok().unwrap_or_default();
            let role = o.labels.get(LABEL_ROLE).cloned().unwrap_or_default();
            let running = o.state == RunState::Running;
            let exit_code = if running {
                None
            } else {
                d.exit_code.or(o.exit_code)
            };
            let health = if running { d.health.or(o.health) } else { None };
            let ok = crate::plan::status_ok(
                role == "job",
                running,
                exit_code,
                health == Some(Health::Unhealthy),
                matches!(health, None | Some(Health::Healthy)),
            );
            let started_at = d.started_at.filter(|s| !s.starts_with("0001-"));
            let uptime_seconds = started_at
                .as_deref()
                .filter(|_| running)
                .and_then(rfc3339_seconds)
                .map(|t| (now - t).max(0) as u64);
            ContainerStatus {
                serviceset: o.serviceset().unwrap_or_default().to_owned(),
                name: o.name,
                role,
                image: d.image.clone().unwrap_or(o.image),
                state: o.state,
                health,
                started_at,
                uptime_seconds,
                restart_count: d.restart_count,
                exit_code,
                ok,
            }
        })
        .collect();
    out.sort_by(|a, b| (&a.serviceset, &a.name).cmp(&(&b.serviceset, &b.name)));
    Ok(out)
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
    fn durations() {
        assert_eq!(human_duration(42), "42s");
        assert_eq!(human_duration(312), "5m12s");
        assert_eq!(human_duration(3 * 86_400 + 4 * 3600), "3d4h");
    }
}
