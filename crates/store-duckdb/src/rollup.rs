//! Hourly counts of requests, kept beside the events so that reports over days read thousands
//! of rows instead of millions.
//!
//! `rollup` holds, per hour and per combination of the fields reports group and filter by
//! (cluster, verb, user and impersonated user, resource, namespace, code, decision), how many counted events
//! ([`StageSelection::Final`]) are stored, for every hour before a watermark (`through`, kept
//! in `kubetrail_meta`). An append whose newest event is in a later hour than the watermark
//! moves it up to that hour, counting the hours in between from `events` (once an hour in a
//! live stream; as it goes for an import of the past); events that arrive for hours already
//! counted are added as they are stored. Rows of one key add up ([`compact`] merges them now and
//! then); retention counts the hours it touched again.
//!
//! An aggregation that only counts requests by those fields over at least [`MIN_HOURS`]
//! counted hours reads those from `rollup` and the rest of its range from `events`, through a
//! derived table whose rows each stand for `n` events.

use std::collections::HashMap;

use duckdb::{Connection, ToSql};
use kubetrail_store::{Aggregation, Field, Filter, Record, SectionSpec, StageSelection, TimeRange};

/// An hour in microseconds.
pub const HOUR: i64 = 3_600_000_000;

/// Ranges shorter than this many whole hours are answered from `events` alone.
pub const MIN_HOURS: i64 = 6;

/// Rows beyond which appends compact the table (or twice its compacted size, if larger).
pub const COMPACT_AT: u64 = 200_000;

/// The key columns, in table order.
const KEYS: &str = "cluster, verb, username, impersonated_user, api_group, resource, subresource, namespace, code, decision";

/// The table keyed by the impersonated user too (schema version 5), so that questions about
/// who acted as whom, and by either identity, are answered from it: counted again up to the
/// watermark.
pub const MIGRATION_IMPERSONATED: &str = "DROP TABLE rollup;
    CREATE TABLE rollup (
        hour BIGINT NOT NULL,
        cluster VARCHAR NOT NULL,
        verb VARCHAR NOT NULL,
        username VARCHAR NOT NULL,
        impersonated_user VARCHAR NOT NULL,
        api_group VARCHAR NOT NULL,
        resource VARCHAR NOT NULL,
        subresource VARCHAR NOT NULL,
        namespace VARCHAR NOT NULL,
        code INTEGER NOT NULL,
        decision VARCHAR NOT NULL,
        n BIGINT NOT NULL
    );
    INSERT INTO rollup
        SELECT ts - ts % 3600000000, cluster, verb, username, impersonated_user, api_group,
               resource, subresource, namespace, code, decision, count(*)
        FROM events
        WHERE counted AND ts >= 0
          AND ts < (SELECT CAST(value AS BIGINT) FROM kubetrail_meta WHERE key = 'rollup_through')
        GROUP BY ALL;";

/// The table as first made, and its contents for what is already stored (schema version 2).
pub const MIGRATION: &str = "CREATE TABLE rollup (
        hour BIGINT NOT NULL,
        cluster VARCHAR NOT NULL,
        verb VARCHAR NOT NULL,
        username VARCHAR NOT NULL,
        api_group VARCHAR NOT NULL,
        resource VARCHAR NOT NULL,
        subresource VARCHAR NOT NULL,
        namespace VARCHAR NOT NULL,
        code INTEGER NOT NULL,
        decision VARCHAR NOT NULL,
        n BIGINT NOT NULL
    );
    INSERT INTO kubetrail_meta
        SELECT 'rollup_through', CAST(coalesce(max(ts) - max(ts) % 3600000000, 0) AS VARCHAR)
        FROM events WHERE ts >= 0;
    INSERT INTO rollup
        SELECT ts - ts % 3600000000, cluster, verb, username, api_group, resource, subresource,
               namespace, code, decision, count(*)
        FROM events
        WHERE counted AND ts >= 0
          AND ts < (SELECT CAST(value AS BIGINT) FROM kubetrail_meta WHERE key = 'rollup_through')
        GROUP BY ALL;";

