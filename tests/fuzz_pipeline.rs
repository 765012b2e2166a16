//! Bad input, generated: parse → template → expand → graph must never
//! panic, and every failure must be one of the bad-input errors that the
//! binary maps to exit 2, with a message. Templates that never end or grow
//! without bound must stop within their budget, and a file that is not a
//! regular file within the size cap must be refused without being read.
//! Bounded (a few thousand cases) so it runs in CI; raise PROPTEST_CASES to
//! run it longer by hand.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use telefig::diagnostic::LoadError;
use telefig::graph::Graph;
use telefig::platform::{Platform, expand};
use telefig::serviceset::template::Budget;
use telefig::serviceset::{self, Vars};

/// The template budget here: a fiftieth of the default, so that a runaway
/// template costs milliseconds in a debug build. The render is the one
/// every file goes through.
const BUDGET: Budget = Budget {
    work: Budget::DEFAULT.work / 50,
    output: 64 << 10,
};

fn vars() -> Vars {
    Vars::new([("BUILD_COMMIT".to_owned(), "abc1234".to_owned())], [])
}

/// Where an input failed: `None` if it made it through.
fn pipeline(text: &str) -> Option<String> {
    let started = Instant::now();
    let file = Path::new("fuzz.conf");
    let parsed = serviceset::parse_within(file, text, &vars(), BUDGET);
    // Generous for a debug build on a loaded machine; without a budget the
    // runaway lines below take hours or all memory.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?} to parse {text:?}",
        started.elapsed()
    );
    expand_and_order(parsed)
}

fn expand_and_order(parsed: Result<serviceset::Serviceset, LoadError>) -> Option<String> {
    let vars = vars();
    let set = match parsed {
        Ok(set) => set,
        Err(e) => return Some(e.to_string()),
    };
    let expanded = match expand(&set, "fuzz", &Platform::built_in(), &vars) {
        Ok(e) => e,
        Err(e) => return Some(e.to_string()),
    };
    match Graph::build(&expanded) {
        Ok(graph) => {
            assert_eq!(graph.len(), expanded.containers.len());
            // The gate deadline sums and multiplies durations: it must not overflow.
            for health in expanded.containers.iter().filter_map(|c| c.health) {
                assert!(health.deadline() >= health.start_period);
            }
            None
        }
        Err(e) => Some(e.to_string()),
    }
}

const LINES: &[&str] = &[
    "version: 1",
    "version: 2",
    "version: x",
    "web:",
    "db:",
    "web-logging:",
    "a:",
    "-bad:",
    "{{X}}:",
    "  docker:",
    "  docker: {image: x, version: v1}",
    "  sidecars:",
    "  sidecars: {logging: ~, discovery: {port: 1}}",
    "  depends_on: [db]",
    "  depends_on: [web]",
    "  depends_on: {db: {condition: healthy}}",
    "  depends_on: {db: {condition: sometimes}}",
    "  kind: job",
    "  kind: cron",
    "  imgae: x",
    "    image: x",
    "    image: ''",
    "    version: \"{{BUILD_COMMIT}}\"",
    "    version: \"{{ V|default('x', true) }}\"",
    "    version: -x",
    "    version: 1.5",
    "    command: sh -c 'x",
    "    command: [a, b]",
    "    command: {a: b}",
    "    environment: [A=1, A=2]",
    "    environment: [A]",
    "    environment: {A: 1, B: [x]}",
    "    healthcheck: {test: x, interval: 1x}",
    "    healthcheck: {test: [NOPE, x]}",
    "    healthcheck: {test: [CMD, x], interval: 200ms, retries: 2}",
    "    ports: [80, 80]",
    "    ports: [0]",
    "    mem_limit: lots",
    "    cpus: -1",
    "    restart: sometimes",
    "    labels: {telefig.role: x}",
    "    stop_grace_period: 5s",
    // Numeric extremes: every one is a message, never a panic.
    "    stop_grace_period: 1e20",
    "    stop_grace_period: -1",
    "    stop_grace_period: .nan",
    "    stop_grace_period: .inf",
    "    stop_grace_period: 18446744073709551615",
    "    stop_grace_period: 18446744073709551616",
    "    stop_grace_period: \"99999999999999999999h\"",
    "    stop_grace_period: \"9223372036854775807s\"",
    "    healthcheck: {test: [CMD, x], interval: 1e20, retries: 4294967295}",
    "    healthcheck: {test: [CMD, x], interval: 8760h, start_period: 8760h, retries: 4294967295}",
    "    healthcheck: {test: [CMD, x], retries: 4294967296}",
    "    healthcheck: {test: [CMD, x], retries: -1}",
    "    healthcheck: {test: [CMD, x], timeout: -0.5, start_period: .nan}",
    // Values that were clamped or pasted into text (issue 22): each an error.
    "    mem_limit: 99999999999999999999g",
    "    mem_limit: 1.3k",
    "    cpus: 1e300",
    "    cpus: 0.0000000001",
    "    cpuset_cpus: \"3-1\"",
    "    restart: on-failure:+5",
    "    environment: {\"A=B\": c}",
    "    volumes: [\"/var/log/../../etc:/e\", \"data:/data\"]",
    "    volumes: [\"/a:/b:ro,rw\", \"/a:\"]",
    "    registry: \"http://evil host/../\"",
    "    logrotate: {file: \"/etc:/host-etc:rw\"}",
    "    logrotate: {file: ''}",
    "    metrics: {port: 70000}",
    "    cron: [{schedule: '0 0 0 1 1 * 2030', command: x}]",
    "    logging:",
    "    discovery: {port: 1}",
    "    discovery: {prot: 1}",
    "    discovery:",
    "    singer: {dirs: [a, b]}",
    "    zum: {deps: [a.dep], wait_for_deps: true}",
    "    cron: [{schedule: '* * * *', command: x}]",
    "    cron: [{schedule: '@every 1s', command: [sh, -c, x]}]",
    "    cron: [{schedule: '61 * * * *', command: x}]",
    "    knox:",
    "    nope: {}",
    "\t",
    "- ",
    ": :",
    "{{",
    "}}",
    "{{ }}",
    "{{ X|upper }}",
    "&a x",
    "*a",
    "!!binary x",
    "? complex",
    "'unclosed",
    "[",
    "]",
    "#comment",
    "",
];

