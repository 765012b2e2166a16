//! The bollard calls, one method each, with errors that say what and on
//! what: the connection, and the calls that change containers and images
//! (what Docker has is read in `observe`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, LogsOptions, RemoveContainerOptions,
    RenameContainerOptions, StartContainerOptions, StopContainerOptions, TagImageOptions,
};
use futures_util::{Stream, StreamExt};

use super::bounds::{Deadline, Limit, bounded, for_call};
use super::registry::credentials_for;
use super::{Error, status_is};
use crate::platform::{CreateBody, Reference};

/// Longest a single request may wait for response headers. Stop calls wait
/// out the grace period before Docker answers, so this must exceed it.
pub(super) const CLIENT_TIMEOUT: Duration = Duration::from_secs(3600);

/// A connection to dockerd. Clones share the connection, the limit on
/// concurrent calls and what is known of local images.
#[derive(Clone)]
pub struct Engine {
    /// Visible to the other `engine` files, nowhere else.
    pub(super) docker: Docker,
    limit: Limit,
    /// Every call must answer by then (the operation's `--timeout`).
    deadline: Option<Deadline>,
    /// Every read (list, inspect) must answer within this, whatever the
    /// deadline (the daemon's `--docker-timeout`).
    read_bound: Option<Duration>,
    /// Digest-pinned references present only under another registry's
    /// name (pulled through a mirror): a digest cannot be tagged, so the
    /// container is created from the name the content is present under.
    local_names: Arc<Mutex<HashMap<String, String>>>,
    /// Told a version negotiated after dockerd refused ours (`version.rs`).
    pub(super) remember: Option<super::version::Remember>,
}

/// A piece of a container's output.
pub struct LogChunk {
    pub stderr: bool,
    pub bytes: Vec<u8>,
}

impl Engine {
    /// Connect through `DOCKER_HOST`, else the local socket, and agree on
    /// the API version with the daemon.
    pub async fn connect() -> Result<Engine, Error> {
        let endpoint = super::host::endpoint();
        let connect_err = |source| Error::Connect {
            endpoint: endpoint.clone(),
            source,
        };
        let docker = Docker::connect_with_defaults()
            .map_err(connect_err)?
            .with_timeout(CLIENT_TIMEOUT);
        let docker = docker.negotiate_version().await.map_err(connect_err)?;
        Ok(Engine::from_docker(docker, None))
    }

    pub(super) fn from_docker(
        docker: Docker,
        remember: Option<super::version::Remember>,
    ) -> Engine {
        Engine {
            docker,
            limit: Limit::default(),
            deadline: None,
            read_bound: None,
            local_names: Arc::default(),
            remember,
        }
    }

    /// The same connection and bounds under its own limit on concurrent
    /// calls: the daemon's model snapshot never holds up a repair's calls,
    /// and a gate's inspect never queues behind the walk's creates and
    /// starts (at 250 containers it waited for all of them).
    pub fn on_own_limit(&self) -> Engine {
        Engine {
            limit: Limit::default(),
            ..self.clone()
        }
    }

    /// The same connection, its calls bounded by `deadline`.
    pub fn with_deadline(&self, deadline: Deadline) -> Engine {
        Engine {
            deadline: Some(deadline),
            ..self.clone()
        }
    }

    /// The same connection, each of its reads (list, inspect) bounded by
    /// `bound` on top of any deadline.
    pub fn with_read_bound(&self, bound: Duration) -> Engine {
        Engine {
            read_bound: Some(bound),
            ..self.clone()
        }
    }

    /// The bound on each read, if any.
    pub fn read_bound(&self) -> Option<Duration> {
        self.read_bound
    }

    /// The deadline its calls are bounded by, if any.
    pub fn deadline(&self) -> Option<Deadline> {
        self.deadline
    }

    /// Run one call under the shared limit and the deadline (and between
    /// its two crash points, in a test build).
    pub(super) async fn call<F: std::future::Future>(
        &self,
        op: &'static str,
        target: &str,
        call: F,
    ) -> Result<F::Output, Error> {
        crate::failpoint!("before", op, target);
        if crate::failpoint_fails!("before", op, target) {
            return Err(Error::Docker {
                op,
                target: target.to_owned(),
                source: bollard::errors::Error::RequestTimeoutError,
            });
        }
        let deadline = for_call(self.deadline, self.read_bound, op);
        let answered = bounded(&self.limit, deadline, op, target, call).await;
        crate::failpoint!("after", op, target);
        // Docker did it, and its answer is lost.
        if crate::failpoint_fails!("after", op, target) {
            return Err(Error::Docker {
                op,
                target: target.to_owned(),
                source: bollard::errors::Error::RequestTimeoutError,
            });
        }
        answered
    }

