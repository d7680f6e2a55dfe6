//! The trail as the RBAC authorizer saw it: stored requests as [`kubetrail_rbac::Request`]s,
//! for `rbac suggest`, `rbac unused`, their API and the user page; and the RBAC objects the
//! trail's writes leave.

use kubetrail_rbac::{Request, SubjectSelector, UserInfo};
use kubetrail_store::{Cursor, Filter, Page, Record, ResourceSelector};

/// The request one stored event records: from the store's columns, so that the event's JSON
/// is decoded only for an impersonated request (the impersonated user's groups are not a
/// column).
pub fn request_of(r: &Record) -> Request {
    if !r.impersonated_user.is_empty()
        && let Ok(event) = kubetrail_model::decode_event(r.raw.as_bytes())
    {
        return Request::from_event(&event);
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

/// The requests of `subject` (every request without one) that `filter` selects, one event per
/// request, oldest first, at most `limit`: `page` reads the store (or a server) a page at a time.
pub fn rbac_requests<E>(
    filter: &Filter,
    subject: Option<&SubjectSelector>,
    limit: usize,
    page: impl FnMut(&Filter, Option<&Cursor>, usize) -> Result<Page, E>,
) -> Result<Vec<Request>, E> {
    let mut f = filter.clone();
    match subject {
        // The identity a request was authorized as: authenticated or impersonated.
        Some(SubjectSelector::User(u)) => f.identities = vec![u.clone()],
        Some(SubjectSelector::Group(g)) => f.groups = vec![g.clone()],
        None => {}
    }
    let records = crate::read_requests(&f, limit, page)?;
    Ok(records
        .iter()
        .map(request_of)
        .filter(|r| subject.is_none_or(|s| s.matches(&r.user)))
        .collect())
}

/// The RBAC objects the writes of roles and bindings before `to_micros` (all of them when
/// `None`) leave, in `clusters` (all when empty).
pub fn rbac_from_trail<E>(
    clusters: &[String],
    to_micros: Option<i64>,
    limit: usize,
    page: impl FnMut(&Filter, Option<&Cursor>, usize) -> Result<Page, E>,
) -> Result<kubetrail_rbac::Rebuilt, E> {
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
    let events: Vec<kubetrail_model::Event> = crate::read_requests(&filter, limit, page)?
        .iter()
        .filter_map(|r| kubetrail_model::decode_event(r.raw.as_bytes()).ok())
        .collect();
    Ok(kubetrail_rbac::from_trail(&events))
}
