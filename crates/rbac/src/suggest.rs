//! [`suggest`]: the Roles, ClusterRole and bindings that allow what a subject was observed
//! doing — audit2rbac's generator (its `Generator.Generate`), made deterministic.
//!
//! Requests are taken broadest first; one that the existing RBAC or the rules generated so far
//! already allow adds nothing; a non-resource request adds `{verbs: [verb], nonResourceURLs:
//! [path]}` to the ClusterRole; a resource request done on two names (or in two namespaces)
//! that are otherwise the same operation loses its name (its namespace), then adds one rule
//! with the verb and its fixed expansions to its namespace's Role or to the ClusterRole. Each
//! role is then compacted ([`compact_rules`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::authorize::{Authorizer, rule_allows};
use crate::compact::compact_rules;
use crate::objects::{Binding, GROUP, Meta, PolicyRule, RbacObjects, Role, RoleRef, Subject};
use crate::request::{Request, UserInfo};
use crate::{Error, Result};

/// Whose permissions to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectSelector {
    /// A user, by name (service accounts too: `system:serviceaccount:NS:NAME`).
    User(String),
    /// Every request whose user is in this group.
    Group(String),
}

impl SubjectSelector {
    /// A service account given as `NS:NAME`.
    pub fn service_account(ns_name: &str) -> Result<SubjectSelector> {
        match ns_name.split_once(':') {
            Some((ns, name)) if is_dns_label(ns) && is_dns_subdomain(name) => Ok(
                SubjectSelector::User(format!("system:serviceaccount:{ns}:{name}")),
            ),
            _ => Err(Error::Subject(format!(
                "--serviceaccount {ns_name}: expected NAMESPACE:NAME (a namespace and a service account name)"
            ))),
        }
    }

    /// Whether a request by `user` belongs to the subject.
    pub fn matches(&self, user: &UserInfo) -> bool {
        match self {
            SubjectSelector::User(name) => user.name == *name,
            SubjectSelector::Group(group) => user.groups.iter().any(|g| g == group),
        }
    }

    /// The binding subject: a ServiceAccount for `system:serviceaccount:NS:NAME` (when both
    /// parts are valid names, as `serviceaccount.SplitUsername` checks), else a User; a Group.
    pub fn subject(&self) -> Subject {
        match self {
            SubjectSelector::User(name) => match split_service_account(name) {
                Some((ns, sa)) => Subject::service_account(ns, sa),
                None => Subject::user(name),
            },
            SubjectSelector::Group(group) => Subject::group(group),
        }
    }

    /// The name `${user}` stands for in object names and labels.
    pub fn name(&self) -> &str {
        match self {
            SubjectSelector::User(n) | SubjectSelector::Group(n) => n,
        }
    }

    /// `user alice`, `service account ns1:sa1`, `group dev`.
    pub fn describe(&self) -> String {
        match self {
            SubjectSelector::User(name) => match split_service_account(name) {
                Some((ns, sa)) => format!("service account {ns}:{sa}"),
                None => format!("user {name}"),
            },
            SubjectSelector::Group(group) => format!("group {group}"),
        }
    }
}

/// `system:serviceaccount:NS:NAME` split, when both are valid names.
fn split_service_account(user: &str) -> Option<(&str, &str)> {
    let (ns, name) = user
        .strip_prefix("system:serviceaccount:")?
        .split_once(':')?;
    (is_dns_label(ns) && is_dns_subdomain(name)).then_some((ns, name))
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// How requests become rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The same operation in two or more namespaces becomes cluster-wide (default true).
    pub expand_multi_namespace: bool,
    /// The same operation on two or more names loses its resourceNames (default true).
    pub expand_multi_name: bool,
    /// Verbs granted along with each verb (default: list and watch each bring get, list, watch;
    /// update and patch each bring get, patch, update).
    pub verb_expansions: BTreeMap<String, Vec<String>>,
    /// Only requests in this namespace (`-n`): cluster-scoped and non-resource ones are left
    /// out, as audit2rbac does.
    pub namespace: Option<String>,
    /// How many auditIDs to keep for each rule (0: none).
    pub audit_ids_per_rule: usize,
}

