//! Granted versus used: every permission a subject's bindings grant, broken into atoms (one
//! group, resource, verb, namespace or cluster, name), each marked used or not by the
//! subject's allowed requests; and the denied requests nothing grants.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::authorize::{Authorizer, rule_allows, subject_applies};
use crate::compact::breakdown;
use crate::objects::{PolicyRule, Subject};
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
    /// The one-rule form of the atom.
    fn rule(&self) -> PolicyRule {
        if !self.non_resource_url.is_empty() {
            return PolicyRule {
                verbs: vec![self.verb.clone()],
                non_resource_urls: vec![self.non_resource_url.clone()],
                ..PolicyRule::default()
            };
        }
        PolicyRule {
            verbs: vec![self.verb.clone()],
            api_groups: vec![self.api_group.clone()],
            resources: vec![self.resource.clone()],
            resource_names: self.resource_name.iter().cloned().collect(),
            non_resource_urls: vec![],
        }
    }

    /// Whether the atom allows `r` (its scope included).
    pub fn allows(&self, r: &Request) -> bool {
        let in_scope = match &self.namespace {
            None => true,
            Some(ns) => r.resource_request && r.namespace == *ns,
        };
        in_scope && rule_allows(r, &self.rule())
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
                && a.atom.verb == "*"
                && a.atom.api_group == "*"
                && a.atom.resource == "*"
        })
    }
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

    let mut allowed_requests = 0;
    let mut denied: BTreeMap<String, Denied> = BTreeMap::new();
    for r in &own {
        if is_allowed(r) {
            allowed_requests += 1;
            for u in uses.iter_mut() {
                if u.atom.allows(r) {
                    u.uses += 1;
                    if u.last.as_ref().is_none_or(|(_, t)| r.time_micros >= *t) {
                        u.last = Some((r.audit_id.clone(), r.time_micros));
                    }
                }
            }
        } else if is_denied(r) {
            let as_subject = Request {
                user: user.clone(),
                ..(*r).clone()
            };
            if authorizer.allows(r) || authorizer.allows(&as_subject) {
                continue;
            }
            let key = r.key();
            let entry = denied.entry(key.describe()).or_insert_with(|| Denied {
                request: key,
                count: 0,
                last: (r.audit_id.clone(), r.time_micros),
            });
            entry.count += 1;
            if r.time_micros >= entry.last.1 {
                entry.last = (r.audit_id.clone(), r.time_micros);
            }
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
