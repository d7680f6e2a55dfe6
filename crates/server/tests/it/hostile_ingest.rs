//! Hostile input at the ingest endpoints (issue 18): an event nested too deeply is refused by
//! name with a 4xx on every retry, never a 500; bodies that are not a batch are refused with
//! 400 and a reason; what is accepted is shown on the event page as it was stored.

use std::io::Write;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use kubetrail_api::paths;
use kubetrail_model::MAX_DEPTH;
use kubetrail_store::Filter;

use crate::{Harness, INGEST, READ};

const JSON: (&str, &str) = ("content-type", "application/json");

fn nested(levels: usize) -> String {
    format!("{}{}", "[".repeat(levels), "]".repeat(levels))
}

/// A list item as the apiserver writes one (no type of its own); `request_object` as given.
fn item(id: &str, request_object: &str) -> String {
    format!(
        r#"{{"level":"Request","auditID":"{id}","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/configmaps","verb":"create","user":{{"username":"alice"}},"sourceIPs":["10.0.0.1"],"objectRef":{{"resource":"configmaps","namespace":"default","name":"{id}","apiVersion":"v1"}},"responseStatus":{{"metadata":{{}},"code":201}},"requestObject":{request_object},"requestReceivedTimestamp":"2025-04-18T10:00:00.000000Z","stageTimestamp":"2025-04-18T10:00:00.001000Z","timestamp":"2025-04-18T10:00:00Z","metadata":{{"creationTimestamp":"2025-04-18T10:00:00Z"}}}}"#
    )
}

fn list(api_version: &str, items: &[String]) -> Vec<u8> {
    format!(
        r#"{{"kind":"EventList","apiVersion":"{api_version}","metadata":{{}},"items":[{}]}}"#,
        items.join(",")
    )
    .into_bytes()
}

/// Five items, the fourth (`items[3]`) replaced by `bad`.
fn batch_with(bad: String) -> Vec<String> {
    let mut items: Vec<String> = (0..5).map(|i| item(&format!("ok-{i}"), "{}")).collect();
    items[3] = bad;
    items
}

fn line(id: &str, request_object: &str) -> String {
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"{id}","stage":"ResponseComplete","verb":"create","user":{{"username":"alice"}},"requestObject":{request_object},"stageTimestamp":"2025-04-18T10:00:00.001000Z"}}"#
    )
}

#[tokio::test]
async fn a_deep_v1beta1_item_is_refused_by_name_with_400_on_every_retry() {
    let h = Harness::new();
    // Before the limit, 127 levels were stored (and shown as `null`), 128 answered 500.
    for levels in [127, 128] {
        let body = list(
            "audit.k8s.io/v1beta1",
            &batch_with(item("deep", &nested(levels))),
        );
        // The apiserver retries what it did not get a 2xx for: each try gets the same answer.
        for _ in 0..2 {
            let (status, reply) = h
                .post(paths::WEBHOOK, Some(INGEST), &[JSON], body.clone())
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{levels}: {reply}");
            let reason = reply["error"].as_str().unwrap();
            assert!(
                reason.contains("items[3].requestObject")
                    && reason.contains(&format!("deeper than {MAX_DEPTH} levels")),
                "{reason}"
            );
        }
    }
    assert_eq!(h.store.count().unwrap(), 0);
}

