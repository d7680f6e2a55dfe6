//! The behaviour every [`Store`] backend must have, written once. A backend's tests make one
//! test of each check with [`conformance_tests!`](crate::conformance_tests), each over a fresh,
//! empty store. Failures panic: this is test support. [`ALL`] lists the checks; a test in this
//! crate holds it equal to the macro's list.

#![allow(clippy::unwrap_used)]

mod aggregation;
mod alerts;

pub use aggregation::{
    aggregations_count, one_pass_aggregations_agree_with_count_by, requests_are_counted_once,
};
pub use alerts::alerts_are_stored_once_filtered_and_counted;

use std::time::Duration;

use kubetrail_model::{Level, Stage};

use kubetrail_store::{
    Aggregation, CodeFilter, Decision, Filter, ResourceSelector, StageSelection, TimeRange,
};
use kubetrail_store::{Record, Retention, Store};

/// Microseconds in a second.
pub(crate) const S: i64 = 1_000_000;
/// A fixed "now" for generated records: 2024-05-01T00:00:00Z.
pub const T0: i64 = 1_714_521_600 * S;

/// A record with sensible defaults; tests change what they look at.
pub fn record(cluster: &str, audit_id: &str, stage: Option<Stage>, ts_micros: i64) -> Record {
    Record {
        cluster: cluster.into(),
        audit_id: audit_id.into(),
        stage,
        level: Some(Level::Metadata),
        ts_micros,
        request_ts_micros: Some(ts_micros - 1000),
        received_micros: ts_micros + 5000,
        verb: "get".into(),
        user: "alice".into(),
        groups: vec!["dev".into(), "system:authenticated".into()],
        impersonated_user: String::new(),
        source_ip: "10.0.0.1".into(),
        user_agent: "kubectl/v1.30.0".into(),
        api_group: String::new(),
        api_version: "v1".into(),
        resource: "pods".into(),
        subresource: String::new(),
        namespace: "default".into(),
        name: "web-1".into(),
        code: Some(200),
        decision: "allow".into(),
        reason: "RBAC: allowed".into(),
        request_uri: "/api/v1/namespaces/default/pods/web-1".into(),
        raw: format!("{{\"auditID\":\"{audit_id}\",\"note\":\"raw kept \\u00e9 exactly\"}}"),
        content_hash: 0,
    }
    .with_hash()
}

trait WithHash {
    fn with_hash(self) -> Self;
}

impl WithHash for Record {
    /// The record with the content hash of its (changed) text.
    fn with_hash(mut self) -> Record {
        self.content_hash = kubetrail_store::content_hash(&self.raw);
        self
    }
}

/// Every check, by name, in the order the macro lists them.
pub const ALL: [&str; 15] = [
    "append_is_idempotent",
    "append_all_counts_each_batch",
    "bulk_load_counts_as_appends_do",
    "identity_is_cluster_audit_id_and_stage",
    "conflicting_events_are_all_kept",
    "pages_are_newest_first_and_complete",
    "filters_select_exactly",
    "aggregations_count",
    "requests_are_counted_once",
    "one_pass_aggregations_agree_with_count_by",
    "retention_by_age_and_size",
    "schema_is_versioned",
    "invalid_filters_are_rejected",
    "ready_when_it_gives_back_events",
    "alerts_are_stored_once_filtered_and_counted",
];

