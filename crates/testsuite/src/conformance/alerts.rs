//! Alerts: stored once per (cluster, rule, auditID), filtered, counted, newest first.

use kubetrail_store::{AlertField, AlertFilter, AlertRecord, Store, TimeRange};

use super::{S, T0};

fn alert(cluster: &str, rule: &str, audit_id: &str, severity: &str, ts: i64) -> AlertRecord {
    AlertRecord {
        cluster: cluster.into(),
        rule: rule.into(),
        audit_id: audit_id.into(),
        severity: severity.into(),
        ts_micros: ts,
        user: format!("user-of-{audit_id}"),
        namespace: if rule == "rbac-change" { "" } else { "prod" }.into(),
        resource: "pods".into(),
        name: "web".into(),
        json: format!(r#"{{"rule":"{rule}","auditID":"{audit_id}","quote":"it's \"x\""}}"#),
    }
}

fn keys(alerts: &[AlertRecord]) -> Vec<(String, String)> {
    alerts
        .iter()
        .map(|a| (a.rule.clone(), a.audit_id.clone()))
        .collect()
}

/// Alerts: one per (cluster, rule, auditID) however often stored, given back unchanged, newest
/// first, filtered by every field, counted by rule, severity and cluster.
pub fn alerts_are_stored_once_filtered_and_counted(store: &dyn Store) {
    let batch = vec![
        alert("a", "pod-exec", "1", "medium", T0),
        alert("a", "pod-exec", "1", "medium", T0), // the same alert twice in one batch
        alert("a", "exec-into-privileged-pod", "1", "critical", T0),
        alert("a", "pod-exec", "2", "medium", T0 + S),
        alert("b", "pod-exec", "1", "medium", T0 + 2 * S), // another cluster's auditID 1
        alert("a", "rbac-change", "3", "high", T0 + 3 * S),
    ];
    assert_eq!(store.append_alerts(&batch).unwrap(), 5);
    // Evaluated again (a re-import, a restart replaying its window): nothing new.
    assert_eq!(store.append_alerts(&batch).unwrap(), 0);
    assert_eq!(
        store
            .append_alerts(&[alert("a", "pod-exec", "4", "medium", T0 + 4 * S)])
            .unwrap(),
        1
    );

    let all = store.query_alerts(&AlertFilter::default(), 100).unwrap();
    assert_eq!(
        keys(&all),
        [
            ("pod-exec".to_string(), "4".to_string()),
            ("rbac-change".into(), "3".into()),
            ("pod-exec".into(), "1".into()),
            ("pod-exec".into(), "2".into()),
            ("exec-into-privileged-pod".into(), "1".into()),
            ("pod-exec".into(), "1".into()),
        ]
    );
    assert_eq!(all[2].cluster, "b");
    // What was stored comes back unchanged, quotes and all.
    let first = &batch[2];
    let back = all.iter().find(|a| a.rule == first.rule).unwrap();
    assert_eq!(back, first);

    assert_eq!(
        store
            .query_alerts(&AlertFilter::default(), 2)
            .unwrap()
            .len(),
        2
    );
    let f = |f: AlertFilter| keys(&store.query_alerts(&f, 100).unwrap());
    assert_eq!(
        f(AlertFilter {
            severities: vec!["high".into(), "critical".into()],
            ..AlertFilter::default()
        }),
        [
            ("rbac-change".to_string(), "3".to_string()),
            ("exec-into-privileged-pod".into(), "1".into())
        ]
    );
    assert_eq!(
        f(AlertFilter {
            clusters: vec!["a".into()],
            rules: vec!["pod-exec".into()],
            time: TimeRange {
                from_micros: Some(T0 + S),
                to_micros: Some(T0 + 4 * S),
            },
            ..AlertFilter::default()
        }),
        [("pod-exec".to_string(), "2".to_string())]
    );
    assert_eq!(
        f(AlertFilter {
            namespaces: vec![String::new()],
            users: vec!["user-of-3".into()],
            ..AlertFilter::default()
        }),
        [("rbac-change".to_string(), "3".to_string())]
    );
    assert_eq!(
        f(AlertFilter {
            audit_ids: vec!["1".into()],
            clusters: vec!["a".into()],
            ..AlertFilter::default()
        }),
        [
            ("exec-into-privileged-pod".to_string(), "1".to_string()),
            ("pod-exec".into(), "1".into())
        ]
    );
    assert!(
        f(AlertFilter {
            rules: vec!["no-such-rule".into()],
            ..AlertFilter::default()
        })
        .is_empty()
    );

    let by_rule = store
        .count_alerts(&AlertFilter::default(), AlertField::Rule)
        .unwrap();
    assert_eq!(
        by_rule,
        [
            ("pod-exec".to_string(), 4),
            ("exec-into-privileged-pod".into(), 1),
            ("rbac-change".into(), 1)
        ]
    );
    let by_severity = store
        .count_alerts(
            &AlertFilter {
                clusters: vec!["a".into()],
                ..AlertFilter::default()
            },
            AlertField::Severity,
        )
        .unwrap();
    assert_eq!(
        by_severity,
        [
            ("medium".to_string(), 3),
            ("critical".into(), 1),
            ("high".into(), 1)
        ]
    );
    let by_cluster = store
        .count_alerts(&AlertFilter::default(), AlertField::Cluster)
        .unwrap();
    assert_eq!(by_cluster, [("a".to_string(), 5), ("b".into(), 1)]);

    // A large batch (more rows than one statement carries), with repeats inside it and of
    // stored alerts: each new alert is counted once.
    let mut many: Vec<AlertRecord> = (0..450)
        .map(|i| alert("bulk", "pod-exec", &format!("m{i}"), "low", T0 + i))
        .collect();
    many.extend((0..10).map(|i| alert("bulk", "pod-exec", &format!("m{i}"), "low", T0 + i)));
    many.push(alert("a", "pod-exec", "4", "medium", T0 + 4 * S));
    assert_eq!(store.append_alerts(&many).unwrap(), 450);
    let bulk = AlertFilter {
        clusters: vec!["bulk".into()],
        ..AlertFilter::default()
    };
    assert_eq!(store.query_alerts(&bulk, 1000).unwrap().len(), 450);
    assert_eq!(
        store.count_alerts(&bulk, AlertField::Rule).unwrap(),
        [("pod-exec".to_string(), 450)]
    );
}