impl Default for Options {
    fn default() -> Options {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Options {
            expand_multi_namespace: true,
            expand_multi_name: true,
            verb_expansions: [
                ("watch".to_string(), v(&["get", "list"])),
                ("list".to_string(), v(&["get", "watch"])),
                ("update".to_string(), v(&["get", "patch"])),
                ("patch".to_string(), v(&["get", "update"])),
            ]
            .into(),
            namespace: None,
            audit_ids_per_rule: 0,
        }
    }
}

/// The names, labels and annotations of the generated objects; `${user}` in them stands for
/// the subject's name (sanitized in names and labels as audit2rbac does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naming {
    /// Object name template.
    pub name: String,
    /// Label templates.
    pub labels: Vec<(String, String)>,
    /// Annotation templates.
    pub annotations: Vec<(String, String)>,
}

impl Default for Naming {
    fn default() -> Naming {
        Naming {
            name: "kubetrail:${user}".into(),
            labels: vec![
                ("kubetrail.io/generated".into(), "true".into()),
                ("kubetrail.io/subject".into(), "${user}".into()),
            ],
            annotations: vec![],
        }
    }
}

impl Naming {
    fn apply(&self, subject: &str) -> (String, BTreeMap<String, String>, BTreeMap<String, String>) {
        let name = self.name.replace("${user}", &sanitize(subject, true));
        let labels = self
            .labels
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    label_value(&v.replace("${user}", &sanitize(subject, false))),
                )
            })
            .collect();
        let annotations = self
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.replace("${user}", subject)))
            .collect();
        (name, labels, annotations)
    }
}

/// audit2rbac's `sanitizeName` (`keep_colon`) and `sanitizeLabel`: every other character
/// outside `[a-zA-Z0-9]` becomes `-`, then lower case.
fn sanitize(s: &str, keep_colon: bool) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || (keep_colon && c == ':') {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// A label value Kubernetes accepts: at most 63 characters, starting and ending with an
/// alphanumeric (audit2rbac does not check, and a long user name makes objects the apiserver
/// refuses).
fn label_value(s: &str) -> String {
    let cut: String = s.chars().take(63).collect();
    cut.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// One generated Role (with a namespace) or the ClusterRole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedRole {
    /// The Role's namespace; `None` for the ClusterRole.
    pub namespace: Option<String>,
    /// The compacted rules.
    pub rules: Vec<PolicyRule>,
    /// For each rule, the first auditIDs of the requests it allows that needed it.
    pub audit_ids: Vec<Vec<String>>,
}

/// One generated binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedBinding {
    /// The RoleBinding's namespace; `None` for the ClusterRoleBinding.
    pub namespace: Option<String>,
    /// The role it binds.
    pub role_ref: RoleRef,
}

/// What [`suggest`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// Roles by namespace, then the ClusterRole (if any).
    pub roles: Vec<GeneratedRole>,
    /// The bindings, in the same order.
    pub bindings: Vec<GeneratedBinding>,
    /// Who the bindings grant to.
    pub subject: Subject,
    /// Every object's name.
    pub name: String,
    /// Every object's labels.
    pub labels: BTreeMap<String, String>,
    /// Every object's annotations.
    pub annotations: BTreeMap<String, String>,
    /// Distinct operations seen (requests that differ only by auditID, time or outcome are one).
    pub operations: usize,
    /// Of those, how many the existing RBAC already allowed.
    pub already_allowed: usize,
}

