//! The read API over events ingested through the webhook: answers equal the store's and the
//! reports', paging covers everything once, bad parameters are named, a bound token reads only
//! its cluster, and the OpenAPI document lists every path.

use axum::http::StatusCode;
use kubetrail_api::paths;
use kubetrail_store::{Filter, StageSelection};

use crate::{Harness, INGEST, PROD_INGEST, PROD_READ, READ, event_list};

async fn loaded() -> (Harness, usize) {
    let h = Harness::new();
    let mut total = 0;
    for (file, version, cluster) in [
        ("real-audit/audit2rbac-v1.jsonl", "audit.k8s.io/v1", "kind"),
        (
            "real-audit/audit2rbac-v1beta1.jsonl",
            "audit.k8s.io/v1beta1",
            "old",
        ),
        (
            "real-audit/falco-k8saudit.jsonl",
            "audit.k8s.io/v1",
            "falco",
        ),
    ] {
        let (body, n) = event_list(file, version);
        let uri = format!("{}?cluster={cluster}", paths::WEBHOOK);
        let (status, reply) = h
            .post(
                &uri,
                Some(INGEST),
                &[("content-type", "application/json")],
                body,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        total += n;
    }
    (h, total)
}

#[tokio::test]
async fn pages_cover_every_matching_event_once_newest_first() {
    let (h, total) = loaded().await;
    let mut seen = Vec::new();
    let mut uri = format!("{}?limit=7", paths::EVENTS);
    loop {
        let (status, page) = h.get(&uri, Some(READ)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for item in page["items"].as_array().unwrap() {
            seen.push((
                item["cluster"].as_str().unwrap().to_string(),
                item["event"]["auditID"].as_str().unwrap_or("").to_string(),
                item["event"]["stage"].as_str().unwrap_or("").to_string(),
                // The event's time as the store reads it (older captures carry only v1beta1's
                // timestamp fields).
                kubetrail_model::decode_event(item["event"].to_string().as_bytes())
                    .unwrap()
                    .stage_timestamp
                    .map(|t| t.unix_micros())
                    .unwrap_or(0),
            ));
        }
        match page["next"].as_str() {
            Some(next) => uri = format!("{}?limit=7&cursor={next}", paths::EVENTS),
            None => break,
        }
    }
    assert_eq!(seen.len(), total);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), total, "no event twice");
    // Within a cluster the order is newest first.
    let kind: Vec<i64> = seen.iter().filter(|s| s.0 == "kind").map(|s| s.3).collect();
    let mut kind_sorted = kind.clone();
    kind_sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(kind, kind_sorted);
}

