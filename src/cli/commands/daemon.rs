//! `daemon` and `rollback`.

use crate::cli::Outcome;
use crate::cli::args::{DaemonArgs, Global, RollbackArgs};

pub async fn daemon(_g: &Global, _a: &DaemonArgs) -> Outcome {
    Err(anyhow::anyhow!("daemon is not built yet"))
}

pub async fn rollback(_g: &Global, _a: &RollbackArgs) -> Outcome {
    Err(anyhow::anyhow!("rollback is not built yet"))
}
