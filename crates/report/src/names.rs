//! kubectl's names for resources: a resource in a question may be written as kubectl takes it
//! — plural (`deployments`), singular (`deployment`), short name (`deploy`), kind
//! (`Deployment`), each optionally with its group (`deploy.apps`) and subresource
//! (`po/exec`) — and is resolved here to the plural the audit events record, against the
//! built-in API ([`BUILTIN_RESOURCES`]) and every resource the stored events name. A name
//! that is neither is an error naming the closest known names, never a silent "nothing found".

use kubetrail_model::{ApiResource, BUILTIN_RESOURCES, KNOWN_VERBS};
use std::net::IpAddr;

use ipnet::IpNet;
use kubetrail_store::{
    Aggregation, Field, Filter, GroupCount, ResourceSelector, Result, StageSelection, Store,
};

/// Resolves what a person wrote in `filter` to what the store matches: kubectl's names for
/// resources ([`resolve`]; the resources the stored events name are counted, once and only when
/// a selector does not name a built-in plural) and networks among the source IPs
/// (`10.0.0.0/8`: the stored addresses in them, at most [`MAX_NETWORK_ADDRESSES`]). A verb
/// outside [`KNOWN_VERBS`] (`propfind`) is taken when a stored event has it and is otherwise an
/// error naming the closest: a typo is not an empty answer. `count_by` counts the events of a filter by one field: the local store
/// ([`resolve_in`]), or a server asked over HTTP.
pub fn resolve_filter<E: From<kubetrail_store::Error>>(
    filter: &mut Filter,
    mut count_by: impl FnMut(&Filter, Field) -> std::result::Result<Vec<GroupCount>, E>,
) -> std::result::Result<(), E> {
    if !filter.resources.iter().all(is_builtin_plural) {
        let (all, _) = stored_resources_question();
        let counts = count_by(&all, Field::Resource)?;
        let stored = resources_of_keys(
            counts
                .iter()
                .filter_map(|g| g.keys.first().map(String::as_str)),
        );
        for selector in &mut filter.resources {
            *selector = resolve(selector, &stored).map_err(kubetrail_store::Error::Invalid)?;
        }
    }
    resolve_verbs(filter, &mut count_by)?;
    resolve_networks(filter, count_by)
}

/// Refuses the verbs of `filter` that neither the apiserver records for Kubernetes requests
/// nor any stored event has.
fn resolve_verbs<E: From<kubetrail_store::Error>>(
    filter: &Filter,
    count_by: &mut impl FnMut(&Filter, Field) -> std::result::Result<Vec<GroupCount>, E>,
) -> std::result::Result<(), E> {
    let unusual: Vec<&String> = filter
        .verbs
        .iter()
        .filter(|v| !KNOWN_VERBS.contains(&v.as_str()))
        .collect();
    if unusual.is_empty() {
        return Ok(());
    }
    let (all, _) = stored_resources_question();
    let stored = count_by(&all, Field::Verb)?;
    let stored: Vec<&str> = stored
        .iter()
        .filter_map(|g| g.keys.first().map(String::as_str))
        .collect();
    for v in unusual {
        if stored.contains(&v.as_str()) {
            continue;
        }
        let hint = crate::closest(v, KNOWN_VERBS.iter().copied().chain(stored.iter().copied()))
            .map_or(String::new(), |n| format!(" (did you mean {n:?}?)"));
        return Err(kubetrail_store::Error::Invalid(format!(
            "unknown verb {v:?}: no stored event has it{hint}; the Kubernetes verbs are {}",
            KNOWN_VERBS.join(", ")
        ))
        .into());
    }
    Ok(())
}

/// [`resolve_filter`] over a local store.
pub fn resolve_in(store: &dyn Store, filter: &mut Filter) -> Result<()> {
    resolve_filter(filter, |f, field| count_in(store, f, field))
}

/// The events of `filter` in `store` counted by `field`, every group, largest first.
pub fn count_in(store: &dyn Store, filter: &Filter, field: Field) -> Result<Vec<GroupCount>> {
    Ok(store
        .aggregate(
            filter,
            &Aggregation::CountBy {
                fields: vec![field],
                limit: None,
            },
        )?
        .groups()
        .to_vec())
}

