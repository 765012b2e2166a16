//! Image cleanup: which of a serviceset's images may go, and which stay.
//!
//! Pure: fed the images on the host, what telefig pulled for this
//! serviceset (and for the others), the images every container uses, the
//! image references of the current record and of the history (newest
//! first), the disk use of Docker's data root and the platform's settings.
//! It never picks an image that telefig did not pull for this serviceset,
//! that another serviceset pulled, that any container uses (running,
//! stopped, or kept aside for a rollback), or that belongs to one of the
//! newest `keep` versions (the current deploy and the rollback target with
//! the default 2). After a start it removes only while the data root is
//! above the high water mark, least recently deployed first, until the
//! estimate is below the low one, as kubelet does; by hand (`telefig gc`)
//! it removes everything else at once: the marks are for the cleanup that
//! runs unasked.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use crate::disk::Disk;
use crate::platform::GcPolicy;

/// An image as Docker lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageObs {
    pub id: String,
    /// `repo:tag` references it carries.
    pub references: Vec<String>,
    pub size: u64,
    /// Seconds since the epoch.
    pub created: i64,
}

pub struct GcInput<'a> {
    pub images: &'a [ImageObs],
    /// References telefig pulled for this serviceset.
    pub pulled: &'a BTreeSet<String>,
    /// References telefig pulled for any other serviceset.
    pub pulled_by_others: &'a BTreeSet<String>,
    /// Image references and ids of every container on the host.
    pub in_use: &'a BTreeSet<String>,
    /// Image references of each deploy, the current record first, then the
    /// history newest first.
    pub versions: &'a [BTreeSet<String>],
    pub disk: Disk,
    pub policy: GcPolicy,
    /// Bytes that must be free once the cleanup is done (a pull that does
    /// not fit, see `plan::space`), whatever the water marks say; 0: none.
    pub need_free: u64,
    /// Run by hand: every image that may go goes, whatever the water marks say.
    pub by_hand: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "why")]
