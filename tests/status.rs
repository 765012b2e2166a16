//! `status` from its sources (the daemon's live model, else one list call)
//! and the remembered Engine API version, against the real engine.

#[path = "support/stack.rs"]
mod stack;
mod support;

use std::fs;

use serde_json::Value;
use stack::*;
use support::*;

fn endpoint() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

/// `start` remembers the negotiated API version for the host; a stale one
/// (from a dockerd since downgraded) does not stop `status` from answering.
/// (bollard 0.21 sends unversioned paths, so dockerd never refuses one; were
/// it refused, the engine would negotiate again, `version.rs`.)
#[test]
fn the_api_version_is_remembered_per_host() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    assert_exit(&s.start(&[]), 0);
    let cache = s.dir.join("state/cache/api-version.json");
    let server = docker_ok(&["version", "--format", "{{.Server.APIVersion}}"]);
    let remembered: Value = serde_json::from_str(&fs::read_to_string(&cache).unwrap()).unwrap();
    assert_eq!(remembered[endpoint()], server.trim());
    fs::write(
        &cache,
        serde_json::json!({ endpoint(): "1.99" }).to_string(),
    )
    .unwrap();
    let out = s.telefig(&["status", "--json"]);
    assert_exit(&out, 0);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["containers"].as_array().map(Vec::len), Some(5));
}

/// `status` with no daemon: one list call; only a stopped container is
/// inspected (for its restart count and last exit).
#[test]
fn status_without_a_daemon_lists_once_and_inspects_only_the_stopped() {
    let Some((s, proxy)) = started_behind_a_request_log() else {
        return;
    };
    let status = || proxy.telefig(&s, &["status", "--json"]);
    let out = status();
    assert_exit(&out, 0);
    let asked = proxy.take();
    assert_eq!(asked.len(), 1, "{asked:#?}");
    assert!(asked[0].starts_with("GET /containers/json"), "{asked:#?}");

    docker_ok(&["stop", "-t", "1", &s.name("metrics")]);
    let out = status();
    assert_exit(&out, 3);
    let asked = proxy.take();
    assert_eq!(asked.len(), 2, "{asked:#?}");
    assert!(asked[1].starts_with("GET /containers/"), "{asked:#?}");
    assert!(asked[1].contains("/json"), "{asked:#?}");
}

/// A unix-socket proxy in front of dockerd that logs each request line
/// ("GET /containers/json?..."), to count what a command asks.
struct RequestLog {
    socket: std::path::PathBuf,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl RequestLog {
    fn start(dir: &std::path::Path) -> RequestLog {
        use std::io::{Read, Write};
        use std::os::unix::net::{UnixListener, UnixStream};
        let socket = dir.join("docker-proxy.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = lines.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { return };
                let mut upstream = UnixStream::connect("/var/run/docker.sock").unwrap();
                let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut u2, &mut c2);
                    let _ = c2.shutdown(std::net::Shutdown::Write);
                });
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut buf = vec![0; 65536];
                    while let Ok(n) = client.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        for line in String::from_utf8_lossy(&buf[..n]).split("\r\n") {
                            let verb = line.split(' ').next().unwrap_or("");
                            if ["GET", "POST", "DELETE", "HEAD", "PUT"].contains(&verb)
                                && line.ends_with("HTTP/1.1")
                            {
                                log.lock().unwrap().push(line.to_owned());
                            }
                        }
                        if upstream.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = upstream.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        RequestLog { socket, lines }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines.lock().unwrap())
    }

    /// `telefig ARGS` on `s`, its Docker calls through this proxy.
    fn telefig(&self, s: &Stack, args: &[&str]) -> std::process::Output {
        s.command(args)
            .env("DOCKER_HOST", self.host())
            .output()
            .unwrap()
    }
}

/// A stack started through a fresh request log (which negotiated the API
/// version and remembered it), the log emptied after; `None` when the
/// tests' engine is not the default socket the proxy forwards to.
fn started_behind_a_request_log() -> Option<(Stack, RequestLog)> {
    if !require_docker() || endpoint() != "unix:///var/run/docker.sock" {
        return None;
    }
    let s = Stack::new();
    let proxy = RequestLog::start(&s.dir);
    assert_exit(&proxy.telefig(&s, &["start"]), 0);
    let first = proxy.take();
    assert!(first.iter().any(|l| l.contains("/version")), "{first:#?}");
    Some((s, proxy))
}

/// A no-op `start` (issue 13): one list call and nothing else, not even a
/// version round trip once the API version is remembered for the host.
#[test]
fn a_no_op_start_makes_one_list_call() {
    let Some((s, proxy)) = started_behind_a_request_log() else {
        return;
    };
    let out = proxy.telefig(&s, &["start"]);
    assert_exit(&out, 0);
    let second = proxy.take();
    assert_eq!(second.len(), 1, "{second:#?}\n{}", text(&out));
    assert!(second[0].starts_with("GET /containers/json"), "{second:#?}");
}

/// `logs` speaks the API version remembered for the host, as `start` and
/// `status` do: a list call and the logs call, no version round trip.
#[test]
fn logs_with_a_remembered_api_version_makes_no_version_round_trip() {
    let Some((s, proxy)) = started_behind_a_request_log() else {
        return;
    };
    let out = proxy.telefig(&s, &["logs", &s.web()]);
    assert_exit(&out, 0);
    let asked = proxy.take();
    assert!(
        !asked.iter().any(|l| l.contains("/version")),
        "{asked:#?}\n{}",
        text(&out)
    );
    assert_eq!(asked.len(), 2, "{asked:#?}");
    assert!(asked[0].starts_with("GET /containers/json"), "{asked:#?}");
    assert!(asked[1].contains("/logs"), "{asked:#?}");
}

/// `doctor` too: with the API version remembered for the host, its only
/// `/version` call is the one whose answer it shows (no negotiation first).
#[test]
fn doctor_with_a_remembered_api_version_asks_the_version_once() {
    let Some((s, proxy)) = started_behind_a_request_log() else {
        return;
    };
    let out = proxy.telefig(&s, &["doctor", "--json"]);
    let asked = proxy.take();
    let versions = asked.iter().filter(|l| l.contains("/version")).count();
    assert_eq!(versions, 1, "{asked:#?}\n{}", text(&out));
    let checks: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let api = checks
        .as_array()
        .and_then(|c| c.iter().find(|c| c["check"] == "api version"))
        .unwrap_or_else(|| panic!("an `api version` check\n{}", text(&out)));
    assert_eq!(api["status"], "ok", "{api:#}");
}
