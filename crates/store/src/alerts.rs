//! Stored alerts: what detection rules raised, kept beside the events they rest on.
//!
//! The store does not know rules: an alert arrives as an [`AlertRecord`], the columns the
//! questions filter on plus the alert's whole JSON. An alert is unique by
//! (cluster, rule, auditID): a rule alerts once per request, whichever of its stages and
//! retries arrive and however often the same events are evaluated again (a re-import, a
//! restart replaying its window), so storing it again changes nothing.

use crate::{OutOfScope, ReadScope, TimeRange};

/// One alert as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRecord {
    /// The cluster of the triggering event.
    pub cluster: String,
    /// The rule's id.
    pub rule: String,
    /// The triggering event's auditID.
    pub audit_id: String,
    /// `info`, `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// The triggering event's time, microseconds since the epoch.
    pub ts_micros: i64,
    /// `user.username` of the triggering event.
    pub user: String,
    /// The object's namespace, `""` when cluster-scoped or none.
    pub namespace: String,
    /// The object's resource, `""` when none.
    pub resource: String,
    /// The object's name, `""` when none.
    pub name: String,
    /// The alert as JSON, given back unchanged.
    pub json: String,
}

/// Which alerts a question asks about. Every list is "any of"; an empty list matches all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlertFilter {
    /// Clusters.
    pub clusters: Vec<String>,
    /// Rule ids.
    pub rules: Vec<String>,
    /// Severities (a caller asking for "high and above" lists `high` and `critical`).
    pub severities: Vec<String>,
    /// Namespaces (`""` is cluster-scoped).
    pub namespaces: Vec<String>,
    /// Users.
    pub users: Vec<String>,
    /// Triggering events of one request.
    pub audit_ids: Vec<String>,
    /// By the triggering event's time.
    pub time: TimeRange,
}

impl AlertFilter {
    /// Narrows the filter to what `scope` may read, as [`Filter::restrict_to`] does for
    /// events.
    ///
    /// [`Filter::restrict_to`]: crate::Filter::restrict_to
    pub fn restrict_to(&mut self, scope: &ReadScope) -> Result<(), OutOfScope> {
        let ReadScope::Cluster(bound) = scope else {
            return Ok(());
        };
        if let Some(other) = self.clusters.iter().find(|c| *c != bound) {
            return Err(OutOfScope {
                bound: bound.clone(),
                asked: other.clone(),
            });
        }
        self.clusters = vec![bound.clone()];
        Ok(())
    }

    /// The filter as a SQL condition over the alerts table, `?` placeholders and their
    /// values in order.
    pub fn to_sql(&self) -> crate::sql::Sql {
        use crate::sql::Param;
        let mut parts = Vec::new();
        let mut params = Vec::new();
        let mut any_of = |column: &str, values: &[String]| {
            if values.is_empty() {
                return;
            }
            let marks = vec!["?"; values.len()].join(", ");
            parts.push(format!("{column} IN ({marks})"));
            params.extend(values.iter().cloned().map(Param::Text));
        };
        any_of("cluster", &self.clusters);
        any_of("rule", &self.rules);
        any_of("severity", &self.severities);
        any_of("namespace", &self.namespaces);
        any_of("username", &self.users);
        any_of("audit_id", &self.audit_ids);
        if let Some(from) = self.time.from_micros {
            parts.push("ts >= ?".into());
            params.push(Param::Int(from));
        }
        if let Some(to) = self.time.to_micros {
            parts.push("ts < ?".into());
            params.push(Param::Int(to));
        }
        if parts.is_empty() {
            parts.push("1 = 1".into());
        }
        crate::sql::Sql {
            text: parts.join(" AND "),
            params,
        }
    }
}

/// What alerts are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertField {
    /// The rule's id.
    Rule,
    /// The severity.
    Severity,
    /// The cluster.
    Cluster,
    /// The namespace.
    Namespace,
    /// The user.
    User,
}

impl AlertField {
    /// The column it is stored in.
    pub fn column(self) -> &'static str {
        match self {
            AlertField::Rule => "rule",
            AlertField::Severity => "severity",
            AlertField::Cluster => "cluster",
            AlertField::Namespace => "namespace",
            AlertField::User => "username",
        }
    }
}

/// The columns of the alerts table, in the order backends read them back.
pub const ALERT_COLUMNS: &str =
    "cluster, rule, audit_id, severity, ts, username, namespace, resource, name, alert";

/// The alerts of `batch` that are not already in it earlier (the same key twice in one
/// batch is one alert), in order.
pub fn distinct_alerts(batch: &[AlertRecord]) -> Vec<&AlertRecord> {
    let mut seen = std::collections::HashSet::new();
    batch
        .iter()
        .filter(|a| seen.insert((a.cluster.as_str(), a.rule.as_str(), a.audit_id.as_str())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Param;

    fn alert(rule: &str, audit_id: &str) -> AlertRecord {
        AlertRecord {
            cluster: "prod".into(),
            rule: rule.into(),
            audit_id: audit_id.into(),
            severity: "high".into(),
            ts_micros: 1,
            user: "alice".into(),
            namespace: "default".into(),
            resource: "pods".into(),
            name: "web".into(),
            json: "{}".into(),
        }
    }

    #[test]
    fn a_batch_holds_each_key_once() {
        let batch = [
            alert("a", "1"),
            alert("a", "1"),
            alert("b", "1"),
            alert("a", "2"),
        ];
        let keys: Vec<_> = distinct_alerts(&batch)
            .iter()
            .map(|a| (a.rule.as_str(), a.audit_id.as_str()))
            .collect();
        assert_eq!(keys, [("a", "1"), ("b", "1"), ("a", "2")]);
    }

    #[test]
    fn the_filter_compiles_to_placeholders_in_order() {
        let f = AlertFilter {
            rules: vec!["pod-exec".into()],
            severities: vec!["high".into(), "critical".into()],
            time: TimeRange {
                from_micros: Some(5),
                to_micros: None,
            },
            ..AlertFilter::default()
        };
        let sql = f.to_sql();
        assert_eq!(sql.text, "rule IN (?) AND severity IN (?, ?) AND ts >= ?");
        assert_eq!(
            sql.params,
            [
                Param::Text("pod-exec".into()),
                Param::Text("high".into()),
                Param::Text("critical".into()),
                Param::Int(5)
            ]
        );
        assert_eq!(AlertFilter::default().to_sql().text, "1 = 1");
    }

    #[test]
    fn a_bound_reader_reads_its_clusters_alerts_only() {
        let mut f = AlertFilter::default();
        f.restrict_to(&ReadScope::Cluster("prod".into())).unwrap();
        assert_eq!(f.clusters, ["prod"]);
        f.clusters = vec!["dev".into()];
        assert!(f.restrict_to(&ReadScope::Cluster("prod".into())).is_err());
    }
}