/// The watermark: every hour before it is counted.
pub fn through(conn: &Connection) -> duckdb::Result<i64> {
    conn.query_row(
        "SELECT CAST(value AS BIGINT) FROM kubetrail_meta WHERE key = 'rollup_through'",
        [],
        |r| r.get(0),
    )
}

/// Counts the hours from the watermark `from` up to (not including) `to`'s, and moves the
/// watermark there; returns the rows written.
pub fn advance(conn: &Connection, from: i64, to: i64) -> duckdb::Result<u64> {
    let added = conn.execute(
        &format!(
            "INSERT INTO rollup SELECT ts - ts % 3600000000, {KEYS}, count(*) FROM events
             WHERE counted AND ts >= ? AND ts < ? GROUP BY ALL"
        ),
        [from, to],
    )?;
    conn.execute(
        "UPDATE kubetrail_meta SET value = CAST(? AS VARCHAR) WHERE key = 'rollup_through'",
        [to],
    )?;
    Ok(added as u64)
}

type Key<'r> = (
    i64,
    &'r str,
    &'r str,
    &'r str,
    &'r str,
    &'r str,
    &'r str,
    &'r str,
    &'r str,
    i32,
    &'r str,
);

/// Adds the counted rows just stored that fall in hours already counted (before `through`);
/// returns the rows written.
pub fn add(
    conn: &Connection,
    rows: &[&Record],
    counted: &[bool],
    through: i64,
) -> duckdb::Result<u64> {
    let mut counts: HashMap<Key<'_>, i64> = HashMap::new();
    for (r, c) in rows.iter().zip(counted) {
        if !*c || r.ts_micros < 0 || r.ts_micros >= through {
            continue;
        }
        let key = (
            r.ts_micros - r.ts_micros % HOUR,
            r.cluster.as_str(),
            r.verb.as_str(),
            r.user.as_str(),
            r.impersonated_user.as_str(),
            r.api_group.as_str(),
            r.resource.as_str(),
            r.subresource.as_str(),
            r.namespace.as_str(),
            r.code.unwrap_or(0),
            r.decision.as_str(),
        );
        *counts.entry(key).or_default() += 1;
    }
    if counts.is_empty() {
        return Ok(0);
    }
    let mut appender = conn.appender("rollup")?;
    for (k, n) in &counts {
        let row: [&dyn ToSql; 12] = [
            &k.0, &k.1, &k.2, &k.3, &k.4, &k.5, &k.6, &k.7, &k.8, &k.9, &k.10, n,
        ];
        appender.append_row(row.as_slice())?;
    }
    appender.flush()?;
    Ok(counts.len() as u64)
}

/// Merges rows of the same hour and key; returns the rows left.
pub fn compact(conn: &Connection) -> duckdb::Result<u64> {
    conn.execute_batch(&format!(
        "CREATE TEMP TABLE rollup_compact AS SELECT hour, {KEYS}, sum(n) AS n FROM rollup GROUP BY ALL;
         DELETE FROM rollup;
         INSERT INTO rollup SELECT * FROM rollup_compact;
         DROP TABLE rollup_compact;"
    ))?;
    rows(conn)
}

