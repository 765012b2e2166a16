//! Which recorded version a rollback goes to, and whether it may.
//!
//! Pure: fed the recorded versions — the current record first, then the
//! history newest first — and, for `--to`, the image references present on
//! the host. Plain `rollback` goes to the version before the current one
//! (the rollback target `history` marks), pulling what it lacks as a start
//! does. `rollback --to COMMIT` goes to the newest earlier version with that
//! commit (or with a commit it uniquely begins, since `history` shortens
//! them), and only while every image it runs is still on the host: the
//! image cleanup keeps only the newest versions' images, and a rollback
//! asked for by commit does not pull what the cleanup removed.

use std::collections::BTreeSet;
use std::fmt;

/// One recorded version of a serviceset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub commit: Option<String>,
    /// The image references its containers run.
    pub images: BTreeSet<String>,
}

/// Why a rollback does not go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Only the current version is recorded.
    NoEarlier,
    /// No recorded version has that commit; `known`: the commits recorded,
    /// the current first, the running one and the rollback target marked.
    UnknownCommit { to: String, known: Vec<String> },
    /// `to` begins more than one recorded commit.
    Ambiguous { to: String, matches: Vec<String> },
    /// That commit is the version running.
    Running { commit: String },
    /// Images of that version are no longer on the host.
    ImagesGone {
        commit: String,
        missing: Vec<String>,
    },
}

impl Refused {
    /// The input named no version it could go to (exit 2), rather than one
    /// whose images are gone (exit 1).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Refused::ImagesGone { .. })
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::NoEarlier => write!(f, "no earlier version is recorded"),
            Refused::UnknownCommit { to, known } if known.is_empty() => write!(
                f,
                "no recorded version has commit `{to}`: none was deployed with BUILD_COMMIT"
            ),
            Refused::UnknownCommit { to, known } => write!(
                f,
                "no recorded version has commit `{to}`; recorded: {} (`telefig history` shows them)",
                known.join(", ")
            ),
            Refused::Ambiguous { to, matches } => write!(
                f,
                "`{to}` begins several recorded commits ({}); give more of it",
                matches.join(", ")
            ),
            Refused::Running { commit } => write!(
                f,
                "`{commit}` is the version running; `telefig restart` restarts it, `telefig start` deploys it again"
            ),
            Refused::ImagesGone { commit, missing } => write!(
                f,
                "the image(s) of `{commit}` are no longer on this host: {}; nothing was changed. The image cleanup keeps only the newest versions (platform `images: {{keep: N}}`) and `rollback --to` does not pull: pull them again (`docker pull IMAGE`) and run it again, or deploy that build with `telefig start`",
                missing.join(", ")
            ),
        }
    }
}

/// The index in `versions` (the current first, then the history newest
/// first) that the rollback goes to: the one before the current without
/// `to`; with `to`, the newest earlier version whose commit is `to` or
/// begins with it, if every image it runs is in `present`.
pub fn decide(
    versions: &[Version],
    to: Option<&str>,
    present: &BTreeSet<String>,
) -> Result<usize, Refused> {
    let Some(to) = to else {
        return if versions.len() >= 2 {
            Ok(1)
        } else {
            Err(Refused::NoEarlier)
        };
    };
    let chosen = by_commit(versions, to)?;
    let version = &versions[chosen];
    let missing: Vec<String> = version.images.difference(present).cloned().collect();
    if !missing.is_empty() {
        return Err(Refused::ImagesGone {
            commit: commit_of(version).to_owned(),
            missing,
        });
    }
    Ok(chosen)
}

/// The newest version whose commit is `to`, else the one commit `to`
/// begins; the current one is refused.
fn by_commit(versions: &[Version], to: &str) -> Result<usize, Refused> {
    let commits = || versions.iter().filter_map(|v| v.commit.as_deref());
    let exact = commits().any(|c| c == to);
    let mut matches: Vec<&str> = commits()
        .filter(|c| *c == to || (!exact && !to.is_empty() && c.starts_with(to)))
        .collect();
    matches.sort_unstable();
    matches.dedup();
    let commit = match matches.as_slice() {
        [one] => *one,
        [] => {
            return Err(Refused::UnknownCommit {
                to: to.to_owned(),
                known: known(versions),
            });
        }
        several => {
            return Err(Refused::Ambiguous {
                to: to.to_owned(),
                matches: several.iter().map(|c| (*c).to_owned()).collect(),
            });
        }
    };
    match versions
        .iter()
        .position(|v| v.commit.as_deref() == Some(commit))
    {
        Some(0) => Err(Refused::Running {
            commit: commit.to_owned(),
        }),
        Some(i) => Ok(i),
        None => unreachable!("the commit was found among the versions"),
    }
}