impl Generated {
    /// Whether nothing needs granting.
    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
    }

    /// The objects as JSON documents in output order ([`crate::yaml_documents`]), each with
    /// the naming's annotations and, with `audit_ids`, each role's
    /// `kubetrail.io/rule-audit-ids` (one list of auditIDs per rule, in rule order).
    pub fn documents(&self, audit_ids: bool) -> Vec<serde_json::Value> {
        use serde_json::{Map, Value};
        let annotations = |kind: &str, i: usize| -> Map<String, Value> {
            let mut m: Map<String, Value> = self
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            let role = match kind {
                "Role" => self.roles.iter().filter(|r| r.namespace.is_some()).nth(i),
                "ClusterRole" => self.roles.iter().find(|r| r.namespace.is_none()),
                _ => None,
            };
            if let (true, Some(role)) = (audit_ids, role) {
                m.insert(
                    "kubetrail.io/rule-audit-ids".into(),
                    Value::String(serde_json::json!(role.audit_ids).to_string()),
                );
            }
            m
        };
        crate::render::yaml_documents(&self.objects(), annotations)
    }

    /// The objects: Roles, the ClusterRole, RoleBindings, the ClusterRoleBinding.
    pub fn objects(&self) -> RbacObjects {
        let meta = |ns: &Option<String>| Meta {
            name: self.name.clone(),
            namespace: ns.clone().unwrap_or_default(),
            labels: self.labels.clone(),
        };
        let mut out = RbacObjects::default();
        for r in &self.roles {
            let role = Role {
                metadata: meta(&r.namespace),
                rules: r.rules.clone(),
                aggregation_rule: None,
            };
            match r.namespace {
                Some(_) => out.roles.push(role),
                None => out.cluster_roles.push(role),
            }
        }
        for b in &self.bindings {
            let binding = Binding {
                metadata: meta(&b.namespace),
                subjects: vec![self.subject.clone()],
                role_ref: b.role_ref.clone(),
            };
            match b.namespace {
                Some(_) => out.role_bindings.push(binding),
                None => out.cluster_role_bindings.push(binding),
            }
        }
        out
    }
}

/// What every cluster grants every authenticated user, so that suggestions leave it out:
/// Kubernetes' bootstrap `system:discovery`, `system:public-info-viewer` and
/// `system:basic-user` (audit2rbac's list predates `/livez`, `/readyz` and the
/// self-subject reviews).
pub fn default_existing() -> RbacObjects {
    let urls = |verbs: &[&str], urls: &[&str]| PolicyRule {
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        non_resource_urls: urls.iter().map(|s| s.to_string()).collect(),
        ..PolicyRule::default()
    };
    let create = |group: &str, resources: &[&str]| PolicyRule {
        verbs: vec!["create".into()],
        api_groups: vec![group.into()],
        resources: resources.iter().map(|s| s.to_string()).collect(),
        ..PolicyRule::default()
    };
    let role = |name: &str, rules: Vec<PolicyRule>| Role {
        metadata: Meta {
            name: name.into(),
            ..Meta::default()
        },
        rules,
        aggregation_rule: None,
    };
    let binding = |name: &str, groups: &[&str]| Binding {
        metadata: Meta {
            name: name.into(),
            ..Meta::default()
        },
        subjects: groups.iter().map(|g| Subject::group(g)).collect(),
        role_ref: RoleRef {
            api_group: GROUP.into(),
            kind: "ClusterRole".into(),
            name: name.into(),
        },
    };
    RbacObjects {
        cluster_roles: vec![
            role(
                "system:discovery",
                vec![urls(
                    &["get"],
                    &[
                        "/api",
                        "/api/*",
                        "/apis",
                        "/apis/*",
                        "/healthz",
                        "/livez",
                        "/openapi",
                        "/openapi/*",
                        "/readyz",
                        "/version",
                        "/version/",
                    ],
                )],
            ),
            role(
                "system:public-info-viewer",
                vec![urls(
                    &["get"],
                    &["/healthz", "/livez", "/readyz", "/version", "/version/"],
                )],
            ),
            role(
                "system:basic-user",
                vec![
                    create(
                        "authorization.k8s.io",
                        &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    ),
                    create("authentication.k8s.io", &["selfsubjectreviews"]),
                ],
            ),
        ],
        cluster_role_bindings: vec![
            binding("system:discovery", &["system:authenticated"]),
            binding(
                "system:public-info-viewer",
                &["system:authenticated", "system:unauthenticated"],
            ),
            binding("system:basic-user", &["system:authenticated"]),
        ],
        ..RbacObjects::default()
    }
}

