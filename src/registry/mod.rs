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

pub mod certs;
pub mod credentials;
pub mod manifest;

pub use credentials::{Credentials, HelperError};
