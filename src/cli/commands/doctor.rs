//! `doctor`: is this host fit to run telefig?
//!
//! One line per check: Docker reachable, its API version, live-restore, the
//! restart policies of telefig's containers, the platform's registries, the
//! state dir, the clock. Each is `ok`, `warn` (works, but with a risk; the
//! fix is shown) or `FAIL` (telefig will not work; exit 1). The checks only
//! read, except a probe file in the state dir that is removed at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cli::Outcome;
use crate::cli::args::Global;
use crate::cli::output::{paint, print_json};
use crate::engine::{self, Engine, HostFacts};
use crate::platform::Platform;
use crate::state::StateDir;

/// The oldest Engine API telefig works with: healthcheck `StartPeriod`,
/// which every gate deadline relies on, came with 1.29 (Docker 17.05).
const MIN_API: (u32, u32) = (1, 29);
/// How long the Docker Engine gets to answer every question doctor asks.
const DOCKER_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a registry gets to answer `GET /v2/` on one address.
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(2);
/// Beyond this, daemon timestamps and local deadlines disagree.
const MAX_SKEW: Duration = Duration::from_secs(5);
/// A clock before this year has never been set.
const MIN_YEAR: i64 = 2024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Check {
    check: &'static str,
    status: Status,
    detail: String,
    /// What to do about it; `None` when the check passed.
    fix: Option<String>,
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

    fn line(&self) -> String {
        let status = match self.status {
            Status::Ok => paint("ok  ", "32"),
            Status::Warn => paint("warn", "33"),
            Status::Fail => paint("FAIL", "31"),
        };
        match &self.fix {
            Some(fix) => format!("{status} {}: {} — {fix}", self.check, self.detail),
            None => format!("{status} {}: {}", self.check, self.detail),
        }
    }
}

pub async fn doctor(g: &Global) -> Outcome {
    let facts = tokio::time::timeout(DOCKER_TIMEOUT, async {
        Engine::connect().await?.host_facts().await
    })
    .await;
    let facts = match facts {
        Ok(Ok(facts)) => Ok(facts),
        Ok(Err(e)) => Err(docker_unreachable(&e)),
        Err(_) => Err(Check::fail(
            "docker",
            format!(
                "the Docker Engine at {} did not answer within {}s",
                endpoint(),
                DOCKER_TIMEOUT.as_secs()
            ),
            "look at dockerd (`systemctl status docker`, `journalctl -u docker`)",
        )),
    };
    let mut checks = match &facts {
        Ok(facts) => {
            let records = recorded_policies(&g.state_dir);
            vec![
                docker(facts),
                api_version(facts),
                live_restore(facts),
                restart_policies(facts, &records),
            ]
        }
        Err(unreachable) => vec![unreachable.clone()],
    };
    checks.extend(registries(g.platform.as_deref()).await);
    checks.push(state_dir(&g.state_dir));
    checks.push(clock(facts.as_ref().ok(), SystemTime::now()));

    if g.json {
        print_json(&checks)?;
    } else {
        for c in &checks {
            println!("{}", c.line());
        }
    }
    let mut failed: Vec<&str> = checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.check)
        .collect();
    failed.dedup();
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    // The deploy system shows only the tail: end with a one-line summary.
    eprintln!(
        "telefig: doctor: failed: {}; see the FAIL lines above",
        failed.join(", ")
    );
    Ok(ExitCode::from(1))
}

fn endpoint() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

fn docker(f: &HostFacts) -> Check {
    let os = f
        .operating_system
        .as_deref()
        .map_or(String::new(), |os| format!(" on {os}"));
    Check::ok(
        "docker",
        format!(
            "Docker Engine {}{os} answers at {}, API {}",
            f.server_version,
            endpoint(),
            f.api_version
        ),
    )
}

fn docker_unreachable(err: &engine::Error) -> Check {
    match err {
        engine::Error::Connect { endpoint, source } => Check::fail(
            "docker",
            format!("cannot reach the Docker Engine at {endpoint}: {source}"),
            "start dockerd (`systemctl start docker`), or point DOCKER_HOST at it",
        ),
        other => Check::fail(
            "docker",
            other.to_string(),
            "look at dockerd's log (`journalctl -u docker`)",
        ),
    }
}

