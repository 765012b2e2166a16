//! `telefig render` of every example, snapshotted with insta, plus the
//! Docker-object rules of SPEC §5 checked explicitly on every container
//! (so a reviewed snapshot cannot hide a broken rule) and the config-hash
//! rules of SPEC §7. No Docker needed.
//!
//! Update the snapshots after an intended change with
//! `INSTA_UPDATE=always cargo test --test render_snapshots`, then read the
//! diff of tests/snapshots/ before committing it.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// One example and what the checks need to know about it.
struct Example {
    /// The file under examples/, without `.conf`; also the snapshot name.
    name: &'static str,
    /// `-e` values beyond BUILD_COMMIT and DEPLOY_ID.
    vars: &'static [(&'static str, &'static str)],
    /// Declared containers whose image is not from the platform registries
    /// (`registry: dockerhub`).
    dockerhub: &'static [&'static str],
    /// Declared containers whose `version:` is pinned rather than the commit.
    pinned: &'static [&'static str],
    /// Secret-looking environment keys the example sets (must be masked).
    secrets: &'static [&'static str],
}

const EXAMPLES: &[Example] = &[
    Example {
        name: "card-service",
        vars: &[],
        dockerhub: &[],
        pinned: &[],
        secrets: &["DB_PASSWORD"],
    },
    Example {
        name: "two-containers",
        vars: &[],
        dockerhub: &["cache"],
        pinned: &["cache"],
        secrets: &[],
    },
    Example {
        name: "vtctld",
        vars: &[("START_ID", "0"), ("END_ID", "3")],
        dockerhub: &["vtctld"],
        pinned: &[],
        secrets: &[],
    },
    Example {
        name: "batch-with-cron",
        vars: &[],
        dockerhub: &[],
        pinned: &[],
        secrets: &["DB_PASSWORD", "API_TOKEN"],
    },
];

const COMMIT: &str = "abc1234";
const DEPLOY_ID: &str = "d-1";
const SERVICESET: &str = "demo";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `telefig render` of `example` with exactly the given variables: the
/// environment is emptied (no BUILD_COMMIT, ENV_NAME, STAGE_NAME, HEAP_SIZE,
/// TELEFIG_PLATFORM… from the caller) and the built-in platform is used.
/// Returns the parsed JSON and the raw stdout.
fn render(example: &Example, vars: &[(&str, &str)]) -> (Value, String) {
    let file = format!("examples/{}.conf", example.name);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_telefig"));
    cmd.current_dir(repo()).env_clear();
    if Path::new("/etc/telefig/platform.yaml").exists() {
        cmd.arg("--platform")
            .arg(repo().join("src/platform/default.yaml"));
    }
    cmd.args(["render", "-c", &file, "--name", SERVICESET]);
    for (k, v) in example.vars.iter().chain(vars) {
        cmd.arg("-e").arg(format!("{k}={v}"));
    }
    let out = cmd.output().expect("run telefig");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "render {file} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("render {file}: stdout is not JSON: {e}\n{stdout}"));
    (json, stdout)
}

fn render_default(example: &Example) -> (Value, String) {
    render(
        example,
        &[("BUILD_COMMIT", COMMIT), ("DEPLOY_ID", DEPLOY_ID)],
    )
}

fn containers(json: &Value) -> &Vec<Value> {
    json.as_array().expect("render prints a JSON array")
}

fn text<'a>(c: &'a Value, pointer: &str) -> Option<&'a str> {
    c.pointer(pointer).and_then(Value::as_str)
}

