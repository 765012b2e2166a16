//! `start` run as a deploy hook runs it — from `$TARGET/teletraan/`, with
//! paths named from the top of the build — says which file each relative
//! path stood for and where it was found: on stderr for people, in the
//! `--json` report's `resolved` field for machines.

mod support;

use std::path::Path;
use std::process::Output;

use support::*;

fn run(build: &Path, guard: &Cleanup, json: bool) -> Output {
    let mut cmd = telefig();
    cmd.current_dir(build.join("teletraan"))
        .env("TARGET", build)
        .args(["start", "-c", "teletraan/config/serviceset.conf"])
        .args(["--name", guard.id(), "--platform"])
        .arg(build.join("platform.yaml"))
        .arg("--state-dir")
        .arg(build.join("state"));
    if json {
        cmd.arg("--json");
    }
    cmd.output().unwrap()
}

#[test]
fn start_says_which_relative_paths_it_resolved_and_from_where() {
    if !require_docker() {
        return;
    }
    let guard = Cleanup::new();
    let build = scratch_dir("start-resolved");
    let config = build.join("teletraan/config");
    std::fs::create_dir_all(&config).unwrap();
    retag(&busybox_image("1"), "tf.local/resolved:1");
    let labels = platform_labels(guard.id());
    std::fs::write(
        build.join("platform.yaml"),
        format!("registries: {{primary: tf.local}}\n{labels}"),
    )
    .unwrap();
    std::fs::write(config.join("app.conf"), "x=1\n").unwrap();
    let web = format!("{}-app", guard.id());
    std::fs::write(
        config.join("serviceset.conf"),
        format!(
            "{web}:\n  docker:\n    image: resolved\n    version: \"1\"\n    command: [sh, -c, \"trap 'exit 0' TERM; while :; do sleep 1 & wait; done\"]\n    volumes: [\"teletraan/config/app.conf:/etc/app.conf:ro\"]\n"
        ),
    )
    .unwrap();

    let out = run(&build, &guard, false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let file = format!(
        "using serviceset file `teletraan/config/serviceset.conf` → {} (found under $TARGET)",
        config.join("serviceset.conf").display()
    );
    assert!(stderr.contains(&file), "{stderr}");
    let bind = format!(
        "using {web}: bind source `teletraan/config/app.conf` → {} (found under $TARGET)",
        config.join("app.conf").display()
    );
    assert!(stderr.contains(&bind), "{stderr}");

    let out = run(&build, &guard, true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("using "),
        "--json keeps it to the report\n{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let resolved = report["resolved"].as_array().expect("a resolved field");
    assert_eq!(resolved.len(), 2, "{resolved:?}");
    assert_eq!(resolved[0]["container"], serde_json::Value::Null);
    assert_eq!(resolved[0]["given"], "teletraan/config/serviceset.conf");
    assert_eq!(resolved[1]["container"], web.as_str());
    assert_eq!(
        resolved[1]["used"],
        config.join("app.conf").display().to_string()
    );
    assert!(
        resolved.iter().all(|r| r["from"] == "target"),
        "{resolved:?}"
    );
}