fn parse_api(version: &str) -> Option<(u32, u32)> {
    let (major, minor) = version.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn api_version(f: &HostFacts) -> Check {
    let range = match &f.min_api_version {
        Some(min) => format!("daemon accepts {min}–{}", f.api_version),
        None => format!("daemon speaks up to {}", f.api_version),
    };
    let detail = format!(
        "API {} ({range}); telefig speaks {}",
        f.api_version, f.negotiated_api_version
    );
    let (major, minor) = MIN_API;
    match parse_api(&f.negotiated_api_version) {
        Some(v) if v >= MIN_API => Check::ok("api version", detail),
        Some(_) => Check::fail(
            "api version",
            detail,
            format!(
                "upgrade the Docker Engine: telefig needs API {major}.{minor} or newer (Docker 17.05+)"
            ),
        ),
        None => Check::warn(
            "api version",
            detail,
            "telefig cannot read this version; run `docker version` and check the Engine",
        ),
    }
}

fn live_restore(f: &HostFacts) -> Check {
    if f.live_restore_enabled {
        Check::ok(
            "live-restore",
            "enabled: containers keep running while dockerd restarts",
        )
    } else {
        Check::warn(
            "live-restore",
            "disabled: restarting or upgrading dockerd stops every container on the host",
            "add \"live-restore\": true to /etc/docker/daemon.json and run `systemctl reload docker`",
        )
    }
}

/// Restart policy per (serviceset, container) from the records `start` left.
type RecordedPolicies = BTreeMap<(String, String), String>;

fn recorded_policies(state_dir: &Path) -> RecordedPolicies {
    // An unreadable record is reported by the state-dir check; here the
    // role's default stands in for it.
    let records = StateDir::new(state_dir).list().unwrap_or_default();
    records
        .iter()
        .flat_map(|r| {
            r.expanded.containers.iter().map(|c| {
                (
                    (r.serviceset.to_string(), c.name.clone()),
                    c.create.host_config.restart_policy.name.clone(),
                )
            })
        })
        .collect()
}

/// Each container should carry the policy it was created with: the one
/// recorded by `start`, else the default for its role.
fn restart_policies(f: &HostFacts, recorded: &RecordedPolicies) -> Check {
    let mut wrong = Vec::new();
    for c in &f.containers {
        let expected = recorded
            .get(&(c.serviceset.clone(), c.name.clone()))
            .map_or(c.default_policy(), String::as_str);
        if c.policy != expected {
            wrong.push((c, expected));
        }
    }
    if wrong.is_empty() {
        return Check::ok(
            "restart policies",
            format!(
                "{} telefig container(s) carry the policy they were created with",
                f.containers.len()
            ),
        );
    }
    let detail = wrong
        .iter()
        .map(|(c, expected)| format!("{} has `{}`, expected `{expected}`", c.name, c.policy))
        .collect::<Vec<_>>()
        .join("; ");
    let fix = wrong
        .iter()
        .map(|(c, expected)| format!("docker update --restart={expected} {}", c.name))
        .collect::<Vec<_>>()
        .join(" && ");
    Check::warn("restart policies", detail, format!("run `{fix}`"))
}

/// Where a registry sits in the platform's pull order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RegistryRole {
    Primary,
    Mirror,
}

async fn registries(platform: Option<&Path>) -> Vec<Check> {
    let platform = match Platform::load(platform) {
        Ok(p) => p,
        Err(e) => {
            return vec![Check::fail(
                "registry",
                format!("cannot load the platform file: {e}"),
                "fix the platform file, or pass --platform FILE",
            )];
        }
    };
    let r = &platform.registries;
    let hosts: Vec<(RegistryRole, String)> = std::iter::once(&r.primary)
        .filter(|p| !p.is_empty())
        .map(|p| (RegistryRole::Primary, p.clone()))
        .chain(r.mirrors.iter().map(|m| (RegistryRole::Mirror, m.clone())))
        .collect();
    let probes = futures_util::future::join_all(hosts.iter().map(|(_, h)| probe_registry(h))).await;
    let results: Vec<_> = hosts
        .into_iter()
        .zip(probes)
        .map(|((role, host), answer)| (role, host, answer))
        .collect();
    registry_checks(&platform.source, &results)
}

