//! Images and disk, for cleanup: list the host's images, untag one, the
//! disk use of Docker's data root. Which images go is `plan::gc`'s
//! decision; this only gathers and carries out.

use std::collections::BTreeSet;
use std::path::Path;

use bollard::query_parameters::{ListImagesOptions, RemoveImageOptions};

use super::{Engine, Error, status_is};
use crate::plan::gc::{Disk, ImageObs};

impl Engine {
    /// Every image on the host with its references.
    pub async fn images(&self) -> Result<Vec<ImageObs>, Error> {
        let options = ListImagesOptions {
            all: false,
            ..Default::default()
        };
        let listed = self
            .call("list", "images", self.docker.list_images(Some(options)))
            .await?
            .map_err(Self::err("list", "images"))?;
        Ok(listed
            .into_iter()
            .map(|i| ImageObs {
                id: i.id,
                references: i
                    .repo_tags
                    .into_iter()
                    .filter(|t| t != "<none>:<none>")
                    .collect(),
                size: u64::try_from(i.size).unwrap_or(0),
                created: i.created,
            })
            .collect())
    }

    /// Image references and ids of every container on the host, telefig's
    /// or not, running or not (a version kept aside for rollback too).
    pub async fn images_in_use(&self) -> Result<BTreeSet<String>, Error> {
        let listed = self.list_summaries(None).await?;
        Ok(listed
            .into_iter()
            .flat_map(|c| [c.image, c.image_id])
            .flatten()
            .collect())
    }

    /// Untag `reference`; Docker deletes the image once no tag and no
    /// container holds it. Never forced: a container's image stays.
    pub async fn remove_image(&self, reference: &str) -> Result<(), Error> {
        let options = RemoveImageOptions {
            force: false,
            noprune: false,
            ..Default::default()
        };
        match self
            .call(
                "remove",
                reference,
                self.docker.remove_image(reference, Some(options), None),
            )
            .await?
        {
            Err(e) if !status_is(&e, 404) => Err(Self::err("remove", reference)(e)),
            _ => Ok(()),
        }
    }

    /// Docker's data root (`docker info`'s DockerRootDir).
    pub async fn data_root(&self) -> Result<Option<String>, Error> {
        let info = self
            .call("inspect", "docker info", self.docker.info())
            .await?
            .map_err(Self::err("inspect", "docker info"))?;
        Ok(info.docker_root_dir)
    }
}

/// Disk use of the file system holding `path` (None: cannot be read, e.g.
/// the Docker Engine is on another host).
pub fn disk_use(path: &Path) -> Option<Disk> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frag = st.f_frsize as u64;
    let total = st.f_blocks as u64 * frag;
    let avail = st.f_bavail as u64 * frag;
    let free = st.f_bfree as u64 * frag;
    // As `df`: used of (used + available to unprivileged users).
    let used = total.saturating_sub(free);
    Some(Disk {
        used,
        total: used + avail,
    })
}
