//! The evidence `status` shows for a serviceset: what Docker said of the
//! containers of its newest failed operation, kept until a later deploy
//! (a `start` or `rollback`) succeeds. Reads the deploy log only.

use serde::Serialize;

use crate::name::ServicesetName;
use crate::plan::evidence::Evidence;
use crate::state::{DeployLog, Outcome, StateDir};

/// A failure's evidence, and the deploy-log entry it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Standing {
    pub serviceset: String,
    /// The entry's number in the deploy log (`telefig history`).
    pub deploy: u64,
    pub commit: Option<String>,
    pub evidence: Vec<Evidence>,
}

/// The evidence still standing in `log`: the newest entry that kept some,
/// unless a deploy succeeded after it.
pub fn standing(serviceset: &str, log: &DeployLog) -> Option<Standing> {
    for d in log.deploys.iter().rev() {
        if d.result == Some(Outcome::Succeeded) && d.operation.applies_a_version() {
            return None;
        }
        if !d.evidence.is_empty() {
            return Some(Standing {
                serviceset: serviceset.to_owned(),
                deploy: d.seq,
                commit: d.commit.clone(),
                evidence: d.evidence.clone(),
            });
        }
    }
    None
}

/// [`standing`] of `name`'s deploy log in `state`.
pub fn standing_in(state: &StateDir, name: &ServicesetName) -> Option<Standing> {
    standing(name.as_str(), &state.deploy_log(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Deploy, Operation};

    fn entry(seq: u64, operation: Operation, result: Outcome, failed: Option<&str>) -> Deploy {
        let mut d = Deploy::new(operation, seq as i64);
        d.seq = seq;
        d.result = Some(result);
        d.evidence = failed
            .map(|c| Evidence {
                container: c.into(),
                during: "bake".into(),
                cause: "turned unhealthy".into(),
                ..Evidence::default()
            })
            .into_iter()
            .collect();
        d
    }

    #[test]
    fn a_failure_stands_until_a_later_deploy_succeeds() {
        let mut log = DeployLog::default();
        log.deploys
            .push(entry(1, Operation::Start, Outcome::Succeeded, None));
        log.deploys
            .push(entry(2, Operation::Start, Outcome::RolledBack, Some("web")));
        // The daemon's repair after it is not a deploy: the failure stands.
        log.deploys
            .push(entry(3, Operation::Repair, Outcome::Succeeded, None));
        let s = standing("shop", &log).unwrap();
        assert_eq!((s.deploy, s.evidence[0].container.as_str()), (2, "web"));
        log.deploys
            .push(entry(4, Operation::Start, Outcome::Succeeded, None));
        assert_eq!(standing("shop", &log), None);
        assert_eq!(standing("shop", &DeployLog::default()), None);
    }
}
