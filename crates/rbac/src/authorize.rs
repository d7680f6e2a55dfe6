//! Kubernetes' RBAC authorizer, written from `plugin/pkg/auth/authorizer/rbac` and
//! `pkg/apis/rbac/v1/evaluation_helpers.go`: `RuleAllows`, which bindings apply to a user
//! (`appliesTo`), which rules a binding brings (`GetRoleReferenceRules`), and aggregated
//! ClusterRoles resolved through their `aggregationRule`.

use std::collections::{BTreeSet, HashMap};

use crate::objects::{Binding, PolicyRule, RbacObjects, Role, Subject};
use crate::request::{Request, UserInfo};

/// Whether `rule` allows `request` (`RuleAllows`).
pub fn rule_allows(request: &Request, rule: &PolicyRule) -> bool {
    if request.resource_request {
        rule_allows_resource(
            rule,
            &request.verb,
            &request.api_group,
            &request.resource,
            &request.subresource,
            &request.name,
        )
    } else {
        rule_allows_nonresource(rule, &request.verb, &request.path)
    }
}

/// `RuleAllows` for a resource request.
pub fn rule_allows_resource(
    rule: &PolicyRule,
    verb: &str,
    group: &str,
    resource: &str,
    subresource: &str,
    name: &str,
) -> bool {
    verb_matches(rule, verb)
        && rule.api_groups.iter().any(|g| g == "*" || g == group)
        && resource_matches(rule, resource, subresource)
        && (rule.resource_names.is_empty() || rule.resource_names.iter().any(|n| n == name))
}

/// `RuleAllows` for a non-resource request: `*`, the exact path, or a `prefix*`.
pub fn rule_allows_nonresource(rule: &PolicyRule, verb: &str, path: &str) -> bool {
    verb_matches(rule, verb) && rule.non_resource_urls.iter().any(|u| url_matches(u, path))
}

/// One rule URL against a path: `*`, the exact path, or a `prefix*`.
pub(crate) fn url_matches(rule_url: &str, path: &str) -> bool {
    rule_url == "*"
        || rule_url == path
        || (rule_url.ends_with('*') && path.starts_with(rule_url.trim_end_matches('*')))
}

fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == "*" || v == verb)
}

/// `ResourceMatches`: `*`, the exact `resource[/subresource]`, or `*/subresource`.
fn resource_matches(rule: &PolicyRule, resource: &str, subresource: &str) -> bool {
    rule.resources
        .iter()
        .any(|r| resource_matches_one(r, resource, subresource))
}

/// One rule resource against `resource[/subresource]`: `*`, the exact combination, or
/// `*/subresource`.
pub(crate) fn resource_matches_one(rule_resource: &str, resource: &str, subresource: &str) -> bool {
    if rule_resource == "*" {
        return true;
    }
    if subresource.is_empty() {
        return rule_resource == resource;
    }
    rule_resource
        .strip_prefix(resource)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|s| s == subresource)
        || rule_resource
            .strip_prefix("*/")
            .is_some_and(|s| s == subresource)
}

/// Whether `subject` names `user` (`appliesTo`); `namespace` is the binding's namespace, which a
/// ServiceAccount subject without a namespace defaults to.
pub fn subject_applies(subject: &Subject, user: &UserInfo, namespace: &str) -> bool {
    match subject.kind.as_str() {
        "User" => user.name == subject.name,
        "Group" => user.groups.contains(&subject.name),
        "ServiceAccount" => {
            let ns = if subject.namespace.is_empty() {
                namespace
            } else {
                &subject.namespace
            };
            !ns.is_empty()
                && user
                    .name
                    .strip_prefix("system:serviceaccount:")
                    .and_then(|rest| rest.split_once(':'))
                    .is_some_and(|(n, name)| n == ns && name == subject.name)
        }
        _ => false,
    }
}

/// A snapshot's RBAC, indexed for evaluation.
#[derive(Debug, Clone, Default)]
pub struct Authorizer {
    /// ClusterRole rules by name, aggregation resolved.
    cluster_roles: HashMap<String, Vec<PolicyRule>>,
    /// Role rules by (namespace, name).
    roles: HashMap<(String, String), Vec<PolicyRule>>,
    cluster_bindings: Vec<Binding>,
    role_bindings: HashMap<String, Vec<Binding>>,
}

