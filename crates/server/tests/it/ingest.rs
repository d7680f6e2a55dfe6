//! Webhook and agent ingest: acknowledged only after commit, retries leave no duplicates, bad
//! input is refused with a reason and stores nothing, roles and cluster bindings hold.

use std::io::Write;

use axum::http::StatusCode;
use kubetrail_api::paths;
use kubetrail_store::{Filter, Store};

use crate::{ADMIN, Harness, INGEST, PROD_INGEST, READ, event_list};

const JSON: (&str, &str) = ("content-type", "application/json");

#[tokio::test]
async fn a_webhook_batch_is_stored_once_however_often_it_is_retried() {
    let h = Harness::new();
    let (body, n) = event_list("real-audit/audit2rbac-v1.jsonl", "audit.k8s.io/v1");
    let uri = format!("{}?cluster=kind", paths::WEBHOOK);
    let (status, reply) = h.post(&uri, Some(INGEST), &[JSON], body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["received"], n);
    assert_eq!(reply["stored"], n);
    assert_eq!(h.store.count().unwrap(), n as u64);

    // The apiserver retries a batch whose answer it did not see.
    let (status, reply) = h.post(&uri, Some(INGEST), &[JSON], body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply["stored"], 0);
    assert_eq!(reply["duplicates"], n);
    assert_eq!(h.store.count().unwrap(), n as u64);

    // Stored events are self-describing v1 events of the cluster in the URL.
    let page = h.store.query(&Filter::default(), None, 1).unwrap();
    let r = &page.records[0];
    assert_eq!(r.cluster, "kind");
    let event: serde_json::Value = serde_json::from_str(&r.raw).unwrap();
    assert_eq!(event["kind"], "Event");
    assert_eq!(event["apiVersion"], "audit.k8s.io/v1");
    assert_eq!(event["auditID"], r.audit_id.as_str());
}

#[tokio::test]
async fn a_v1beta1_event_list_is_accepted_and_stored_as_v1() {
    let h = Harness::new();
    let (body, n) = event_list(
        "real-audit/audit2rbac-v1beta1.jsonl",
        "audit.k8s.io/v1beta1",
    );
    let (status, reply) = h.post(paths::WEBHOOK, Some(INGEST), &[JSON], body).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["stored"], n);
    // The impersonation the capture is known for: system:admin acting as bob.
    let f = Filter {
        users: vec!["system:admin".into()],
        ..Filter::default()
    };
    let page = h.store.query(&f, None, 1000).unwrap();
    assert_eq!(
        page.records.len(),
        n,
        "every request of the capture is system:admin's"
    );
    let as_bob = page
        .records
        .iter()
        .filter(|r| r.impersonated_user == "bob")
        .count();
    assert_eq!(as_bob, 29, "bob is impersonated 29 times in the capture");
    assert!(page.records.iter().all(|r| r.cluster == "default"));
    let event: serde_json::Value = serde_json::from_str(&page.records[0].raw).unwrap();
    assert_eq!(event["apiVersion"], "audit.k8s.io/v1");
    assert!(
        event["stageTimestamp"].is_string(),
        "v1beta1 timestamp mapped: {event}"
    );
}

