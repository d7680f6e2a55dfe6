//! Granted versus used: every permission a subject's bindings grant, broken into atoms (one
//! group, resource, verb, namespace or cluster, name), each marked used or not by the
//! subject's allowed requests; and the denied requests nothing grants.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::authorize::{Authorizer, resource_matches_one, subject_applies, url_matches};
use crate::compact::breakdown;
use crate::objects::Subject;
use crate::request::{Request, UserInfo, is_allowed, is_denied};

/// One granted permission.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Atom {
    /// The namespace a RoleBinding grants it in; `None`: cluster-wide.
    pub namespace: Option<String>,
    /// Non-resource URL (`/healthz`, `/api/*`); empty for resources (which sort first).
    pub non_resource_url: String,
    /// API group (`*`: all); empty for a non-resource URL.
    pub api_group: String,
    /// `resource[/subresource]`, `*`, `*/subresource`; empty for a non-resource URL.
    pub resource: String,
    /// One object name; `None`: every name.
    pub resource_name: Option<String>,
    /// Verb (`*`: all).
    pub verb: String,
}

impl Atom {
    /// Whether the atom allows `r` (its scope included): `RuleAllows` for a one-verb,
    /// one-group, one-resource (or one-URL), at most one-name rule.
    pub fn allows(&self, r: &Request) -> bool {
        let in_scope = match &self.namespace {
            None => true,
            Some(ns) => r.resource_request && r.namespace == *ns,
        };
        let verb = self.verb == "*" || self.verb == r.verb;
        if !in_scope || !verb {
            return false;
        }
        if !self.non_resource_url.is_empty() {
            return !r.resource_request && url_matches(&self.non_resource_url, &r.path);
        }
        r.resource_request
            && (self.api_group == "*" || self.api_group == r.api_group)
            && resource_matches_one(&self.resource, &r.resource, &r.subresource)
            && self.resource_name.as_ref().is_none_or(|n| *n == r.name)
    }

    /// Whether the atom is a wildcard (all verbs, groups or resources, a URL prefix), which
    /// observed requests can show used but never wholly used.
    pub fn is_wildcard(&self) -> bool {
        self.verb == "*"
            || self.api_group == "*"
            || self.resource == "*"
            || self.resource.starts_with("*/")
            || self.non_resource_url.ends_with('*')
    }

    /// `get pods -n ns`, `* *.* (cluster)`, `get /healthz`.
    pub fn describe(&self) -> String {
        let what = if self.non_resource_url.is_empty() {
            let mut w = if self.api_group.is_empty() {
                self.resource.clone()
            } else {
                let (res, sub) = match self.resource.split_once('/') {
                    Some((r, s)) => (r, format!("/{s}")),
                    None => (self.resource.as_str(), String::new()),
                };
                format!("{res}.{}{sub}", self.api_group)
            };
            if let Some(n) = &self.resource_name {
                w.push_str(&format!(" name={n}"));
            }
            w
        } else {
            self.non_resource_url.clone()
        };
        let scope = match &self.namespace {
            Some(ns) => format!("-n {ns}"),
            None => "(cluster)".to_string(),
        };
        format!("{} {what} {scope}", self.verb)
    }
}

/// An atom with what granted it and whether it was used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtomUse {
    /// The permission.
    pub atom: Atom,
    /// The bindings that grant it: `ClusterRoleBinding/x → ClusterRole/y`.
    pub via: Vec<String>,
    /// Allowed requests it allows.
    pub uses: u64,
    /// The newest of them: (auditID, time in microseconds).
    pub last: Option<(String, i64)>,
}

/// A request the subject was refused that the RBAC still does not grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// The operation (auditID, time and outcome cleared).
    pub request: Request,
    /// How many times.
    pub count: u64,
    /// The newest: (auditID, time in microseconds).
    pub last: (String, i64),
}

/// One subject's grants and use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectReport {
    /// Who.
    pub subject: Subject,
    /// The identity evaluated: the user name and the groups assumed.
    pub user: UserInfo,
    /// Every granted atom, cluster-wide first, then by namespace, group, resource, verb.
    pub atoms: Vec<AtomUse>,
    /// Refused requests nothing grants.
    pub denied: Vec<Denied>,
    /// Allowed requests of the subject in the window.
    pub requests: u64,
}

