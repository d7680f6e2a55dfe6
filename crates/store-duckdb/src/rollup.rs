//! Hourly counts of requests, kept beside the events so that reports over days read thousands
//! of rows instead of millions.
//!
//! `rollup` holds, per hour and per combination of the fields reports group and filter by
//! (cluster, verb, user, resource, namespace, code, decision), how many counted events
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
const KEYS: &str =
    "cluster, verb, username, api_group, resource, subresource, namespace, code, decision";

/// The table, and its contents for what is already stored (schema version 2).
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
    i32,
    &'r str,
);

/// Adds the counted rows, of a batch that was stored whole, that fall in hours already counted
/// (before `through`); returns the rows written.
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
        let row: [&dyn ToSql; 11] = [
            &k.0, &k.1, &k.2, &k.3, &k.4, &k.5, &k.6, &k.7, &k.8, &k.9, n,
        ];
        appender.append_row(row.as_slice())?;
    }
    appender.flush()?;
    Ok(counts.len() as u64)
}

/// Adds the counted rows of `staging` in hours already counted that are not yet in `events`
/// (run just before they are inserted, with the same condition); the `?` are the watermark and
/// the batch's time bounds.
pub const ADD_NEW_FROM_STAGING: &str = "INSERT INTO rollup
    SELECT s.ts - s.ts % 3600000000, s.cluster, s.verb, s.username, s.api_group, s.resource,
           s.subresource, s.namespace, s.code, s.decision, count(*)
    FROM staging s
    WHERE s.counted AND s.ts >= 0 AND s.ts < ? AND NOT EXISTS (
        SELECT 1 FROM events e
        WHERE e.ts >= ? AND e.ts <= ?
          AND e.ts = s.ts AND e.cluster = s.cluster AND e.audit_id = s.audit_id AND e.stage = s.stage)
    GROUP BY ALL";

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

/// Whether the rollup's fields can answer a grouping by `field`.
fn keyed(field: Field) -> bool {
    matches!(
        field,
        Field::Cluster
            | Field::User
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
