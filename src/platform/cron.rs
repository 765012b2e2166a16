//! The `cron:` sidecar of a declared container → the jobs `telefig daemon`
//! runs on the host: schedules checked (with their time zone), a string
//! command turned into `/bin/sh -c <line>` as cron runs it, names unique in
//! the serviceset, each `user` one the host's user database knows (the
//! daemon runs the job as that user).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::diagnostic::SourceError;
use crate::serviceset::Serviceset;
use crate::serviceset::schema::{CronEntry, Words};

/// A scheduled command the daemon runs on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CronJob {
    pub owner: String,
    pub name: String,
    pub schedule: String,
    /// argv; a string command of the file is `/bin/sh -c <line>`.
    pub command: Vec<String>,
    pub user: Option<String>,
    /// The schedule's IANA time zone; the host's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
}

pub(super) fn jobs(
    set: &Serviceset,
    owner: &str,
    entries: &[CronEntry],
    taken: &mut HashSet<String>,
) -> Result<Vec<CronJob>, SourceError> {
    let mut jobs: Vec<CronJob> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let name = e
            .name
            .clone()
            .unwrap_or_else(|| format!("{owner}-cron-{}", i + 1));
        let at = |msg: String| set.error_at(owner, Some("cron"), msg);
        let what = match &e.name {
            Some(name) => format!("cron job `{name}` of `{owner}`"),
            None => format!("cron entry {} of `{owner}`", i + 1),
        };
        super::schedule::Schedule::parse(&e.schedule, e.tz.as_deref())
            .map_err(|m| at(format!("{what}: {m}")))?;
        let command = match &e.command {
            // As cron does: the line is shell syntax (quotes, redirections).
            Words::Line(line) if !line.trim().is_empty() => {
                vec!["/bin/sh".to_owned(), "-c".to_owned(), line.clone()]
            }
            Words::Line(_) => Vec::new(),
            Words::List(argv) => argv.clone(),
        };
        if command.is_empty() {
            return Err(at(format!("{what} has an empty command")));
        }
        if let Some(user) = &e.user {
            check_user(user).map_err(|m| at(format!("{what}: {m}")))?;
        }
        if !taken.insert(name.clone()) {
            return Err(at(format!(
                "{what}: another cron job of this serviceset is named `{name}`; job names are unique in a serviceset"
            )));
        }
        jobs.push(CronJob {
            owner: owner.to_owned(),
            name,
            schedule: e.schedule.clone(),
            command,
            user: e.user.clone(),
            tz: e.tz.clone(),
        });
    }
    Ok(jobs)
}

/// A cron `user` names an account of this host, found the way the daemon
/// will look it up when it runs the job.
fn check_user(user: &str) -> Result<(), String> {
    if user.is_empty() || user.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{}` is not a user name", user.escape_debug()));
    }
    if uzers::get_user_by_name(user).is_none() {
        return Err(format!(
            "no user `{user}` on this host (the daemon runs the job as it): create the user or change `user:`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_looked_up_on_the_host() {
        assert_eq!(check_user("root"), Ok(()));
        for (user, why) in [
            (
                "telefig-no-such-user",
                "no user `telefig-no-such-user` on this host",
            ),
            ("", "is not a user name"),
            ("a b", "is not a user name"),
            ("a\u{1b}b", "is not a user name"),
        ] {
            let err = check_user(user).unwrap_err();
            assert!(err.contains(why), "{user:?}: {err}");
        }
    }
}
