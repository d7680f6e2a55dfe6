//! Live detection in `serve`: committed events raise alerts after the acknowledgement, once
//! per request whatever stages and retries arrive; a restart replays the stored window so a
//! stateful rule neither forgets nor repeats; a reload refuses rules that do not load and keeps
//! the running ones; `/api/v1/alerts` and `/api/v1/rules` filter, scope and refuse typos.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use kubetrail_api::paths;
use serde_json::{Value, json};

use crate::{Harness, INGEST, PROD_INGEST, PROD_READ, READ};

fn exec(id: &str, stage: &str, time: &str, user: &str, code: u16) -> Value {
    json!({
        "level": "Metadata", "auditID": id, "stage": stage,
        "requestURI": "/api/v1/namespaces/prod/pods/web/exec?command=sh&container=web&stdin=true",
        "verb": "create", "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.0.7"], "userAgent": "kubectl/v1.31.0",
        "objectRef": {"resource": "pods", "namespace": "prod", "name": "web", "apiVersion": "v1", "subresource": "exec"},
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": time, "stageTimestamp": time
    })
}

fn denied(id: &str, time: &str) -> Value {
    json!({
        "level": "Metadata", "auditID": id, "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/kube-system/secrets", "verb": "list",
        "user": {"username": "mallory", "groups": ["system:authenticated"]},
        "sourceIPs": ["203.0.113.9"],
        "objectRef": {"resource": "secrets", "namespace": "kube-system", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 403},
        "requestReceivedTimestamp": time, "stageTimestamp": time
    })
}

async fn post(h: &Harness, cluster: &str, token: &str, items: Vec<Value>) {
    let list = json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items});
    let (status, reply) = h
        .post(
            &format!("{}?cluster={cluster}", paths::WEBHOOK),
            Some(token),
            &[("content-type", "application/json")],
            serde_json::to_vec(&list).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
}

async fn alerts(h: &Harness, query: &str) -> Vec<Value> {
    let (status, reply) = h
        .get(&format!("{}?{query}", paths::ALERTS), Some(READ))
        .await;
    assert_eq!(status, StatusCode::OK, "{query}: {reply}");
    reply["alerts"].as_array().unwrap().clone()
}

