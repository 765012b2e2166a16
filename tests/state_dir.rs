//! The state dir against the real engine: no secret on disk or in what a
//! waiting caller is told, 0700/0600 modes, a rollback to the version just
//! before, and a daemon that skips a corrupt record and repairs the rest.

#[path = "support/stack.rs"]
mod stack;
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use stack::*;
use support::*;

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

/// `-e API_TOKEN=…` sat world-readable in locks/NAME.lock, was printed to
/// waiting callers, and records held it in plain text (mode 0644).
#[test]
fn a_secret_passed_with_e_is_nowhere_in_the_state_dir_nor_told_to_a_waiting_caller() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    let secret = format!("s3cr3t-{}", s.id());
    let token = format!("API_TOKEN={secret}");
    s.write_serviceset("API_TOKEN={{API_TOKEN}}", true);
    let out = s.start(&["-e", &token]);
    assert_exit(&out, 0);
    // A second deploy whose web takes a few seconds to be healthy holds the lock.
    s.write_web(
        "sleep 3; touch /ready; while :; do sleep 1 & wait; done",
        "API_TOKEN={{API_TOKEN}}, B=2",
        "10s",
        "",
    );
    let first = s
        .command(&["start", "-e", &token])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lock = s.dir.join(format!("state/locks/{}.lock", s.id()));
    assert!(
        wait_until(Duration::from_secs(20), || {
            // Held: our own try_lock would block (the file's text outlives a holder).
            std::fs::File::open(&lock)
                .is_ok_and(|f| matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)))
        }),
        "the first start never took the lock"
    );
    let second = s.telefig(&["stop", "--timeout", "1s", "-e", &token]);
    let told = text(&second);
    assert!(told.contains("held by pid"), "{told}");
    assert!(told.contains("(telefig start, since "), "{told}");
    assert!(!told.contains(&secret), "{told}");
    let first = first.wait_with_output().unwrap();
    assert_exit(&first, 0);
    assert!(!text(&first).contains(&secret));

    let state = s.dir.join("state");
    for path in files(&state) {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        if path.is_dir() {
            assert_eq!(mode, 0o700, "{}", path.display());
        } else {
            assert_eq!(mode, 0o600, "{}", path.display());
            let bytes = std::fs::read(&path).unwrap();
            let body = String::from_utf8_lossy(&bytes);
            assert!(
                !body.contains(&secret),
                "{} holds the secret",
                path.display()
            );
            assert!(
                !body.contains("hunter2"),
                "{} holds DB_PASSWORD",
                path.display()
            );
        }
    }
    let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    // The container itself got the real value.
    let env = inspect(&s.web())["Config"]["Env"].to_string();
    assert!(env.contains(&token), "{env}");
}

/// Two deploys within one second shared `applied_at` and lost a history
/// entry, so rollback went to the wrong version.
#[test]
fn rollback_after_five_quick_deploys_goes_to_the_one_before() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    // web is healthy at its first probe (200 ms), so deploys follow each
    // other within the same second; every one changes web.
    for (i, version) in ["v1", "v2", "v1", "v2", "v1"].iter().enumerate() {
        s.write_web(
            "touch /ready; while :; do sleep 1 & wait; done",
            &format!("A={i}"),
            "5s",
            "",
        );
        let out = s.start(&[
            "-e",
            &format!("WEB_VERSION={version}"),
            "-e",
            "API_TOKEN=t0k",
        ]);
        assert_exit(&out, 0);
    }
    let out = telefig()
        .args(["rollback", s.id(), "--platform"])
        .arg(s.dir.join("platform.yaml"))
        .arg("--state-dir")
        .arg(s.dir.join("state"))
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let image = inspect(&s.web())["Config"]["Image"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(image.ends_with("web:v2"), "rolled back to {image}");
    let env = inspect(&s.web())["Config"]["Env"].to_string();
    assert!(
        env.contains("\"A=3\""),
        "rolled back to the fourth deploy: {env}"
    );
    // DB_PASSWORD is kept as a digest in the record; the rollback took the
    // value back from the running container.
    let env = inspect(&s.web())["Config"]["Env"].to_string();
    assert!(env.contains("DB_PASSWORD=hunter2"), "{env}");
}

/// One corrupt record made `daemon --once` exit 1 with nothing repaired.
#[test]
fn the_daemon_skips_a_corrupt_record_and_repairs_the_rest() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    assert_exit(&s.start(&[]), 0);
    let bad = s.dir.join("state/servicesets/aaa-broken.json");
    std::fs::write(&bad, "{ this is not a record").unwrap();
    docker_ok(&["stop", "-t", "1", &s.name("logging")]);
    let out = s.daemon_once().output().unwrap();
    assert_exit(&out, 0);
    let log = text(&out);
    assert!(log.contains("aaa-broken.json"), "{log}");
    assert_eq!(
        inspect(&s.name("logging"))["State"]["Running"],
        true,
        "{log}"
    );
    let status = telefig()
        .args(["status", "--name", s.id(), "--state-dir"])
        .arg(s.dir.join("state"))
        .output()
        .unwrap();
    assert!(
        text(&status).contains("aaa-broken.json"),
        "{}",
        text(&status)
    );
}

/// The record keeps DB_PASSWORD as a digest: the daemon must not create web
/// with `sha256:…` as its password, and must say what to do instead.
#[test]
fn the_daemon_does_not_create_a_container_from_digests_and_says_to_redeploy() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    assert_exit(&s.start(&[]), 0);
    docker_ok(&["rm", "-f", &s.web()]);
    let out = s.daemon_once().output().unwrap();
    assert_exit(&out, 0);
    let log = text(&out);
    assert!(log.contains("keeps only digests"), "{log}");
    assert!(
        log.contains(&format!("`{}`: DB_PASSWORD", s.web())),
        "{log}"
    );
    assert!(log.contains("run the deploy again"), "{log}");
    assert!(!log.contains("hunter2"), "{log}");
    assert!(try_inspect(&s.web()).is_none(), "web created from digests");
    // The deploy puts it back.
    assert_exit(&s.start(&[]), 0);
    let env = inspect(&s.web())["Config"]["Env"].to_string();
    assert!(env.contains("DB_PASSWORD=hunter2"), "{env}");
}