#[tokio::test]
async fn a_malformed_webhook_body_is_refused_whole_and_stores_nothing() {
    let h = Harness::new();
    let (good, _) = event_list("real-audit/audit2rbac-v1.jsonl", "audit.k8s.io/v1");
    let mut list: serde_json::Value = serde_json::from_slice(&good).unwrap();
    // One bad item among good ones: the whole batch is refused.
    list["items"][3]["stage"] = serde_json::json!("Sometime");
    for (body, needle) in [
        (serde_json::to_vec(&list).unwrap(), "items[3]"),
        (b"{\"kind\":\"EventList\",\"items\":[".to_vec(), "EventList"),
        (b"[1,2]".to_vec(), "EventList"),
        (b"{\"kind\":\"Event\"}".to_vec(), "kind"),
    ] {
        let (status, reply) = h.post(paths::WEBHOOK, Some(INGEST), &[JSON], body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
        let reason = reply["error"].as_str().unwrap();
        assert!(reason.contains(needle), "{reason}");
    }
    assert_eq!(h.store.count().unwrap(), 0);
}

#[tokio::test]
async fn an_oversize_body_is_refused_with_413() {
    let h = Harness::with_limits(kubetrail_server::Limits {
        max_body_bytes: 4096,
    });
    let (body, _) = event_list("real-audit/audit2rbac-v1.jsonl", "audit.k8s.io/v1");
    assert!(body.len() > 4096);
    let (status, _) = h.post(paths::WEBHOOK, Some(INGEST), &[JSON], body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(h.store.count().unwrap(), 0);
}

#[tokio::test]
async fn the_default_limit_takes_400_request_response_events() {
    // 400 events of about 100 KiB each: the apiserver's largest default batch after truncation.
    let h = Harness::new();
    let (body, _) = event_list("real-audit/audit2rbac-v1.jsonl", "audit.k8s.io/v1");
    let list: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let template = list["items"][0].clone();
    let filler = "x".repeat(100 * 1024);
    let items: Vec<serde_json::Value> = (0..400)
        .map(|i| {
            let mut e = template.clone();
            e["auditID"] = serde_json::json!(format!("big-{i}"));
            e["level"] = serde_json::json!("RequestResponse");
            e["requestObject"] = serde_json::json!({ "data": filler });
            e
        })
        .collect();
    let big = serde_json::to_vec(
        &serde_json::json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}),
    )
    .unwrap();
    assert!(big.len() > 40_000_000, "{}", big.len());
    let (status, reply) = h.post(paths::WEBHOOK, Some(INGEST), &[JSON], big).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["stored"], 400);
}

