//! The bollard calls, one method each, with errors that say what and on what.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, ContainerInspectResponse, HealthStatusEnum};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, ListContainersOptions, LogsOptions,
    RemoveContainerOptions, RenameContainerOptions, StartContainerOptions, StopContainerOptions,
    TagImageOptions,
};
use futures_util::{Stream, StreamExt};

use super::status::rfc3339_nanos;
use super::{Error, status_is};
use crate::plan::{Health, Observed, RunState, Timing};
use crate::platform::{CreateBody, LABEL_SERVICESET};

/// Longest a single request may wait for response headers. Stop calls wait
/// out the grace period before Docker answers, so this must exceed it.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(3600);

#[derive(Clone)]
pub struct Engine {
    /// Visible to the other `engine` files, nowhere else.
    pub(super) docker: Docker,
}

/// A piece of a container's output.
pub struct LogChunk {
    pub stderr: bool,
    pub bytes: Vec<u8>,
}

/// What `inspect` tells beyond a list entry.
#[derive(Debug, Clone, Default)]
pub struct ContainerDetails {
    pub id: String,
    pub name: String,
    /// The image reference it was created from (the list shows an id once
    /// that tag is gone).
    pub image: Option<String>,
    pub running: bool,
    pub restarting: bool,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    pub health: Option<Health>,
    pub last_health_output: Option<String>,
    pub restart_count: i64,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub error: Option<String>,
    /// The end of the earliest passing health probe in Docker's log (ns).
    pub healthy_since: Option<i64>,
}

impl ContainerDetails {
    /// When it reached each gate, for the boot repair.
    pub fn timing(&self) -> Timing {
        let at = |t: &Option<String>| t.as_deref().and_then(rfc3339_nanos);
        Timing {
            started_at: at(&self.started_at),
            healthy_since: self.healthy_since,
            finished_at: at(&self.finished_at),
            has_healthcheck: self.health.is_some(),
        }
    }
}

impl Engine {
    /// Connect through `DOCKER_HOST`, else the local socket, and agree on
    /// the API version with the daemon.
    pub async fn connect() -> Result<Engine, Error> {
        let endpoint =
            std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
        let connect_err = |source| Error::Connect {
            endpoint: endpoint.clone(),
            source,
        };
        let docker = Docker::connect_with_defaults()
            .map_err(connect_err)?
            .with_timeout(CLIENT_TIMEOUT);
        let docker = docker.negotiate_version().await.map_err(connect_err)?;
        Ok(Engine { docker })
    }

    fn err(op: &'static str, target: &str) -> impl FnOnce(bollard::errors::Error) -> Error {
        let target = target.to_owned();
        move |source| Error::Docker { op, target, source }
    }

    /// Every container on the host, or those with `label` (one list call).
    pub async fn list(&self, label: Option<&str>) -> Result<Vec<Observed>, Error> {
        let filters = label.map(|l| HashMap::from([("label".to_owned(), vec![l.to_owned()])]));
        let options = ListContainersOptions {
            all: true,
            filters,
            ..Default::default()
        };
        let summaries = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(Self::err("list", "containers"))?;
        Ok(summaries
            .into_iter()
            .map(|s| {
                let status = s.status.unwrap_or_default();
                Observed {
                    id: s.id.unwrap_or_default(),
                    name: s
                        .names
                        .and_then(|n| n.into_iter().next())
                        .map(|n| n.trim_start_matches('/').to_owned())
                        .unwrap_or_default(),
                    image: s.image.unwrap_or_default(),
                    labels: s.labels.unwrap_or_default().into_iter().collect(),
                    state: RunState::parse(&s.state.map(|st| st.to_string()).unwrap_or_default()),
                    health: health_from_status(&status),
                    exit_code: exit_code_from_status(&status),
                }
            })
            .collect())
    }

    /// The serviceset's containers, backups included.
    pub async fn list_serviceset(&self, serviceset: &str) -> Result<Vec<Observed>, Error> {
        self.list(Some(&format!("{LABEL_SERVICESET}={serviceset}")))
            .await
    }

