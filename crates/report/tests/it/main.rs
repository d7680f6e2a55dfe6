//! Every drill-down's count on the overview is the number of requests its filter lists, on
//! both backends, for scopes that leave the drill-down open, narrow it, or exclude it.

#![allow(clippy::unwrap_used)]

use kubetrail_model::Stage;
use kubetrail_report::{Drill, overview, requests};
use kubetrail_store::{CodeFilter, Filter, Record, Store};
use kubetrail_testsuite::conformance::{T0, record};

/// Requests of every kind a drill-down picks or leaves: users (named, anonymous, none),
/// verbs, resources (exec, secrets, RBAC objects, a custom RBAC resource, deployments), codes,
/// namespaces; long-running requests with both their stages.
fn traffic() -> Vec<Record> {
    let users = ["alice", "bob", "system:anonymous", ""];
    let verbs = [
        "get",
        "create",
        "patch",
        "delete",
        "deletecollection",
        "list",
    ];
    // (group, resource, subresource)
    let resources = [
        ("", "pods", ""),
        ("", "pods", "exec"),
        ("", "pods", "attach"),
        ("", "pods", "portforward"),
        ("", "pods", "log"),
        ("", "secrets", ""),
        ("rbac.authorization.k8s.io", "roles", ""),
        ("rbac.authorization.k8s.io", "clusterrolebindings", ""),
        ("rbac.authorization.k8s.io", "rolebindingrestrictions", ""),
        ("apps", "deployments", "scale"),
    ];
    let codes = [200, 201, 403, 404, 500];
    let mut out = Vec::new();
    let mut i = 0i64;
    for (u, user) in users.iter().enumerate() {
        for (v, verb) in verbs.iter().enumerate() {
            for (r, (group, resource, sub)) in resources.iter().enumerate() {
                let code = codes[(u + v + r) % codes.len()];
                let namespace = if (u + r) % 3 == 0 { "prod" } else { "dev" };
                let id = format!("req-{i}");
                let ts = T0 + i * 1_000_000;
                i += 1;
                let rec = |stage: Stage, ts: i64| {
                    let mut x = record("c1", &id, Some(stage), ts);
                    x.user = user.to_string();
                    x.verb = verb.to_string();
                    x.api_group = group.to_string();
                    x.resource = resource.to_string();
                    x.subresource = sub.to_string();
                    x.namespace = namespace.to_string();
                    x.code = Some(code);
                    x.raw = format!("{{\"auditID\":\"{id}\",\"stage\":\"{}\"}}", stage.as_str());
                    x.content_hash = kubetrail_store::content_hash(&x.raw);
                    x
                };
                if kubetrail_store::is_long_running(verb, sub) {
                    out.push(rec(Stage::ResponseStarted, ts));
                }
                out.push(rec(Stage::ResponseComplete, ts + 500));
            }
        }
    }
    out
}

fn scopes() -> Vec<(&'static str, Filter)> {
    let window = |f: Filter| Filter {
        time: kubetrail_store::TimeRange {
            from_micros: Some(T0),
            to_micros: Some(T0 + 10_000 * 1_000_000),
        },
        ..f
    };
    vec![
        ("everything", window(Filter::default())),
        (
            "one user",
            window(Filter {
                users: vec!["alice".into()],
                ..Filter::default()
            }),
        ),
        (
            "a user and no user",
            window(Filter {
                users: vec!["bob".into(), String::new()],
                ..Filter::default()
            }),
        ),
        (
            "one namespace",
            window(Filter {
                namespaces: vec!["prod".into()],
                ..Filter::default()
            }),
        ),
        (
            "server errors and successes",
            window(Filter {
                codes: vec![CodeFilter::Class(5), CodeFilter::Class(2)],
                ..Filter::default()
            }),
        ),
        (
            "rbac roles and pods",
            window(Filter {
                resources: vec!["roles".parse().unwrap(), "pods".parse().unwrap()],
                verbs: vec!["create".into(), "get".into()],
                ..Filter::default()
            }),
        ),
    ]
}

fn counts_equal_lists(store: &dyn Store, backend: &str) {
    store.append(&traffic()).unwrap();
    for (name, scope) in scopes() {
        let o = overview(store, &scope).unwrap();
        let mut nonzero = 0;
        for d in Drill::ALL {
            let listed = match d.within(&scope).unwrap() {
                Some(f) => requests(store, &f, usize::MAX).unwrap().len() as u64,
                None => 0,
            };
            assert_eq!(
                o.section(d).total,
                listed,
                "{backend}, scope {name}: the overview counts {} {d} requests, its filter lists {listed}",
                o.section(d).total
            );
            nonzero += usize::from(listed > 0);
        }
        // The scopes are chosen so that most drill-downs hold something: the test compares
        // numbers, not zeros.
        assert!(
            nonzero >= 3,
            "{backend}, scope {name}: only {nonzero} drill-downs hold requests"
        );
    }
    // Requests are counted once: an exec's two stages make one.
    let exec = Drill::ExecAttach.within(&scopes()[0].1).unwrap().unwrap();
    let listed = requests(store, &exec, usize::MAX).unwrap();
    let mut ids: Vec<&str> = listed.iter().map(|r| r.audit_id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), listed.len(), "{backend}");
    assert_eq!(
        listed.len(),
        4 * 6 * 3,
        "{backend}: every user × verb × interactive subresource"
    );
}

#[test]
fn drill_down_counts_equal_their_lists_on_duckdb() {
    let dir = tempfile::tempdir().unwrap();
    let store = kubetrail_store_duckdb::DuckDbStore::open(dir.path()).unwrap();
    counts_equal_lists(&store, "duckdb");
}

#[test]
fn drill_down_counts_equal_their_lists_on_clickhouse() {
    let Some(server) = kubetrail_testsuite::clickhouse::TestServer::start() else {
        return;
    };
    let store =
        kubetrail_store_clickhouse::ClickHouseStore::open(kubetrail_store_clickhouse::Connection {
            url: server.url.clone(),
            database: "drill_downs".into(),
            user: None,
            password: None,
        })
        .unwrap();
    counts_equal_lists(&store, "clickhouse");
}
