//! RBAC from the audit trail.
//!
//! - [`suggest`]: the least-privilege Roles, ClusterRole and bindings that allow exactly what a
//!   subject was observed doing — audit2rbac's algorithm (which requests count, the expansion
//!   search, verb expansions, compaction, names, document order), made deterministic and with
//!   its defects fixed (see `docs/rbac.md`), and able to subtract a cluster's current RBAC
//!   (`--delta`).
//! - [`unused`]: what a subject's bindings grant, broken into atoms, each marked used or not by
//!   the observed requests, and the denied requests nothing grants.
//! - [`Authorizer`]: Kubernetes' RBAC evaluation (`RuleAllows`, subjects, bindings,
//!   aggregated ClusterRoles) over a snapshot ([`RbacObjects`]).
//!
//! Pure: no I/O, no store. Requests come in as [`Request`]s, built from events by
//! [`Request::from_event`].

mod authorize;
mod compact;
mod objects;
mod render;
mod request;
mod suggest;
mod trail;
mod unused;

pub use authorize::{Authorizer, rule_allows, rule_allows_nonresource, rule_allows_resource};
pub use compact::{breakdown, compact_rules, compact_string};
pub use objects::{
    AggregationRule, Binding, GROUP, LabelSelector, LabelSelectorRequirement, Meta, PolicyRule,
    RbacObjects, Role, RoleRef, Skipped, Subject,
};
pub use render::{to_json_list, to_yaml, yaml_documents};
pub use request::{Request, UserInfo, is_allowed, is_denied};
pub use suggest::{
    Generated, GeneratedBinding, GeneratedRole, Naming, Options, SubjectSelector, default_existing,
    suggest,
};
pub use trail::{RBAC_RESOURCES, Rebuilt, from_trail};
pub use unused::{Atom, AtomUse, Denied, SubjectReport, UnusedOptions, rank, subjects_of, unused};

/// Why RBAC input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An RBAC snapshot file that does not read.
    #[error("{file}: {message}")]
    Snapshot {
        /// The file.
        file: String,
        /// What is wrong, and where in the file.
        message: String,
    },
    /// A subject that is not a valid user, group or service account.
    #[error("{0}")]
    Subject(String),
    /// No request matched the subject.
    #[error("no audit events matched {0}")]
    NoEvents(String),
}

/// The result of this crate's fallible functions.
pub type Result<T> = std::result::Result<T, Error>;