    pub async fn inspect(&self, id: &str) -> Result<ContainerDetails, Error> {
        let r = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(Self::err("inspect", id))?;
        Ok(details(r))
    }

    /// Create `name` from `body`; returns the new container's id.
    pub async fn create(
        &self,
        name: &str,
        body: &CreateBody,
    ) -> Result<String, bollard::errors::Error> {
        // CreateBody serializes to the Engine API's shape; bollard's type reads it back.
        let config: ContainerCreateBody =
            serde_json::from_value(serde_json::to_value(body).expect("CreateBody serializes"))
                .expect("CreateBody is a subset of the Engine API create body");
        let options = CreateContainerOptions {
            name: Some(name.to_owned()),
            ..Default::default()
        };
        Ok(self
            .docker
            .create_container(Some(options), config)
            .await?
            .id)
    }

    pub async fn start(&self, id: &str, name: &str) -> Result<(), Error> {
        match self
            .docker
            .start_container(id, None::<StartContainerOptions>)
            .await
        {
            Err(e) if !status_is(&e, 304) => Err(Self::err("start", name)(e)),
            _ => Ok(()),
        }
    }

    /// Stop with the container's own stop signal and grace period: no `t`
    /// is sent, so Docker waits the container's `StopTimeout` (set from
    /// `stop_grace_period` at create) before it kills it.
    pub async fn stop(&self, id: &str, name: &str) -> Result<(), Error> {
        let options = StopContainerOptions {
            t: None,
            signal: None,
        };
        match self.docker.stop_container(id, Some(options)).await {
            // 304: already stopped; 404: already gone. Both are what we wanted.
            Err(e) if !status_is(&e, 304) && !status_is(&e, 404) => Err(Self::err("stop", name)(e)),
            _ => Ok(()),
        }
    }

    pub async fn remove(&self, id: &str, name: &str) -> Result<(), Error> {
        let options = RemoveContainerOptions {
            force: true,
            v: false,
            link: false,
        };
        match self.docker.remove_container(id, Some(options)).await {
            Err(e) if !status_is(&e, 404) => Err(Self::err("remove", name)(e)),
            _ => Ok(()),
        }
    }

    pub async fn rename(&self, id: &str, new_name: &str) -> Result<(), Error> {
        let options = RenameContainerOptions {
            name: new_name.to_owned(),
        };
        self.docker
            .rename_container(id, options)
            .await
            .map_err(Self::err("rename", new_name))
    }

    pub async fn image_present(&self, reference: &str) -> Result<bool, Error> {
        match self.docker.inspect_image(reference).await {
            Ok(_) => Ok(true),
            Err(e) if status_is(&e, 404) => Ok(false),
            Err(e) => Err(Self::err("inspect image", reference)(e)),
        }
    }

    /// Pull one reference; the error text is Docker's.
    pub async fn pull(&self, reference: &str) -> Result<(), String> {
        let options = CreateImageOptions {
            from_image: Some(reference.to_owned()),
            ..Default::default()
        };
        let credentials = super::pull::credentials_for(reference);
        let mut stream = self.docker.create_image(Some(options), None, credentials);
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(detail) = info.error_detail {
                        return Err(detail
                            .message
                            .unwrap_or_else(|| "unknown pull error".into()));
                    }
                }
                Err(e) => return Err(super::docker_message(&e)),
            }
        }
        Ok(())
    }

    /// Tag `source` as `target` (`repo:tag`).
    pub async fn tag(&self, source: &str, target: &str) -> Result<(), Error> {
        let (repo, tag) = split_reference(target);
        let options = TagImageOptions {
            repo: Some(repo.to_owned()),
            tag: Some(tag.to_owned()),
        };
        self.docker
            .tag_image(source, Some(options))
            .await
            .map_err(Self::err("tag", target))
    }

    /// A container's output, stdout and stderr told apart.
    pub fn logs(
        &self,
        id: &str,
        follow: bool,
        tail: Option<u64>,
    ) -> impl Stream<Item = Result<LogChunk, Error>> + use<> {
        let options = LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            tail: tail.map_or_else(|| "all".to_owned(), |t| t.to_string()),
            ..Default::default()
        };
        let target = id.to_owned();
        self.docker.logs(id, Some(options)).map(move |item| {
            item.map(|out| LogChunk {
                stderr: matches!(out, bollard::container::LogOutput::StdErr { .. }),
                bytes: out.into_bytes().to_vec(),
            })
            .map_err(|source| Error::Docker {
                op: "logs",
                target: target.clone(),
                source,
            })
        })
    }

    /// The last `lines` of a container's output, for failure summaries.
    pub async fn log_tail(&self, id: &str, lines: u64) -> String {
        let mut stream = self.logs(id, false, Some(lines));
        let mut out = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            out.push_str(&String::from_utf8_lossy(&chunk.bytes));
        }
        out
    }
}

