//! The daemon's unit, `systemd/telefig.service`, checked with systemd's own
//! tools (Debian's `systemd` package; `tests/setup` installs it), no
//! running systemd needed:
//! - `systemd-analyze verify` passes, with the binary and the man page where
//!   the README's install steps put them (`Documentation=man:telefig(1)`);
//! - `systemd-analyze security --offline=true` rates its exposure 5.0 or
//!   less;
//! - every setting has a comment right above it saying why it is there.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::*;

const UNIT: &str = "systemd/telefig.service";
/// Where the README's install steps put the man page, under a root.
const MAN_PAGE: &str = "usr/local/share/man/man1/telefig.1";
/// The highest exposure `systemd-analyze security` may give the unit.
const MAX_EXPOSURE: f64 = 5.0;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn systemd_analyze(args: &[&str], env: &[(&str, &Path)]) -> Output {
    Command::new("systemd-analyze")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run systemd-analyze ({e}): run `tests/setup --no-test`, which installs Debian's systemd"
            )
        })
}

/// Everything `out` printed, stdout then stderr.
fn printed(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A root with the host's own units (for `sysinit.target` and the others
/// the unit is ordered against), the unit in /etc/systemd/system, the
/// binary in /usr/local/bin and the page `telefig man` prints in
/// /usr/local/share/man — as the README installs them.
fn installed_root() -> PathBuf {
    let root = scratch_dir("unit-root");
    let system_units = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("sysinit.target").exists())
        .expect("the host's systemd units: run `tests/setup --no-test`, which installs Debian's systemd");
    std::fs::create_dir_all(root.join("usr/lib/systemd")).unwrap();
    let copied = Command::new("cp")
        .arg("-a")
        .arg(system_units)
        .arg(root.join("usr/lib/systemd/"))
        .status()
        .unwrap();
    assert!(copied.success(), "cp -a {}", system_units.display());
    for dir in [
        "etc/systemd/system",
        "usr/local/bin",
        "usr/local/share/man/man1",
    ] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::copy(repo(UNIT), root.join("etc/systemd/system/telefig.service")).unwrap();
    let binary = Path::new(env!("CARGO_BIN_EXE_telefig"));
    let installed = root.join("usr/local/bin/telefig");
    if std::fs::hard_link(binary, &installed).is_err() {
        std::fs::copy(binary, &installed).unwrap();
    }
    let page = telefig().arg("man").output().unwrap();
    assert!(page.status.success(), "telefig man: {}", printed(&page));
    std::fs::write(root.join(MAN_PAGE), &page.stdout).unwrap();
    root
}

#[test]
fn the_readme_installs_the_man_page_the_unit_names() {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let install = readme
        .split("\n## Install\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has an Install section");
    let line = format!("telefig man > /{MAN_PAGE}");
    assert!(
        install.contains(&line),
        "README's Install section lacks `{line}`:\n{install}"
    );
    let unit = std::fs::read_to_string(repo(UNIT)).unwrap();
    assert!(unit.contains("\nDocumentation=man:telefig(1)\n"), "{unit}");
}

#[test]
fn the_unit_verifies_once_installed() {
    let root = installed_root();
    let man = root.join("usr/local/share/man");
    let root_arg = format!("--root={}", root.display());
    let out = systemd_analyze(
        &["verify", &root_arg, "telefig.service"],
        &[("MANPATH", &man)],
    );
    let said = printed(&out);
    let _ = std::fs::remove_dir_all(&root);
    assert!(out.status.success(), "systemd-analyze verify:\n{said}");
    assert_eq!(said.trim(), "", "systemd-analyze verify warned");
}

#[test]
fn the_units_exposure_is_at_most_five() {
    let out = systemd_analyze(
        &[
            "security",
            "--offline=true",
            "--no-pager",
            repo(UNIT).to_str().unwrap(),
        ],
        &[],
    );
    let said = printed(&out);
    let exposure: f64 = said
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for telefig.service:")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no overall exposure in:\n{said}"));
    assert!(
        exposure <= MAX_EXPOSURE,
        "exposure {exposure} > {MAX_EXPOSURE}:\n{said}"
    );
}

#[test]
fn every_setting_of_the_unit_has_a_comment_above_it() {
    let unit = std::fs::read_to_string(repo(UNIT)).unwrap();
    let mut previous = "";
    let mut bare = Vec::new();
    for (n, line) in unit.lines().enumerate() {
        let setting = line.contains('=') && !line.starts_with('#');
        if setting && !previous.starts_with('#') {
            bare.push(format!("{UNIT}:{}: {line}", n + 1));
        }
        previous = line;
    }
    assert!(
        bare.is_empty(),
        "settings without a comment above them:\n{}",
        bare.join("\n")
    );
}
