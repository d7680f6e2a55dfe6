//! The RBAC endpoints and the user page's RBAC panels: audit2rbac's demo capture through the
//! webhook, a hand-written snapshot, a reader bound to another cluster, the errors.

use std::sync::Arc;

use axum::http::StatusCode;
use kubetrail_api::paths;
use serde_json::Value;

use crate::{Harness, INGEST, PROD_READ, READ, event_list, testdata};

const RANGE: &str = "from=2017-01-01T00:00:00Z&to=2027-01-01T00:00:00Z";

/// A server holding the demo capture (cluster `kind`) and the snapshot's requests, knowing the
/// snapshot's RBAC.
async fn loaded() -> Harness {
    let mut h = Harness::new();
    let source =
        kubetrail_server::RbacSource::files(vec![testdata("rbac/snapshot.yaml")], None).unwrap();
    let state = Arc::into_inner(h.state).expect("nothing else holds a new state");
    h.state = Arc::new(state.with_rbac(Arc::new(source)));
    let (body, _) = event_list("real-audit/audit2rbac-v1.jsonl", "audit.k8s.io/v1");
    let (status, _) = h
        .post(
            &format!("{}?cluster=kind", paths::WEBHOOK),
            Some(INGEST),
            &[("content-type", "application/json")],
            body,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    post_lines(&h, "rbac/snapshot-requests.jsonl", "kind").await;
    h
}

/// Posts a testdata file of event lines as an agent batch of `cluster`.
async fn post_lines(h: &Harness, file: &str, cluster: &str) {
    let body = std::fs::read(testdata(file)).unwrap();
    let (status, reply) = h
        .post(
            &format!("{}?node=cp-1&cluster={cluster}", paths::EVENTS),
            Some(INGEST),
            &[],
            body,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
}

#[tokio::test]
async fn suggest_answers_the_objects_as_a_list_or_yaml() {
    let h = loaded().await;
    let (status, list) = h
        .get(
            &format!("{}?user=bob&{RANGE}", paths::RBAC_SUGGEST),
            Some(READ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["kind"], "List");
    let kinds: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["ClusterRole", "ClusterRoleBinding"]);
    assert_eq!(
        list["items"][0]["rules"][0]["resources"],
        serde_json::json!(["nodes", "pods"])
    );

    let yaml = h
        .get_text(
            &format!("{}?user=alice&format=yaml&{RANGE}", paths::RBAC_SUGGEST),
            Some(READ),
        )
        .await;
    assert!(
        yaml.starts_with("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n"),
        "{yaml}"
    );
    // alice listed configmaps in ns1 (the capture) and in dev (the snapshot's requests): one
    // operation in two namespaces is cluster-wide; her pods and secrets stay in ns1.
    let docs: Vec<&str> = yaml.split("\n---\n").collect();
    assert_eq!(docs.len(), 6, "{yaml}");
    let cluster_role = docs
        .iter()
        .find(|d| d.contains("kind: ClusterRole\n"))
        .unwrap();
    assert!(
        cluster_role
            .contains("  resources:\n  - configmaps\n  verbs:\n  - get\n  - list\n  - watch"),
        "{yaml}"
    );
    let ns1 = docs
        .iter()
        .find(|d| d.contains("kind: Role\n") && d.contains("namespace: ns1\n"))
        .unwrap();
    assert!(ns1.contains("  - pods\n  - secrets\n"), "{yaml}");

    let (_, sa) = h
        .get(
            &format!(
                "{}?serviceaccount=ns1:sa1&auditIds=2&{RANGE}",
                paths::RBAC_SUGGEST
            ),
            Some(READ),
        )
        .await;
    assert_eq!(
        sa["items"][1]["subjects"][0],
        serde_json::json!({"kind": "ServiceAccount", "name": "sa1", "namespace": "ns1"})
    );
    let ids: Vec<Vec<String>> = serde_json::from_str(
        sa["items"][0]["metadata"]["annotations"]["kubetrail.io/rule-audit-ids"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!(!ids[0].is_empty() && ids[0].len() <= 2, "{ids:?}");

    // delta against the snapshot: alice's group binding grants get on pods in dev only, so
    // nothing of ns1 is subtracted; carol's patch of deployments is already granted.
    let (status, delta) = h
        .get(
            &format!("{}?user=carol&delta=true&{RANGE}", paths::RBAC_SUGGEST),
            Some(READ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{delta}");
    assert_eq!(delta["items"], serde_json::json!([]));
    let (_, full) = h
        .get(
            &format!("{}?user=carol&{RANGE}", paths::RBAC_SUGGEST),
            Some(READ),
        )
        .await;
    assert_eq!(
        full["items"][0]["rules"][0]["resources"],
        serde_json::json!(["deployments"])
    );
}

#[tokio::test]
async fn suggest_refusals_name_what_is_wrong() {
    let h = loaded().await;
    for (query, code, says) in [
        (
            "user=system:admin",
            StatusCode::NOT_FOUND,
            "no audit events matched user system:admin",
        ),
        (
            "user=bob&group=devs",
            StatusCode::BAD_REQUEST,
            "one of user, serviceaccount, group",
        ),
        (
            "",
            StatusCode::BAD_REQUEST,
            "one of user, serviceaccount, group",
        ),
        (
            "serviceaccount=nocolon",
            StatusCode::BAD_REQUEST,
            "NAMESPACE:NAME",
        ),
        (
            "user=bob&format=xml",
            StatusCode::BAD_REQUEST,
            "parameter format",
        ),
        (
            "user=bob&verb=get",
            StatusCode::BAD_REQUEST,
            "parameter verb",
        ),
        (
            "user=bob&delta=maybe",
            StatusCode::BAD_REQUEST,
            "parameter delta",
        ),
    ] {
        let (status, body) = h
            .get(
                &format!("{}?{query}&{RANGE}", paths::RBAC_SUGGEST),
                Some(READ),
            )
            .await;
        assert_eq!(status, code, "{query}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(says),
            "{query}: {body}"
        );
    }
    // A reader bound to cluster prod does not see the demo's cluster.
    let (status, body) = h
        .get(
            &format!("{}?user=bob&{RANGE}", paths::RBAC_SUGGEST),
            Some(PROD_READ),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // Without RBAC on the server, delta and unused say how to give it.
    let plain = Harness::new();
    let (status, body) = plain
        .get(
            &format!("{}?user=bob&delta=true", paths::RBAC_SUGGEST),
            Some(READ),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"].as_str().unwrap().contains("--rbac"), "{body}");
    let (status, _) = plain.get(paths::RBAC_UNUSED, Some(READ)).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn unused_compares_the_snapshot_with_use() {
    let h = loaded().await;
    let (status, reply) = h
        .get(
            &format!("{}?user=alice&{RANGE}", paths::RBAC_UNUSED),
            Some(READ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(
        reply["rbac"],
        serde_json::json!({"source": "files", "objects": 10})
    );
    let alice = &reply["subjects"][0];
    let used: Vec<(String, bool)> = alice["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                format!(
                    "{} {}",
                    p["verb"].as_str().unwrap(),
                    p["resource"].as_str().unwrap()
                ),
                p["used"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        used,
        vec![
            ("get configmaps".into(), false),
            ("get pods".into(), true),
            ("list pods".into(), false)
        ]
    );
    assert_eq!(alice["denied"][0]["request"], "list configmaps -n dev");
    // Every subject, the cluster-admin group first.
    let (_, all) = h
        .get(&format!("{}?{RANGE}", paths::RBAC_UNUSED), Some(READ))
        .await;
    assert_eq!(all["subjects"].as_array().unwrap().len(), 4);
    assert_eq!(all["subjects"][0]["subject"]["name"], "system:masters");
    assert_eq!(all["subjects"][0]["clusterAdmin"], true);
    // The default window is the last 30 days: the sample's requests are older.
    let (_, recent) = h
        .get(&format!("{}?user=alice", paths::RBAC_UNUSED), Some(READ))
        .await;
    assert_eq!(recent["subjects"][0]["requests"], 0);
    let (status, body) = h
        .get(
            &format!("{}?user=alice&delta=true", paths::RBAC_UNUSED),
            Some(READ),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn the_user_page_shows_permissions_and_the_least_privilege_role() {
    let h = loaded().await;
    let (cookie, _) = crate::web::sign_in(&h, READ).await;
    let uri = format!("/user?user=alice&range=custom&{RANGE}");
    let (status, body, _) = h.send(crate::web::page(&uri, Some(&cookie))).await;
    // Long names may break at separators (<wbr>); the text is what is read.
    let html = String::from_utf8(body).unwrap().replace("<wbr>", "");
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("id=\"permissions\""), "{html}");
    assert!(html.contains("3 granted"), "{html}");
    assert!(html.contains("get pods -n dev"), "{html}");
    assert!(html.contains("list configmaps -n dev"), "{html}");
    assert!(html.contains("id=\"least-privilege\""), "{html}");
    // The YAML is shown escaped (its quotes as entities) and offered as a download.
    assert!(html.contains("kubetrail:alice"), "{html}");
    assert!(html.contains("&quot;true&quot;"), "{html}");
    assert!(html.contains("download=\"alice-rbac.yaml\""), "{html}");
    // A user no binding names: the permissions panel says so.
    let (_, body, _) = h
        .send(crate::web::page(
            &format!("/user?user=bob&range=custom&{RANGE}"),
            Some(&cookie),
        ))
        .await;
    let html = String::from_utf8(body).unwrap().replace("<wbr>", "");
    assert!(
        html.contains("No binding grants anything to this identity."),
        "{html}"
    );
    assert!(html.contains("- nodes"), "{html}");
}

/// A snapshot of cluster prod is shown to prod's bound reader, over prod's requests only.
#[tokio::test]
async fn a_snapshot_of_one_cluster_answers_that_cluster_s_readers() {
    let mut h = Harness::new();
    let source = kubetrail_server::RbacSource::files(
        vec![testdata("rbac/snapshot.yaml")],
        Some("prod".into()),
    )
    .unwrap();
    let state = Arc::into_inner(h.state).expect("nothing else holds a new state");
    h.state = Arc::new(state.with_rbac(Arc::new(source)));
    post_lines(&h, "rbac/snapshot-requests.jsonl", "prod").await;
    post_lines(&h, "rbac/snapshot-requests.jsonl", "dev").await;
    let (status, reply) = h
        .get(
            &format!("{}?user=alice&{RANGE}", paths::RBAC_UNUSED),
            Some(PROD_READ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    // prod's two gets, not dev's too.
    assert_eq!(reply["subjects"][0]["requests"], 2);
    let (status, reply) = h
        .get(
            &format!("{}?user=alice&cluster=dev&{RANGE}", paths::RBAC_UNUSED),
            Some(READ),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("ask about cluster=prod"),
        "{reply}"
    );
}

#[tokio::test]
async fn answers_have_the_documented_shapes() {
    let h = loaded().await;
    let doc: Value = serde_json::from_str(kubetrail_server::OPENAPI_JSON).unwrap();
    for (path, uri) in [
        (
            paths::RBAC_SUGGEST,
            format!("{}?user=bob&auditIds=3&{RANGE}", paths::RBAC_SUGGEST),
        ),
        (
            paths::RBAC_SUGGEST,
            format!("{}?user=alice&{RANGE}", paths::RBAC_SUGGEST),
        ),
        (
            paths::RBAC_UNUSED,
            format!("{}?{RANGE}", paths::RBAC_UNUSED),
        ),
        (
            paths::RBAC_UNUSED,
            format!(
                "{}?serviceaccount=kube-system:leader&{RANGE}",
                paths::RBAC_UNUSED
            ),
        ),
    ] {
        let (status, value) = h.get(&uri, Some(READ)).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {value}");
        let schema = crate::openapi::response_schema(&doc, path, "get", "200");
        crate::openapi::check(&doc, schema, &value, &uri).unwrap();
    }
    for (uri, code) in [
        (format!("{}?user=nobody", paths::RBAC_SUGGEST), "404"),
        (format!("{}?user=a&group=b", paths::RBAC_UNUSED), "400"),
    ] {
        let (status, value) = h.get(&uri, Some(READ)).await;
        assert_eq!(status.as_str(), code, "{uri}");
        let path = uri.split('?').next().unwrap();
        crate::openapi::check(
            &doc,
            crate::openapi::response_schema(&doc, path, "get", code),
            &value,
            &uri,
        )
        .unwrap();
    }
}