/// Rows in the table.
pub fn rows(conn: &Connection) -> duckdb::Result<u64> {
    conn.query_row("SELECT count(*) FROM rollup", [], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
}

/// After events up to `cutoff` were deleted: counts again every counted hour up to `cutoff`'s.
pub fn rebuild_through(conn: &Connection, cutoff: i64) -> duckdb::Result<()> {
    let last = cutoff - cutoff.rem_euclid(HOUR);
    let end = (last + HOUR).min(through(conn)?);
    conn.execute("DELETE FROM rollup WHERE hour <= ?", [last])?;
    conn.execute(
        &format!(
            "INSERT INTO rollup SELECT ts - ts % 3600000000, {KEYS}, count(*) FROM events
             WHERE counted AND ts >= 0 AND ts < ? GROUP BY ALL"
        ),
        [end],
    )?;
    Ok(())
}

/// Counts again every hour from `from`'s (or the watermark, if earlier) up to the newest
/// event's, which becomes the watermark; returns it. After a bulk load, which stores events
/// in any hour without counting them.
pub fn recount_from(conn: &Connection, from: i64) -> duckdb::Result<i64> {
    let old = through(conn)?;
    let newest: Option<i64> = conn.query_row("SELECT max(ts) FROM events", [], |r| r.get(0))?;
    let to = newest.map_or(old, |n| old.max(n - n.rem_euclid(HOUR)));
    let start = (from - from.rem_euclid(HOUR)).min(old).max(0);
    conn.execute("DELETE FROM rollup WHERE hour >= ?", [start])?;
    advance(conn, start, to)?;
    Ok(to)
}

/// Whether the rollup's fields can answer a grouping by `field`.
fn keyed(field: Field) -> bool {
    matches!(
        field,
        Field::Cluster
            | Field::User
            | Field::ImpersonatedUser
            | Field::Verb
            | Field::Resource
            | Field::ApiGroup
            | Field::Namespace
            | Field::Code
            | Field::Decision
    )
}

/// Whether `f` only names rollup fields (its time and stages aside).
fn filters_keys(f: &Filter) -> bool {
    f.text.is_none()
        && f.groups.is_empty()
        && f.names.is_empty()
        && f.audit_ids.is_empty()
        && f.source_ips.is_empty()
}

/// A question the rollup can answer: the derived table to ask instead of `events` (its rows
/// carry `n`), and the filter without its time and stage conditions, which the table has
/// applied. `None`: ask `events`.
pub fn source(
    filter: &Filter,
    aggregation: &Aggregation,
    through: i64,
) -> Option<(String, Filter)> {
    if filter.stages != StageSelection::Final || !filters_keys(filter) {
        return None;
    }
    let fits = match aggregation {
        Aggregation::CountBy { fields, .. } | Aggregation::CountEach { fields } => {
            fields.iter().all(|f| keyed(*f))
        }
        Aggregation::Histogram { bucket, by } => {
            let b = bucket.as_micros() as i64;
            b > 0 && b % HOUR == 0 && by.is_none_or(keyed)
        }
        Aggregation::Sections(specs) => specs
            .iter()
            .all(|s| filters_keys(&s.filter) && s.fields.iter().all(|f| keyed(*f))),
    };
    if !fits {
        return None;
    }
    let from = filter.time.from_micros.filter(|f| *f >= 0)?;
    let first = from + (HOUR - from.rem_euclid(HOUR)) % HOUR;
    // Whole hours of the range that are counted: [first, end).
    let end = filter
        .time
        .to_micros
        .map_or(through, |t| (t - t.rem_euclid(HOUR)).min(through));
    if end - first < MIN_HOURS * HOUR {
        return None;
    }
    let hours = format!("hour >= {first} AND hour < {end}");
    let edges = match filter.time.to_micros {
        Some(to) => format!("(ts >= {from} AND ts < {first}) OR (ts >= {end} AND ts < {to})"),
        None => format!("(ts >= {from} AND ts < {first}) OR ts >= {end}"),
    };
    let table = format!(
        "(SELECT hour AS ts, {KEYS}, n FROM rollup WHERE {hours}
          UNION ALL
          SELECT ts, {KEYS}, 1 AS n FROM events WHERE counted AND ({edges})) AS events"
    );
    let rest = Filter {
        time: TimeRange::default(),
        stages: StageSelection::All,
        ..filter.clone()
    };
    Some((table, rest))
}

