//! [`Request`]: what the RBAC authorizer saw of one audited request (authorizer attributes),
//! taken from an event as audit2rbac takes it.

use kubetrail_model::Event;

/// The user a request was authorized as.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct UserInfo {
    /// User name.
    pub name: String,
    /// Groups.
    pub groups: Vec<String>,
}

/// One request's authorizer attributes, with where it was seen.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Request {
    /// Who: the impersonated user when there is one, else the authenticated user.
    pub user: UserInfo,
    /// The RBAC verb (resource requests) or lowercase HTTP method (non-resource requests).
    pub verb: String,
    /// Whether the request was for a resource (it had an objectRef).
    pub resource_request: bool,
    /// API group (`""` core).
    pub api_group: String,
    /// API version.
    pub api_version: String,
    /// Resource.
    pub resource: String,
    /// Subresource.
    pub subresource: String,
    /// Namespace (`""`: cluster-scoped or all namespaces).
    pub namespace: String,
    /// Object name (`""`: a collection, or a create).
    pub name: String,
    /// Non-resource requests: the URL path, without the query string.
    pub path: String,
    /// The event's auditID.
    pub audit_id: String,
    /// Event time, microseconds since the epoch (0 when unknown).
    pub time_micros: i64,
    /// Response code, when the event has one.
    pub code: Option<i32>,
    /// The `authorization.k8s.io/decision` annotation, when present.
    pub decision: Option<String>,
    /// Whether this is the request's final event (the one that carries its outcome): the
    /// ResponseComplete or Panic, the ResponseStarted of a long-running request, or an event
    /// without a stage; not a RequestReceived. Outcomes are counted only from final events.
    pub complete: bool,
}

/// Whether `event` is its request's final event (see [`Request::complete`]).
pub fn is_final(event: &Event) -> bool {
    use kubetrail_model::Stage;
    match event.stage {
        None | Some(Stage::ResponseComplete | Stage::Panic) => true,
        Some(Stage::RequestReceived) => false,
        Some(Stage::ResponseStarted) => {
            let sub = event
                .object_ref
                .as_ref()
                .and_then(|o| o.subresource.as_deref())
                .unwrap_or("");
            kubetrail_model::is_long_running(event.verb.as_deref().unwrap_or(""), sub)
                || event.code() == Some(401)
        }
    }
}

impl Request {
    /// The request an event records, as audit2rbac reads it (its `eventToAttributes`): the
    /// effective user (impersonated, else authenticated) with that identity's groups; verb;
    /// objectRef's fields as they are; a `create` loses its name, which the authorizer never
    /// sees (the name comes from the body). Two differences, both so that the generated rules
    /// match what the apiserver's authorizer checks: a subresource create (`pods/exec`,
    /// `pods/eviction`, `serviceaccounts/token`) keeps its name, which is in the URL; the path
    /// of a non-resource request is the requestURI without its query string.
    ///
    /// Every stage counts (duplicates of a request add nothing), as in audit2rbac.
    pub fn from_event(event: &Event) -> Request {
        let who = event
            .impersonated_user
            .as_ref()
            .filter(|u| u.username.as_deref().is_some_and(|n| !n.is_empty()))
            .or(event.user.as_ref());
        let user = UserInfo {
            name: who.and_then(|u| u.username.clone()).unwrap_or_default(),
            groups: who.map(|u| u.groups.clone()).unwrap_or_default(),
        };
        let verb = event.verb.clone().unwrap_or_default();
        let uri = event.request_uri.as_deref().unwrap_or("");
        let path = uri.split_once('?').map_or(uri, |(p, _)| p).to_string();
        let mut request = Request {
            user,
            verb,
            audit_id: event.audit_id.clone().unwrap_or_default(),
            time_micros: event
                .stage_timestamp
                .as_ref()
                .or(event.request_received_timestamp.as_ref())
                .map_or(0, |t| t.unix_micros()),
            code: event.code(),
            decision: event.authorization_decision().map(str::to_string),
            complete: is_final(event),
            ..Request::default()
        };
        match &event.object_ref {
            Some(o) => {
                let s = |v: &Option<String>| v.clone().unwrap_or_default();
                request.resource_request = true;
                request.api_group = s(&o.api_group);
                request.api_version = s(&o.api_version);
                request.resource = s(&o.resource);
                request.subresource = s(&o.subresource);
                request.namespace = s(&o.namespace);
                request.name = s(&o.name);
                if request.verb == "create" && request.subresource.is_empty() {
                    request.name.clear();
                }
            }
            None => request.path = path,
        }
        request
    }

