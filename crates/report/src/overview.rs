//! The overview: totals by verb, user, resource and namespace, and one section per
//! [`Drill`] (its total and largest groups), in two scans of the store.

use kubetrail_store::{
    Aggregation, AggregationResult, Field, Filter, GroupCount, Result, SectionCount, SectionSpec,
    Store, TimeRange,
};
use serde::{Deserialize, Serialize};

use crate::{Drill, TOP, base};

/// A count with its largest groups.
pub type Section = SectionCount;

/// The overview: totals and the sections an audit centre opens with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    /// Requests in scope.
    pub requests: u64,
    /// Requests per verb.
    pub by_verb: Vec<GroupCount>,
    /// Most active users.
    pub top_users: Vec<GroupCount>,
    /// Most requested resources.
    pub top_resources: Vec<GroupCount>,
    /// Busiest namespaces (`""` is cluster-scoped).
    pub top_namespaces: Vec<GroupCount>,
    /// Failed requests, by user and code.
    pub failed: Section,
    /// Forbidden requests, by user.
    pub forbidden: Section,
    /// Deletions, by user and resource.
    pub deletions: Section,
    /// exec / attach / port-forward, by user.
    pub exec_attach: Section,
    /// Secret access, by user and verb.
    pub secret_access: Section,
    /// RBAC changes, by user and resource.
    pub rbac_changes: Section,
    /// Anonymous requests, by resource.
    pub anonymous: Section,
    /// The latest exec, attach and port-forward requests, with their commands.
    pub executed_commands: Vec<crate::ExecutedCommand>,
}

/// Builds the overview: one scan for the totals by verb, user, resource and namespace, and one
/// selective scan per section (failed, forbidden, ...) for its total and top groups.
pub fn overview(store: &dyn Store, scope: &Filter) -> Result<Overview> {
    let all = base(scope);
    let fields = vec![Field::Verb, Field::User, Field::Resource, Field::Namespace];
    let (requests, mut each) = match store.aggregate(&all, &Aggregation::CountEach { fields })? {
        AggregationResult::Each { total, groups } => (total, groups),
        other => return Err(unexpected(&other)),
    };
    for g in each.iter_mut().skip(1) {
        g.truncate(TOP);
    }
    let mut each = each.into_iter();
    let mut next = || each.next().unwrap_or_default();
    let (by_verb, top_users, top_resources, top_namespaces) = (next(), next(), next(), next());

    // Each section is the scope narrowed by the drill-down's conditions: the store ANDs
    // them with `all` in one scan, which is what [`Drill::within`] writes as one filter.
    let specs = Drill::ALL
        .iter()
        .map(|d| SectionSpec {
            filter: Filter {
                time: TimeRange::default(),
                ..d.conditions()
            },
            fields: d.breakdown().to_vec(),
            limit: TOP,
        })
        .collect();
    let sections = match store.aggregate(&all, &Aggregation::Sections(specs))? {
        AggregationResult::Sections(s) => s,
        other => return Err(unexpected(&other)),
    };
    let mut sections = sections.into_iter().map(|s| Section {
        total: s.total,
        top: s.top,
    });
    let mut next = || {
        sections.next().unwrap_or(Section {
            total: 0,
            top: Vec::new(),
        })
    };
    Ok(Overview {
        requests,
        by_verb,
        top_users,
        top_resources,
        top_namespaces,
        failed: next(),
        forbidden: next(),
        deletions: next(),
        exec_attach: next(),
        secret_access: next(),
        rbac_changes: next(),
        anonymous: next(),
        executed_commands: crate::executed(store, scope, crate::EXECUTED_SHOWN)?
            .iter()
            .map(|(r, s)| crate::ExecutedCommand::of(r, s))
            .collect(),
    })
}

fn unexpected(answer: &AggregationResult) -> kubetrail_store::Error {
    kubetrail_store::Error::Invalid(format!("the store answered an aggregation with {answer:?}"))
}

impl Overview {
    /// The section of a drill-down.
    pub fn section(&self, drill: Drill) -> &Section {
        match drill {
            Drill::Failed => &self.failed,
            Drill::Forbidden => &self.forbidden,
            Drill::Deletions => &self.deletions,
            Drill::ExecAttach => &self.exec_attach,
            Drill::SecretAccess => &self.secret_access,
            Drill::RbacChanges => &self.rbac_changes,
            Drill::Anonymous => &self.anonymous,
        }
    }
}