/// How long a server keeps the resources its store names before counting them again.
pub const RESOURCE_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// The resources a store's events name, counted at most once per [`RESOURCE_CACHE_TTL`]: a
/// server resolving custom resources' names on every request and page does not count every
/// stored event each time (a resource first stored within the last minute may be refused
/// until then).
#[derive(Debug, Default)]
pub struct ResourceCache(std::sync::Mutex<Option<(std::time::Instant, Vec<GroupCount>)>>);

/// [`resolve_in`], the stored resources read through `cache`.
pub fn resolve_cached(store: &dyn Store, cache: &ResourceCache, filter: &mut Filter) -> Result<()> {
    resolve_filter(filter, |f, field| {
        if field != Field::Resource {
            return count_in(store, f, field);
        }
        let mut cached = cache.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, counts)) = cached.as_ref()
            && at.elapsed() < RESOURCE_CACHE_TTL
        {
            return Ok(counts.clone());
        }
        let counts = count_in(store, f, field)?;
        *cached = Some((std::time::Instant::now(), counts.clone()));
        Ok(counts)
    })
}

/// For an answer that came back empty: each cluster, user (authenticated, impersonated or
/// either) and namespace of `filter` that no stored event has (in any time range), as `no events from user "alcie" — did you mean
/// "alice"?`. A typo then says so instead of passing for "nobody did that".
pub fn never_seen<E>(
    filter: &Filter,
    mut count_by: impl FnMut(&Filter, Field) -> std::result::Result<Vec<GroupCount>, E>,
) -> std::result::Result<Vec<String>, E> {
    let (all, _) = stored_resources_question();
    let mut hints = Vec::new();
    for (fields, what, given) in [
        (&[Field::Cluster][..], "cluster", &filter.clusters),
        (&[Field::User], "user", &filter.users),
        (
            &[Field::User, Field::ImpersonatedUser],
            "user",
            &filter.identities,
        ),
        (
            &[Field::ImpersonatedUser],
            "impersonated user",
            &filter.impersonated_users,
        ),
        (&[Field::Namespace], "namespace", &filter.namespaces),
    ] {
        // The empty name (no user, cluster-scoped) is not a typo.
        let given: Vec<&String> = given.iter().filter(|g| !g.is_empty()).collect();
        if given.is_empty() {
            continue;
        }
        let mut counted = Vec::new();
        for field in fields {
            counted.extend(count_by(&all, *field)?);
        }
        let known: Vec<&str> = counted
            .iter()
            .filter_map(|g| g.keys.first().map(String::as_str))
            .filter(|k| !k.is_empty())
            .collect();
        for g in given {
            if known.contains(&g.as_str()) {
                continue;
            }
            let hint = crate::closest(g, known.iter().copied())
                .map_or(String::new(), |n| format!(" — did you mean {n:?}?"));
            hints.push(format!("no events from {what} {g:?} in the store{hint}"));
        }
    }
    Ok(hints)
}

/// The most stored addresses a network in a source-IP filter may stand for.
pub const MAX_NETWORK_ADDRESSES: usize = 1000;

