//! The cron metrics, from the cron runs in the state dir (`state::cron_runs`):
//! the last run of each entry as gauges, and the entry's running totals —
//! runs by result, and their run time — which never go down, not even when
//! the daemon restarts.

use std::collections::BTreeMap;
use std::fmt::Write;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{Labels, labels};
use crate::state::CronRun;

/// Cron runs by serviceset, then entry.
pub(super) type Runs = BTreeMap<String, BTreeMap<String, CronRun>>;

const DURATION: &str = "telefig_cron_run_duration_seconds";

/// Add the cron metrics of `runs` to `registry`, all but the run time
/// (see [`durations`]).
pub(super) fn register(registry: &mut Registry, runs: &Runs) {
    let exit = Family::<Labels, Gauge>::default();
    let last = Family::<Labels, Gauge>::default();
    let duration = Family::<Labels, Gauge>::default();
    let total = Family::<Labels, Counter>::default();
    for (serviceset, entries) in runs {
        for (entry, run) in entries {
            let who = labels(&[("serviceset", serviceset), ("entry", entry)]);
            if let Some(code) = run.exit_code {
                exit.get_or_create(&who).set(code.into());
            }
            if let Some(t) = run.last_started {
                last.get_or_create(&who).set(t);
                if let Some(end) = run.last_finished {
                    duration.get_or_create(&who).set((end - t).max(0));
                }
            }
            let t = &run.totals;
            for (result, n) in [("succeeded", t.succeeded), ("failed", t.failed)] {
                let by = labels(&[
                    ("serviceset", serviceset),
                    ("entry", entry),
                    ("result", result),
                ]);
                total.get_or_create(&by).inc_by(n);
            }
        }
    }
    registry.register(
        "telefig_cron_last_exit_code",
        "Exit code of each cron entry's last run",
        exit,
    );
    registry.register(
        "telefig_cron_last_run_timestamp_seconds",
        "When each cron entry last started, seconds since the epoch",
        last,
    );
    registry.register(
        "telefig_cron_last_duration_seconds",
        "How long each cron entry's last run took",
        duration,
    );
    registry.register(
        "telefig_cron_runs",
        "Finished cron runs by entry and result: succeeded (exit 0) or failed",
        total,
    );
}

/// `telefig_cron_run_duration_seconds`: a summary without quantiles (its
/// `_sum` and `_count` are the totals kept in the state dir), in the text
/// format, which the metrics crate cannot write.
pub(super) fn durations(runs: &Runs) -> String {
    let mut out = format!(
        "# HELP {DURATION} How long cron runs took: the run time of every finished run, and their number.\n# TYPE {DURATION} summary\n"
    );
    for (serviceset, entries) in runs {
        for (entry, run) in entries {
            let who = format!(
                "serviceset=\"{}\",entry=\"{}\"",
                escape(serviceset),
                escape(entry)
            );
            let t = &run.totals;
            let _ = writeln!(out, "{DURATION}_sum{{{who}}} {}", t.seconds);
            let _ = writeln!(out, "{DURATION}_count{{{who}}} {}", t.runs());
        }
    }
    out
}

/// A label value as the text format writes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::CronTotals;

    fn runs() -> Runs {
        let sweep = CronRun {
            owner: "web".into(),
            last_started: Some(100),
            last_finished: Some(103),
            exit_code: Some(1),
            totals: CronTotals {
                succeeded: 4,
                failed: 1,
                seconds: 7.5,
            },
            ..CronRun::default()
        };
        let odd = CronRun::default();
        BTreeMap::from([(
            "shop".to_owned(),
            BTreeMap::from([("Sweep".to_owned(), sweep), ("a\"b\\c".to_owned(), odd)]),
        )])
    }

    #[test]
    fn totals_become_counters_by_result_and_a_summary() {
        let runs = runs();
        let mut registry = Registry::default();
        register(&mut registry, &runs);
        let mut om = String::new();
        prometheus_client::encoding::text::encode(&mut om, &registry).unwrap();
        let text = super::super::text_format(&om) + &durations(&runs);
        for line in [
            "# TYPE telefig_cron_runs_total counter",
            "telefig_cron_runs_total{serviceset=\"shop\",entry=\"Sweep\",result=\"succeeded\"} 4",
            "telefig_cron_runs_total{serviceset=\"shop\",entry=\"Sweep\",result=\"failed\"} 1",
            "telefig_cron_last_exit_code{serviceset=\"shop\",entry=\"Sweep\"} 1",
            "telefig_cron_last_duration_seconds{serviceset=\"shop\",entry=\"Sweep\"} 3",
            "# TYPE telefig_cron_run_duration_seconds summary",
            "telefig_cron_run_duration_seconds_sum{serviceset=\"shop\",entry=\"Sweep\"} 7.5",
            "telefig_cron_run_duration_seconds_count{serviceset=\"shop\",entry=\"Sweep\"} 5",
            "telefig_cron_run_duration_seconds_count{serviceset=\"shop\",entry=\"a\\\"b\\\\c\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
    }
}
