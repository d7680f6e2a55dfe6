//! RBAC from the trail over HTTP: `GET /api/v1/rbac/suggest` (the least-privilege objects a
//! subject's requests need) and `GET /api/v1/rbac/unused` (granted versus used), over the
//! cluster's RBAC as `serve --rbac FILE` reads it (again on SIGHUP) or as the store's RBAC
//! writes rebuild it (`serve --rbac-from-trail`).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use axum::extract::{Extension, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use kubetrail_api::params::{filter_from_pairs, parse_query};
use kubetrail_rbac::{Authorizer, Naming, Options, RbacObjects, Request, SubjectSelector};
use kubetrail_store::text::format_micros;
use kubetrail_store::{Filter, Store};

use crate::auth::Principal;
use crate::query::blocking;
use crate::{ApiError, AppState};

/// The most requests one answer reads; a wider question is refused, naming the limit.
pub const MAX_REQUESTS: usize = 200_000;

/// Where the cluster's RBAC comes from.
pub struct RbacSource {
    files: Vec<PathBuf>,
    /// The cluster the files describe (`serve --rbac-cluster`); `None`: unnamed, which only
    /// readers bound to no cluster may see.
    cluster: Option<String>,
    loaded: RwLock<Option<Arc<RbacObjects>>>,
    /// One RBAC question at a time: each reads up to [`MAX_REQUESTS`] stored events.
    busy: std::sync::Mutex<()>,
}

impl RbacSource {
    /// The snapshot in `files` of `cluster`, read now (an error names the file and the
    /// document).
    pub fn files(files: Vec<PathBuf>, cluster: Option<String>) -> Result<RbacSource, String> {
        let source = RbacSource {
            files,
            cluster,
            loaded: RwLock::new(None),
            busy: std::sync::Mutex::new(()),
        };
        source.reload()?;
        Ok(source)
    }

    /// RBAC rebuilt from the store's RBAC writes (of the cluster asked about) at every
    /// question.
    pub fn from_trail() -> RbacSource {
        RbacSource {
            files: Vec::new(),
            cluster: None,
            loaded: RwLock::new(None),
            busy: std::sync::Mutex::new(()),
        }
    }

    /// Whether a reader bound to `bound` (`None`: to no cluster) may see this RBAC, and the
    /// clusters its questions are then about. A snapshot file is one cluster's: a bound reader
    /// sees it only when it is of that cluster, and its questions are about that cluster.
    pub(crate) fn scope(
        &self,
        bound: Option<&str>,
        asked: &[String],
    ) -> Result<Vec<String>, ApiError> {
        if self.files.is_empty() {
            return Ok(asked.to_vec());
        }
        match (&self.cluster, bound) {
            (Some(c), Some(b)) if c != b => Err(ApiError::forbidden(format!(
                "the server's RBAC snapshot is of cluster {c}, not of {b}"
            ))),
            (None, Some(b)) => Err(ApiError::forbidden(format!(
                "the server's RBAC snapshot names no cluster (serve --rbac-cluster), so a reader bound to {b} may not see it"
            ))),
            (Some(c), _) if !asked.is_empty() && !asked.contains(c) => {
                Err(ApiError::bad_request(format!(
                    "parameter cluster: the server's RBAC snapshot is of cluster {c}: ask about cluster={c}"
                )))
            }
            (Some(c), _) => Ok(vec![c.clone()]),
            (None, None) => Ok(asked.to_vec()),
        }
    }

    /// Reads the files again; on an error the snapshot in use stays. Answers how many objects
    /// were read.
    pub fn reload(&self) -> Result<usize, String> {
        if self.files.is_empty() {
            return Ok(0);
        }
        let mut objects = RbacObjects::default();
        for f in &self.files {
            let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
            objects
                .read(&f.display().to_string(), &text)
                .map_err(|e| e.to_string())?;
        }
        let n = objects.len();
        *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(objects));
        Ok(n)
    }

    /// `files` or `trail`.
    fn kind(&self) -> &'static str {
        if self.files.is_empty() {
            "trail"
        } else {
            "files"
        }
    }

    /// The RBAC now: the files' snapshot, or the objects the store's writes (of `scope`'s
    /// clusters) leave.
    pub(crate) fn current(
        &self,
        store: &dyn Store,
        scope: &Filter,
    ) -> kubetrail_store::Result<Result<Arc<RbacObjects>, String>> {
        if let Some(objects) = self
            .loaded
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Ok(Ok(objects));
        }
        let rebuilt =
            kubetrail_report::rbac_from_trail(&scope.clusters, None, MAX_REQUESTS, |f, c, n| {
                store.query(f, c, n)
            })?;
        Ok(rebuilt.map(|r| Arc::new(r.objects)))
    }
}

