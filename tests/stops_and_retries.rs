//! Regressions for retries, stops and signals, against the real engine:
//! a job a killed `start` left running is waited for on the retry; every
//! stop outside the record path honours the container's own grace period;
//! a second SIGTERM during a rollback exits at once, saying what is left.

#[path = "support/stack.rs"]
mod stack;
mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use stack::started_nanos;
use support::*;

/// A serviceset named after its run id, its files and state dir in a scratch
/// directory; images `tf.local/<name>:1` are busybox.
struct Set {
    guard: Cleanup,
    dir: PathBuf,
}

impl Set {
    fn new(images: &[&str]) -> Set {
        let base = busybox_image("1");
        for image in images {
            retag(&base, &format!("tf.local/{image}:1"));
        }
        let set = Set {
            guard: Cleanup::new(),
            dir: scratch_dir("retries"),
        };
        let labels = platform_labels(set.id());
        std::fs::write(
            set.dir.join("platform.yaml"),
            format!("registries: {{primary: \"tf.local\", mirrors: []}}\n{labels}"),
        )
        .unwrap();
        set
    }

    fn id(&self) -> &str {
        self.guard.id()
    }

    fn name(&self, container: &str) -> String {
        format!("{}-{container}", self.id())
    }

    /// Write the serviceset file; `{id}` in `text` stands for the run id.
    fn write(&self, text: &str) {
        let text = format!("version: 1\n{}", text.replace("{id}", self.id()));
        std::fs::write(self.dir.join("serviceset.conf"), text).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        telefig_on(&self.dir, self.id(), args)
    }