#[tokio::test]
async fn filters_answer_as_the_store_does() {
    let (h, _) = loaded().await;
    let uri = format!(
        "{}?cluster=old&user=system:admin&code=403&limit=1000",
        paths::EVENTS
    );
    let (status, page) = h.get(&uri, Some(READ)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let direct = h
        .store
        .query(
            &Filter {
                clusters: vec!["old".into()],
                users: vec!["system:admin".into()],
                codes: vec![kubetrail_store::CodeFilter::Exact(403)],
                ..Filter::default()
            },
            None,
            1000,
        )
        .unwrap();
    let items = page["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert_eq!(items.len(), direct.records.len());
    for (item, r) in items.iter().zip(&direct.records) {
        assert_eq!(item["event"]["auditID"], r.audit_id.as_str());
        assert_eq!(item["event"]["responseStatus"]["code"], 403);
        assert_eq!(item["event"]["user"]["username"], "system:admin");
    }

    let (status, agg) = h
        .get(
            &format!("{}?by=user,verb&top=3&stages=final", paths::AGGREGATE),
            Some(READ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{agg}");
    let direct = h
        .store
        .aggregate(
            &Filter {
                stages: StageSelection::Final,
                ..Filter::default()
            },
            &kubetrail_store::Aggregation::CountBy {
                fields: vec![kubetrail_store::Field::User, kubetrail_store::Field::Verb],
                limit: Some(3),
            },
        )
        .unwrap();
    assert_eq!(
        agg["groups"],
        serde_json::to_value(direct.groups()).unwrap()
    );

    let (status, hist) = h
        .get(
            &format!("{}?histogram=1h&cluster=falco", paths::AGGREGATE),
            Some(READ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{hist}");
    let counted: u64 = hist["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    let falco = Filter {
        clusters: vec!["falco".into()],
        ..Filter::default()
    };
    assert_eq!(
        counted,
        h.store.query(&falco, None, 100_000).unwrap().records.len() as u64
    );

    // The reports are the report crate's answers.
    let (status, overview) = h
        .get(
            &format!("{}/overview?cluster=kind", paths::REPORTS),
            Some(READ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{overview}");
    let kind = Filter {
        clusters: vec!["kind".into()],
        ..Filter::default()
    };
    let direct = kubetrail_report::overview(h.store.as_ref(), &kind).unwrap();
    assert_eq!(overview, serde_json::to_value(&direct).unwrap());
    assert!(direct.requests > 0);
    let (status, _) = h
        .get(&format!("{}/nonsense", paths::REPORTS), Some(READ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn history_lists_writes_to_one_object_oldest_first() {
    let (h, _) = loaded().await;
    // The Falco trace: minikube-user created the some-reader-binding ClusterRoleBinding.
    let (status, page) = h
        .get(
            &format!(
                "{}?resource=clusterrolebindings.rbac.authorization.k8s.io&name=some-reader-binding&cluster=falco",
                paths::HISTORY
            ),
            Some(READ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    let direct = h
        .store
        .query(
            &Filter {
                clusters: vec!["falco".into()],
                resources: vec![
                    "clusterrolebindings.rbac.authorization.k8s.io"
                        .parse()
                        .unwrap(),
                ],
                names: vec!["some-reader-binding".into()],
                verbs: kubetrail_report::WRITE_VERBS
                    .iter()
                    .map(|v| v.to_string())
                    .collect(),
                stages: StageSelection::Final,
                ..Filter::default()
            },
            None,
            1000,
        )
        .unwrap();
    assert_eq!(items.len(), direct.records.len());
    // Created, deleted, created again.
    let verbs: Vec<&str> = items
        .iter()
        .map(|i| i["event"]["verb"].as_str().unwrap())
        .collect();
    assert_eq!(verbs, ["create", "delete", "create"]);
    if let (Some(first), Some(last)) = (items.first(), direct.records.last()) {
        assert_eq!(
            first["event"]["auditID"],
            last.audit_id.as_str(),
            "oldest first"
        );
    }
    let (status, reply) = h
        .get(&format!("{}?resource=pods", paths::HISTORY), Some(READ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(reply["error"].as_str().unwrap().contains("one name"));
}

#[tokio::test]
async fn bad_parameters_are_named() {
    let (h, _) = loaded().await;
    for (uri, needle) in [
        (format!("{}?verb=yeet", paths::EVENTS), "unknown verb"),
        (format!("{}?verb=GET", paths::EVENTS), "invalid verb"),
        (
            format!("{}?user=!sys*tem", paths::EVENTS),
            "only a trailing * is a wildcard",
        ),
        (format!("{}?limit=0", paths::EVENTS), "parameter limit"),
        (format!("{}?limit=99999", paths::EVENTS), "parameter limit"),
        (format!("{}?cursor=zz", paths::EVENTS), "parameter cursor"),
        (
            format!("{}?since=forever", paths::EVENTS),
            "parameter since",
        ),
        (
            format!("{}?usr=bob", paths::EVENTS),
            "unknown parameter \"usr\"",
        ),
        (format!("{}?by=colour", paths::AGGREGATE), "parameter by"),
        (format!("{}?top=3", paths::AGGREGATE), "by=FIELD"),
        (
            format!("{}?histogram=1h&by=user,verb", paths::AGGREGATE),
            "at most one",
        ),
    ] {
        let (status, reply) = h.get(&uri, Some(READ)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {reply}");
        let reason = reply["error"].as_str().unwrap();
        assert!(reason.contains(needle), "{uri}: {reason}");
    }
}

#[tokio::test]
async fn a_bound_token_reads_only_its_cluster() {
    let (h, _) = loaded().await;
    let (body, n) = event_list("real-audit/audit2rbac-v1.jsonl", "audit.k8s.io/v1");
    let json = [("content-type", "application/json")];
    let (status, _) = h.post(paths::WEBHOOK, Some(PROD_INGEST), &json, body).await;
    assert_eq!(status, StatusCode::OK);
    let (status, page) = h
        .get(&format!("{}?limit=5000", paths::EVENTS), Some(PROD_READ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), n);
    assert!(items.iter().all(|i| i["cluster"] == "prod"));
    let (status, reply) = h
        .get(&format!("{}?cluster=kind", paths::EVENTS), Some(PROD_READ))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
    let (status, overview) = h
        .get(&format!("{}/overview", paths::REPORTS), Some(PROD_READ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let prod = Filter {
        clusters: vec!["prod".into()],
        ..Filter::default()
    };
    let direct = kubetrail_report::overview(h.store.as_ref(), &prod).unwrap();
    assert_eq!(overview["requests"], direct.requests);
    // Ingest tokens cannot read at all.
    let (status, _) = h.get(paths::EVENTS, Some(PROD_INGEST)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn metrics_count_by_source_and_cluster_and_health_needs_no_token() {
    let (h, total) = loaded().await;
    let text = h.get_text(paths::METRICS, Some(READ)).await;
    let stored: u64 = ["kind", "old", "falco"]
        .iter()
        .map(|c| {
            let prefix =
                format!("kubetrail_events_stored_total{{source=\"webhook\",cluster=\"{c}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .unwrap_or_else(|| panic!("no {prefix} in {text}"))
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(stored, total as u64);
    assert!(
        text.contains(&format!("kubetrail_store_events {total}")),
        "{text}"
    );
    assert!(
        text.contains("kubetrail_batch_commit_seconds_bucket{"),
        "{text}"
    );

    let (status, body, _) = h
        .send(
            axum::http::Request::get(paths::HEALTHZ)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        (status, body.as_slice()),
        (StatusCode::OK, b"ok".as_slice())
    );
    let (status, _, _) = h
        .send(
            axum::http::Request::get(paths::READYZ)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h.get(paths::METRICS, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = h.get("/api/v1/nothing-here", Some(READ)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_openapi_document_lists_every_path() {
    let h = Harness::new();
    let (status, doc) = h.get(paths::OPENAPI, Some(READ)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let documented = doc["paths"].as_object().unwrap();
    for path in [
        paths::WEBHOOK,
        paths::EVENTS,
        paths::AGGREGATE,
        paths::HISTORY,
        &format!("{}/{{name}}", paths::REPORTS),
        paths::AGENT_STATUS,
        paths::GAPS,
        paths::AGENTS,
        paths::ALERTS,
        paths::RULES,
        paths::OPENAPI,
        paths::HEALTHZ,
        paths::READYZ,
        paths::METRICS,
    ] {
        assert!(documented.contains_key(path), "{path} is not documented");
    }
    // And nothing documented is missing from the router.
    for path in documented.keys() {
        let uri = path.replace("{name}", "overview");
        let (status, _) = h.get(&uri, Some(crate::ADMIN)).await;
        assert_ne!(
            status,
            StatusCode::NOT_FOUND,
            "{path} is documented but not routed"
        );
    }
}

#[tokio::test]
async fn agents_report_gaps_that_the_server_keeps() {
    let h = Harness::new();
    let status = serde_json::json!({
        "node": "cp-1", "lagBytes": 1234, "pendingFiles": 2, "shippedEvents": 10, "droppedBytes": 90,
        "gaps": [{"id": "g1", "file": "/var/log/kubernetes/kubernetes-2024-01-01T00-00-00.000.audit",
                  "fingerprint": "ab", "fromOffset": 10, "bytes": 90,
                  "detectedAt": "2024-01-01T00:00:01Z", "reason": "deleted before it was read"}]
    });
    let body = serde_json::to_vec(&status).unwrap();
    let json = [("content-type", "application/json")];
    let (code, reply) = h
        .post(paths::AGENT_STATUS, Some(PROD_INGEST), &json, body.clone())
        .await;
    assert_eq!(code, StatusCode::OK, "{reply}");
    assert_eq!(reply["newGaps"], 1);
    let (_, reply) = h
        .post(paths::AGENT_STATUS, Some(PROD_INGEST), &json, body)
        .await;
    assert_eq!(reply["newGaps"], 0);
    let (code, gaps) = h.get(paths::GAPS, Some(READ)).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(gaps.as_array().unwrap().len(), 1);
    assert_eq!(gaps[0]["cluster"], "prod");
    assert_eq!(gaps[0]["node"], "cp-1");
    let text = h.get_text(paths::METRICS, Some(READ)).await;
    assert!(
        text.contains("kubetrail_agent_status_lag_bytes{cluster=\"prod\",node=\"cp-1\"} 1234"),
        "{text}"
    );
    assert!(
        text.contains("kubetrail_agent_status_gaps_total{cluster=\"prod\",node=\"cp-1\"} 1"),
        "{text}"
    );
    // The agent's lost bytes are a total it reports again and again: the counter is that
    // total, not the sum of the reports (the same status was posted twice).
    let dropped = |text: &str| {
        text.lines()
            .find(|l| {
                l.starts_with(
                    "kubetrail_agent_status_dropped_bytes_total{cluster=\"prod\",node=\"cp-1\"}",
                )
            })
            .map(|l| l.rsplit(' ').next().unwrap().to_string())
    };
    assert_eq!(dropped(&text).as_deref(), Some("90"), "{text}");
    // No name is exported by both the server and the agent.
    assert!(!text.contains("kubetrail_agent_lag_bytes"), "{text}");
    let more = serde_json::json!({"node": "cp-1", "lagBytes": 0, "pendingFiles": 0, "shippedEvents": 12, "droppedBytes": 150});
    let (code, _) = h
        .post(
            paths::AGENT_STATUS,
            Some(PROD_INGEST),
            &json,
            serde_json::to_vec(&more).unwrap(),
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    let text = h.get_text(paths::METRICS, Some(READ)).await;
    assert_eq!(dropped(&text).as_deref(), Some("150"), "{text}");
    let (code, _) = h
        .post(
            paths::AGENT_STATUS,
            Some(INGEST),
            &json,
            b"{\"node\":\"\"}".to_vec(),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn history_with_diff_says_what_each_write_changed_and_redacts_before_storing() {
    let mut h = Harness::new();
    let state = std::sync::Arc::into_inner(h.state).expect("nothing else holds a new state");
    let key = kubetrail_redact::Key::from_bytes([9; 32]);
    let redactor = kubetrail_redact::Redactor::new(&key, &[]).unwrap();
    h.state = std::sync::Arc::new(state.with_redaction(std::sync::Arc::new(redactor)));
    let reply = h.post_lines("redaction/secrets.jsonl").await;
    assert_eq!(reply["stored"], 8);

    let object =
        "resource=secrets&namespace=shop&name=db&from=2024-05-01T00:00:00Z&to=2024-05-02T00:00:00Z";
    let (status, plain) = h
        .get(&format!("{}?{object}", paths::HISTORY), Some(READ))
        .await;
    assert_eq!(status, StatusCode::OK, "{plain}");
    assert!(plain["items"][0].get("diff").is_none(), "only asked for");
    let (status, page) = h
        .get(
            &format!("{}?{object}&diff=true", paths::HISTORY),
            Some(READ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let diffs: Vec<&serde_json::Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["diff"])
        .collect();
    // The create (its objectRef names no object: the name is the body's), two patches and a
    // dry-run delete.
    assert_eq!(diffs.len(), 4);
    assert_eq!(diffs[0]["basis"], "created");
    assert_eq!(diffs[1]["basis"], "diff");
    assert_eq!(diffs[2]["basis"], "patch");
    assert_eq!(diffs[2]["patch"], "json");
    assert_eq!(diffs[2]["changes"][0]["path"], "/data/password");
    assert_eq!(diffs[3]["dryRun"], true);
    assert_eq!(diffs[3]["basis"], "deleted");
    assert!(!page.to_string().contains("S3CRET"), "{page}");

    let (status, bad) = h
        .get(&format!("{}?{object}&diff=yes", paths::HISTORY), Some(READ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        bad["error"].as_str().unwrap().contains("parameter diff"),
        "{bad}"
    );
}

#[tokio::test]
async fn changes_lists_the_newest_writes_with_their_diffs_and_hides_dry_runs() {
    let h = Harness::new();
    h.post_lines("redaction/secrets.jsonl").await;
    let scope = "namespace=shop&from=2024-05-01T00:00:00Z&to=2024-05-02T00:00:00Z";
    let (status, page) = h
        .get(&format!("{}?{scope}", paths::CHANGES), Some(READ))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let shown: Vec<(String, String, String)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let e = &i["event"];
            (
                e["verb"].as_str().unwrap().to_string(),
                e["objectRef"]["resource"].as_str().unwrap().to_string(),
                i["diff"]["basis"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let row = |v: &str, r: &str, b: &str| (v.to_string(), r.to_string(), b.to_string());
    // Newest first; the dry-run delete of the secret is left out and counted.
    assert_eq!(
        shown,
        [
            row("create", "serviceaccounts", "subresource"),
            row("patch", "secrets", "patch"),
            row("patch", "secrets", "diff"),
            row("create", "secrets", "created"),
        ]
    );
    assert_eq!(page["hidden"], 1);
    // The second patch's change is against the state the first one left.
    let change = &page["items"][1]["diff"]["changes"][0];
    assert_eq!(change["path"], "/data/password", "{page}");
    let (status, all) = h
        .get(&format!("{}?{scope}&noop=show", paths::CHANGES), Some(READ))
        .await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["hidden"], 0);
    assert_eq!(all["items"][0]["diff"]["dryRun"], true);
    assert_eq!(all["items"][0]["event"]["verb"], "delete");
    let (status, one) = h
        .get(&format!("{}?{scope}&limit=1", paths::CHANGES), Some(READ))
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(
        (one["items"].as_array().unwrap().len(), &one["hidden"]),
        (0, &serde_json::json!(1))
    );
    for bad in ["noop=yes", "limit=0", "limit=10001", "verb=gett"] {
        let (status, reply) = h
            .get(&format!("{}?{scope}&{bad}", paths::CHANGES), Some(READ))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {reply}");
    }
    let (status, _) = h.get(&format!("{}?{scope}", paths::CHANGES), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn kubectl_names_for_resources_are_resolved_and_unknown_ones_refused() {
    let h = Harness::new();
    h.post_lines("real-audit/falco-k8saudit.jsonl").await;
    let window = "from=2018-01-01T00:00:00Z&to=2025-01-01T00:00:00Z";
    let page = format!("range=custom&{window}");
    let all = format!("{window}&limit=5000");
    let ids = |page: &serde_json::Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["auditID"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, plural) = h
        .get(
            &format!("{}?{all}&resource=configmaps", paths::EVENTS),
            Some(READ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{plural}");
    assert!(!ids(&plural).is_empty());
    for name in ["cm", "configmap", "ConfigMap"] {
        let (status, page) = h
            .get(
                &format!("{}?{all}&resource={name}", paths::EVENTS),
                Some(READ),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{name}: {page}");
        assert_eq!(ids(&page), ids(&plural), "{name}");
    }
    let (status, counts) = h
        .get(
            &format!("{}?{window}&resource=cm&by=verb", paths::AGGREGATE),
            Some(READ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{counts}");
    let total: u64 = counts["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, ids(&plural).len() as u64);
    let (status, refused) = h
        .get(
            &format!("{}?{all}&resource=configmapz", paths::EVENTS),
            Some(READ),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains(r#"did you mean "configmaps"?"#),
        "{refused}"
    );
    // The web UI's search answers the same.
    let html = h
        .get_text(
            &format!("/search?{page}&resource=cm&stages=final"),
            Some(READ),
        )
        .await;
    assert!(html.contains(">configmaps<"), "{html}");
    let (status, _) = h
        .get(&format!("/search?{page}&resource=configmapz"), Some(READ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