pub enum Keep {
    PulledByAnother,
    UsedByAContainer,
    RecentVersion { age: usize },
    BelowHighWater,
    BelowLowWater,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removal {
    pub reference: String,
    pub id: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GcPlan {
    pub disk: Disk,
    pub remove: Vec<Removal>,
    pub kept: Vec<(String, Keep)>,
    /// Use once the removals are done (an estimate: layers may be shared).
    pub disk_after: Disk,
}

/// Whether a `start` calls for an image cleanup: only one that succeeded
/// and changed what runs. A no-op start pulled nothing and freed nothing,
/// so it stays one list call.
pub fn after_start(plan: &crate::plan::Plan, succeeded: bool) -> bool {
    succeeded && !plan.is_noop()
}

/// Decide the cleanup.
pub fn gc(input: &GcInput) -> GcPlan {
    let mut kept = Vec::new();
    // Candidates: references telefig pulled for this serviceset, with
    // how many deploys ago each was last used (None: in no record).
    let mut candidates: Vec<(Option<usize>, i64, Removal)> = Vec::new();
    for image in input.images {
        for reference in &image.references {
            if !input.pulled.contains(reference) {
                continue;
            }
            let age = input.versions.iter().position(|v| v.contains(reference));
            // The version is the telling reason: the current deploy's
            // image is also in use, but "the current deploy" says more.
            let recent = age.filter(|a| *a < input.policy.keep);
            let why = if input.pulled_by_others.contains(reference) {
                Some(Keep::PulledByAnother)
            } else if let Some(age) = recent {
                Some(Keep::RecentVersion { age })
            } else if input.in_use.contains(reference) || input.in_use.contains(&image.id) {
                Some(Keep::UsedByAContainer)
            } else {
                None
            };
            match why {
                Some(why) => kept.push((reference.clone(), why)),
                None => candidates.push((
                    age,
                    image.created,
                    Removal {
                        reference: reference.clone(),
                        id: image.id.clone(),
                        size: image.size,
                    },
                )),
            }
        }
    }
    // Least recently deployed first: never in a record, then oldest deploy,
    // then oldest image.
    candidates.sort_by_key(|(age, created, r)| {
        (
            std::cmp::Reverse(age.unwrap_or(usize::MAX)),
            *created,
            r.reference.clone(),
        )
    });
    let mut disk_after = input.disk;
    let mut remove = Vec::new();
    let above_high = input.disk.percent() >= input.policy.high;
    let short = |d: &Disk| d.total.saturating_sub(d.used) < input.need_free;
    for (_, _, r) in candidates {
        let wait = if input.by_hand || short(&disk_after) {
            None
        } else if !above_high {
            Some(Keep::BelowHighWater)
        } else if disk_after.percent() < input.policy.low {
            Some(Keep::BelowLowWater)
        } else {
            None
        };
        if let Some(why) = wait {
            kept.push((r.reference, why));
            continue;
        }
        // An image is freed once its last reference goes.
        let last_ref = !remove.iter().any(|x: &Removal| x.id == r.id)
            && input.images.iter().find(|i| i.id == r.id).is_some_and(|i| {
                i.references
                    .iter()
                    .all(|x| *x == r.reference || !input.pulled.contains(x))
            });
        if last_ref {
            disk_after.used = disk_after.used.saturating_sub(r.size);
        }
        remove.push(r);
    }
    GcPlan {
        disk: input.disk,
        remove,
        kept,
        disk_after,
    }
}

impl GcPlan {
    /// What was kept and why, in one line: "kept 3: 2 of the current
    /// deploy, 1 of the rollback target (…)". `keep`: the platform's.
    pub fn kept_summary(&self, keep: usize) -> String {
        if self.kept.is_empty() {
            return "kept none".to_owned();
        }
        let count = |f: &dyn Fn(&Keep) -> bool| self.kept.iter().filter(|(_, k)| f(k)).count();
        let recent =
            |a: usize| move |k: &Keep| matches!(k, Keep::RecentVersion { age } if *age == a);
        let parts = [
            (count(&recent(0)), "of the current deploy"),
            (count(&recent(1)), "of the rollback target"),
            (
                count(&|k| matches!(k, Keep::RecentVersion { age } if *age >= 2)),
                "of the versions before it",
            ),
            (
                count(&|k| *k == Keep::UsedByAContainer),
                "used by a container",
            ),
            (
                count(&|k| *k == Keep::PulledByAnother),
                "pulled for another serviceset too",
            ),
            (
                count(&|k| *k == Keep::BelowHighWater),
                "as the data root is below the high-water mark",
            ),
            (
                count(&|k| *k == Keep::BelowLowWater),
                "as the data root is below the low-water mark",
            ),
        ];
        let said: Vec<String> = parts
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, why)| format!("{n} {why}"))
            .collect();
        let mut line = format!("kept {}: {}", self.kept.len(), said.join(", "));
        if count(&|k| matches!(k, Keep::RecentVersion { .. })) > 0 {
            line.push_str(&format!(
                " (the platform's `images: {{keep: {keep}}}` keeps the newest {keep} versions)"
            ));
        }
        line
    }
}

