//! Crash anywhere: `telefig start` killed with SIGKILL at seeded moments
//! spread over pull, create, start, gate wait and rollback; each time a
//! rerun converges — one container per name, the wanted config, nothing
//! left aside, the lock free.

#[path = "support/stack.rs"]
mod stack;
mod support;

use std::time::Duration;

use stack::*;
use support::*;

/// How many kill points; each is a start killed, then a converging rerun.
const POINTS: u64 = 30;

#[test]
fn a_rerun_converges_after_start_is_killed_at_any_point() {
    if !require_docker() {
        return;
    }
    let registry = Registry::start();
    let base = busybox_image("1");
    for image in IMAGES {
        registry.push_as(&base, image);
    }
    let s = Stack::with_registries(&registry.addr, &[]);
    let mut killed_in = std::collections::BTreeMap::<&str, u32>::new();
    for point in 0..POINTS {
        let scenario = match point % 3 {
            0 => {
                // Cold: nothing there, images not local either (pull, create, start, gates).
                cleanup(s.id());
                for image in IMAGES {
                    untag(&registry.reference(image));
                }
                s.write_serviceset("A=0", true);
                "cold start"
            }
            1 => {
                s.write_serviceset(&format!("A={point}"), true);
                "recreate"
            }
            _ => {
                s.write_serviceset(&format!("A={point}"), false);
                "failing version (rollback)"
            }
        };
        // Spread the kill over the whole run: 0 to ~2.6 s, seeded by the point.
        let delay = Duration::from_millis(point * 7919 % 2600);
        let mut child = s
            .command(&["start"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let finished_first = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        let _ = child.wait();
        if !finished_first {
            *killed_in.entry(scenario).or_default() += 1;
        }

        // The rerun, with a config that can pass.
        s.write_serviceset(&format!("A={point}"), true);
        let rerun = std::time::Instant::now();
        let out = s.start(&[]);
        eprintln!(
            "point {point:2} {scenario:27} killed after {delay:>8?}: rerun took {:?}",
            rerun.elapsed()
        );
        assert_exit(&out, 0);
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("waiting for the lock"),
            "the lock was released"
        );
        let (names, want) = (s.container_names(), s.wanted_names());
        assert_eq!(
            names, want,
            "point {point} ({scenario}, killed after {delay:?})"
        );
        for name in &want {
            assert_eq!(
                inspect(name)["State"]["Running"],
                true,
                "{name} at point {point}"
            );
        }
        let plan = s.telefig(&["plan"]);
        assert!(
            String::from_utf8_lossy(&plan.stdout)
                .starts_with(&format!("serviceset {}: 5 unchanged", s.id())),
            "point {point} ({scenario}): {}",
            text(&plan)
        );
    }
    eprintln!("killed mid-run per scenario: {killed_in:?}");
    assert!(
        killed_in.values().sum::<u32>() >= POINTS as u32 / 2,
        "most kills landed mid-run: {killed_in:?}"
    );
}
