//! Damaged files: a database file with a corrupt block, a write-ahead log cut short or with a
//! bad checksum. The store must say so, name the files, keep what could help recover, and never
//! acknowledge a write it could not read back.

use std::path::Path;

use kubetrail_model::Stage;
use kubetrail_store::{Filter, Record, Store};
use kubetrail_store_duckdb::testing::{damage_newest_block, scribble};
use kubetrail_store_duckdb::{DATABASE_FILE, DuckDbStore};
use kubetrail_testsuite::conformance::{T0, record};

/// `n` events from `from` on, a second apart, with bodies zstd cannot shrink to nothing (so
/// that `raw` fills blocks of its own).
pub(crate) fn events(prefix: &str, from: usize, n: usize) -> Vec<Record> {
    (from..from + n)
        .map(|i| {
            let id = format!("{prefix}-{i}");
            let mut r = record(
                "c",
                &id,
                Some(Stage::ResponseComplete),
                T0 + i as i64 * 1_000_000,
            );
            let mut x = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            let noise: String = (0..24)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    format!("{x:016x}")
                })
                .collect();
            r.raw = format!("{{\"auditID\":\"{id}\",\"noise\":\"{noise}\"}}");
            r
        })
        .collect()
}

/// A store in `dir` with `batches` commits of 1,000 events each, closed cleanly (everything
/// checkpointed into the database file).
pub(crate) fn written_store(dir: &Path, batches: usize) -> u64 {
    let store = DuckDbStore::open(dir).unwrap();
    for b in 0..batches {
        store.append(&events("e", b * 1000, 1000)).unwrap();
    }
    let n = store.count().unwrap();
    drop(store);
    n
}

#[test]
fn a_corrupt_block_marks_the_store_damaged_and_no_write_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    written_store(dir.path(), 20);
    let db = dir.path().join(DATABASE_FILE);
    damage_newest_block(dir.path(), "raw").unwrap();

    let store = match DuckDbStore::open(dir.path()) {
        // Found at open: the error says what and where.
        Err(e) => {
            let text = e.to_string();
            assert!(e.is_damaged(), "{text}");
            assert!(text.contains(&db.display().to_string()), "{text}");
            assert!(text.contains("Corrupt"), "{text}");
            return;
        }
        Ok(store) => store,
    };
    // Found when stored data is read: readiness reads the newest event, and says why.
    let e = store.check().expect_err("a damaged store is not ready");
    let text = e.to_string();
    assert!(e.is_damaged(), "{text}");
    assert!(e.is_retryable(), "the sender keeps the batch: {text}");
    assert!(text.contains("Corrupt database file"), "the cause: {text}");
    assert!(text.contains(&db.display().to_string()), "the file: {text}");
    // From then on nothing is acknowledged, even a batch that would not read the bad block.
    let e = store
        .append(&events("late", 100_000, 1))
        .expect_err("no write acknowledged on a damaged store");
    assert!(e.is_damaged(), "{e}");
    assert!(store.bulk().is_err());
    assert!(store.check().is_err(), "and it stays not ready");
}

#[test]
fn an_error_names_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(DATABASE_FILE);
    std::fs::write(&db, b"this is not a DuckDB file, only text in its place").unwrap();
    let e = DuckDbStore::open(dir.path()).err().expect("not a database");
    let text = e.to_string();
    assert!(text.contains(&db.display().to_string()), "{text}");
    // The cause, not only "database error while opening ...".
    let cause = text
        .split_once(&format!("{}", db.display()))
        .map(|(_, rest)| rest.trim_start_matches([':', ' ', ')']))
        .unwrap_or("");
    assert!(cause.len() > 10, "no cause in {text:?}");
}

/// Copies the database and its log as they are now, as a crash would leave them.
fn crash_copy(from: &Path, to: &Path) {
    for name in [DATABASE_FILE, &format!("{DATABASE_FILE}.wal")] {
        std::fs::copy(from.join(name), to.join(name)).unwrap();
    }
}

