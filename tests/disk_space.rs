//! The disk check before pulling (issue 14, item 2): a private dockerd
//! whose data root is a small tmpfs, a loopback registry holding a new
//! version bigger than the free space. `telefig start` of that version is
//! refused before anything changes — exit 1, the numbers named — and the
//! running old version is untouched (same container, still running). A
//! version that fits only once old images are gone is deployed after the
//! image cleanup made room, never removing the current or rollback image.

#[path = "support/dockerd.rs"]
mod dockerd;
mod support;

use std::io::Read;
use std::path::PathBuf;
use std::process::Output;

use dockerd::{PrivateDockerd, require_private_dockerd};
use support::*;

const MIB: u64 = 1 << 20;

/// A local image of `mib` MiB of random bytes (they do not compress) on
/// top of the busybox test image, labelled with the test run.
fn big_image(run: &str, mib: u64) -> String {
    let reference = format!("telefig-test/big:{run}");
    let dir = scratch_dir("big");
    let file = dir.join("big");
    let mut bytes = Vec::with_capacity((mib * MIB) as usize);
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .take(mib * MIB)
        .read_to_end(&mut bytes)
        .unwrap();
    std::fs::write(&file, bytes).unwrap();
    let label = test_label(run);
    let container = docker_ok(&["create", "--label", &label, &busybox_image("1"), "true"]);
    docker_ok(&["cp", file.to_str().unwrap(), &format!("{container}:/big")]);
    docker_ok(&[
        "commit",
        "--change",
        &format!("LABEL {label}"),
        &container,
        &reference,
    ]);
    docker_ok(&["rm", &container]);
    let _ = std::fs::remove_dir_all(dir);
    reference
}

struct Small {
    guard: Cleanup,
    dir: PathBuf,
    registry: Registry,
    engine: PrivateDockerd,
}

impl Small {
    fn deploy(&self, version: &str) -> Output {
        let v = format!("V={version}");
        telefig_on(&self.dir, self.guard.id(), &["start", "-e", &v])
            .env("DOCKER_HOST", self.engine.host())
            .output()
            .unwrap()
    }

    fn web(&self) -> serde_json::Value {
        self.engine
            .try_inspect(&format!("{}-web", self.guard.id()))
            .expect("the web container exists")
    }
}

impl Small {
    /// A private dockerd on a `mib` MiB tmpfs, a loopback registry holding
    /// `{id}/web:<v>` for each of `pushed` (`mib` MiB of random bytes each),
    /// and v1 (busybox) on the engine already; `images` is the platform's
    /// `images:` setting.
    fn new(tmpfs_mib: u64, pushed: &[(&str, u64)], images: &str) -> Small {
        let guard = Cleanup::new();
        let id = guard.id().to_owned();
        let registry = Registry::start();
        for (version, mib) in pushed {
            let big = big_image(&format!("{id}-{version}"), *mib);
            let at = registry.push_as(&big, &format!("{id}/web:{version}"));
            untag(&at);
            untag(&big);
        }
        let engine = PrivateDockerd::start_small(tmpfs_mib * MIB);
        // v1 is on the host already (nothing to pull), under the primary's name.
        engine.import_busybox(&[&registry.reference(&format!("{id}/web:v1"))]);
        let dir = scratch_dir("disk-space");
        std::fs::write(
            dir.join("platform.yaml"),
            format!(
                "registries: {{primary: \"{}\"}}\n{}images: {images}\n",
                registry.addr,
                platform_labels(&id)
            ),
        )
        .unwrap();
        write_versioned_web(&dir, &id);
        Small {
            guard,
            dir,
            registry,
            engine,
        }
    }

    fn reference(&self, version: &str) -> String {
        self.registry
            .reference(&format!("{}/web:{version}", self.guard.id()))
    }

    fn has_image(&self, version: &str) -> bool {
        self.engine
            .docker(&["image", "inspect", &self.reference(version)])
            .status
            .success()
    }