/// Templates that never end, recurse, or grow a value without bound.
const RUNAWAY: &[&str] = &[
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% for i in range(100) %}# {{ 'a' * 10**8 }}\n{% endfor %}",
    "# {{ [1] * 10**8 }}",
    "# {{ range(100000)|join(',') }}",
    "{% for i in range(100000) %}# {{ 'ab' * 40 }}\n{% endfor %}",
    "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}# {{ f(0) }}",
    "{% macro g(s, n) %}{% if n > 0 %}{{ g(s ~ s, n - 1) }}{% endif %}{% endmacro %}# {{ g('ab', 40) }}",
    "{% for i in range(100000) %}{% endfor %}# {{ NOT_SET_1 }} {{ NOT_SET_2 }} {{ NOT_SET_3 }}",
];

fn lines(runaway: bool) -> impl Strategy<Value = String> {
    let line = if runaway {
        prop_oneof![8 => proptest::sample::select(LINES), 1 => proptest::sample::select(RUNAWAY)]
            .boxed()
    } else {
        proptest::sample::select(LINES).boxed()
    };
    proptest::collection::vec(line, 1..14).prop_map(|l| l.join("\n"))
}

fn document() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => lines(true),
        1 => any::<String>(),
        1 => proptest::collection::vec(any::<u8>(), 0..200).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

/// Where a generated file is put: a regular file (maybe behind links), or
/// something in its place that must be refused without being read.
#[derive(Debug, Clone, Copy)]
enum Place {
    Regular,
    Linked(usize),
    Fifo,
    Loop,
    DevZero,
    Directory,
    OverCap,
}

fn place() -> impl Strategy<Value = Place> {
    prop_oneof![
        3 => Just(Place::Regular),
        2 => (1usize..4).prop_map(Place::Linked),
        1 => Just(Place::Fifo),
        1 => Just(Place::Loop),
        1 => Just(Place::DevZero),
        1 => Just(Place::Directory),
        1 => Just(Place::OverCap),
    ]
}

