//! Aggregations: counts, top-N, histograms, one-pass variants, and counting requests once.

use std::time::Duration;

use kubetrail_model::Stage;

use super::{S, T0, ids, record};
use kubetrail_store::Store;
use kubetrail_store::{
    Aggregation, AggregationResult, CodeFilter, Field, Filter, ResourceSelector, StageSelection,
    TimeRange,
};

/// Counts by field, top-N, totals and histograms.
pub fn aggregations_count(store: &dyn Store) {
    let mut b = Vec::new();
    for i in 0..30i64 {
        let mut r = record(
            "c1",
            &format!("a{i}"),
            Some(Stage::ResponseComplete),
            T0 + i * 60 * S,
        );
        r.verb = ["get", "list", "create"][(i % 3) as usize].into();
        r.user = if i < 20 { "alice".into() } else { "bob".into() };
        if i % 10 == 0 {
            r.api_group = "apps".into();
            r.resource = "deployments".into();
            r.subresource = "scale".into();
        }
        b.push(r);
    }
    store.append(&b).expect("append");
    let f = Filter::default();
    let total = store
        .aggregate(
            &f,
            &Aggregation::CountBy {
                fields: vec![],
                limit: None,
            },
        )
        .expect("total");
    assert_eq!(total.total(), 30);
    let by_user = store
        .aggregate(
            &f,
            &Aggregation::CountBy {
                fields: vec![Field::User],
                limit: None,
            },
        )
        .expect("by user");
    let got: Vec<(String, u64)> = by_user
        .groups()
        .iter()
        .map(|g| (g.keys[0].clone(), g.count))
        .collect();
    assert_eq!(got, [("alice".to_string(), 20), ("bob".to_string(), 10)]);
    let top = store
        .aggregate(
            &f,
            &Aggregation::CountBy {
                fields: vec![Field::User],
                limit: Some(1),
            },
        )
        .expect("top");
    assert_eq!(top.groups().len(), 1);
    let two = store
        .aggregate(
            &f,
            &Aggregation::CountBy {
                fields: vec![Field::User, Field::Verb],
                limit: None,
            },
        )
        .expect("two fields");
    let alice_get = two
        .groups()
        .iter()
        .find(|g| g.keys == ["alice", "get"])
        .expect("group");
    assert_eq!(alice_get.count, 7);
    let by_resource = store
        .aggregate(
            &f,
            &Aggregation::CountBy {
                fields: vec![Field::Resource],
                limit: None,
            },
        )
        .expect("resource");
    let keys: Vec<&str> = by_resource
        .groups()
        .iter()
        .map(|g| g.keys[0].as_str())
        .collect();
    assert_eq!(keys, ["pods", "deployments.apps/scale"]);
    let by_code = store
        .aggregate(
            &f,
            &Aggregation::CountBy {
                fields: vec![Field::Code],
                limit: None,
            },
        )
        .expect("code");
    assert_eq!(by_code.groups()[0].keys[0], "200");

    let hist = store
        .aggregate(
            &f,
            &Aggregation::Histogram {
                bucket: Duration::from_secs(600),
                by: None,
            },
        )
        .expect("histogram");
    let AggregationResult::Histogram(buckets) = hist else {
        panic!("a histogram")
    };
    assert_eq!(buckets.len(), 3);
    assert!(buckets.iter().all(|b| b.count == 10 && b.key.is_none()));
    assert_eq!(buckets[0].start_micros, T0);
    assert_eq!(buckets[1].start_micros, T0 + 600 * S);
    let split = store
        .aggregate(
            &f,
            &Aggregation::Histogram {
                bucket: Duration::from_secs(600),
                by: Some(Field::User),
            },
        )
        .expect("split histogram");
    let AggregationResult::Histogram(buckets) = split else {
        panic!("a histogram")
    };
    let last: Vec<(Option<&str>, u64)> = buckets
        .iter()
        .filter(|b| b.start_micros == T0 + 1200 * S)
        .map(|b| (b.key.as_deref(), b.count))
        .collect();
    assert_eq!(last, [(Some("bob"), 10)]);
    let filtered = store
        .aggregate(
            &Filter {
                users: vec!["bob".into()],
                ..Filter::default()
            },
            &Aggregation::CountBy {
                fields: vec![],
                limit: None,
            },
        )
        .expect("filtered total");
    assert_eq!(filtered.total(), 10);
}