    /// Bytes free on the data root (`df`).
    fn free(&self) -> u64 {
        let out = std::process::Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(self.engine.data_root())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df prints the free bytes")
    }

    /// Fill the data root until `mib` MiB are free.
    fn leave_free(&self, mib: u64) {
        let ballast = self.free().saturating_sub(mib * MIB);
        let chunk = vec![0u8; MIB as usize];
        let mut file = std::fs::File::create(self.engine.data_root().join("ballast")).unwrap();
        let mut written = 0;
        while written + MIB <= ballast {
            std::io::Write::write_all(&mut file, &chunk).unwrap();
            written += MIB;
        }
        std::io::Write::write_all(&mut file, &chunk[..(ballast - written) as usize]).unwrap();
        file.sync_all().unwrap();
    }
}

#[test]
fn a_pull_bigger_than_the_free_space_is_refused_before_anything_changes() {
    if !require_docker() || !require_private_dockerd() {
        return;
    }
    // v2: 48 MiB that do not compress; the data root: a 64 MiB tmpfs.
    let s = Small::new(64, &[("v2", 48)], "{}");
    let id = s.guard.id().to_owned();

    assert_exit(&s.deploy("v1"), 0);
    let before = s.web();
    assert_eq!(before["State"]["Running"], true);

    let out = s.deploy("v2");
    assert_exit(&out, 1);
    let summary = last_stderr_line(&out);
    let data_root = s.engine.data_root();
    for said in [
        "not enough disk space to pull the images of serviceset",
        "MiB to download",
        "MiB margin",
        "MiB free on",
        data_root.to_str().unwrap(),
        "no container was changed",
        "pull_margin",
    ] {
        assert!(summary.contains(said), "`{said}` in: {}", text(&out));
    }
    // The download named is the new layer's size (48 MiB and a little).
    assert!(summary.contains("needs 96."), "{summary}");

    let after = s.web();
    assert_eq!(after["Id"], before["Id"], "the same container");
    assert_eq!(after["State"]["Running"], true, "still running");
    assert_eq!(after["State"]["StartedAt"], before["State"]["StartedAt"]);
    assert_eq!(
        after["Config"]["Image"],
        s.registry.reference(&format!("{id}/web:v1"))
    );
    let images = s
        .engine
        .docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(!images.contains(":v2"), "nothing was pulled: {images}");
    // The registry was asked, and answered: this is the check, not a
    // pull that ran out of space.
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning: cannot tell the size"));
}

#[test]
fn a_pull_that_fits_only_after_the_image_cleanup_cleans_up_first() {
    if !require_docker() || !require_private_dockerd() {
        return;
    }
    // Cleanup after a start never runs (high water 100 %); keep 2 versions.
    let s = Small::new(
        128,
        &[("v2", 16), ("v3", 16), ("v4", 16), ("v5", 16)],
        "{keep: 2, high: 100, low: 100}",
    );
    for v in ["v1", "v2", "v3", "v4"] {
        assert_exit(&s.deploy(v), 0);
    }
    // v5 needs 32 MiB (16 to download + 16 margin); 28 are free. The
    // cleanup may remove only v2: v4 runs, v3 is the rollback target.
    s.leave_free(28);
    let out = s.deploy("v5");
    assert_exit(&out, 0);
    let said = text(&out);
    assert!(
        said.contains("not enough disk space for the pull")
            && said.contains("cleaning up images first"),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "removed    image {} (image cleanup)",
            s.reference("v2")
        )),
        "{said}"
    );
    assert!(!s.has_image("v2"), "the oldest version went");
    for kept in ["v3", "v4", "v5"] {
        assert!(s.has_image(kept), "{kept} stays");
    }
    let web = s
        .engine
        .try_inspect(&format!("{}-web", s.guard.id()))
        .unwrap();
    assert_eq!(web["Config"]["Image"], s.reference("v5"));
    assert_eq!(web["State"]["Running"], true);
}
