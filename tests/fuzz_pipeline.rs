//! Bad input, generated: parse → template → expand → graph must never
//! panic, and every failure must be one of the bad-input errors that the
//! binary maps to exit 2, with a message. Bounded (a few thousand cases) so
//! it runs in CI; raise PROPTEST_CASES to run it longer by hand.

use std::path::Path;

use proptest::prelude::*;
use telefig::graph::Graph;
use telefig::platform::{Platform, expand};
use telefig::serviceset::{self, Vars};

/// Where an input failed: `None` if it made it through.
fn pipeline(text: &str) -> Option<String> {
    let vars = Vars::new([("BUILD_COMMIT".to_owned(), "abc1234".to_owned())], []);
    let file = Path::new("fuzz.conf");
    let set = match serviceset::parse(file, text, &vars) {
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

fn document() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::collection::vec(proptest::sample::select(LINES), 1..14).prop_map(|l| l.join("\n")),
        1 => any::<String>(),
        1 => proptest::collection::vec(any::<u8>(), 0..200).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
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