/// The parameters of both endpoints beside the filter's time and cluster.
const OWN: [&str; 9] = [
    "user",
    "serviceaccount",
    "group",
    "namespace",
    "delta",
    "format",
    "expandMultiNamespace",
    "expandMultiName",
    "auditIds",
];

/// The filter keys both endpoints take.
const FILTER: [&str; 4] = ["since", "from", "to", "cluster"];

struct Question {
    subject: Option<SubjectSelector>,
    own: Vec<(String, String)>,
    filter: Filter,
}

fn question(
    principal: &Principal,
    query: Option<&str>,
    default_since: Option<&str>,
) -> Result<Question, ApiError> {
    let pairs = parse_query(query.unwrap_or(""));
    let (mut own, mut rest) = (Vec::new(), Vec::new());
    for (k, v) in pairs {
        if OWN.contains(&k.as_str()) {
            own.push((k, v));
        } else if FILTER.contains(&k.as_str()) {
            rest.push((k, v));
        } else {
            return Err(ApiError::bad_request(format!(
                "parameter {k}: not a parameter of this endpoint (it takes {} and {})",
                OWN.join(", "),
                FILTER.join(", ")
            )));
        }
    }
    let timed = rest
        .iter()
        .any(|(k, _)| matches!(k.as_str(), "since" | "from" | "to"));
    if let (false, Some(since)) = (timed, default_since) {
        rest.push(("since".into(), since.into()));
    }
    let now = chrono::Utc::now().timestamp_micros();
    let (mut filter, _) = filter_from_pairs(&rest, &[], now).map_err(ApiError::bad_request)?;
    principal.scope_read(&mut filter)?;
    let one = |key: &str| crate::query::one(&own, key).map(|v| v.map(str::to_string));
    let subject = match (one("user")?, one("serviceaccount")?, one("group")?) {
        (Some(u), None, None) if !u.is_empty() => Some(SubjectSelector::User(u)),
        (None, Some(sa), None) => Some(
            SubjectSelector::service_account(&sa)
                .map_err(|e| ApiError::bad_request(format!("parameter serviceaccount: {e}")))?,
        ),
        (None, None, Some(g)) if !g.is_empty() => Some(SubjectSelector::Group(g)),
        (None, None, None) => None,
        _ => {
            return Err(ApiError::bad_request(
                "give one of user, serviceaccount, group (a non-empty name)",
            ));
        }
    };
    Ok(Question {
        subject,
        own,
        filter,
    })
}

fn flag(own: &[(String, String)], key: &str, default: bool) -> Result<bool, ApiError> {
    match crate::query::one(own, key)? {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(v) => Err(ApiError::bad_request(format!(
            "parameter {key}: expected true or false, found {v:?}"
        ))),
    }
}

/// The subject's requests in `filter`'s range (every request without a subject), at most
/// [`MAX_REQUESTS`].
pub(crate) fn requests_of(
    store: &dyn Store,
    filter: &Filter,
    subject: Option<&SubjectSelector>,
) -> kubetrail_store::Result<Result<Vec<Request>, String>> {
    let trailed = kubetrail_report::rbac_requests(filter, subject, MAX_REQUESTS + 1, |f, c, n| {
        store.query_heads(f, c, n)
    })?;
    if trailed.requests.len() > MAX_REQUESTS || trailed.capped {
        return Ok(Err(format!(
            "more than {MAX_REQUESTS} requests in range: ask about a shorter time or one subject"
        )));
    }
    if let Err(e) = trailed.one_cluster() {
        return Ok(Err(format!("parameter cluster: {e}")));
    }
    Ok(Ok(trailed.requests))
}

fn no_source() -> ApiError {
    ApiError {
        status: StatusCode::CONFLICT,
        reason: "the server knows no RBAC: start serve with --rbac FILE (kubectl get clusterroles,clusterrolebindings,roles,rolebindings -A -o yaml) or --rbac-from-trail".into(),
    }
}