/// Networks among `filter`'s source IPs replaced by the stored addresses in them (in the rest
/// of the filter's scope). A network no stored address is in stays as written, which no
/// address equals: the answer is empty, as it should be.
fn resolve_networks<E: From<kubetrail_store::Error>>(
    filter: &mut Filter,
    mut count_by: impl FnMut(&Filter, Field) -> std::result::Result<Vec<GroupCount>, E>,
) -> std::result::Result<(), E> {
    let mut networks = Vec::new();
    let mut addresses = Vec::new();
    for v in &filter.source_ips {
        if v.contains('/') {
            let net: IpNet = v.parse().map_err(|e| {
                kubetrail_store::Error::Invalid(format!(
                    "invalid network {v:?} in the source IPs: {e} (expected e.g. 10.0.0.0/8 or fd00::/8)"
                ))
            })?;
            networks.push(net);
        } else {
            addresses.push(v.clone());
        }
    }
    if networks.is_empty() {
        return Ok(());
    }
    let scope = Filter {
        source_ips: Vec::new(),
        ..filter.clone()
    };
    let mut inside = 0;
    for g in count_by(&scope, Field::SourceIp)? {
        let Some(key) = g.keys.first() else { continue };
        let Ok(addr) = key.parse::<IpAddr>() else {
            continue;
        };
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        if networks.iter().any(|n| n.contains(&addr)) {
            inside += 1;
            addresses.push(key.clone());
        }
    }
    if inside > MAX_NETWORK_ADDRESSES {
        return Err(kubetrail_store::Error::Invalid(format!(
            "the source networks {} hold {inside} stored addresses in this range: at most {MAX_NETWORK_ADDRESSES}; narrow the network or the time range",
            networks.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        ))
        .into());
    }
    if inside == 0 {
        addresses.extend(networks.iter().map(ToString::to_string));
    }
    filter.source_ips = addresses;
    Ok(())
}

/// Whether `s` names a plural of the built-in API (or every resource).
fn is_builtin_plural(s: &ResourceSelector) -> bool {
    let Some(name) = s.resource.as_deref() else {
        return true;
    };
    BUILTIN_RESOURCES
        .iter()
        .any(|r| r.resource == name && in_group(r, s.group.as_deref()))
}

/// Whether `r` is in `group` (`None`: any group).
fn in_group(r: &ApiResource, group: Option<&str>) -> bool {
    group.is_none_or(|g| r.group == g)
}

/// One selector resolved: kept as given when it names a built-in plural or a resource the
/// stored events name; otherwise a singular, short name or kind of the built-in API becomes
/// its plural (in its group when only one group has the name); otherwise an error.
pub fn resolve(
    given: &ResourceSelector,
    stored: &[ResourceSelector],
) -> std::result::Result<ResourceSelector, String> {
    let Some(name) = given.resource.as_deref() else {
        return Ok(given.clone());
    };
    if is_builtin_plural(given) {
        return Ok(given.clone());
    }
    let group = given.group.as_deref();
    let is_stored = |n: &str| {
        stored.iter().any(|s| {
            s.resource.as_deref() == Some(n) && (group.is_none() || s.group.as_deref() == group)
        })
    };
    if is_stored(name) {
        return Ok(given.clone());
    }
    let lower = name.to_ascii_lowercase();
    let aliases: Vec<&ApiResource> = BUILTIN_RESOURCES
        .iter()
        .filter(|r| in_group(r, group))
        .filter(|r| {
            r.singular == lower
                || r.short_names.contains(&lower.as_str())
                || r.kind.eq_ignore_ascii_case(&lower)
        })
        .collect();
    if let Some(first) = aliases.first() {
        let same_plural: Vec<&&ApiResource> = aliases
            .iter()
            .filter(|r| r.resource == first.resource)
            .collect();
        // In its group, unless the name is in several, or the stored events have the plural
        // in another group too (deployments of `extensions` from older clusters).
        let elsewhere = |g: &str| {
            stored.iter().any(|s| {
                s.resource.as_deref() == Some(first.resource) && s.group.as_deref() != Some(g)
            })
        };
        let group = match (group, same_plural.as_slice()) {
            (Some(g), _) => Some(g.to_string()),
            (None, [only]) if !elsewhere(only.group) => Some(only.group.to_string()),
            (None, _) => None,
        };
        return Ok(ResourceSelector {
            group,
            resource: Some(first.resource.to_string()),
            subresource: given.subresource.clone(),
        });
    }
    // The closest plural, else the closest other name kubectl takes.
    let plurals = BUILTIN_RESOURCES
        .iter()
        .map(|r| r.resource)
        .chain(stored.iter().filter_map(|s| s.resource.as_deref()));
    let others = BUILTIN_RESOURCES.iter().flat_map(|r| {
        [r.singular]
            .into_iter()
            .chain(r.short_names.iter().copied())
    });
    let hint = crate::closest(&lower, plurals)
        .or_else(|| crate::closest(&lower, others))
        .map_or(String::new(), |n| format!("; did you mean {n:?}?"));
    let written = match group {
        Some(g) => format!("{name}.{}", if g.is_empty() { "core" } else { g }),
        None => name.to_string(),
    };
    Err(format!(
        "unknown resource {written:?}: not a resource of the built-in API (as kubectl names them: plural, singular, short name or kind) nor one the stored events name{hint}"
    ))
}

