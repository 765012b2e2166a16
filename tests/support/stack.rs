//! A test serviceset: `<run id>-web` with the four card sidecars, its
//! platform file and state dir in a scratch directory.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use super::support::events::EventFollower;
use super::support::*;

const SIDECAR_CMD: &str = r#"["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait; done"]"#;

/// The images a stack uses, as `<path>:<tag>` under its registry.
pub const IMAGES: [&str; 6] = [
    "web:v1",
    "web:v2",
    "logging:1",
    "metrics:1",
    "proxy:1",
    "discovery:1",
];

/// A serviceset `<id>-web` with the four card sidecars, on images tagged
/// locally under a fake registry host so that nothing is pulled.
pub struct Stack {
    pub guard: Cleanup,
    pub dir: PathBuf,
}

impl Stack {
    /// Images tagged locally under `tf.local`, so nothing is pulled.
    pub fn new() -> Stack {
        let base = busybox_image("1");
        for image in IMAGES {
            retag(&base, &format!("tf.local/{image}"));
        }
        Stack::with_registries("tf.local", &[])
    }

    /// Images come from these registries (the caller provides them).
    pub fn with_registries(primary: &str, mirrors: &[&str]) -> Stack {
        let stack = Stack {
            guard: Cleanup::new(),
            dir: scratch_dir("stack"),
        };
        stack.write_platform(primary, mirrors);
        stack.write_serviceset("A=1", true);
        stack
    }

    pub fn id(&self) -> &str {
        self.guard.id()
    }

    pub fn web(&self) -> String {
        format!("{}-web", self.id())
    }

    pub fn name(&self, kind: &str) -> String {
        format!("{}-web-{kind}", self.id())
    }

    pub fn write_platform(&self, primary: &str, mirrors: &[&str]) {
        let labels = platform_labels(self.id());
        let mut text = format!(
            "registries: {{primary: \"{primary}\", mirrors: {mirrors:?}}}\n{labels}sidecars:\n"
        );
        for kind in ["logging", "metrics", "proxy"] {
            text += &format!(
                "  {kind}: {{image: \"{kind}:1\", order: before, gate: started, command: {SIDECAR_CMD}}}\n"
            );
        }
        text += &format!(
            "  discovery: {{image: \"discovery:1\", order: after_healthy, params: {{port: ~}}, command: {SIDECAR_CMD}}}\n"
        );
        std::fs::write(self.dir.join("platform.yaml"), text).unwrap();
    }

    /// Add cron entries (YAML list items, indented for `sidecars:`).
    pub fn add_cron(&self, entries: &str) {
        let path = self.dir.join("serviceset.conf");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("    cron:\n");
        text.push_str(entries);
        std::fs::write(path, text).unwrap();
    }

    /// `healthy`: whether web's healthcheck will pass (after ~1 s).
    pub fn write_serviceset(&self, env: &str, healthy: bool) {
        let ready = if healthy {
            "sleep 1; touch /ready; "
        } else {
            ""
        };
        let start_period = if healthy { "5s" } else { "1s" };
        self.write_web(
            &format!("{ready}while :; do sleep 1 & wait; done"),
            env,
            start_period,
            "",
        );
    }

    /// web runs `script` (after a TERM trap), with `env` and extra `docker:` lines.
    pub fn write_web(&self, script: &str, env: &str, start_period: &str, docker_extra: &str) {
        let web = self.web();
        let script = format!("trap 'exit 0' TERM; {script}");
        let probes =
            format!("interval: 200ms, timeout: 1s, start_period: {start_period}, retries: 2");
        let docker = format!("    environment: [{env}, DB_PASSWORD=hunter2]\n{docker_extra}");
        Web {
            probes: &probes,
            docker: &docker,
            ..self.web_conf(&web, &script)
        }
        .write(&self.dir);
    }

    /// The stack's web: its version `WEB_VERSION` (v1 if not given), with
    /// the four sidecars of [`Stack::write_platform`].
    pub fn web_conf<'a>(&self, web: &'a str, script: &'a str) -> Web<'a> {
        Web {
            version: "{{WEB_VERSION|default(\"v1\")}}",
            sidecars: &["logging:", "metrics:", "proxy:", "discovery: {port: 8080}"],
            ..Web::new(web, script)
        }
    }