pub(crate) fn ids(store: &dyn Store, filter: &Filter) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.query(filter, cursor.as_ref(), 3).expect("query");
        out.extend(
            page.records
                .iter()
                .map(|r| format!("{}/{}", r.audit_id, r.stage.map_or("-", Stage::as_str))),
        );
        match page.next {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

/// `append_all` answers per batch as sequential appends would, also when batches overlap each
/// other and the store.
pub fn append_all_counts_each_batch(store: &dyn Store) {
    let ev = |id: &str, t: i64| record("c", id, Some(Stage::ResponseComplete), T0 + t * S);
    store.append(&[ev("old", 1)]).expect("append");
    let a = vec![ev("a1", 2), ev("a2", 3), ev("a1", 2)];
    let b = vec![ev("b1", 4), ev("a2", 3)];
    let c = vec![ev("old", 1), ev("c1", 5)];
    let empty: Vec<Record> = Vec::new();
    let outcomes = store.append_all(&[&a, &b, &empty, &c]).expect("append_all");
    let pairs: Vec<(u64, u64)> = outcomes.iter().map(|o| (o.stored, o.duplicates)).collect();
    assert_eq!(pairs, [(2, 1), (1, 1), (0, 0), (1, 1)]);
    assert_eq!(store.count().expect("count"), 5);
    // Disjoint from everything stored: the fast path.
    let d = vec![ev("d1", 100), ev("d2", 101)];
    let e = vec![ev("e1", 102)];
    let outcomes = store.append_all(&[&d, &e]).expect("append_all");
    assert_eq!(
        outcomes.iter().map(|o| o.stored).collect::<Vec<_>>(),
        [2, 1]
    );
    assert_eq!(store.count().expect("count"), 8);
    assert!(store.append_all(&[]).expect("nothing").is_empty());
}

/// A bulk load answers per batch as appends would (repeats within and across its batches, and
/// of events stored before it); once finished, everything is stored. A load dropped unfinished
/// keeps what it had committed (here, with two events: none of them, or both where every batch
/// is its own commit), and the store goes on working.
pub fn bulk_load_counts_as_appends_do(store: &dyn Store) {
    let ev = |id: &str, t: i64| record("c", id, Some(Stage::ResponseComplete), T0 + t * S);
    store.append(&[ev("old", 1)]).expect("append");
    let mut load = store.bulk().expect("bulk");
    let a = vec![ev("a1", 2), ev("a2", 3), ev("a1", 2)];
    let b = vec![ev("b1", 4), ev("a2", 3)];
    let c = vec![ev("old", 1), ev("c1", 5)];
    let mut pairs = Vec::new();
    for batch in [&a, &b, &Vec::new(), &c] {
        let o = load.append(batch).expect("bulk append");
        pairs.push((o.stored, o.duplicates));
    }
    assert_eq!(pairs, [(2, 1), (1, 1), (0, 0), (1, 1)]);
    load.finish().expect("finish");
    assert_eq!(store.count().expect("count"), 5);
    assert_eq!(ids(store, &Filter::default()).len(), 5);

    let mut load = store.bulk().expect("bulk");
    let o = load
        .append(&[ev("d1", 6), ev("d2", 7)])
        .expect("bulk append");
    assert_eq!((o.stored, o.duplicates), (2, 0));
    drop(load);
    let count = store.count().expect("count");
    assert!(count == 5 || count == 7, "{count} events");
    let o = store.append(&[ev("d1", 6), ev("e1", 8)]).expect("append");
    assert_eq!(o.stored, if count == 5 { 2 } else { 1 });
}

/// Storing the same batch twice, or a batch holding the same event twice, stores it once.
pub fn append_is_idempotent(store: &dyn Store) {
    let batch: Vec<Record> = (0..10)
        .map(|i| {
            record(
                "c1",
                &format!("id-{i}"),
                Some(Stage::ResponseComplete),
                T0 + i * S,
            )
        })
        .collect();
    let first = store.append(&batch).expect("append");
    assert_eq!((first.stored, first.duplicates), (10, 0));
    let again = store.append(&batch).expect("append again");
    assert_eq!((again.stored, again.duplicates), (0, 10));
    // A batch overlapping the stored ones, with a repeat inside itself.
    let mut mixed: Vec<Record> = (5..15)
        .map(|i| {
            record(
                "c1",
                &format!("id-{i}"),
                Some(Stage::ResponseComplete),
                T0 + i * S,
            )
        })
        .collect();
    mixed.push(mixed[9].clone());
    let third = store.append(&mixed).expect("append mixed");
    assert_eq!((third.stored, third.duplicates), (5, 6));
    assert_eq!(store.count().expect("count"), 15);
    let got = store.query(&Filter::default(), None, 100).expect("query");
    assert_eq!(got.records[0].raw, batch[0].raw.replace("id-0", "id-14"));
    assert!(store.append(&[]).is_ok());
}

/// Different stages, clusters or times are different events.
pub fn identity_is_cluster_audit_id_and_stage(store: &dyn Store) {
    let batch = vec![
        record("c1", "same", Some(Stage::RequestReceived), T0),
        record("c1", "same", Some(Stage::ResponseComplete), T0 + 10),
        record("c2", "same", Some(Stage::ResponseComplete), T0 + 10),
        record("c1", "nostage", None, T0 + 20),
        // A placeholder auditID reused by an unrelated event an hour later.
        record("c1", "same", Some(Stage::ResponseComplete), T0 + 3600 * S),
    ];
    assert_eq!(store.append(&batch).expect("append").stored, 5);
    assert_eq!(store.append(&batch[1..2]).expect("append").duplicates, 1);
    assert_eq!(store.append(&batch[4..]).expect("append").duplicates, 1);
    assert_eq!(store.count().expect("count"), 5);
    let page = store.query(&Filter::default(), None, 10).expect("query");
    let stored = page
        .records
        .iter()
        .find(|r| r.audit_id == "nostage")
        .expect("stored");
    assert_eq!(stored.stage, None);
    // Everything comes back as it went in.
    let original = &batch[3];
    assert_eq!(stored, original);
}

/// Distinct events that claim one identity (a reused auditID, a client-set `Audit-ID`) are all
/// stored and counted as conflicts; a copy of either, also with its keys in another order, is
/// a duplicate; pages visit each once.
pub fn conflicting_events_are_all_kept(store: &dyn Store) {
    let at = |raw: &str| {
        Record {
            raw: raw.into(),
            ..record("c", "abc-123", Some(Stage::ResponseComplete), T0)
        }
        .with_hash()
    };
    let a = at(r#"{"auditID":"abc-123","verb":"get","user":{"username":"alice"}}"#);
    let b = at(r#"{"auditID":"abc-123","verb":"delete","user":{"username":"mallory"}}"#);
    let a_reordered = at(r#"{"user":{"username":"alice"},"verb":"get","auditID":"abc-123"}"#);
    let o = store.append(std::slice::from_ref(&a)).expect("append");
    assert_eq!((o.stored, o.duplicates, o.conflicts), (1, 0, 0));
    let o = store.append(&[b.clone(), b.clone()]).expect("append");
    assert_eq!(
        (o.stored, o.duplicates, o.conflicts),
        (1, 1, 1),
        "b kept once"
    );
    let o = store.append(&[a_reordered]).expect("append");
    assert_eq!((o.stored, o.duplicates), (0, 1), "key order is not content");
    let o = store.append(&[b.clone(), a.clone()]).expect("append");
    assert_eq!((o.stored, o.duplicates), (0, 2));
    // A third, in a batch that also brings its own repeat and a new event.
    let c = at(r#"{"auditID":"abc-123","verb":"list"}"#);
    let other = record("c", "other", Some(Stage::ResponseComplete), T0);
    let outcomes = store
        .append_all(&[std::slice::from_ref(&c), &[c.clone(), other]])
        .expect("append_all");
    let got: Vec<_> = outcomes
        .iter()
        .map(|o| (o.stored, o.duplicates, o.conflicts))
        .collect();
    assert_eq!(got, [(1, 0, 1), (1, 1, 0)]);
    assert_eq!(store.count().expect("count"), 4);
    // Page by page, one event a page: each of the three exactly once.
    let filter = Filter {
        audit_ids: vec!["abc-123".into()],
        ..Filter::default()
    };
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.query(&filter, cursor.as_ref(), 1).expect("query");
        seen.extend(page.records.iter().map(|r| (r.raw.clone(), r.content_hash)));
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut texts: Vec<&str> = seen.iter().map(|(t, _)| t.as_str()).collect();
    texts.sort_unstable();
    let mut expected = vec![a.raw.as_str(), b.raw.as_str(), c.raw.as_str()];
    expected.sort_unstable();
    assert_eq!(texts, expected);
    assert!(
        seen.iter()
            .all(|(t, h)| *h == kubetrail_store::content_hash(t)),
        "each comes back with its hash"
    );
    let n = store
        .aggregate(
            &filter,
            &Aggregation::CountBy {
                fields: vec![kubetrail_store::Field::Verb],
                limit: None,
            },
        )
        .expect("aggregate");
    assert_eq!(n.total(), 3, "each is counted");
}

/// Pages are newest first, and following the cursor visits every event exactly once.
pub fn pages_are_newest_first_and_complete(store: &dyn Store) {
    let mut batch = Vec::new();
    for i in 0..20 {
        // Pairs of events share a timestamp, so the cursor's tie-breaking matters.
        batch.push(record(
            "c1",
            &format!("e{i:02}"),
            Some(Stage::ResponseComplete),
            T0 + (i / 2) * S,
        ));
    }
    store.append(&batch).expect("append");
    let all = ids(store, &Filter::default());
    assert_eq!(all.len(), 20);
    let mut expected: Vec<String> = (0..20)
        .rev()
        .map(|i| format!("e{i:02}/ResponseComplete"))
        .collect();
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(all, expected);
    let page = store.query(&Filter::default(), None, 20).expect("query");
    assert!(page.next.is_none(), "no cursor after the last page");
    assert!(
        page.records
            .windows(2)
            .all(|w| w[0].ts_micros >= w[1].ts_micros)
    );
}

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

/// Retention deletes by age and by size.
pub fn retention_by_age_and_size(store: &dyn Store) {
    let now = chrono::Utc::now().timestamp_micros();
    let day = 86_400 * S;
    let batch: Vec<Record> = (0..40)
        .map(|i| {
            record(
                "c1",
                &format!("r{i}"),
                Some(Stage::ResponseComplete),
                now - (40 - i) * day / 4 + day / 8,
            )
        })
        .collect();
    store.append(&batch).expect("append");
    let out = store
        .apply_retention(&Retention {
            max_age: Some(Duration::from_secs(5 * 86_400)),
            max_bytes: None,
        })
        .expect("retention by age");
    // Records are 6 hours apart, 3 to 237 hours old: the 20 older than 5 days go.
    assert_eq!(out.deleted, 20);
    assert_eq!(store.count().expect("count"), 20);
    let oldest = store
        .query(&Filter::default(), None, 100)
        .expect("query")
        .records;
    assert!(oldest.iter().all(|r| r.ts_micros >= now - 5 * day));

    let size = store.size_bytes().expect("size");
    assert!(size > 0);
    let out = store
        .apply_retention(&Retention {
            max_age: None,
            max_bytes: Some(1),
        })
        .expect("retention by size");
    assert!(out.deleted >= 19, "deleted {}", out.deleted);
    assert!(store.count().expect("count") <= 1);
}

/// A new store says its schema version (each backend numbers its own migrations).
pub fn schema_is_versioned(store: &dyn Store) {
    assert!(store.schema_version().expect("version") >= 1);
    assert_eq!(store.count().expect("count"), 0);
}

/// Filters the model rejects are errors of kind Invalid, from every backend.
pub fn invalid_filters_are_rejected(store: &dyn Store) {
    let bad = Filter {
        verbs: vec!["GET".into()],
        ..Filter::default()
    };
    let err = store.query(&bad, None, 10).expect_err("upper-case verb");
    assert_eq!(err.kind(), kubetrail_store::ErrorKind::Invalid);
    let err = store
        .aggregate(
            &bad,
            &Aggregation::CountBy {
                fields: vec![],
                limit: None,
            },
        )
        .expect_err("upper-case verb");
    assert_eq!(err.kind(), kubetrail_store::ErrorKind::Invalid);
}

/// [`Store::check`] passes on a healthy store, empty or not, and a fresh store has set
/// nothing aside.
pub fn ready_when_it_gives_back_events(store: &dyn Store) {
    store.check().expect("an empty store is ready");
    store
        .append(&[record("c", "ready-1", Some(Stage::ResponseComplete), T0)])
        .unwrap();
    store.check().expect("a store with events is ready");
    assert_eq!(store.recovery_report(), None);
}
