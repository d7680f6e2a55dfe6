//! The tables behind the overview: writes per resource kind, activity per user, and the
//! failures report.

use std::collections::HashMap;

use kubetrail_store::{Aggregation, Field, Filter, GroupCount, Result, Store};
use serde::{Deserialize, Serialize};

use crate::{Drill, TOP, base, writes};

/// The largest groups of what `filter` selects; none when it can select nothing.
fn top(
    store: &dyn Store,
    filter: Option<&Filter>,
    fields: &[Field],
    limit: Option<usize>,
) -> Result<Vec<GroupCount>> {
    let Some(filter) = filter else {
        return Ok(Vec::new());
    };
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
    let groups = top(
        store,
        writes(scope)?.as_ref(),
        &[Field::Resource, Field::Verb],
        None,
    )?;
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

/// One identity's activity, counted by the identity that acted: a request `system:admin` made
/// as `bob` is bob's, with `system:admin` among `impersonatedBy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserActivity {
    /// The acting identity: the impersonated user, or the authenticated one (`""`: no user).
    pub user: String,
    /// Requests.
    pub requests: u64,
    /// Writes.
    pub writes: u64,
    /// Failed requests.
    pub failed: u64,
    /// Forbidden requests.
    pub forbidden: u64,
    /// The authenticated identities that made some of these requests as this user, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub impersonated_by: Vec<String>,
}

/// The acting identity of a `[User, ImpersonatedUser]` group, and the impersonator if any.
fn acting(keys: &[String]) -> (&str, Option<&str>) {
    match keys {
        [user, imp] if !imp.is_empty() => (imp, Some(user)),
        [user, ..] => (user, None),
        [] => ("", None),
    }
}

/// Per-identity activity, most active first (ties by name).
pub fn users(store: &dyn Store, scope: &Filter) -> Result<Vec<UserActivity>> {
    let fields = [Field::User, Field::ImpersonatedUser];
    let by = |f: Option<Filter>| -> Result<HashMap<String, u64>> {
        let mut out: HashMap<String, u64> = HashMap::new();
        for g in top(store, f.as_ref(), &fields, None)? {
            *out.entry(acting(&g.keys).0.to_string()).or_default() += g.count;
        }
        Ok(out)
    };
    let writes = by(writes(scope)?)?;
    let failed = by(Drill::Failed.within(scope)?)?;
    let forbidden = by(Drill::Forbidden.within(scope)?)?;
    let mut rows: Vec<UserActivity> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for g in top(store, Some(&base(scope)), &fields, None)? {
        let (user, via) = acting(&g.keys);
        let i = *index.entry(user.to_string()).or_insert_with(|| {
            rows.push(UserActivity {
                user: user.to_string(),
                requests: 0,
                writes: writes.get(user).copied().unwrap_or(0),
                failed: failed.get(user).copied().unwrap_or(0),
                forbidden: forbidden.get(user).copied().unwrap_or(0),
                impersonated_by: Vec::new(),
            });
            rows.len() - 1
        });
        let row = &mut rows[i];
        row.requests += g.count;
        if let Some(via) = via
            && !row.impersonated_by.iter().any(|v| v == via)
        {
            row.impersonated_by.push(via.to_string());
        }
    }
    for row in &mut rows {
        row.impersonated_by.sort();
    }
    rows.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then_with(|| a.user.cmp(&b.user))
    });
    Ok(rows)
}

/// One scope's totals: what the user page opens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCounts {
    /// Requests.
    pub requests: u64,
    /// Writes.
    pub writes: u64,
    /// Failed requests.
    pub failed: u64,
    /// Forbidden requests.
    pub forbidden: u64,
}

/// The totals of `scope` (one identity's, on the user page).
pub fn user_counts(store: &dyn Store, scope: &Filter) -> Result<UserCounts> {
    let count = |f: Option<Filter>| -> Result<u64> {
        Ok(top(store, f.as_ref(), &[], None)?
            .iter()
            .map(|g| g.count)
            .sum())
    };
    Ok(UserCounts {
        requests: count(Some(base(scope)))?,
        writes: count(writes(scope)?)?,
        failed: count(Drill::Failed.within(scope)?)?,
        forbidden: count(Drill::Forbidden.within(scope)?)?,
    })
}

/// Failed and forbidden requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
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
    let f = Drill::Failed.within(scope)?;
    let f = f.as_ref();
    Ok(Failures {
        by_code: top(store, f, &[Field::Code], None)?,
        by_user: top(store, f, &[Field::User, Field::Code], Some(TOP * 2))?,
        by_resource: top(store, f, &[Field::Resource, Field::Code], Some(TOP * 2))?,
        forbidden: top(
            store,
            Drill::Forbidden.within(scope)?.as_ref(),
            &[Field::User, Field::Resource],
            Some(TOP * 2),
        )?,
    })
}
