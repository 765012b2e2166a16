//! `telefig render --format kubernetes` (issue 15: the objects a cluster
//! would accept). Three kinds of check, no Docker needed:
//!
//! - golden text (insta) of a service with all card sidecars, a job and a
//!   service, cron entries, and secrets — reviewed once, deterministic;
//! - the printed YAML read back into k8s-openapi's types, for assertions
//!   a reviewed snapshot could hide (start order, no secret value);
//! - every example and every fixture under tests/fixtures/kubernetes
//!   validated with `kubernetes-validate --strict` against Kubernetes
//!   1.37's published OpenAPI schemas. `tests/setup` installs the
//!   validator under target/; without it the test fails and says so.
//!
//! Update the snapshots after an intended change with
//! `INSTA_UPDATE=always cargo test --test render_kubernetes`, then read
//! the diff of tests/snapshots/ before committing it.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, Secret};
use serde::Deserialize;
use support::telefig;

/// The Kubernetes version the export targets and the validator checks.
const KUBERNETES_VERSION: &str = "1.37.0";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Render `file` with `platform` (a fixed file, so a host's
/// /etc/telefig/platform.yaml cannot change the result): stdout, stderr.
fn render(file: &str, platform: &str, extra: &[&str]) -> (String, String) {
    let out = telefig()
        .args(["render", "--format", "kubernetes", "-c"])
        .arg(repo(file))
        .arg("--platform")
        .arg(repo(platform))
        .args([
            "-e",
            "BUILD_COMMIT=abc1234",
            "-e",
            "START_ID=0",
            "-e",
            "END_ID=3",
        ])
        .args(["-e", "STAGE_NAME=prod"])
        .args(extra)
        .output()
        .expect("run telefig");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "render of {file} failed ({}): {stderr}{stdout}",
        out.status
    );
    (stdout, stderr)
}

const DEMO_PLATFORM: &str = "examples/demo/platform.yaml";
const BUILT_IN_PLATFORM: &str = "src/platform/default.yaml";

/// The documents of a multi-document YAML text of the given kind.
fn documents<T: for<'de> Deserialize<'de>>(text: &str, kind: &str) -> Vec<T> {
    serde_yaml::Deserializer::from_str(text)
        .filter_map(|doc| {
            let value = serde_yaml::Value::deserialize(doc).expect("a YAML document");
            (value["kind"].as_str() == Some(kind)).then(|| {
                serde_yaml::from_value(value)
                    .unwrap_or_else(|e| panic!("not a {kind}: {e}\n{text}"))
            })
        })
        .collect()
}

fn names(containers: &[Container]) -> Vec<&str> {
    containers.iter().map(|c| c.name.as_str()).collect()
}

#[test]
fn golden_card_service_with_all_card_sidecars() {
    let (text, _) = render(
        "examples/card-service.conf",
        DEMO_PLATFORM,
        &["--name", "card", "--replicas", "3", "--namespace", "shop"],
    );
    insta::assert_snapshot!("card-service", text);

    let [deployment]: [Deployment; 1] = documents(&text, "Deployment").try_into().unwrap();
    assert_eq!(deployment.metadata.namespace.as_deref(), Some("shop"));
    assert_eq!(deployment.spec.replicas, Some(3));
    let pod = deployment.spec.template.spec.unwrap();
    assert_eq!(pod.host_network, Some(true));
    let init = pod.init_containers.unwrap();
    assert_eq!(names(&init), ["web-logging", "web-metrics", "web-proxy"]);
    assert!(
        init.iter()
            .all(|c| c.restart_policy.as_deref() == Some("Always"))
    );
    assert_eq!(names(&pod.containers), ["web", "web-discovery"]);
    assert!(pod.containers[0].startup_probe.is_some());
    assert_eq!(
        pod.containers[1].readiness_probe, pod.containers[0].readiness_probe,
        "discovery is Ready once web is"
    );
    assert!(text.contains("# As under telefig (network_mode: host)"));
    assert!(!text.contains("hunter2"));
}

#[test]
fn golden_job_and_service() {
    let (text, stderr) = render(
        "tests/fixtures/kubernetes/job-and-service.conf",
        BUILT_IN_PLATFORM,
        &["--name", "shop"],
    );
    insta::assert_snapshot!("job-and-service", text);
    let [deployment]: [Deployment; 1] = documents(&text, "Deployment").try_into().unwrap();
    let pod = deployment.spec.template.spec.unwrap();
    assert_eq!(
        names(pod.init_containers.as_deref().unwrap()),
        ["migrate", "api-logging"]
    );
    let jobs: Vec<k8s_openapi::api::batch::v1::Job> = documents(&text, "Job");
    let job_names: Vec<_> = jobs.iter().map(|j| j.metadata.name.as_deref()).collect();
    assert_eq!(job_names, [Some("shop-backfill")]);
    assert!(stderr.contains("backfill once api is healthy"), "{stderr}");
}

#[test]
fn golden_cron_entries() {
    let (text, stderr) = render(
        "tests/fixtures/kubernetes/cron.conf",
        BUILT_IN_PLATFORM,
        &["--name", "vtctld"],
    );
    insta::assert_snapshot!("cron", text);
    let crons: Vec<k8s_openapi::api::batch::v1::CronJob> = documents(&text, "CronJob");
    let schedules: Vec<_> = crons
        .iter()
        .map(|c| {
            (
                c.metadata.name.as_deref().unwrap(),
                c.spec.schedule.as_str(),
            )
        })
        .collect();
    assert_eq!(
        schedules,
        [
            ("vtctld-periodic-monitoring", "6,36 * * * *"),
            ("vtctld-nightly-report", "@daily")
        ]
    );
    assert!(
        crons
            .iter()
            .all(|c| c.spec.concurrency_policy.as_deref() == Some("Forbid"))
    );
    assert!(stderr.contains("schedule `@every 30s`"), "{stderr}");
}

