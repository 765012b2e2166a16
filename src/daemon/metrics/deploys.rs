//! The deploy metrics, from the totals each serviceset's deploy log keeps
//! (`state::deploys`): they count every operation since the log began, so
//! they never go down — not when an old entry leaves the log, nor when the
//! daemon restarts.

use std::collections::BTreeMap;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{Labels, labels};
use crate::state::{DeployLog, GATE_WAIT_BUCKETS, Histogram};

/// Add the deploy metrics of `logs` (by serviceset) to `registry`.
pub(super) fn register(registry: &mut Registry, logs: &BTreeMap<String, DeployLog>) {
    let deploys = Family::<Labels, Counter>::default();
    let rollbacks = Family::<Labels, Counter>::default();
    let repairs = Family::<Labels, Counter>::default();
    let last_success = Family::<Labels, Gauge>::default();
    let mut gate_waits = GateWaits::default();
    for (serviceset, log) in logs {
        let t = &log.totals;
        let by = |key: &str, value: &str| labels(&[("serviceset", serviceset), (key, value)]);
        for (result, n) in &t.deploys {
            deploys.get_or_create(&by("result", result)).inc_by(*n);
        }
        for (result, n) in &t.rollbacks {
            rollbacks.get_or_create(&by("result", result)).inc_by(*n);
        }
        for (cause, n) in &t.repairs {
            repairs.get_or_create(&by("cause", cause)).inc_by(*n);
        }
        if let Some(secs) = t.last_success_secs {
            last_success
                .get_or_create(&labels(&[("serviceset", serviceset)]))
                .set(secs);
        }
        if t.gate_wait.count > 0 {
            gate_waits
                .0
                .push((labels(&[("serviceset", serviceset)]), t.gate_wait.clone()));
        }
    }
    registry.register(
        "telefig_deploys",
        "Deploys (telefig start) by result: succeeded, failed, rolled_back",
        deploys,
    );
    registry.register(
        "telefig_rollbacks",
        "Rollbacks by result: telefig rollback, and a failed deploy's previous versions put back",
        rollbacks,
    );
    registry.register(
        "telefig_drift_repairs",
        "Containers the daemon repaired, by cause",
        repairs,
    );
    registry.register(
        "telefig_last_successful_deploy_timestamp_seconds",
        "When the last successful deploy finished, seconds since the epoch",
        last_success,
    );
    registry.register_collector(Box::new(gate_waits));
}

/// `telefig_gate_wait_seconds`: histograms kept by the deploy logs, not
/// observed here, so they are written as they are stored.
#[derive(Debug, Default)]
struct GateWaits(Vec<(Labels, Histogram)>);

impl prometheus_client::collector::Collector for GateWaits {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "telefig_gate_wait_seconds",
            "How long containers took from their start to meeting their gate.",
            None,
            MetricType::Histogram,
        )?;
        for (labels, h) in &self.0 {
            let mut buckets: Vec<(f64, u64)> = GATE_WAIT_BUCKETS
                .iter()
                .zip(h.buckets.iter().chain(std::iter::repeat(&0)))
                .map(|(le, n)| (*le, *n))
                .collect();
            let counted: u64 = buckets.iter().map(|(_, n)| n).sum();
            buckets.push((f64::INFINITY, h.count.saturating_sub(counted)));
            family
                .encode_family(labels)?
                .encode_histogram::<Labels>(h.sum, h.count, &buckets, None)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Deploy, GateWait, Operation, Outcome};

    #[test]
    fn totals_become_counters_a_histogram_and_a_timestamp() {
        let mut log = DeployLog::default();
        let mut d = Deploy::new(Operation::Start, 0);
        d.seq = log.begin(d.clone());
        d.result = Some(Outcome::RolledBack);
        d.finished_at_nanos = Some(7_000_000_000);
        d.rollback_passed = Some(true);
        for seconds in [0.05, 3.0, 900.0] {
            d.gates.push(GateWait {
                container: "web".into(),
                gate: "healthy".into(),
                seconds,
            });
        }
        log.update(d.clone());
        d.seq = log.begin(Deploy::new(Operation::Start, 8));
        d.result = Some(Outcome::Succeeded);
        d.finished_at_nanos = Some(9_000_000_000);
        d.rollback_passed = None;
        d.gates.clear();
        log.update(d);
        let mut registry = Registry::default();
        register(&mut registry, &BTreeMap::from([("shop".to_owned(), log)]));
        let mut om = String::new();
        prometheus_client::encoding::text::encode(&mut om, &registry).unwrap();
        let text = super::super::text_format(&om);
        for line in [
            "# TYPE telefig_deploys_total counter",
            "telefig_deploys_total{serviceset=\"shop\",result=\"rolled_back\"} 1",
            "telefig_deploys_total{serviceset=\"shop\",result=\"succeeded\"} 1",
            "telefig_rollbacks_total{serviceset=\"shop\",result=\"succeeded\"} 1",
            "telefig_last_successful_deploy_timestamp_seconds{serviceset=\"shop\"} 9",
            "# TYPE telefig_gate_wait_seconds histogram",
            "telefig_gate_wait_seconds_bucket{le=\"0.1\",serviceset=\"shop\"} 1",
            "telefig_gate_wait_seconds_bucket{le=\"5.0\",serviceset=\"shop\"} 2",
            "telefig_gate_wait_seconds_bucket{le=\"600.0\",serviceset=\"shop\"} 2",
            "telefig_gate_wait_seconds_bucket{le=\"+Inf\",serviceset=\"shop\"} 3",
            "telefig_gate_wait_seconds_count{serviceset=\"shop\"} 3",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
    }
}
