//! `telefig history` and `telefig rollback --to` (issue 23, part 4) against
//! the real Docker Engine: versions of one container deployed by commit
//! (each its own tag of the busybox image, tagged locally under a fake
//! registry host, so nothing is pulled), listed newest first with the
//! running version and the rollback target marked and a failed deploy's
//! cause; a rollback to the oldest; a rollback refused because its image
//! is gone, which changes nothing.

mod support;

use std::path::PathBuf;
use std::process::Output;

use serde_json::Value;
use support::*;

struct Versions {
    guard: Cleanup,
    dir: PathBuf,
}

impl Versions {
    fn new() -> Versions {
        let v = Versions {
            guard: Cleanup::new(),
            dir: scratch_dir("history"),
        };
        std::fs::write(
            v.dir.join("platform.yaml"),
            format!(
                "registries: {{primary: \"tf.local\"}}\n{}",
                platform_labels(v.id())
            ),
        )
        .unwrap();
        let base = busybox_image("1");
        for n in 1..=4 {
            retag(&base, &v.reference(n));
        }
        v
    }

    fn id(&self) -> &str {
        self.guard.id()
    }

    fn web(&self) -> String {
        format!("{}-web", self.id())
    }

    /// A 40-character commit, distinct in its first 12.
    fn commit(n: u32) -> String {
        format!("{n}{}", "c0ffee5".repeat(6))[..40].to_owned()
    }

    fn short(n: u32) -> String {
        Versions::commit(n)[..12].to_owned()
    }

    fn reference(&self, n: u32) -> String {
        format!("tf.local/{}/web:{}", self.id(), Versions::commit(n))
    }

    fn telefig(&self, args: &[&str]) -> Output {
        telefig_in(&self.dir, args).output().unwrap()
    }

    /// Deploy version `n`; `healthy: false` exits 3 before its healthcheck passes.
    fn deploy(&self, n: u32, healthy: bool) -> Output {
        let script = if healthy {
            "touch /ready; while :; do sleep 1 & wait; done"
        } else {
            "exit 3"
        };
        let conf = self.dir.join("serviceset.conf");
        std::fs::write(
            &conf,
            format!(
                r#"{web}:
  docker:
    image: {id}/web
    command: ["sh", "-c", "trap 'exit 0' TERM; {script}"]
    stop_grace_period: 2s
    healthcheck: {{test: "test -e /ready", interval: 200ms, timeout: 1s, start_period: 5s, retries: 2}}
"#,
                web = self.web(),
                id = self.id(),
            ),
        )
        .unwrap();
        self.telefig(&[
            "start",
            "-c",
            conf.to_str().unwrap(),
            "--name",
            self.id(),
            "-e",
            &format!("BUILD_COMMIT={}", Versions::commit(n)),
            "-e",
            &format!("DEPLOY_ID=d-{n}"),
        ])
    }

    fn history_json(&self) -> Value {
        let out = self.telefig(&["history", self.id(), "--json"]);
        assert_exit(&out, 0);
        let all: Value = serde_json::from_slice(&out.stdout).unwrap();
        all["servicesets"][0].clone()
    }