impl Authorizer {
    /// Indexes `objects`.
    pub fn new(objects: &RbacObjects) -> Authorizer {
        let mut role_bindings: HashMap<String, Vec<Binding>> = HashMap::new();
        for b in &objects.role_bindings {
            role_bindings
                .entry(b.metadata.namespace.clone())
                .or_default()
                .push(b.clone());
        }
        Authorizer {
            cluster_roles: resolve_aggregation(&objects.cluster_roles),
            roles: objects
                .roles
                .iter()
                .map(|r| {
                    (
                        (r.metadata.namespace.clone(), r.metadata.name.clone()),
                        r.rules.clone(),
                    )
                })
                .collect(),
            cluster_bindings: objects.cluster_role_bindings.clone(),
            role_bindings,
        }
    }

    /// Whether RBAC allows `request` for its user.
    pub fn allows(&self, request: &Request) -> bool {
        let mut allowed = false;
        self.visit(&request.user, &request.namespace, |_, rules| {
            allowed = rules.iter().any(|r| rule_allows(request, r));
            !allowed
        });
        allowed
    }

    /// Visits the bindings that apply to `user` for a request in `namespace` (cluster role
    /// bindings, then the namespace's role bindings) with the rules each brings, until `visit`
    /// answers false. A binding to a role that does not exist brings no rules.
    pub fn visit(
        &self,
        user: &UserInfo,
        namespace: &str,
        mut visit: impl FnMut(&Binding, &[PolicyRule]) -> bool,
    ) {
        for b in &self.cluster_bindings {
            if b.subjects.iter().any(|s| subject_applies(s, user, ""))
                && !visit(b, self.role_rules(b, ""))
            {
                return;
            }
        }
        if namespace.is_empty() {
            return;
        }
        for b in self.role_bindings.get(namespace).into_iter().flatten() {
            if b.subjects
                .iter()
                .any(|s| subject_applies(s, user, namespace))
                && !visit(b, self.role_rules(b, namespace))
            {
                return;
            }
        }
    }

    /// The rules `binding`'s roleRef brings (`GetRoleReferenceRules`).
    pub fn role_rules(&self, binding: &Binding, namespace: &str) -> &[PolicyRule] {
        let name = &binding.role_ref.name;
        let rules = match binding.role_ref.kind.as_str() {
            "ClusterRole" => self.cluster_roles.get(name),
            "Role" => self.roles.get(&(namespace.to_string(), name.clone())),
            _ => None,
        };
        rules.map_or(&[], Vec::as_slice)
    }

    /// Every binding: cluster role bindings, then role bindings by namespace.
    pub fn bindings(&self) -> impl Iterator<Item = &Binding> {
        let mut namespaces: Vec<&String> = self.role_bindings.keys().collect();
        namespaces.sort();
        self.cluster_bindings.iter().chain(
            namespaces
                .into_iter()
                .flat_map(|ns| self.role_bindings[ns].iter()),
        )
    }
}

