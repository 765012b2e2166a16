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
    assert_said(&out, 0, "pulled");
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
    assert_said(&again, 0, "unchanged");

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

/// Regression (issue 11, item 9): `--timeout` bounded only the lock wait
/// and the gates, so a registry that accepts connections and never answers
/// kept `start --timeout 6s` busy for 25 s. Now the pull is abandoned at the
/// deadline, and the message says so and that nothing running changed.
#[test]
fn start_times_out_pulling_from_a_registry_that_never_answers() {
    if !require_docker() {
        return;
    }
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    // Accept every connection and hold it open, never writing a byte.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
        }
    });
    let s = Stack::with_registries(&addr, &[]);
    let began = std::time::Instant::now();
    let out = s.start(&["--timeout", "3s"]);
    let took = began.elapsed();
    assert_exit(&out, 1);
    let summary = last_stderr_line(&out);
    assert!(
        summary.contains("timed out pulling") && summary.contains(&addr),
        "{}",
        text(&out)
    );
    assert!(summary.contains("no container was changed"), "{summary}");
    assert!(
        took < std::time::Duration::from_secs(3 + 4),
        "start took {took:?} with --timeout 3s"
    );
    assert!(s.container_names().is_empty(), "nothing was created");
}

/// Regression (issue 11, item 17): an image pinned by digest, pulled
/// through a mirror while the primary is down, failed with "docker tag …
/// invalid reference format" (the engine split `name@sha256:…` at the
/// digest's colon). A digest cannot be tagged: the container is created
/// from the mirror's name for the same content, its config hash still from
/// the primary's, so a second start changes nothing.
#[test]
fn an_image_pinned_by_digest_comes_through_a_mirror_while_the_primary_is_down() {
    if !require_docker() {
        return;
    }
    let mirror = Registry::start();
    let pushed = mirror.push_as(&busybox_image("1"), "pinned:v1");
    let digests = inspect_image_digests(&pushed);
    let mirrored = digests
        .iter()
        .find(|d| d.starts_with(&mirror.reference("pinned@sha256:")))
        .unwrap_or_else(|| panic!("no digest of {pushed} in {digests:?}"))
        .clone();
    let digest = mirrored.split_once('@').unwrap().1.to_owned();
    // Neither the tag nor the digest is present locally: start must pull.
    untag(&pushed);
    untag(&mirrored);
    assert!(!image_exists(&mirrored));

    let primary = format!("127.0.0.1:{}", free_port());
    let s = Stack::with_registries(&primary, &[&mirror.addr]);
    std::fs::write(
        s.dir.join("serviceset.conf"),
        format!(
            "version: 1\n{}:\n  docker:\n    image: \"pinned@{digest}\"\n    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while :; do sleep 1 & wait; done\"]\n",
            s.web()
        ),
    )
    .unwrap();
    let out = s.start(&[]);
    assert_said(&out, 0, &mirrored);
    let web = inspect(&s.web());
    assert_eq!(web["State"]["Running"], true);
    assert_eq!(web["Config"]["Image"].as_str().unwrap(), mirrored);

    let again = s.start(&[]);
    assert_said(&again, 0, "unchanged");
}

fn inspect_image_digests(reference: &str) -> Vec<String> {
    let out = docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        reference,
    ]);
    serde_json::from_str(out.trim()).unwrap()
}
