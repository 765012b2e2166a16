//! Pulling before touching anything: a real registry v2 on 127.0.0.1
//! (Debian's docker-registry), mirrors, and failures that change nothing.

#[path = "support/stack.rs"]
mod stack;
mod support;

use stack::*;
use support::*;

/// A registry holding every stack image, none of them present locally
/// under its reference, so `start` must pull.
fn registry_with_images() -> Registry {
    let registry = Registry::start();
    let base = busybox_image("1");
    for image in IMAGES {
        let reference = registry.push_as(&base, image);
        untag(&reference);
    }
    registry
}

#[test]
fn pulls_first_and_a_failed_pull_changes_nothing() {
    if !require_docker() {
        return;
    }
    let mut registry = registry_with_images();
    let s = Stack::with_registries(&registry.addr, &[]);
    let out = s.start(&[]);
    assert_exit(&out, 0);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("pulled"),
        "{}",
        text(&out)
    );
    assert_eq!(
        inspect(&s.web())["Config"]["Image"].as_str().unwrap(),
        registry.reference("web:v1")
    );
    let before = s.fingerprint();

    // A tag the registry does not have: exit 1, the reference named, nothing touched.
    let out = s.start(&["-e", "WEB_VERSION=v404"]);
    assert_exit(&out, 1);
    let summary = last_stderr_line(&out);
    assert!(
        summary.contains(&registry.reference("web:v404")),
        "{summary}"
    );
    assert_eq!(s.fingerprint(), before);

    // The registry down: the same.
    registry.stop();
    let out = s.start(&["-e", "WEB_VERSION=v2"]);
    assert_exit(&out, 1);
    assert!(
        last_stderr_line(&out).contains("could not pull"),
        "{}",
        text(&out)
    );
    assert_eq!(s.fingerprint(), before);
}

#[test]
fn a_mirror_serves_when_the_primary_is_down_and_the_config_names_the_primary() {
    if !require_docker() {
        return;
    }
    let mut mirror = registry_with_images();
    // Nothing listens on this loopback port: the primary is down.
    let primary = format!("127.0.0.1:{}", free_port());
    let s = Stack::with_registries(&primary, &[&mirror.addr]);
    let out = s.start(&[]);
    assert_exit(&out, 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("from mirror {}", mirror.reference("web:v1"))),
        "{stdout}"
    );
    // The container is configured with the primary's reference, so its hash
    // does not depend on which registry answered.
    assert_eq!(
        inspect(&s.web())["Config"]["Image"].as_str().unwrap(),
        format!("{primary}/web:v1")
    );
    let again = s.start(&[]);
    assert_exit(&again, 0);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("unchanged"),
        "{}",
        text(&again)
    );

    // Both down: exit 1, each registry named, nothing touched.
    let before = s.fingerprint();
    mirror.stop();
    let out = s.start(&["-e", "WEB_VERSION=v2"]);
    assert_exit(&out, 1);
    let summary = last_stderr_line(&out);
    assert!(
        summary.contains(&primary) && summary.contains(&mirror.addr),
        "{summary}"
    );
    assert_eq!(s.fingerprint(), before);
}
