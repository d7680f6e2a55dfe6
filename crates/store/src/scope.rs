//! What a reader may see. A token or session bound to one cluster reads that cluster only,
//! whatever its question asks: [`Filter::restrict_to`] is the one place that rule is applied,
//! for the HTTP API and the web UI alike.

use crate::Filter;

/// The clusters a reader may see.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ReadScope {
    /// Every cluster.
    #[default]
    All,
    /// One cluster.
    Cluster(String),
}

impl ReadScope {
    /// A reader bound to `cluster` when it is given, otherwise one that sees every cluster.
    pub fn of(cluster: Option<&str>) -> ReadScope {
        cluster.map_or(ReadScope::All, |c| ReadScope::Cluster(c.to_string()))
    }
}

/// A question about a cluster the reader may not see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("may only read cluster {bound:?}, not {asked:?}")]
pub struct OutOfScope {
    /// The reader's cluster.
    pub bound: String,
    /// The other cluster the question named.
    pub asked: String,
}

impl Filter {
    /// Narrows the filter to what `scope` may read: a bound reader's filter names its cluster
    /// and no other. Naming another cluster is refused rather than answered with nothing, so a
    /// reader learns why the answer is empty.
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_reader_reads_its_cluster_only() {
        let prod = ReadScope::Cluster("prod".into());
        let mut f = Filter::default();
        f.restrict_to(&prod).unwrap();
        assert_eq!(f.clusters, ["prod"]);
        // Naming its own cluster again is fine; naming another is refused, not emptied.
        f.clusters = vec!["prod".into(), "prod".into()];
        f.restrict_to(&prod).unwrap();
        assert_eq!(f.clusters, ["prod"]);
        f.clusters = vec!["prod".into(), "dev".into()];
        let e = f.restrict_to(&prod).unwrap_err();
        assert_eq!(e.asked, "dev");
        assert_eq!(e.to_string(), "may only read cluster \"prod\", not \"dev\"");
        let mut open = Filter {
            clusters: vec!["dev".into()],
            ..Filter::default()
        };
        open.restrict_to(&ReadScope::All).unwrap();
        assert_eq!(open.clusters, ["dev"]);
    }
}
