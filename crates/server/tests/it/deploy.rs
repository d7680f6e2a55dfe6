//! The Prometheus rules and the Grafana dashboard in `deploy/` name only metrics the server
//! documents (docs/metrics.md); a renamed metric fails here instead of silencing an alert.

use std::collections::BTreeSet;
use std::path::PathBuf;

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

/// `kubetrail_*` names in `text`, as metric families: a sample's `_total`, `_bucket`, `_sum`
/// and `_count` suffixes belong to the family.
fn families(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("kubetrail_") {
        let start = i + at;
        let end = start
            + text[start..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(text.len() - start);
        // A word that only contains the name (a job label, a file name) is not a metric.
        let before = start.checked_sub(1).map(|b| bytes[b]);
        if !before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            let mut name = &text[start..end];
            for suffix in ["_bucket", "_sum", "_count", "_total"] {
                name = name.strip_suffix(suffix).unwrap_or(name);
            }
            out.insert(name.to_string());
        }
        i = end;
    }
    out
}

#[test]
fn rules_and_dashboard_use_documented_metrics() {
    let documented = families(&std::fs::read_to_string(repo("docs/metrics.md")).unwrap());
    let rules = std::fs::read_to_string(repo("deploy/prometheus/rules.yaml")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo("deploy/grafana/kubetrail-pipeline.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect();
    assert!(exprs.len() >= 10, "{} queries", exprs.len());
    let used = families(&rules);
    assert!(used.len() >= 10, "{used:?}");
    for (what, names) in [
        ("rules.yaml", used),
        ("the dashboard", families(&exprs.join("\n"))),
    ] {
        let unknown: Vec<&String> = names.difference(&documented).collect();
        assert!(
            unknown.is_empty(),
            "{what} names undocumented metrics {unknown:?}"
        );
    }
    // The check itself tells a documented name from an invented one.
    assert!(!documented.contains("kubetrail_events_lost"));
    assert!(documented.contains("kubetrail_last_event_timestamp_seconds"));
}
