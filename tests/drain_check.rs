//! The platform's drain check against the real engine (issue 14, item 1):
//! a stop waits for the check after discovery has deregistered the
//! service, and stops it as soon as the check passes, long before the
//! drain period would end; a check that never passes ends with the period;
//! `--no-drain` skips both. Each says so in the output.
//!
//! The service `<id>-web` runs with a discovery sidecar (after it is
//! healthy). The check writes the time of each run into a file of the
//! test's scratch dir, so the test can order the check's runs against the
//! containers' stop times without sleeping.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use support::*;

const LOOP: &str = "trap 'exit 0' TERM; while :; do sleep 1 & wait; done";
/// The drain period of the scenarios with a check: far longer than a
/// check that passes needs.
const LONG_PERIOD: Duration = Duration::from_secs(30);

struct Scene {
    guard: Cleanup,
    dir: PathBuf,
}

impl Scene {
    /// `period` and the check (the command `command` gives for the scene's
    /// dir, run `place`: host or container) as the platform's drain defaults.
    fn new(period: Duration, place: &str, command: impl FnOnce(&Path) -> String) -> Scene {
        let base = busybox_image("1");
        for image in ["web:v1", "discovery:1"] {
            retag(&base, &format!("tf.local/{image}"));
        }
        let scene = Scene {
            guard: Cleanup::new(),
            dir: scratch_dir("drain-check"),
        };
        let command = command(&scene.dir);
        let platform = format!(
            "registries: {{primary: \"tf.local\", mirrors: []}}\n{}\
             defaults:\n  drain_period: {}ms\n  \
               drain_check: {{command: {command:?}, in: {place}, interval: 100ms}}\n\
             sidecars:\n  \
               discovery: {{image: \"discovery:1\", order: after_healthy, params: {{port: ~}}, command: [\"sh\", \"-c\", \"{LOOP}\"]}}\n",
            platform_labels(scene.id()),
            period.as_millis()
        );
        std::fs::write(scene.dir.join("platform.yaml"), platform).unwrap();
        let (web, script) = (scene.web(), format!("touch /ready; {LOOP}"));
        let volumes = format!(
            "    volumes: [\"{dir}:{dir}\"]\n",
            dir = scene.dir.display()
        );
        Web {
            docker: &volumes,
            sidecars: &["discovery: {port: 8080}"],
            ..Web::new(&web, &script)
        }
        .write(&scene.dir);
        scene
    }

    fn id(&self) -> &str {
        self.guard.id()
    }

    fn web(&self) -> String {
        format!("{}-web", self.id())
    }

    fn discovery(&self) -> String {
        format!("{}-web-discovery", self.id())
    }

    /// The file each run of the check appends its time to (ns).
    fn runs_file(&self) -> PathBuf {
        self.dir.join("check-runs")
    }

