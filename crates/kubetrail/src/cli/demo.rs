//! `kubetrail serve --demo`: a throwaway data directory loaded with the bundled real audit
//! samples (each as its own cluster) and a week of generated traffic for two clusters ending
//! now, so the web UI has something true to show on first start. The default detection pack
//! runs over all of it as it is loaded, so the Alerts page has the alerts of that week.

use anyhow::{Context, Result};
use chrono::Utc;
use kubetrail_model::decode_event;
use kubetrail_store::intake::redacted;
use kubetrail_store::{Record, Store};
use kubetrail_traffic::{Config, Generator};

use super::generate::seed_policy;

/// The real samples: (cluster, JSON lines). Their own SOURCES.md says where each comes from.
const SAMPLES: [(&str, &str); 4] = [
    (
        "falco",
        include_str!("../../../../testdata/real-audit/falco-k8saudit.jsonl"),
    ),
    (
        "audit2rbac",
        include_str!("../../../../testdata/real-audit/audit2rbac-v1.jsonl"),
    ),
    (
        "audit2rbac-v1beta1",
        include_str!("../../../../testdata/real-audit/audit2rbac-v1beta1.jsonl"),
    ),
    (
        "panther",
        include_str!("../../../../testdata/real-audit/panther.jsonl"),
    ),
];

/// Clusters of generated traffic.
const GENERATED: [&str; 2] = ["prod", "staging"];

/// How far back generated traffic starts.
const WEEK_MICROS: i64 = 7 * 86_400 * 1_000_000;

/// Events per append.
const BATCH: usize = 20_000;

/// What the demo loaded.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Events from the real samples.
    pub samples: u64,
    /// Generated events.
    pub generated: u64,
    /// Alerts the default pack raised over both.
    pub alerts: u64,
}

/// Loads the samples and about `events` generated events ending now into `store`.
pub fn load(
    store: &dyn Store,
    events: u64,
    redact: Option<&kubetrail_redact::Redactor>,
) -> Result<Loaded> {
    let now = Utc::now();
    let received = now.timestamp_micros();
    let mut loaded = Loaded::default();
    let rt = kubetrail_detect::Runtime::new();
    let rules = kubetrail_detect::load(&rt, true, &[], &kubetrail_detect::Overrides::new())
        .map_err(|e| anyhow::anyhow!("the default pack does not load: {e:?}"))?;
    let mut engine = kubetrail_detect::Engine::new(rt, rules);
    let mut alerts = Vec::new();
    for (cluster, text) in SAMPLES {
        let batch: Vec<Record> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| {
                let e = decode_event(l.as_bytes()).ok()?;
                let (e, l) = redacted(e, l.to_string(), redact).ok()?;
                engine.observe(&e, cluster, &mut alerts);
                Some(Record::from_event(e, l, cluster, received))
            })
            .collect();
        loaded.samples += store
            .append(&batch)
            .with_context(|| format!("storing the {cluster} sample"))?
            .stored;
    }
    let policy = seed_policy()?;
    let requests_per_cluster =
        events as f64 / kubetrail_traffic::EVENTS_PER_REQUEST / GENERATED.len() as f64;
    let rate = (requests_per_cluster / (WEEK_MICROS as f64 / 1e6)).max(0.001);
    let start = now - chrono::Duration::microseconds(WEEK_MICROS);
    let now_micros = now.timestamp_micros();
    for (i, cluster) in GENERATED.iter().enumerate() {
        let mut generator = Generator::new(
            &policy,
            &Config {
                seed: 7,
                start,
                rate,
                cluster: i as u32,
            },
        );
        let mut out = Vec::new();
        let mut batch = Vec::with_capacity(BATCH);
        'generate: loop {
            out.clear();
            generator.next_request(&mut out);
            for e in &out {
                if e.ts_micros > now_micros {
                    break 'generate;
                }
                if let Ok(event) = decode_event(e.json.as_bytes())
                    && let Ok((event, json)) = redacted(event, e.json.clone(), redact)
                {
                    engine.observe(&event, cluster, &mut alerts);
                    batch.push(Record::from_event(event, json, cluster, received));
                }
            }
            if batch.len() >= BATCH {
                loaded.generated += store
                    .append(&batch)
                    .context("storing generated events")?
                    .stored;
                batch.clear();
            }
        }
        loaded.generated += store
            .append(&batch)
            .context("storing generated events")?
            .stored;
    }
    let records = alerts
        .iter()
        .map(kubetrail_server::detection::alert_record)
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    loaded.alerts = store
        .append_alerts(&records)
        .context("storing the alerts")? as u64;
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_holds_every_sample_and_a_week_of_traffic() {
        let store = kubetrail_store_duckdb::DuckDbStore::open_in_memory().unwrap();
        let redactor =
            kubetrail_redact::Redactor::new(&kubetrail_redact::Key::from_bytes([3; 32]), &[])
                .unwrap();
        let loaded = load(&store, 20_000, Some(&redactor)).unwrap();
        let sample_lines: u64 = SAMPLES
            .iter()
            .map(|(_, t)| t.lines().filter(|l| !l.trim().is_empty()).count() as u64)
            .sum();
        // Every sample line but the few that repeat an event.
        assert!(loaded.samples <= sample_lines && loaded.samples > sample_lines * 9 / 10);
        assert!(
            (14_000..26_000).contains(&loaded.generated),
            "{}",
            loaded.generated
        );
        assert_eq!(store.count().unwrap(), loaded.samples + loaded.generated);
        // The pack ran over it: the samples' execs and the week's human exec sessions alert.
        let by_rule = store
            .count_alerts(&Default::default(), kubetrail_store::AlertField::Rule)
            .unwrap();
        assert_eq!(by_rule.iter().map(|(_, n)| n).sum::<u64>(), loaded.alerts);
        assert!(by_rule.iter().any(|(r, _)| r == "pod-exec"), "{by_rule:?}");
    }
}
