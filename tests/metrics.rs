//! The daemon's Prometheus metrics against the real engine: the text passes
//! `promtool check metrics`, and a real Prometheus scraping the daemon
//! answers a PromQL query with the stack's container count; deploys,
//! rollbacks, drift repairs and cron runs are counted, and the repairs and
//! cron runs show in `telefig events --json` too.

#[path = "support/stack.rs"]
mod stack;
mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use stack::*;
use support::*;

/// `true`, or the test fails saying how to install `tool` (Debian's
/// prometheus has both promtool and prometheus).
fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        missing(&format!("{tool} (Debian's prometheus)"));
    }
    true
}

#[test]
fn metrics_pass_promtool_and_prometheus_counts_the_containers() {
    if !require_docker() || !have("promtool") || !have("prometheus") {
        return;
    }
    let s = Stack::new();
    assert_exit(&s.start(&[]), 0);
    let addr = format!("127.0.0.1:{}", free_port());
    let file = s.dir.join("telefig.prom");
    let file_arg = file.to_str().unwrap();
    let _daemon = s.daemon(
        &["--metrics-listen", &addr, "--metrics-file", file_arg],
        &[],
    );
    let ours = format!("serviceset=\"{}\"", s.id());
    let (ok, text) = scrape_until(&addr, |t| {
        sample(t, "telefig_containers{", &[&ours]).is_some()
    });
    assert!(ok, "{text}");
    assert!(
        text.contains("# TYPE telefig_daemon_reconnects_total counter"),
        "{text}"
    );
    assert!(text.contains("telefig_daemon_reconnects_total"), "{text}");

    // promtool reads the served text and the textfile alike.
    promtool_check(&text);
    assert!(wait_until(Duration::from_secs(30), || file.exists()));
    promtool_check(&std::fs::read_to_string(&file).unwrap());

    // A real Prometheus scrapes the daemon every second.
    let (_prometheus, web) = prometheus(&s, &addr, "prometheus");
    let containers = format!("sum(telefig_containers{{{ours}}})");
    let counted = wait_until(Duration::from_secs(60), || {
        query_value(&web, &containers) == Some(5.0)
    });
    assert!(
        counted,
        "{containers} = {:?}\n{}",
        query_value(&web, &containers),
        std::fs::read_to_string(s.dir.join("prometheus.log")).unwrap_or_default()
    );
}

fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The daemon's metrics text, once `ready` holds for it (or the last text).
fn scrape_until(addr: &str, ready: impl Fn(&str) -> bool) -> (bool, String) {
    let mut text = String::new();
    let ok = wait_until(Duration::from_secs(30), || {
        text = http_get(addr, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default();
        ready(&text)
    });
    (ok, text)
}

fn promtool_check(text: &str) {
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of a one-sample PromQL answer.
fn query_value(web: &str, promql: &str) -> Option<f64> {
    let answer = http_get(web, &format!("/api/v1/query?query={}", url_escape(promql)))?.1;
    serde_json::from_str::<Value>(&answer).ok()?["data"]["result"][0]["value"][1]
        .as_str()?
        .parse()
        .ok()
}

/// A deploy whose new version fails its gate and is rolled back is counted
/// (deploys by result, rollbacks, gate waits), passes promtool, survives a
/// restart of the daemon (the counts come from the deploy log's totals),
/// and a real Prometheus scraping the restarted daemon answers PromQL with
/// the rollback and the container count.
#[test]
fn a_rolled_back_deploy_is_counted_and_prometheus_sees_it_after_a_daemon_restart() {
    if !require_docker() || !have("promtool") || !have("prometheus") {
        return;
    }
    let s = Stack::new();
    assert_exit(&s.start(&[]), 0);
    let addr = format!("127.0.0.1:{}", free_port());
    let first = spawn_daemon(&s, &addr);
    let ours = format!("serviceset=\"{}\"", s.id());
    let sample = |text: &str, name: &str, label: &str| sample(text, name, &[&ours, label]);
    let (ok, text) = scrape_until(&addr, |t| {
        sample(t, "telefig_deploys_total{", "result=\"succeeded\"") == Some(1.0)
    });
    assert!(ok, "the first deploy is counted:\n{text}");

    // v2 never turns healthy: rolled back to v1, exit 1.
    s.write_serviceset("A=1", false);
    assert_exit(&s.start(&["-e", "WEB_VERSION=v2"]), 1);
    let counted = |t: &str| {
        sample(t, "telefig_deploys_total{", "result=\"rolled_back\"") == Some(1.0)
            && sample(t, "telefig_rollbacks_total{", "result=\"succeeded\"") == Some(1.0)
            && sample(t, "telefig_gate_wait_seconds_count{", "") >= Some(1.0)
            && sample(t, "telefig_last_successful_deploy_timestamp_seconds{", "") > Some(0.0)
    };
    let (ok, text) = scrape_until(&addr, counted);
    assert!(
        ok,
        "the rollback is counted:\n{text}\n{}",
        std::fs::read_to_string(s.dir.join("daemon.log")).unwrap_or_default()
    );
    promtool_check(&text);
    let before = text;

    // A new daemon reads the same totals: no counter went down.
    drop(first);
    let _second = spawn_daemon(&s, &addr);
    let (ok, after) = scrape_until(&addr, counted);
    assert!(ok, "after a daemon restart:\n{after}\nbefore:\n{before}");
    for (name, label) in [
        ("telefig_deploys_total{", "result=\"succeeded\""),
        ("telefig_deploys_total{", "result=\"rolled_back\""),
        ("telefig_rollbacks_total{", ""),
        ("telefig_gate_wait_seconds_count{", ""),
    ] {
        assert_eq!(
            sample(&before, name, label),
            sample(&after, name, label),
            "{name}{label}"
        );
    }

    let (_prometheus, web) = prometheus(&s, &addr, "prometheus-deploys");
    let rollbacks = format!("sum(telefig_rollbacks_total{{{ours}}})");
    let containers = format!("sum(telefig_containers{{{ours}}})");
    let answered = wait_until(Duration::from_secs(60), || {
        query_value(&web, &rollbacks).is_some_and(|v| v >= 1.0)
            && query_value(&web, &containers) == Some(5.0)
    });
    assert!(
        answered,
        "{rollbacks} = {:?}, {containers} = {:?}\n{}",
        query_value(&web, &rollbacks),
        query_value(&web, &containers),
        std::fs::read_to_string(s.dir.join("prometheus-deploys.log")).unwrap_or_default()
    );

    // `down`: the serviceset is gone, and so are its deploy series (the
    // log stays on disk as history).
    assert_exit(&s.telefig(&["down"]), 0);
    let (ok, text) = scrape_until(&addr, |t| {
        sample(t, "telefig_deploys_total{", "").is_none()
            && sample(t, "telefig_containers{", "").is_none()
    });
    assert!(
        ok,
        "a serviceset that is down is not reported:
{text}"
    );
    assert!(
        s.dir
            .join(format!("state/deploys/{}.json", s.id()))
            .exists(),
        "the deploy log stays as history"
    );
}

fn spawn_daemon(s: &Stack, addr: &str) -> Daemon {
    s.daemon(&["--metrics-listen", addr], &[])
}

/// The value of the first sample of `name` (with its `{`) that carries
/// every one of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && labels.iter().all(|label| l.contains(label)))?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

fn running(name: &str) -> bool {
    try_inspect(name).is_some_and(|c| c["State"]["Running"] == true)
}

/// Drift repaired by the running daemon is counted by cause — a container
/// removed by hand is `missing`, one stopped by hand `not_running` — and
/// each repair shows in `telefig events --json` as `repaired` with its
/// cause, after Docker's event of the break.
#[test]
fn drift_repairs_are_counted_by_cause_and_stream_as_repaired_events() {
    if !require_docker() || !have("promtool") {
        return;
    }
    let s = Stack::new();
    assert_exit(&s.start(&[]), 0);
    let addr = format!("127.0.0.1:{}", free_port());
    // The daemon reads Docker's events for logging late, as on a loaded
    // host: its repair is done before Docker's `removed` is read.
    let late = format!("before:live-event:{}", s.name("logging"));
    let _daemon = s.daemon(
        &["--metrics-listen", &addr],
        &[("TELEFIG_FAILPOINT_DELAY", &late)],
    );
    let ours = format!("serviceset=\"{}\"", s.id());
    let repairs = |text: &str, cause: &str| {
        sample(
            text,
            "telefig_drift_repairs_total{",
            &[&ours, &format!("cause=\"{cause}\"")],
        )
        .unwrap_or(0.0)
    };
    let (ok, before) = scrape_until(&addr, |t| {
        sample(t, "telefig_containers{", &[&ours]).is_some()
    });
    assert!(
        ok,
        "the daemon serves metrics:\n{before}\n{}",
        s.daemon_log()
    );
    // Usually 0; on a loaded host a probe can time out and the daemon
    // repair something on its own before the test breaks anything.
    let (missing_before, not_running_before) =
        (repairs(&before, "missing"), repairs(&before, "not_running"));

    let mut events = s.follow_events();
    for (container, cause, break_it) in [
        (s.name("logging"), "missing", ["rm", "-f"]),
        (s.name("discovery"), "not_running", ["stop", "-t1"]),
    ] {
        // Break it until the follower sees Docker's event for it (it may
        // have subscribed late), each time once the last break is repaired.
        let gone = if cause == "missing" {
            "removed"
        } else {
            "stopped"
        };
        let mut broken = false;
        let mut round = 0;
        let subscribed = wait_until(Duration::from_secs(40), || {
            if broken && !running(&container) {
                return false; // the last break is not repaired yet
            }
            round = events.seen().len();
            docker_ok(&[break_it[0], break_it[1], container.as_str()]);
            broken = true;
            events
                .next_where(Duration::from_secs(10), |e| {
                    e["container"] == container.as_str() && e["event"] == gone
                })
                .is_some()
        });
        assert!(subscribed, "{}\n{}", events.summary(), s.daemon_log());
        // Docker's first event of the break (`died`, then `removed` or
        // `stopped`): the repair answers it, or one after it.
        let (broke_at, repaired) =
            events.break_and_repair(&container, gone, round, Duration::from_secs(20));
        let repaired = repaired.unwrap_or_else(|| {
            panic!(
                "no `repaired` event for {container}\n{}\n{}",
                events.summary(),
                s.daemon_log()
            )
        });
        // The cause is shown before the cure: no event of this repair
        // comes before Docker's event of the break.
        let early = events.of_deploy_before(broke_at, &repaired["deploy"], s.id());
        assert!(
            early.is_empty(),
            "the repair of {container} was shown before Docker's event of the break: {early:?}\n{}\n{}",
            events.summary(),
            s.daemon_log()
        );
        assert_eq!(repaired["detail"], cause, "{repaired}");
        assert_eq!(repaired["operation"], "repair", "{repaired}");
        assert_eq!(repaired["serviceset"], s.id(), "{repaired}");
        assert!(running(&container), "{container} is back");
    }

    let (ok, after) = scrape_until(&addr, |t| {
        repairs(t, "missing") > missing_before && repairs(t, "not_running") > not_running_before
    });
    assert!(
        ok,
        "the repairs are counted by cause:\n{after}\n{}",
        s.daemon_log()
    );
    promtool_check(&after);
}

/// A cron entry that runs every second is counted by result, with its run
/// time as a summary; the text passes promtool, a real Prometheus reads the
/// counter and the summary, and each run shows in `telefig events --json`
/// as `cron-ran`.
#[test]
fn cron_runs_are_counted_by_result_with_their_run_time_and_stream_as_cron_ran() {
    if !require_docker() || !have("promtool") || !have("prometheus") {
        return;
    }
    let s = Stack::new();
    s.add_cron(concat!(
        "      Tick: {schedule: \"* * * * * *\", command: 'echo tick'}\n",
        "      Fails: {schedule: \"* * * * * *\", command: [sh, -c, \"exit 3\"]}\n",
    ));
    assert_exit(&s.start(&[]), 0);
    let addr = format!("127.0.0.1:{}", free_port());
    let _daemon = spawn_daemon(&s, &addr);
    let ours = format!("serviceset=\"{}\"", s.id());
    let runs = |text: &str, entry: &str, result: &str| {
        sample(
            text,
            "telefig_cron_runs_total{",
            &[
                &ours,
                &format!("entry=\"{entry}\""),
                &format!("result=\"{result}\""),
            ],
        )
    };
    let duration = |text: &str, part: &str, entry: &str| {
        sample(
            text,
            &format!("telefig_cron_run_duration_seconds_{part}{{"),
            &[&ours, &format!("entry=\"{entry}\"")],
        )
    };
    let mut events = s.follow_events();
    let (ok, text) = scrape_until(&addr, |t| {
        runs(t, "Tick", "succeeded") >= Some(1.0)
            && runs(t, "Fails", "failed") >= Some(1.0)
            && duration(t, "count", "Tick") >= Some(1.0)
    });
    assert!(ok, "the runs are counted:\n{text}\n{}", s.daemon_log());
    assert_eq!(runs(&text, "Tick", "failed"), Some(0.0), "{text}");
    assert_eq!(runs(&text, "Fails", "succeeded"), Some(0.0), "{text}");
    assert!(
        duration(&text, "sum", "Tick").is_some_and(|v| v >= 0.0),
        "{text}"
    );
    assert!(
        text.contains("# TYPE telefig_cron_run_duration_seconds summary"),
        "{text}"
    );
    promtool_check(&text);

    // The follower was subscribed before the scrape: runs go on every second.
    let ran = events.next_where(Duration::from_secs(15), |e| {
        e["event"] == "cron-ran"
            && e["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("Tick: exit code 0"))
    });
    let ran = ran.unwrap_or_else(|| {
        panic!(
            "no `cron-ran` event for Tick\n{}\n{}",
            events.summary(),
            s.daemon_log()
        )
    });
    assert_eq!(ran["container"], s.web().as_str(), "{ran}");
    assert_eq!(ran["result"], "succeeded", "{ran}");

    // A real Prometheus reads the counter and the summary.
    let (_prometheus, web) = prometheus(&s, &addr, "prometheus-cron");
    let succeeded =
        format!("sum(telefig_cron_runs_total{{{ours},entry=\"Tick\",result=\"succeeded\"}})");
    let count = format!("sum(telefig_cron_run_duration_seconds_count{{{ours},entry=\"Tick\"}})");
    let answered = wait_until(Duration::from_secs(40), || {
        query_value(&web, &succeeded).is_some_and(|v| v >= 1.0)
            && query_value(&web, &count).is_some_and(|v| v >= 1.0)
    });
    assert!(
        answered,
        "{succeeded} = {:?}, {count} = {:?}\n{}",
        query_value(&web, &succeeded),
        query_value(&web, &count),
        std::fs::read_to_string(s.dir.join("prometheus-cron.log")).unwrap_or_default()
    );
}

/// A cron entry's run counts survive a restart of the daemon: from the new
/// daemon's first scrape on, `telefig_cron_runs_total` and the run-time
/// summary's `_count` are never below what the old daemon last served (a
/// reset or a missing series fails), and new runs count on top of them.
#[test]
fn cron_run_counts_survive_a_daemon_restart() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    s.add_cron("      Tick: {schedule: \"* * * * * *\", command: 'echo tick'}\n");
    assert_exit(&s.start(&[]), 0);
    let ours = format!("serviceset=\"{}\"", s.id());
    let counts = |text: &str| {
        let runs = sample(
            text,
            "telefig_cron_runs_total{",
            &[&ours, "entry=\"Tick\"", "result=\"succeeded\""],
        );
        let timed = sample(
            text,
            "telefig_cron_run_duration_seconds_count{",
            &[&ours, "entry=\"Tick\""],
        );
        (runs, timed)
    };
    let addr = format!("127.0.0.1:{}", free_port());
    let first = spawn_daemon(&s, &addr);
    let (ok, text) = scrape_until(&addr, |t| {
        let (runs, timed) = counts(t);
        runs >= Some(2.0) && timed >= Some(2.0)
    });
    assert!(ok, "Tick ran twice:\n{text}\n{}", s.daemon_log());
    let (runs_before, timed_before) = counts(&text);
    // Stopped and waited for: no run of the old daemon is counted after
    // this (a run it finished since the scrape only raises the count).
    drop(first);

    // The new daemon serves on another port: every answer there is its own.
    let addr = format!("127.0.0.1:{}", free_port());
    let _second = spawn_daemon(&s, &addr);
    let mut scrapes = 0;
    let mut last = String::new();
    let counted_on = wait_until(Duration::from_secs(30), || {
        let Some((200, text)) = http_get(&addr, "/metrics") else {
            return false; // not serving yet
        };
        scrapes += 1;
        let (runs, timed) = counts(&text);
        assert!(
            runs >= runs_before && timed >= timed_before,
            "scrape {scrapes} of the new daemon: runs {runs:?}, timed {timed:?}; \
             the old daemon served {runs_before:?}, {timed_before:?}\n{text}\n{}",
            s.daemon_log()
        );
        last = text;
        runs > runs_before
    });
    assert!(
        counted_on,
        "no new run counted after {scrapes} scrapes of the new daemon:\n{last}\n{}",
        s.daemon_log()
    );
}

/// A real Prometheus scraping the daemon at `addr` every second, its
/// config, data and log under `<stack dir>/<name>…`; and its web address.
fn prometheus(s: &Stack, addr: &str, name: &str) -> (Daemon, String) {
    let web = format!("127.0.0.1:{}", free_port());
    let config = s.dir.join(format!("{name}.yml"));
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: telefig\n    static_configs: [{{targets: ['{addr}']}}]\n"
        ),
    )
    .unwrap();
    let running = Daemon(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                s.dir.join(format!("{name}-tsdb")).display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(s.dir.join(format!("{name}.log"))).unwrap())
            .spawn()
            .unwrap(),
    );
    (running, web)
}
