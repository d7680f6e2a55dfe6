//! A store that fails: nothing is acknowledged that the store could not read back, readiness
//! reads stored data and says why it fails, and a damaged store stays failed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::StatusCode;
use kubetrail_api::paths;
use kubetrail_model::Stage;
use kubetrail_store::{
    Aggregation, AggregationResult, AppendOutcome, Cursor, Filter, Page, Record, Retention,
    RetentionOutcome, Store,
};
use kubetrail_store_duckdb::DuckDbStore;
use kubetrail_testsuite::conformance::{T0, record};

use crate::{Harness, INGEST, READ, event_list};

const JSON: (&str, &str) = ("content-type", "application/json");

/// `/readyz`'s status and body.
async fn readyz(h: &Harness) -> (StatusCode, String) {
    let (status, body, _) = h
        .send(
            axum::http::Request::get(paths::READYZ)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A store on disk with events, closed, its newest `raw` block then damaged, and opened
/// again (DuckDB notices only when it reads that block).
fn damaged_store(dir: &std::path::Path) -> DuckDbStore {
    {
        let store = DuckDbStore::open(dir).unwrap();
        for b in 0..20 {
            let batch: Vec<Record> = (0..1000)
                .map(|i| {
                    let i = b * 1000 + i;
                    let mut r = record(
                        "c",
                        &format!("e-{i}"),
                        Some(Stage::ResponseComplete),
                        T0 + i * 1_000_000,
                    );
                    r.raw = format!("{{\"auditID\":\"e-{i}\",\"noise\":\"{}\"}}", {
                        let x = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                        (0..12).fold(String::new(), |s, k| {
                            s + &format!("{:016x}", x.rotate_left(k * 5) ^ (x >> k))
                        })
                    });
                    r
                })
                .collect();
            store.append(&batch).unwrap();
        }
    }
    kubetrail_store_duckdb::testing::damage_newest_block(dir, "raw").unwrap();
    DuckDbStore::open(dir).expect("the damage is in a block read only by queries")
}

#[tokio::test]
async fn a_damaged_store_is_not_ready_and_acknowledges_no_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = damaged_store(dir.path());
    let db = dir.path().join(kubetrail_store_duckdb::DATABASE_FILE);
    let h = Harness::over(Arc::new(store), kubetrail_server::Limits::default(), dir);

    // Readiness reads stored data, and says why it fails: the cause and the file.
    let (status, body) = readyz(&h).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("Corrupt database file"), "{body}");
    assert!(body.contains(&db.display().to_string()), "{body}");

    // A batch is not acknowledged: 503, so the apiserver or agent keeps it and retries.
    let (list, _) = event_list("real-audit/audit2rbac-v1.jsonl", "audit.k8s.io/v1");
    let (status, reply) = h.post(paths::WEBHOOK, Some(INGEST), &[JSON], list).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{reply}");
    assert!(
        reply["error"].as_str().unwrap().contains("damaged"),
        "{reply}"
    );
    let line = br#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"x","stage":"ResponseComplete","verb":"get","stageTimestamp":"2030-01-01T00:00:00Z"}"#;
    let (status, reply) = h
        .post(
            &format!("{}?node=n1", paths::EVENTS),
            Some(INGEST),
            &[],
            line.to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{reply}");

    // And it stays so, and says so to monitoring.
    let (status, _) = readyz(&h).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let metrics = h.get_text(paths::METRICS, Some(READ)).await;
    assert!(metrics.contains("kubetrail_store_damaged 1"), "{metrics}");
}

/// A store whose commits fail as DuckDB's do once it has invalidated the database (a failed
/// checkpoint, a full disk), and that counts its appends.
struct Invalidated {
    inner: DuckDbStore,
    appends: AtomicUsize,
}

impl Store for Invalidated {
    fn append(&self, _: &[Record]) -> kubetrail_store::Result<AppendOutcome> {
        self.appends.fetch_add(1, Ordering::SeqCst);
        Err(kubetrail_store::Error::damaged(
            "committing an append in /data/kubetrail.duckdb",
            std::io::Error::other(
                "FATAL Error: Failed to create checkpoint because of error: IO Error: No space left on device",
            ),
        ))
    }
    fn query(&self, f: &Filter, c: Option<&Cursor>, l: usize) -> kubetrail_store::Result<Page> {
        self.inner.query(f, c, l)
    }
    fn aggregate(&self, f: &Filter, a: &Aggregation) -> kubetrail_store::Result<AggregationResult> {
        self.inner.aggregate(f, a)
    }
    fn apply_retention(&self, r: &Retention) -> kubetrail_store::Result<RetentionOutcome> {
        self.inner.apply_retention(r)
    }
    fn count(&self) -> kubetrail_store::Result<u64> {
        self.inner.count()
    }
    fn size_bytes(&self) -> kubetrail_store::Result<u64> {
        self.inner.size_bytes()
    }
    fn schema_version(&self) -> kubetrail_store::Result<u32> {
        self.inner.schema_version()
    }
    /// It also opened with a torn log set aside.
    fn recovery_report(&self) -> Option<kubetrail_store::RecoveryReport> {
        Some(kubetrail_store::RecoveryReport {
            damaged: "/data/kubetrail.duckdb.wal".into(),
            backup: "/data/kubetrail.duckdb.wal.1.bak".into(),
            bytes: 4096,
            reason: "torn".into(),
        })
    }
}

#[tokio::test]
async fn a_commit_error_is_never_acknowledged_and_damage_fails_readiness() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Invalidated {
        inner: DuckDbStore::open_in_memory().unwrap(),
        appends: AtomicUsize::new(0),
    });
    let h = Harness::over(store.clone(), kubetrail_server::Limits::default(), dir);
    let (status, _) = readyz(&h).await;
    assert_eq!(status, StatusCode::OK, "ready before anything failed");

    let (list, _) = event_list("real-audit/audit2rbac-v1.jsonl", "audit.k8s.io/v1");
    let (status, reply) = h
        .post(paths::WEBHOOK, Some(INGEST), &[JSON], list.clone())
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{reply}");
    // The cause reaches the sender and the log, not only "database error while ...".
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("No space left on device"),
        "{reply}"
    );

    // Damage is remembered: readiness fails with the cause, and later batches are refused
    // without asking the store again.
    let (status, body) = readyz(&h).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("No space left on device"), "{body}");
    let (status, _) = h.post(paths::WEBHOOK, Some(INGEST), &[JSON], list).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(store.appends.load(Ordering::SeqCst), 1);
    let metrics = h.get_text(paths::METRICS, Some(READ)).await;
    assert!(
        metrics.contains("kubetrail_batch_commit_failures_total"),
        "{metrics}"
    );
    assert!(metrics.contains("kubetrail_store_damaged 1"), "{metrics}");
    assert!(
        metrics.contains("kubetrail_store_recovered_wal_bytes 4096"),
        "{metrics}"
    );
}

