//! The DuckDB backend: the shared conformance suite, in memory and on disk, and what only a
//! file-backed store has (durability across reopening, schema version on disk, damaged files).

#![allow(clippy::unwrap_used)]

mod chain;
mod damage;

use kubetrail_model::Stage;
use kubetrail_store::{Filter, Store};
use kubetrail_store_duckdb::DuckDbStore;
use kubetrail_testsuite::conformance::{T0, record};

/// The conformance suite over an in-memory store, one test per check.
mod in_memory {
    use super::*;
    use kubetrail_testsuite::Opened;

    fn open() -> Option<Opened> {
        Some(Opened::alone(DuckDbStore::open_in_memory().unwrap()))
    }

    kubetrail_testsuite::conformance_tests!(open);
}

/// The conformance suite over a store on disk, one test per check.
mod on_disk {
    use super::*;
    use kubetrail_testsuite::Opened;

    fn open() -> Option<Opened> {
        let dir = tempfile::tempdir().unwrap();
        let store = DuckDbStore::open(dir.path()).unwrap();
        Some(Opened {
            store: Box::new(store),
            keep: Box::new(dir),
        })
    }

    kubetrail_testsuite::conformance_tests!(open);
}

#[test]
fn appended_events_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = DuckDbStore::open(dir.path()).unwrap();
        let batch: Vec<_> = (0..100)
            .map(|i| {
                record(
                    "c",
                    &format!("id{i}"),
                    Some(Stage::ResponseComplete),
                    T0 + i,
                )
            })
            .collect();
        assert_eq!(store.append(&batch).unwrap().stored, 100);
    }
    let store = DuckDbStore::open(dir.path()).unwrap();
    assert_eq!(store.count().unwrap(), 100);
    assert_eq!(store.schema_version().unwrap(), 6);
    let page = store.query(&Filter::default(), None, 1).unwrap();
    assert_eq!(page.records[0].audit_id, "id99");
    assert!(store.size_bytes().unwrap() > 0);
    // Replaying after a restart still stores nothing new.
    let again: Vec<_> = (0..100)
        .map(|i| {
            record(
                "c",
                &format!("id{i}"),
                Some(Stage::ResponseComplete),
                T0 + i,
            )
        })
        .collect();
    assert_eq!(store.append(&again).unwrap().duplicates, 100);
}

/// A store of schema 2 (before `content_hash`) opens migrated: its events stay, a replay of
/// one is still a duplicate (compared by its text), a different event under its identity is
/// kept as a conflict.
#[test]
fn a_schema_2_store_is_migrated_and_keeps_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let old = record("c", "abc-123", Some(Stage::ResponseComplete), T0);
    {
        let store = DuckDbStore::open(dir.path()).unwrap();
        store.append(std::slice::from_ref(&old)).unwrap();
    }
    {
        // Back to what schema 2 wrote.
        let conn = duckdb::Connection::open(dir.path().join("kubetrail.duckdb")).unwrap();
        conn.execute_batch(
            "DROP TABLE chain; DROP TABLE chain_entries; DROP TABLE chain_keys; ALTER TABLE events DROP COLUMN chain_batch;
             ALTER TABLE events DROP COLUMN content_hash; DROP TABLE alerts;
             UPDATE kubetrail_meta SET value = '2' WHERE key = 'schema_version';",
        )
        .unwrap();
    }
    let store = DuckDbStore::open(dir.path()).unwrap();
    assert_eq!(store.schema_version().unwrap(), 6);
    let page = store.query(&Filter::default(), None, 10).unwrap();
    assert_eq!(page.records.len(), 1);
    assert_eq!(page.records[0].content_hash, 0, "stored before the hash");
    let o = store.append(std::slice::from_ref(&old)).unwrap();
    assert_eq!((o.stored, o.duplicates), (0, 1), "a replay of an old event");
    let raw = r#"{"auditID":"abc-123","verb":"delete"}"#;
    let other = kubetrail_store::Record {
        raw: raw.into(),
        content_hash: kubetrail_store::content_hash(raw),
        ..old
    };
    let o = store.append(std::slice::from_ref(&other)).unwrap();
    assert_eq!((o.stored, o.conflicts), (1, 1));
    assert_eq!(store.count().unwrap(), 2);
}
