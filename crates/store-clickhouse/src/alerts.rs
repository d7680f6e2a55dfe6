//! Alerts in ClickHouse: a `ReplacingMergeTree` ordered by (cluster, rule, auditID), so a
//! repeat collapses when parts merge; appends skip keys already stored, and reads take one
//! row per key (`LIMIT 1 BY`), exact before any merge.

use kubetrail_store::alerts::{ALERT_COLUMNS, distinct_alerts};
use kubetrail_store::{AlertField, AlertFilter, AlertRecord, Result};
use serde_json::Value;

use crate::client::int;
use crate::{ClickHouseStore, sql, text};

impl ClickHouseStore {
    pub(crate) fn alerts_table(&self) -> String {
        format!("{}.alerts", sql::ident(self.ch.database()))
    }

    /// Creates the table when it is not there.
    pub(crate) fn create_alerts(&self) -> Result<()> {
        self.ch.execute(&format!(
            "CREATE TABLE IF NOT EXISTS {} (
                cluster String, rule String, audit_id String, severity String, ts Int64,
                username String, namespace String, resource String, name String, alert String
            ) ENGINE = ReplacingMergeTree ORDER BY (cluster, rule, audit_id)",
            self.alerts_table()
        ))
    }

    pub(crate) fn store_alerts(&self, alerts: &[AlertRecord]) -> Result<usize> {
        let fresh = distinct_alerts(alerts);
        if fresh.is_empty() {
            return Ok(0);
        }
        let keys: Vec<String> = fresh
            .iter()
            .map(|a| {
                format!(
                    "({}, {}, {})",
                    sql::literal(&a.cluster),
                    sql::literal(&a.rule),
                    sql::literal(&a.audit_id)
                )
            })
            .collect();
        let stored: std::collections::HashSet<(String, String, String)> = self
            .ch
            .rows(&format!(
                "SELECT cluster, rule, audit_id FROM {} WHERE (cluster, rule, audit_id) IN ({})",
                self.alerts_table(),
                keys.join(", ")
            ))?
            .iter()
            .map(|r| (field(r, 0), field(r, 1), field(r, 2)))
            .collect();
        let mut body = String::new();
        let mut new = 0;
        for a in fresh {
            if stored.contains(&(a.cluster.clone(), a.rule.clone(), a.audit_id.clone())) {
                continue;
            }
            let row = serde_json::json!({
                "cluster": a.cluster, "rule": a.rule, "audit_id": a.audit_id,
                "severity": a.severity, "ts": a.ts_micros, "username": a.user,
                "namespace": a.namespace, "resource": a.resource, "name": a.name,
                "alert": a.json,
            });
            body.push_str(&row.to_string());
            body.push('\n');
            new += 1;
        }
        if new > 0 {
            self.ch.insert(
                &format!("INSERT INTO {} FORMAT JSONEachRow", self.alerts_table()),
                body,
            )?;
        }
        Ok(new)
    }

    pub(crate) fn alerts(&self, filter: &AlertFilter, limit: usize) -> Result<Vec<AlertRecord>> {
        let w = sql::bind(&filter.to_sql())?;
        let rows = self.ch.rows(&format!(
            "SELECT {ALERT_COLUMNS} FROM {} WHERE {w} ORDER BY ts DESC, rule, audit_id LIMIT 1 BY cluster, rule, audit_id LIMIT {limit}",
            self.alerts_table()
        ))?;
        Ok(rows
            .iter()
            .map(|r| AlertRecord {
                cluster: field(r, 0),
                rule: field(r, 1),
                audit_id: field(r, 2),
                severity: field(r, 3),
                ts_micros: r.get(4).map(int).unwrap_or(0),
                user: field(r, 5),
                namespace: field(r, 6),
                resource: field(r, 7),
                name: field(r, 8),
                json: field(r, 9),
            })
            .collect())
    }

    pub(crate) fn alert_counts(
        &self,
        filter: &AlertFilter,
        field_: AlertField,
    ) -> Result<Vec<(String, u64)>> {
        let w = sql::bind(&filter.to_sql())?;
        let column = field_.column();
        let rows = self.ch.rows(&format!(
            "SELECT {column}, count() AS n FROM (SELECT cluster, rule, audit_id, {column} FROM {} WHERE {w} LIMIT 1 BY cluster, rule, audit_id) GROUP BY {column} ORDER BY n DESC, {column}",
            self.alerts_table()
        ))?;
        Ok(rows
            .iter()
            .map(|r| (field(r, 0), r.get(1).map(int).unwrap_or(0) as u64))
            .collect())
    }

    /// Deletes alerts older than `cutoff` (microseconds), as retention does events.
    pub(crate) fn delete_alerts_before(&self, cutoff: i64) -> Result<()> {
        self.ch.execute(&format!(
            "ALTER TABLE {} DELETE WHERE ts < {cutoff}",
            self.alerts_table()
        ))
    }
}

fn field(row: &[Value], i: usize) -> String {
    row.get(i).map(text).unwrap_or_default()
}
