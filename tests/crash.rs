//! Crash at every named point: `telefig start` kills itself (SIGKILL) at a
//! failpoint before or after each kind of Docker call (pull, create, start,
//! stop, rename, remove) and each record write, in the scenario that
//! reaches it (cold start, recreate, failing version rolled back); each
//! time a rerun converges — one container per name, the wanted config,
//! nothing left aside, the lock free. The binary under test is built with
//! the `failpoints` feature (the crate's dev-dependency on itself).

#[path = "support/stack.rs"]
mod stack;
mod support;

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;

use stack::*;
use support::*;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Scenario {
    /// Nothing there, images not local: pull, create, start, record.
    Cold,
    /// web's config changed: stop, rename aside, create, start, remove the old.
    Recreate,
    /// web's new version fails its gate: the old one is put back.
    Rollback,
}

/// SIGKILL's number on Linux.
const SIGKILL: i32 = 9;

/// Every kind of point the crash test must have killed at.
const KINDS: [&str; 7] = [
    "pull", "create", "start", "stop", "rename", "remove", "record",
];

/// Where to die (`when:what`, or `when:what:target`) and how to get there.
fn points(web: &str) -> Vec<(String, Scenario)> {
    let mut points = Vec::new();
    for what in ["pull", "create", "start", "record"] {
        for when in ["before", "after"] {
            points.push((format!("{when}:{what}"), Scenario::Cold));
        }
    }
    for what in ["stop", "rename", "remove"] {
        for when in ["before", "after"] {
            points.push((format!("{when}:{what}"), Scenario::Recreate));
        }
    }
    // The rollback's own calls: the failed version removed, the old one renamed back.
    for what in ["remove", "rename"] {
        for when in ["before", "after"] {
            points.push((format!("{when}:{what}:{web}"), Scenario::Rollback));
        }
    }
    points
}

#[test]
fn a_rerun_converges_after_start_is_killed_at_each_named_point() {
    if !require_docker() {
        return;
    }
    let registry = Registry::start();
    let base = busybox_image("1");
    for image in IMAGES {
        registry.push_as(&base, image);
    }
    let s = Stack::with_registries(&registry.addr, &[]);
    let began = std::time::Instant::now();
    let mut killed_at = BTreeSet::new();
    for (n, (point, scenario)) in points(&s.web()).into_iter().enumerate() {
        let env = format!("A={n}");
        match scenario {
            Scenario::Cold => {
                cleanup(s.id());
                for image in IMAGES {
                    untag(&registry.reference(image));
                }
                s.write_serviceset(&env, true);
            }
            Scenario::Recreate => s.write_serviceset(&env, true),
            Scenario::Rollback => s.write_serviceset(&env, false),
        }
        let killed = s
            .command(&["start"])
            .env("TELEFIG_FAILPOINT", &point)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&killed.stderr);
        assert_eq!(
            killed.status.signal(),
            Some(SIGKILL),
            "{point} ({scenario:?}) was reached and killed telefig: {}",
            text(&killed)
        );
        let at = stderr
            .lines()
            .find_map(|l| l.strip_prefix("failpoint: killing telefig at "))
            .unwrap_or_else(|| panic!("{point}: no kill announced: {stderr}"));
        killed_at.insert(at.split(':').take(2).collect::<Vec<_>>().join(":"));

        // The rerun, with a config that can pass.
        s.write_serviceset(&env, true);
        let rerun = std::time::Instant::now();
        let out = s.start(&[]);
        eprintln!(
            "{point:32} {scenario:?}: killed at {at}; rerun took {:?}",
            rerun.elapsed()
        );
        assert_exit(&out, 0);
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("waiting for the lock"),
            "the lock was released"
        );
        assert_eq!(
            s.container_names(),
            s.wanted_names(),
            "after a kill at {at}: one container per name, nothing aside"
        );
        for name in s.wanted_names() {
            assert_eq!(
                inspect(&name)["State"]["Running"],
                true,
                "{name} after {at}"
            );
        }
        let plan = s.telefig(&["plan"]);
        assert!(
            String::from_utf8_lossy(&plan.stdout)
                .starts_with(&format!("serviceset {}: 5 unchanged", s.id())),
            "after a kill at {at}: {}",
            text(&plan)
        );
    }
    let wanted: BTreeSet<String> = KINDS
        .iter()
        .flat_map(|k| [format!("before:{k}"), format!("after:{k}")])
        .collect();
    assert_eq!(killed_at, wanted, "every named point was hit");
    eprintln!("{} kill points in {:?}", killed_at.len(), began.elapsed());
}
