//! The daemon's Prometheus metrics against the real engine: the text passes
//! `promtool check metrics`, and a real Prometheus scraping the daemon
//! answers a PromQL query with the stack's container count.

#[path = "support/stack.rs"]
mod stack;
mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use stack::*;
use support::*;

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            !in_ci(),
            "{tool} is missing: .ci/run installs Debian's prometheus package"
        );
        eprintln!("skipping: {tool} not installed (apt-get install prometheus)");
    }
    found
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
    let log = std::fs::File::create(s.dir.join("daemon.log")).unwrap();
    let _daemon = Running(
        telefig()
            .args(["daemon", "--state-dir"])
            .arg(s.dir.join("state"))
            .args(["--metrics-listen", &addr, "--metrics-file"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let ours = format!("serviceset=\"{}\"", s.id());
    let mut text = String::new();
    assert!(
        wait_until(Duration::from_secs(30), || {
            text = http_get(&addr, "/metrics")
                .map(|(_, b)| b)
                .unwrap_or_default();
            text.lines()
                .filter(|l| l.starts_with("telefig_containers{") && l.contains(&ours))
                .count()
                >= 1
        }),
        "{text}"
    );
    assert!(
        text.contains("# TYPE telefig_daemon_reconnects_total counter"),
        "{text}"
    );
    assert!(text.contains("telefig_daemon_reconnects_total"), "{text}");

    // promtool reads the served text and the textfile alike.
    for source in [text.clone(), {
        assert!(wait_until(Duration::from_secs(30), || file.exists()));
        std::fs::read_to_string(&file).unwrap()
    }] {
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
            .write_all(source.as_bytes())
            .unwrap();
        let out = check.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics:\n{}{}\n{source}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // A real Prometheus scrapes the daemon every second.
    let web = format!("127.0.0.1:{}", free_port());
    let config = s.dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: telefig\n    static_configs: [{{targets: ['{addr}']}}]\n"
        ),
    )
    .unwrap();
    let _prometheus = Running(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                s.dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(s.dir.join("prometheus.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let query = format!(
        "/api/v1/query?query=sum(telefig_containers%7B{}%7D)",
        url_escape(&ours)
    );
    let mut answer = String::new();
    let counted = wait_until(Duration::from_secs(60), || {
        answer = http_get(&web, &query).map(|(_, b)| b).unwrap_or_default();
        serde_json::from_str::<Value>(&answer)
            .ok()
            .and_then(|v| {
                v["data"]["result"][0]["value"][1]
                    .as_str()
                    .map(str::to_owned)
            })
            .as_deref()
            == Some("5")
    });
    assert!(
        counted,
        "{answer}\n{}",
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
    let daemon = |s: &Stack| {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(s.dir.join("daemon.log"))
            .unwrap();
        Running(
            telefig()
                .args(["daemon", "--state-dir"])
                .arg(s.dir.join("state"))
                .args(["--metrics-listen", &addr])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        )
    };
    let first = daemon(&s);
    let ours = format!("serviceset=\"{}\"", s.id());
    let sample = |text: &str, name: &str, label: &str| -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(name) && l.contains(&ours) && l.contains(label))?
            .rsplit(' ')
            .next()?
            .parse()
            .ok()
    };
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
    let _second = daemon(&s);
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

    let web = format!("127.0.0.1:{}", free_port());
    let config = s.dir.join("prometheus-deploys.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: telefig\n    static_configs: [{{targets: ['{addr}']}}]\n"
        ),
    )
    .unwrap();
    let _prometheus = Running(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                s.dir.join("tsdb-deploys").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(s.dir.join("prometheus.log")).unwrap())
            .spawn()
            .unwrap(),
    );
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
        std::fs::read_to_string(s.dir.join("prometheus.log")).unwrap_or_default()
    );
}
