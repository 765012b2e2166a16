//! Secret values never leave telefig (SPEC §7, "redacted by value" and
//! "never stored"), against the real engine: three secrets — one passed
//! with `-e` under a secret-looking name, one inherited from the
//! environment, one whose name only the platform's `secrets:` lists — put
//! by the template in a command, labels, a healthcheck, an environment
//! entry whose key is not secret and cron commands. Every command that
//! exists runs on it (validate, render in both formats, plan, start,
//! status, events, the daemon's repair and cron, rollback), errors that
//! would quote the values are provoked, and every output, every message,
//! the daemon's log, the events and every file under the state dir are
//! searched for the values.

#[path = "support/stack.rs"]
mod stack;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use stack::*;
use support::*;

/// The three secrets of a run, unique to it.
struct Secrets {
    /// `-e API_TOKEN=…`: the name looks secret.
    token: String,
    /// `DB_PASSWORD=…` in the environment.
    password: String,
    /// `-e SIGNING=…`: secret only because the platform lists it (`+`
    /// makes it an invalid image tag).
    signing: String,
}

impl Secrets {
    fn new(id: &str) -> Secrets {
        Secrets {
            token: format!("tok1-{id}-a"),
            password: format!("pw2-{id}-b"),
            signing: format!("sig3+{id}+c"),
        }
    }

    fn all(&self) -> [&str; 3] {
        [&self.token, &self.password, &self.signing]
    }

    /// Which of them `text` holds.
    fn found_in(&self, text: &str) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|s| text.contains(s))
            .map(str::to_owned)
            .collect()
    }
}

/// `{{API_TOKEN}} {{SIGNING}} {{DB_PASSWORD}}`: every secret, where a
/// template puts it.
const ALL: &str = "{{API_TOKEN}} {{SIGNING}} {{DB_PASSWORD}}";

fn write_files(s: &Stack) {
    let id = s.id();
    let labels = platform_labels(id);
    std::fs::write(
        s.dir.join("platform.yaml"),
        format!("registries: {{primary: tf.local}}\n{labels}secrets: [SIGNING]\n"),
    )
    .unwrap();
    let conf = format!(
        r#"version: 1
{id}-web:
  docker:
    image: web
    version: v1
    command: ["sh", "-c", "trap 'exit 0' TERM; echo started {ALL}; while :; do sleep 1 & wait; done"]
    labels: {{auth: "{{{{API_TOKEN}}}}", sig: "{{{{SIGNING}}}}", pw: "{{{{DB_PASSWORD}}}}"}}
    environment:
      - GREETING=hello {ALL}
      - API_TOKEN={{{{API_TOKEN}}}}
    stop_grace_period: 2s
    healthcheck: {{test: "echo probe {ALL}", interval: 300ms, timeout: 2s, start_period: 5s, retries: 3}}
  sidecars:
    cron:
      shout: {{schedule: "@every 1s", command: "echo cron {ALL}"}}
      nightly: {{schedule: "0 3 * * *", command: "echo nightly {ALL}"}}
{id}-keeper:
  docker:
    image: web
    version: v1
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait; done"]
    environment: ["API_TOKEN={{{{API_TOKEN}}}}", "KEEPER_SIGNING={{{{SIGNING}}}}", "DB_PASSWORD={{{{DB_PASSWORD}}}}"]
    stop_grace_period: 2s
"#
    );
    std::fs::write(s.dir.join("serviceset.conf"), conf).unwrap();
}

/// Every output of the run, named, to be searched at the end.
#[derive(Default)]
struct Seen(Vec<(String, String)>);

impl Seen {
    fn add(&mut self, what: &str, out: &Output) -> String {
        let text = text(out);
        self.0.push((what.to_owned(), text.clone()));
        text
    }
}

/// `telefig ARGS` on the stack's files, with the secrets in `-e` and the
/// environment, as the deploy hook runs it.
fn with_secrets(s: &Stack, secrets: &Secrets, args: &[&str]) -> Command {
    let mut cmd = s.command(args);
    cmd.args(["-e", &format!("API_TOKEN={}", secrets.token)])
        .args(["-e", &format!("SIGNING={}", secrets.signing)])
        .env("DB_PASSWORD", &secrets.password);
    cmd
}

/// Every file under `dir`, with its contents.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                dirs.push(path);
            } else if kind.is_file() {
                files.push((path.clone(), std::fs::read(&path).unwrap_or_default()));
            }
        }
    }
    files
}

