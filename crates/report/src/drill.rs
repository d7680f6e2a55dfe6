//! The drill-downs: the sets of requests an audit centre counts on its overview and lists
//! behind each count (failed, forbidden, deletions, exec / attach / port-forward, secret
//! access, RBAC changes, anonymous). Each is one [`Filter`]: the overview counts it, the page
//! behind the count lists it, the per-user numbers use it, so the number and the list cannot
//! disagree.

use std::fmt;
use std::str::FromStr;

use kubetrail_store::{CodeFilter, Field, Filter, ResourceSelector, Result, StageSelection};

use crate::{WRITE_VERBS, base, by_name};

/// A drill-down of the overview.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Drill {
    /// Requests that failed (code ≥ 400).
    Failed,
    /// Requests the authorizer refused (403).
    Forbidden,
    /// Deletions (delete, deletecollection).
    Deletions,
    /// Interactive access to pods: exec, attach, port-forward.
    ExecAttach,
    /// Any request on secrets.
    SecretAccess,
    /// Writes to RBAC objects: roles, bindings, cluster roles, cluster role bindings, and
    /// anything else of `rbac.authorization.k8s.io`.
    RbacChanges,
    /// Requests without an authenticated user, or as `system:anonymous`.
    Anonymous,
}

/// The user names of anonymous requests: the anonymous user, and none at all.
pub const ANONYMOUS_USERS: [&str; 2] = ["system:anonymous", ""];

/// The pod subresources of interactive access.
pub const INTERACTIVE_SUBRESOURCES: [&str; 3] = ["exec", "attach", "portforward"];

impl Drill {
    /// Every drill-down, in the overview's order.
    pub const ALL: [Drill; 7] = [
        Drill::Failed,
        Drill::Forbidden,
        Drill::Deletions,
        Drill::ExecAttach,
        Drill::SecretAccess,
        Drill::RbacChanges,
        Drill::Anonymous,
    ];

    /// The name links, the command line and the API use.
    pub fn name(self) -> &'static str {
        match self {
            Drill::Failed => "failed",
            Drill::Forbidden => "forbidden",
            Drill::Deletions => "deletions",
            Drill::ExecAttach => "exec",
            Drill::SecretAccess => "secrets",
            Drill::RbacChanges => "rbac",
            Drill::Anonymous => "anonymous",
        }
    }

    /// The title pages and tables show.
    pub fn title(self) -> &'static str {
        match self {
            Drill::Failed => "Failed requests",
            Drill::Forbidden => "Forbidden requests",
            Drill::Deletions => "Deletions",
            Drill::ExecAttach => "Exec, attach and port-forward",
            Drill::SecretAccess => "Secret access",
            Drill::RbacChanges => "RBAC changes",
            Drill::Anonymous => "Anonymous requests",
        }
    }

    /// The fields the overview breaks the drill-down's requests down by.
    pub fn breakdown(self) -> &'static [Field] {
        match self {
            Drill::Failed => &[Field::User, Field::Code],
            Drill::Forbidden | Drill::ExecAttach => &[Field::User],
            Drill::Deletions | Drill::RbacChanges => &[Field::User, Field::Resource],
            Drill::SecretAccess => &[Field::User, Field::Verb],
            Drill::Anonymous => &[Field::Resource],
        }
    }

    /// The drill-down's own conditions, one event per request, in no scope.
    pub fn conditions(self) -> Filter {
        let strings = |s: &[&str]| s.iter().map(|v| v.to_string()).collect::<Vec<_>>();
        let f = Filter {
            stages: StageSelection::Final,
            ..Filter::default()
        };
        match self {
            Drill::Failed => Filter {
                codes: vec![CodeFilter::Failed],
                ..f
            },
            Drill::Forbidden => Filter {
                codes: vec![CodeFilter::Exact(403)],
                ..f
            },
            Drill::Deletions => Filter {
                verbs: strings(&["delete", "deletecollection"]),
                ..f
            },
            Drill::ExecAttach => Filter {
                resources: INTERACTIVE_SUBRESOURCES
                    .iter()
                    .map(|s| ResourceSelector::core("pods", Some(s)))
                    .collect(),
                ..f
            },
            Drill::SecretAccess => Filter {
                resources: vec![ResourceSelector::core("secrets", None)],
                ..f
            },
            Drill::RbacChanges => Filter {
                resources: vec![ResourceSelector::group("rbac.authorization.k8s.io")],
                verbs: strings(&WRITE_VERBS),
                ..f
            },
            Drill::Anonymous => Filter {
                users: strings(&ANONYMOUS_USERS),
                ..f
            },
        }
    }

    /// The requests of `scope` the drill-down selects, as one filter: exactly what the
    /// overview counts for it. `None` when none can be (a scope of one named user has no
    /// anonymous requests).
    pub fn within(self, scope: &Filter) -> Result<Option<Filter>> {
        narrow(scope, &self.conditions())
    }
}

/// `scope` (one event per request) narrowed by `conditions`, as one filter; `None` when
/// nothing can match both.
pub fn narrow(scope: &Filter, conditions: &Filter) -> Result<Option<Filter>> {
    base(scope)
        .and(conditions)
        .map_err(|e| kubetrail_store::Error::Invalid(format!("the question cannot be asked: {e}")))
}

impl fmt::Display for Drill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Drill {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        by_name("drill-down", s, Drill::ALL, Drill::name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_and_a_typo_gets_a_hint() {
        for d in Drill::ALL {
            assert_eq!(d.name().parse::<Drill>(), Ok(d));
        }
        let e = "secret".parse::<Drill>().unwrap_err();
        assert!(e.contains("did you mean \"secrets\""), "{e}");
        assert!(e.contains("failed, forbidden"), "{e}");
    }

    #[test]
    fn a_drill_down_narrows_its_scope() {
        let alice = Filter {
            users: vec!["alice".into()],
            namespaces: vec!["prod".into()],
            ..Filter::default()
        };
        let failed = Drill::Failed.within(&alice).unwrap().unwrap();
        assert_eq!(failed.users, ["alice"]);
        assert_eq!(failed.namespaces, ["prod"]);
        assert_eq!(failed.codes, [CodeFilter::Failed]);
        assert_eq!(failed.stages, StageSelection::Final);
        // A scope that already asks for codes keeps only what both ask.
        let server_errors = Filter {
            codes: vec![CodeFilter::Class(5), CodeFilter::Class(2)],
            ..Filter::default()
        };
        let f = Drill::Failed.within(&server_errors).unwrap().unwrap();
        assert_eq!(f.codes, [CodeFilter::Class(5)]);
        assert_eq!(
            Drill::Forbidden
                .within(&Filter {
                    codes: vec![CodeFilter::Class(5)],
                    ..Filter::default()
                })
                .unwrap(),
            None
        );
        // One named user has no anonymous requests; the empty user is one.
        assert_eq!(Drill::Anonymous.within(&alice).unwrap(), None);
        let none = Filter {
            users: vec!["alice".into(), String::new()],
            ..Filter::default()
        };
        assert_eq!(Drill::Anonymous.within(&none).unwrap().unwrap().users, [""]);
    }
}