/// The order requests are taken in: non-resource before resource; cluster-scoped, unnamed,
/// `list` before the rest and `get` last (so that broad rules come first and cover the narrow
/// ones), then by group, resource, subresource, namespace, name, verb. audit2rbac's comparator
/// puts list before get ahead of the other keys, which is not a total order; this one is.
fn order_key(r: &Request) -> impl Ord + '_ {
    let verb_rank = match r.verb.as_str() {
        "list" => 0,
        "get" => 2,
        _ => 1,
    };
    (
        r.resource_request,
        !r.namespace.is_empty(),
        !r.name.is_empty(),
        if r.resource_request { verb_rank } else { 0 },
        (&r.api_group, &r.resource, &r.subresource, &r.namespace),
        (&r.name, &r.verb, &r.path, &r.api_version, &r.user),
    )
}

/// Generates the RBAC that allows every request of `subject` among `requests` that `existing`
/// does not already allow. An error when no request is the subject's.
pub fn suggest(
    requests: &[Request],
    subject: &SubjectSelector,
    existing: &Authorizer,
    options: &Options,
    naming: &Naming,
) -> Result<Generated> {
    // One entry per distinct operation, with the auditIDs that did it.
    let mut ops: HashMap<Request, Vec<String>> = HashMap::new();
    for r in requests {
        if !subject.matches(&r.user) {
            continue;
        }
        if let Some(ns) = &options.namespace
            && (!r.resource_request || r.namespace != *ns)
        {
            continue;
        }
        let ids = ops.entry(r.key()).or_default();
        if ids.len() < options.audit_ids_per_rule.max(1) && !r.audit_id.is_empty() {
            ids.push(r.audit_id.clone());
        }
    }
    if ops.is_empty() {
        let mut what = subject.describe();
        if let Some(ns) = &options.namespace {
            what.push_str(&format!(" in namespace {ns}"));
        }
        return Err(Error::NoEvents(what));
    }
    let mut sorted: Vec<(&Request, &Vec<String>)> = ops.iter().collect();
    sorted.sort_by(|a, b| order_key(a.0).cmp(&order_key(b.0)));

    // The expansion search, by class: requests that are one operation once names (namespaces)
    // are cleared. audit2rbac compares whole attribute records, apiVersion and the user's
    // groups included; RBAC reads neither, so they do not keep two requests apart here.
    let class_of = |r: &Request| {
        (
            r.verb.clone(),
            r.api_group.clone(),
            r.resource.clone(),
            r.subresource.clone(),
            if options.expand_multi_name {
                String::new()
            } else {
                r.name.clone()
            },
            if options.expand_multi_namespace {
                String::new()
            } else {
                r.namespace.clone()
            },
        )
    };
    let mut classes: HashMap<_, (BTreeSet<&str>, BTreeSet<&str>)> = HashMap::new();
    for (r, _) in &sorted {
        if r.resource_request {
            let entry = classes.entry(class_of(r)).or_default();
            if !r.namespace.is_empty() {
                entry.0.insert(&r.namespace);
            }
            if !r.name.is_empty() {
                entry.1.insert(&r.name);
            }
        }
    }

    let mut cluster: Vec<PolicyRule> = Vec::new();
    let mut namespaced: BTreeMap<String, Vec<PolicyRule>> = BTreeMap::new();
    let mut needed: Vec<(&Request, &Vec<String>)> = Vec::new();
    let mut already_allowed = 0;
    // What a group's members already have on their own is not the group's: a group's
    // requests are checked against the existing RBAC as the group alone.
    let as_subject = |r: &Request| match subject {
        SubjectSelector::Group(g) => Request {
            user: UserInfo {
                name: String::new(),
                groups: vec![g.clone(), "system:authenticated".into()],
            },
            ..r.clone()
        },
        SubjectSelector::User(_) => r.clone(),
    };
    for (r, ids) in &sorted {
        if existing.allows(&as_subject(r)) {
            already_allowed += 1;
            continue;
        }
        needed.push((r, ids));
        let generated = cluster.iter().chain(
            namespaced
                .get(&r.namespace)
                .filter(|_| r.resource_request && !r.namespace.is_empty())
                .into_iter()
                .flatten(),
        );
        if generated.clone().any(|rule| rule_allows(r, rule)) {
            continue;
        }
        if !r.resource_request {
            cluster.push(PolicyRule {
                verbs: vec![r.verb.clone()],
                non_resource_urls: vec![r.path.clone()],
                ..PolicyRule::default()
            });
            continue;
        }
        let (mut namespace, mut name) = (r.namespace.clone(), r.name.clone());
        if let Some((namespaces, names)) = classes.get(&class_of(r)) {
            let other = |set: &BTreeSet<&str>, own: &str| set.iter().any(|x| *x != own);
            if options.expand_multi_namespace && other(namespaces, &r.namespace) {
                namespace.clear();
            }
            if options.expand_multi_name && other(names, &r.name) {
                name.clear();
            }
        }
        let mut verbs = vec![r.verb.clone()];
        verbs.extend(
            options
                .verb_expansions
                .get(&r.verb)
                .into_iter()
                .flatten()
                .cloned(),
        );
        verbs.sort();
        verbs.dedup();
        let rule = PolicyRule {
            verbs,
            api_groups: vec![r.api_group.clone()],
            resources: vec![r.combined_resource()],
            resource_names: if name.is_empty() { vec![] } else { vec![name] },
            non_resource_urls: vec![],
        };
        if namespace.is_empty() {
            cluster.push(rule);
        } else {
            namespaced.entry(namespace).or_default().push(rule);
        }
    }

    let (name, labels, annotations) = naming.apply(subject.name());
    let mut roles: Vec<GeneratedRole> = namespaced
        .into_iter()
        .map(|(ns, rules)| GeneratedRole {
            namespace: Some(ns),
            rules: compact_rules(&rules),
            audit_ids: vec![],
        })
        .collect();
    if !cluster.is_empty() {
        roles.push(GeneratedRole {
            namespace: None,
            rules: compact_rules(&cluster),
            audit_ids: vec![],
        });
    }
    // Which auditIDs each final rule stands for: the requests it is the first to allow.
    for role in &mut roles {
        role.audit_ids = vec![Vec::new(); role.rules.len()];
    }
    if options.audit_ids_per_rule > 0 {
        for (r, ids) in &needed {
            let place = roles.iter().enumerate().find_map(|(ri, role)| {
                let applies = match &role.namespace {
                    None => true,
                    Some(ns) => r.resource_request && *ns == r.namespace,
                };
                if !applies {
                    return None;
                }
                role.rules
                    .iter()
                    .position(|rule| rule_allows(r, rule))
                    .map(|i| (ri, i))
            });
            if let Some((ri, i)) = place {
                let list = &mut roles[ri].audit_ids[i];
                for id in ids.iter() {
                    if list.len() < options.audit_ids_per_rule && !list.contains(id) {
                        list.push(id.clone());
                    }
                }
            }
        }
    }
    let bindings = roles
        .iter()
        .map(|r| GeneratedBinding {
            namespace: r.namespace.clone(),
            role_ref: RoleRef {
                api_group: GROUP.into(),
                kind: if r.namespace.is_some() {
                    "Role"
                } else {
                    "ClusterRole"
                }
                .into(),
                name: name.clone(),
            },
        })
        .collect();
    Ok(Generated {
        roles,
        bindings,
        subject: subject.subject(),
        name,
        labels,
        annotations,
        operations: ops.len(),
        already_allowed,
    })
}
