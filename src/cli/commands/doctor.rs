//! `doctor`: is this host fit to run telefig?

use crate::cli::Outcome;
use crate::cli::args::Global;

pub async fn doctor(_g: &Global) -> Outcome {
    Err(anyhow::anyhow!("doctor is not built yet"))
}