/// Verdicts from the probes: an unreachable registry is a warning while
/// another one answers (pulls fall back to it), a failure when none does.
fn registry_checks(
    source: &Path,
    results: &[(RegistryRole, String, Result<String, String>)],
) -> Vec<Check> {
    if results.is_empty() {
        return vec![Check::ok(
            "registry",
            format!(
                "the platform ({}) names no registry; images come from where their references say",
                source.display()
            ),
        )];
    }
    let answering: Vec<&str> = results
        .iter()
        .filter(|(_, _, a)| a.is_ok())
        .map(|(_, h, _)| h.as_str())
        .collect();
    let fix = format!(
        "check the network path to it and that the registry runs, or its entry in {}",
        source.display()
    );
    results
        .iter()
        .map(|(role, host, answer)| {
            let what = match role {
                RegistryRole::Primary => "primary",
                RegistryRole::Mirror => "mirror",
            };
            match answer {
                Ok(how) => Check::ok("registry", format!("{what} {host} {how}")),
                Err(why) if answering.is_empty() => Check::fail(
                    "registry",
                    format!("{what} {host} is unreachable ({why}), and no other registry answers: pulls will fail"),
                    fix.clone(),
                ),
                Err(why) => Check::warn(
                    "registry",
                    format!(
                        "{what} {host} is unreachable ({why}); pulls fall back to {}",
                        answering.join(", ")
                    ),
                    fix.clone(),
                ),
            }
        })
        .collect()
}

/// `GET /v2/` over plain TCP. A host without a port is tried on 443, then
/// 80. Ok says how it answered; Err says why nothing usable did.
async fn probe_registry(host: &str) -> Result<String, String> {
    let addresses = if has_port(host) {
        vec![host.to_owned()]
    } else {
        vec![format!("{host}:443"), format!("{host}:80")]
    };
    // A name that does not resolve fails the same way on every port.
    let lookup = tokio::time::timeout(REGISTRY_TIMEOUT, tokio::net::lookup_host(&addresses[0]));
    match lookup.await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(format!("cannot resolve it: {e}")),
        Err(_) => {
            return Err(format!(
                "cannot resolve it within {}s",
                REGISTRY_TIMEOUT.as_secs()
            ));
        }
    }
    let mut why = Vec::new();
    for addr in addresses {
        match tokio::time::timeout(REGISTRY_TIMEOUT, get_v2(&addr, host)).await {
            Ok(Ok(answer)) => match judge_answer(&answer) {
                Ok(how) => return Ok(format!("{how} on {addr}")),
                Err(e) => why.push(format!("{addr}: {e}")),
            },
            Ok(Err(e)) => why.push(format!("{addr}: {e}")),
            Err(_) => why.push(format!(
                "{addr}: no answer within {}s",
                REGISTRY_TIMEOUT.as_secs()
            )),
        }
    }
    Err(why.join("; "))
}

/// `host:port` or `[v6]:port`, not a bare host.
fn has_port(host: &str) -> bool {
    host.rsplit_once(':').is_some_and(|(h, port)| {
        !h.is_empty() && port.parse::<u16>().is_ok() && (!h.contains(':') || h.ends_with(']'))
    })
}

async fn get_v2(addr: &str, host: &str) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!(
        "GET /v2/ HTTP/1.0\r\nHost: {host}\r\nUser-Agent: telefig-doctor\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.take(4096).read_to_end(&mut answer).await?;
    Ok(answer)
}

/// A registry answers `/v2/` with 200 (open) or 401 (needs a login). A TLS
/// port answers plain HTTP with a 400 naming HTTPS, or a TLS alert: the
/// registry is up, though doctor, speaking plain HTTP, saw no more.
fn judge_answer(answer: &[u8]) -> Result<String, String> {
    if answer.first() == Some(&0x15) {
        return Ok("answers TLS (registry API not checked)".into());
    }
    let text = String::from_utf8_lossy(answer);
    let status = text
        .strip_prefix("HTTP/1.")
        .and_then(|t| t.get(2..))
        .and_then(|t| t.split_whitespace().next())
        .and_then(|s| s.parse::<u16>().ok());
    match status {
        Some(code @ (200 | 401)) => Ok(format!("answers /v2/ with HTTP {code}")),
        Some(400) if text.to_ascii_lowercase().contains("https") => {
            Ok("answers TLS (registry API not checked)".into())
        }
        Some(code) => Err(format!("answers /v2/ with HTTP {code}: not a registry")),
        None if answer.is_empty() => Err("closed the connection without an answer".into()),
        None => Err("answered, but not in HTTP".into()),
    }
}

