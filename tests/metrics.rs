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