fn running(name: &str) -> bool {
    try_inspect(name).is_some_and(|c| c["State"]["Running"] == true)
}

#[test]
fn secret_values_appear_in_no_output_message_log_event_or_state_file() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    let secrets = Secrets::new(s.id());
    write_files(&s);
    let web = s.web();
    let keeper = format!("{}-keeper", s.id());
    let mut seen = Seen::default();
    let run = |args: &[&str]| with_secrets(&s, &secrets, args).output().unwrap();

    // The offline commands, and where the values would have been.
    let out = run(&["validate"]);
    seen.add("validate", &out);
    assert_exit(&out, 0);
    let out = run(&["render"]);
    let render = seen.add("render", &out);
    assert_exit(&out, 0);
    for masked in [
        "echo started <masked> <masked> <masked>",
        "GREETING=hello <masked> <masked> <masked>",
        "\"auth\": \"<masked>\"",
        "\"sig\": \"<masked>\"",
    ] {
        assert!(render.contains(masked), "{masked}: {render}");
    }
    let out = run(&["render", "--format", "kubernetes"]);
    let exported = seen.add("render --format kubernetes", &out);
    assert_exit(&out, 0);
    assert!(
        exported.contains("echo nightly <masked> <masked> <masked>"),
        "{exported}"
    );
    assert!(exported.contains("auth: <masked>"), "{exported}");
    let out = run(&["plan"]);
    seen.add("plan", &out);
    assert_exit(&out, 0);

    // The deploy, against the engine; Docker has the real values.
    let out = run(&["start"]);
    seen.add("start", &out);
    assert_exit(&out, 0);
    let env = inspect(&web)["Config"]["Env"].to_string();
    assert!(
        env.contains(&format!("GREETING=hello {}", secrets.token)),
        "{env}"
    );
    let out = run(&["plan", "--json"]);
    seen.add("plan --json after start", &out);
    assert_exit(&out, 0);

    // The daemon, knowing no value: its cron, its probes, its answers.
    let probed = || {
        inspect(&web)["State"]["Health"]["Log"]
            .as_array()
            .is_some_and(|log| !log.is_empty())
    };
    assert!(
        wait_until(Duration::from_secs(30), probed),
        "web was never probed"
    );
    let daemon = s.daemon(&[], &[]);
    let mut events = s.follow_events();
    // And as people read them.
    let plain_events = Daemon(
        s.command(&["events"])
            .stdout(std::fs::File::create(s.dir.join("events.txt")).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let state = s.dir.join("state");
    let cron_ran = || {
        std::fs::read_to_string(state.join(format!("cron/{}.json", s.id())))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .is_some_and(|v| {
                v["shout"]["output_tail"]
                    .as_str()
                    .is_some_and(|o| !o.is_empty())
            })
    };
    // The daemon keeps each probe's time and exit code from the events
    // stream, and the outputs Docker held when the daemon read the
    // container (before `daemon` below, Docker has probed `web`).
    let probes_kept = || {
        std::fs::read_to_string(state.join(format!("health/{web}.json")))
            .is_ok_and(|t| t.contains("probe <masked> <masked> <masked>"))
    };
    let (mut probes_seen, mut cron_seen) = (false, false);
    let mut first_file: Option<String> = None;
    let both = wait_until(Duration::from_secs(30), || {
        if first_file.is_none() {
            first_file = std::fs::read_to_string(state.join(format!("health/{web}.json"))).ok();
        }
        probes_seen = probes_seen || probes_kept();
        cron_seen = cron_seen || cron_ran();
        probes_seen && cron_seen
    });
    assert!(
        both,
        "cron ran: {cron_seen}; probes kept: {probes_seen}; first: {first_file:?}\n{}",
        std::fs::read_to_string(s.dir.join("daemon.log")).unwrap_or_default()
    );
    let status = |args: &[&str]| {
        telefig()
            .args(args)
            .arg("--state-dir")
            .arg(&state)
            .output()
            .unwrap()
    };
    // The cron entry runs every second; between runs, its last output shows.
    let mut table = String::new();
    let shown = wait_until(Duration::from_secs(10), || {
        table = seen.add("status", &status(&["status", "--name", s.id()]));
        table.contains("cron <masked> <masked> <masked>")
    });
    assert!(shown, "{table}");
    seen.add("status --json", &status(&["status", "--json"]));
    let out = status(&["status", &web]);
    let one = seen.add("status web", &out);
    assert!(one.contains("probe <masked> <masked> <masked>"), "{one}");

    // A removed container: the daemon repairs it from the record, its
    // secret values put back from the keeper's environment.
    docker_ok(&["rm", "-f", &web]);
    let repaired = events.next_where(Duration::from_secs(60), |e| {
        e["container"] == web.as_str() && e["event"] == "repaired"
    });
    assert!(repaired.is_some(), "{}", events.summary());
    assert!(wait_until(Duration::from_secs(30), || running(&web)));
    let labels = inspect(&web)["Config"]["Labels"].clone();
    assert_eq!(labels["sig"], secrets.signing.as_str(), "{labels}");
    let cmd = inspect(&web)["Config"]["Cmd"].to_string();
    assert!(cmd.contains(&secrets.password), "{cmd}");
    assert!(running(&keeper));

    // Another token, then back: `rollback` takes the old one from `-e`.
    let old_token = secrets.token.clone();
    let new = Secrets {
        token: format!("tok1b-{}-d", s.id()),
        password: secrets.password.clone(),
        signing: secrets.signing.clone(),
    };
    let out = with_secrets(&s, &new, &["start"]).output().unwrap();
    seen.add("start with a new token", &out);
    assert_exit(&out, 0);
    let out = telefig()
        .args(["rollback", s.id(), "--state-dir"])
        .arg(&state)
        .args(["-e", &format!("API_TOKEN={old_token}")])
        .output()
        .unwrap();
    seen.add("rollback", &out);
    assert_exit(&out, 0);
    let env = inspect(&web)["Config"]["Env"].to_string();
    assert!(
        env.contains(&format!("GREETING=hello {old_token}")),
        "{env}"
    );

    // Errors that would quote a value.
    let conf = std::fs::read_to_string(s.dir.join("serviceset.conf")).unwrap();
    let broken = [
        (
            "an environment entry that is not KEY=VALUE",
            "      - API_TOKEN={{API_TOKEN}}\n",
            "      - \"{{ DB_PASSWORD }}\"\n",
        ),
        (
            "a bad mem_limit",
            "    stop_grace_period: 2s\n    healthcheck",
            "    mem_limit: \"{{ API_TOKEN }}\"\n    stop_grace_period: 2s\n    healthcheck",
        ),
        (
            "a bad image tag",
            "    version: v1\n    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; echo",
            "    version: \"{{ SIGNING }}\"\n    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; echo",
        ),
    ];
    for (what, from, to) in broken {
        assert!(conf.contains(from), "{what}: {from}");
        std::fs::write(s.dir.join("serviceset.conf"), conf.replacen(from, to, 1)).unwrap();
        for command in ["validate", "plan", "start"] {
            let out = run(&[command]);
            let message = seen.add(&format!("{command} with {what}"), &out);
            assert_exit(&out, 2);
            assert!(message.contains("`<masked>` is not"), "{message}");
        }
    }
    std::fs::write(s.dir.join("serviceset.conf"), &conf).unwrap();

    // What `telefig events` showed all along.
    events.next_where(Duration::from_millis(500), |_| false);
    let events = events.summary();
    drop(plain_events);
    let plain = std::fs::read_to_string(s.dir.join("events.txt")).unwrap();
    assert!(plain.contains("repaired"), "{plain}");
    seen.0.push(("telefig events".into(), plain));
    drop(daemon);
    let log = std::fs::read_to_string(s.dir.join("daemon.log")).unwrap_or_default();
    assert!(log.contains("repair"), "{log}");
    seen.0.push(("the daemon's log".into(), log));
    seen.0.push(("telefig events --json".into(), events));

    let mut leaks = Vec::new();
    for (what, text) in &seen.0 {
        let found = secrets.found_in(text);
        if !found.is_empty() || text.contains(&new.token) {
            leaks.push(format!("{what}: {found:?}\n{text}"));
        }
    }
    let files = files_under(&state);
    assert!(files.len() > 5, "{files:?}");
    for (path, bytes) in files {
        let text = String::from_utf8_lossy(&bytes);
        let found = secrets.found_in(&text);
        if !found.is_empty() || text.contains(&new.token) {
            leaks.push(format!("{}: {found:?}\n{text}", path.display()));
        }
    }
    assert!(
        leaks.is_empty(),
        "secret values leaked:\n{}",
        leaks.join("\n\n")
    );
}
