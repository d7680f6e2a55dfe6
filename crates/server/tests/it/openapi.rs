//! The OpenAPI document and the router agree: every documented path and method is served and
//! every method served is documented; answers have the documented shapes (each report's own);
//! requests the document allows are accepted; refusals are `{"error"}` objects.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use kubetrail_api::paths;
use serde_json::Value;

use crate::{ADMIN, Harness, INGEST, READ, event_list};

fn spec() -> Value {
    serde_json::from_str(kubetrail_server::OPENAPI_JSON).unwrap()
}

/// Every API path the router serves (the web UI's pages are not the API).
fn served_paths() -> Vec<String> {
    vec![
        paths::WEBHOOK.to_string(),
        paths::EVENTS.to_string(),
        paths::AGGREGATE.to_string(),
        paths::HISTORY.to_string(),
        paths::CHANGES.to_string(),
        format!("{}/{{name}}", paths::REPORTS),
        paths::AGENT_STATUS.to_string(),
        paths::AGENTS.to_string(),
        paths::GAPS.to_string(),
        paths::ALERTS.to_string(),
        paths::RULES.to_string(),
        paths::RBAC_SUGGEST.to_string(),
        paths::RBAC_UNUSED.to_string(),
        paths::VERIFY.to_string(),
        paths::CHAIN_PUBLIC_KEYS.to_string(),
        paths::CHAIN_CHECKPOINT.to_string(),
        paths::OPENAPI.to_string(),
        paths::HEALTHZ.to_string(),
        paths::READYZ.to_string(),
        paths::METRICS.to_string(),
    ]
}

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

#[tokio::test]
async fn the_document_and_the_router_serve_the_same_paths_and_methods() {
    let h = Harness::new();
    let doc = spec();
    let documented = doc["paths"].as_object().unwrap();
    let mut served = served_paths();
    served.sort();
    let mut listed: Vec<String> = documented.keys().cloned().collect();
    listed.sort();
    assert_eq!(
        served, listed,
        "the paths the router serves and the documented ones"
    );
    for (path, item) in documented {
        let uri = path.replace("{name}", "overview");
        for method in METHODS {
            let request = Request::builder()
                .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
                .uri(&uri)
                .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{}"))
                .unwrap();
            let (status, body, _) = h.send(request).await;
            let routed = !matches!(
                status,
                StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
            );
            let in_doc = item.get(method).is_some();
            assert_eq!(
                routed,
                in_doc,
                "{method} {path}: answered {status} {}, documented: {in_doc}",
                String::from_utf8_lossy(&body)
            );
            if in_doc {
                let codes = item[method]["responses"].as_object().unwrap();
                assert!(
                    codes.contains_key(status.as_str()),
                    "{method} {path}: {status} is not documented"
                );
            }
        }
    }
}

