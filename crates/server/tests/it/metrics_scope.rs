//! `/metrics` honours a token's cluster binding as the JSON endpoints do: a bound token sees
//! only the series of its cluster, none of another's and none that add up every cluster; an
//! unbound token sees everything.

use axum::http::StatusCode;
use kubetrail_api::paths;

use crate::{Harness, INGEST, PROD_INGEST, PROD_READ, READ, event_list};

const JSON: (&str, &str) = ("content-type", "application/json");

async fn two_clusters() -> Harness {
    let h = Harness::new();
    let (body, _) = event_list("real-audit/audit2rbac-v1.jsonl", "audit.k8s.io/v1");
    let (status, _) = h
        .post(paths::WEBHOOK, Some(PROD_INGEST), &[JSON], body)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (body, _) = event_list("real-audit/falco-k8saudit.jsonl", "audit.k8s.io/v1");
    let (status, _) = h
        .post(
            &format!("{}?cluster=dev", paths::WEBHOOK),
            Some(INGEST),
            &[JSON],
            body,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for (token, node) in [(PROD_INGEST, "cp-prod"), (INGEST, "cp-dev")] {
        let cluster = if token == INGEST { "dev" } else { "" };
        let status = serde_json::json!({
            "node": node, "cluster": cluster, "lagBytes": 7, "pendingFiles": 1,
            "shippedEvents": 3, "droppedBytes": 0,
            "gaps": [{"id": "g1", "file": "/var/log/kubernetes/kubernetes.audit",
                      "fingerprint": "ab", "fromOffset": 0, "bytes": 9,
                      "detectedAt": "2024-01-01T00:00:01Z", "reason": "rotated away"}]
        });
        let (code, reply) = h
            .post(
                paths::AGENT_STATUS,
                Some(token),
                &[JSON],
                serde_json::to_vec(&status).unwrap(),
            )
            .await;
        assert_eq!(code, StatusCode::OK, "{reply}");
    }
    h
}

/// The sample lines (not comments) of an OpenMetrics text.
fn samples(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.starts_with('#')).collect()
}

#[tokio::test]
async fn a_bound_token_sees_only_its_clusters_series() {
    let h = two_clusters().await;
    let all = h.get_text(paths::METRICS, Some(READ)).await;
    assert!(all.contains("cluster=\"dev\""), "{all}");
    assert!(all.contains("cluster=\"prod\""), "{all}");

    let prod = h.get_text(paths::METRICS, Some(PROD_READ)).await;
    assert!(!prod.contains("cluster=\"dev\""), "{prod}");
    assert!(!prod.contains("cp-dev"), "{prod}");
    for line in samples(&prod) {
        assert!(
            line.starts_with("kubetrail_auth_failures") || line.contains("cluster=\"prod\""),
            "a series of no cluster or another: {line}"
        );
    }
    // Its own series are all there, with the same values as the unbound view's.
    for series in [
        "kubetrail_events_received_total{source=\"webhook\",cluster=\"prod\"}",
        "kubetrail_events_stored_total{source=\"webhook\",cluster=\"prod\"}",
        "kubetrail_agent_status_lag_bytes{cluster=\"prod\",node=\"cp-prod\"}",
        "kubetrail_agent_status_gaps_total{cluster=\"prod\",node=\"cp-prod\"}",
        "kubetrail_last_event_timestamp_seconds{cluster=\"prod\"}",
    ] {
        let value = |text: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(series))
                .map(str::trim)
                .map(str::to_string)
        };
        assert!(value(&prod).is_some(), "no {series} in {prod}");
        assert_eq!(value(&prod), value(&all), "{series}");
    }
    // The totals over every cluster are not shown to it.
    assert!(!prod.contains("kubetrail_store_events"), "{prod}");
    assert!(!prod.contains("kubetrail_store_bytes"), "{prod}");
    assert!(!prod.contains("kubetrail_batch_commit_seconds"), "{prod}");
    assert!(!prod.contains("kubetrail_store_operation"), "{prod}");
    // The unbound view times every store operation, the appends of the batches above
    // included, in one place.
    for op in ["append", "stats"] {
        let count = format!("kubetrail_store_operation_seconds_count{{operation=\"{op}\"}} ");
        let n = all
            .lines()
            .find_map(|l| l.strip_prefix(&count))
            .and_then(|v| v.trim().parse::<u64>().ok());
        assert!(n.is_some_and(|n| n > 0), "no {count} in {all}");
    }
    assert!(prod.trim_end().ends_with("# EOF"), "{prod}");
}

#[tokio::test]
async fn the_newest_event_time_of_each_cluster_is_a_gauge_that_a_backfill_does_not_move_back() {
    let h = two_clusters().await;
    let all = h.get_text(paths::METRICS, Some(READ)).await;
    let value = |text: &str, cluster: &str| -> Option<i64> {
        let series = format!("kubetrail_last_event_timestamp_seconds{{cluster=\"{cluster}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.trim().parse().ok())
    };
    // The Falco capture's newest event, read off the file.
    let newest = std::fs::read_to_string(crate::testdata("real-audit/falco-k8saudit.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|e| {
            let t = e["stageTimestamp"].as_str()?.to_string();
            chrono::DateTime::parse_from_rfc3339(&t)
                .ok()
                .map(|t| t.timestamp())
        })
        .max()
        .unwrap();
    assert_eq!(value(&all, "dev"), Some(newest), "{all}");
    // An older batch from the same cluster leaves it.
    let old = r#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{"level":"Metadata","auditID":"0ld","stage":"ResponseComplete","requestURI":"/api","verb":"get","stageTimestamp":"2001-01-01T00:00:00Z"}]}"#;
    let (status, _) = h
        .post(
            &format!("{}?cluster=dev", paths::WEBHOOK),
            Some(INGEST),
            &[JSON],
            old.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let after = h.get_text(paths::METRICS, Some(READ)).await;
    assert_eq!(value(&after, "dev"), Some(newest));
}