    /// The attributes alone: the same for every event of one operation on one object.
    pub fn key(&self) -> Request {
        Request {
            audit_id: String::new(),
            time_micros: 0,
            code: None,
            decision: None,
            complete: false,
            ..self.clone()
        }
    }

    /// `resource/subresource`, or `resource`.
    pub fn combined_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }

    /// A short description: `get pods/x -n ns` or `get /healthz`.
    pub fn describe(&self) -> String {
        if !self.resource_request {
            return format!("{} {}", self.verb, self.path);
        }
        let mut s = format!("{} {}", self.verb, self.combined_resource());
        if !self.api_group.is_empty() {
            s = format!("{} {}.{}", self.verb, self.resource, self.api_group);
            if !self.subresource.is_empty() {
                s.push('/');
                s.push_str(&self.subresource);
            }
        }
        if !self.name.is_empty() {
            s.push_str(&format!(" name={}", self.name));
        }
        if !self.namespace.is_empty() {
            s.push_str(&format!(" -n {}", self.namespace));
        }
        s
    }
}

/// Whether the authorizer allowed the request, as its final event says: `decision: allow`, or
/// with no decision recorded a code that is neither 401 nor 403 (a 404 was authorized, then
/// not found). A RequestReceived event says neither.
pub fn is_allowed(r: &Request) -> bool {
    if !r.complete {
        return false;
    }
    match r.decision.as_deref() {
        Some(d) => d == "allow",
        None => !matches!(r.code, Some(401 | 403)),
    }
}

/// Whether the authorizer refused it: `decision: forbid`, or a 403 with no decision recorded.
pub fn is_denied(r: &Request) -> bool {
    if !r.complete {
        return false;
    }
    match r.decision.as_deref() {
        Some(d) => d == "forbid",
        None => r.code == Some(403),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn event(json: &str) -> Event {
        kubetrail_model::decode_event(json.as_bytes()).unwrap()
    }

    #[test]
    fn creates_lose_their_name_but_subresource_creates_keep_it() {
        let base = r#"{"apiVersion":"audit.k8s.io/v1","kind":"Event","level":"Metadata","auditID":"a","stage":"ResponseComplete","requestURI":"/x","verb":"create","user":{"username":"bob"},"objectRef":{"resource":"RES","namespace":"ns","name":"n","apiGroup":"mygroup","apiVersion":"myversion"SUB}}"#;
        let plain = Request::from_event(&event(
            &base.replace("RES", "myresources").replace("SUB", ""),
        ));
        assert_eq!(plain.name, "");
        assert_eq!(
            (plain.api_group.as_str(), plain.api_version.as_str()),
            ("mygroup", "myversion")
        );
        let exec = Request::from_event(&event(
            &base
                .replace("RES", "pods")
                .replace("SUB", r#","subresource":"exec""#),
        ));
        assert_eq!(exec.name, "n");
    }

    #[test]
    fn the_impersonated_user_is_the_one_authorized_and_paths_lose_their_query() {
        let e = event(
            r#"{"apiVersion":"audit.k8s.io/v1","kind":"Event","level":"Metadata","auditID":"a","stage":"ResponseComplete","requestURI":"/version?timeout=32s","verb":"get","user":{"username":"system:admin","groups":["system:masters"]},"impersonatedUser":{"username":"alice","groups":["dev"]},"responseStatus":{"code":403}}"#,
        );
        let r = Request::from_event(&e);
        assert_eq!(
            r.user,
            UserInfo {
                name: "alice".into(),
                groups: vec!["dev".into()]
            }
        );
        assert!(!r.resource_request);
        assert_eq!(r.path, "/version");
        assert!(is_denied(&r) && !is_allowed(&r));
    }
}
