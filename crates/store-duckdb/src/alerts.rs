//! Alerts in DuckDB: one table keyed by (cluster, rule, auditID); a repeat is ignored by
//! the key, so storing alerts again changes nothing.

use duckdb::params_from_iter;
use kubetrail_store::alerts::{ALERT_COLUMNS, distinct_alerts};
use kubetrail_store::{AlertField, AlertFilter, AlertRecord, Result};

use crate::{DuckDbStore, bind};

/// The migration that adds the table.
pub(crate) const MIGRATION: &str = "CREATE TABLE alerts (
        cluster VARCHAR NOT NULL,
        rule VARCHAR NOT NULL,
        audit_id VARCHAR NOT NULL,
        severity VARCHAR NOT NULL,
        ts BIGINT NOT NULL,
        username VARCHAR NOT NULL,
        namespace VARCHAR NOT NULL,
        resource VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        alert VARCHAR NOT NULL,
        PRIMARY KEY (cluster, rule, audit_id)
    );";

/// Alerts one INSERT statement carries.
const ALERT_ROWS_PER_INSERT: usize = 200;

impl DuckDbStore {
    pub(crate) fn store_alerts(&self, alerts: &[AlertRecord]) -> Result<usize> {
        self.failed()?;
        let fresh = distinct_alerts(alerts);
        if fresh.is_empty() {
            return Ok(0);
        }
        let conn = self.lock();
        let run = || -> duckdb::Result<usize> {
            conn.execute_batch("BEGIN TRANSACTION;")?;
            let mut stored = 0;
            // One statement per chunk of rows: a statement per alert would hold the store
            // (and the commits waiting for it) for a planning pass each.
            for chunk in fresh.chunks(ALERT_ROWS_PER_INSERT) {
                let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
                let mut insert = conn.prepare_cached(&format!(
                    "INSERT OR IGNORE INTO alerts ({ALERT_COLUMNS}) VALUES {rows}"
                ))?;
                let mut values: Vec<&dyn duckdb::ToSql> = Vec::with_capacity(chunk.len() * 10);
                for a in chunk {
                    values.extend([
                        &a.cluster as &dyn duckdb::ToSql,
                        &a.rule,
                        &a.audit_id,
                        &a.severity,
                        &a.ts_micros,
                        &a.user,
                        &a.namespace,
                        &a.resource,
                        &a.name,
                        &a.json,
                    ]);
                }
                stored += insert.execute(values.as_slice())?;
            }
            conn.execute_batch("COMMIT;")?;
            Ok(stored)
        };
        run().map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK;");
            self.fail("storing alerts", e)
        })
    }

    pub(crate) fn alerts(&self, filter: &AlertFilter, limit: usize) -> Result<Vec<AlertRecord>> {
        let w = filter.to_sql();
        let conn = self.read();
        let run = || -> duckdb::Result<Vec<AlertRecord>> {
            let mut stmt = conn.prepare(&format!(
                "SELECT {ALERT_COLUMNS} FROM alerts WHERE {} ORDER BY ts DESC, rule, audit_id LIMIT {limit}",
                w.text
            ))?;
            let rows = stmt.query_map(params_from_iter(bind(&w.params)), |row| {
                Ok(AlertRecord {
                    cluster: row.get(0)?,
                    rule: row.get(1)?,
                    audit_id: row.get(2)?,
                    severity: row.get(3)?,
                    ts_micros: row.get(4)?,
                    user: row.get(5)?,
                    namespace: row.get(6)?,
                    resource: row.get(7)?,
                    name: row.get(8)?,
                    json: row.get(9)?,
                })
            })?;
            rows.collect()
        };
        run().map_err(|e| self.fail("reading alerts", e))
    }

    pub(crate) fn alert_counts(
        &self,
        filter: &AlertFilter,
        field: AlertField,
    ) -> Result<Vec<(String, u64)>> {
        let w = filter.to_sql();
        let column = field.column();
        let conn = self.read();
        let run = || -> duckdb::Result<Vec<(String, u64)>> {
            let mut stmt = conn.prepare(&format!(
                "SELECT {column}, count(*) AS n FROM alerts WHERE {} GROUP BY {column} ORDER BY n DESC, {column}",
                w.text
            ))?;
            let rows = stmt.query_map(params_from_iter(bind(&w.params)), |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64))
            })?;
            rows.collect()
        };
        run().map_err(|e| self.fail("counting alerts", e))
    }
}
