//! The ClickHouse backend against a real server (started by the test; see
//! [`kubetrail_testsuite::clickhouse`]): the shared conformance suite.

#![allow(clippy::unwrap_used)]

use kubetrail_store_clickhouse::{ClickHouseStore, Connection};
use kubetrail_testsuite::Opened;
use kubetrail_testsuite::clickhouse::TestServer;

/// A fresh server and database for each check: checks run in parallel and never see each
/// other's data.
fn open() -> Option<Opened> {
    let server = TestServer::start()?;
    let store = ClickHouseStore::open(Connection {
        url: server.url.clone(),
        database: "conformance".into(),
        user: None,
        password: None,
    })
    .unwrap();
    Some(Opened {
        store: Box::new(store),
        keep: Box::new(server),
    })
}

/// The conformance suite, one test per check.
mod clickhouse {
    kubetrail_testsuite::conformance_tests!(super::open);
}

/// A database written by schema 1 (no `content_hash`, the identity alone as the sorting key)
/// is migrated in place: its events stay, a replay of one is still a duplicate (compared by
/// text, since it has no hash), and a different event under its identity is kept.
#[test]
fn a_schema_1_table_is_migrated_and_keeps_its_events() {
    use kubetrail_model::Stage;
    use kubetrail_store::{Filter, Store};
    use kubetrail_store_clickhouse::ClickHouse;
    use kubetrail_testsuite::conformance::{T0, record};

    let Some(server) = TestServer::start() else {
        return;
    };
    let connection = Connection {
        url: server.url.clone(),
        database: "schema1".into(),
        user: None,
        password: None,
    };
    let ch = ClickHouse::new(connection.clone()).unwrap();
    ch.execute("CREATE DATABASE schema1").unwrap();
    ch.execute(
        "CREATE TABLE schema1.events (
            cluster String, audit_id String, stage String, level String,
            ts Int64, request_ts Nullable(Int64), received Int64,
            verb String, username String, groups String, impersonated_user String,
            source_ip String, user_agent String, api_group String, api_version String,
            resource String, subresource String, namespace String, name String,
            code Int32, decision String, reason String, request_uri String,
            raw String, counted UInt8,
            day Date MATERIALIZED toDate(toDateTime(intDiv(ts, 1000000)))
        ) ENGINE = ReplacingMergeTree PARTITION BY day ORDER BY (cluster, ts, audit_id, stage)",
    )
    .unwrap();
    ch.execute("CREATE TABLE schema1.kubetrail_meta (key String, value String) ENGINE = TinyLog")
        .unwrap();
    ch.execute("INSERT INTO schema1.kubetrail_meta (key, value) VALUES ('schema_version', '1')")
        .unwrap();
    let old = record("c", "abc-123", Some(Stage::ResponseComplete), T0);
    let row = serde_json::json!({
        "cluster": old.cluster, "audit_id": old.audit_id, "stage": "ResponseComplete",
        "level": "Metadata", "ts": old.ts_micros, "request_ts": old.request_ts_micros,
        "received": old.received_micros, "verb": old.verb, "username": old.user,
        "groups": "", "impersonated_user": "", "source_ip": old.source_ip,
        "user_agent": old.user_agent, "api_group": "", "api_version": old.api_version,
        "resource": old.resource, "subresource": "", "namespace": old.namespace,
        "name": old.name, "code": 200, "decision": old.decision, "reason": old.reason,
        "request_uri": old.request_uri, "raw": old.raw, "counted": 1,
    });
    ch.insert(
        "INSERT INTO schema1.events FORMAT JSONEachRow",
        format!("{row}\n"),
    )
    .unwrap();

    let store = ClickHouseStore::open(connection).unwrap();
    assert_eq!(store.schema_version().unwrap(), 4);
    assert_eq!(store.count().unwrap(), 1);
    let page = store.query(&Filter::default(), None, 10).unwrap();
    assert_eq!(page.records[0].raw, old.raw);
    assert_eq!(page.records[0].content_hash, 0, "stored before the hash");
    let o = store.append(std::slice::from_ref(&old)).unwrap();
    assert_eq!((o.stored, o.duplicates), (0, 1), "a replay of an old event");
    let other = kubetrail_store::Record {
        raw: r#"{"auditID":"abc-123","verb":"delete"}"#.into(),
        content_hash: kubetrail_store::content_hash(r#"{"auditID":"abc-123","verb":"delete"}"#),
        ..old.clone()
    };
    let o = store.append(std::slice::from_ref(&other)).unwrap();
    assert_eq!((o.stored, o.conflicts), (1, 1));
    assert_eq!(store.count().unwrap(), 2);
    // A second open finds the schema migrated and changes nothing.
    let again = ClickHouseStore::open(Connection {
        url: server.url.clone(),
        database: "schema1".into(),
        user: None,
        password: None,
    })
    .unwrap();
    assert_eq!(again.count().unwrap(), 2);
}