/// A store in `live` with `batches` commits of 1,000 events, and in `crashed` the files a kill
/// at that moment leaves (the events only in the log); returns the events appended.
fn crashed_store(live: &Path, crashed: &Path, batches: usize) -> u64 {
    let store = DuckDbStore::open(live).unwrap();
    for b in 0..batches {
        store.append(&events("w", b * 1000, 1000)).unwrap();
    }
    crash_copy(live, crashed);
    store.count().unwrap()
}

fn backups(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".bak"))
        .collect();
    found.sort();
    found
}

#[test]
fn a_whole_log_replays_and_nothing_is_kept_aside() {
    let (live, crashed) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let n = crashed_store(live.path(), crashed.path(), 5);
    let store = DuckDbStore::open(crashed.path()).unwrap();
    assert_eq!(store.count().unwrap(), n);
    assert_eq!(store.recovery_report(), None);
    assert_eq!(backups(crashed.path()), Vec::<std::path::PathBuf>::new());
}

#[test]
fn a_log_cut_in_half_is_reported_and_its_bytes_kept_aside() {
    let (live, crashed) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let n = crashed_store(live.path(), crashed.path(), 20);
    let wal = crashed.path().join(format!("{DATABASE_FILE}.wal"));
    let full = std::fs::metadata(&wal).unwrap().len();
    assert!(full > 1 << 20, "the events are in the log: {full} bytes");
    let f = std::fs::OpenOptions::new().write(true).open(&wal).unwrap();
    f.set_len(full / 2).unwrap();
    drop(f);
    let cut = std::fs::read(&wal).unwrap();

    let store = DuckDbStore::open(crashed.path()).unwrap();
    let left = store.count().unwrap();
    assert!(left < n, "half the log is gone: {left} of {n}");

    // Left aside, byte for byte as found, before DuckDB truncated the log.
    let kept = backups(crashed.path());
    assert_eq!(kept.len(), 1, "{kept:?}");
    let name = kept[0].file_name().unwrap().to_string_lossy().to_string();
    assert!(
        name.starts_with("kubetrail.duckdb.wal.") && name.ends_with(".bak"),
        "{name}"
    );
    assert!(
        std::fs::read(&kept[0]).unwrap() == cut,
        "the backup holds the log as found"
    );

    // And said, for the log and a metric.
    let report = store.recovery_report().expect("the damage is reported");
    assert_eq!(report.damaged, wal);
    assert_eq!(report.backup, kept[0]);
    assert_eq!(report.bytes, full / 2);
    assert!(!report.reason.is_empty());
    drop(store);

    // The next start has a whole log again: nothing more to report, the backup stays.
    let store = DuckDbStore::open(crashed.path()).unwrap();
    assert_eq!(store.recovery_report(), None);
    assert_eq!(store.count().unwrap(), left);
    assert_eq!(backups(crashed.path()), kept);
}

#[test]
fn a_log_with_a_bad_checksum_refuses_to_open_and_is_kept() {
    let (live, crashed) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    crashed_store(live.path(), crashed.path(), 5);
    let wal = crashed.path().join(format!("{DATABASE_FILE}.wal"));
    let len = std::fs::metadata(&wal).unwrap().len();
    scribble(&wal, len / 2, 64).unwrap();
    let damaged = std::fs::read(&wal).unwrap();

    let e = DuckDbStore::open(crashed.path())
        .err()
        .expect("a log DuckDB refuses leaves the store closed");
    let text = e.to_string();
    assert!(e.is_damaged(), "{text}");
    assert!(text.contains(&wal.display().to_string()), "{text}");
    let kept = backups(crashed.path());
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(text.contains(&kept[0].display().to_string()), "{text}");
    assert!(std::fs::read(&kept[0]).unwrap() == damaged);
    assert!(
        std::fs::read(&wal).unwrap() == damaged,
        "the log is untouched"
    );
}

#[test]
fn readiness_reads_the_newest_event() {
    let store = DuckDbStore::open_in_memory().unwrap();
    store.check().unwrap();
    store.append(&events("r", 0, 10)).unwrap();
    store.check().unwrap();
    assert_eq!(
        store
            .query(&Filter::default(), None, 1)
            .unwrap()
            .records
            .len(),
        1
    );
}
