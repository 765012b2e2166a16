//! Proves the Docker fixtures in `tests/support` work on this host: the
//! busybox image runs, the local registry takes a push and serves a pull,
//! and cleanup removes exactly the labelled containers.

mod support;

use std::time::Duration;

use support::*;

#[test]
fn busybox_image_runs_echo() {
    if !require_docker() {
        return;
    }
    let image = busybox_image("selftest");
    assert_eq!(image, "telefig-test/busybox:selftest");
    // Idempotent: a second call finds the image and keeps it.
    let id = inspect(&image)["Id"].as_str().unwrap().to_owned();
    assert_eq!(busybox_image("selftest"), image);
    assert_eq!(inspect(&image)["Id"].as_str().unwrap(), id);
    assert_eq!(
        inspect(&image)["Config"]["Labels"][TEST_LABEL].as_str(),
        Some("images")
    );

    let guard = Cleanup::new();
    let label = test_label(guard.id());
    let run = |args: &[&str]| {
        let mut all = vec![
            "run",
            "--rm",
            "--network",
            "host",
            "--label",
            &label,
            &image,
        ];
        all.extend(args);
        docker_ok(&all)
    };
    let out = run(&["echo", "hi"]);
    assert_eq!(out, "hi");
    // The default command is a shell; the applets tests rely on are linked.
    let out = run(&[
        "sh",
        "-c",
        "for a in sh sleep echo cat true false test touch rm ls mkdir date nc httpd wget; do \
         command -v $a >/dev/null || echo missing $a; done; echo ok",
    ]);
    assert_eq!(out, "ok");
}

#[test]
fn distinct_tags_are_distinct_images() {
    if !require_docker() {
        return;
    }
    let a = busybox_image("selftest-a");
    let b = busybox_image("selftest-b");
    assert_ne!(inspect(&a)["Id"], inspect(&b)["Id"]);
    retag(&a, "telefig-test/busybox:selftest-retagged");
    assert_eq!(
        inspect("telefig-test/busybox:selftest-retagged")["Id"],
        inspect(&a)["Id"]
    );
    untag("telefig-test/busybox:selftest-retagged");
    assert!(!image_exists("telefig-test/busybox:selftest-retagged"));
    assert!(image_exists(&a));
}

#[test]
fn registry_accepts_push_and_serves_pull() {
    if !require_docker() {
        return;
    }
    let image = busybox_image("selftest-registry");
    let mut registry = Registry::start();
    assert!(registry.addr.starts_with("127.0.0.1:"));
    assert_eq!(registry.addr, format!("127.0.0.1:{}", registry.port));
    assert!(registry.answers());

    let pushed = registry.push_as(&image, "selftest/app:v1");
    assert_eq!(
        pushed,
        format!("127.0.0.1:{}/selftest/app:v1", registry.port)
    );
    let (status, body) = http_get(&registry.addr, "/v2/selftest/app/tags/list").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"v1\""), "{body}");

    // Pull it back after removing the local reference.
    untag(&pushed);
    assert!(!image_exists(&pushed));
    docker_ok(&["pull", &pushed]);
    assert_eq!(inspect(&pushed)["Id"], inspect(&image)["Id"]);

    // Plain `push` keeps the image's own path.
    let pushed = registry.push(&image);
    assert_eq!(
        pushed,
        format!(
            "127.0.0.1:{}/telefig-test/busybox:selftest-registry",
            registry.port
        )
    );
    untag(&pushed);
    untag(&registry.reference("selftest/app:v1"));

    registry.stop();
    assert!(!registry.answers());
}

#[test]
fn cleanup_removes_only_labelled_containers() {
    if !require_docker() {
        return;
    }
    let image = busybox_image("selftest");
    let mine = run_id();
    let other = Cleanup::new();
    assert_ne!(mine, other.0);
    let run = |id: &str, name: &str| {
        docker_ok(&[
            "run",
            "-d",
            "--network",
            "host",
            "--name",
            name,
            "--label",
            &test_label(id),
            &image,
            "sh",
            "-c",
            "trap 'exit 0' TERM; while :; do sleep 1 & wait; done",
        ])
    };
    run(&mine, &format!("{mine}-a"));
    docker_ok(&[
        "create",
        "--name",
        &format!("{mine}-b"),
        "--label",
        &test_label(&mine),
        &image,
    ]);
    run(other.id(), &format!("{}-a", other.id()));
    assert_eq!(container_ids_by_label(&test_label(&mine)).len(), 2);
    assert_eq!(inspect(&format!("{mine}-a"))["State"]["Running"], true);

    {
        let _guard = Cleanup(mine.clone());
    }
    assert!(container_ids_by_label(&test_label(&mine)).is_empty());
    assert!(!exists(&format!("{mine}-a")));
    // The other run's container is untouched.
    assert!(wait_until(Duration::from_secs(1), || exists(&format!(
        "{}-a",
        other.id()
    ))));
    assert_eq!(container_ids_by_label(&test_label(other.id())).len(), 1);
}

#[test]
fn telefig_command_clears_deploy_context() {
    let out = telefig().arg("--version").output().expect("run telefig");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("telefig"));
    let cmd = telefig();
    let removed: Vec<_> = cmd
        .get_envs()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect();
    for key in DEPLOY_CONTEXT {
        assert!(removed.iter().any(|k| k == key), "{key} not cleared");
    }
    for (key, _) in std::env::vars() {
        if key.starts_with("TELEFIG_") {
            assert!(removed.contains(&key), "{key} not cleared");
        }
    }
}
