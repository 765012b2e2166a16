//! Disk use of Docker's data root, where images and container logs live:
//! a full one fails pulls and writes. The image cleanup's high-water mark
//! (platform `images.high`) is where `start` begins removing old images.

use std::path::Path;

use super::Check;
use crate::disk::Disk;
use crate::disk::disk_use;
use crate::platform::GcPolicy;

pub(super) fn data_root(root: Option<&str>, policy: &GcPolicy) -> Check {
    const NAME: &str = "disk";
    let Some(root) = root else {
        return Check::warn(
            NAME,
            "dockerd did not name its data root",
            "look at `docker info`",
        );
    };
    match disk_use(Path::new(root)) {
        Some(disk) => verdict(root, disk, policy),
        None => Check::warn(
            NAME,
            format!("cannot read the disk use of {root} (is the Docker Engine on another host?)"),
            "run doctor on the Docker host",
        ),
    }
}

fn verdict(root: &str, disk: Disk, policy: &GcPolicy) -> Check {
    let detail = format!(
        "{root}: {:.1} % used ({} of {} MB); image cleanup starts at {} %",
        disk.percent(),
        disk.used >> 20,
        disk.total >> 20,
        policy.high
    );
    if disk.percent() >= policy.high {
        Check::warn(
            "disk",
            detail,
            "run `telefig gc --dry-run` to see what cleanup would remove, and `docker system df`",
        )
    } else {
        Check::ok("disk", detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn above_the_high_water_mark_warns() {
        let p = GcPolicy::default();
        let disk = |used| Disk { used, total: 100 };
        assert_eq!(
            verdict("/var/lib/docker", disk(90), &p).status,
            Status::Warn
        );
        let ok = verdict("/var/lib/docker", disk(50), &p);
        assert_eq!(ok.status, Status::Ok);
        assert!(ok.detail.contains("50.0 % used"), "{}", ok.detail);
    }
}