/// Checks `value` against the subset of JSON Schema the document uses.
pub(crate) fn check(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/components/schemas/");
        return check(doc, &doc["components"]["schemas"][name], value, at);
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        let errors: Vec<String> = any
            .iter()
            .filter_map(|s| check(doc, s, value, at).err())
            .collect();
        return if errors.len() < any.len() {
            Ok(())
        } else {
            Err(format!(
                "{at}: matches none of anyOf: {}",
                errors.join("; ")
            ))
        };
    }
    let ok = match schema.get("type").and_then(Value::as_str) {
        None => true,
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        Some(other) => return Err(format!("{at}: unknown type {other}")),
    };
    if !ok {
        return Err(format!("{at}: expected {}, found {value}", schema["type"]));
    }
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for r in required {
            let r = r.as_str().unwrap();
            if value.get(r).is_none() {
                return Err(format!("{at}: no {r}"));
            }
        }
    }
    if let (Some(props), Some(obj)) = (
        schema.get("properties").and_then(Value::as_object),
        value.as_object(),
    ) {
        for (k, s) in props {
            if let Some(v) = obj.get(k) {
                check(doc, s, v, &format!("{at}.{k}"))?;
            }
        }
        // Our own answers are closed: a field the code adds must be documented too.
        if schema.get("additionalProperties") == Some(&Value::Bool(false))
            && let Some(k) = obj.keys().find(|k| !props.contains_key(*k))
        {
            return Err(format!("{at}: field {k:?} is not documented"));
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            check(doc, items, v, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

async fn loaded() -> Harness {
    let h = Harness::new();
    let (body, _) = event_list("real-audit/audit2rbac-v1.jsonl", "audit.k8s.io/v1");
    let json = [("content-type", "application/json")];
    let (status, _) = h
        .post(
            &format!("{}?cluster=kind", paths::WEBHOOK),
            Some(INGEST),
            &json,
            body,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let status = serde_json::json!({
        "node": "cp-1", "lagBytes": 1, "pendingFiles": 0, "shippedEvents": 1, "droppedBytes": 0,
        "gaps": [{"id": "g1", "file": "/var/log/kubernetes/kubernetes.audit", "fingerprint": "ab",
                  "fromOffset": 0, "bytes": 1, "detectedAt": "2024-01-01T00:00:01Z",
                  "reason": "rotated away"}]
    });
    let (code, _) = h
        .post(
            paths::AGENT_STATUS,
            Some(INGEST),
            &json,
            serde_json::to_vec(&status).unwrap(),
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    h
}

pub(crate) fn response_schema<'a>(
    doc: &'a Value,
    path: &str,
    method: &str,
    status: &str,
) -> &'a Value {
    &doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
}

#[tokio::test]
async fn answers_have_the_documented_shapes() {
    let h = loaded().await;
    // Writes with bodies, for the changes feed's diffs.
    h.post_lines("redaction/secrets.jsonl").await;
    let doc = spec();
    let reports = format!("{}/{{name}}", paths::REPORTS);
    let asks: Vec<(&str, String)> = vec![
        (paths::EVENTS, format!("{}?limit=3", paths::EVENTS)),
        (
            paths::AGGREGATE,
            format!("{}?by=user,verb", paths::AGGREGATE),
        ),
        (
            paths::AGGREGATE,
            format!("{}?histogram=1h", paths::AGGREGATE),
        ),
        (paths::AGGREGATE, paths::AGGREGATE.to_string()),
        (
            paths::HISTORY,
            format!(
                "{}?resource=clusterroles.rbac.authorization.k8s.io&name=x",
                paths::HISTORY
            ),
        ),
        (
            paths::CHANGES,
            format!(
                "{}?noop=show&from=2024-05-01T00:00:00Z&to=2024-05-02T00:00:00Z",
                paths::CHANGES
            ),
        ),
        (&reports, format!("{}/overview", paths::REPORTS)),
        (&reports, format!("{}/resources", paths::REPORTS)),
        (&reports, format!("{}/users", paths::REPORTS)),
        (&reports, format!("{}/failures", paths::REPORTS)),
        (paths::GAPS, paths::GAPS.to_string()),
        (paths::AGENTS, paths::AGENTS.to_string()),
        (paths::ALERTS, format!("{}?minSeverity=low", paths::ALERTS)),
        (paths::RULES, paths::RULES.to_string()),
    ];
    for (path, uri) in asks {
        let (status, value) = h.get(&uri, Some(READ)).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {value}");
        let schema = response_schema(&doc, path, "get", "200");
        assert!(!schema.is_null(), "{path}: no 200 schema");
        check(&doc, schema, &value, &uri).unwrap();
    }
    // Each report matches its own schema, not merely one of them.
    for (name, schema) in [
        ("overview", "Overview"),
        ("failures", "Failures"),
        ("users", "UserActivity"),
        ("resources", "ResourceWrites"),
    ] {
        let (_, value) = h
            .get(&format!("{}/{name}", paths::REPORTS), Some(READ))
            .await;
        let one = &doc["components"]["schemas"][schema];
        match value {
            Value::Array(rows) => {
                // The sample has users; it need not have writes.
                assert!(name != "users" || !rows.is_empty(), "{name}");
                for row in &rows {
                    check(&doc, one, row, name).unwrap();
                }
            }
            v => check(&doc, one, &v, name).unwrap(),
        }
    }
    // Refusals are {"error"} objects, as documented.
    for (uri, token, code) in [
        (format!("{}?verb=yeet", paths::EVENTS), Some(READ), "400"),
        (paths::EVENTS.to_string(), None, "401"),
        (paths::EVENTS.to_string(), Some(INGEST), "403"),
        (format!("{}/nope", paths::REPORTS), Some(READ), "404"),
    ] {
        let (status, value) = h.get(&uri, token).await;
        assert_eq!(status.as_str(), code, "{uri}");
        let path = if uri.starts_with(paths::REPORTS) {
            reports.as_str()
        } else {
            paths::EVENTS
        };
        check(&doc, response_schema(&doc, path, "get", code), &value, &uri).unwrap();
    }
}

#[tokio::test]
async fn requests_the_document_allows_are_accepted() {
    let h = loaded().await;
    for uri in [
        // An empty resource is no filter.
        format!("{}?resource=", paths::EVENTS),
        format!("{}?resource=&by=verb", paths::AGGREGATE),
        format!("{}/users?resource=", paths::REPORTS),
        // Without by or histogram: the number of matching events.
        paths::AGGREGATE.to_string(),
    ] {
        let (status, reply) = h.get(&uri, Some(READ)).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {reply}");
    }
    let (_, all) = h
        .get(&format!("{}?by=verb", paths::AGGREGATE), Some(READ))
        .await;
    let by_verb: u64 = all["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["count"].as_u64().unwrap())
        .sum();
    let (_, total) = h.get(paths::AGGREGATE, Some(READ)).await;
    assert_eq!(
        total["groups"][0]["count"].as_u64(),
        Some(by_verb),
        "{total}"
    );
    assert_eq!(total["groups"][0]["keys"], serde_json::json!([]));
    // An agent batch with an empty node.
    let line = std::fs::read_to_string(crate::testdata("real-audit/audit2rbac-v1.jsonl")).unwrap();
    let (status, reply) = h
        .post(
            &format!("{}?node=", paths::EVENTS),
            Some(INGEST),
            &[("content-type", "application/x-ndjson")],
            line.into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
}
