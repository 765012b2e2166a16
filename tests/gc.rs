//! Image cleanup that never deletes a rollback target (issue 14, item 2),
//! against the real Docker Engine and a loopback registry: six versions
//! deployed, the cleanup after the sixth keeps the current one and the
//! rollback target and removes the rest; with the registry stopped,
//! `telefig rollback` still restores the previous version without a pull.

mod support;

use std::path::PathBuf;
use std::process::Output;

use support::*;

struct Deploys {
    guard: Cleanup,
    dir: PathBuf,
    registry: Registry,
}

impl Deploys {
    /// `flavor` keeps each test's images distinct: a container of one test
    /// running an image would keep it in use for the other.
    fn new(flavor: &str, policy: &str) -> Deploys {
        let guard = Cleanup::new();
        let registry = Registry::start();
        let dir = scratch_dir("gc");
        std::fs::write(
            dir.join("platform.yaml"),
            format!(
                "registries: {{primary: \"{}\"}}\n{}images: {policy}\n",
                registry.addr,
                platform_labels(guard.id())
            ),
        )
        .unwrap();
        write_versioned_web(&dir, guard.id());
        let d = Deploys {
            guard,
            dir,
            registry,
        };
        // Six distinct images, pushed, then untagged so telefig pulls them.
        for v in 1..=6 {
            let src = busybox_image(&format!("gc-{flavor}-v{v}"));
            let pushed = d
                .registry
                .push_as(&src, &format!("{}/web:v{v}", d.guard.id()));
            untag(&pushed);
        }
        d
    }

    fn reference(&self, v: u32) -> String {
        self.registry
            .reference(&format!("{}/web:v{v}", self.guard.id()))
    }

    fn telefig(&self, args: &[&str]) -> Output {
        telefig_in(&self.dir, args).output().unwrap()
    }

    fn deploy(&self, v: u32) -> Output {
        let v = format!("V=v{v}");
        telefig_on(&self.dir, self.guard.id(), &["start", "-e", &v])
            .output()
            .unwrap()
    }
}

impl Drop for Deploys {
    fn drop(&mut self) {
        cleanup(self.guard.id());
        for v in 1..=6 {
            untag(&self.reference(v));
        }
    }
}

#[test]
fn sixth_deploy_keeps_current_and_rollback_images_and_removes_the_rest() {
    if !require_docker() {
        return;
    }
    // High water 0 %: the cleanup always runs; low 0 %: it removes every
    // image it may.
    let mut d = Deploys::new("a", "{keep: 2, high: 0, low: 0}");
    for v in 1..=6 {
        let out = d.deploy(v);
        assert_exit(&out, 0);
    }
    assert!(image_exists(&d.reference(6)), "current");
    assert!(image_exists(&d.reference(5)), "rollback target");
    for v in 1..=4 {
        assert!(!image_exists(&d.reference(v)), "v{v} removed");
    }
    // An image telefig did not pull is never touched.
    assert!(image_exists(&busybox_image("gc-a-v1")));

    // The rollback needs no registry: the previous version's image is here.
    d.registry.stop();
    assert!(
        !d.registry.answers(),
        "the registry is down during the rollback"
    );
    let out = d.telefig(&["rollback", d.guard.id()]);
    assert_exit(&out, 0);
    assert!(!text(&out).contains("pulled"), "{}", text(&out));
    assert_eq!(
        inspect(&format!("{}-web", d.guard.id()))["Config"]["Image"],
        d.reference(5)
    );
}

#[test]
fn below_the_high_water_mark_or_dry_run_nothing_is_removed() {
    if !require_docker() {
        return;
    }
    // High water 100 %: never reached.
    let d = Deploys::new("b", "{keep: 1, high: 100, low: 99}");
    for v in 1..=3 {
        assert_exit(&d.deploy(v), 0);
    }
    for v in 1..=3 {
        assert!(image_exists(&d.reference(v)), "v{v} kept");
    }
    // `gc --dry-run` with a platform whose marks are 0 says, removes nothing.
    std::fs::write(
        d.dir.join("platform.yaml"),
        std::fs::read_to_string(d.dir.join("platform.yaml"))
            .unwrap()
            .replace(
                "{keep: 1, high: 100, low: 99}",
                "{keep: 1, high: 0, low: 0}",
            ),
    )
    .unwrap();
    let out = d.telefig(&["gc", "--dry-run", "--name", d.guard.id()]);
    assert_exit(&out, 0);
    let said = text(&out);
    assert!(
        said.contains(&format!("remove {}", d.reference(1))),
        "{said}"
    );
    assert!(said.contains("would remove 2 image(s)"), "{said}");
    assert!(image_exists(&d.reference(1)));
    let out = d.telefig(&["gc", "--name", d.guard.id()]);
    assert_exit(&out, 0);
    assert!(!image_exists(&d.reference(1)) && !image_exists(&d.reference(2)));
    assert!(image_exists(&d.reference(3)), "the current version stays");
}

/// `telefig gc` by hand removed nothing below the high-water mark, and did
/// not say why it kept what it kept.
#[test]
fn gc_by_hand_removes_old_versions_below_the_high_water_mark_and_says_what_it_kept() {
    if !require_docker() {
        return;
    }
    // High water 100 %: the cleanup after a start never runs.
    let d = Deploys::new("c", "{keep: 2, high: 100, low: 99}");
    for v in 1..=3 {
        assert_exit(&d.deploy(v), 0);
    }
    assert!(image_exists(&d.reference(1)), "the start removed nothing");
    let out = d.telefig(&["gc", "--name", d.guard.id()]);
    assert_exit(&out, 0);
    let said = text(&out);
    assert!(!image_exists(&d.reference(1)), "v1 removed: {said}");
    assert!(image_exists(&d.reference(3)), "the current version stays");
    assert!(image_exists(&d.reference(2)), "the rollback target stays");
    assert!(
        said.contains(&format!("keep   {} (the current deploy)", d.reference(3)))
            && said.contains(&format!("keep   {} (the rollback target)", d.reference(2))),
        "{said}"
    );
    assert!(
        said.contains(
            "removed 1 image(s); kept 2: 1 of the current deploy, 1 of the rollback target"
        ),
        "{said}"
    );
    // The rollback target is still a rollback away, with no pull.
    let out = d.telefig(&["rollback", d.guard.id()]);
    assert_exit(&out, 0);
    assert!(!text(&out).contains("pulled"), "{}", text(&out));
}