impl SubjectReport {
    /// Atoms no request used.
    pub fn unused(&self) -> usize {
        self.atoms.iter().filter(|a| a.uses == 0).count()
    }

    /// The report as the CLI's `-o json` and the API answer it; `time` writes a time in
    /// microseconds.
    pub fn to_json(&self, time: &dyn Fn(i64) -> String) -> Value {
        let last = |(id, t): &(String, i64)| json!({"auditID": id, "time": time(*t)});
        let permissions: Vec<Value> = self
            .atoms
            .iter()
            .map(|a| {
                // Absent, not null: a cluster-wide grant has no namespace, an unnamed one no
                // resourceName, an unused one no last use.
                let mut p = json!({
                    "apiGroup": a.atom.api_group,
                    "resource": a.atom.resource,
                    "nonResourceURL": a.atom.non_resource_url,
                    "verb": a.atom.verb,
                    "wildcard": a.atom.is_wildcard(),
                    "used": a.uses > 0,
                    "uses": a.uses,
                    "via": a.via,
                });
                if let Some(ns) = &a.atom.namespace {
                    p["namespace"] = json!(ns);
                }
                if let Some(n) = &a.atom.resource_name {
                    p["resourceName"] = json!(n);
                }
                if let Some(l) = &a.last {
                    p["last"] = last(l);
                }
                p
            })
            .collect();
        json!({
            "subject": self.subject,
            "groups": self.user.groups,
            "clusterAdmin": self.cluster_admin(),
            "requests": self.requests,
            "granted": self.atoms.len(),
            "unused": self.unused(),
            "permissions": permissions,
            "denied": self.denied.iter().map(|d| json!({
                "request": d.request.describe(),
                "count": d.count,
                "last": last(&d.last),
            })).collect::<Vec<_>>(),
        })
    }

    /// Whether the subject can do everything everywhere (`*` verbs on `*` resources of `*`
    /// groups, cluster-wide).
    pub fn cluster_admin(&self) -> bool {
        self.atoms.iter().any(|a| {
            a.atom.namespace.is_none()
                && a.atom.resource_name.is_none()
                && a.atom.verb == "*"
                && a.atom.api_group == "*"
                && a.atom.resource == "*"
        })
    }
}

/// Orders reports as a review reads them: cluster-admin equivalents first, then by unused
/// permissions, most first, then by subject.
pub fn rank(reports: &mut [SubjectReport]) {
    reports.sort_by(|a, b| {
        b.cluster_admin()
            .cmp(&a.cluster_admin())
            .then(b.unused().cmp(&a.unused()))
            .then(a.subject.cmp(&b.subject))
    });
}

/// Options of [`unused`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnusedOptions {
    /// Groups every user is assumed to have besides those seen in their requests
    /// (`system:authenticated` by default when empty).
    pub assumed_groups: Vec<String>,
}

/// Every subject a binding names, each once, in a stable order.
pub fn subjects_of(authorizer: &Authorizer) -> Vec<Subject> {
    let mut set = BTreeSet::new();
    for b in authorizer.bindings() {
        for s in &b.subjects {
            let mut s = s.clone();
            if s.kind == "ServiceAccount" && s.namespace.is_empty() {
                s.namespace = b.metadata.namespace.clone();
            }
            set.insert(s);
        }
    }
    set.into_iter().collect()
}

/// Whether `r` was made by `subject`.
fn is_subjects(subject: &Subject, r: &Request) -> bool {
    match subject.kind.as_str() {
        "User" => r.user.name == subject.name,
        "Group" => r.user.groups.contains(&subject.name),
        "ServiceAccount" => {
            r.user.name
                == format!(
                    "system:serviceaccount:{}:{}",
                    subject.namespace, subject.name
                )
        }
        _ => false,
    }
}

