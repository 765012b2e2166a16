//! `tests/setup`, the suite's set-up, on hosts this one is not: run with
//! `--dry-run` and a PATH of stand-ins (a `docker` whose engine does not
//! answer, a `dpkg` that knows no package, no `htpasswd`, …), so each
//! missing-tool path runs here without removing a package or stopping the
//! dockerd other tests share. It says what it would install or start, and
//! changes nothing.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Real tools the script itself uses.
const BASE_TOOLS: &[&str] = &[
    "bash", "sh", "env", "id", "dirname", "seq", "sleep", "cat", "head", "tail", "tee", "chmod",
    "rm",
];

/// Every Debian package the tests need, in the order the script lists them.
const ALL_PACKAGES: &str =
    "busybox-static docker-registry apache2-utils prometheus docker-compose openssl systemd";

/// A host as the script sees it.
#[derive(Clone, Copy)]
struct Host<'a> {
    /// `docker info` answers.
    engine_answers: bool,
    /// A `dockerd` binary is installed.
    dockerd: bool,
    /// `dpkg -s` finds busybox-static and docker-compose.
    dpkg_knows: bool,
    /// Commands on PATH besides the base tools (all answer, exit 0).
    tools: &'a [&'a str],
    /// Python has venv and ensurepip.
    venv: bool,
}

const EVERY_TOOL: &[&str] = &[
    "htpasswd",
    "promtool",
    "prometheus",
    "docker-registry",
    "openssl",
    "systemd-analyze",
    "systemd-run",
    "kubernetes-validate",
];

fn which(tool: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{tool} is not on PATH"))
}

fn stub(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `tests/setup --dry-run` on `host`: its exit code and what it said.
fn dry_run(host: Host<'_>) -> (i32, String) {
    let dir = support::scratch_dir("setup-path");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in BASE_TOOLS {
        std::os::unix::fs::symlink(which(tool), bin.join(tool)).unwrap();
    }
    let info = if host.engine_answers { 0 } else { 1 };
    stub(
        &bin,
        "docker",
        &format!("[ \"$1\" = info ] && exit {info}; exit 0"),
    );
    if host.dockerd {
        stub(&bin, "dockerd", "exit 0");
    }
    // No dockerd is running on the hosts played here.
    stub(&bin, "pgrep", "exit 1");
    stub(
        &bin,
        "dpkg",
        if host.dpkg_knows { "exit 0" } else { "exit 1" },
    );
    stub(&bin, "python3", if host.venv { "exit 0" } else { "exit 1" });
    for tool in host.tools {
        let body = if *tool == "kubernetes-validate" {
            "echo 1.37.0"
        } else {
            "exit 0"
        };
        stub(&bin, tool, body);
    }
    let out = Command::new(bin.join("bash"))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/setup"))
        .arg("--dry-run")
        .env_clear()
        .env("PATH", &bin)
        .env("HOME", &dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), said)
}

fn installs(said: &str) -> Vec<String> {
    said.lines()
        .filter_map(|l| {
            l.split("apt-get install -y -qq --no-install-recommends ")
                .nth(1)
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_fresh_host_gets_every_package_kubernetes_validate_and_a_started_dockerd() {
    let (code, said) = dry_run(Host {
        engine_answers: false,
        dockerd: true,
        dpkg_knows: false,
        tools: &[],
        venv: false,
    });
    assert_eq!(code, 0, "{said}");
    assert_eq!(installs(&said), [ALL_PACKAGES, "python3-venv"], "{said}");
    assert!(said.contains("would start dockerd"), "{said}");
    assert!(
        said.contains("would install kubernetes-validate==1.37.0"),
        "{said}"
    );
    assert_eq!(said.matches("apt-get update").count(), 1, "{said}");
}

#[test]
fn a_host_without_docker_gets_debians_docker_io_and_starts_it() {
    let (code, said) = dry_run(Host {
        engine_answers: false,
        dockerd: false,
        dpkg_knows: true,
        tools: EVERY_TOOL,
        venv: true,
    });
    assert_eq!(code, 0, "{said}");
    assert_eq!(installs(&said), ["docker.io"], "{said}");
    assert!(said.contains("would start dockerd"), "{said}");
}

#[test]
fn each_missing_tool_installs_its_package_and_nothing_else() {
    let cases: &[(&str, &str)] = &[
        ("htpasswd", "apache2-utils"),
        ("promtool", "prometheus"),
        ("prometheus", "prometheus"),
        ("docker-registry", "docker-registry"),
        ("openssl", "openssl"),
        ("systemd-analyze", "systemd"),
        ("systemd-run", "systemd"),
    ];
    for (gone, package) in cases {
        let tools: Vec<&str> = EVERY_TOOL.iter().copied().filter(|t| t != gone).collect();
        let (code, said) = dry_run(Host {
            engine_answers: true,
            dockerd: true,
            dpkg_knows: true,
            tools: &tools,
            venv: true,
        });
        assert_eq!(code, 0, "{gone}: {said}");
        assert_eq!(installs(&said), [*package], "without {gone}: {said}");
    }
}

#[test]
fn a_host_with_everything_installs_and_starts_nothing() {
    let (code, said) = dry_run(Host {
        engine_answers: true,
        dockerd: true,
        dpkg_knows: true,
        tools: EVERY_TOOL,
        venv: true,
    });
    assert_eq!(code, 0, "{said}");
    assert!(!said.contains("would"), "{said}");
    assert!(said.contains("using the running Docker Engine"), "{said}");
    assert!(
        said.contains(&format!("already installed: {ALL_PACKAGES}")),
        "{said}"
    );
}
