//! The fleet: per cluster, how many requests the scope holds and when its newest event is, so
//! a cluster gone silent shows as such beside the busy ones.

use kubetrail_store::{Aggregation, Field, Filter, Result, Store, TimeRange};
use serde::{Deserialize, Serialize};

use crate::base;

/// Seconds without an event after which a cluster counts as silent.
pub const SILENT_AFTER_SECONDS: i64 = 600;

/// One cluster's activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterActivity {
    /// The cluster.
    pub cluster: String,
    /// Requests in the scope's range.
    pub requests: u64,
    /// The newest stored event's time, in microseconds (any range); `None`: none stored.
    pub newest_micros: Option<i64>,
}

impl ClusterActivity {
    /// Whether nothing arrived from the cluster for [`SILENT_AFTER_SECONDS`] before `now`.
    pub fn silent(&self, now_micros: i64) -> bool {
        self.newest_micros
            .is_none_or(|t| now_micros - t > SILENT_AFTER_SECONDS * 1_000_000)
    }
}

/// The activity of each of `clusters` (and of every cluster with requests in `scope`), by
/// name.
pub fn fleet(
    store: &dyn Store,
    scope: &Filter,
    clusters: &[String],
) -> Result<Vec<ClusterActivity>> {
    let counts = store
        .aggregate(
            &base(scope),
            &Aggregation::CountBy {
                fields: vec![Field::Cluster],
                limit: None,
            },
        )?
        .groups()
        .to_vec();
    let mut names: Vec<String> = clusters.to_vec();
    for g in &counts {
        if let Some(c) = g.keys.first()
            && !names.contains(c)
        {
            names.push(c.clone());
        }
    }
    if !scope.clusters.is_empty() {
        names.retain(|c| scope.clusters.contains(c));
    }
    names.sort();
    names
        .into_iter()
        .map(|cluster| {
            let requests = counts
                .iter()
                .find(|g| g.keys.first() == Some(&cluster))
                .map_or(0, |g| g.count);
            // The newest event of any time: a silent cluster has none in a recent range.
            let newest = Filter {
                clusters: vec![cluster.clone()],
                time: TimeRange::default(),
                ..Filter::default()
            };
            let newest_micros = store
                .query(&newest, None, 1)?
                .records
                .first()
                .map(|r| r.ts_micros);
            Ok(ClusterActivity {
                cluster,
                requests,
                newest_micros,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubetrail_model::Stage;
    use kubetrail_testsuite::conformance::{T0, record};

    #[test]
    fn each_cluster_has_its_count_and_newest_event() {
        let store = kubetrail_store_duckdb::DuckDbStore::open_in_memory().unwrap();
        let s = 1_000_000;
        store
            .append(&[
                record("prod", "a", Some(Stage::ResponseComplete), T0),
                record("prod", "b", Some(Stage::ResponseComplete), T0 + 5 * s),
                record("dev", "c", Some(Stage::ResponseComplete), T0 - 3600 * s),
            ])
            .unwrap();
        let scope = Filter {
            time: TimeRange {
                from_micros: Some(T0 - 60 * s),
                to_micros: Some(T0 + 60 * s),
            },
            ..Filter::default()
        };
        let known = vec!["dev".to_string(), "staging".to_string()];
        let f = fleet(&store, &scope, &known).unwrap();
        let row = |c: &str| f.iter().find(|a| a.cluster == c).unwrap().clone();
        assert_eq!(f.len(), 3);
        assert_eq!(
            (row("prod").requests, row("prod").newest_micros),
            (2, Some(T0 + 5 * s))
        );
        // dev sent nothing in the range; its newest event is older.
        assert_eq!(
            (row("dev").requests, row("dev").newest_micros),
            (0, Some(T0 - 3600 * s))
        );
        assert_eq!(row("staging").newest_micros, None);
        assert!(row("dev").silent(T0) && !row("prod").silent(T0 + 60 * s));
        let only = fleet(
            &store,
            &Filter {
                clusters: vec!["prod".into()],
                ..scope
            },
            &known,
        )
        .unwrap();
        assert_eq!(only.len(), 1);
    }
}