#[tokio::test]
async fn missing_wrong_and_read_only_tokens_are_refused() {
    let h = Harness::new();
    let (body, _) = event_list("real-audit/audit2rbac-v1.jsonl", "audit.k8s.io/v1");
    let (status, reply) = h.post(paths::WEBHOOK, None, &[JSON], body.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");
    let (status, _) = h
        .post(
            paths::WEBHOOK,
            Some("not-a-token-of-ours-at-all"),
            &[JSON],
            body.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, reply) = h
        .post(
            paths::WEBHOOK,
            None,
            &[JSON, ("authorization", "Basic YWxpY2U6cHc=")],
            body.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(reply["error"].as_str().unwrap().contains("Bearer"));
    let (status, reply) = h
        .post(paths::WEBHOOK, Some(READ), &[JSON], body.clone())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("needs ingest"));
    // An ingest token cannot read.
    let (status, _) = h.get(paths::EVENTS, Some(INGEST)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(h.store.count().unwrap(), 0);
    // Admin may do both.
    let (status, _) = h.post(paths::WEBHOOK, Some(ADMIN), &[JSON], body).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h.get(paths::EVENTS, Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK);

    // 401s carry the challenge.
    let (_, _, headers) = h
        .send(
            axum::http::Request::get(paths::EVENTS)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(headers["www-authenticate"], "Bearer realm=\"kubetrail\"");
}

#[tokio::test]
async fn a_token_bound_to_a_cluster_writes_only_that_cluster() {
    let h = Harness::new();
    let (body, n) = event_list("real-audit/audit2rbac-v1.jsonl", "audit.k8s.io/v1");
    let (status, _) = h
        .post(
            &format!("{}?cluster=dev", paths::WEBHOOK),
            Some(PROD_INGEST),
            &[JSON],
            body.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = h
        .post(paths::WEBHOOK, Some(PROD_INGEST), &[JSON], body)
        .await;
    assert_eq!(status, StatusCode::OK);
    let f = Filter {
        clusters: vec!["prod".into()],
        ..Filter::default()
    };
    assert_eq!(h.store.query(&f, None, 10_000).unwrap().records.len(), n);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[tokio::test]
async fn agent_batches_store_good_lines_report_bad_ones_and_replay_by_key() {
    let h = Harness::new();
    let mut text =
        std::fs::read_to_string(crate::testdata("real-audit/falco-k8saudit.jsonl")).unwrap();
    let good = text.lines().filter(|l| !l.trim().is_empty()).count();
    text.push_str("this is not json\n{\"kind\":\"Event\",\"stage\":\"Soon\"}\n{\"truncated\":");
    let body = gzip(text.as_bytes());
    let headers = [
        ("content-type", "application/x-ndjson"),
        ("content-encoding", "gzip"),
        (paths::IDEMPOTENCY_KEY, "node-1/abc/0-1000"),
    ];
    let uri = format!("{}?cluster=falco&node=cp-1", paths::EVENTS);
    let (status, reply) = h.post(&uri, Some(INGEST), &headers, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["stored"], good);
    assert_eq!(reply["rejected"], 3);
    assert_eq!(reply["received"], good + 3);
    let reasons = reply["rejectedReasons"].as_array().unwrap();
    assert!(
        reasons[0]
            .as_str()
            .unwrap()
            .starts_with(&format!("line {}: ", good + 1))
    );
    assert!(reply.get("replayed").is_none());

    let (status, again) = h.post(&uri, Some(INGEST), &headers, body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["replayed"], true);
    assert_eq!(again["stored"], good);

    // Without the key (or after the server forgot it) the store still refuses duplicates.
    let (status, fresh) = h.post(&uri, Some(INGEST), &headers[..2], body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fresh["stored"], 0);
    assert_eq!(fresh["duplicates"], good);
    assert_eq!(h.store.count().unwrap(), good as u64);

    // A corrupt gzip body or an unknown encoding is refused.
    let (status, _) = h
        .post(&uri, Some(INGEST), &headers[..2], b"not gzip".to_vec())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = h
        .post(
            &uri,
            Some(INGEST),
            &[("content-encoding", "br")],
            b"x".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, reply) = h
        .post(
            &format!("{}?clustr=x", paths::EVENTS),
            Some(INGEST),
            &[],
            b"".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(reply["error"].as_str().unwrap().contains("clustr"));
}

/// A store whose appends fail as an unreachable database does.
struct Down(kubetrail_store_duckdb::DuckDbStore);

impl Store for Down {
    fn append(
        &self,
        _: &[kubetrail_store::Record],
    ) -> kubetrail_store::Result<kubetrail_store::AppendOutcome> {
        Err(kubetrail_store::Error::db(
            "appending",
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused"),
        ))
    }
    fn query(
        &self,
        f: &Filter,
        c: Option<&kubetrail_store::Cursor>,
        l: usize,
    ) -> kubetrail_store::Result<kubetrail_store::Page> {
        self.0.query(f, c, l)
    }
    fn aggregate(
        &self,
        f: &Filter,
        a: &kubetrail_store::Aggregation,
    ) -> kubetrail_store::Result<kubetrail_store::AggregationResult> {
        self.0.aggregate(f, a)
    }
    fn apply_retention(
        &self,
        r: &kubetrail_store::Retention,
    ) -> kubetrail_store::Result<kubetrail_store::RetentionOutcome> {
        self.0.apply_retention(r)
    }
    fn count(&self) -> kubetrail_store::Result<u64> {
        self.0.count()
    }
    fn size_bytes(&self) -> kubetrail_store::Result<u64> {
        self.0.size_bytes()
    }
    fn schema_version(&self) -> kubetrail_store::Result<u32> {
        self.0.schema_version()
    }
}

#[tokio::test]
async fn a_store_that_cannot_commit_answers_503_so_the_sender_retries() {
    let dir = tempfile::tempdir().unwrap();
    let store = Down(kubetrail_store_duckdb::DuckDbStore::open_in_memory().unwrap());
    let h = Harness::over(
        std::sync::Arc::new(store),
        kubetrail_server::Limits::default(),
        dir,
    );
    let (body, _) = event_list("real-audit/audit2rbac-v1.jsonl", "audit.k8s.io/v1");
    let (status, reply) = h.post(paths::WEBHOOK, Some(INGEST), &[JSON], body).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("committing"));
    let metrics = h.get_text(paths::METRICS, Some(READ)).await;
    assert!(
        metrics.contains(
            "kubetrail_batch_commit_failures_total{source=\"webhook\",cluster=\"default\"} 1"
        ),
        "{metrics}"
    );
}