/// The alerts `query` lists once detection has caught up with what was committed (it runs
/// after the acknowledgement).
async fn settle(h: &Harness, query: &str) -> Vec<Value> {
    let detector = h.state.detector.clone().expect("this server detects");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !detector.caught_up() {
        assert!(Instant::now() < deadline, "detection did not catch up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    alerts(h, query).await
}

#[tokio::test(flavor = "multi_thread")]
async fn committed_events_raise_one_alert_per_request_whatever_stages_and_retries_arrive() {
    let h = Harness::detecting();
    let batch = vec![
        exec(
            "e1",
            "ResponseStarted",
            "2026-11-01T10:00:01.000000Z",
            "bob",
            101,
        ),
        exec(
            "e1",
            "ResponseComplete",
            "2026-11-01T10:00:01.000000Z",
            "bob",
            101,
        ),
        exec(
            "e2",
            "ResponseStarted",
            "2026-11-01T10:00:02.000000Z",
            "eve",
            403,
        ),
    ];
    post(&h, "kind", INGEST, batch.clone()).await;
    // The apiserver retries a batch it got no answer for.
    post(&h, "kind", INGEST, batch).await;
    let got = settle(&h, "rule=pod-exec").await;
    assert_eq!(got.len(), 1, "{got:?}");
    let a = &got[0];
    assert_eq!(a["auditID"], "e1");
    assert_eq!(a["cluster"], "kind");
    assert_eq!(a["user"], "bob");
    assert_eq!(a["objectRef"]["subresource"], "exec");
    assert_eq!(a["severity"], "medium");
    // The rule catalogue counts it; filters narrow; a token bound to another cluster sees none.
    let (_, rules) = h.get(paths::RULES, Some(READ)).await;
    assert_eq!(rules["detection"], true);
    let exec_rule = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "pod-exec")
        .unwrap();
    assert_eq!(exec_rule["alerts"], 1, "{exec_rule}");
    assert_eq!(rules["rules"].as_array().unwrap().len(), 35);
    assert_eq!(alerts(&h, "rule=pod-exec&user=eve").await.len(), 0);
    assert_eq!(alerts(&h, "rule=pod-exec&minSeverity=high").await.len(), 0);
    assert_eq!(alerts(&h, "rule=pod-exec&severity=medium").await.len(), 1);
    assert_eq!(
        alerts(&h, "rule=pod-exec&from=2026-11-01T10:00:02Z")
            .await
            .len(),
        0
    );
    let (status, scoped) = h.get(paths::ALERTS, Some(PROD_READ)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        scoped["alerts"],
        json!([]),
        "prod's reader sees no kind alert"
    );
    let (status, _) = h
        .get(&format!("{}?cluster=kind", paths::ALERTS), Some(PROD_READ))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, prod_rules) = h.get(paths::RULES, Some(PROD_READ)).await;
    let counted: u64 = prod_rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["alerts"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 0, "counts are scoped too");
    // The metrics count what was raised and stored.
    let metrics = h.get_text(paths::METRICS, Some(crate::ADMIN)).await;
    assert!(
        metrics.contains("kubetrail_alerts_raised_total{rule=\"pod-exec\",severity=\"medium\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kubetrail_alerts_stored_total 1"),
        "{metrics}"
    );

    // An event without an auditID: its alert names the identity the store gave it, so it links
    // to the stored event and is not merged with other such alerts.
    let mut anonymous = exec(
        "x",
        "ResponseStarted",
        "2026-11-01T10:00:03.000000Z",
        "zoe",
        101,
    );
    anonymous.as_object_mut().unwrap().remove("auditID");
    post(&h, "kind", INGEST, vec![anonymous]).await;
    let got = settle(&h, "rule=pod-exec&user=zoe").await;
    assert_eq!(got.len(), 1, "{got:?}");
    let id = got[0]["auditID"].as_str().unwrap().to_string();
    assert!(!id.is_empty());
    let (_, stored) = h
        .get(&format!("{}?user=zoe", paths::EVENTS), Some(READ))
        .await;
    assert_eq!(stored["items"][0]["auditID"], id.as_str(), "{stored}");
}

