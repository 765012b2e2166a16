//! Binds and tmpfs mounts as the Pod's volumes: one `hostPath` volume per
//! host path, shared by the containers that bind it, and one in-memory
//! `emptyDir` per tmpfs mount, each with a unique DNS-1123 name.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, HostPathVolumeSource, Volume, VolumeMount};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::Error;
use super::containers::bytes_quantity;
use crate::platform::bind::{Bind, BindOption};
use crate::serviceset::parse_bytes;

/// The Pod's volumes: one `hostPath` per host path, shared by every
/// container that binds it; one in-memory `emptyDir` per tmpfs mount.
#[derive(Default)]
pub(super) struct Volumes {
    pub(super) list: Vec<Volume>,
    by_host_path: HashMap<String, String>,
}

impl Volumes {
    /// `/host:/ctr[:options]` → a mount of the `hostPath` volume for
    /// `/host`, read from Docker's text by the same parser that checked it.
    pub(super) fn bind(
        &mut self,
        container: &str,
        bind: &str,
        not_mapped: &mut Vec<String>,
    ) -> Result<VolumeMount, Error> {
        let parsed = Bind::parse(bind)
            .ok()
            .filter(|b| b.source.is_absolute())
            .ok_or_else(|| Error::Bind {
                container: container.to_owned(),
                bind: bind.to_owned(),
            })?;
        let (host, target) = (
            parsed.source.display().to_string(),
            parsed.target.display().to_string(),
        );
        let host = host.as_str();
        let read_only = parsed.read_only().then_some(true);
        for option in &parsed.options {
            if !matches!(option, BindOption::ReadOnly | BindOption::ReadWrite) {
                not_mapped.push(format!(
                    "bind option {} of {container} ({bind})",
                    option.as_str()
                ));
            }
        }
        let name = match self.by_host_path.get(host) {
            Some(name) => name.clone(),
            None => {
                let name = self.unique_name(&format!("host{host}"));
                self.list.push(Volume {
                    name: name.clone(),
                    host_path: Some(HostPathVolumeSource {
                        path: host.to_owned(),
                        type_: None,
                    }),
                    ..Default::default()
                });
                self.by_host_path.insert(host.to_owned(), name.clone());
                name
            }
        };
        Ok(VolumeMount {
            name,
            mount_path: target,
            read_only,
            ..Default::default()
        })
    }

    /// A tmpfs (`size=64m,mode=1777`) → a memory-backed `emptyDir`.
    pub(super) fn tmpfs(
        &mut self,
        container: &str,
        path: &str,
        options: &str,
        not_mapped: &mut Vec<String>,
    ) -> VolumeMount {
        let mut size_limit = None;
        for option in options.split(',').filter(|o| !o.is_empty()) {
            match option.split_once('=') {
                Some(("size", size)) if parse_bytes(size).is_ok() => {
                    size_limit = parse_bytes(size).ok().map(|b| Quantity(bytes_quantity(b)));
                }
                _ => not_mapped.push(format!("tmpfs option {option} of {container} ({path})")),
            }
        }
        let name = self.unique_name(&format!("tmpfs-{container}{path}"));
        self.list.push(Volume {
            name: name.clone(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Memory".into()),
                size_limit,
                ..Default::default()
            }),
            ..Default::default()
        });
        VolumeMount {
            name,
            mount_path: path.to_owned(),
            ..Default::default()
        }
    }

    /// A DNS-1123 label from `text` (`host/var/log` → `host-var-log`),
    /// numbered when taken.
    fn unique_name(&self, text: &str) -> String {
        let mut base: String = text
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        while base.contains("--") {
            base = base.replace("--", "-");
        }
        let base: String = base.trim_matches('-').chars().take(56).collect();
        let base = base.trim_end_matches('-').to_owned();
        let taken = |n: &str| self.list.iter().any(|v| v.name == n);
        let mut name = base.clone();
        let mut n = 2;
        while taken(&name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        name
    }
}