    fn image_running(&self) -> String {
        inspect(&self.web())["Config"]["Image"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

impl Drop for Versions {
    fn drop(&mut self) {
        cleanup(self.id());
        for n in 1..=4 {
            untag(&self.reference(n));
        }
    }
}

/// `(commit, ran_by, result, running, rollback_target)` of each entry.
fn rows(h: &Value) -> Vec<(String, String, String, bool, bool)> {
    h["deploys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["commit"].as_str().unwrap_or("-").to_owned(),
                d["ran_by"].as_str().unwrap().to_owned(),
                d["result"].as_str().unwrap().to_owned(),
                d["running"].as_bool().unwrap(),
                d["rollback_target"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn row(
    n: u32,
    ran_by: &str,
    result: &str,
    marks: (bool, bool),
) -> (String, String, String, bool, bool) {
    (
        Versions::commit(n),
        ran_by.into(),
        result.into(),
        marks.0,
        marks.1,
    )
}

#[test]
fn history_lists_deploys_newest_first_and_rollback_to_the_oldest_runs_it() {
    if !require_docker() {
        return;
    }
    let v = Versions::new();
    for n in 1..=3 {
        assert_exit(&v.deploy(n, true), 0);
    }
    assert_exit(&v.deploy(4, false), 1);
    assert_eq!(
        v.image_running(),
        v.reference(3),
        "the failed deploy was rolled back"
    );

    let h = v.history_json();
    assert_eq!(
        rows(&h),
        [
            row(4, "start", "rolled_back", (false, false)),
            row(3, "start", "succeeded", (true, false)),
            row(2, "start", "succeeded", (false, true)),
            row(1, "start", "succeeded", (false, false)),
        ]
    );
    let failed = &h["deploys"][0];
    let cause = failed["failure_cause"].as_str().unwrap();
    assert!(
        cause.starts_with(&format!(
            "{} failed; the previous version was put back",
            v.web()
        )),
        "{cause}"
    );
    assert_eq!(failed["deploy_id"], "d-4");
    assert_eq!(
        failed["slowest_gate"],
        Value::Null,
        "the version put back is not its gate"
    );
    let ok = &h["deploys"][1];
    assert_eq!(ok["failure_cause"], Value::Null);
    assert_eq!(ok["slowest_gate"]["container"], v.web().as_str());
    assert_eq!(ok["slowest_gate"]["gate"], "healthy");
    assert!(ok["duration_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(h["running"]["commit"], Versions::commit(3).as_str());
    assert_eq!(h["rollback_target"]["commit"], Versions::commit(2).as_str());

    // The table, newest first, marked, with the cause under the failed row.
    let out = v.telefig(&["history", v.id()]);
    assert_exit(&out, 0);
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    let at = |n: u32| {
        table
            .lines()
            .position(|l| l.contains(&Versions::short(n)) && l.contains("start"))
            .unwrap_or_else(|| panic!("no row for {n}:\n{table}"))
    };
    assert!(at(4) < at(3) && at(3) < at(2) && at(2) < at(1), "{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[at(3)].starts_with('*'), "{table}");
    assert!(lines[at(2)].starts_with('<'), "{table}");
    assert!(lines[at(4)].contains("rolled back"), "{table}");
    assert!(
        lines[at(4) + 1..at(3)].iter().any(|l| l
            .trim_start()
            .starts_with(&format!("cause: {} failed", v.web()))),
        "{table}"
    );
    assert!(table.lines().all(|l| l.chars().count() <= 80), "{table}");

    // Back to the oldest, by the commit as the table shows it.
    let out = v.telefig(&["rollback", v.id(), "--to", &Versions::short(1)]);
    assert_exit(&out, 0);
    assert_eq!(v.image_running(), v.reference(1));
    let h = v.history_json();
    assert_eq!(
        rows(&h)[..3],
        [
            row(1, "rollback", "succeeded", (true, false)),
            row(4, "start", "rolled_back", (false, false)),
            row(3, "start", "succeeded", (false, true)),
        ]
    );
    assert_eq!(h["rollback_target"]["commit"], Versions::commit(3).as_str());
}

#[test]
fn rollback_to_a_version_whose_image_is_gone_is_refused_and_changes_nothing() {
    if !require_docker() {
        return;
    }
    let v = Versions::new();
    for n in 1..=3 {
        assert_exit(&v.deploy(n, true), 0);
    }
    untag(&v.reference(1));
    let id_before = inspect(&v.web())["Id"].clone();
    let record = v.dir.join(format!("state/servicesets/{}.json", v.id()));
    let record_before = std::fs::read(&record).unwrap();
    let history_before = v.history_json();

    let out = v.telefig(&["rollback", v.id(), "--to", &Versions::commit(1)]);
    assert_exit(&out, 1);
    let said = text(&out);
    assert!(said.contains(&v.reference(1)), "names the image: {said}");
    assert!(said.contains("docker pull"), "says what to do: {said}");
    assert_eq!(
        inspect(&v.web())["Id"],
        id_before,
        "the container is untouched"
    );
    assert_eq!(v.image_running(), v.reference(3));
    assert_eq!(
        std::fs::read(&record).unwrap(),
        record_before,
        "the record too"
    );
    assert_eq!(v.history_json(), history_before, "and the deploy log");

    // An unknown commit: exit 2, with what is recorded.
    let out = v.telefig(&["rollback", v.id(), "--to", "f00d"]);
    assert_exit(&out, 2);
    let said = text(&out);
    assert!(
        said.contains(&format!("{} (running)", Versions::commit(3)))
            && said.contains(&format!("{} (rollback target)", Versions::commit(2))),
        "{said}"
    );

    // `history` needs no Docker; an unknown name is exit 2 with a hint.
    let out = telefig()
        .args(["history", "--state-dir"])
        .arg(v.dir.join("state"))
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains(v.id()));
    let typo = format!("{}x", v.id());
    let out = v.telefig(&["history", &typo]);
    assert_exit(&out, 2);
    assert!(
        text(&out).contains(&format!("did you mean `{}`?", v.id())),
        "{}",
        text(&out)
    );
}