/// Create and remove a file in the state dir. A dir that does not exist yet
/// is created for the test and removed again, as `start` would create it.
fn state_dir(dir: &Path) -> Check {
    let fix = "pass --state-dir DIR, or run telefig as a user that can write there (the deploy hook runs it as root)";
    let missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
        .map(Path::to_path_buf)
        .collect();
    let shown = dir.display();
    let probe = dir.join(format!(".telefig-doctor-{}", std::process::id()));
    let written = std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create {shown}: {e}"))
        .and_then(|()| {
            std::fs::write(&probe, b"telefig doctor\n")
                .map_err(|e| format!("cannot write in {shown}: {e}"))
        })
        .and_then(|()| {
            std::fs::remove_file(&probe)
                .map_err(|e| format!("cannot remove {}: {e}", probe.display()))
        });
    // Deepest first, so each is empty when its turn comes.
    for created in &missing {
        let _ = std::fs::remove_dir(created);
    }
    if let Err(detail) = written {
        return Check::fail("state dir", detail, fix);
    }
    if !missing.is_empty() {
        return Check::ok(
            "state dir",
            format!("{shown} does not exist yet and can be created (`start` will)"),
        );
    }
    match StateDir::new(dir).list() {
        Ok(records) => Check::ok(
            "state dir",
            format!(
                "{shown} is writable; {} serviceset(s) recorded",
                records.len()
            ),
        ),
        Err(e) => Check::warn(
            "state dir",
            format!("{shown} is writable, but a record is unreadable"),
            e.to_string(),
        ),
    }
}

