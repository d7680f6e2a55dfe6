//! The named reports, as the HTTP API (`/api/v1/audit/reports/{name}`) and `kubetrail report`
//! name them, and [`run`], which answers one.

use std::fmt;
use std::str::FromStr;

use kubetrail_store::{Filter, Result, Store};
use serde::Serialize;

use crate::{Failures, Overview, ResourceWrites, UserActivity, by_name};

/// A named report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportKind {
    /// Totals, top users/resources/namespaces, failures, exec, secrets, RBAC, anonymous.
    Overview,
    /// Writes per resource kind (create/update/patch/delete).
    Resources,
    /// Activity per user.
    Users,
    /// Failed and forbidden requests.
    Failures,
}

impl ReportKind {
    /// Every report.
    pub const ALL: [ReportKind; 4] = [
        ReportKind::Overview,
        ReportKind::Resources,
        ReportKind::Users,
        ReportKind::Failures,
    ];

    /// The report's name in paths and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ReportKind::Overview => "overview",
            ReportKind::Resources => "resources",
            ReportKind::Users => "users",
            ReportKind::Failures => "failures",
        }
    }
}

impl fmt::Display for ReportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ReportKind {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        by_name("report", s, ReportKind::ALL, ReportKind::name)
    }
}

/// A report's answer. Serialized as the report itself (the API's bodies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Report {
    /// [`ReportKind::Overview`].
    Overview(Box<Overview>),
    /// [`ReportKind::Resources`].
    Resources(Vec<ResourceWrites>),
    /// [`ReportKind::Users`].
    Users(Vec<UserActivity>),
    /// [`ReportKind::Failures`].
    Failures(Failures),
}

/// Answers report `kind` for the requests of `scope`.
pub fn run(kind: ReportKind, store: &dyn Store, scope: &Filter) -> Result<Report> {
    Ok(match kind {
        ReportKind::Overview => Report::Overview(Box::new(crate::overview(store, scope)?)),
        ReportKind::Resources => Report::Resources(crate::resources(store, scope)?),
        ReportKind::Users => Report::Users(crate::users(store, scope)?),
        ReportKind::Failures => Report::Failures(crate::failures(store, scope)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_and_unknown_ones_are_named() {
        for k in ReportKind::ALL {
            assert_eq!(k.name().parse::<ReportKind>(), Ok(k));
        }
        let e = "failure".parse::<ReportKind>().unwrap_err();
        assert_eq!(
            e,
            "unknown report \"failure\": expected one of overview, resources, users, failures; did you mean \"failures\"?"
        );
        let e = "zzz".parse::<ReportKind>().unwrap_err();
        assert!(!e.contains("did you mean"), "{e}");
    }
}
