//! What one group of a count holds, as a filter: a table row `alice, 403 — 12` is the
//! requests with user `alice` and code 403, and the page behind the 12 lists exactly those.

use kubetrail_store::{CodeFilter, Field, Filter, ResourceSelector};

/// The exact selector for a resource key as counts write it (`resource[.group][/subresource]`,
/// the core group without a suffix): `pods` is core pods without a subresource, not
/// `pods/status` and not a `pods` resource of another group. `None` for the empty key (a
/// non-resource request).
pub fn resource_of_key(key: &str) -> Option<ResourceSelector> {
    if key.is_empty() {
        return None;
    }
    let (main, sub) = key.split_once('/').unwrap_or((key, ""));
    // Resource names hold no dots: the first dot starts the group.
    let (resource, group) = main.split_once('.').unwrap_or((main, ""));
    Some(ResourceSelector {
        group: Some(group.to_string()),
        resource: Some(resource.to_string()),
        subresource: Some(sub.to_string()),
    })
}

/// The events a group of a count holds: `keys[i]` is the group's value of `fields[i]`.
/// `None` when a key has no filter (a user agent, a stage, a non-resource request, a request
/// without a code).
pub fn group_filter(fields: &[Field], keys: &[String]) -> Option<Filter> {
    let mut f = Filter::default();
    for (field, key) in fields.iter().zip(keys) {
        let one = || vec![key.clone()];
        match field {
            Field::Cluster => f.clusters = one(),
            Field::User => f.users = one(),
            Field::ImpersonatedUser => f.impersonated_users = one(),
            Field::Verb => f.verbs = one(),
            Field::Namespace => f.namespaces = one(),
            Field::Name => f.names = one(),
            Field::SourceIp => f.source_ips = one(),
            Field::Resource => f.resources = vec![resource_of_key(key)?],
            Field::Code => f.codes = vec![key.parse::<CodeFilter>().ok()?],
            Field::Decision => f.decision = Some(key.parse().ok()?),
            _ => return None,
        }
    }
    (fields.len() == keys.len()).then_some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_keys_become_exact_selectors() {
        let key = |k: &str| resource_of_key(k).unwrap();
        assert_eq!(key("pods"), ResourceSelector::core("pods", Some("")));
        assert_eq!(
            key("pods/exec"),
            ResourceSelector::core("pods", Some("exec"))
        );
        assert_eq!(
            key("certificates.cert-manager.io/status"),
            ResourceSelector {
                group: Some("cert-manager.io".into()),
                resource: Some("certificates".into()),
                subresource: Some("status".into()),
            }
        );
        assert_eq!(resource_of_key(""), None);
    }

    #[test]
    fn groups_become_filters_or_none() {
        let keys = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let f = group_filter(&[Field::User, Field::Code], &keys(&["alice", "403"])).unwrap();
        assert_eq!(f.users, ["alice"]);
        assert_eq!(f.codes, [CodeFilter::Exact(403)]);
        assert_eq!(group_filter(&[Field::UserAgent], &keys(&["curl"])), None);
        assert_eq!(group_filter(&[Field::Resource], &keys(&[""])), None);
        assert_eq!(group_filter(&[Field::Code], &keys(&["0"])), None);
        // The empty user is a user: requests without one.
        assert_eq!(
            group_filter(&[Field::User], &keys(&[""])).unwrap().users,
            [""]
        );
    }
}
