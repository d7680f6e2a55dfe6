//! The hash chain, as every backend keeps it: each commit that stores events links them,
//! per cluster, in the order of commits; rows read back hash as they were appended; retention
//! says what it took; and the whole verifies.

use std::sync::Arc;
use std::time::Duration;

use kubetrail_model::Stage;
use kubetrail_store::chain::{Chain, LinkKind, Sign};
use kubetrail_store::{Record, Retention, Store};
use kubetrail_trust::{Options, SigningKey, verify};

use super::{S, record};

fn ev(cluster: &str, id: &str, ts: i64) -> Record {
    let mut r = record(cluster, id, Some(Stage::ResponseComplete), ts);
    // Columns that read back in their own way: no request time, no code, an empty group.
    if id.ends_with('0') {
        r.request_ts_micros = None;
        r.code = None;
        r.groups.push(String::new());
    }
    r
}

/// Links every committing append, per cluster in commit order; verifies intact with the
/// writer's key; retention adds prune links that account for what it took; a second chain
/// cannot be set.
pub fn chain_links_every_commit_and_verifies(store: &dyn Store) {
    let (key, _) = SigningKey::generate().expect("key");
    let public = key.public_key();
    let key_id = key.key_id().to_string();
    let chain = Arc::new(Chain::new(Box::new(key)));
    store.set_chain(chain.clone()).expect("set_chain");
    assert!(store.set_chain(chain).is_err(), "a second chain");
    assert_eq!(store.chain_public_keys().expect("keys"), [public.to_pem()]);

    let now = chrono::Utc::now().timestamp_micros();
    let day = 86_400 * S;
    let old: Vec<Record> = (0..10)
        .map(|i| ev("c1", &format!("old{i}"), now - 10 * day + i * S))
        .collect();
    let mixed: Vec<Record> = (0..6)
        .map(|i| {
            ev(
                if i % 2 == 0 { "c1" } else { "c2" },
                &format!("m{i}"),
                now - i * S,
            )
        })
        .collect();
    store.append(&old).expect("append");
    store.append(&mixed).expect("append");
    // A retry stores nothing and links nothing.
    store.append(&old).expect("retry");
    let a: Vec<Record> = vec![ev("c2", "a0", now - 100 * S)];
    let b: Vec<Record> = vec![ev("c2", "b1", now - 99 * S)];
    store.append_all(&[&a, &b]).expect("append_all");
    let mut bulk = store.bulk().expect("bulk");
    let loaded: Vec<Record> = (0..30)
        .map(|i| ev("c1", &format!("bulk{i}"), now - 2 * day + i * S))
        .collect();
    bulk.append(&loaded[..15]).expect("bulk append");
    bulk.append(&loaded[15..]).expect("bulk append");
    bulk.finish().expect("bulk finish");

    let mut links = store.chain_links().expect("links");
    links.sort_by(|x, y| (&x.cluster, x.seq).cmp(&(&y.cluster, y.seq)));
    let c1: Vec<(u64, u64)> = links
        .iter()
        .filter(|l| l.cluster == "c1")
        .map(|l| (l.seq, l.events))
        .collect();
    // c1: the old events, its half of the mixed batch, then the load (one link per commit).
    assert_eq!(&c1[..2], [(1, 10), (2, 3)]);
    assert_eq!(c1.iter().map(|(_, n)| n).sum::<u64>(), 10 + 3 + 30);
    let c2: Vec<(u64, u64)> = links
        .iter()
        .filter(|l| l.cluster == "c2")
        .map(|l| (l.seq, l.events))
        .collect();
    // append_all is one commit: one link for both batches.
    assert_eq!(c2, [(1, 3), (2, 2)]);
    assert!(links.iter().all(|l| l.key_id == key_id));

    let options = Options {
        keys: vec![public.clone()],
        ..Options::default()
    };
    let report = verify(store, &options).expect("verify");
    assert!(report.intact, "{:#?}", report.problems);
    assert_eq!(report.keys, "given");
    let verified: u64 = report.chains.iter().map(|c| c.events_verified).sum();
    assert_eq!(verified, store.count().expect("count"));
    assert_eq!(verified, 10 + 6 + 2 + 30);

    // Without a key: the store's keys, which check out too.
    let report = verify(store, &Options::default()).expect("verify");
    assert!(report.intact, "{:#?}", report.problems);
    assert_eq!(report.keys, "store");

    let out = store
        .apply_retention(&Retention {
            max_age: Some(Duration::from_secs(5 * 86_400)),
            max_bytes: None,
        })
        .expect("retention");
    assert_eq!(out.deleted, 10);
    let links = store.chain_links().expect("links");
    let prunes: Vec<&str> = links
        .iter()
        .filter(|l| l.kind == LinkKind::Prune)
        .map(|l| l.cluster.as_str())
        .collect();
    assert!(
        prunes.contains(&"c1") && prunes.contains(&"c2"),
        "{prunes:?}"
    );
    let report = verify(store, &options).expect("verify after retention");
    assert!(report.intact, "{:#?}", report.problems);
    let pruned: u64 = report.chains.iter().map(|c| c.events_pruned).sum();
    assert_eq!(pruned, 10);
    let verified: u64 = report.chains.iter().map(|c| c.events_verified).sum();
    assert_eq!(verified, 6 + 2 + 30);

    // The wrong key: every chain is an unknown key's, and no prune link it signed accounts
    // for what retention took.
    let (other, _) = SigningKey::generate().expect("key");
    let report = verify(
        store,
        &Options {
            keys: vec![other.public_key()],
            ..Options::default()
        },
    )
    .expect("verify");
    assert!(!report.intact);
    let count = |kind| report.problems.iter().filter(|p| p.kind == kind).count();
    use kubetrail_trust::ProblemKind::{Deleted, ManifestChanged, UnknownKey};
    assert_eq!(count(UnknownKey), 2, "{:#?}", report.problems);
    // A backend keeps the taken events' manifest entries (each is then deleted) or drops
    // them with the events (the link cannot be checked).
    let (deleted, unchecked) = (count(Deleted), count(ManifestChanged));
    assert!(
        (deleted, unchecked) == (10, 0) || (deleted, unchecked) == (0, 1),
        "{:#?}",
        report.problems
    );
}