    /// Remember that `reference` (pinned by digest) is present as `local`.
    pub(super) fn present_as(&self, reference: &str, local: &str) {
        self.local_names
            .lock()
            .expect("never poisoned")
            .insert(reference.to_owned(), local.to_owned());
    }

    pub(super) fn err(
        op: &'static str,
        target: &str,
    ) -> impl FnOnce(bollard::errors::Error) -> Error {
        let target = target.to_owned();
        move |source| Error::Docker { op, target, source }
    }

    /// Create `name` from `body`; returns the new container's id. The outer
    /// error is the deadline's; the inner one Docker's answer.
    pub async fn create(
        &self,
        name: &str,
        body: &CreateBody,
    ) -> Result<Result<String, bollard::errors::Error>, Error> {
        // CreateBody serializes to the Engine API's shape; bollard's type reads it back.
        let mut config: ContainerCreateBody =
            serde_json::from_value(serde_json::to_value(body).expect("CreateBody serializes"))
                .expect("CreateBody is a subset of the Engine API create body");
        if let Some(local) = config.image.as_ref().and_then(|image| {
            let names = self.local_names.lock().expect("never poisoned");
            names.get(image).cloned()
        }) {
            config.image = Some(local);
        }
        let options = CreateContainerOptions {
            name: Some(name.to_owned()),
            ..Default::default()
        };
        let created = self
            .call(
                "create",
                name,
                self.docker.create_container(Some(options), config),
            )
            .await?;
        Ok(created.map(|r| r.id))
    }

    pub async fn start(&self, id: &str, name: &str) -> Result<(), Error> {
        let started = self
            .docker
            .start_container(id, None::<StartContainerOptions>);
        match self.call("start", name, started).await? {
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
        match self
            .call("stop", name, self.docker.stop_container(id, Some(options)))
            .await?
        {
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
        match self
            .call(
                "remove",
                name,
                self.docker.remove_container(id, Some(options)),
            )
            .await?
        {
            Err(e) if !status_is(&e, 404) => Err(Self::err("remove", name)(e)),
            _ => Ok(()),
        }
    }

    pub async fn rename(&self, id: &str, new_name: &str) -> Result<(), Error> {
        let options = RenameContainerOptions {
            name: new_name.to_owned(),
        };
        self.call(
            "rename",
            new_name,
            self.docker.rename_container(id, options),
        )
        .await?
        .map_err(Self::err("rename", new_name))
    }

    pub async fn image_present(&self, reference: &str) -> Result<bool, Error> {
        match self
            .call(
                "inspect image",
                reference,
                self.docker.inspect_image(reference),
            )
            .await?
        {
            Ok(_) => Ok(true),
            Err(e) if status_is(&e, 404) => Ok(false),
            Err(e) => Err(Self::err("inspect image", reference)(e)),
        }
    }

    /// Pull one reference. The outer error is the deadline's; the inner
    /// one says why this registry did not serve it (Docker's words).
    pub async fn pull(&self, reference: &Reference) -> Result<Result<(), String>, Error> {
        let text = reference.to_string();
        let options = CreateImageOptions {
            from_image: Some(text.clone()),
            ..Default::default()
        };
        let pull = async {
            let credentials = match credentials_for(reference.registry()).await {
                Ok(c) => c,
                Err(e) => return Err(e.to_string()),
            };
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
        };
        self.call("pull", &text, pull).await
    }

    /// Tag `source` as `target`, which must carry a tag (a digest cannot be
    /// given to an image by tagging).
    pub async fn tag(&self, source: &str, target: &Reference) -> Result<(), Error> {
        let options = TagImageOptions {
            repo: Some(target.repository()),
            tag: Some(target.tag.clone().unwrap_or_else(|| "latest".into())),
        };
        let text = target.to_string();
        self.call("tag", &text, self.docker.tag_image(source, Some(options)))
            .await?
            .map_err(Self::err("tag", &text))
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
