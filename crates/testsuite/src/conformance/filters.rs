//! Filters: every field of a [`Filter`] selects exactly the events it should, in every backend.

use kubetrail_model::Stage;
use kubetrail_store::{
    CodeFilter, Decision, Filter, Record, ResourceSelector, StageSelection, Store, TimeRange,
};

use super::{S, T0, ids, record};

/// Each filter field selects exactly the events it should.
pub fn filters_select_exactly(store: &dyn Store) {
    let mut b = Vec::new();
    let mut add = |id: &str, f: &dyn Fn(&mut Record)| {
        let mut r = record(
            "c1",
            id,
            Some(Stage::ResponseComplete),
            T0 + b.len() as i64 * S,
        );
        f(&mut r);
        b.push(r);
    };
    add("base", &|_| {});
    add("bob", &|r| {
        r.source_ip = "203.0.113.9".into();
        r.user = "bob".into();
        r.groups = vec!["ops".into()];
        r.impersonated_user = "carol".into();
    });
    add("anon", &|r| {
        r.user = String::new();
        r.groups = vec![];
    });
    add("deploy", &|r| {
        r.verb = "delete".into();
        r.api_group = "apps".into();
        r.resource = "deployments".into();
        r.name = "nginx".into();
        r.namespace = "prod".into();
    });
    add("exec", &|r| {
        r.verb = "create".into();
        r.subresource = "exec".into();
        r.code = Some(101);
    });
    add("node", &|r| {
        r.resource = "nodes".into();
        r.namespace = String::new();
        r.name = "n1".into();
    });
    add("forbidden", &|r| {
        r.code = Some(403);
        r.decision = "forbid".into();
        r.resource = "secrets".into();
    });
    add("notfound", &|r| r.code = Some(404));
    add("error", &|r| r.code = Some(503));
    add("other", &|r| r.cluster = "c2".into());
    add("received", &|r| {
        r.stage = Some(Stage::RequestReceived);
        r.code = None;
    });
    add("unauth", &|r| {
        r.stage = Some(Stage::ResponseStarted);
        r.code = Some(401);
        r.user = String::new();
    });
    add("text", &|r| r.raw = "{\"needle\":\"Secret-Word\"}".into());
    add("healthz", &|r| {
        r.api_version = String::new();
        r.resource = String::new();
        r.namespace = String::new();
        r.name = String::new();
        r.request_uri = "/healthz".into();
    });
    store.append(&b).expect("append");

    let check = |name: &str, f: Filter, want: &[&str]| {
        let mut got: Vec<String> = ids(store, &f)
            .into_iter()
            .map(|s| s.split('/').next().unwrap_or("").to_string())
            .collect();
        got.sort();
        let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(got, want, "filter {name}");
    };
    let all: Vec<&str> = vec![
        "base",
        "bob",
        "anon",
        "deploy",
        "exec",
        "node",
        "forbidden",
        "notfound",
        "error",
        "other",
        "received",
        "unauth",
        "text",
        "healthz",
    ];
    check("none", Filter::default(), &all);
    // `*` is every resource: of the core group, of any group; a non-resource request
    // (`/healthz`, whose group is empty too) is none of them.
    let resource_requests: Vec<&str> = all.iter().copied().filter(|id| *id != "healthz").collect();
    check(
        "every resource",
        Filter {
            resources: vec!["*".parse().unwrap()],
            ..Filter::default()
        },
        &resource_requests,
    );
    check(
        "every core resource",
        Filter {
            resources: vec!["*.core".parse().unwrap()],
            ..Filter::default()
        },
        &resource_requests
            .iter()
            .copied()
            .filter(|id| *id != "deploy")
            .collect::<Vec<_>>(),
    );
    check(
        "user",
        Filter {
            users: vec!["bob".into()],
            ..Filter::default()
        },
        &["bob"],
    );
    check(
        "impersonated",
        Filter {
            impersonated_users: vec!["carol".into()],
            ..Filter::default()
        },
        &["bob"],
    );
    // Either identity: bob acting as carol is found as bob and as carol.
    for who in ["bob", "carol"] {
        check(
            &format!("identity {who}"),
            Filter {
                identities: vec![who.into()],
                ..Filter::default()
            },
            &["bob"],
        );
    }
    check(
        "identity alice or carol",
        Filter {
            identities: vec!["alice".into(), "carol".into()],
            ..Filter::default()
        },
        &all.iter()
            .copied()
            .filter(|id| !["anon", "unauth"].contains(id))
            .collect::<Vec<_>>(),
    );
    // Users left out, by name or by prefix; every other event stays (the unauthenticated
    // ones too).
    check(
        "not bob",
        Filter {
            excluded_users: vec!["bob".into()],
            ..Filter::default()
        },
        &all.iter()
            .copied()
            .filter(|id| *id != "bob")
            .collect::<Vec<_>>(),
    );
    check(
        "not al*, not b*",
        Filter {
            excluded_users: vec!["al*".into(), "b*".into()],
            ..Filter::default()
        },
        &["anon", "unauth"],
    );
    check(
        "not anybody",
        Filter {
            excluded_users: vec!["*".into()],
            ..Filter::default()
        },
        &[],
    );
    // The empty identity is "no authenticated user", not "impersonated nobody".
    check(
        "no identity",
        Filter {
            identities: vec!["".into()],
            ..Filter::default()
        },
        &["anon", "unauth"],
    );
    check(
        "no identity or carol",
        Filter {
            identities: vec!["".into(), "carol".into()],
            ..Filter::default()
        },
        &["anon", "unauth", "bob"],
    );
    check(
        "identity carol, authenticated as alice",
        Filter {
            identities: vec!["carol".into()],
            users: vec!["alice".into()],
            ..Filter::default()
        },
        &[],
    );
    check(
        "impersonated by nobody",
        Filter {
            impersonated_users: vec!["".into()],
            ..Filter::default()
        },
        &all.iter()
            .copied()
            .filter(|id| *id != "bob")
            .collect::<Vec<_>>(),
    );
    check(
        "no user",
        Filter {
            users: vec!["".into()],
            ..Filter::default()
        },
        &["anon", "unauth"],
    );
    check(
        "group",
        Filter {
            groups: vec!["ops".into()],
            ..Filter::default()
        },
        &["bob"],
    );
    check(
        "group is whole",
        Filter {
            groups: vec!["de".into()],
            ..Filter::default()
        },
        &[],
    );
    check(
        "verb",
        Filter {
            verbs: vec!["delete".into(), "create".into()],
            ..Filter::default()
        },
        &["deploy", "exec"],
    );
    check(
        "resource any group",
        Filter {
            resources: vec!["deployments".parse().unwrap()],
            ..Filter::default()
        },
        &["deploy"],
    );
    check(
        "resource.group",
        Filter {
            resources: vec!["deployments.apps".parse().unwrap()],
            ..Filter::default()
        },
        &["deploy"],
    );
    check(
        "wrong group",
        Filter {
            resources: vec!["deployments.extensions".parse().unwrap()],
            ..Filter::default()
        },
        &[],
    );
    check(
        "subresource",
        Filter {
            resources: vec!["pods/exec".parse().unwrap()],
            ..Filter::default()
        },
        &["exec"],
    );
    check(
        "core only, no subresource",
        Filter {
            resources: vec![ResourceSelector::core("pods", Some(""))],
            ..Filter::default()
        },
        &[
            "base", "bob", "anon", "notfound", "error", "other", "received", "unauth", "text",
        ],
    );
    check(
        "whole group",
        Filter {
            resources: vec![ResourceSelector::group("apps")],
            ..Filter::default()
        },
        &["deploy"],
    );
    check(
        "namespace",
        Filter {
            namespaces: vec!["prod".into()],
            ..Filter::default()
        },
        &["deploy"],
    );
    check(
        "cluster-scoped",
        Filter {
            namespaces: vec!["".into()],
            ..Filter::default()
        },
        // A non-resource request has no namespace either.
        &["node", "healthz"],
    );
    check(
        "name",
        Filter {
            names: vec!["nginx".into(), "n1".into()],
            ..Filter::default()
        },
        &["deploy", "node"],
    );
    check(
        "auditID",
        Filter {
            audit_ids: vec!["exec".into(), "node".into(), "absent".into()],
            ..Filter::default()
        },
        &["exec", "node"],
    );
    check(
        "source IP",
        Filter {
            source_ips: vec!["203.0.113.9".into(), "203.0.113.1".into()],
            ..Filter::default()
        },
        &["bob"],
    );
    check(
        "code",
        Filter {
            codes: vec![CodeFilter::Exact(403)],
            ..Filter::default()
        },
        &["forbidden"],
    );
    check(
        "class",
        Filter {
            codes: vec![CodeFilter::Class(4)],
            ..Filter::default()
        },
        &["forbidden", "notfound", "unauth"],
    );
    check(
        "failed",
        Filter {
            codes: vec![CodeFilter::Failed],
            ..Filter::default()
        },
        &["forbidden", "notfound", "error", "unauth"],
    );
    check(
        "1xx or 5xx",
        Filter {
            codes: vec![CodeFilter::Class(1), CodeFilter::Class(5)],
            ..Filter::default()
        },
        &["exec", "error"],
    );
    check(
        "decision",
        Filter {
            decision: Some(Decision::Forbid),
            ..Filter::default()
        },
        &["forbidden"],
    );
    check(
        "cluster",
        Filter {
            clusters: vec!["c2".into()],
            ..Filter::default()
        },
        &["other"],
    );
    check(
        "text",
        Filter {
            text: Some("Secret-Word".into()),
            ..Filter::default()
        },
        &["text"],
    );
    check(
        "text is case-sensitive",
        Filter {
            text: Some("secret-word".into()),
            ..Filter::default()
        },
        &[],
    );
    check(
        "final stages",
        Filter {
            stages: StageSelection::Final,
            ..Filter::default()
        },
        &all.iter()
            .copied()
            .filter(|i| *i != "received")
            .collect::<Vec<_>>(),
    );
    check(
        "time",
        Filter {
            time: TimeRange {
                from_micros: Some(T0 + S),
                to_micros: Some(T0 + 3 * S),
            },
            ..Filter::default()
        },
        &["bob", "anon"],
    );
    check(
        "combined",
        Filter {
            verbs: vec!["get".into()],
            codes: vec![CodeFilter::Failed],
            namespaces: vec!["default".into()],
            ..Filter::default()
        },
        &["forbidden", "notfound", "error", "unauth"],
    );
}