    /// `telefig ARGS` on this stack's files, not yet run.
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        telefig_on(&self.dir, self.id(), args)
    }

    pub fn telefig(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// `telefig status --json` for this stack; `null` when it printed no JSON.
    pub fn status_json(&self) -> serde_json::Value {
        let out = self.telefig(&["status", "--json"]);
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    }

    pub fn start(&self, extra: &[&str]) -> Output {
        let mut args = vec!["start"];
        args.extend(extra);
        self.telefig(&args)
    }

    /// `telefig events --json` for this stack, followed once its daemon
    /// listens on the state dir's socket (`events` exits at once when no
    /// daemon answers); fails with the stack's `daemon.log` if it never does.
    pub fn follow_events(&self) -> EventFollower {
        let socket = self.dir.join("state/daemon.sock");
        assert!(
            wait_until(std::time::Duration::from_secs(30), || socket.exists()),
            "no daemon socket at {}\n{}",
            socket.display(),
            std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
        );
        EventFollower::spawn(self.command(&["events", "--json"]))
    }

    pub fn all(&self) -> Vec<String> {
        let mut v = vec![self.web()];
        v.extend(["logging", "metrics", "proxy", "discovery"].map(|k| self.name(k)));
        v
    }

    /// The names Docker has for this serviceset's containers, sorted.
    pub fn container_names(&self) -> Vec<String> {
        let mut names: Vec<String> =
            container_ids_by_label(&format!("telefig.serviceset={}", self.id()))
                .iter()
                .map(|id| {
                    inspect(id)["Name"]
                        .as_str()
                        .unwrap()
                        .trim_start_matches('/')
                        .to_owned()
                })
                .collect();
        names.sort();
        names
    }

    /// The names it should have, sorted.
    pub fn wanted_names(&self) -> Vec<String> {
        let mut want = self.all();
        want.sort();
        want
    }

    /// (id, StartedAt) of each container, for "nothing changed" checks.
    pub fn fingerprint(&self) -> Vec<(String, String)> {
        self.all()
            .iter()
            .map(|n| {
                let c = inspect(n);
                (
                    c["Id"].as_str().unwrap().to_owned(),
                    c["State"]["StartedAt"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

pub fn started_at(name: &str) -> String {
    inspect(name)["State"]["StartedAt"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub fn started_nanos(name: &str) -> i64 {
    nanos(inspect(name)["State"]["StartedAt"].as_str().unwrap())
}

/// The end of the earliest passing health probe of the current run.
pub fn healthy_since(name: &str) -> Option<i64> {
    let c = inspect(name);
    let started = nanos(c["State"]["StartedAt"].as_str().unwrap());
    c["State"]["Health"]["Log"]
        .as_array()?
        .iter()
        .filter(|l| l["ExitCode"] == 0)
        .filter(|l| nanos(l["Start"].as_str().unwrap()) >= started)
        .map(|l| nanos(l["End"].as_str().unwrap()))
        .min()
}

/// A running `telefig daemon` (or another long-lived `telefig` a test
/// starts), stopped with SIGTERM and reaped when dropped.
pub struct Daemon(pub Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

impl Stack {
    /// `telefig daemon --state-dir <state> <extra>…` with `env` added; its
    /// log appended to `daemon.log` here (a second daemon's follows the
    /// first's).
    pub fn daemon(&self, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("daemon.log"))
            .unwrap();
        let child = telefig()
            .args(["daemon", "--state-dir"])
            .arg(self.dir.join("state"))
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Daemon(child)
    }

    /// `telefig daemon --once` on this stack's state dir (one boot repair),
    /// not yet run.
    pub fn daemon_once(&self) -> Command {
        let mut cmd = telefig();
        cmd.args(["daemon", "--once", "--state-dir"])
            .arg(self.dir.join("state"))
            .stdin(Stdio::null());
        cmd
    }

    /// What the stack's daemons have logged so far.
    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }
}
