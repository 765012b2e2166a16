//! Drain before stop, measured (issue 14, item 1): two instances of one
//! service on loopback ports, each with a discovery sidecar that writes its
//! `host:port` into a shared serverset file when its owner is healthy and
//! removes it when stopped; a client re-reads that file, sees each change
//! 2 s late (the way a ZooKeeper-backed serverset reaches clients late)
//! and sends requests continuously. Deploying a new version of one
//! instance drops no request with a drain period (3 s) longer than that
//! lag; the same deploy with `--no-drain` drops some, so the test can fail.
//!
//! Zero drops by default (issue 23, part 1): the same redeploy with the
//! platform file's defaults untouched (no `drain_period`), and a client that
//! keeps the list it read for 1 s, drops nothing: a service a discovery
//! sidecar registers drains the built-in default.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use support::*;

/// One scenario at a time: each runs a busy client, and a loaded host
/// makes health probes time out.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// How often the client re-reads the serverset file.
const REFRESH: Duration = Duration::from_millis(20);
/// How late the client sees a change of it (less than the drain period).
const LAG: Duration = Duration::from_secs(2);
/// How long the default-settings client keeps the list it read.
const HOLD: Duration = Duration::from_secs(1);

/// How the client sees the serverset file.
#[derive(Clone, Copy)]
enum View {
    /// Re-read every `REFRESH`, each change seen `LAG` late.
    Lagging,
    /// Read, then kept for `HOLD` before the next read.
    Held,
}

struct Fleet {
    guard: Cleanup,
    dir: PathBuf,
    serverset: PathBuf,
    ports: [u16; 2],
}

impl Fleet {
    /// The platform sets `drain_period: 3s`.
    fn new() -> Fleet {
        Fleet::with_defaults("defaults: {drain_period: 3s}\n")
    }

    /// `defaults` is the platform file's `defaults:` text (empty: none).
    fn with_defaults(defaults: &str) -> Fleet {
        let base = busybox_image("1");
        for tag in ["v1", "v2", "disc"] {
            retag(&base, &format!("tf.local/drainweb:{tag}"));
        }
        let guard = Cleanup::new();
        let dir = scratch_dir("drain");
        let serverset = dir.join("serverset");
        std::fs::write(&serverset, "").unwrap();
        let labels = platform_labels(guard.id());
        let sdir = dir.display();
        let ss = serverset.display();
        // Register: append `127.0.0.1:port` atomically (write aside, rename);
        // deregister on TERM the same way.
        let register = register_script("{{port}}", &ss.to_string());
        let platform = format!(
            "registries: {{primary: tf.local}}\n{labels}\
             {defaults}\
             sidecars:\n  discovery:\n    image: drainweb:disc\n    order: after_healthy\n    params: {{port: ~}}\n    \
             volumes: [\"{sdir}:{sdir}\"]\n    command: [\"sh\", \"-c\", {register:?}]\n"
        );
        std::fs::write(dir.join("platform.yaml"), platform).unwrap();
        Fleet {
            guard,
            dir,
            serverset,
            ports: [free_port(), free_port()],
        }
    }

    fn name(&self, i: usize) -> String {
        format!("{}-web{i}", self.guard.id())
    }