#[tokio::test]
async fn a_deep_v1_item_with_kind_and_no_api_version_is_refused_by_name() {
    let h = Harness::new();
    let deep = item("deep", &nested(200)).replacen('{', r#"{"kind":"Event","#, 1);
    let body = list("audit.k8s.io/v1", &batch_with(deep));
    let (status, reply) = h.post(paths::WEBHOOK, Some(INGEST), &[JSON], body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("items[3].requestObject"),
        "{reply}"
    );
    assert_eq!(h.store.count().unwrap(), 0);
}

#[tokio::test]
async fn an_item_at_the_depth_limit_is_stored_and_reads_back() {
    let h = Harness::new();
    // The item object is level 1: its requestObject may nest MAX_DEPTH - 1 levels.
    let items = batch_with(item("deepest", &nested(MAX_DEPTH - 1)));
    for version in ["audit.k8s.io/v1beta1", "audit.k8s.io/v1"] {
        let (status, reply) = h
            .post(paths::WEBHOOK, Some(INGEST), &[JSON], list(version, &items))
            .await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        assert_eq!(reply["received"], 5, "{reply}");
    }
    let page = h.store.query(&Filter::default(), None, 10).unwrap();
    for r in &page.records {
        let v: serde_json::Value = serde_json::from_str(&r.raw).unwrap();
        assert_eq!(v["apiVersion"], "audit.k8s.io/v1");
    }
    let (status, events) = h
        .get(&format!("{}?auditID=deepest", paths::EVENTS), Some(READ))
        .await;
    assert_eq!(status, StatusCode::OK, "{events}");
    assert_eq!(
        events["items"].as_array().map(Vec::len),
        Some(1),
        "{events}"
    );
    assert!(events["items"][0]["event"]["requestObject"].is_array());
}

#[tokio::test]
async fn a_deep_agent_line_is_rejected_alone_and_the_others_stored() {
    let h = Harness::new();
    let body = [
        line("a", "{}"),
        line("deep", &nested(300)),
        line("b", "{}"),
        line("c", &nested(MAX_DEPTH - 1)),
    ]
    .join("\n")
        + "\n";
    let uri = format!("{}?node=n1", paths::EVENTS);
    let (status, reply) = h.post(&uri, Some(INGEST), &[], body.into_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["received"], 4, "{reply}");
    assert_eq!(reply["stored"], 3, "{reply}");
    assert_eq!(reply["rejected"], 1, "{reply}");
    let reason = reply["rejectedReasons"][0].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("line 2: field `requestObject`: JSON nested deeper than"),
        "{reply}"
    );
    assert_eq!(h.store.count().unwrap(), 3);
}

#[tokio::test]
async fn bodies_that_are_not_an_event_list_are_refused_with_400() {
    let h = Harness::new();
    for (body, needle) in [
        ("{}", "`items`: required"),
        (r#"{"foo":"bar"}"#, "`items`: required"),
        (
            r#"{"items":null}"#,
            "`items`: expected an array of events, found null",
        ),
        (
            r#"{"kind":"EventList","Items":[{"auditID":"a"}]}"#,
            r#"found "Items""#,
        ),
        ("", "not an audit EventList: malformed JSON"),
    ] {
        let (status, reply) = h
            .post(paths::WEBHOOK, Some(INGEST), &[JSON], body.into())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {reply}");
        let reason = reply["error"].as_str().unwrap_or_default();
        assert!(reason.contains(needle), "{body}: {reply}");
    }
    assert_eq!(h.store.count().unwrap(), 0);
    // An empty batch is a batch; `kind` may be left out (the apiserver always sends it).
    for (body, n) in [
        (
            r#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[]}"#,
            0,
        ),
        (
            r#"{"items":[{"auditID":"a","stage":"ResponseComplete"}]}"#,
            1,
        ),
    ] {
        let (status, reply) = h
            .post(paths::WEBHOOK, Some(INGEST), &[JSON], body.into())
            .await;
        assert_eq!(status, StatusCode::OK, "{body}: {reply}");
        assert_eq!(reply["received"], n, "{body}: {reply}");
    }
}

#[tokio::test]
async fn an_empty_agent_batch_is_refused_with_400() {
    let h = Harness::new();
    let uri = format!("{}?node=n1", paths::EVENTS);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"").unwrap();
    let empty_gzip = gz.finish().unwrap();
    for (headers, body) in [
        (&[][..], Vec::new()),
        (&[("content-encoding", "gzip")][..], empty_gzip),
    ] {
        let (status, reply) = h.post(&uri, Some(INGEST), headers, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
        assert!(
            reply["error"]
                .as_str()
                .unwrap_or_default()
                .contains("the batch is empty"),
            "{reply}"
        );
    }
    // Blank lines are no events, but a batch of them is not refused: a log file can hold them,
    // and refusing them would stall the agent.
    let (status, reply) = h.post(&uri, Some(INGEST), &[], b"\n\n".to_vec()).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["received"], 0, "{reply}");
}

#[tokio::test]
async fn a_lone_surrogate_is_stored_and_shown_as_its_text() {
    let h = Harness::new();
    let uri = format!("{}?node=n1", paths::EVENTS);
    let body = line("surrogate", r#"{"data":{"k":"\ud800"}}"#).into_bytes();
    let (status, reply) = h.post(&uri, Some(INGEST), &[], body).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["stored"], 1, "{reply}");

    let (status, _, headers) = h
        .send(
            Request::post("/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::HOST, "127.0.0.1:8080")
                .body(Body::from(format!("token={READ}&next=%2F")))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = headers[header::SET_COOKIE].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let (status, html, _) = h
        .send(
            Request::get("/event?cluster=default&auditID=surrogate")
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let html = String::from_utf8(html).unwrap();
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(r"\ud800"), "{html}");
    assert!(!html.contains(r#"<span class="lit">null</span>"#), "{html}");
}