/// Section specs for the derived table: their stage condition is the table's.
pub fn sections_for(specs: &[SectionSpec]) -> Vec<SectionSpec> {
    specs
        .iter()
        .map(|s| SectionSpec {
            filter: Filter {
                stages: StageSelection::All,
                ..s.filter.clone()
            },
            ..s.clone()
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use kubetrail_model::Stage;
    use kubetrail_store::{
        Aggregation, Field, Filter, Record, SectionSpec, StageSelection, Store, TimeRange,
    };
    use kubetrail_testsuite::conformance;

    use crate::DuckDbStore;

    /// Events over three days with varied fields, appended in batches that overlap in time
    /// (the probe path) and repeat events (duplicates).
    fn varied_store() -> (DuckDbStore, i64) {
        let store = DuckDbStore::open_in_memory().unwrap();
        let (batches, start) = varied_batches();
        let (late, earlier) = batches.split_last().unwrap();
        for batch in earlier {
            store.append(batch).unwrap();
        }
        assert!(late[0].ts_micros < store.rollup_through.load(Relaxed));
        assert_eq!(store.append(late).unwrap().stored, 50);
        (store, start)
    }

    /// The batches of [`varied_store`], in order, and the start of their time span; the last
    /// batch is 50 late events for an hour already counted, with nothing stored near them.
    fn varied_batches() -> (Vec<Vec<Record>>, i64) {
        let start = 1_764_000_000_000_000 - 1_764_000_000_000_000 % crate::rollup::HOUR + 1_234_567;
        let mut seed = 42u64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let mut all = Vec::new();
        for i in 0..6000 {
            let ts = start + (next(72 * 3600) as i64) * 1_000_000 + i;
            let stage = [
                Some(Stage::ResponseComplete),
                Some(Stage::ResponseStarted),
                None,
            ][next(3) as usize];
            let mut r =
                conformance::record(["a", "b"][next(2) as usize], &format!("id-{i}"), stage, ts);
            r.verb = ["get", "list", "watch", "create", "delete", "patch"][next(6) as usize].into();
            r.user =
                ["alice", "bob", "", "system:anonymous", "system:node:n1"][next(5) as usize].into();
            r.impersonated_user = ["", "", "", "bob", "carol"][next(5) as usize].into();
            r.resource = ["pods", "secrets", "deployments", "roles", ""][next(5) as usize].into();
            r.api_group = match r.resource.as_str() {
                "deployments" => "apps".into(),
                "roles" => "rbac.authorization.k8s.io".into(),
                _ => String::new(),
            };
            r.subresource = ["", "", "exec", "status"][next(4) as usize].into();
            r.namespace = ["", "prod", "dev"][next(3) as usize].into();
            r.code = Some([200, 201, 403, 404, 500][next(5) as usize]);
            r.decision = ["allow", "forbid", ""][next(3) as usize].into();
            all.push(r);
        }
        all.sort_by_key(|r| r.ts_micros);
        let mut batches: Vec<Vec<Record>> = all.chunks(700).map(<[Record]>::to_vec).collect();
        // Overlapping and repeated batches.
        let mut again: Vec<Record> = all.iter().step_by(7).cloned().collect();
        for (i, r) in again.iter_mut().enumerate().filter(|(i, _)| i % 2 == 0) {
            r.audit_id = format!("late-{i}");
        }
        batches.push(again);
        // Late events for an hour already counted, with nothing stored near them.
        let late: Vec<Record> = (0..50)
            .map(|i| {
                let mut r = conformance::record(
                    "a",
                    &format!("early-{i}"),
                    None,
                    start - 10 * crate::rollup::HOUR + i * 1000,
                );
                r.user = ["alice", "carol"][i as usize % 2].into();
                r
            })
            .collect();
        batches.push(late);
        (batches, start)
    }

    /// Counted requests from `from` on: what the rollup answers for.
    pub(crate) fn final_since(from: i64) -> Filter {
        Filter {
            time: TimeRange {
                from_micros: Some(from),
                to_micros: None,
            },
            stages: StageSelection::Final,
            ..Filter::default()
        }
    }

    /// Every stored event of `store`.
    fn old_records(store: &DuckDbStore) -> Vec<Record> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = store
                .query(&Filter::default(), cursor.as_ref(), 5000)
                .unwrap();
            out.extend(page.records);
            match page.next {
                Some(c) => cursor = Some(c),
                None => return out,
            }
        }
    }

    /// A bulk load that commits every 1,000 rows leaves the same events, `counted` flags and
    /// rollup as appending batch by batch: the open transaction's starts, watermark and rollup
    /// rows carry from batch to batch and over commits.
    #[test]
    fn a_bulk_load_stores_what_appends_do() {
        let (appended, start) = varied_store();
        let (batches, _) = varied_batches();
        let bulk = DuckDbStore::open_in_memory().unwrap();
        let threads = |s: &DuckDbStore| -> i64 {
            s.read()
                .query_row("SELECT current_setting('threads')", [], |r| r.get(0))
                .unwrap()
        };
        let usual = threads(&bulk);
        let mut load = crate::DuckDbBulk::new(&bulk, 1000).unwrap();
        assert_eq!(threads(&bulk), 1, "a load runs its inserts itself");
        let mut outcomes = Vec::new();
        for batch in &batches {
            outcomes.push(kubetrail_store::BulkAppend::append(&mut load, batch).unwrap());
        }
        kubetrail_store::BulkAppend::finish(Box::new(load)).unwrap();
        assert_eq!(threads(&bulk), usual);
        let again = DuckDbStore::open_in_memory().unwrap();
        let expected: Vec<_> = batches.iter().map(|b| again.append(b).unwrap()).collect();
        assert_eq!(outcomes, expected);
        assert_eq!(old_records(&bulk), old_records(&appended));
        assert_eq!(
            bulk.rollup_through.load(Relaxed),
            appended.rollup_through.load(Relaxed)
        );
        let counted = |s: &DuckDbStore| -> i64 {
            s.lock()
                .query_row("SELECT count(*) FILTER (counted) FROM events", [], |r| {
                    r.get(0)
                })
                .unwrap()
        };
        assert_eq!(counted(&bulk), counted(&appended));
        let f = final_since(start - 12 * crate::rollup::HOUR);
        let by_user = Aggregation::CountBy {
            fields: vec![Field::User, Field::Verb],
            limit: None,
        };
        assert!(crate::rollup::source(&f, &by_user, bulk.rollup_through.load(Relaxed)).is_some());
        assert_eq!(
            bulk.aggregate_from(&f, &by_user, true).unwrap(),
            appended.aggregate_from(&f, &by_user, false).unwrap()
        );
    }

    #[test]
    fn filters_on_what_the_rollup_does_not_key_are_answered_from_events() {
        let h = crate::rollup::HOUR;
        let count = Aggregation::CountBy {
            fields: vec![Field::User],
            limit: None,
        };
        let plain = Filter {
            time: TimeRange {
                from_micros: Some(0),
                to_micros: Some(100 * h),
            },
            stages: StageSelection::Final,
            ..Filter::default()
        };
        assert!(crate::rollup::source(&plain, &count, 100 * h).is_some());
        for keyed in [
            Filter {
                impersonated_users: vec!["bob".into()],
                ..plain.clone()
            },
            Filter {
                identities: vec!["bob".into()],
                ..plain.clone()
            },
        ] {
            assert!(crate::rollup::source(&keyed, &count, 100 * h).is_some());
        }
        for narrowed in [
            Filter {
                source_ips: vec!["10.0.0.1".into()],
                ..plain.clone()
            },
            Filter {
                names: vec!["web".into()],
                ..plain.clone()
            },
        ] {
            assert!(
                crate::rollup::source(&narrowed, &count, 100 * h).is_none(),
                "{narrowed:?}"
            );
        }
    }

    #[test]
    fn the_rollup_answers_as_the_events_do() {
        let (store, start) = varied_store();
        // Compaction merges rows without changing answers.
        let conn = store.lock();
        let before = crate::rollup::rows(&conn).unwrap();
        let after = crate::rollup::compact(&conn).unwrap();
        drop(conn);
        assert!(after <= before && after > 0);
        let h = crate::rollup::HOUR;
        let ranges = [
            (start + 17, None),
            (start - 12 * h + 5, None),
            (start + 5 * h + 999, Some(start + 50 * h + 12_345)),
            (
                start - start % h,
                Some(start + 24 * h - (start + 24 * h) % h),
            ),
        ];
        let sections = vec![
            SectionSpec {
                filter: Filter {
                    codes: vec![kubetrail_store::CodeFilter::Failed],
                    stages: StageSelection::Final,
                    ..Filter::default()
                },
                fields: vec![Field::User, Field::Code],
                limit: 3,
            },
            SectionSpec {
                filter: Filter {
                    resources: vec!["pods/exec".parse().unwrap()],
                    ..Filter::default()
                },
                fields: vec![Field::User],
                limit: 10,
            },
            SectionSpec {
                filter: Filter {
                    users: vec!["system:anonymous".into(), String::new()],
                    ..Filter::default()
                },
                fields: vec![Field::Resource],
                limit: 10,
            },
        ];
        let aggregations = vec![
            Aggregation::CountBy {
                fields: vec![],
                limit: None,
            },
            Aggregation::CountBy {
                fields: vec![Field::User, Field::Resource],
                limit: Some(5),
            },
            Aggregation::CountEach {
                fields: vec![Field::Verb, Field::User, Field::Resource, Field::Namespace],
            },
            Aggregation::CountBy {
                fields: vec![Field::User, Field::ImpersonatedUser],
                limit: None,
            },
            Aggregation::Histogram {
                bucket: std::time::Duration::from_secs(3 * 3600),
                by: Some(Field::Verb),
            },
            Aggregation::Histogram {
                bucket: std::time::Duration::from_secs(3600),
                by: Some(Field::Code),
            },
            Aggregation::Sections(sections),
        ];
        let mut via_rollup = 0;
        for (from, to) in ranges {
            for narrow in [
                Filter::default(),
                Filter {
                    namespaces: vec!["prod".into()],
                    ..Filter::default()
                },
                Filter {
                    identities: vec!["bob".into()],
                    ..Filter::default()
                },
            ] {
                let f = Filter {
                    time: TimeRange {
                        from_micros: Some(from),
                        to_micros: to,
                    },
                    stages: StageSelection::Final,
                    ..narrow
                };
                for a in &aggregations {
                    if crate::rollup::source(&f, a, store.rollup_through.load(Relaxed)).is_some() {
                        via_rollup += 1;
                    }
                    let fast = store.aggregate_from(&f, a, true).unwrap();
                    let slow = store.aggregate_from(&f, a, false).unwrap();
                    assert_eq!(fast, slow, "{a:?} over {f:?}");
                }
            }
        }
        assert!(
            via_rollup >= 30,
            "the rollup answered {via_rollup} questions"
        );

        // A store from before the rollup gets it filled when opened.
        let dir = tempfile::tempdir().unwrap();
        let old = DuckDbStore::open(dir.path()).unwrap();
        old.append(&old_records(&store)).unwrap();
        old.lock()
            .execute_batch(
                "DROP TABLE rollup; DROP TABLE alerts; DELETE FROM kubetrail_meta WHERE key = 'rollup_through';
                 DROP TABLE chain; DROP TABLE chain_entries; DROP TABLE chain_keys; ALTER TABLE events DROP COLUMN chain_batch;
                 ALTER TABLE events DROP COLUMN content_hash;
                 UPDATE kubetrail_meta SET value = '1' WHERE key = 'schema_version';",
            )
            .unwrap();
        drop(old);
        let migrated = DuckDbStore::open(dir.path()).unwrap();
        assert_eq!(migrated.schema_version().unwrap(), 6);
        let f = final_since(start + 3);
        for a in &aggregations {
            assert!(crate::rollup::source(&f, a, migrated.rollup_through.load(Relaxed)).is_some());
            assert_eq!(
                migrated.aggregate_from(&f, a, true).unwrap(),
                store.aggregate_from(&f, a, false).unwrap(),
                "migrated: {a:?}"
            );
        }
        // Retention removes the oldest day from both.
        store
            .retain(&kubetrail_store::Retention {
                max_age: Some(std::time::Duration::from_micros(
                    (chrono::Utc::now().timestamp_micros() - start - 30 * h + 777) as u64,
                )),
                max_bytes: None,
            })
            .unwrap();
        let f = final_since(start);
        for a in &aggregations {
            assert_eq!(
                store.aggregate_from(&f, a, true).unwrap(),
                store.aggregate_from(&f, a, false).unwrap(),
                "after retention: {a:?}"
            );
        }
    }
}
