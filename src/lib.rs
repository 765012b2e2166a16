//! telefig: a single-host container supervisor.
//!
//! Data flows one way through the modules, and each owns one stage:
//! [`serviceset`] (the file) → [`platform`] (sidecar expansion into
//! the full container set) → [`graph`] (dependency order) → [`plan`]
//! (desired vs observed → actions) → [`ops`] (one function per
//! operation: lock, observe, plan, execute, record) → [`engine`] (the
//! only module that talks to Docker) and [`registry`] (credentials and
//! image sizes, asked of registries). The binary's `cli` and [`daemon`]
//! call `ops`; the command line is not part of this library. Which module
//! may import which: ARCHITECTURE.md, checked by `tests/architecture.rs`.

pub mod abort;
pub mod clock;
pub mod daemon;
pub mod diagnostic;
pub mod disk;
pub mod doctor;
pub mod duration;
pub mod engine;
pub mod export;
pub mod failpoint;
pub mod graph;
pub mod name;
pub mod ops;
pub mod plan;
pub mod platform;
pub mod read;
pub mod redact;
pub mod registry;
pub mod serviceset;
pub mod state;
pub mod yaml;
