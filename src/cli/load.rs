//! What the flags say about the file to load (`ops::load` loads it), and
//! the lines that say which files a relative path stood for.

use super::args::Global;
use crate::cli::output::errln;
use telefig::ops::load::{Loaded, Request};

/// `-c`, `--name`, `-e` and `--platform`, for `ops::load`.
pub fn request(g: &Global) -> Request {
    Request {
        config: g.config.clone(),
        name: g.name.clone(),
        env: g.env.clone(),
        platform: g.platform.clone(),
    }
}

/// Load the file the flags name.
pub fn load(g: &Global) -> Result<Loaded, telefig::ops::load::Error> {
    telefig::ops::load::load(&request(g))
}

/// Say on stderr which files a relative path stood for (`render` and
/// `plan` print their result on stdout).
pub fn say_resolved(loaded: &Loaded) {
    for r in &loaded.resolved {
        errln!("using {}", super::printable(&r.to_string()));
    }
}
