//! Registry credentials (issue 11, item 16), against a registry that wants
//! a login (Debian's docker-registry with htpasswd auth on 127.0.0.1): a
//! credential helper named by `credHelpers` or `credsStore` is run as the
//! docker CLI runs it, and `auths` entries still work. The Docker config
//! comes from a `DOCKER_CONFIG` dir of the test's own; the helper is a
//! shell script on `PATH`.

#[path = "support/stack.rs"]
mod stack;
mod support;

use std::path::{Path, PathBuf};

use stack::*;
use support::*;

const HELPER: &str = "telefigtest";

/// A registry that wants a login, holding every stack image, none of them
/// present locally under its reference.
fn private_registry() -> Registry {
    let registry = Registry::start_with_login("deployer");
    let base = busybox_image("1");
    for image in IMAGES {
        let reference = registry.push_as(&base, image);
        untag(&reference);
    }
    registry
}

/// A dir with `docker-credential-telefigtest`, which logs the server it is
/// asked about to `asked` and answers with `login`'s account.
fn helper_dir(login: &Login) -> PathBuf {
    let dir = scratch_dir("cred-helper");
    let script = dir.join(format!("docker-credential-{HELPER}"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\necho \"$server\" >> {asked}\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{secret}\"}}\\n' \"$server\"\n",
            asked = dir.join("asked").display(),
            user = login.user,
            secret = login.password,
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn docker_config(json: &str) -> PathBuf {
    let dir = scratch_dir("docker-config");
    std::fs::write(dir.join("config.json"), json).unwrap();
    dir
}

fn start_with(s: &Stack, config: &Path, helpers: &Path) -> std::process::Output {
    let path = format!(
        "{}:{}",
        helpers.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    s.command(&["start"])
        .env("DOCKER_CONFIG", config)
        .env("PATH", path)
        .output()
        .unwrap()
}

fn asked(helpers: &Path) -> Vec<String> {
    std::fs::read_to_string(helpers.join("asked"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Pulled, the container up, and no secret in what telefig printed or stored.
fn assert_up_without_leaking(s: &Stack, out: &std::process::Output, login: &Login) {
    assert_exit(out, 0);
    assert_eq!(inspect(&s.web())["State"]["Running"], true);
    let printed = text(out);
    assert!(!printed.contains(&login.password), "{printed}");
    // The disk check read the image's size from the registry with the
    // same credentials as the pull.
    assert!(!printed.contains("cannot tell the size"), "{printed}");
    for entry in walk(&s.dir.join("state")) {
        let stored = std::fs::read_to_string(&entry).unwrap_or_default();
        assert!(!stored.contains(&login.password), "{}", entry.display());
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// A registry that asks for a login, a credential helper that knows it
/// (in the dir returned), and a stack pulling from that registry.
fn scene() -> Option<(Registry, Login, PathBuf, Stack)> {
    if !require_docker() {
        return None;
    }
    let registry = private_registry();
    let login = registry.login.clone().unwrap();
    let helpers = helper_dir(&login);
    let s = Stack::with_registries(&registry.addr, &[]);
    Some((registry, login, helpers, s))
}

/// Remove the stack and its pulled images, so the next start pulls again.
fn reset(s: &Stack, registry: &Registry) {
    cleanup(s.id());
    for image in IMAGES {
        untag(&registry.reference(image));
    }
}

#[test]
fn a_cred_helper_logs_in_to_a_registry_that_needs_it() {
    let Some((registry, login, helpers, s)) = scene() else {
        return;
    };

    // No credentials: the registry refuses, nothing is created.
    let out = start_with(&s, &docker_config("{}"), &helpers);
    assert_exit(&out, 1);
    assert!(
        last_stderr_line(&out).contains("could not pull"),
        "{}",
        text(&out)
    );
    // The disk check could not read the size either: a warning, not the failure.
    assert!(
        text(&out).contains("warning: cannot tell the size of")
            && text(&out).contains("it asks for a login and none is configured"),
        "{}",
        text(&out)
    );
    assert!(s.container_names().is_empty());

    // `credHelpers` names the helper for this host: it is asked, with the host on stdin.
    let config = docker_config(&format!(
        r#"{{"credHelpers": {{"{}": "{HELPER}"}}}}"#,
        registry.addr
    ));
    let out = start_with(&s, &config, &helpers);
    assert_up_without_leaking(&s, &out, &login);
    let calls = asked(&helpers);
    assert!(!calls.is_empty(), "the helper was run");
    assert!(calls.iter().all(|c| *c == registry.addr), "{calls:?}");
}

#[test]
fn a_creds_store_and_plain_auths_log_in_too() {
    let Some((registry, login, helpers, s)) = scene() else {
        return;
    };

    // `credsStore`: the helper for every host without its own.
    let config = docker_config(&format!(r#"{{"credsStore": "{HELPER}"}}"#));
    let out = start_with(&s, &config, &helpers);
    assert_up_without_leaking(&s, &out, &login);
    assert!(asked(&helpers).contains(&registry.addr));

    // `auths`, keyed the way `docker login` keys it (the CLI config the fixture logged in with).
    reset(&s, &registry);
    let written = std::fs::read_to_string(login.cli_config.join("config.json")).unwrap();
    assert!(
        written.contains("\"auths\"")
            && written.contains(&registry.addr)
            && !written.contains("credsStore"),
        "docker login stored the account in `auths`: {written}"
    );
    let out = start_with(&s, &login.cli_config, &helpers);
    assert_up_without_leaking(&s, &out, &login);
}