    /// What each run of the check wrote (the time, in ns, where it can
    /// tell it), in order.
    fn check_runs(&self) -> Vec<i64> {
        std::fs::read_to_string(self.runs_file())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        telefig_on(&self.dir, self.id(), args)
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// `telefig ARGS` in the background, its output in `<dir>/<what>.out|err`.
    fn spawn(&self, args: &[&str], what: &str) -> Child {
        spawn_logged(self.command(args), &self.dir, what)
    }

    /// Wait (at most `limit`) for a child of [`Scene::spawn`]; its output.
    fn finish(&self, child: Child, what: &str, limit: Duration) -> Output {
        finish_logged(child, &self.dir, what, limit)
            .unwrap_or_else(|out| panic!("`telefig {what}` hung for {limit:?}\n{}", text(&out)))
    }

    /// Start it and wait until both containers run (discovery registered).
    fn start(&self) {
        let out = self.run(&["start"]);
        assert_exit(&out, 0);
        assert!(running(&self.web()) && running(&self.discovery()));
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn running(name: &str) -> bool {
    try_inspect(name).is_some_and(|c| c["State"]["Running"] == true)
}

/// When `name` last stopped (Docker's `FinishedAt`), in ns.
fn finished_nanos(name: &str) -> i64 {
    let c = inspect(name);
    telefig::engine::status::rfc3339_nanos(c["State"]["FinishedAt"].as_str().unwrap())
        .unwrap_or_else(|| panic!("{name} has stopped: {:#}", c["State"]))
}

/// The drain line of `web` in the output: its seconds and how it ended.
fn drain_line(out: &Output, web: &str) -> (f64, String) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let prefix = format!("draining   {web}: ");
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no `{prefix}…` line\n{}", text(out)));
    let (secs, outcome) = line.split_once(" s, ").expect("`N.N s, outcome`");
    (secs.parse().unwrap(), outcome.to_owned())
}

fn ms(nanos: i64) -> i64 {
    nanos / 1_000_000
}

/// The host check passes once the test removes the `inflight` file: the
/// stop waits for it after discovery is gone, then stops web at once.
#[test]
fn stop_waits_for_the_drain_check_and_stops_as_soon_as_it_passes() {
    if !require_docker() {
        return;
    }
    let s = Scene::new(LONG_PERIOD, "host", |dir| {
        format!(
            "date +%s%N >> {}/check-runs; test ! -e {}/inflight",
            dir.display(),
            dir.display()
        )
    });
    let inflight = s.dir.join("inflight");
    std::fs::write(&inflight, "").unwrap();
    s.start();
    let web = s.web();

    let began = Instant::now();
    let stop = s.spawn(&["stop"], "stop");
    // The check runs (and keeps failing) while web still runs.
    let polled = wait_until(Duration::from_secs(20), || s.check_runs().len() >= 3);
    let still_running = running(&web);
    let removed_at = now_nanos();
    std::fs::remove_file(&inflight).unwrap();
    let out = s.finish(stop, "stop", Duration::from_secs(60));
    let took = began.elapsed();
    assert_exit(&out, 0);
    assert!(
        polled,
        "the check ran 3 times: {:?}\n{}",
        s.check_runs(),
        text(&out)
    );
    assert!(
        still_running,
        "web runs while the check fails\n{}",
        text(&out)
    );

    let runs = s.check_runs();
    let discovery_stopped = finished_nanos(&s.discovery());
    let web_stopped = finished_nanos(&web);
    eprintln!(
        "discovery stopped, then {} ms to the first check, {} checks, file removed, \
         web stopped {} ms later; the stop took {} ms",
        ms(runs[0] - discovery_stopped),
        runs.len(),
        ms(web_stopped - removed_at),
        took.as_millis()
    );
    assert!(
        discovery_stopped < runs[0],
        "discovery deregistered before the first check ({} ms apart)",
        ms(runs[0] - discovery_stopped)
    );
    assert!(
        removed_at < web_stopped,
        "web stopped only after the check could pass ({} ms before)",
        ms(removed_at - web_stopped)
    );
    assert!(
        web_stopped - removed_at < 3_000_000_000,
        "web stopped within 3 s of the check passing, not at the period's end: {} ms",
        ms(web_stopped - removed_at)
    );
    let (secs, outcome) = drain_line(&out, &web);
    assert_eq!(outcome, "check passed", "{}", text(&out));
    assert!(
        secs < LONG_PERIOD.as_secs_f64() / 2.0,
        "the drain ended long before its period ({secs} s of {LONG_PERIOD:?})"
    );
    assert!(took < LONG_PERIOD, "the stop took {took:?}");
}

/// A check (in the container) that never passes: the drain ends with the
/// period, the check having run through it, and the output says so.
#[test]
fn a_check_that_never_passes_ends_with_the_period() {
    if !require_docker() {
        return;
    }
    let period = Duration::from_secs(3);
    let s = Scene::new(period, "container", |dir| {
        format!("echo 1 >> {}/check-runs; test -e /drained", dir.display())
    });
    s.start();
    let web = s.web();
    let out = s.run(&["stop"]);
    assert_exit(&out, 0);
    let (secs, outcome) = drain_line(&out, &web);
    assert_eq!(
        outcome,
        "check did not pass, stopping anyway",
        "{}",
        text(&out)
    );
    assert!(
        secs >= period.as_secs_f64() - 0.05 && secs < period.as_secs_f64() + 2.0,
        "the drain lasted its period: {secs} s of {period:?}\n{}",
        text(&out)
    );
    // Polled through the period, not run once: each run is a `docker exec`
    // (up to ~1 s on a loaded host), every 100 ms after the last.
    let runs = s.check_runs().len();
    assert!(
        runs >= 2,
        "the check ran {runs} times in the container\n{}\n{}",
        text(&out),
        std::fs::read_to_string(s.dir.join("platform.yaml")).unwrap()
    );
    assert!(!running(&web), "web stopped after the drain");
}

/// `--no-drain`: the stop neither waits nor runs the check, and says so.
#[test]
fn no_drain_skips_the_check_and_says_so() {
    if !require_docker() {
        return;
    }
    let s = Scene::new(LONG_PERIOD, "host", |dir| {
        format!("echo 1 >> {}/check-runs; false", dir.display())
    });
    s.start();
    let web = s.web();
    let began = Instant::now();
    let out = s.run(&["stop", "--no-drain"]);
    let took = began.elapsed();
    assert_exit(&out, 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("not draining {web}: --no-drain")),
        "{}",
        text(&out)
    );
    assert!(!stdout.contains("draining   "), "{}", text(&out));
    assert_eq!(s.check_runs().len(), 0, "the check never ran");
    assert!(!running(&web), "web stopped");
    assert!(
        took < Duration::from_secs(15),
        "no drain: the stop took {took:?} (the period is {LONG_PERIOD:?})"
    );
}

/// `plan` shows the drain `start` would wait for, and with `--no-drain`
/// says it would not: the preview is the start's own plan.
#[test]
fn plan_shows_the_drain_start_would_make_and_no_drain_skips_it() {
    if !require_docker() {
        return;
    }
    let s = Scene::new(LONG_PERIOD, "host", |dir| {
        format!("echo 1 >> {}/check-runs; false", dir.display())
    });
    s.start();
    let conf = s.dir.join("serviceset.conf");
    let text_now = std::fs::read_to_string(&conf).unwrap();
    let changed = text_now.replace(
        "    stop_grace_period: 5s\n",
        "    stop_grace_period: 5s\n    environment: [A=2]\n",
    );
    assert_ne!(changed, text_now, "the file changed");
    std::fs::write(&conf, changed).unwrap();
    let web = s.web();
    let line_of = |out: &Output| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.contains(&web) && !l.contains("discovery"))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no line for {web}:\n{}", text(out)))
    };
    let planned = s.run(&["plan"]);
    assert_exit(&planned, 0);
    assert!(
        line_of(&planned).contains("drains up to 30.0 s first"),
        "{}",
        text(&planned)
    );
    let skipped = s.run(&["plan", "--no-drain"]);
    assert_exit(&skipped, 0);
    assert!(
        line_of(&skipped).contains("not drained (--no-drain)"),
        "{}",
        text(&skipped)
    );
    assert!(running(&web), "plan changed nothing");
    assert_eq!(s.check_runs().len(), 0, "plan ran no check");
}