    fn telefig(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Spawn `telefig ARGS`, its output going to files read by [`Set::output`].
    fn spawn(&self, args: &[&str]) -> Child {
        let out = std::fs::File::create(self.dir.join("spawned.out")).unwrap();
        let err = std::fs::File::create(self.dir.join("spawned.err")).unwrap();
        self.command(args).stdout(out).stderr(err).spawn().unwrap()
    }

    fn output(&self, status: std::process::ExitStatus) -> Output {
        Output {
            status,
            stdout: std::fs::read(self.dir.join("spawned.out")).unwrap_or_default(),
            stderr: std::fs::read(self.dir.join("spawned.err")).unwrap_or_default(),
        }
    }
}

impl Drop for Set {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn running(name: &str) -> bool {
    try_inspect(name).is_some_and(|c| c["State"]["Running"] == true)
}

fn finished_nanos(name: &str) -> i64 {
    nanos(inspect(name)["State"]["FinishedAt"].as_str().unwrap())
}

/// When Docker reported container `id` dying, after `since` (ns).
fn died_at(id: &str, since: i64) -> Option<i64> {
    docker_ok(&events_since(since, id, "die"))
        .lines()
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .next()
}

const LOOP: &str = "trap 'exit 0' TERM; while :; do sleep 1 & wait; done";

/// `app` waits for the job `migrate` (sleeps 4 s, then exits `code`).
fn job_set(code: u8) -> Set {
    let set = Set::new(&["job", "app"]);
    set.write(&format!(
        r#"{{id}}-migrate:
  kind: job
  docker: {{image: job, version: "1", command: ["sh", "-c", "sleep 4; exit {code}"]}}
{{id}}-app:
  docker: {{image: app, version: "1", command: ["sh", "-c", "{LOOP}"]}}
  depends_on: {{"{{id}}-migrate": {{condition: completed}}}}
"#
    ));
    set
}

/// The first `start` is SIGKILLed while the job runs; returns the retry's output.
fn kill_first_start_while_the_job_runs(set: &Set) -> Output {
    let mut first = set.spawn(&["start"]);
    let migrate = set.name("migrate");
    assert!(
        wait_until(Duration::from_secs(20), || running(&migrate)),
        "the job runs"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(running(&migrate), "the job outlives the killed start");
    set.telefig(&["start"])
}

#[test]
fn a_running_job_counts_as_completed() {
    if !require_docker() {
        return;
    }
    let set = job_set(0);
    let retry = kill_first_start_while_the_job_runs(&set);
    assert_exit(&retry, 0);
    let (migrate, app) = (set.name("migrate"), set.name("app"));
    assert!(
        !running(&migrate),
        "the retry returned while the job still ran\n{}",
        text(&retry)
    );
    assert_eq!(inspect(&migrate)["State"]["ExitCode"], 0);
    assert!(
        started_nanos(&app) > finished_nanos(&migrate),
        "app started after the job exited\n{}",
        text(&retry)
    );
}

#[test]
fn a_running_job_that_then_fails_fails_the_retry() {
    if !require_docker() {
        return;
    }
    let set = job_set(3);
    let retry = kill_first_start_while_the_job_runs(&set);
    assert_exit(&retry, 1);
    assert!(
        text(&retry).contains("exited with code 3"),
        "{}",
        text(&retry)
    );
    assert!(!running(&set.name("app")), "app never started");
}

/// Ignores SIGTERM (PID 1 with the signal ignored): only the kill after the
/// grace period ends it.
const DEAF: &str = "trap '' TERM; while :; do sleep 1; done";

/// Longer than the fixed 10 s telefig once used outside the record path.
const GRACE_SECS: i64 = 12;

fn container_id(name: &str) -> String {
    inspect(name)["Id"].as_str().unwrap().to_owned()
}

/// How long after `asked` (ns) Docker killed `id`: its die event.
fn killed_after(id: &str, asked: i64) -> Duration {
    let died = died_at(id, asked).unwrap_or_else(|| panic!("no die event for {id}"));
    Duration::from_nanos((died - asked) as u64)
}

fn assert_waited_its_grace(waited: Duration, what: &str) {
    assert!(
        waited >= Duration::from_secs(GRACE_SECS as u64) - Duration::from_millis(500),
        "{what}: killed {waited:?} after the stop request; its stop_grace_period is {GRACE_SECS}s"
    );
}

/// Regression: with no record, `down --name` stopped every container with a
/// fixed 10 s grace period instead of the container's own.
#[test]
fn down_without_a_record_ignores_the_grace_period() {
    if !require_docker() {
        return;
    }
    let set = Set::new(&["deaf"]);
    set.write(&format!(
        "{{id}}-deaf:\n  docker: {{image: deaf, version: \"1\", stop_grace_period: {GRACE_SECS}s, command: [\"sh\", \"-c\", \"{DEAF}\"]}}\n"
    ));
    assert_exit(&set.telefig(&["start"]), 0);
    let id = container_id(&set.name("deaf"));
    let asked = now_nanos();
    let down = telefig()
        .args(["down", "--name", set.id(), "--state-dir"])
        .arg(set.dir.join("no-record-here"))
        .output()
        .unwrap();
    assert_exit(&down, 0);
    assert!(!exists(&set.name("deaf")), "removed\n{}", text(&down));
    let said = format!("removed    {} (down)\n", set.name("deaf"));
    assert!(text(&down).contains(&said), "{}", text(&down));
    assert_waited_its_grace(killed_after(&id, asked), "down --name without a record");
}

/// Regression: orphans removed by `start` were stopped with a fixed 10 s.
#[test]
fn orphans_removed_by_start_ignore_the_grace_period() {
    if !require_docker() {
        return;
    }
    let set = Set::new(&["deaf", "app"]);
    let app = format!(
        "{{id}}-app:\n  docker: {{image: app, version: \"1\", command: [\"sh\", \"-c\", \"{LOOP}\"]}}\n"
    );
    set.write(&format!(
        "{app}{{id}}-deaf:\n  docker: {{image: deaf, version: \"1\", stop_grace_period: {GRACE_SECS}s, command: [\"sh\", \"-c\", \"{DEAF}\"]}}\n"
    ));
    assert_exit(&set.telefig(&["start"]), 0);
    let id = container_id(&set.name("deaf"));
    set.write(&app);
    let asked = now_nanos();
    let start = set.telefig(&["start"]);
    assert_exit(&start, 0);
    assert!(!exists(&set.name("deaf")), "the orphan is removed");
    let said = format!(
        "removed    {} (no longer in the serviceset)\n",
        set.name("deaf")
    );
    assert!(text(&start).contains(&said), "{}", text(&start));
    assert_waited_its_grace(killed_after(&id, asked), "an orphan removed by start");
}

/// Regression: a second SIGTERM while `start` rolled back (waiting for the
/// restored version's gate, minutes with a long start period) was
/// swallowed. It must exit at once, saying what is left as is.
#[test]
fn a_second_signal_during_a_rollback_is_swallowed() {
    if !require_docker() {
        return;
    }
    let set = Set::new(&["web", "reg"]);
    let ctl = set.dir.join("ctl");
    std::fs::create_dir_all(&ctl).unwrap();
    std::fs::write(ctl.join("ok"), "").unwrap();
    // web turns healthy only while ctl/ok exists (each run anew: the
    // container's files outlive a restart); its start period is long.
    let write = |env: &str| {
        set.write(&format!(
            r#"{{id}}-web:
  docker:
    image: web
    version: "1"
    environment: [{env}]
    volumes: ["{ctl}:/ctl"]
    command: ["sh", "-c", "trap 'exit 0' TERM; rm -f /ready; until test -e /ctl/ok; do sleep 0.2; done; touch /ready; {LOOP}"]
    healthcheck: {{test: "test -e /ready", interval: 200ms, timeout: 1s, start_period: 60s, retries: 2}}
{{id}}-reg:
  docker: {{image: reg, version: "1", command: ["sh", "-c", "{LOOP}"]}}
  depends_on: {{"{{id}}-web": {{condition: healthy}}}}
"#,
            ctl = ctl.display()
        ))
    };
    write("A=1");
    assert_exit(&set.telefig(&["start"]), 0);
    let web = set.name("web");
    let old_id = container_id(&web);

    // A new deploy that never turns healthy; its rollback's will not either.
    std::fs::remove_file(ctl.join("ok")).unwrap();
    write("A=2");
    let mut start = set.spawn(&["start"]);
    let pid = start.id().to_string();
    let term = || {
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
    };
    let new_is_up = wait_until(Duration::from_secs(20), || {
        try_inspect(&web)
            .is_some_and(|c| c["Id"] != old_id.as_str() && c["State"]["Running"] == true)
    });
    assert!(new_is_up, "the new web runs");
    term();
    let rolling_back = wait_until(Duration::from_secs(20), || {
        try_inspect(&web)
            .is_some_and(|c| c["Id"] == old_id.as_str() && c["State"]["Running"] == true)
    });
    assert!(
        rolling_back,
        "the previous web is back, waiting for its gate"
    );
    let second = Instant::now();
    term();
    let status = wait_for_exit(&mut start, Duration::from_secs(10));
    if status.is_none() {
        let _ = start.kill();
    }
    let out = status.map(|s| set.output(s));
    let out = out.unwrap_or_else(|| panic!("still rolling back 10 s after a second SIGTERM"));
    eprintln!(
        "exited {} ms after the second SIGTERM",
        second.elapsed().as_millis()
    );
    assert_exit(&out, 1);
    let last = last_stderr_line(&out);
    assert!(last.contains("interrupted twice"), "{}", text(&out));
    assert!(
        last.contains(&format!("the previous `{web}` is back"))
            && last.contains(&format!("stopped: {}", set.name("reg")))
            && last.contains("re-run `telefig start`"),
        "says what is left: {last}"
    );
}