#[tokio::test(flavor = "multi_thread")]
async fn typos_in_rules_and_severities_are_refused_with_a_hint() {
    let h = Harness::detecting();
    let (status, reply) = h
        .get(&format!("{}?rule=pod-exek", paths::ALERTS), Some(READ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("did you mean \"pod-exec\""),
        "{reply}"
    );
    let (status, reply) = h
        .get(&format!("{}?severity=hgih", paths::ALERTS), Some(READ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        reply["error"].as_str().unwrap().contains("critical"),
        "{reply}"
    );
    let (status, _) = h
        .get(&format!("{}?verb=get", paths::ALERTS), Some(READ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = h.get(&format!("{}?x=1", paths::RULES), Some(READ)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Without detection the catalogue says so, and alerts are still listed.
    let off = Harness::new();
    let (_, rules) = off.get(paths::RULES, Some(READ)).await;
    assert_eq!(rules, json!({"detection": false, "rules": []}));
    assert_eq!(alerts(&off, "").await.len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_replays_the_window_so_a_threshold_neither_forgets_nor_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn kubetrail_store::Store> =
        Arc::new(kubetrail_store_duckdb::DuckDbStore::open(dir.path()).unwrap());
    let second = |i: u32| format!("2026-11-01T10:01:{i:02}.000000Z");
    {
        // Nineteen denials: one short of forbidden-burst's threshold of 20 in 5 minutes.
        let h = Harness::detecting_over(store.clone(), tempfile::tempdir().unwrap());
        let items = (0..19)
            .map(|i| denied(&format!("d{i}"), &second(i)))
            .collect();
        post(&h, "prod", PROD_INGEST, items).await;
        // An exec committed while detection is down is seen on the restart's replay.
        let unseen = Harness::over(
            store.clone(),
            kubetrail_server::Limits::default(),
            tempfile::tempdir().unwrap(),
        );
        post(
            &unseen,
            "prod",
            PROD_INGEST,
            vec![exec("x1", "ResponseComplete", &second(30), "bob", 101)],
        )
        .await;
        assert_eq!(settle(&h, "rule=forbidden-burst").await.len(), 0);
        assert_eq!(
            settle(&h, "rule=pod-exec").await.len(),
            0,
            "that server did not see it"
        );
    }
    let h = Harness::detecting_over(store.clone(), dir);
    let got = settle(&h, "rule=pod-exec").await;
    assert_eq!(
        got.len(),
        1,
        "the replay evaluated the exec committed while down"
    );
    post(&h, "prod", PROD_INGEST, vec![denied("d19", &second(40))]).await;
    let got = settle(&h, "rule=forbidden-burst").await;
    assert_eq!(
        got.len(),
        1,
        "the twentieth denial after the restart completes the burst"
    );
    assert_eq!(got[0]["auditID"], "d19");
    assert_eq!(
        got[0]["relatedAuditIDs"].as_array().unwrap().len(),
        19,
        "{}",
        got[0]
    );
    // Another restart replays all twenty again: the stored alerts stay one each.
    let again = Harness::detecting_over(store, tempfile::tempdir().unwrap());
    assert_eq!(settle(&again, "rule=forbidden-burst").await.len(), 1);
    assert_eq!(settle(&again, "rule=pod-exec").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_refuses_rules_that_do_not_load_and_keeps_the_running_ones() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    let rule = |id: &str| {
        format!(
            "rules:\n  - id: {id}\n    title: Pods deleted\n    severity: low\n    level: Metadata\n    match: {{verbs: [delete], resources: [pods]}}\n"
        )
    };
    std::fs::write(&file, rule("delete-pods")).unwrap();
    let path = file.clone();
    let loader: kubetrail_server::RuleLoader = Arc::new(move || {
        let rt = kubetrail_detect::Runtime::new();
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        let rules = kubetrail_detect::load(
            &rt,
            false,
            &[("rules.yaml".into(), text)],
            &kubetrail_detect::Overrides::new(),
        )
        .map_err(|e| {
            e.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        Ok((rt, rules))
    });
    let store: Arc<dyn kubetrail_store::Store> =
        Arc::new(kubetrail_store_duckdb::DuckDbStore::open(dir.path()).unwrap());
    let mut h = Harness::over(
        store,
        kubetrail_server::Limits::default(),
        tempfile::tempdir().unwrap(),
    );
    let state = Arc::into_inner(h.state).unwrap();
    h.state = Arc::new(state.with_detection(loader).unwrap());
    let detector = h.state.detector.clone().unwrap();
    let ids =
        |d: &kubetrail_server::Detector| d.rules().into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(&detector), ["delete-pods"]);
    std::fs::write(&file, "rules:\n  - id: broken\n    severity: nope\n").unwrap();
    let e = detector.reload().unwrap_err();
    assert!(e.contains("rules.yaml"), "{e}");
    assert_eq!(ids(&detector), ["delete-pods"], "the running rules stay");
    std::fs::write(&file, rule("pod-deletions")).unwrap();
    assert_eq!(detector.reload(), Ok(1));
    assert_eq!(ids(&detector), ["pod-deletions"]);
    let mut delete = exec(
        "del1",
        "ResponseComplete",
        "2026-11-01T11:00:00.000000Z",
        "ann",
        200,
    );
    delete["verb"] = json!("delete");
    delete["objectRef"] =
        json!({"resource": "pods", "namespace": "prod", "name": "web", "apiVersion": "v1"});
    post(&h, "kind", INGEST, vec![delete]).await;
    let got = settle(&h, "rule=pod-deletions").await;
    assert_eq!(got.len(), 1, "the reloaded rule runs");
    let metrics = h.get_text(paths::METRICS, Some(crate::ADMIN)).await;
    assert!(
        metrics.contains("kubetrail_detection_reloads_total{outcome=\"refused\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kubetrail_detection_reloads_total{outcome=\"applied\"} 1"),
        "{metrics}"
    );
}
