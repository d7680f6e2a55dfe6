//! The reports an audit centre shows, as typed queries over any [`Store`]: what counts as a
//! failed request, an exec, a secret read or an RBAC change is decided here, once, for the
//! command line, the HTTP API and the web UI alike.
//!
//! Reports count requests, not stage events: they select one event per request
//! ([`StageSelection::Final`]).

use kubetrail_store::{
    Aggregation, AggregationResult, CodeFilter, Field, Filter, GroupCount, ResourceSelector,
    Result, SectionCount, SectionSpec, StageSelection, Store, TimeRange,
};
use serde::{Deserialize, Serialize};

/// Verbs that change objects.
pub const WRITE_VERBS: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// How many entries top-N lists hold.
pub const TOP: usize = 10;

/// The scope every report applies on top of its own conditions (time, cluster, namespace,
/// user...).
pub fn base(scope: &Filter) -> Filter {
    Filter {
        stages: StageSelection::Final,
        ..scope.clone()
    }
}

/// Requests that failed (code ≥ 400).
pub fn failed(scope: &Filter) -> Filter {
    Filter {
        codes: vec![CodeFilter::Failed],
        ..base(scope)
    }
}

/// Requests the authorizer refused (403).
pub fn forbidden(scope: &Filter) -> Filter {
    Filter {
        codes: vec![CodeFilter::Exact(403)],
        ..base(scope)
    }
}

/// Interactive access to pods: exec, attach, port-forward.
pub fn exec_attach(scope: &Filter) -> Filter {
    Filter {
        resources: ["exec", "attach", "portforward"]
            .iter()
            .map(|s| ResourceSelector::core("pods", Some(s)))
            .collect(),
        ..base(scope)
    }
}

/// Any request on secrets.
pub fn secret_access(scope: &Filter) -> Filter {
    Filter {
        resources: vec![ResourceSelector::core("secrets", None)],
        ..base(scope)
    }
}

/// Writes to RBAC objects (roles, bindings, cluster roles, cluster role bindings).
pub fn rbac_changes(scope: &Filter) -> Filter {
    Filter {
        resources: vec![ResourceSelector::group("rbac.authorization.k8s.io")],
        verbs: WRITE_VERBS.iter().map(|v| v.to_string()).collect(),
        ..base(scope)
    }
}

/// Requests without an authenticated user, or as `system:anonymous`.
pub fn anonymous(scope: &Filter) -> Filter {
    Filter {
        users: vec!["system:anonymous".into(), String::new()],
        ..base(scope)
    }
}

/// Deletions.
pub fn deletions(scope: &Filter) -> Filter {
    Filter {
        verbs: vec!["delete".into(), "deletecollection".into()],
        ..base(scope)
    }
}

/// Writes.
pub fn writes(scope: &Filter) -> Filter {
    Filter {
        verbs: WRITE_VERBS.iter().map(|v| v.to_string()).collect(),
        ..base(scope)
    }
}

fn top(
    store: &dyn Store,
    filter: &Filter,
    fields: &[Field],
    limit: Option<usize>,
) -> Result<Vec<GroupCount>> {
    Ok(store
        .aggregate(
            filter,
            &Aggregation::CountBy {
                fields: fields.to_vec(),
                limit,
            },
        )?
        .groups()
        .to_vec())
}

/// A count with its largest groups.
pub type Section = SectionCount;

/// The overview: totals and the sections an audit centre opens with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

    // Each section is the scope narrowed further; `base` adds only the stage selection, which
    // `all` already has.
    let narrow = |f: Filter, fields: &[Field]| SectionSpec {
        filter: Filter {
            time: TimeRange::default(),
            ..f
        },
        fields: fields.to_vec(),
        limit: TOP,
    };
    let none = Filter::default();
    let specs = vec![
        narrow(failed(&none), &[Field::User, Field::Code]),
        narrow(forbidden(&none), &[Field::User]),
        narrow(deletions(&none), &[Field::User, Field::Resource]),
        narrow(exec_attach(&none), &[Field::User]),
        narrow(secret_access(&none), &[Field::User, Field::Verb]),
        narrow(rbac_changes(&none), &[Field::User, Field::Resource]),
        narrow(anonymous(&none), &[Field::Resource]),
    ];
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
    })
}