    /// Instance `i` at `version` (v1 or v2), through `telefig start`.
    fn deploy(&self, i: usize, version: &str, extra: &[&str]) -> std::process::Output {
        let port = self.ports[i];
        let name = self.name(i);
        let file = self.dir.join(format!("{name}.conf"));
        std::fs::write(
            &file,
            format!(
                r#"{name}:
  docker:
    image: drainweb
    version: {version}
    command: ["sh", "-c", "httpd -p 127.0.0.1:{port} -h /www; trap 'exit 0' TERM; while :; do sleep 1 & wait; done"]
    stop_grace_period: 1s
    healthcheck: {{test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:{port}/index.html"], interval: 300ms, timeout: 5s, retries: 20, start_period: 20s}}
  sidecars:
    discovery: {{port: {port}}}
"#
            ),
        )
        .unwrap();
        let mut cmd = telefig();
        cmd.arg("start")
            .args(extra)
            .arg("-c")
            .arg(&file)
            .arg("--platform")
            .arg(self.dir.join("platform.yaml"))
            .arg("--name")
            .arg(&name)
            .arg("--state-dir")
            .arg(self.dir.join("state"));
        cmd.output().unwrap()
    }
}

/// A discovery sidecar's script: add `127.0.0.1:<port>` to the serverset
/// file, remove it on TERM; each change under a lock directory (sidecars of
/// both instances may start at once), written aside and renamed over.
fn register_script(port: &str, serverset: &str) -> String {
    format!(
        "E=127.0.0.1:{port}; F={serverset}; \
         update() {{ until mkdir $F.lock 2>/dev/null; do sleep 0.05; done; \
         grep -vx \"$E\" $F > $F.$$ ; [ \"$1\" = add ] && echo \"$E\" >> $F.$$ ; mv $F.$$ $F; rmdir $F.lock; }}; \
         trap 'update del; exit 0' TERM; update add; while :; do sleep 1 & wait; done"
    )
}

fn read_serverset(path: &Path) -> Vec<SocketAddr> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// One request; whether it got a 200.
fn request(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    answer.starts_with(b"HTTP/1.0 200") || answer.starts_with(b"HTTP/1.1 200")
}

/// Send requests round-robin over the serverset as `view` sees it, until
/// `stop` (bounded by a count and a time); (sent, failed).
fn client(serverset: PathBuf, stop: Arc<AtomicBool>, view: View) -> (u64, u64) {
    let (mut sent, mut failed) = (0u64, 0u64);
    let began = Instant::now();
    let mut seen = std::collections::VecDeque::from([(began, read_serverset(&serverset))]);
    let mut read_at = began;
    while !stop.load(Ordering::Relaxed)
        && sent < 200_000
        && began.elapsed() < Duration::from_secs(90)
    {
        match view {
            View::Lagging => {
                if read_at.elapsed() >= REFRESH {
                    read_at = Instant::now();
                    seen.push_back((read_at, read_serverset(&serverset)));
                }
                // The newest view at least LAG old becomes the client's list.
                while seen.len() > 1 && seen[1].0.elapsed() >= LAG {
                    seen.pop_front();
                }
            }
            View::Held => {
                if read_at.elapsed() >= HOLD {
                    read_at = Instant::now();
                    seen =
                        std::collections::VecDeque::from([(read_at, read_serverset(&serverset))]);
                }
            }
        }
        let servers = &seen[0].1;
        let Some(addr) = servers.get(sent as usize % servers.len().max(1)).copied() else {
            thread::sleep(Duration::from_millis(5));
            continue;
        };
        sent += 1;
        if !request(addr) {
            failed += 1;
        }
        // Leave the host's cores to the engine and the health probes.
        thread::sleep(Duration::from_millis(1));
    }
    (sent, failed)
}

/// Deploy v1 of both, then v2 of instance 0 (with `extra` flags) under load.
fn redeploy_under_load(extra: &[&str]) -> (u64, u64, String) {
    redeploy_on(Fleet::new(), extra, View::Lagging)
}

/// [`redeploy_under_load`] on `fleet`, with a client that sees the file as `view`.
fn redeploy_on(fleet: Fleet, extra: &[&str], view: View) -> (u64, u64, String) {
    for i in 0..2 {
        let out = fleet.deploy(i, "v1", &[]);
        assert_exit(&out, 0);
    }
    assert!(
        wait_until(Duration::from_secs(10), || read_serverset(&fleet.serverset)
            .len()
            == 2),
        "both instances registered: {:?}",
        std::fs::read_to_string(&fleet.serverset)
    );
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (path, stop) = (fleet.serverset.clone(), stop.clone());
        thread::spawn(move || client(path, stop, view))
    };
    // Load before, during and after the deploy.
    thread::sleep(LAG);
    let out = fleet.deploy(0, "v2", extra);
    assert_exit(&out, 0);
    assert!(
        wait_until(Duration::from_secs(10), || read_serverset(&fleet.serverset)
            .len()
            == 2),
        "the new version registered again"
    );
    thread::sleep(LAG * 2);
    stop.store(true, Ordering::Relaxed);
    let (sent, failed) = load.join().unwrap();
    assert_eq!(
        inspect(&fleet.name(0))["Config"]["Image"],
        "tf.local/drainweb:v2"
    );
    (sent, failed, text(&out))
}

#[test]
fn redeploy_with_drain_drops_no_request() {
    if !require_docker() {
        return;
    }
    let _one = serial();
    let (sent, failed, out) = redeploy_under_load(&[]);
    eprintln!("drain: {failed} of {sent} requests failed");
    assert!(sent > 500, "the client kept sending: {sent}");
    assert_eq!(failed, 0, "{failed} of {sent} requests failed\n{out}");
    assert!(out.contains("draining   "), "{out}");
    assert!(out.contains("s, period over"), "{out}");
}

#[test]
fn redeploy_with_the_platform_defaults_untouched_drops_no_request() {
    if !require_docker() {
        return;
    }
    let _one = serial();
    let (sent, failed, out) = redeploy_on(Fleet::with_defaults(""), &[], View::Held);
    eprintln!("default drain: {failed} of {sent} requests failed");
    assert!(sent > 500, "the client kept sending: {sent}");
    assert_eq!(failed, 0, "{failed} of {sent} requests failed\n{out}");
    assert!(out.contains("draining   "), "{out}");
    assert!(
        out.contains("3.0 s, period over"),
        "the built-in 3 s: {out}"
    );
}

#[test]
fn redeploy_with_no_drain_drops_requests() {
    if !require_docker() {
        return;
    }
    let _one = serial();
    let (sent, failed, out) = redeploy_under_load(&["--no-drain"]);
    eprintln!("--no-drain: {failed} of {sent} requests failed");
    assert!(out.contains("not draining"), "{out}");
    assert!(
        failed > 0,
        "without drain some requests must fail ({sent} sent)\n{out}"
    );
}

/// The same scenario with Docker Compose (`up -d` of the new version), for
/// comparison: Compose stops the service while it is still registered.
#[test]
fn compose_redeploy_drops_requests() {
    if !require_docker() {
        return;
    }
    let _one = serial();
    let compose = Path::new("/usr/bin/docker-compose");
    assert!(
        compose.exists(),
        "{} is missing: run `tests/setup --no-test` (it installs Debian's docker-compose)",
        compose.display()
    );
    let fleet = Fleet::new();
    let label = test_label(fleet.guard.id());
    let (k, v) = label.split_once('=').unwrap();
    let sdir = fleet.dir.display();
    let ss = fleet.serverset.display();
    let mut services = String::new();
    for (i, port) in fleet.ports.iter().enumerate() {
        let register = register_script(&port.to_string(), &ss.to_string())
            // Compose interpolates `$`: `$$` is a literal one.
            .replace('$', "$$");
        let web_tag = if i == 0 { "${V0}" } else { "v1" };
        services += &format!(
            r#"  web{i}:
    image: tf.local/drainweb:{web_tag}
    network_mode: host
    stop_grace_period: 1s
    labels: {{{k}: "{v}"}}
    command: ["sh", "-c", "httpd -p 127.0.0.1:{port} -h /www; trap 'exit 0' TERM; while :; do sleep 1 & wait; done"]
    healthcheck: {{test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:{port}/index.html"], interval: 300ms, timeout: 5s, retries: 20, start_period: 20s}}
  web{i}-discovery:
    image: tf.local/drainweb:disc
    network_mode: host
    labels: {{{k}: "{v}"}}
    depends_on: {{web{i}: {{condition: service_healthy}}}}
    volumes: ["{sdir}:{sdir}"]
    command: ["sh", "-c", {register:?}]
"#
        );
    }
    let file = fleet.dir.join("compose.yaml");
    std::fs::write(&file, format!("version: \"2.4\"\nservices:\n{services}")).unwrap();
    let project = fleet.guard.id().replace('-', "");
    let up = |version: &str| {
        std::process::Command::new(compose)
            .args(["-p", &project, "-f"])
            .arg(&file)
            .args(["up", "-d"])
            .env("V0", version)
            .output()
            .unwrap()
    };
    assert_exit(&up("v1"), 0);
    assert!(
        wait_until(Duration::from_secs(20), || read_serverset(&fleet.serverset)
            .len()
            == 2),
        "both instances registered"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (path, stop) = (fleet.serverset.clone(), stop.clone());
        thread::spawn(move || client(path, stop, View::Lagging))
    };
    thread::sleep(LAG);
    let out = up("v2");
    let registered = wait_until(Duration::from_secs(20), || {
        read_serverset(&fleet.serverset).len() == 2
    });
    thread::sleep(LAG * 2);
    stop.store(true, Ordering::Relaxed);
    let (sent, failed) = load.join().unwrap();
    let _ = std::process::Command::new(compose)
        .args(["-p", &project, "-f"])
        .arg(&file)
        .args(["down", "-t", "1"])
        .output();
    assert_exit(&out, 0);
    assert!(registered, "the new version registered again");
    eprintln!("compose: {failed} of {sent} requests failed");
    assert!(
        failed > 0,
        "compose stops the service while it is registered ({sent} sent)"
    );
}
