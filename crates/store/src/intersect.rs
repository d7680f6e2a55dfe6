//! What two filters select together, as one filter: a report narrows the reader's scope
//! (cluster, namespace, user, time) with its own conditions (failed codes, exec subresources,
//! anonymous users), and the page that lists a count's events must ask exactly what was
//! counted. The store answers `scope AND section` in one scan ([`crate::Aggregation::Sections`]);
//! [`Filter::and`] writes that same question as a filter a link or a query can carry.

use crate::{CodeFilter, Filter, ResourceSelector, StageSelection, TimeRange};

/// Why two filters have no single filter for what they select together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0} cannot be narrowed by another list of {0}: an event matches both with two different values"
)]
pub struct Unrepresentable(pub &'static str);

impl Filter {
    /// The filter for the events both `self` and `other` select; `None` when no event can
    /// match both (`user=alice` and the anonymous users). Exact: an event matches the answer if
    /// and only if it matches both filters. Fields an event holds one value of (user, verb,
    /// code, resource...) intersect; the user's groups, of which an event holds many, and the
    /// text search only combine when one side leaves them open or both ask the same.
    pub fn and(&self, other: &Filter) -> Result<Option<Filter>, Unrepresentable> {
        let Some(time) = and_time(self.time, other.time) else {
            return Ok(None);
        };
        let decision = match (self.decision, other.decision) {
            (Some(a), Some(b)) if a != b => return Ok(None),
            (a, b) => a.or(b),
        };
        let text = match (&self.text, &other.text) {
            (Some(a), Some(b)) if a != b => return Err(Unrepresentable("text searches")),
            (a, b) => a.clone().or_else(|| b.clone()),
        };
        let groups = match (self.groups.as_slice(), other.groups.as_slice()) {
            ([], g) | (g, []) => g.to_vec(),
            (a, b) if same_set(a, b) => a.to_vec(),
            _ => return Err(Unrepresentable("groups")),
        };
        // An event has two identities: alice-or-bob and bob-or-carol is not one list.
        let identities = match (self.identities.as_slice(), other.identities.as_slice()) {
            ([], i) | (i, []) => i.to_vec(),
            (a, b) if same_set(a, b) => a.to_vec(),
            _ => return Err(Unrepresentable("identities")),
        };
        let strings =
            |a: &[String], b: &[String]| and_list(a, b, |x, y| (x == y).then(|| x.clone()));
        let (
            Some(clusters),
            Some(users),
            Some(impersonated_users),
            Some(verbs),
            Some(namespaces),
            Some(names),
            Some(audit_ids),
            Some(source_ips),
            Some(resources),
            Some(codes),
        ) = (
            strings(&self.clusters, &other.clusters),
            strings(&self.users, &other.users),
            strings(&self.impersonated_users, &other.impersonated_users),
            strings(&self.verbs, &other.verbs),
            strings(&self.namespaces, &other.namespaces),
            strings(&self.names, &other.names),
            strings(&self.audit_ids, &other.audit_ids),
            strings(&self.source_ips, &other.source_ips),
            and_list(&self.resources, &other.resources, and_resource),
            and_list(&self.codes, &other.codes, and_code),
        )
        else {
            return Ok(None);
        };
        let stages =
            if self.stages == StageSelection::Final || other.stages == StageSelection::Final {
                StageSelection::Final
            } else {
                StageSelection::All
            };
        // Left out by either: left out of both.
        let mut excluded_users = self.excluded_users.clone();
        for u in &other.excluded_users {
            if !excluded_users.contains(u) {
                excluded_users.push(u.clone());
            }
        }
        Ok(Some(Filter {
            time,
            clusters,
            users,
            identities,
            excluded_users,
            impersonated_users,
            groups,
            verbs,
            resources,
            namespaces,
            names,
            audit_ids,
            source_ips,
            codes,
            decision,
            text,
            stages,
        }))
    }
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.iter().all(|x| b.contains(x)) && b.iter().all(|x| a.contains(x))
}

/// `[from, to)` of both; `None` when empty.
fn and_time(a: TimeRange, b: TimeRange) -> Option<TimeRange> {
    let pick = |x: Option<i64>, y: Option<i64>, f: fn(i64, i64) -> i64| match (x, y) {
        (Some(x), Some(y)) => Some(f(x, y)),
        (x, y) => x.or(y),
    };
    let t = TimeRange {
        from_micros: pick(a.from_micros, b.from_micros, i64::max),
        to_micros: pick(a.to_micros, b.to_micros, i64::min),
    };
    match (t.from_micros, t.to_micros) {
        (Some(f), Some(to)) if f >= to => None,
        _ => Some(t),
    }
}

/// Two OR-lists ANDed: an empty list is no condition; otherwise the pairwise meets that can
/// match something, without repeats. `None` when no pair can.
fn and_list<T: Clone + PartialEq>(
    a: &[T],
    b: &[T],
    meet: impl Fn(&T, &T) -> Option<T>,
) -> Option<Vec<T>> {
    match (a, b) {
        ([], x) | (x, []) => Some(x.to_vec()),
        _ => {
            let mut out: Vec<T> = Vec::new();
            for x in a {
                for y in b {
                    if let Some(m) = meet(x, y)
                        && !out.contains(&m)
                    {
                        out.push(m);
                    }
                }
            }
            (!out.is_empty()).then_some(out)
        }
    }
}

/// Each part of a selector is "any" (`None`) or one value, so two selectors meet part by part.
fn and_resource(a: &ResourceSelector, b: &ResourceSelector) -> Option<ResourceSelector> {
    fn part(x: &Option<String>, y: &Option<String>) -> Option<Option<String>> {
        match (x, y) {
            (Some(x), Some(y)) if x != y => None,
            (x, y) => Some(x.clone().or_else(|| y.clone())),
        }
    }
    Some(ResourceSelector {
        group: part(&a.group, &b.group)?,
        resource: part(&a.resource, &b.resource)?,
        subresource: part(&a.subresource, &b.subresource)?,
    })
}

/// Codes as sets: one code, a class of a hundred, or everything from 400 on.
fn and_code(a: &CodeFilter, b: &CodeFilter) -> Option<CodeFilter> {
    use CodeFilter::{Class, Exact, Failed};
    let in_class = |code: u16, class: u8| code / 100 == u16::from(class);
    match (*a, *b) {
        (Exact(x), Exact(y)) => (x == y).then_some(Exact(x)),
        (Exact(x), Class(c)) | (Class(c), Exact(x)) => in_class(x, c).then_some(Exact(x)),
        (Exact(x), Failed) | (Failed, Exact(x)) => (x >= 400).then_some(Exact(x)),
        (Class(x), Class(y)) => (x == y).then_some(Class(x)),
        (Class(c), Failed) | (Failed, Class(c)) => (c >= 4).then_some(Class(c)),
        (Failed, Failed) => Some(Failed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(u: &[&str]) -> Filter {
        Filter {
            users: u.iter().map(|s| s.to_string()).collect(),
            ..Filter::default()
        }
    }

    #[test]
    fn lists_intersect_and_an_empty_list_is_no_condition() {
        let anonymous = users(&["system:anonymous", ""]);
        assert_eq!(
            anonymous.and(&Filter::default()),
            Ok(Some(anonymous.clone()))
        );
        assert_eq!(
            users(&["alice", ""]).and(&anonymous),
            Ok(Some(users(&[""])))
        );
        assert_eq!(users(&["alice"]).and(&anonymous), Ok(None));
    }

    #[test]
    fn selectors_meet_part_by_part() {
        let sel = |s: &str| s.parse::<ResourceSelector>().unwrap();
        let rbac = ResourceSelector::group("rbac.authorization.k8s.io");
        assert_eq!(
            and_resource(&rbac, &sel("roles")),
            Some(sel("roles.rbac.authorization.k8s.io"))
        );
        assert_eq!(and_resource(&rbac, &sel("pods.core")), None);
        assert_eq!(
            and_resource(&ResourceSelector::core("pods", Some("exec")), &sel("pods")),
            Some(ResourceSelector::core("pods", Some("exec")))
        );
        assert_eq!(and_resource(&sel("pods/exec"), &sel("pods.core/")), None);
    }

    #[test]
    fn codes_meet_as_sets() {
        use CodeFilter::{Class, Exact, Failed};
        assert_eq!(and_code(&Failed, &Exact(403)), Some(Exact(403)));
        assert_eq!(and_code(&Failed, &Exact(201)), None);
        assert_eq!(and_code(&Failed, &Class(5)), Some(Class(5)));
        assert_eq!(and_code(&Failed, &Class(3)), None);
        assert_eq!(and_code(&Class(4), &Exact(404)), Some(Exact(404)));
        assert_eq!(and_code(&Class(4), &Exact(500)), None);
        assert_eq!(and_code(&Class(4), &Class(5)), None);
    }

    #[test]
    fn times_stages_and_singles_combine() {
        let t = |f: Option<i64>, to: Option<i64>| Filter {
            time: TimeRange {
                from_micros: f,
                to_micros: to,
            },
            ..Filter::default()
        };
        let both = t(Some(10), None)
            .and(&t(Some(5), Some(20)))
            .unwrap()
            .unwrap();
        assert_eq!(
            both.time,
            TimeRange {
                from_micros: Some(10),
                to_micros: Some(20)
            }
        );
        assert_eq!(t(Some(10), None).and(&t(None, Some(10))), Ok(None));
        let final_ = Filter {
            stages: StageSelection::Final,
            ..Filter::default()
        };
        assert_eq!(
            Filter::default().and(&final_).unwrap().unwrap().stages,
            StageSelection::Final
        );
        let text = |s: &str| Filter {
            text: Some(s.into()),
            ..Filter::default()
        };
        assert_eq!(text("a").and(&text("a")), Ok(Some(text("a"))));
        assert_eq!(
            text("a").and(&text("b")),
            Err(Unrepresentable("text searches"))
        );
        let groups = |g: &[&str]| Filter {
            groups: g.iter().map(|s| s.to_string()).collect(),
            ..Filter::default()
        };
        // An event in both groups matches both filters: no one list of groups says that.
        assert!(groups(&["a"]).and(&groups(&["b"])).is_err());
        assert_eq!(
            groups(&["a", "b"]).and(&groups(&["b", "a"])),
            Ok(Some(groups(&["a", "b"])))
        );
    }
}
