//! Images, for cleanup and the disk check: list the host's images, untag
//! one, Docker's data root, the layers the host already has. Which images
//! go is `plan::gc`'s decision; this only gathers and carries out. The
//! data root's disk use is `disk`'s (a local file system, not Docker).

use std::collections::BTreeSet;

use bollard::query_parameters::{ListImagesOptions, RemoveImageOptions};

use super::{Engine, Error, status_is};
use crate::plan::gc::ImageObs;

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

impl Engine {
    /// The diff ids of every layer of every image on the host.
    pub async fn layers_present(&self) -> Result<BTreeSet<String>, Error> {
        let images = self.images().await?;
        let inspected = futures_util::future::join_all(images.iter().map(|i| async {
            self.call("inspect image", &i.id, self.docker.inspect_image(&i.id))
                .await
        }))
        .await;
        let mut present = BTreeSet::new();
        for answer in inspected {
            // An image removed meanwhile has no layers to share.
            if let Ok(image) = answer? {
                present.extend(image.root_fs.and_then(|r| r.layers).unwrap_or_default());
            }
        }
        Ok(present)
    }
}
