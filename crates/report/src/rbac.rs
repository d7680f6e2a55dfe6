//! The trail as the RBAC authorizer saw it: stored requests as [`kubetrail_rbac::Request`]s,
//! for `rbac suggest`, `rbac unused`, their API and the user page; and the RBAC objects the
//! trail's writes leave.

use std::collections::BTreeSet;

use kubetrail_rbac::{Request, SubjectSelector, UserInfo};
use kubetrail_store::{Cursor, Filter, Page, Record, ResourceSelector};

/// The request one stored event records: from the store's columns, so that the event's JSON
/// is decoded only for an impersonated request (the impersonated user's groups are not a
/// column).
pub fn request_of(r: &Record) -> Request {
    if !r.impersonated_user.is_empty()
        && let Ok(event) = kubetrail_model::decode_event(r.raw.as_bytes())
    {
        return Request {
            complete: true,
            ..Request::from_event(&event)
        };
    }
    let mut request = Request {
        user: UserInfo {
            name: r.user.clone(),
            groups: r.groups.clone(),
        },
        verb: r.verb.clone(),
        audit_id: r.audit_id.clone(),
        time_micros: r.ts_micros,
        code: r.code,
        decision: (!r.decision.is_empty()).then(|| r.decision.clone()),
        // The store is read one event per request, the final one.
        complete: true,
        ..Request::default()
    };
    // A request with an objectRef names a resource; a non-resource request has none.
    if r.resource.is_empty() {
        let uri = r.request_uri.as_str();
        request.path = uri.split_once('?').map_or(uri, |(p, _)| p).to_string();
    } else {
        request.resource_request = true;
        request.api_group = r.api_group.clone();
        request.api_version = r.api_version.clone();
        request.resource = r.resource.clone();
        request.subresource = r.subresource.clone();
        request.namespace = r.namespace.clone();
        if !(r.verb == "create" && r.subresource.is_empty()) {
            request.name = r.name.clone();
        }
    }
    request
}

/// Records a page of an RBAC question holds: large pages, since each is dropped once its
/// records are turned into requests (a store answers a page with one query).
const RBAC_PAGE: usize = 50_000;

/// Requests read from the trail for an RBAC question.
#[derive(Debug, Clone, Default)]
pub struct Trailed {
    /// The subject's requests, oldest first.
    pub requests: Vec<Request>,
    /// The clusters they came from.
    pub clusters: BTreeSet<String>,
    /// Whether the read stopped at its limit (the newest requests are the ones read).
    pub capped: bool,
}

impl Trailed {
    /// An error when the requests span several clusters: RBAC is a cluster's, and one role
    /// made from two clusters' requests would grant each what the other needed.
    pub fn one_cluster(&self) -> Result<(), String> {
        if self.clusters.len() > 1 {
            let names: Vec<&str> = self.clusters.iter().map(String::as_str).collect();
            return Err(format!(
                "the requests come from {} clusters ({}): RBAC is per cluster, ask about one",
                names.len(),
                names.join(", ")
            ));
        }
        Ok(())
    }
}

/// The requests of `subject` (every request without one) that `filter` selects, one event per
/// request, oldest first, at most `limit`: `page` reads the store (or a server) a page at a time.
pub fn rbac_requests<E>(
    filter: &Filter,
    subject: Option<&SubjectSelector>,
    limit: usize,
    page: impl FnMut(&Filter, Option<&Cursor>, usize) -> Result<Page, E>,
) -> Result<Trailed, E> {
    let mut f = filter.clone();
    // The identity a request was authorized as: authenticated or impersonated. A group's
    // members are found after reading: the store keeps the authenticated user's groups, and an
    // impersonated request is authorized with the impersonated user's.
    if let Some(SubjectSelector::User(u)) = subject {
        f.identities = vec![u.clone()];
    }
    let mut out = Trailed::default();
    let read = crate::history::each_request(&f, limit, RBAC_PAGE, page, |r| {
        let request = request_of(&r);
        if subject.is_none_or(|s| s.matches(&request.user)) {
            if !out.clusters.contains(&r.cluster) {
                out.clusters.insert(r.cluster);
            }
            out.requests.push(request);
        }
    })?;
    out.capped = read >= limit;
    out.requests.reverse();
    Ok(out)
}

/// The RBAC objects the writes of roles and bindings before `to_micros` (all of them when
/// `None`) leave, in `clusters` (all when empty); an error (the inner one) when the writes
/// span several clusters or pass `limit`.
pub fn rbac_from_trail<E>(
    clusters: &[String],
    to_micros: Option<i64>,
    limit: usize,
    page: impl FnMut(&Filter, Option<&Cursor>, usize) -> Result<Page, E>,
) -> Result<Result<kubetrail_rbac::Rebuilt, String>, E> {
    let filter = Filter {
        time: kubetrail_store::TimeRange {
            from_micros: None,
            to_micros,
        },
        clusters: clusters.to_vec(),
        resources: vec![ResourceSelector {
            group: Some(kubetrail_rbac::GROUP.into()),
            resource: None,
            subresource: None,
        }],
        verbs: ["create", "update", "patch", "delete", "deletecollection"]
            .map(String::from)
            .to_vec(),
        ..Filter::default()
    };
    let records = crate::read_requests(&filter, limit.saturating_add(1), page)?;
    if records.len() > limit {
        return Ok(Err(format!(
            "more than {limit} RBAC writes in the trail: give a snapshot (--rbac FILE) instead"
        )));
    }
    let found: BTreeSet<&str> = records.iter().map(|r| r.cluster.as_str()).collect();
    if found.len() > 1 {
        let names: Vec<&str> = found.into_iter().collect();
        return Ok(Err(format!(
            "the trail's RBAC writes come from {} clusters ({}): RBAC is per cluster, ask about one",
            names.len(),
            names.join(", ")
        )));
    }
    let mut events = Vec::with_capacity(records.len());
    let mut undecodable = Vec::new();
    for r in &records {
        match kubetrail_model::decode_event(r.raw.as_bytes()) {
            Ok(e) => events.push(e),
            Err(_) => undecodable.push(r.audit_id.clone()),
        }
    }
    let mut rebuilt = kubetrail_rbac::from_trail(&events);
    rebuilt.unknown.extend(
        undecodable
            .into_iter()
            .map(|id| format!("the write of auditID {id} (its stored event does not decode)")),
    );
    Ok(Ok(rebuilt))
}