/// `GET /api/v1/rbac/suggest?user=U|serviceaccount=NS:NAME|group=G`: the Roles, ClusterRole
/// and bindings that allow what the subject did in range, as one `v1` `List` (or YAML with
/// `format=yaml`); `delta=true` leaves out what the server's RBAC already grants.
pub(crate) async fn suggest(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let q = question(&principal, query.as_deref(), None)?;
    let Some(subject) = q.subject else {
        return Err(ApiError::bad_request(
            "give one of user, serviceaccount, group",
        ));
    };
    let delta = flag(&q.own, "delta", false)?;
    let yaml = match crate::query::one(&q.own, "format")? {
        None | Some("json") => false,
        Some("yaml") => true,
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "parameter format: expected json or yaml, found {v:?}"
            )));
        }
    };
    let audit_ids = match crate::query::one(&q.own, "auditIds")? {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= 100)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "parameter auditIds: expected 0 to 100, found {v:?}"
                ))
            })?,
    };
    let options = Options {
        expand_multi_namespace: flag(&q.own, "expandMultiNamespace", true)?,
        expand_multi_name: flag(&q.own, "expandMultiName", true)?,
        namespace: crate::query::one(&q.own, "namespace")?.map(str::to_string),
        audit_ids_per_rule: audit_ids,
        ..Options::default()
    };
    let source = state.rbac.clone();
    let mut filter = q.filter;
    match (&source, delta) {
        (None, true) => return Err(no_source()),
        (Some(src), true) => {
            filter.clusters = src.scope(principal.cluster.as_deref(), &filter.clusters)?;
        }
        _ => {}
    }
    let answer = blocking(&state, "suggesting RBAC", move |s| {
        let _one = source
            .as_ref()
            .map(|src| src.busy.lock().unwrap_or_else(|p| p.into_inner()));
        let requests = match requests_of(s, &filter, Some(&subject))? {
            Ok(r) => r,
            Err(e) => return Ok(Err(ApiError::bad_request(e))),
        };
        let mut existing = kubetrail_rbac::default_existing();
        if let (true, Some(src)) = (delta, &source) {
            let cluster = match src.current(s, &filter)? {
                Ok(c) => c,
                Err(e) => return Ok(Err(ApiError::bad_request(e))),
            };
            existing.extend(&cluster);
        }
        Ok(Ok(kubetrail_rbac::suggest(
            &requests,
            &subject,
            &Authorizer::new(&existing),
            &options,
            &Naming::default(),
        )))
    })
    .await??;
    let generated = answer.map_err(|e| match e {
        kubetrail_rbac::Error::NoEvents(_) => ApiError {
            status: StatusCode::NOT_FOUND,
            reason: e.to_string(),
        },
        e => ApiError::bad_request(e.to_string()),
    })?;
    let docs = generated.documents(audit_ids > 0);
    Ok(if yaml {
        (
            [(header::CONTENT_TYPE, "application/yaml")],
            kubetrail_rbac::to_yaml(&docs),
        )
            .into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "application/json")],
            kubetrail_rbac::to_json_list(&docs),
        )
            .into_response()
    })
}

/// `GET /api/v1/rbac/unused[?user=U|serviceaccount=NS:NAME|group=G]`: each permission the
/// server's RBAC grants the subject (every subject a binding names, without one), used or not
/// by its allowed requests in range (default the last 30 days), and its refused requests
/// nothing grants.
pub(crate) async fn unused(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let q = question(&principal, query.as_deref(), Some("30d"))?;
    if let Some((k, _)) = q
        .own
        .iter()
        .find(|(k, _)| !matches!(k.as_str(), "user" | "serviceaccount" | "group"))
    {
        return Err(ApiError::bad_request(format!(
            "parameter {k}: used by /api/v1/rbac/suggest, not here"
        )));
    }
    let Some(source) = state.rbac.clone() else {
        return Err(no_source());
    };
    let (subject, mut filter) = (q.subject, q.filter);
    filter.clusters = source.scope(principal.cluster.as_deref(), &filter.clusters)?;
    let answer = blocking(&state, "comparing RBAC with use", move |s| {
        let _one = source.busy.lock().unwrap_or_else(|p| p.into_inner());
        let objects = match source.current(s, &filter)? {
            Ok(o) => o,
            Err(e) => return Ok(Err(e)),
        };
        let authorizer = Authorizer::new(&objects);
        let requests = match requests_of(s, &filter, subject.as_ref())? {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        let subjects = match &subject {
            Some(sel) => vec![sel.subject()],
            None => kubetrail_rbac::subjects_of(&authorizer),
        };
        let mut reports: Vec<_> = subjects
            .iter()
            .map(|sub| kubetrail_rbac::unused(&authorizer, sub, &requests, &Default::default()))
            .collect();
        kubetrail_rbac::rank(&mut reports);
        Ok(Ok(serde_json::json!({
            "rbac": {"source": source.kind(), "objects": objects.len()},
            "subjects": reports.iter().map(|r| r.to_json(&format_micros)).collect::<Vec<_>>(),
        })))
    })
    .await?
    .map_err(ApiError::bad_request)?;
    Ok(axum::Json(answer).into_response())
}