/// A store whose first append panics (a bug), and that works afterwards.
struct PanicsOnce {
    inner: DuckDbStore,
    panicked: std::sync::atomic::AtomicBool,
}

impl Store for PanicsOnce {
    fn append(&self, batch: &[Record]) -> kubetrail_store::Result<AppendOutcome> {
        if !self.panicked.swap(true, Ordering::SeqCst) {
            panic!("a bug in the store");
        }
        self.inner.append(batch)
    }
    fn query(&self, f: &Filter, c: Option<&Cursor>, l: usize) -> kubetrail_store::Result<Page> {
        self.inner.query(f, c, l)
    }
    fn aggregate(&self, f: &Filter, a: &Aggregation) -> kubetrail_store::Result<AggregationResult> {
        self.inner.aggregate(f, a)
    }
    fn apply_retention(&self, r: &Retention) -> kubetrail_store::Result<RetentionOutcome> {
        self.inner.apply_retention(r)
    }
    fn count(&self) -> kubetrail_store::Result<u64> {
        self.inner.count()
    }
    fn size_bytes(&self) -> kubetrail_store::Result<u64> {
        self.inner.size_bytes()
    }
    fn schema_version(&self) -> kubetrail_store::Result<u32> {
        self.inner.schema_version()
    }
}

#[tokio::test]
async fn a_store_that_panics_answers_503_and_the_committer_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::over(
        Arc::new(PanicsOnce {
            inner: DuckDbStore::open_in_memory().unwrap(),
            panicked: std::sync::atomic::AtomicBool::new(false),
        }),
        kubetrail_server::Limits::default(),
        dir,
    );
    let (list, n) = event_list("real-audit/audit2rbac-v1.jsonl", "audit.k8s.io/v1");
    let (status, reply) = h
        .post(paths::WEBHOOK, Some(INGEST), &[JSON], list.clone())
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{reply}");
    assert!(
        reply["error"].as_str().unwrap().contains("panicked"),
        "{reply}"
    );
    // The commit thread survived: the retry is stored.
    let (status, reply) = h.post(paths::WEBHOOK, Some(INGEST), &[JSON], list).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["stored"], n);
}