fn unexpected(answer: &AggregationResult) -> kubetrail_store::Error {
    kubetrail_store::Error::Invalid(format!("the store answered an aggregation with {answer:?}"))
}

/// Writes per resource kind, split by verb.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceWrites {
    /// `resource[.group][/subresource]`.
    pub resource: String,
    /// creates.
    pub create: u64,
    /// updates.
    pub update: u64,
    /// patches.
    pub patch: u64,
    /// deletes (including deletecollection).
    pub delete: u64,
    /// All writes.
    pub total: u64,
}

/// Operations on resources: create / update / patch / delete counts per resource kind.
pub fn resources(store: &dyn Store, scope: &Filter) -> Result<Vec<ResourceWrites>> {
    let groups = top(store, &writes(scope), &[Field::Resource, Field::Verb], None)?;
    let mut out: Vec<ResourceWrites> = Vec::new();
    for g in groups {
        let (resource, verb) = (&g.keys[0], g.keys[1].as_str());
        let entry = match out.iter_mut().position(|r| &r.resource == resource) {
            Some(i) => &mut out[i],
            None => {
                out.push(ResourceWrites {
                    resource: resource.clone(),
                    create: 0,
                    update: 0,
                    patch: 0,
                    delete: 0,
                    total: 0,
                });
                out.last_mut().expect("just pushed")
            }
        };
        match verb {
            "create" => entry.create += g.count,
            "update" => entry.update += g.count,
            "patch" => entry.patch += g.count,
            _ => entry.delete += g.count,
        }
        entry.total += g.count;
    }
    out.sort_by(|a, b| {
        b.total
            .cmp(&a.total)
            .then_with(|| a.resource.cmp(&b.resource))
    });
    Ok(out)
}

/// One user's activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserActivity {
    /// User name (`""`: no authenticated user).
    pub user: String,
    /// Requests.
    pub requests: u64,
    /// Writes.
    pub writes: u64,
    /// Failed requests.
    pub failed: u64,
    /// Forbidden requests.
    pub forbidden: u64,
}

/// Per-user activity, most active first.
pub fn users(store: &dyn Store, scope: &Filter) -> Result<Vec<UserActivity>> {
    let by = |f: &Filter| -> Result<std::collections::HashMap<String, u64>> {
        Ok(top(store, f, &[Field::User], None)?
            .into_iter()
            .map(|g| (g.keys[0].clone(), g.count))
            .collect())
    };
    let writes = by(&writes(scope))?;
    let failed = by(&failed(scope))?;
    let forbidden = by(&forbidden(scope))?;
    Ok(top(store, &base(scope), &[Field::User], None)?
        .into_iter()
        .map(|g| {
            let user = g.keys[0].clone();
            UserActivity {
                writes: writes.get(&user).copied().unwrap_or(0),
                failed: failed.get(&user).copied().unwrap_or(0),
                forbidden: forbidden.get(&user).copied().unwrap_or(0),
                requests: g.count,
                user,
            }
        })
        .collect())
}

/// Failed and forbidden requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failures {
    /// Failed requests (≥ 400) by code.
    pub by_code: Vec<GroupCount>,
    /// Failed requests by user and code.
    pub by_user: Vec<GroupCount>,
    /// Failed requests by resource and code.
    pub by_resource: Vec<GroupCount>,
    /// Forbidden requests by user and resource.
    pub forbidden: Vec<GroupCount>,
}

/// The failures report.
pub fn failures(store: &dyn Store, scope: &Filter) -> Result<Failures> {
    let f = failed(scope);
    Ok(Failures {
        by_code: top(store, &f, &[Field::Code], None)?,
        by_user: top(store, &f, &[Field::User, Field::Code], Some(TOP * 2))?,
        by_resource: top(store, &f, &[Field::Resource, Field::Code], Some(TOP * 2))?,
        forbidden: top(
            store,
            &forbidden(scope),
            &[Field::User, Field::Resource],
            Some(TOP * 2),
        )?,
    })
}
