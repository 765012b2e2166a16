//! A big serviceset costs what its size costs: reading, expanding and
//! ordering a file of 8n entries takes about 8 times as long as one of n,
//! not 64 times. Each key given twice was found by scanning the keys before
//! it (80,000 labels took 10 s); a regression back to that is what this
//! catches.
//!
//! Not a timed test in the usual sense: what is compared is a ratio of CPU
//! times of this thread (not the wall clock, so other work on a loaded
//! machine does not count), each the best of three runs. Linear code
//! measures about 8; the scans this replaced measured 30 and more at these
//! sizes, so the bound of 16 leaves room both ways.

use std::path::Path;
use std::time::Duration;

use telefig::graph::Graph;
use telefig::platform::{Platform, expand};
use telefig::serviceset::{self, Vars};

const SMALL: usize = 2_000;
const FACTOR: usize = 8;
const BOUND: f64 = 16.0;

/// This thread's CPU time so far.
fn thread_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid pointer to a timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime");
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// How far a text is taken.
#[derive(Clone, Copy)]
enum Stage {
    /// Read, templated, parsed, checked.
    Parse,
    /// And expanded with the platform, and ordered.
    Expand,
}

/// The CPU time to take `text` to `stage`: the best of three.
fn cost(text: &str, stage: Stage) -> Duration {
    let vars = Vars::new([], []);
    let platform = Platform::built_in();
    (0..3)
        .map(|_| {
            let start = thread_cpu();
            let set = serviceset::parse(Path::new("big.conf"), text, &vars).unwrap();
            if let Stage::Expand = stage {
                let expanded = expand(&set, "big", &platform, &vars).unwrap();
                Graph::build(&expanded).unwrap();
            }
            thread_cpu() - start
        })
        .min()
        .expect("three runs")
}

fn labels(n: usize) -> String {
    let mut text = String::from("web:\n  docker:\n    image: x\n    version: v1\n    labels:\n");
    for i in 0..n {
        text.push_str(&format!("      label{i}: value{i}\n"));
    }
    text
}

fn environment_list(n: usize) -> String {
    let mut text =
        String::from("web:\n  docker:\n    image: x\n    version: v1\n    environment:\n");
    for i in 0..n {
        text.push_str(&format!("      - K{i}=v{i}\n"));
    }
    text
}

fn containers(n: usize) -> String {
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&format!("c{i}: {{docker: {{image: x, version: v1}}}}\n"));
    }
    text
}

fn dependencies(n: usize) -> String {
    let mut text = String::from("web:\n  docker: {image: x, version: v1}\n  depends_on:\n");
    for i in 0..n {
        text.push_str(&format!("    d{i}: {{condition: started}}\n"));
    }
    text
}

fn cron_jobs(n: usize) -> String {
    let mut text =
        String::from("web:\n  docker: {image: x, version: v1}\n  sidecars:\n    cron:\n");
    for i in 0..n {
        text.push_str(&format!(
            "      j{i}: {{schedule: '0 * * * *', command: x}}\n"
        ));
    }
    text
}

/// What is measured: its name, the text of n entries, how far it is taken.
type Shape = (&'static str, fn(usize) -> String, Stage);

#[test]
fn eight_times_the_entries_cost_about_eight_times_as_much() {
    // Expanding a container costs so much more than a lookup that, at sizes
    // a debug build gets through quickly, a scan would not show here; the
    // expansion's lookups (`Serviceset::get`, sidecar names, dependencies)
    // are sets and maps by construction.
    let shapes: [Shape; 6] = [
        ("labels", labels, Stage::Expand),
        ("environment list", environment_list, Stage::Expand),
        ("containers", containers, Stage::Parse),
        ("dependencies", dependencies, Stage::Parse),
        ("cron jobs", cron_jobs, Stage::Parse),
        ("cron jobs, expanded", |n| cron_jobs(n / 2), Stage::Expand),
    ];
    let mut report = Vec::new();
    let mut too_fast = Vec::new();
    for (what, make, stage) in shapes {
        let small = cost(&make(SMALL), stage);
        let big = cost(&make(SMALL * FACTOR), stage);
        let ratio = big.as_secs_f64() / small.as_secs_f64().max(1e-6);
        report.push(format!(
            "{what}: {small:?} for {SMALL}, {big:?} for {} (×{ratio:.1})",
            SMALL * FACTOR
        ));
        if ratio >= BOUND {
            too_fast.push(what);
        }
    }
    let report = report.join("\n");
    eprintln!("{report}");
    assert!(
        too_fast.is_empty(),
        "{too_fast:?} grow faster than their size (bound ×{BOUND}):\n{report}"
    );
}