/// The identity a subject is evaluated as: a user with the groups its requests carried (and
/// `system:authenticated`), a service account with the groups Kubernetes gives every one, or
/// a member of the group alone.
fn identity(subject: &Subject, requests: &[&Request], options: &UnusedOptions) -> UserInfo {
    let assumed = if options.assumed_groups.is_empty() {
        vec!["system:authenticated".to_string()]
    } else {
        options.assumed_groups.clone()
    };
    match subject.kind.as_str() {
        "Group" => UserInfo {
            name: String::new(),
            groups: vec![subject.name.clone()],
        },
        "ServiceAccount" => UserInfo {
            name: format!(
                "system:serviceaccount:{}:{}",
                subject.namespace, subject.name
            ),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{}", subject.namespace),
                "system:authenticated".into(),
            ],
        },
        // Authentication gives the anonymous user system:unauthenticated, never
        // system:authenticated.
        "User" if subject.name == "system:anonymous" => UserInfo {
            name: subject.name.clone(),
            groups: vec!["system:unauthenticated".into()],
        },
        _ => {
            let mut groups: BTreeSet<String> = assumed.into_iter().collect();
            for r in requests {
                groups.extend(r.user.groups.iter().cloned());
            }
            UserInfo {
                name: subject.name.clone(),
                groups: groups.into_iter().collect(),
            }
        }
    }
}

