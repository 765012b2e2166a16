//! Does the host's default log driver bound what it keeps? telefig gives
//! its own containers log options (the platform's `defaults.logging`), but
//! every other container on the host takes dockerd's default, and
//! `json-file` without `max-size` grows until the disk is full.

use std::path::Path;

use super::Check;

/// Where dockerd reads its defaults on a standard install.
pub(super) const DAEMON_JSON: &str = "/etc/docker/daemon.json";

/// Drivers that keep logs on the host without a size bound unless told one.
const UNBOUNDED_BY_DEFAULT: [&str; 1] = ["json-file"];

const FIX: &str = "set `\"log-opts\": {\"max-size\": \"100m\", \"max-file\": \"5\"}` (or `\"log-driver\": \"local\"`) in /etc/docker/daemon.json and restart dockerd; telefig's own containers already carry the platform's limits";

/// The verdict from dockerd's default driver and the text of daemon.json
/// (`None`: there is no such file).
pub(super) fn log_limits(
    driver: Option<&str>,
    daemon_json: Result<Option<String>, String>,
) -> Check {
    const NAME: &str = "log limits";
    let Some(driver) = driver else {
        return Check::warn(NAME, "dockerd did not say which log driver it uses", FIX);
    };
    if !UNBOUNDED_BY_DEFAULT.contains(&driver) {
        return Check::ok(
            NAME,
            format!(
                "the host's default log driver is `{driver}`, which does not grow a json-file without bound"
            ),
        );
    }
    let text = match daemon_json {
        Ok(Some(text)) => text,
        Ok(None) => {
            return Check::warn(
                NAME,
                format!(
                    "the host's default log driver is `{driver}` with no max-size (there is no {DAEMON_JSON}): containers not created by telefig can fill the disk"
                ),
                FIX,
            );
        }
        Err(e) => {
            return Check::warn(NAME, format!("cannot read {DAEMON_JSON}: {e}"), FIX);
        }
    };
    let parsed: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return Check::warn(NAME, format!("{DAEMON_JSON} is not JSON: {e}"), FIX),
    };
    match parsed["log-opts"]["max-size"].as_str() {
        Some(size) => {
            let files = parsed["log-opts"]["max-file"].as_str().unwrap_or("1");
            Check::ok(
                NAME,
                format!(
                    "the host's default `{driver}` keeps at most {files} × {size} per container"
                ),
            )
        }
        None => Check::warn(
            NAME,
            format!(
                "the host's default log driver is `{driver}` and {DAEMON_JSON} sets no `log-opts.max-size`: containers not created by telefig can fill the disk"
            ),
            FIX,
        ),
    }
}

/// daemon.json's text, `None` when it does not exist.
pub(super) fn read_daemon_json(path: &Path) -> Result<Option<String>, String> {
    match crate::read::text(path, crate::read::SMALL_CAP) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn json_file_without_max_size_warns() {
        for json in [
            Ok(None),
            Ok(Some("{}".to_owned())),
            Ok(Some(r#"{"log-opts": {"max-file": "3"}}"#.to_owned())),
        ] {
            let c = log_limits(Some("json-file"), json.clone());
            assert_eq!(c.status, Status::Warn, "{json:?}: {}", c.detail);
            assert!(c.fix.unwrap().contains("max-size"));
        }
    }

    #[test]
    fn json_file_with_max_size_or_another_driver_is_ok() {
        let c = log_limits(
            Some("json-file"),
            Ok(Some(
                r#"{"log-opts": {"max-size": "10m", "max-file": "3"}}"#.into(),
            )),
        );
        assert_eq!(c.status, Status::Ok);
        assert!(c.detail.contains("3 × 10m"), "{}", c.detail);
        for driver in ["local", "journald"] {
            assert_eq!(log_limits(Some(driver), Ok(None)).status, Status::Ok);
        }
    }

    #[test]
    fn unreadable_or_broken_daemon_json_warns() {
        assert_eq!(
            log_limits(Some("json-file"), Err("permission denied".into())).status,
            Status::Warn
        );
        assert_eq!(
            log_limits(Some("json-file"), Ok(Some("{".into()))).status,
            Status::Warn
        );
    }
}
