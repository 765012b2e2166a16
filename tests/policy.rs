//! The platform's `policy:` through the binary: each rule refuses a
//! serviceset that asks for more (exit 2, the file's line, the rule's name)
//! and lets one that stays inside it through, at `validate`, `render`,
//! `plan` and `start`; sidecar templates are the platform's and pass; and a
//! refused `start` against the real engine changes nothing that runs.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use support::*;

/// The built-in platform with `policy` added.
fn platform(dir: &Path, policy: &str) -> PathBuf {
    let built_in = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/platform/default.yaml"),
    )
    .unwrap();
    let path = dir.join("platform.yaml");
    std::fs::write(&path, format!("{built_in}\npolicy:\n{policy}\n")).unwrap();
    path
}

fn run(dir: &Path, command: &str, conf: &str) -> Output {
    telefig()
        .current_dir(dir)
        .args([
            command,
            "-c",
            conf,
            "--name",
            "shop",
            "-e",
            "BUILD_COMMIT=c1",
        ])
        .arg("--platform")
        .arg(dir.join("platform.yaml"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .output()
        .unwrap()
}

/// (rule as written under `policy:`, the `web` entry that breaks it, one
/// that does not, the words the refusal must hold)
type Case = (&'static str, &'static str, &'static str, &'static str);

const CASES: &[Case] = &[
    (
        "  host_paths: [/var/log]",
        "  docker:\n    image: web\n    volumes: [\"/etc:/host-etc\"]\n",
        "  docker:\n    image: web\n    volumes: [\"/var/log/web:/logs\"]\n",
        "bind source `/etc` is not under a host path the platform allows (/var/log): the platform's policy does not allow it (rule `host_paths`)",
    ),
    // Components, not text: `/var/log` does not allow `/var/logs-evil`.
    (
        "  host_paths: [/var/log]",
        "  docker:\n    image: web\n    volumes: [\"/var/logs-evil:/logs\"]\n",
        "  docker:\n    image: web\n    volumes: [\"/var/log/evil:/logs\"]\n",
        "bind source `/var/logs-evil` is not under",
    ),
    // `..` is gone before the comparison.
    (
        "  host_paths: [/var/log]",
        "  docker:\n    image: web\n    volumes: [\"/var/log/../../etc:/host-etc\"]\n",
        "  docker:\n    image: web\n    volumes: [\"/var/log/x/../web:/logs\"]\n",
        "bind source `/etc` is not under",
    ),
    // A path a sidecar parameter turns into a bind is the serviceset's ask.
    (
        "  host_paths: [/var/log]",
        "  docker: {image: web}\n  sidecars:\n    logrotate: {file: /etc/shadow}\n",
        "  docker: {image: web}\n  sidecars:\n    logrotate: {file: /var/log/web/rotate.conf}\n",
        "sidecar `logrotate` of `web`: bind source `/etc/shadow` is not under",
    ),
    (
        "  host_paths: [{path: /etc/ssl, read_only: true}]",
        "  docker:\n    image: web\n    volumes: [\"/etc/ssl:/ssl\"]\n",
        "  docker:\n    image: web\n    volumes: [\"/etc/ssl:/ssl:ro\"]\n",
        "may only be mounted read-only: add `:ro`",
    ),
    (
        "  docker_socket: false",
        "  docker:\n    image: web\n    volumes: [\"/var/run/docker.sock:/var/run/docker.sock\"]\n",
        "  docker:\n    image: web\n    volumes: [\"/var/log:/logs\"]\n",
        "the container runtime's socket",
    ),
    (
        "  privileged: false",
        "  docker:\n    image: web\n    privileged: true\n",
        "  docker:\n    image: web\n    privileged: false\n",
        "`privileged: true`: the platform's policy does not allow it (rule `privileged`)",
    ),
    (
        "  cap_add: [NET_BIND_SERVICE]",
        "  docker:\n    image: web\n    cap_add: [NET_BIND_SERVICE, SYS_ADMIN]\n",
        "  docker:\n    image: web\n    cap_add: [NET_BIND_SERVICE]\n",
        "capability `SYS_ADMIN` (allowed: NET_BIND_SERVICE)",
    ),
    (
        "  run_as_root: false",
        "  docker:\n    image: web\n    user: \"0:0\"\n",
        "  docker:\n    image: web\n    user: \"1000\"\n",
        "`user: 0:0` runs as root",
    ),
    (
        "  cgroup_parent: false",
        "  docker:\n    image: web\n    cgroup_parent: /\n",
        "  docker:\n    image: web\n",
        "rule `cgroup_parent`",
    ),
];

#[test]
fn each_rule_refuses_more_and_allows_less_at_validate_and_render() {
    for (rule, refused, allowed, words) in CASES {
        let dir = scratch_dir("policy");
        platform(&dir, rule);
        std::fs::write(dir.join("refused.conf"), format!("web:\n{refused}")).unwrap();
        std::fs::write(dir.join("allowed.conf"), format!("web:\n{allowed}")).unwrap();
        for command in ["validate", "render"] {
            let out = run(&dir, command, "refused.conf");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{rule} {command}: {stderr}");
            assert!(
                stderr.contains("error: refused.conf:"),
                "{rule} {command}: file:line\n{stderr}"
            );
            assert!(stderr.contains(words), "{rule} {command}: {stderr}");
            assert!(
                stderr.contains("the policy is the platform's (`policy:` in"),
                "{rule} {command}: {stderr}"
            );
            let out = run(&dir, command, "allowed.conf");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{rule} {command}: {stderr}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// The line of the mistake: the field that asked, or the sidecar whose
/// parameter did.
#[test]
fn a_refusal_points_at_the_field_that_asked() {
    let dir = scratch_dir("policy-line");
    platform(&dir, "  host_paths: [/var/log]\n  privileged: false");
    for (text, at) in [
        (
            "web:\n  docker:\n    image: web\n    privileged: true\n",
            "refused.conf:4:5:",
        ),
        (
            "web:\n  docker:\n    image: web\n  sidecars:\n    logging:\n    logrotate: {file: /etc/passwd}\n",
            "refused.conf:6:5:",
        ),
    ] {
        std::fs::write(dir.join("refused.conf"), text).unwrap();
        let out = run(&dir, "validate", "refused.conf");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(at), "{at}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The built-in templates bind `/var/log`, `/var/zum` and `/var/lib/knox`:
/// the platform's own asks, which a policy for servicesets does not limit.
#[test]
fn sidecar_templates_are_trusted() {
    let dir = scratch_dir("policy-trusted");
    platform(
        &dir,
        "  host_paths: [/srv/web]\n  privileged: false\n  docker_socket: false",
    );
    std::fs::write(
        dir.join("card.conf"),
        "web:\n  docker: {image: web}\n  sidecars:\n    logging:\n    zum:\n    knox:\n    metrics:\n",
    )
    .unwrap();
    let out = run(&dir, "validate", "card.conf");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn plan_and_start_refuse_before_asking_docker() {
    let dir = scratch_dir("policy-plan");
    platform(&dir, "  privileged: false");
    std::fs::write(
        dir.join("refused.conf"),
        "web:\n  docker:\n    image: web\n    privileged: true\n",
    )
    .unwrap();
    for command in ["plan", "start"] {
        let out = telefig()
            .current_dir(&dir)
            .env(
                "DOCKER_HOST",
                format!("unix://{}", dir.join("no-docker.sock").display()),
            )
            .args([command, "-c", "refused.conf", "--name", "shop"])
            .args(["-e", "BUILD_COMMIT=c1", "--platform", "platform.yaml"])
            .arg("--state-dir")
            .arg(dir.join("state"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains("refused.conf:4:5: web: `privileged: true`"),
            "{command}: {stderr}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A serviceset running under a policy is changed to ask for a bind the
/// policy does not allow: `start` exits 2 and the running container is
/// the same one, started at the same time, with the same binds.
#[test]
fn a_refused_start_changes_nothing_that_runs() {
    if !require_docker() {
        return;
    }
    let guard = Cleanup::new();
    let dir = scratch_dir("policy-start");
    retag(&busybox_image("1"), "tf.local/policy:1");
    let (k, v) = test_label(guard.id())
        .split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .unwrap();
    std::fs::write(
        dir.join("platform.yaml"),
        format!(
            "registries: {{primary: tf.local}}\nlabels: {{{k}: \"{v}\"}}\npolicy:\n  host_paths: [{}]\n",
            dir.display()
        ),
    )
    .unwrap();
    let web = format!("{}-web", guard.id());
    let conf = |volume: &str| {
        format!(
            "{web}:\n  docker:\n    image: policy\n    version: \"1\"\n    command: [sh, -c, \"trap 'exit 0' TERM; while :; do sleep 1 & wait; done\"]\n    volumes: [\"{volume}\"]\n"
        )
    };
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let start = || {
        telefig()
            .current_dir(&dir)
            .args(["start", "-c", "serviceset.conf", "--name", guard.id()])
            .args(["--platform", "platform.yaml", "--timeout", "60s"])
            .arg("--state-dir")
            .arg(dir.join("state"))
            .output()
            .unwrap()
    };
    std::fs::write(dir.join("serviceset.conf"), conf("./data:/data")).unwrap();
    let out = start();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = inspect(&web);
    let record = std::fs::read(dir.join(format!("state/servicesets/{}.json", guard.id()))).unwrap();

    std::fs::write(dir.join("serviceset.conf"), conf("/etc:/data")).unwrap();
    let out = start();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("serviceset.conf:6:5:") && stderr.contains("rule `host_paths`"),
        "{stderr}"
    );
    let after = inspect(&web);
    for field in [
        "/Id",
        "/State/StartedAt",
        "/HostConfig/Binds",
        "/State/Running",
    ] {
        assert_eq!(before.pointer(field), after.pointer(field), "{field}");
    }
    assert_eq!(
        before.pointer("/HostConfig/Binds").unwrap()[0],
        format!("{}:/data", dir.join("data").display()).as_str()
    );
    let record_after =
        std::fs::read(dir.join(format!("state/servicesets/{}.json", guard.id()))).unwrap();
    assert!(record == record_after, "the record changed");
    std::fs::remove_dir_all(&dir).unwrap();
}