/// ClusterRole rules by name. An aggregated role's rules are what the aggregation controller
/// keeps there: those of every other ClusterRole its selectors pick (an empty selector picks
/// every one), in name order, in place of its own stored rules; a picked role that is itself
/// aggregated brings its resolved rules (the fixed point the controller reaches, so a snapshot
/// whose aggregated `rules` were never filled in still resolves).
fn resolve_aggregation(roles: &[Role]) -> HashMap<String, Vec<PolicyRule>> {
    let by_name: HashMap<&str, &Role> = roles
        .iter()
        .map(|r| (r.metadata.name.as_str(), r))
        .collect();
    fn resolve<'r>(
        role: &'r Role,
        roles: &'r [Role],
        by_name: &HashMap<&str, &'r Role>,
        visiting: &mut BTreeSet<&'r str>,
        out: &mut Vec<PolicyRule>,
    ) {
        let Some(agg) = &role.aggregation_rule else {
            for rule in &role.rules {
                if !out.contains(rule) {
                    out.push(rule.clone());
                }
            }
            return;
        };
        if !visiting.insert(role.metadata.name.as_str()) {
            return;
        }
        let mut picked: Vec<&Role> = roles
            .iter()
            .filter(|other| {
                other.metadata.name != role.metadata.name
                    && agg
                        .cluster_role_selectors
                        .iter()
                        .any(|s| s.matches(&other.metadata.labels))
            })
            .collect();
        picked.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        for p in picked {
            if let Some(p) = by_name.get(p.metadata.name.as_str()) {
                resolve(p, roles, by_name, visiting, out);
            }
        }
        visiting.remove(role.metadata.name.as_str());
    }
    roles
        .iter()
        .map(|role| {
            let mut rules = Vec::new();
            resolve(role, roles, &by_name, &mut BTreeSet::new(), &mut rules);
            (role.metadata.name.clone(), rules)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> PolicyRule {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
        PolicyRule {
            verbs: v(verbs),
            api_groups: v(groups),
            resources: v(resources),
            resource_names: v(names),
            non_resource_urls: vec![],
        }
    }

    fn req(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Request {
        Request {
            verb: verb.into(),
            resource_request: true,
            api_group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            ..Request::default()
        }
    }

    #[test]
    fn rule_allows_matches_kubernetes_wildcards() {
        let exec_any = rule(&["create"], &[""], &["*/exec"], &[]);
        assert!(rule_allows(
            &req("create", "", "pods", "exec", "p"),
            &exec_any
        ));
        assert!(!rule_allows(&req("create", "", "pods", "", "p"), &exec_any));
        let pods = rule(&["get"], &[""], &["pods"], &[]);
        assert!(!rule_allows(&req("get", "", "pods", "log", "p"), &pods));
        let pods_log = rule(&["get"], &[""], &["pods/log"], &["p"]);
        assert!(rule_allows(&req("get", "", "pods", "log", "p"), &pods_log));
        assert!(!rule_allows(&req("get", "", "pods", "log", "q"), &pods_log));
        assert!(!rule_allows(
            &req("get", "apps", "pods", "log", "p"),
            &pods_log
        ));
        let all = rule(&["*"], &["*"], &["*"], &[]);
        assert!(rule_allows(
            &req("escalate", "rbac.authorization.k8s.io", "roles", "", "x"),
            &all
        ));
        let urls = PolicyRule {
            verbs: vec!["get".into()],
            non_resource_urls: vec!["/healthz".into(), "/api/*".into()],
            ..PolicyRule::default()
        };
        let nr = |path: &str| Request {
            verb: "get".into(),
            path: path.into(),
            ..Request::default()
        };
        assert!(rule_allows(&nr("/healthz"), &urls));
        assert!(!rule_allows(&nr("/healthz/etcd"), &urls));
        assert!(rule_allows(&nr("/api/v1"), &urls));
        assert!(!rule_allows(&nr("/api"), &urls));
        assert!(!rule_allows(&req("get", "", "healthz", "", ""), &urls));
    }

    #[test]
    fn aggregated_roles_take_the_picked_roles_rules_in_place_of_their_own() {
        let mut objects = RbacObjects::default();
        objects
            .read(
                "x.yaml",
                "kind: ClusterRole\nmetadata: {name: agg}\naggregationRule: {clusterRoleSelectors: [{matchLabels: {a: b}}]}\nrules: [{apiGroups: [''], resources: [stale], verbs: [get]}]\n---\nkind: ClusterRole\nmetadata: {name: part, labels: {a: b}}\nrules: [{apiGroups: [''], resources: [pods], verbs: [get]}]\n---\nkind: ClusterRole\nmetadata: {name: all}\naggregationRule: {clusterRoleSelectors: [{}]}\n---\nkind: ClusterRole\nmetadata: {name: admin}\nrules: [{apiGroups: ['*'], resources: ['*'], verbs: ['*']}]\n",
            )
            .unwrap();
        let a = Authorizer::new(&objects);
        let resources = |name: &str| -> Vec<String> {
            a.cluster_roles[name]
                .iter()
                .flat_map(|r| r.resources.clone())
                .collect()
        };
        assert_eq!(
            resources("agg"),
            vec!["pods"],
            "the stale own rule is replaced"
        );
        // An empty selector picks every other ClusterRole, cluster-admin's rules included.
        assert!(
            resources("all").contains(&"*".to_string()),
            "{:?}",
            resources("all")
        );
        assert!(resources("all").contains(&"pods".to_string()));
    }

    #[test]
    fn service_account_subjects_default_to_the_binding_namespace() {
        let sa = Subject {
            kind: "ServiceAccount".into(),
            api_group: String::new(),
            name: "sa1".into(),
            namespace: String::new(),
        };
        let user = UserInfo {
            name: "system:serviceaccount:ns1:sa1".into(),
            groups: vec![],
        };
        assert!(subject_applies(&sa, &user, "ns1"));
        assert!(!subject_applies(&sa, &user, "ns2"));
        assert!(!subject_applies(&sa, &user, ""));
        assert!(subject_applies(
            &Subject::service_account("ns1", "sa1"),
            &user,
            ""
        ));
        assert!(!subject_applies(&Subject::user("sa1"), &user, ""));
    }
}
