//! `registry`: telefig's own client for image registries, beside `engine`
//! (which speaks to dockerd, never to a registry).
//!
//! - `credentials`: what to log in with, found as the docker CLI finds it
//!   (the Docker config, credential helpers); `engine` hands the same to
//!   dockerd for a pull.
//! - `manifest`: an image's layers and their sizes, asked of the registry
//!   itself before a pull (blocking `ureq` on a blocking thread, every call
//!   bounded), for the disk check (`ops::space`, `plan::space`).
//! - `certs`: what Docker trusts for a registry beyond the host's roots
//!   (`/etc/docker/certs.d`), which `manifest` trusts too.
//!
//! Image names are parsed by `platform::Reference`, the one parser.
//!
//! Hand-written rather than `oci-client` (with `oci-spec`) and
//! `docker_credential`, measured against them: about 940 lines, whose
//! paths run against real registries (`tests/registry_certs.rs`: private
//! CAs and client certificates as certs.d holds them; `tests/disk_space.rs`:
//! the size check over plain HTTP on loopback; `tests/credentials.rs`:
//! helpers, `credsStore`, `auths`). `oci-client` is async over reqwest, a
//! second HTTP and TLS stack beside `ureq`; it trusts extra roots for every
//! registry at once and presents no client certificate, so certs.d's
//! per-registry CAs and client keys, which `docker pull` honours, would be
//! lost. `docker_credential` runs a helper as a blocking `std::process`
//! call (here it runs on tokio and is killed with the call that waits for
//! it), looks `auths` up by the exact server string (Docker also takes
//! `https://host/v1/` keys) and hands back no server address for dockerd.

pub mod certs;
pub mod credentials;
pub mod manifest;

pub use credentials::{Credentials, HelperError};