/// `registry:5000/a/b:tag` → (`registry:5000/a/b`, `tag`).
fn split_reference(reference: &str) -> (&str, &str) {
    let slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[slash..].rfind(':') {
        Some(colon) => (&reference[..slash + colon], &reference[slash + colon + 1..]),
        None => (reference, "latest"),
    }
}

fn details(r: ContainerInspectResponse) -> ContainerDetails {
    let state = r.state.unwrap_or_default();
    let health = state.health.as_ref();
    ContainerDetails {
        image: r.config.as_ref().and_then(|c| c.image.clone()),
        id: r.id.unwrap_or_default(),
        name: r
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_owned(),
        running: state.running.unwrap_or(false),
        restarting: state.restarting.unwrap_or(false),
        exit_code: state.exit_code,
        oom_killed: state.oom_killed.unwrap_or(false),
        health: health.and_then(|h| match h.status {
            Some(HealthStatusEnum::STARTING) => Some(Health::Starting),
            Some(HealthStatusEnum::HEALTHY) => Some(Health::Healthy),
            Some(HealthStatusEnum::UNHEALTHY) => Some(Health::Unhealthy),
            _ => None,
        }),
        last_health_output: health
            .and_then(|h| h.log.as_ref())
            .and_then(|log| log.last())
            .and_then(|l| l.output.clone())
            .map(|o| o.trim().to_owned()),
        restart_count: r.restart_count.unwrap_or(0),
        started_at: state.started_at.clone(),
        finished_at: state.finished_at,
        error: state.error.filter(|e| !e.is_empty()),
        // The log outlives restarts: only probes of the current run count.
        healthy_since: health.and_then(|h| h.log.as_ref()).and_then(|log| {
            let started = state
                .started_at
                .as_deref()
                .and_then(rfc3339_nanos)
                .unwrap_or(i64::MIN);
            log.iter()
                .filter(|l| l.exit_code == Some(0))
                .filter(|l| {
                    l.start
                        .as_deref()
                        .and_then(rfc3339_nanos)
                        .is_some_and(|t| t >= started)
                })
                .filter_map(|l| l.end.as_deref().and_then(rfc3339_nanos))
                .min()
        }),
    }
}

/// The list call's status text carries health: "Up 3 minutes (healthy)".
fn health_from_status(status: &str) -> Option<Health> {
    if status.contains("(healthy)") {
        Some(Health::Healthy)
    } else if status.contains("(unhealthy)") {
        Some(Health::Unhealthy)
    } else if status.contains("(health: starting)") {
        Some(Health::Starting)
    } else {
        None
    }
}

/// …and the exit code: "Exited (137) 2 seconds ago".
fn exit_code_from_status(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    rest[..rest.find(')')?].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_text() {
        assert_eq!(
            health_from_status("Up 3 minutes (healthy)"),
            Some(Health::Healthy)
        );
        assert_eq!(
            health_from_status("Up 1 second (health: starting)"),
            Some(Health::Starting)
        );
        assert_eq!(health_from_status("Up 1 second"), None);
        assert_eq!(
            exit_code_from_status("Exited (137) 2 seconds ago"),
            Some(137)
        );
        assert_eq!(exit_code_from_status("Up 2 seconds"), None);
    }

    #[test]
    fn references() {
        assert_eq!(
            split_reference("127.0.0.1:5000/a/b:v1"),
            ("127.0.0.1:5000/a/b", "v1")
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/a"),
            ("127.0.0.1:5000/a", "latest")
        );
    }
}
