//! `status`: every telefig container on the host, from Docker's labels.
//!
//! One list call finds them; one inspect each (in parallel) adds what the
//! list lacks: restart count, start time, last exit code.

use std::time::{SystemTime, UNIX_EPOCH};

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
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
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
            let ok = if role == "job" {
                exit_code == Some(0) || (running && health != Some(Health::Unhealthy))
            } else {
                running && matches!(health, None | Some(Health::Healthy))
            };
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

/// Nanoseconds since the epoch; Docker's zero time (`0001-…`) is `None`.
pub fn rfc3339_nanos(text: &str) -> Option<i64> {
    if text.starts_with("0001-") {
        return None;
    }
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.trim_end_matches('Z');
    let (time, fraction) = match time.split_once('.') {
        Some((t, f)) => (t, f.split(['+', '-']).next().unwrap_or("")),
        None => (time.split(['+']).next()?, ""),
    };
    let digits: String = fraction.chars().take(9).collect();
    let nanos: i64 = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (t.next()??, t.next()??, t.next()??);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + min * 60 + s) * 1_000_000_000 + nanos)
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

    #[test]
    fn durations() {
        assert_eq!(human_duration(42), "42s");
        assert_eq!(human_duration(312), "5m12s");
        assert_eq!(human_duration(3 * 86_400 + 4 * 3600), "3d4h");
    }
}