/// The resources the keys of a count by [`Field::Resource`] name.
pub fn resources_of_keys<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<ResourceSelector> {
    keys.into_iter()
        .filter_map(crate::resource_of_key)
        .collect()
}

/// What a count of every stored request by resource asks ([`resources_of_keys`] reads its
/// keys): the resources the stored events name.
pub fn stored_resources_question() -> (Filter, Aggregation) {
    (
        Filter {
            stages: StageSelection::Final,
            ..Filter::default()
        },
        Aggregation::CountBy {
            fields: vec![Field::Resource],
            limit: None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(given: &str, stored: &[&str]) -> std::result::Result<String, String> {
        let stored = resources_of_keys(stored.iter().copied());
        let r = resolve(&ResourceSelector::parse_any_case(given)?, &stored)?;
        Ok(kubetrail_api_text(&r))
    }

    /// `resource[.group][/sub]`, `*` for any group, as the tests compare them.
    fn kubetrail_api_text(r: &ResourceSelector) -> String {
        format!(
            "{}.{}/{}",
            r.resource.as_deref().unwrap_or("*"),
            r.group
                .as_deref()
                .map_or("*", |g| if g.is_empty() { "core" } else { g }),
            r.subresource.as_deref().unwrap_or("*")
        )
    }

    #[test]
    fn kubectl_names_become_the_plural_in_its_group() {
        assert_eq!(resolved("deploy", &[]).unwrap(), "deployments.apps/*");
        assert_eq!(resolved("deployment", &[]).unwrap(), "deployments.apps/*");
        assert_eq!(resolved("Deployment", &[]).unwrap(), "deployments.apps/*");
        assert_eq!(
            resolved("deploy.apps/scale", &[]).unwrap(),
            "deployments.apps/scale"
        );
        assert_eq!(resolved("po", &[]).unwrap(), "pods.core/*");
        assert_eq!(resolved("po/exec", &[]).unwrap(), "pods.core/exec");
        assert_eq!(
            resolved("crds", &[]).unwrap(),
            "customresourcedefinitions.apiextensions.k8s.io/*"
        );
        assert_eq!(
            resolved("ClusterRoleBinding", &[]).unwrap(),
            "clusterrolebindings.rbac.authorization.k8s.io/*"
        );
        // Two groups name it: the plural, in either.
        assert_eq!(resolved("ev", &[]).unwrap(), "events.*/*");
        assert_eq!(
            resolved("event.events.k8s.io", &[]).unwrap(),
            "events.events.k8s.io/*"
        );
    }

    #[test]
    fn plurals_and_stored_names_are_kept_as_given() {
        // A bare plural matches it in any group, as before.
        assert_eq!(resolved("pods", &[]).unwrap(), "pods.*/*");
        assert_eq!(
            resolved("deployments.apps", &[]).unwrap(),
            "deployments.apps/*"
        );
        // A custom resource the events name.
        let stored = ["certificates.cert-manager.io", "pods/exec"];
        assert_eq!(
            resolved("certificates", &stored).unwrap(),
            "certificates.*/*"
        );
        assert_eq!(
            resolved("certificates.cert-manager.io/status", &stored).unwrap(),
            "certificates.cert-manager.io/status"
        );
        // A stored plural wins over a built-in short name (as discovery would have it).
        assert_eq!(resolved("sa", &["sa.example.com"]).unwrap(), "sa.*/*");
    }

    #[test]
    fn unknown_names_are_errors_with_the_closest() {
        let e = resolved("podz", &[]).unwrap_err();
        assert!(
            e.contains(r#"unknown resource "podz""#) && e.contains(r#"did you mean "pods"?"#),
            "{e}"
        );
        let e = resolved("deploymnets", &[]).unwrap_err();
        assert!(e.contains(r#"did you mean "deployments"?"#), "{e}");
        let e = resolved("certificate", &["certificates.cert-manager.io"]).unwrap_err();
        assert!(e.contains(r#"did you mean "certificates"?"#), "{e}");
        // A group that does not have it.
        let e = resolved("deploy.batch", &[]).unwrap_err();
        assert!(e.contains(r#""deploy.batch""#), "{e}");
        assert!(
            resolved("zzzzzzzz", &[])
                .unwrap_err()
                .ends_with("stored events name")
        );
    }

    #[test]
    fn the_store_is_asked_only_for_names_that_are_not_built_in_plurals() {
        let mut f = Filter {
            resources: vec![
                "pods".parse().unwrap(),
                "deployments.apps/scale".parse().unwrap(),
            ],
            ..Filter::default()
        };
        resolve_filter(&mut f, |_, _| -> Result<_> { panic!("not asked") }).unwrap();
        f.resources
            .push(ResourceSelector::parse_any_case("deploy").unwrap());
        let mut asked = Vec::new();
        resolve_filter(&mut f, |_, field| -> Result<_> {
            asked.push(field);
            Ok(Vec::new())
        })
        .unwrap();
        assert_eq!(asked, [Field::Resource]);
        assert_eq!(f.resources[2].group.as_deref(), Some("apps"));
        f.resources
            .push(ResourceSelector::parse_any_case("podz").unwrap());
        let e = resolve_filter(&mut f, |_, _| -> Result<_> { Ok(Vec::new()) }).unwrap_err();
        assert_eq!(e.kind(), kubetrail_store::ErrorKind::Invalid);
    }

    fn counts(keys: &[&str]) -> Vec<GroupCount> {
        keys.iter()
            .map(|k| GroupCount {
                keys: vec![k.to_string()],
                count: 1,
            })
            .collect()
    }

    #[test]
    fn networks_become_the_stored_addresses_in_them() {
        let stored = [
            "10.0.0.7",
            "10.200.1.1",
            "192.168.1.5",
            "::ffff:10.9.9.9",
            "2001:db8::1",
            "bogus",
        ];
        let run = |ips: &[&str]| {
            let mut f = Filter {
                source_ips: ips.iter().map(|s| s.to_string()).collect(),
                namespaces: vec!["prod".into()],
                ..Filter::default()
            };
            resolve_filter(&mut f, |scope, field| -> Result<_> {
                assert_eq!(field, Field::SourceIp);
                assert!(scope.source_ips.is_empty() && scope.namespaces == ["prod"]);
                Ok(counts(&stored))
            })
            .map(|()| f.source_ips)
        };
        assert_eq!(
            run(&["10.0.0.0/8"]).unwrap(),
            ["10.0.0.7", "10.200.1.1", "::ffff:10.9.9.9"]
        );
        assert_eq!(
            run(&["1.2.3.4", "2001:db8::/32"]).unwrap(),
            ["1.2.3.4", "2001:db8::1"]
        );
        // Nothing stored inside: the network as written, which nothing equals.
        assert_eq!(run(&["172.16.0.0/12"]).unwrap(), ["172.16.0.0/12"]);
        let e = run(&["10.0.0.0/33"]).unwrap_err();
        assert!(
            e.to_string().contains("invalid network \"10.0.0.0/33\""),
            "{e}"
        );
        // Plain addresses ask nothing.
        let mut f = Filter {
            source_ips: vec!["10.0.0.7".into()],
            ..Filter::default()
        };
        resolve_filter(&mut f, |_, _| -> Result<_> { panic!("not asked") }).unwrap();
    }

    #[test]
    fn unusual_verbs_are_taken_when_stored_and_refused_with_the_closest_otherwise() {
        let run = |verbs: &[&str]| {
            let mut f = Filter {
                verbs: verbs.iter().map(|s| s.to_string()).collect(),
                ..Filter::default()
            };
            let mut asked = 0;
            let r = resolve_filter(&mut f, |scope, field| -> Result<_> {
                assert_eq!(field, Field::Verb);
                assert!(scope.verbs.is_empty());
                asked += 1;
                Ok(counts(&["get", "list", "propfind"]))
            });
            (r.map_err(|e| e.to_string()), asked)
        };
        assert_eq!(run(&["get", "deletecollection"]), (Ok(()), 0));
        assert_eq!(run(&["get", "propfind"]), (Ok(()), 1));
        let (e, _) = run(&["lsit"]);
        let e = e.unwrap_err();
        assert!(
            e.contains(r#"unknown verb "lsit": no stored event has it (did you mean "list"?)"#),
            "{e}"
        );
    }

    #[test]
    fn names_nobody_has_get_a_hint() {
        let f = Filter {
            users: vec!["alcie".into(), "bob".into(), String::new()],
            // carol only ever was impersonated: not a typo when either identity is asked.
            identities: vec!["carol".into(), "carl".into()],
            namespaces: vec!["prod".into()],
            clusters: vec!["zzzz".into()],
            ..Filter::default()
        };
        let hints = never_seen(&f, |scope, field| -> Result<_> {
            assert!(scope.users.is_empty() && scope.time.from_micros.is_none());
            Ok(counts(match field {
                Field::User => &["alice", "bob", ""],
                Field::ImpersonatedUser => &["carol", ""],
                Field::Namespace => &["prod", "dev"],
                Field::Cluster => &["prod-eu", "dev"],
                _ => unreachable!(),
            }))
        })
        .unwrap();
        assert_eq!(
            hints,
            [
                r#"no events from cluster "zzzz" in the store"#,
                r#"no events from user "alcie" in the store — did you mean "alice"?"#,
                r#"no events from user "carl" in the store — did you mean "carol"?"#,
            ]
        );
    }

    #[test]
    fn the_cache_counts_the_stored_resources_once_a_minute() {
        use kubetrail_testsuite::conformance::{T0, record};
        let store = kubetrail_store_duckdb::DuckDbStore::open_in_memory().unwrap();
        let crd = |id: &str, resource: &str| {
            let mut r = record("c1", id, Some(kubetrail_model::Stage::ResponseComplete), T0);
            r.api_group = "cert-manager.io".into();
            r.resource = resource.into();
            r
        };
        store.append(&[crd("a", "certificates")]).unwrap();
        let cache = ResourceCache::default();
        let ask = |name: &str, cache: &ResourceCache| {
            let mut f = Filter {
                resources: vec![ResourceSelector::parse_any_case(name).unwrap()],
                ..Filter::default()
            };
            resolve_cached(&store, cache, &mut f).map(|()| f.resources[0].clone())
        };
        assert!(ask("certificates", &cache).is_ok());
        // Stored after the count: the cached answer does not know it yet, a new count does.
        store.append(&[crd("b", "issuers")]).unwrap();
        let e = ask("issuers", &cache).unwrap_err();
        assert!(
            e.to_string().contains(r#"unknown resource "issuers""#),
            "{e}"
        );
        assert!(ask("issuers", &ResourceCache::default()).is_ok());
        assert!(ask("issuers", &cache).is_err(), "still the cached count");
    }

    #[test]
    fn a_network_holding_too_many_addresses_is_refused() {
        let many: Vec<String> = (0..=MAX_NETWORK_ADDRESSES)
            .map(|i| format!("10.1.{}.{}", i / 256, i % 256))
            .collect();
        let mut f = Filter {
            source_ips: vec!["10.0.0.0/8".into()],
            ..Filter::default()
        };
        let e = resolve_filter(&mut f, |_, _| -> Result<_> {
            Ok(counts(&many.iter().map(String::as_str).collect::<Vec<_>>()))
        })
        .unwrap_err();
        assert!(e.to_string().contains("hold 1001 stored addresses"), "{e}");
    }
}