/// Rows edited, deleted and inserted with SQL behind the store's back are each named by
/// `verify` with their auditID; the untouched chain verifies.
#[test]
fn tampering_with_sql_is_found_event_by_event() {
    use std::sync::Arc;

    use kubetrail_model::Stage;
    use kubetrail_store::Store;
    use kubetrail_store::chain::Chain;
    use kubetrail_store_clickhouse::ClickHouse;
    use kubetrail_testsuite::conformance::{T0, record};
    use kubetrail_trust::{Options, ProblemKind, SigningKey, verify};

    let Some(server) = TestServer::start() else {
        return;
    };
    let connection = Connection {
        url: server.url.clone(),
        database: "tamper".into(),
        user: None,
        password: None,
    };
    let store = ClickHouseStore::open(connection.clone()).unwrap();
    let (key, _) = SigningKey::generate().unwrap();
    let options = Options {
        keys: vec![key.public_key()],
        ..Options::default()
    };
    store
        .set_chain(Arc::new(Chain::new(Box::new(key))))
        .unwrap();
    for n in 0..3 {
        let batch: Vec<_> = (0..4)
            .map(|i| {
                record(
                    "prod",
                    &format!("e{n}{i}"),
                    Some(Stage::ResponseComplete),
                    T0 + (n * 10 + i) * 1_000_000,
                )
            })
            .collect();
        store.append(&batch).unwrap();
    }
    let report = verify(&store, &options).unwrap();
    assert!(report.intact, "{:#?}", report.problems);
    assert_eq!(report.chains[0].events_verified, 12);

    let ch = ClickHouse::new(connection).unwrap();
    let wait = || {
        for _ in 0..600 {
            let left = ch
                .scalar("SELECT count() FROM system.mutations WHERE database = 'tamper' AND is_done = 0")
                .unwrap();
            if left == 0 {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("the mutation did not finish");
    };
    ch.execute("ALTER TABLE tamper.events UPDATE username = 'nobody' WHERE audit_id = 'e01'")
        .unwrap();
    wait();
    ch.execute("ALTER TABLE tamper.events DELETE WHERE audit_id = 'e12'")
        .unwrap();
    wait();
    // A forged event in the middle link's batch: a copy of one of its rows under a new auditID.
    ch.execute(
        "INSERT INTO tamper.events SELECT cluster, 'forged', stage, level, ts + 1, request_ts, received, verb, username, groups, impersonated_user, source_ip, user_agent, api_group, api_version, resource, subresource, namespace, name, code, decision, reason, request_uri, raw, counted, content_hash, chain_batch FROM tamper.events WHERE audit_id = 'e10'",
    )
    .unwrap();
    // And one outside every chain.
    ch.execute(
        "INSERT INTO tamper.events SELECT cluster, 'stray', stage, level, ts, request_ts, received, verb, username, groups, impersonated_user, source_ip, user_agent, api_group, api_version, resource, subresource, namespace, name, code, decision, reason, request_uri, raw, counted, content_hash, 0 FROM tamper.events WHERE audit_id = 'e20'",
    )
    .unwrap();

    let report = verify(&store, &options).unwrap();
    assert!(!report.intact);
    let mut found: Vec<(ProblemKind, Option<u64>, String)> = report
        .problems
        .iter()
        .map(|p| (p.kind, p.link, p.audit_id.clone().unwrap_or_default()))
        .collect();
    found.sort_by(|a, b| a.2.cmp(&b.2));
    assert_eq!(
        found,
        [
            (ProblemKind::Changed, Some(1), "e01".into()),
            (ProblemKind::Deleted, Some(2), "e12".into()),
            (ProblemKind::Inserted, Some(2), "forged".into()),
            (ProblemKind::OutsideChain, None, "stray".into()),
        ]
    );
    assert_eq!(report.problems_total, 4);
}
