//! What `verify` finds in an embedded store edited behind its back, beyond the shared
//! conformance check: a damaged link row is reported rather than stopping verification, a
//! prune link whose signature no longer holds excuses no deletion, and a row whose link may be
//! on its way is not counted outside the chain until it settles.

use std::sync::Arc;
use std::time::Duration;

use kubetrail_model::Stage;
use kubetrail_store::chain::Chain;
use kubetrail_store::{Retention, Store};
use kubetrail_store_duckdb::{DuckDbStore, testing};
use kubetrail_testsuite::conformance::record;
use kubetrail_trust::{Options, ProblemKind, SigningKey, verify};

fn kinds(store: &DuckDbStore, options: &Options) -> Vec<(ProblemKind, String)> {
    let report = verify(store, options).unwrap();
    let mut out: Vec<(ProblemKind, String)> = report
        .problems
        .iter()
        .map(|p| (p.kind, p.audit_id.clone().unwrap_or_default()))
        .collect();
    out.sort_by(|a, b| {
        a.1.cmp(&b.1)
            .then(format!("{:?}", a.0).cmp(&format!("{:?}", b.0)))
    });
    out
}

#[test]
fn forged_prunes_damaged_links_and_settling_rows() {
    let store = DuckDbStore::open_in_memory().unwrap();
    let (key, _) = SigningKey::generate().unwrap();
    let options = Options {
        keys: vec![key.public_key()],
        ..Options::default()
    };
    store
        .set_chain(Arc::new(Chain::new(Box::new(key))))
        .unwrap();
    let now = chrono::Utc::now().timestamp_micros();
    let day = 86_400_000_000;
    let old: Vec<_> = (0..3)
        .map(|i| {
            record(
                "c",
                &format!("old{i}"),
                Some(Stage::ResponseComplete),
                now - 10 * day + i,
            )
        })
        .collect();
    let new: Vec<_> = (0..3)
        .map(|i| {
            record(
                "c",
                &format!("new{i}"),
                Some(Stage::ResponseComplete),
                now - 1000 + i,
            )
        })
        .collect();
    store.append(&old).unwrap();
    store.append(&new).unwrap();
    store
        .apply_retention(&Retention {
            max_age: Some(Duration::from_secs(5 * 86_400)),
            max_bytes: None,
        })
        .unwrap();
    assert!(
        kinds(&store, &options).is_empty(),
        "retention took the old ones"
    );

    // A prune link changed to excuse everything, and a new event deleted under its cover.
    testing::execute_open(
        &store,
        "UPDATE chain SET pruned_before = 9223372036854775807 WHERE kind = 'prune';
         DELETE FROM events WHERE audit_id = 'new1';",
    )
    .unwrap();
    assert_eq!(
        kinds(&store, &options),
        [
            (ProblemKind::BadSignature, String::new()),
            // Without a prune link that holds, the link whose events and entries retention
            // took cannot be checked.
            (ProblemKind::ManifestChanged, String::new()),
            (ProblemKind::Deleted, "new1".into()),
        ]
    );

    // A link row that does not parse is a bad link, not a verification that cannot run.
    testing::execute_open(
        &store,
        "INSERT INTO chain VALUES ('c', 'zz', -4, 'nonsense', 7, 'not hex', '', -1, 0, 0, 0, 0, 'xyz');",
    )
    .unwrap();
    let found = kinds(&store, &options);
    assert!(
        found.contains(&(ProblemKind::UnknownKey, String::new())),
        "{found:?}"
    );

    // A row with a batch no link has, received just now: its link may be on its way.
    testing::execute_open(
        &store,
        &format!(
            "INSERT INTO events SELECT * REPLACE ('late' AS audit_id, 4242 AS chain_batch, {} AS received) FROM events WHERE audit_id = 'new0';",
            chrono::Utc::now().timestamp_micros()
        ),
    )
    .unwrap();
    let settled = Options {
        settled_before_micros: Some(chrono::Utc::now().timestamp_micros() - 120_000_000),
        ..options.clone()
    };
    assert!(!kinds(&store, &settled).iter().any(|(_, id)| id == "late"));
    assert!(kinds(&store, &options).contains(&(ProblemKind::OutsideChain, "late".into())));
}
