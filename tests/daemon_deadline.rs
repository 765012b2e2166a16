//! `telefig daemon` in front of a dockerd that stops answering: its
//! repairs are abandoned at `--docker-timeout` with a log line naming the
//! call in flight, and tried again until dockerd answers — the daemon is
//! never wedged by one hung call.

#[path = "support/stack.rs"]
mod stack;
mod support;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use stack::*;
use support::*;

/// A unix-socket proxy in front of the local dockerd. While `stalled`,
/// requests are read but held back (dockerd never sees them, so they are
/// never answered); answers already on their way (the events stream) flow.
struct StallingProxy {
    socket: PathBuf,
    stalled: Arc<AtomicBool>,
}

impl StallingProxy {
    fn start(dir: &std::path::Path, engine_socket: PathBuf) -> StallingProxy {
        let socket = dir.join("docker-proxy.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let stalled = Arc::new(AtomicBool::new(false));
        let gate = stalled.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { return };
                let mut upstream = UnixStream::connect(&engine_socket).unwrap();
                let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut u2, &mut c2);
                    let _ = c2.shutdown(std::net::Shutdown::Write);
                });
                let gate = gate.clone();
                std::thread::spawn(move || {
                    let mut buf = vec![0; 65536];
                    while let Ok(n) = client.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        while gate.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        if upstream.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = upstream.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        StallingProxy { socket, stalled }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    fn stall(&self, on: bool) {
        self.stalled.store(on, Ordering::SeqCst);
    }
}

/// A running `telefig daemon`, stopped with SIGTERM when dropped (and
/// killed if it is still draining a hung repair 10 s later).
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .arg(self.0.id().to_string())
            .status();
        if !wait_until(Duration::from_secs(10), || {
            self.0.try_wait().ok().flatten().is_some()
        }) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn running(name: &str) -> bool {
    try_inspect(name).is_some_and(|c| c["State"]["Running"] == true)
}

#[test]
fn a_hung_dockerd_costs_a_repair_not_the_daemon() {
    if !require_docker() {
        return;
    }
    let endpoint =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let engine_socket = endpoint.strip_prefix("unix://").map(PathBuf::from).unwrap_or_else(|| {
        panic!("this test stalls the Engine's unix socket; DOCKER_HOST={endpoint} is not one: unset it")
    });
    let s = Stack::new();
    assert_exit(&s.start(&[]), 0);
    let proxy = StallingProxy::start(&s.dir, engine_socket);
    let log_path = s.dir.join("daemon.log");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let _daemon = Daemon(
        telefig()
            .args(["daemon", "--docker-timeout", "3s", "--state-dir"])
            .arg(s.dir.join("state"))
            .env("DOCKER_HOST", proxy.host())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_until(Duration::from_secs(30), || log()
            .contains("idle: events settled")),
        "the daemon settles after its boot repair\n{}",
        log()
    );

    // dockerd stops answering the daemon; a sidecar is removed by hand.
    proxy.stall(true);
    let logging = s.name("logging");
    docker_ok(&["rm", "-f", &logging]);
    let t = std::time::Instant::now();
    assert!(
        wait_until(Duration::from_secs(20), || log()
            .contains("repair abandoned, Docker did not answer")),
        "the hung repair is abandoned and said so\n{}",
        log()
    );
    let abandoned = t.elapsed();
    eprintln!("repair abandoned after {} ms", abandoned.as_millis());
    assert!(
        abandoned >= Duration::from_secs(3),
        "not before --docker-timeout"
    );
    assert!(
        log().contains("timed out listing containers"),
        "the log names the call in flight\n{}",
        log()
    );
    assert!(!running(&logging));

    // dockerd answers again: the repair is tried again on its own.
    proxy.stall(false);
    assert!(
        wait_until(Duration::from_secs(20), || running(&logging)),
        "the sidecar is repaired once dockerd answers\n{}",
        log()
    );
    eprintln!("repaired {} ms after the stall", t.elapsed().as_millis());
}