fn clock(facts: Option<&HostFacts>, now: SystemTime) -> Check {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (year, month, day) = crate::platform::schedule::civil_from_days(secs.div_euclid(86_400));
    let local = format!("{year:04}-{month:02}-{day:02}");
    let ntp = "sync the clock with NTP (`timedatectl set-ntp true`, or chrony/ntpd)";
    if year < MIN_YEAR {
        return Check::fail(
            "clock",
            format!("the local clock says {local}: it was never set"),
            ntp,
        );
    }
    let Some(facts) = facts else {
        return Check::ok(
            "clock",
            format!("local date {local}; the daemon's clock not compared (Docker unreachable)"),
        );
    };
    match facts.clock_skew() {
        Some(skew) if skew.abs() >= MAX_SKEW => Check::fail(
            "clock",
            format!(
                "the Docker daemon's clock is {:.1}s {} the local one (limit {}s)",
                skew.as_secs_f64().abs(),
                if skew.0 > 0 { "ahead of" } else { "behind" },
                MAX_SKEW.as_secs()
            ),
            format!("{ntp}, on this host and on the Docker host"),
        ),
        Some(skew) => Check::ok(
            "clock",
            format!(
                "local date {local}; the Docker daemon's clock is within {:.1}s",
                skew.as_secs_f64().abs()
            ),
        ),
        None => Check::warn(
            "clock",
            format!(
                "local date {local}; the daemon reported no readable time ({:?})",
                facts.system_time
            ),
            "run `docker info --format '{{.SystemTime}}'` and compare it with `date -u`",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ContainerRestart;

    fn facts() -> HostFacts {
        HostFacts {
            server_version: "27.3.1".into(),
            api_version: "1.47".into(),
            min_api_version: Some("1.24".into()),
            negotiated_api_version: "1.47".into(),
            operating_system: None,
            live_restore_enabled: false,
            system_time: Some("2026-03-01T12:00:01Z".into()),
            observed_at: UNIX_EPOCH + Duration::from_secs(1_772_366_400),
            containers: vec![],
        }
    }

    #[test]
    fn civil_dates() {
        assert_eq!(crate::platform::schedule::civil_from_days(0), (1970, 1, 1));
        assert_eq!(
            crate::platform::schedule::civil_from_days(19_723),
            (2024, 1, 1)
        );
        assert_eq!(
            crate::platform::schedule::civil_from_days(20_513),
            (2026, 3, 1)
        );
    }

    #[test]
    fn clock_checks_the_year_and_the_skew() {
        let mut f = facts();
        let now = f.observed_at;
        assert_eq!(clock(Some(&f), now).status, Status::Ok);
        f.system_time = Some("2026-03-01T12:00:09Z".into());
        let c = clock(Some(&f), now);
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("9.0s ahead of"), "{}", c.detail);
        let never_set = UNIX_EPOCH + Duration::from_secs(86_400);
        assert_eq!(clock(None, never_set).status, Status::Fail);
        assert_eq!(clock(None, now).status, Status::Ok);
    }

    #[test]
    fn live_restore_off_warns_with_the_fix() {
        let c = live_restore(&facts());
        assert_eq!(c.status, Status::Warn);
        assert!(c.fix.unwrap().contains("\"live-restore\": true"));
    }

    #[test]
    fn old_api_fails() {
        let mut f = facts();
        assert_eq!(api_version(&f).status, Status::Ok);
        f.negotiated_api_version = "1.25".into();
        assert_eq!(api_version(&f).status, Status::Fail);
    }

    #[test]
    fn restart_policy_expected_from_record_else_role() {
        let mut f = facts();
        let c = |name: &str, role: &str, policy: &str| ContainerRestart {
            name: name.into(),
            serviceset: "shop".into(),
            role: role.into(),
            policy: policy.into(),
        };
        f.containers = vec![
            c("web", "main", "unless-stopped"),
            c("migrate", "job", "no"),
            c("worker", "main", "always"),
            c("web-logging", "sidecar", "no"),
        ];
        let recorded =
            RecordedPolicies::from([(("shop".into(), "worker".into()), "always".into())]);
        let check = restart_policies(&f, &recorded);
        assert_eq!(check.status, Status::Warn);
        assert_eq!(
            check.detail,
            "web-logging has `no`, expected `unless-stopped`"
        );
        assert_eq!(
            check.fix.as_deref(),
            Some("run `docker update --restart=unless-stopped web-logging`")
        );
    }

    #[test]
    fn an_unreachable_primary_fails_only_without_a_mirror() {
        let src = Path::new("p.yaml");
        let down = || Err::<String, _>("connection refused".to_owned());
        let up = || Ok::<_, String>("answers /v2/ with HTTP 401 on m:5000".to_owned());
        let alone = registry_checks(src, &[(RegistryRole::Primary, "r:1".into(), down())]);
        assert_eq!(alone[0].status, Status::Fail);
        assert!(alone[0].detail.starts_with("primary r:1 is unreachable"));
        let with_mirror = registry_checks(
            src,
            &[
                (RegistryRole::Primary, "r:1".into(), down()),
                (RegistryRole::Mirror, "m:5000".into(), up()),
            ],
        );
        assert_eq!(with_mirror[0].status, Status::Warn);
        assert!(with_mirror[0].detail.ends_with("pulls fall back to m:5000"));
        assert_eq!(with_mirror[1].status, Status::Ok);
    }

    #[test]
    fn registry_answers() {
        assert!(judge_answer(b"HTTP/1.1 401 Unauthorized\r\n\r\n").is_ok());
        assert!(judge_answer(b"HTTP/1.0 200 OK\r\n\r\n{}").is_ok());
        assert!(
            judge_answer(b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
                .is_ok()
        );
        assert!(judge_answer(b"\x15\x03\x01\x00\x02\x02\x46").is_ok());
        assert!(judge_answer(b"HTTP/1.1 404 Not Found\r\n\r\n").is_err());
        assert!(judge_answer(b"").is_err());
        assert!(has_port("127.0.0.1:5000") && has_port("[::1]:5000"));
        assert!(!has_port("registry.internal") && !has_port("::1"));
    }

    #[test]
    fn state_dir_probe_leaves_nothing_behind() {
        let root = std::env::temp_dir().join(format!("telefig-doctor-unit-{}", std::process::id()));
        let dir = root.join("a/b");
        let c = state_dir(&dir);
        assert_eq!(c.status, Status::Ok, "{c:?}");
        assert!(!root.exists(), "created dirs are removed again");
        std::fs::create_dir_all(&dir).unwrap();
        assert!(state_dir(&dir).detail.contains("is writable"));
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(state_dir(Path::new("/proc/forbidden")).status, Status::Fail);
    }
}