fn label<'a>(c: &'a Value, key: &str) -> Option<&'a str> {
    c.get("Labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

/// Name → config-hash label.
fn hashes(json: &Value) -> BTreeMap<String, String> {
    containers(json)
        .iter()
        .map(|c| {
            (
                text(c, "/Name").unwrap().to_owned(),
                label(c, "telefig.config-hash").unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn every_example_is_covered() {
    let mut on_disk: Vec<String> = fs::read_dir(repo().join("examples"))
        .expect("list examples")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = EXAMPLES.iter().map(|e| e.name.to_owned()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "examples/*.conf and EXAMPLES in this test differ"
    );
}

#[test]
fn render_snapshots() {
    for example in EXAMPLES {
        let (json, _) = render_default(example);
        let mut command = format!(
            "telefig render -c examples/{}.conf -e BUILD_COMMIT={COMMIT} -e DEPLOY_ID={DEPLOY_ID} --name {SERVICESET}",
            example.name
        );
        for (k, v) in example.vars {
            command.push_str(&format!(" -e {k}={v}"));
        }
        insta::with_settings!({ description => command, omit_expression => true }, {
            insta::assert_json_snapshot!(example.name, json);
        });
    }
}

#[test]
fn every_container_follows_the_docker_object_rules() {
    let mut failures = Vec::new();
    for example in EXAMPLES {
        let (json, stdout) = render_default(example);
        let all = containers(&json);
        assert!(!all.is_empty(), "{}: no containers", example.name);
        let names: Vec<&str> = all.iter().filter_map(|c| text(c, "/Name")).collect();
        let mut fail = |name: &str, msg: String| {
            failures.push(format!("{}: {name}: {msg}", example.name));
        };
        for c in all {
            let Some(name) = text(c, "/Name") else {
                fail("?", format!("no Name in {c}"));
                continue;
            };
            let mut check = |ok: bool, msg: String| {
                if !ok {
                    fail(name, msg);
                }
            };
            let network = text(c, "/HostConfig/NetworkMode");
            check(
                network == Some("host"),
                format!("NetworkMode {network:?}, want \"host\""),
            );

            let role = label(c, "telefig.role");
            check(
                matches!(role, Some("main" | "sidecar" | "job")),
                format!("telefig.role {role:?}"),
            );
            let restart = text(c, "/HostConfig/RestartPolicy/Name");
            let want_restart = if role == Some("job") {
                "no"
            } else {
                "unless-stopped"
            };
            check(
                restart == Some(want_restart),
                format!("RestartPolicy.Name {restart:?}, want {want_restart:?}"),
            );

            for (key, want) in [
                ("telefig.serviceset", SERVICESET),
                ("telefig.container", name),
                ("telefig.commit", COMMIT),
                ("telefig.deploy-id", DEPLOY_ID),
            ] {
                let got = label(c, key);
                check(
                    got == Some(want),
                    format!("label {key} = {got:?}, want {want:?}"),
                );
            }
            let hash = label(c, "telefig.config-hash").unwrap_or_default();
            check(
                hash.len() >= 16 && hash.chars().all(|ch| ch.is_ascii_hexdigit()),
                format!("telefig.config-hash {hash:?} is not a hex digest"),
            );

            let image = text(c, "/Image").unwrap_or_default();
            if role == Some("sidecar") {
                let kind = label(c, "telefig.sidecar");
                let owner = label(c, "telefig.owner");
                check(
                    kind.is_some() && owner.is_some(),
                    "a sidecar without telefig.sidecar / telefig.owner".into(),
                );
                if let (Some(kind), Some(owner)) = (kind, owner) {
                    check(
                        name == format!("{owner}-{kind}"),
                        format!("a sidecar named other than <owner>-<kind> ({owner}-{kind})"),
                    );
                    check(
                        names.contains(&owner),
                        format!("owner `{owner}` is not in the render"),
                    );
                }
                check(
                    image.starts_with("registry.internal/"),
                    format!("sidecar image {image:?} is not from the platform registry"),
                );
            } else {
                for key in ["telefig.sidecar", "telefig.owner"] {
                    check(
                        label(c, key).is_none(),
                        format!("a {role:?} container with label {key}"),
                    );
                }
                if !example.dockerhub.contains(&name) {
                    check(
                        image.starts_with("registry.internal/"),
                        format!("image {image:?} is not from the platform registry"),
                    );
                }
                if !example.pinned.contains(&name) {
                    check(
                        image.ends_with(&format!(":{COMMIT}")),
                        format!("image {image:?} is not tagged with the commit"),
                    );
                }
            }

            for entry in c
                .get("Env")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
                let secret = ["PASSWORD", "SECRET", "TOKEN", "KEY"]
                    .iter()
                    .any(|w| key.to_ascii_uppercase().contains(w));
                if secret {
                    check(
                        value == "<masked>",
                        format!("secret {key} printed as {value:?}"),
                    );
                }
            }
        }
        for secret in example.secrets {
            let masked = format!("{secret}=<masked>");
            if !stdout.contains(&masked) {
                failures.push(format!("{}: no {masked:?} in the render", example.name));
            }
        }
        for value in ["hunter2", "s3cr3t"] {
            if stdout.contains(value) {
                failures.push(format!(
                    "{}: the secret value {value:?} is printed",
                    example.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_new_deploy_id_alone_changes_no_config_hash() {
    for example in EXAMPLES {
        let (first, _) = render_default(example);
        let (second, _) = render(example, &[("BUILD_COMMIT", COMMIT), ("DEPLOY_ID", "d-2")]);
        assert_eq!(hashes(&first), hashes(&second), "{}", example.name);
        for c in containers(&second) {
            assert_eq!(
                label(c, "telefig.deploy-id"),
                Some("d-2"),
                "{}",
                example.name
            );
        }
    }
}

#[test]
fn an_environment_change_changes_the_hash_of_that_container_only() {
    let card = &EXAMPLES[0];
    assert_eq!(card.name, "card-service");
    let (before, _) = render_default(card);
    let (after, _) = render(
        card,
        &[
            ("BUILD_COMMIT", COMMIT),
            ("DEPLOY_ID", DEPLOY_ID),
            ("HEAP_SIZE", "8G"),
        ],
    );
    let web = containers(&after)
        .iter()
        .find(|c| text(c, "/Name") == Some("web"))
        .expect("web");
    assert!(
        web["Env"]
            .as_array()
            .unwrap()
            .contains(&Value::from("HEAP_SIZE=8G")),
        "{web}"
    );
    let (before, after) = (hashes(&before), hashes(&after));
    for (name, hash) in &before {
        if name == "web" {
            assert_ne!(
                hash, &after[name],
                "web's hash must change with its environment"
            );
        } else {
            assert_eq!(hash, &after[name], "{name}'s hash must not change");
        }
    }
}

#[test]
fn a_new_commit_changes_the_main_containers_hash_not_the_sidecars() {
    let card = &EXAMPLES[0];
    let (before, _) = render_default(card);
    let (after, _) = render(
        card,
        &[("BUILD_COMMIT", "def5678"), ("DEPLOY_ID", DEPLOY_ID)],
    );
    let roles: BTreeMap<String, String> = containers(&after)
        .iter()
        .map(|c| {
            (
                text(c, "/Name").unwrap().to_owned(),
                label(c, "telefig.role").unwrap().to_owned(),
            )
        })
        .collect();
    let (before, after) = (hashes(&before), hashes(&after));
    for (name, hash) in &before {
        if roles[name] == "sidecar" {
            assert_eq!(
                hash, &after[name],
                "{name}: a sidecar's hash must not follow the commit"
            );
        } else {
            assert_ne!(hash, &after[name], "{name}: the image tag changed");
        }
    }
}

/// Built with `--no-default-features`, `render --format kubernetes` says the
/// export is not in this binary and exits 2 (CI runs this build too).
#[cfg(not(feature = "kubernetes"))]
#[test]
fn kubernetes_format_without_the_feature_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_telefig"))
        .current_dir(repo())
        .env_clear()
        .args([
            "render",
            "--format",
            "kubernetes",
            "-c",
            "examples/card-service.conf",
        ])
        .output()
        .expect("run telefig");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr
            .lines()
            .last()
            .is_some_and(|l| l.contains("built without the Kubernetes export")),
        "{stderr}"
    );
}