/// Each recorded commit once, newest first, the running one and the
/// rollback target marked.
fn known(versions: &[Version]) -> Vec<String> {
    let mut seen: Vec<&str> = Vec::new();
    let mut known = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        let Some(commit) = v.commit.as_deref() else {
            continue;
        };
        if seen.contains(&commit) {
            continue;
        }
        seen.push(commit);
        known.push(match i {
            0 => format!("{commit} (running)"),
            1 => format!("{commit} (rollback target)"),
            _ => commit.to_owned(),
        });
    }
    known
}

fn commit_of(version: &Version) -> &str {
    version.commit.as_deref().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(commit, images)` newest first; the first is the current record.
    fn versions(list: &[(&str, &[&str])]) -> Vec<Version> {
        list.iter()
            .map(|(commit, images)| Version {
                commit: (!commit.is_empty()).then(|| (*commit).to_owned()),
                images: images.iter().map(|r| (*r).to_owned()).collect(),
            })
            .collect()
    }

    fn set(refs: &[&str]) -> BTreeSet<String> {
        refs.iter().map(|r| (*r).to_owned()).collect()
    }

    #[test]
    fn the_target_is_decided_from_the_records_and_the_images_present() {
        // Running c3; the history holds c2, c1, a version without a commit,
        // and c1 again (deployed twice: the newer one is chosen).
        let recorded = versions(&[
            ("c3a9", &["r/web:c3a9", "r/log:1"]),
            ("c2b8", &["r/web:c2b8", "r/log:1"]),
            ("c1c7", &["r/web:c1c7", "r/log:1"]),
            ("", &["r/web:latest"]),
            ("c1c7", &["r/web:c1c7", "r/log:0"]),
        ]);
        let all = set(&["r/web:c3a9", "r/web:c2b8", "r/web:c1c7", "r/log:1"]);
        let only_current = set(&["r/web:c3a9", "r/log:1"]);
        let unknown = |to: &str| Refused::UnknownCommit {
            to: to.into(),
            known: vec![
                "c3a9 (running)".into(),
                "c2b8 (rollback target)".into(),
                "c1c7".into(),
            ],
        };
        type Case<'a> = (
            Option<&'a str>,
            &'a BTreeSet<String>,
            Result<usize, Refused>,
        );
        let cases: Vec<Case> = vec![
            // Plain rollback: the one before, whatever is present.
            (None, &only_current, Ok(1)),
            (Some("c1c7"), &all, Ok(2)),
            (Some("c2b8"), &all, Ok(1)),
            (Some("c1"), &all, Ok(2)),
            (
                Some("c"),
                &all,
                Err(Refused::Ambiguous {
                    to: "c".into(),
                    matches: vec!["c1c7".into(), "c2b8".into(), "c3a9".into()],
                }),
            ),
            (Some("c9"), &all, Err(unknown("c9"))),
            (Some(""), &all, Err(unknown(""))),
            (
                Some("c3a9"),
                &all,
                Err(Refused::Running {
                    commit: "c3a9".into(),
                }),
            ),
            (
                Some("c3"),
                &all,
                Err(Refused::Running {
                    commit: "c3a9".into(),
                }),
            ),
            (
                Some("c1c7"),
                &only_current,
                Err(Refused::ImagesGone {
                    commit: "c1c7".into(),
                    missing: vec!["r/web:c1c7".into()],
                }),
            ),
        ];
        for (to, present, want) in cases {
            assert_eq!(decide(&recorded, to, present), want, "--to {to:?}");
        }
    }

    #[test]
    fn with_only_the_current_version_there_is_nothing_to_go_back_to() {
        let recorded = versions(&[("c1", &["r/web:c1"])]);
        assert_eq!(decide(&recorded, None, &set(&[])), Err(Refused::NoEarlier));
        assert_eq!(decide(&[], None, &set(&[])), Err(Refused::NoEarlier));
    }

    #[test]
    fn a_refusal_says_what_is_recorded_and_what_to_do() {
        let recorded = versions(&[("c3", &[]), ("", &[]), ("c1", &[]), ("c3", &[])]);
        let unknown = decide(&recorded, Some("c9"), &set(&[])).unwrap_err();
        assert_eq!(
            unknown.to_string(),
            "no recorded version has commit `c9`; recorded: c3 (running), c1 (`telefig history` shows them)"
        );
        assert!(unknown.is_bad_input());
        let gone = Refused::ImagesGone {
            commit: "c1".into(),
            missing: vec!["r/web:c1".into()],
        };
        assert!(!gone.is_bad_input());
        let text = gone.to_string();
        assert!(text.contains("r/web:c1"), "{text}");
        assert!(text.contains("nothing was changed"), "{text}");
        assert!(text.contains("docker pull"), "{text}");
    }
}