impl fmt::Display for GcPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "data root {:.1} % used ({} of {} MB)",
            self.disk.percent(),
            self.disk.used >> 20,
            self.disk.total >> 20
        )?;
        for r in &self.remove {
            writeln!(f, "  remove {} ({} MB)", r.reference, r.size >> 20)?;
        }
        for (reference, why) in &self.kept {
            let why = match why {
                Keep::PulledByAnother => "another serviceset pulled it".to_owned(),
                Keep::UsedByAContainer => "a container uses it".to_owned(),
                Keep::RecentVersion { age: 0 } => "the current deploy".to_owned(),
                Keep::RecentVersion { age: 1 } => "the rollback target".to_owned(),
                Keep::RecentVersion { age } => format!("deployed {age} versions ago"),
                Keep::BelowHighWater => "disk below the high-water mark".to_owned(),
                Keep::BelowLowWater => "disk below the low-water mark".to_owned(),
            };
            writeln!(f, "  keep   {reference} ({why})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_start_that_changed_something_and_succeeded_cleans_up() {
        use crate::plan::{Action, ActionKind, Plan, Reason};
        let plan = |action| Plan {
            serviceset: "s".into(),
            actions: vec![Action {
                container: "web".into(),
                action,
                reason: Reason::UpToDate,
                existing_id: None,
                backup_id: None,
                readiness: None,
                drain: None,
            }],
            bake: Vec::new(),
        };
        assert!(!super::after_start(&plan(ActionKind::Keep), true));
        assert!(super::after_start(&plan(ActionKind::Recreate), true));
        assert!(!super::after_start(&plan(ActionKind::Recreate), false));
    }

    use super::*;

    const MB: u64 = 1 << 20;

    fn image(tag: &str, created: i64) -> ImageObs {
        ImageObs {
            id: format!("sha256:{tag}"),
            references: vec![format!("reg/web:{tag}")],
            size: 100 * MB,
            created,
        }
    }

    fn set(refs: &[&str]) -> BTreeSet<String> {
        refs.iter().map(|r| format!("reg/web:{r}")).collect()
    }

    fn run(disk_pct: u64, in_use: &[&str], others: &[&str]) -> GcPlan {
        run_as(false, disk_pct, in_use, others)
    }

    fn run_as(by_hand: bool, disk_pct: u64, in_use: &[&str], others: &[&str]) -> GcPlan {
        let images: Vec<ImageObs> = (1..=6).map(|v| image(&format!("v{v}"), v)).collect();
        let pulled = set(&["v1", "v2", "v3", "v4", "v5", "v6"]);
        // v6 is current; the history holds v5 … v1 (newest first).
        let versions: Vec<BTreeSet<String>> =
            (1..=6).rev().map(|v| set(&[&format!("v{v}")])).collect();
        let mut foreign = images.clone();
        foreign.push(ImageObs {
            id: "sha256:base".into(),
            references: vec!["busybox:latest".into()],
            size: 10 * MB,
            created: 0,
        });
        gc(&GcInput {
            images: &foreign,
            pulled: &pulled,
            pulled_by_others: &set(others),
            in_use: &set(in_use),
            versions: &versions,
            disk: Disk {
                used: disk_pct * 1000 * MB / 100,
                total: 1000 * MB,
            },
            policy: GcPolicy::default(),
            need_free: 0,
            by_hand,
        })
    }

    fn removed(p: &GcPlan) -> Vec<&str> {
        p.remove.iter().map(|r| r.reference.as_str()).collect()
    }

    #[test]
    fn above_high_water_keeps_current_and_rollback_removes_oldest_first() {
        // 90 % of 1000 MB; each image 100 MB: removing v1..v4 reaches 50 %,
        // but the low mark (80 %) is reached after two.
        let p = run(90, &["v6"], &[]);
        assert_eq!(removed(&p), ["reg/web:v1", "reg/web:v2"], "{p}");
        assert!(p.disk_after.percent() < 80.0, "{p}");
        let text = p.to_string();
        assert!(
            text.contains("keep   reg/web:v5 (the rollback target)"),
            "{text}"
        );
        assert!(
            text.contains("reg/web:v3 (disk below the low-water mark)"),
            "{text}"
        );
        assert!(
            !text.contains("busybox"),
            "never an image telefig did not pull: {text}"
        );
    }

    #[test]
    fn a_full_disk_removes_every_old_version_but_never_current_or_rollback() {
        let p = run(100, &[], &[]);
        assert_eq!(
            removed(&p),
            ["reg/web:v1", "reg/web:v2", "reg/web:v3"],
            "{p}"
        );
        let p = run(200, &[], &[]);
        assert_eq!(
            removed(&p),
            ["reg/web:v1", "reg/web:v2", "reg/web:v3", "reg/web:v4"],
            "{p}"
        );
    }

    #[test]
    fn below_high_water_nothing_goes() {
        assert!(run(84, &[], &[]).remove.is_empty());
    }

    /// `telefig gc` by hand removed nothing below the high-water mark.
    #[test]
    fn by_hand_every_old_version_goes_whatever_the_marks_and_the_kept_are_said() {
        // v6, the current deploy, runs: kept as the current deploy.
        let p = run_as(true, 10, &["v1", "v6"], &["v2"]);
        assert_eq!(removed(&p), ["reg/web:v3", "reg/web:v4"], "{p}");
        assert_eq!(
            p.kept_summary(2),
            "kept 4: 1 of the current deploy, 1 of the rollback target, 1 used by a container, 1 pulled for another serviceset too (the platform's `images: {keep: 2}` keeps the newest 2 versions)"
        );
        let text = p.to_string();
        assert!(
            text.contains("keep   reg/web:v6 (the current deploy)"),
            "{text}"
        );
        assert!(!text.contains("water"), "{text}");
        // After a start, the marks still hold.
        let p = run_as(false, 10, &[], &[]);
        assert!(p.remove.is_empty(), "{p}");
        assert_eq!(
            p.kept_summary(2),
            "kept 6: 1 of the current deploy, 1 of the rollback target, 4 as the data root is below the high-water mark (the platform's `images: {keep: 2}` keeps the newest 2 versions)"
        );
    }

    #[test]
    fn in_use_or_pulled_by_another_serviceset_stays() {
        let p = run(200, &["v1"], &["v2"]);
        assert_eq!(removed(&p), ["reg/web:v3", "reg/web:v4"], "{p}");
        assert!(
            p.kept
                .contains(&("reg/web:v1".into(), Keep::UsedByAContainer))
        );
        assert!(
            p.kept
                .contains(&("reg/web:v2".into(), Keep::PulledByAnother))
        );
    }

    #[test]
    fn a_kept_aside_containers_image_is_in_use_by_id() {
        let images = [image("v1", 1)];
        let p = gc(&GcInput {
            images: &images,
            pulled: &set(&["v1"]),
            pulled_by_others: &BTreeSet::new(),
            in_use: &BTreeSet::from(["sha256:v1".to_owned()]),
            versions: &[],
            disk: Disk {
                used: 10,
                total: 10,
            },
            policy: GcPolicy::default(),
            need_free: 0,
            by_hand: true,
        });
        assert!(p.remove.is_empty(), "{p}");
    }

    #[test]
    fn a_pull_that_does_not_fit_cleans_below_the_marks_until_it_does() {
        // 50 % of 1000 MB: below the high mark, nothing would go; a pull
        // needing 650 MB free removes the oldest versions until 650 MB are
        // free, never the current or the rollback target.
        let images: Vec<ImageObs> = (1..=6).map(|v| image(&format!("v{v}"), v)).collect();
        let versions: Vec<BTreeSet<String>> =
            (1..=6).rev().map(|v| set(&[&format!("v{v}")])).collect();
        let pulled = set(&["v1", "v2", "v3", "v4", "v5", "v6"]);
        let none = BTreeSet::new();
        let input = |need_free| GcInput {
            images: &images,
            pulled: &pulled,
            pulled_by_others: &none,
            in_use: &none,
            versions: &versions,
            disk: Disk {
                used: 500 * MB,
                total: 1000 * MB,
            },
            policy: GcPolicy::default(),
            need_free,
            by_hand: false,
        };
        assert!(gc(&input(0)).remove.is_empty());
        let p = gc(&input(650 * MB));
        assert_eq!(removed(&p), ["reg/web:v1", "reg/web:v2"], "{p}");
        let p = gc(&input(2000 * MB));
        assert_eq!(
            removed(&p),
            ["reg/web:v1", "reg/web:v2", "reg/web:v3", "reg/web:v4"],
            "never the current or the rollback target: {p}"
        );
    }
}
