//! The questions an audit centre answers, as typed queries over any [`Store`]: what counts as
//! a failed request, an exec, a secret read or an RBAC change, what an object's history is and
//! which reports there are is decided here, once, for the command line, the HTTP API and the
//! web UI alike. Front ends call one function per question and render its answer.
//!
//! - [`ReportKind`]: the named reports (overview, resources, users, failures) and [`run`].
//! - [`Drill`]: the overview's drill-downs, each one filter that both counts and lists.
//! - [`history_filter`]: one object's writes, read with [`requests`]; [`history_steps`]: what
//!   each of them changed; [`changes`]: the newest writes of a scope with theirs.
//! - [`resolve_filter`]: kubectl's names for resources (`deploy`, `po`, `Deployment`) as the
//!   events write them, an error naming the closest for a name nobody knows, and source
//!   networks (`10.0.0.0/8`) as the stored addresses in them.
//! - [`user_counts`]: one identity's totals.
//! - [`group_filter`]: the events one row of a count holds.
//! - [`Networks`] and [`from_outside`]: requests from outside the internal networks.
//!
//! Reports count requests, not stage events: they select one event per request
//! ([`StageSelection::Final`]).

mod changes;
mod commands;
mod drill;
mod fleet;
mod groups;
mod history;
mod kind;
mod names;
mod networks;
mod overview;
mod rbac;
mod tables;

use kubetrail_store::{Filter, Result, StageSelection};

pub use changes::{
    CHANGES_CONTEXT, DIFF_WINDOW, EventKey, changes, event_key, hidden_by_default, history_steps,
    history_until, steps_by_event, steps_of,
};
pub use commands::{EXECUTED_SHOWN, ExecutedCommand, executed};
pub use drill::{ANONYMOUS_USERS, Drill, INTERACTIVE_SUBRESOURCES, narrow};
pub use fleet::{ClusterActivity, SILENT_AFTER_SECONDS, fleet};
pub use groups::{group_filter, resource_of_key};
pub use history::{history_filter, read_requests, requests};
pub use kind::{Report, ReportKind, run};
pub use names::{
    MAX_NETWORK_ADDRESSES, RESOURCE_CACHE_TTL, ResourceCache, count_in, never_seen, resolve,
    resolve_cached, resolve_filter, resolve_in, resources_of_keys, stored_resources_question,
};
pub use networks::{DEFAULT_INTERNAL, Networks, from_outside};
pub use overview::{Overview, Section, overview};
pub use rbac::{Trailed, rbac_from_trail, rbac_requests, request_of};
pub use tables::{
    Failures, ResourceWrites, UserActivity, UserCounts, failures, resources, user_counts, users,
};

/// Verbs that change objects.
pub const WRITE_VERBS: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// How many entries top-N lists hold.
pub const TOP: usize = 10;

/// The scope every report applies on top of its own conditions (time, cluster, namespace,
/// user...): one event per request.
pub fn base(scope: &Filter) -> Filter {
    Filter {
        stages: StageSelection::Final,
        ..scope.clone()
    }
}

/// The writes of `scope` (`None` when it can hold none: a scope of reads only).
pub fn writes(scope: &Filter) -> Result<Option<Filter>> {
    narrow(
        scope,
        &Filter {
            verbs: WRITE_VERBS.iter().map(|v| v.to_string()).collect(),
            ..Filter::default()
        },
    )
}

/// The one of `all` named `given`, or an error naming every name (and the closest).
pub(crate) fn by_name<T: Copy, const N: usize>(
    what: &str,
    given: &str,
    all: [T; N],
    name: fn(T) -> &'static str,
) -> std::result::Result<T, String> {
    all.into_iter()
        .find(|t| name(*t) == given)
        .ok_or_else(|| did_you_mean(what, given, all.map(name)))
}

/// The one of `names` closest to `given`, when one is close enough to be a typo of it: the
/// hint every "unknown name" error gives.
pub fn closest<'a>(given: &str, names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    names
        .into_iter()
        .map(|n| (strsim::levenshtein(given, n), n))
        .filter(|(d, n)| *d <= 2.max(n.len() / 3))
        .min()
        .map(|(_, n)| n)
}

/// "unknown `what` `given`: expected one of …", with the closest name when one is close.
pub(crate) fn did_you_mean<const N: usize>(what: &str, given: &str, names: [&str; N]) -> String {
    let hint = closest(given, names).map_or(String::new(), |n| format!("; did you mean {n:?}?"));
    format!(
        "unknown {what} {given:?}: expected one of {}{hint}",
        names.join(", ")
    )
}
