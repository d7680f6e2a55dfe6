//! Test support, kept out of the libraries it tests: only tests depend on this crate.
//!
//! - [`conformance`]: the behaviour every [`Store`](kubetrail_store::Store) backend must
//!   have, written once; [`conformance_tests!`] makes one `#[test]` of each check for a
//!   backend, so a failure names the check and the backend.
//! - [`clickhouse`]: a throwaway ClickHouse server started on free ports.

pub mod clickhouse;
pub mod conformance;

/// A store opened for one test, with what must outlive it (a temporary directory, a server).
pub struct Opened {
    /// The store.
    pub store: Box<dyn kubetrail_store::Store>,
    /// Dropped after the store.
    pub keep: Box<dyn std::any::Any>,
}

impl Opened {
    /// A store that needs nothing kept.
    pub fn alone(store: impl kubetrail_store::Store + 'static) -> Opened {
        Opened {
            store: Box::new(store),
            keep: Box::new(()),
        }
    }
}

/// One `#[test]` per conformance check, each over a fresh store from `$open` (a function
/// returning `Option<Opened>`; `None` skips, as when no ClickHouse server is installed).
/// Put it in a module named after the backend: `duckdb::append_is_idempotent`.
#[macro_export]
macro_rules! conformance_tests {
    ($open:path) => {
        $crate::conformance_tests!(@checks $open;
            append_is_idempotent,
            append_all_counts_each_batch,
            bulk_load_counts_as_appends_do,
            identity_is_cluster_audit_id_and_stage,
            conflicting_events_are_all_kept,
            pages_are_newest_first_and_complete,
            heads_are_pages_without_the_text,
            filters_select_exactly,
            aggregations_count,
            requests_are_counted_once,
            one_pass_aggregations_agree_with_count_by,
            retention_by_age_and_size,
            schema_is_versioned,
            invalid_filters_are_rejected,
            ready_when_it_gives_back_events,
            alerts_are_stored_once_filtered_and_counted,
            chain_links_every_commit_and_verifies,
        );
    };
    (@checks $open:path; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let Some(opened) = $open() else {
                    return;
                };
                $crate::conformance::$check(opened.store.as_ref());
                drop(opened);
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    /// A check written but not listed would never run: every `pub fn NAME(store: &dyn Store)`
    /// of the suite is in [`conformance::ALL`](crate::conformance::ALL) and in the macro.
    #[test]
    fn every_check_is_listed_and_run() {
        let sources = [
            include_str!("conformance/mod.rs"),
            include_str!("conformance/aggregation.rs"),
            include_str!("conformance/alerts.rs"),
            include_str!("conformance/chain.rs"),
            include_str!("conformance/filters.rs"),
        ];
        let mut checks: Vec<&str> = sources
            .iter()
            .flat_map(|s| s.lines())
            .filter_map(|l| l.strip_prefix("pub fn "))
            .filter(|l| l.contains("(store: &dyn Store)"))
            .filter_map(|l| l.split('(').next())
            .collect();
        checks.sort_unstable();
        let mut listed = crate::conformance::ALL.to_vec();
        listed.sort_unstable();
        assert_eq!(checks, listed);
        let lib = include_str!("lib.rs");
        let macro_body = &lib[lib.find("macro_rules!").unwrap()..lib.find("#[cfg(test)]").unwrap()];
        for check in checks {
            assert!(
                macro_body.contains(&format!("{check},")),
                "{check} is not in conformance_tests!"
            );
        }
    }
}
