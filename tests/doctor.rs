//! `telefig doctor` against the real Docker Engine on this host (issue:
//! doctor). The registries are stand-ins on 127.0.0.1: a port nobody
//! listens on, and a listener that answers like a registry wanting a login.
//! doctor asks dockerd to reach them (distribution inspect), so without a
//! Docker Engine the registries are not checked at all.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::*;

/// A platform file naming these registries.
fn platform(dir: &Path, primary: &str, mirrors: &[&str]) -> PathBuf {
    let path = dir.join("platform.yaml");
    let mirrors = mirrors
        .iter()
        .map(|m| format!("\"{m}\""))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        &path,
        format!("registries: {{primary: \"{primary}\", mirrors: [{mirrors}]}}\n"),
    )
    .unwrap();
    path
}

/// `127.0.0.1:<port>` with nothing listening.
fn closed_port() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// `127.0.0.1:<port>` answering every request with 401, as a registry does
/// for `GET /v2/` without credentials. Lives as long as the test process.
fn registry_stand_in() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(
                b"HTTP/1.0 401 Unauthorized\r\nDocker-Distribution-Api-Version: registry/2.0\r\n\r\n",
            );
        }
    });
    addr
}

/// Run `doctor --json`; the exit code, the checks, and stderr.
fn doctor_json(state_dir: &Path, platform: &Path) -> (Option<i32>, Vec<Value>, String) {
    let out = telefig()
        .args(["doctor", "--json", "--state-dir"])
        .arg(state_dir)
        .arg("--platform")
        .arg(platform)
        .output()
        .expect("run telefig");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let checks: Vec<Value> = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("doctor --json printed no JSON array ({e}): {stdout}{stderr}"));
    (out.status.code(), checks, stderr)
}

/// The entries for one check.
fn entries<'a>(checks: &'a [Value], name: &str) -> Vec<&'a Value> {
    checks.iter().filter(|c| c["check"] == name).collect()
}

fn only<'a>(checks: &'a [Value], name: &str) -> &'a Value {
    let found = entries(checks, name);
    assert_eq!(found.len(), 1, "one `{name}` check in {checks:#?}");
    found[0]
}

fn detail(check: &Value) -> &str {
    check["detail"].as_str().unwrap_or_default()
}

#[test]
fn reports_the_engine_state_dir_clock_and_an_unreachable_primary() {
    if !require_docker() {
        return;
    }
    let dir = scratch_dir("doctor");
    let primary = closed_port();
    let (code, checks, stderr) = doctor_json(&dir.join("state"), &platform(&dir, &primary, &[]));

    let api = docker_ok(&["version", "--format", "{{.Server.APIVersion}}"]);
    let docker = only(&checks, "docker");
    assert_eq!(docker["status"], "ok", "{docker}");
    assert!(detail(docker).contains(&format!("API {api}")), "{docker}");
    assert_eq!(only(&checks, "api version")["status"], "ok");

    let live_restore = docker_ok(&["info", "--format", "{{.LiveRestoreEnabled}}"]);
    let check = only(&checks, "live-restore");
    if live_restore == "true" {
        assert_eq!(check["status"], "ok", "{check}");
    } else {
        assert_eq!(check["status"], "warn", "{check}");
        let fix = check["fix"].as_str().unwrap();
        assert!(fix.contains("\"live-restore\": true"), "{fix}");
        assert!(fix.contains("systemctl reload docker"), "{fix}");
    }

    let state = only(&checks, "state dir");
    assert_eq!(state["status"], "ok", "{state}");
    assert!(
        !dir.join("state").exists(),
        "doctor removes what it created"
    );
    assert_eq!(only(&checks, "clock")["status"], "ok");
    assert!(
        ["ok", "warn"].contains(
            &only(&checks, "restart policies")["status"]
                .as_str()
                .unwrap()
        )
    );

    // No mirror answers for it: the unreachable primary fails doctor.
    let registry = only(&checks, "registry");
    assert_eq!(registry["status"], "fail", "{registry}");
    assert!(
        detail(registry).contains(&format!("primary {primary} is unreachable")),
        "{registry}"
    );
    assert_eq!(code, Some(1));
    assert!(
        stderr.trim_end().ends_with("see the FAIL lines above"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unwritable_state_dir_fails_and_a_mirror_covers_the_primary() {
    if !require_docker() {
        return;
    }
    let dir = scratch_dir("doctor");
    let (primary, mirror) = (closed_port(), registry_stand_in());
    let (code, checks, _) = doctor_json(
        Path::new("/proc/forbidden"),
        &platform(&dir, &primary, &[&mirror]),
    );

    let state = only(&checks, "state dir");
    assert_eq!(state["status"], "fail", "{state}");
    assert!(detail(state).contains("/proc/forbidden"), "{state}");
    assert!(state["fix"].as_str().unwrap().contains("--state-dir"));

    // The primary is down but the mirror answers: a warning, not a failure.
    let registries = entries(&checks, "registry");
    assert_eq!(registries.len(), 2, "{registries:#?}");
    assert_eq!(registries[0]["status"], "warn", "{}", registries[0]);
    assert!(
        detail(registries[0]).contains(&format!("pulls fall back to {mirror}")),
        "{}",
        registries[0]
    );
    assert_eq!(registries[1]["status"], "ok", "{}", registries[1]);
    let mirror_detail = detail(registries[1]);
    assert!(
        mirror_detail.contains("answers through dockerd (HTTP 401"),
        "{mirror_detail}"
    );

    let failed: Vec<&Value> = checks.iter().filter(|c| c["status"] == "fail").collect();
    assert_eq!(failed, [state], "only the state dir fails");
    assert_eq!(code, Some(1));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Needs no Docker: it points DOCKER_HOST at a socket that is not there.
/// The registry answers, but only dockerd is asked about it: not checked.
#[test]
fn without_docker_the_other_checks_still_run() {
    let dir = scratch_dir("doctor");
    let out = telefig()
        .env(
            "DOCKER_HOST",
            format!("unix://{}", dir.join("no.sock").display()),
        )
        .arg("doctor")
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--platform")
        .arg(platform(&dir, &registry_stand_in(), &[]))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("FAIL docker: cannot reach the Docker Engine"),
        "{stdout}"
    );
    assert!(lines[0].contains(" — start dockerd"), "{stdout}");
    for check in [
        "warn registry: primary 127.0.0.1:",
        "ok   state dir:",
        "ok   clock:",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(check)),
            "{check} in {stdout}"
        );
    }
    assert!(
        stdout.contains("not checked: the check asks dockerd"),
        "{stdout}"
    );
    assert!(!stdout.contains("live-restore"), "{stdout}");
    assert_eq!(out.status.code(), Some(1));
    std::fs::remove_dir_all(&dir).unwrap();
}