#[test]
fn golden_secrets_keys_only() {
    let (text, _) = render(
        "tests/fixtures/kubernetes/secrets.conf",
        BUILT_IN_PLATFORM,
        &["--name", "shop"],
    );
    insta::assert_snapshot!("secrets", text);
    let [secret]: [Secret; 1] = documents(&text, "Secret").try_into().unwrap();
    let keys: Vec<_> = secret.string_data.unwrap().into_iter().collect();
    assert_eq!(
        keys,
        [
            ("SESSION_TOKEN".to_owned(), String::new()),
            ("STRIPE_SECRET_KEY".to_owned(), String::new()),
            ("api.DB_PASSWORD".to_owned(), String::new()),
            ("worker.DB_PASSWORD".to_owned(), String::new()),
        ]
    );
    for value in [
        "api-db-password",
        "worker-db-password",
        "stripe-secret",
        "shared-token",
    ] {
        assert!(!text.contains(value), "{value} leaked");
    }
}

/// Every file that must render to valid objects: each example (with the
/// platform it is written for) and each fixture under tests/fixtures/kubernetes.
fn renderable() -> Vec<(String, &'static str)> {
    let mut out = vec![
        ("examples/demo/serviceset.conf".to_owned(), DEMO_PLATFORM),
        (
            "examples/teletraan/config/serviceset.prod.conf".to_owned(),
            BUILT_IN_PLATFORM,
        ),
    ];
    for dir in ["examples", "tests/fixtures/kubernetes"] {
        let mut files: Vec<String> = std::fs::read_dir(repo(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".conf"))
            .map(|n| format!("{dir}/{n}"))
            .collect();
        files.sort();
        out.extend(files.into_iter().map(|f| (f, BUILT_IN_PLATFORM)));
    }
    out
}

/// `kubernetes-validate` 1.37.0: `$KUBERNETES_VALIDATE`, the copy
/// `tests/setup` installs under target/, or one on PATH.
fn validator() -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo("target"));
    let candidates = [
        std::env::var_os("KUBERNETES_VALIDATE").map(PathBuf::from),
        Some(target.join("kubernetes-validate/bin/kubernetes-validate")),
        Some(PathBuf::from("kubernetes-validate")),
    ];
    candidates.into_iter().flatten().find(|path| {
        Command::new(path)
            .arg("--version")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == KUBERNETES_VERSION)
    })
}

#[test]
fn every_example_and_fixture_passes_kubernetes_strict_schema_validation() {
    let Some(validator) = validator() else {
        support::missing(&format!(
            "kubernetes-validate {KUBERNETES_VERSION} (or set KUBERNETES_VALIDATE to its path)"
        ));
    };
    let dir = support::scratch_dir("k8s-validate");
    let mut files = Vec::new();
    for (file, platform) in renderable() {
        let (text, _) = render(&file, platform, &["--name", "demo"]);
        let out = dir.join(file.replace('/', "_") + ".yaml");
        std::fs::write(&out, text).unwrap();
        files.push(out);
    }
    assert!(files.len() >= 9, "{files:?}");
    let out = Command::new(&validator)
        .args(["--strict", "--no-warn", "-k", KUBERNETES_VERSION])
        .args(&files)
        .output()
        .expect("run kubernetes-validate");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{report}");
    // Each file passed, and every object in it.
    for file in &files {
        assert!(
            report.contains(&format!("{} passed", file.display())),
            "no pass for {}:\n{report}",
            file.display()
        );
    }
    assert!(!report.contains("ERROR"), "{report}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn what_kubernetes_cannot_express_exits_2_and_names_it() {
    let dir = support::scratch_dir("k8s");
    let cases = [
        (
            "mixed-network.conf",
            "api:\n  docker: {image: a, version: v1}\nbatch:\n  docker: {image: b, version: v1, network_mode: bridge}\n",
            "a Pod has one network namespace",
        ),
        // Refused before the export: Docker would make it a named volume.
        (
            "named-volume.conf",
            "web:\n  docker: {image: web, version: v1, volumes: [\"data:/data\"]}\n",
            "`data` would be a named Docker volume",
        ),
        // A CronJob has no seconds field: refused at the entry's line.
        (
            "seconds.conf",
            "web:\n  docker: {image: web, version: v1}\n  sidecars:\n    cron:\n      Tick: {schedule: \"*/5 * * * * *\", command: [/bin/true]}\n",
            "seconds.conf:4:5: cannot render as Kubernetes objects: cron entry `Tick` of `web` runs on `*/5 * * * * *`, which a CronJob cannot take: it runs on seconds",
        ),
        // Both would be the Secret's `MY_KEY`.
        (
            "secret-keys.conf",
            "web:\n  docker:\n    image: web\n    version: v1\n    environment: {\"MY KEY\": one, MY_KEY: two}\n",
            "secret-keys.conf:5:5: cannot render as Kubernetes objects: environment keys `MY KEY` and `MY_KEY` would both be `MY_KEY` in the Secret",
        ),
    ];
    for (name, text, needle) in cases {
        let file = dir.join(name);
        std::fs::write(&file, text).unwrap();
        let out = telefig()
            .current_dir(&dir)
            .args(["render", "--format", "kubernetes", "-c", name])
            .arg("--platform")
            .arg(repo(DEMO_PLATFORM))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(needle), "{name}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn replicas_and_namespace_need_the_kubernetes_format() {
    let out = telefig()
        .args(["render", "--replicas", "2", "-c"])
        .arg(repo("examples/card-service.conf"))
        .args(["-e", "BUILD_COMMIT=abc1234"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--format kubernetes"), "{stderr}");
}
