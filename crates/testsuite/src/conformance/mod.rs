//! The behaviour every [`Store`] backend must have, written once. A backend's tests make one
//! test of each check with [`conformance_tests!`](crate::conformance_tests), each over a fresh,
//! empty store. Failures panic: this is test support. [`ALL`] lists the checks; a test in this
//! crate holds it equal to the macro's list.

#![allow(clippy::unwrap_used)]

mod aggregation;
mod alerts;
mod chain;
mod filters;

pub use aggregation::{
    aggregations_count, one_pass_aggregations_agree_with_count_by, requests_are_counted_once,
};
pub use alerts::alerts_are_stored_once_filtered_and_counted;
pub use chain::chain_links_every_commit_and_verifies;
pub use filters::filters_select_exactly;

use std::time::Duration;

use kubetrail_model::{Level, Stage};

use kubetrail_store::{Aggregation, Filter};
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
pub const ALL: [&str; 17] = [
    "append_is_idempotent",
    "append_all_counts_each_batch",
    "bulk_load_counts_as_appends_do",
    "identity_is_cluster_audit_id_and_stage",
    "conflicting_events_are_all_kept",
    "pages_are_newest_first_and_complete",
    "heads_are_pages_without_the_text",
    "filters_select_exactly",
    "aggregations_count",
    "requests_are_counted_once",
    "one_pass_aggregations_agree_with_count_by",
    "retention_by_age_and_size",
    "schema_is_versioned",
    "invalid_filters_are_rejected",
    "ready_when_it_gives_back_events",
    "alerts_are_stored_once_filtered_and_counted",
    "chain_links_every_commit_and_verifies",
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

/// `query_heads` answers the pages `query` does, record for record and cursor for cursor, the
/// text left out (or kept, by a backend that reads it anyway) but for impersonated requests.
pub fn heads_are_pages_without_the_text(store: &dyn Store) {
    let batch: Vec<Record> = (0..6)
        .map(|i| {
            let mut r = record(
                "c1",
                &format!("h{i}"),
                Some(Stage::ResponseComplete),
                T0 + i * S,
            );
            if i % 2 == 0 {
                r.impersonated_user = "bob".into();
            }
            r
        })
        .collect();
    store.append(&batch).expect("append");
    let full = store
        .query(&Filter::default(), None, 100)
        .expect("query")
        .records;
    let heads = store
        .query_heads(&Filter::default(), None, 100)
        .expect("query_heads")
        .records;
    assert_eq!(full.len(), 6);
    assert_eq!(heads.len(), full.len());
    for (f, h) in full.iter().zip(&heads) {
        if f.impersonated_user.is_empty() {
            assert!(
                h.raw.is_empty() || h.raw == f.raw,
                "{}: {:?}",
                f.audit_id,
                h.raw
            );
        } else {
            assert_eq!(
                h.raw, f.raw,
                "{}: an impersonated request keeps its text",
                f.audit_id
            );
        }
        assert_eq!(
            Record {
                raw: f.raw.clone(),
                ..h.clone()
            },
            *f
        );
    }
    let first = store
        .query_heads(&Filter::default(), None, 4)
        .expect("first page");
    let rest = store
        .query_heads(&Filter::default(), first.next.as_ref(), 4)
        .expect("second page");
    let ids: Vec<&str> = first
        .records
        .iter()
        .chain(&rest.records)
        .map(|r| r.audit_id.as_str())
        .collect();
    assert_eq!(ids, vec!["h5", "h4", "h3", "h2", "h1", "h0"]);
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