/// What `subject`'s bindings in `authorizer` grant, and which of it `requests` used.
pub fn unused(
    authorizer: &Authorizer,
    subject: &Subject,
    requests: &[Request],
    options: &UnusedOptions,
) -> SubjectReport {
    let own: Vec<&Request> = requests
        .iter()
        .filter(|r| is_subjects(subject, r))
        .collect();
    let user = identity(subject, &own, options);

    // Every binding that applies to the identity, in any namespace.
    let mut atoms: BTreeMap<Atom, Vec<String>> = BTreeMap::new();
    for b in authorizer.bindings() {
        let ns = b.metadata.namespace.as_str();
        let cluster_wide = ns.is_empty();
        let applies = b.subjects.iter().any(|s| {
            if subject.kind == "Group" {
                // A group's grants are what binds the group itself.
                s.kind == "Group" && s.name == subject.name
            } else {
                subject_applies(s, &user, ns)
            }
        });
        if !applies {
            continue;
        }
        let via = format!(
            "{}/{} → {}/{}",
            if cluster_wide {
                "ClusterRoleBinding"
            } else {
                "RoleBinding"
            },
            if cluster_wide {
                b.metadata.name.clone()
            } else {
                format!("{ns}/{}", b.metadata.name)
            },
            b.role_ref.kind,
            b.role_ref.name
        );
        for rule in authorizer.role_rules(b, ns) {
            for a in breakdown(rule) {
                let url = a.non_resource_urls.first().cloned().unwrap_or_default();
                if !url.is_empty() && !cluster_wide {
                    // A RoleBinding grants no non-resource URL.
                    continue;
                }
                let atom = Atom {
                    namespace: (!cluster_wide).then(|| ns.to_string()),
                    non_resource_url: url,
                    api_group: a.api_groups.first().cloned().unwrap_or_default(),
                    resource: a.resources.first().cloned().unwrap_or_default(),
                    resource_name: a.resource_names.first().cloned(),
                    verb: a.verbs.first().cloned().unwrap_or_default(),
                };
                let vias = atoms.entry(atom).or_default();
                if !vias.contains(&via) {
                    vias.push(via.clone());
                }
            }
        }
    }
    let mut uses: Vec<AtomUse> = atoms
        .into_iter()
        .map(|(atom, via)| AtomUse {
            atom,
            via,
            uses: 0,
            last: None,
        })
        .collect();

    // Requests that differ only by auditID, time or outcome are one operation: each is
    // matched against the atoms once.
    #[derive(Default)]
    struct Seen {
        allowed: u64,
        last_allowed: Option<(String, i64)>,
        denied: u64,
        last_denied: Option<(String, i64)>,
    }
    let newer = |last: &mut Option<(String, i64)>, r: &Request| {
        if last.as_ref().is_none_or(|(_, t)| r.time_micros >= *t) {
            *last = Some((r.audit_id.clone(), r.time_micros));
        }
    };
    let mut ops: std::collections::HashMap<Request, Seen> = std::collections::HashMap::new();
    for r in &own {
        if is_allowed(r) {
            let seen = ops.entry(r.key()).or_default();
            seen.allowed += 1;
            newer(&mut seen.last_allowed, r);
        } else if is_denied(r) {
            let seen = ops.entry(r.key()).or_default();
            seen.denied += 1;
            newer(&mut seen.last_denied, r);
        }
    }
    let mut allowed_requests = 0;
    let mut denied: BTreeMap<String, Denied> = BTreeMap::new();
    for (op, seen) in &ops {
        if let Some(last) = &seen.last_allowed {
            allowed_requests += seen.allowed;
            for u in uses.iter_mut().filter(|u| u.atom.allows(op)) {
                u.uses += seen.allowed;
                if u.last.as_ref().is_none_or(|(_, t)| last.1 >= *t) {
                    u.last = Some(last.clone());
                }
            }
        }
        let Some(last) = &seen.last_denied else {
            continue;
        };
        let as_subject = Request {
            user: user.clone(),
            ..op.clone()
        };
        if authorizer.allows(op) || authorizer.allows(&as_subject) {
            continue;
        }
        let mut key = op.clone();
        key.user = UserInfo::default();
        let entry = denied.entry(key.describe()).or_insert_with(|| Denied {
            request: key,
            count: 0,
            last: last.clone(),
        });
        entry.count += seen.denied;
        if last.1 >= entry.last.1 {
            entry.last = last.clone();
        }
    }
    SubjectReport {
        subject: subject.clone(),
        user,
        atoms: uses,
        denied: denied.into_values().collect(),
        requests: allowed_requests,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorize::rule_allows;
    use crate::objects::PolicyRule;
    use proptest::prelude::*;

    fn pick(xs: &'static [&'static str]) -> impl Strategy<Value = String> {
        proptest::sample::select(xs).prop_map(String::from)
    }

    proptest! {
        /// An atom allows exactly what its one-rule form allows in its scope.
        #[test]
        fn an_atom_allows_what_its_rule_allows(
            ns in proptest::option::of(pick(&["a", "b"])),
            url in pick(&["", "/healthz", "/api/*", "*"]),
            group in pick(&["", "apps", "*"]),
            resource in pick(&["pods", "pods/log", "*", "*/log", "deployments"]),
            name in proptest::option::of(pick(&["x", "y"])),
            verb in pick(&["get", "list", "*"]),
            r_resource_request in any::<bool>(),
            r_ns in pick(&["", "a", "b"]),
            r_group in pick(&["", "apps"]),
            r_resource in pick(&["pods", "deployments"]),
            r_sub in pick(&["", "log", "exec"]),
            r_name in pick(&["", "x", "y"]),
            r_verb in pick(&["get", "list", "watch"]),
            r_path in pick(&["/healthz", "/api/v1", "/version"]),
        ) {
            let atom = Atom {
                namespace: ns,
                non_resource_url: url.clone(),
                api_group: if url.is_empty() { group.clone() } else { String::new() },
                resource: if url.is_empty() { resource.clone() } else { String::new() },
                resource_name: if url.is_empty() { name.clone() } else { None },
                verb: verb.clone(),
            };
            let rule = if url.is_empty() {
                PolicyRule {
                    verbs: vec![verb],
                    api_groups: vec![group],
                    resources: vec![resource],
                    resource_names: name.into_iter().collect(),
                    non_resource_urls: vec![],
                }
            } else {
                PolicyRule { verbs: vec![verb], non_resource_urls: vec![url], ..PolicyRule::default() }
            };
            let r = Request {
                resource_request: r_resource_request,
                namespace: if r_resource_request { r_ns } else { String::new() },
                api_group: r_group,
                resource: r_resource,
                subresource: r_sub,
                name: r_name,
                verb: r_verb,
                path: if r_resource_request { String::new() } else { r_path },
                ..Request::default()
            };
            let in_scope = atom.namespace.as_ref().is_none_or(|ns| r.resource_request && r.namespace == *ns);
            prop_assert_eq!(atom.allows(&r), in_scope && rule_allows(&r, &rule));
        }
    }
}