/// Counting requests ([`StageSelection::Final`]) sees each request once, whatever stages were
/// recorded and in whichever batches they arrived.
pub fn requests_are_counted_once(store: &dyn Store) {
    let exec = |id: &str, stage: Stage, ts: i64| {
        let mut r = record("c1", id, Some(stage), ts);
        r.verb = "create".into();
        r.subresource = "exec".into();
        r.code = Some(101);
        r.request_ts_micros = Some(T0);
        r
    };
    // Short request: RequestReceived + ResponseComplete.
    store
        .append(&[
            record("c1", "short", Some(Stage::RequestReceived), T0),
            record("c1", "short", Some(Stage::ResponseComplete), T0 + 5),
        ])
        .expect("append");
    // Long-running, both stages in one batch.
    store
        .append(&[
            exec("both", Stage::ResponseStarted, T0 + 10),
            exec("both", Stage::ResponseComplete, T0 + 90 * S),
        ])
        .expect("append");
    // Long-running, stages in separate batches (a session that ran for an hour).
    store
        .append(&[exec("split", Stage::ResponseStarted, T0 + 20)])
        .expect("append");
    store
        .append(&[record(
            "c1",
            "filler",
            Some(Stage::ResponseComplete),
            T0 + 1800 * S,
        )])
        .expect("append");
    store
        .append(&[exec("split", Stage::ResponseComplete, T0 + 3600 * S)])
        .expect("append");
    // Still running: only ResponseStarted so far.
    store
        .append(&[exec("open", Stage::ResponseStarted, T0 + 30)])
        .expect("append");
    // The policy omitted ResponseStarted: the completion stands for the request.
    store
        .append(&[exec("nostart", Stage::ResponseComplete, T0 + 40 * S)])
        .expect("append");
    // A failed authentication: one ResponseStarted with code 401.
    let mut unauth = record("c1", "unauth", Some(Stage::ResponseStarted), T0 + 50);
    unauth.code = Some(401);
    store.append(&[unauth]).expect("append");

    let requests = Filter {
        stages: StageSelection::Final,
        ..Filter::default()
    };
    let total = store
        .aggregate(
            &requests,
            &Aggregation::CountBy {
                fields: vec![],
                limit: None,
            },
        )
        .expect("count");
    assert_eq!(
        total.total(),
        7,
        "short, both, split, filler, open, nostart, unauth"
    );
    let execs = Filter {
        resources: vec!["pods/exec".parse().unwrap()],
        ..requests.clone()
    };
    let mut ids: Vec<String> = ids(store, &execs)
        .into_iter()
        .map(|s| s.split('/').next().unwrap_or("").to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["both", "nostart", "open", "split"]);
    assert_eq!(
        store.count().expect("count"),
        10,
        "every stage is still stored"
    );
}

/// `CountEach` and `Sections` answer exactly what the equivalent `CountBy`s answer.
pub fn one_pass_aggregations_agree_with_count_by(store: &dyn Store) {
    let mut b = Vec::new();
    for i in 0..60i64 {
        let mut r = record(
            "c1",
            &format!("p{i}"),
            Some(Stage::ResponseComplete),
            T0 + i * S,
        );
        r.verb = ["get", "list", "create", "delete"][(i % 4) as usize].into();
        r.user = ["alice", "bob", "carol"][(i % 3) as usize].into();
        r.namespace = ["a", "b", ""][(i % 3 + i % 2) as usize % 3].into();
        r.code = Some([200, 201, 403, 404, 500][(i % 5) as usize]);
        if i % 7 == 0 {
            r.resource = "secrets".into();
        }
        b.push(r);
    }
    store.append(&b).expect("append");
    let scope = Filter {
        time: TimeRange {
            from_micros: Some(T0 + 5 * S),
            to_micros: None,
        },
        ..Filter::default()
    };
    let count_by = |f: &Filter, fields: Vec<Field>, limit: Option<usize>| {
        store
            .aggregate(f, &Aggregation::CountBy { fields, limit })
            .expect("count by")
            .groups()
            .to_vec()
    };
    let fields = vec![Field::Verb, Field::User, Field::Namespace, Field::Code];
    let AggregationResult::Each { total, groups } = store
        .aggregate(
            &scope,
            &Aggregation::CountEach {
                fields: fields.clone(),
            },
        )
        .expect("count each")
    else {
        panic!("CountEach answers Each");
    };
    assert_eq!(total, 55);
    for (i, field) in fields.iter().enumerate() {
        assert_eq!(groups[i], count_by(&scope, vec![*field], None), "{field:?}");
    }

    let sections = vec![
        kubetrail_store::SectionSpec {
            filter: Filter {
                codes: vec![CodeFilter::Failed],
                ..Filter::default()
            },
            fields: vec![Field::User, Field::Code],
            limit: 3,
        },
        kubetrail_store::SectionSpec {
            filter: Filter {
                resources: vec![ResourceSelector::core("secrets", None)],
                ..Filter::default()
            },
            fields: vec![Field::Verb],
            limit: 10,
        },
        kubetrail_store::SectionSpec {
            filter: Filter {
                users: vec!["nobody".into()],
                ..Filter::default()
            },
            fields: vec![Field::User],
            limit: 10,
        },
        kubetrail_store::SectionSpec {
            filter: Filter {
                verbs: vec!["delete".into()],
                ..Filter::default()
            },
            fields: vec![],
            limit: 10,
        },
    ];
    let AggregationResult::Sections(got) = store
        .aggregate(&scope, &Aggregation::Sections(sections.clone()))
        .expect("sections")
    else {
        panic!("Sections answers Sections");
    };
    assert_eq!(got.len(), 4);
    for (spec, answer) in sections.iter().zip(&got) {
        let mut f = spec.filter.clone();
        f.time = scope.time;
        let expected_total: u64 = count_by(&f, vec![], None).iter().map(|g| g.count).sum();
        assert_eq!(answer.total, expected_total, "{spec:?}");
        if !spec.fields.is_empty() {
            assert_eq!(
                answer.top,
                count_by(&f, spec.fields.clone(), Some(spec.limit)),
                "{spec:?}"
            );
        }
    }
    assert!(got[0].total > 0 && got[1].total > 0);
    assert_eq!(got[2].total, 0);
    assert!(got[2].top.is_empty());
}