/// Put `text` in the empty `dir` as `place` says; the path to read.
fn put(dir: &Path, place: Place, text: &str) -> PathBuf {
    let path = dir.join("fuzz.conf");
    let link = |target: &Path, at: &Path| std::os::unix::fs::symlink(target, at).unwrap();
    match place {
        Place::Regular => std::fs::write(&path, text).unwrap(),
        Place::Linked(hops) => {
            let real = dir.join("real");
            std::fs::write(&real, text).unwrap();
            let mut target = real;
            for hop in 0..hops {
                let at = dir.join(format!("hop{hop}"));
                link(&target, &at);
                target = at;
            }
            link(&target, &path);
        }
        Place::Fifo => {
            let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
            // SAFETY: a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        }
        Place::Loop => {
            let other = dir.join("other");
            link(&other, &path);
            link(&path, &other);
        }
        Place::DevZero => link(Path::new("/dev/zero"), &path),
        Place::Directory => std::fs::create_dir(&path).unwrap(),
        Place::OverCap => {
            let file = std::fs::File::create(&path).unwrap();
            file.set_len(telefig::read::CONFIG_CAP + 1).unwrap();
        }
    }
    path
}

/// What reading `place` must say, when it must be refused.
fn refusal(place: Place) -> Option<&'static str> {
    match place {
        Place::Regular | Place::Linked(_) => None,
        Place::Fifo => Some("it is a FIFO (named pipe), not a regular file"),
        Place::Loop => Some("it is a loop of symbolic links"),
        Place::DevZero => Some("it is a character device, not a regular file"),
        Place::Directory => Some("it is a directory, not a regular file"),
        Place::OverCap => Some("it is larger than the limit of 4 MiB"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(4000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn never_panics_and_every_failure_has_a_message(text in document()) {
        if let Some(message) = pipeline(&text) {
            prop_assert!(!message.trim().is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(400),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// The same documents as files, as the serviceset and as the platform
    /// file: what is not a regular file within the cap is refused at once,
    /// naming why; a regular file (behind links or not) reads as its text.
    #[test]
    fn a_file_is_read_only_when_regular_and_within_the_cap(text in lines(false), place in place()) {
        let case = CASE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("telefig-fuzz-files-{}-{case}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = put(&dir, place, &text);
        let started = Instant::now();
        let loaded = serviceset::load(&path, &vars());
        let platform = Platform::load(Some(&path));
        prop_assert!(started.elapsed() < Duration::from_secs(20), "{place:?} took {:?}", started.elapsed());
        match refusal(place) {
            Some(why) => {
                for err in [loaded.err(), platform.err()] {
                    let message = err.map(|e| e.to_string()).unwrap_or_default();
                    prop_assert!(message.contains(why), "{place:?}: {message}");
                    prop_assert!(message.contains(&path.display().to_string()), "{place:?}: {message}");
                }
            }
            None => {
                let parsed = serviceset::parse(&path, &text, &vars());
                prop_assert_eq!(
                    expand_and_order(loaded),
                    expand_and_order(parsed),
                    "{:?}", place
                );
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

static CASE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Each runaway template alone stops at its budget (or minijinja's
/// recursion limit, or the undefined names it finds), with a message.
#[test]
fn every_runaway_template_stops_within_its_budget() {
    for line in RUNAWAY {
        let text = format!("web: {{docker: {{image: x, version: v1}}}}\n{line}\n");
        let message = pipeline(&text).unwrap_or_else(|| panic!("{line} rendered"));
        assert!(
            [
                "work budget",
                "output is over its cap",
                "recursion limit",
                "NOT_SET_1"
            ]
            .iter()
            .any(|m| message.contains(m)),
            "{line}: {message}"
        );
    }
}

/// Crashers found by the generator, kept as regressions.
#[test]
fn regression_corpus() {
    for text in [
        // A top-level key that is not text (a sequence as key).
        "? [a, b]\n: x\n",
        // A container whose entry is a list.
        "web: [1, 2]\n",
        // An empty sidecar name.
        "web:\n  sidecars: {'': ~}\n",
        // A dependency on itself through a sidecar order.
        "web:\n  depends_on: [web-logging]\n  sidecars: {logging: ~}\n",
        // A numeric container name.
        "12: {}\n",
        // Templating that produces a newline inside a value.
        "web: {docker: {image: \"{{ X|default('a\\nb') }}\"}}\n",
        // Durations at the edges (1e20 seconds panicked in Duration::from_secs_f64).
        "web: {docker: {image: x, stop_grace_period: 1e20}}\n",
        "web: {docker: {image: x, stop_grace_period: 18446744073709551615}}\n",
        // The gate deadline, start_period + retries × interval, at its largest.
        "web: {docker: {image: x, healthcheck: {test: [CMD, x], interval: 8760h, timeout: 8760h, start_period: 8760h, retries: 4294967295}}}\n",
    ] {
        let _ = pipeline(text);
    }
}
