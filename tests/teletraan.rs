//! The Teletraan hooks in examples/teletraan, run the way the deploy agent
//! runs them: from an unpacked build in $TARGET, with the agent's variables,
//! calling telefig through its `configure-serviceset` symlink.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::*;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

#[test]
fn restarting_deploys_the_example_and_is_idempotent_three_times() {
    if !require_docker() {
        return;
    }
    let guard = Cleanup::new();
    let env_name = guard.id();
    let root = scratch_dir("teletraan");
    // The build as the agent unpacks it: $TARGET/teletraan/{RESTARTING,STOPPING,config/…}.
    let target = root.join("target");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/teletraan"),
        &target.join("teletraan"),
    );
    // telefig on PATH under both names.
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for name in ["telefig", "configure-serviceset"] {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_telefig"), bin.join(name)).unwrap();
    }
    // The platform: sidecar images from a local fake registry host.
    let base = busybox_image("1");
    for image in ["hello:b123", "logging:1", "metrics:1", "discovery:1"] {
        retag(&base, &format!("tf.local/{image}"));
    }
    let sidecar =
        r#"command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait; done"]"#;
    std::fs::write(
        root.join("platform.yaml"),
        format!(
            "registries: {{primary: tf.local}}\nlabels: {{io.telefig.test: \"{env_name}\"}}\nsidecars:\n  logging: {{image: \"logging:1\", params: {{dirs: ~}}, {sidecar}}}\n  metrics: {{image: \"metrics:1\", params: {{port: ~}}, {sidecar}}}\n  discovery: {{image: \"discovery:1\", order: after_healthy, params: {{port: ~}}, {sidecar}}}\n"
        ),
    )
    .unwrap();
    let hook = |name: &str| -> Output {
        let mut cmd = Command::new(target.join("teletraan").join(name));
        for key in [
            "BUILD_COMMIT",
            "ENV_NAME",
            "DEPLOY_ID",
            "STAGE_NAME",
            "TARGET",
        ] {
            cmd.env_remove(key);
        }
        cmd.current_dir(&root)
            .env(
                "PATH",
                format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
            )
            .env("TARGET", &target)
            .env("DEPLOY_ID", "d-42")
            .env("ENV_NAME", env_name)
            .env("STAGE_NAME", "prod")
            .env("BUILD_COMMIT", "b123")
            .env("BUILD_NAME", "hello")
            .env("TELEFIG_PLATFORM", root.join("platform.yaml"))
            .env("TELEFIG_STATE_DIR", root.join("state"))
            .output()
            .unwrap()
    };
    let show = |o: &Output| {
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };

    let first = hook("RESTARTING");
    assert_eq!(first.status.code(), Some(0), "{}", show(&first));
    let hello = "hello";
    let c = inspect(hello);
    assert_eq!(c["Config"]["Image"], "tf.local/hello:b123");
    assert_eq!(c["Config"]["Labels"]["telefig.serviceset"], env_name);
    assert_eq!(c["Config"]["Labels"]["telefig.deploy-id"], "d-42");
    let id = c["Id"].clone();
    for _ in 0..2 {
        let again = hook("RESTARTING");
        assert_eq!(again.status.code(), Some(0), "{}", show(&again));
        assert!(
            String::from_utf8_lossy(&again.stdout).contains("unchanged"),
            "{}",
            show(&again)
        );
    }
    assert_eq!(
        inspect(hello)["Id"],
        id,
        "the same container after three runs"
    );
    assert_eq!(
        container_ids_by_label(&format!("telefig.serviceset={env_name}")).len(),
        4
    );

    let stop = hook("STOPPING");
    assert_eq!(stop.status.code(), Some(0), "{}", show(&stop));
    assert_eq!(inspect(hello)["State"]["Running"], false);
}
