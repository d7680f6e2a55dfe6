//! The hash chain seen through the server: `POST /api/v1/verify` with the caller's key and
//! checkpoint, the public keys and the checkpoint, the continuous check's status on the
//! overview and in `/metrics`, and refusals for tokens bound to a cluster.

use std::sync::Arc;

use axum::http::StatusCode;
use kubetrail_api::paths;
use kubetrail_store::Store;
use kubetrail_store::chain::Chain;
use kubetrail_store_duckdb::{DuckDbStore, testing};
use kubetrail_trust::SigningKey;

use crate::openapi::check;
use crate::web::{page, sign_in};
use crate::{Harness, INGEST, PROD_READ, READ, event_list};

fn chained() -> (Harness, kubetrail_trust::PublicKey, Arc<DuckDbStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(DuckDbStore::open(dir.path()).unwrap());
    let (key, _) = SigningKey::generate().unwrap();
    let public = key.public_key();
    store
        .set_chain(Arc::new(Chain::new(Box::new(key))))
        .unwrap();
    let mut h = Harness::over(store.clone(), kubetrail_server::Limits::default(), dir);
    let state = Arc::into_inner(h.state).expect("nothing else holds a new state");
    h.state = Arc::new(state.with_integrity(public.clone()));
    (h, public, store)
}

fn spec() -> serde_json::Value {
    serde_json::from_str(kubetrail_server::OPENAPI_JSON).unwrap()
}

#[tokio::test]
async fn the_server_verifies_its_chain_and_shows_it() {
    let (h, public, duck) = chained();
    let (body, n) = event_list("real-audit/audit2rbac-v1.jsonl", "audit.k8s.io/v1");
    let (status, reply) = h
        .post(
            &format!("{}?cluster=prod", paths::WEBHOOK),
            Some(INGEST),
            &[("content-type", "application/json")],
            body,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let doc = spec();
    let schema = &doc["components"]["schemas"]["VerifyReport"];

    // With the caller's key.
    let ask = serde_json::json!({ "publicKeys": [public.to_pem()], "cluster": "prod" });
    let (status, report) = h
        .post(paths::VERIFY, Some(READ), &[], ask.to_string().into_bytes())
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    check(&doc, schema, &report, "verify").unwrap();
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["keys"], "given");
    assert_eq!(report["chains"][0]["eventsVerified"], n as u64);
    // A typo'd cluster is named, not an empty report.
    let (status, reply) = h
        .post(
            paths::VERIFY,
            Some(READ),
            &[],
            br#"{"cluster":"prd"}"#.to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("prd"), "{reply}");
    for bad in [
        &br#"{"publicKeys":["x"]}"#[..],
        br#"{"cluster":null}"#,
        br#"{"nope":1}"#,
        b"[null, null]",
    ] {
        let (status, reply) = h.post(paths::VERIFY, Some(READ), &[], bad.to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    }
    // A reader bound to a cluster may not verify (the report names every cluster's events).
    let (status, _) = h
        .post(paths::VERIFY, Some(PROD_READ), &[], Vec::new())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let pem = h.get_text(paths::CHAIN_PUBLIC_KEYS, Some(READ)).await;
    assert_eq!(pem, public.to_pem());
    let (status, cp) = h.get(paths::CHAIN_CHECKPOINT, Some(READ)).await;
    assert_eq!(status, StatusCode::OK);
    check(
        &doc,
        &doc["components"]["schemas"]["Checkpoint"],
        &cp,
        "checkpoint",
    )
    .unwrap();
    assert_eq!(cp["heads"][0]["cluster"], "prod");

    // The continuous check finds it intact, and says so on the overview and in /metrics.
    let integrity = h.state.integrity.clone().unwrap();
    integrity.check(h.store.as_ref(), 0);
    let (cookie, _) = sign_in(&h, READ).await;
    let (status, html, _) = h.send(page("/", Some(&cookie))).await;
    assert_eq!(status, StatusCode::OK);
    let html = String::from_utf8(html).unwrap();
    assert!(html.contains(r#"data-integrity="intact""#), "{html}");
    let metrics = h.get_text(paths::METRICS, Some(READ)).await;
    assert!(metrics.contains("kubetrail_chain_intact 1"), "{metrics}");

    // An event changed behind the server's back: the next check reports it.
    let victim = testing::query_open(&duck, "SELECT audit_id FROM events ORDER BY ts LIMIT 1")
        .unwrap()
        .remove(0);
    testing::execute_open(
        &duck,
        &format!("UPDATE events SET username = 'nobody' WHERE audit_id = '{victim}'"),
    )
    .unwrap();
    integrity.check(h.store.as_ref(), 0);
    let status_now = integrity.status();
    assert!(status_now.problems >= 1, "{status_now:?}");
    assert!(status_now.first[0].1.contains(&victim), "{status_now:?}");
    assert!(
        status_now.first[0].1.starts_with("changed:"),
        "{status_now:?}"
    );
    let (_, html, _) = h.send(page("/", Some(&cookie))).await;
    let html = String::from_utf8(html).unwrap();
    assert!(html.contains(r#"data-integrity="broken""#), "{html}");
    assert!(html.contains(&victim), "{html}");
    let metrics = h.get_text(paths::METRICS, Some(READ)).await;
    assert!(metrics.contains("kubetrail_chain_intact 0"), "{metrics}");
    // A reader bound to prod sees its cluster's problem too.
    let (cookie, _) = sign_in(&h, PROD_READ).await;
    let (_, html, _) = h.send(page("/", Some(&cookie))).await;
    let html = String::from_utf8(html).unwrap();
    assert!(
        html.contains(r#"data-integrity="broken""#),
        "prod's own problem: {html}"
    );
    // Checked again, the same problem counts once.
    let before = integrity.status().problems;
    integrity.check(h.store.as_ref(), 0);
    assert_eq!(integrity.status().problems, before);

    // The newest link removed with its events, which no signature can show: the server
    // remembers the head it saw.
    testing::execute_open(
        &duck,
        "DELETE FROM events WHERE chain_batch IN (SELECT batch FROM chain); DELETE FROM chain;",
    )
    .unwrap();
    integrity.check(h.store.as_ref(), 0);
    let status_now = integrity.status();
    assert_eq!(status_now.problems, before + 1, "{status_now:?}");
    assert!(
        status_now.first[0].1.starts_with("truncated:"),
        "{status_now:?}"
    );
}
