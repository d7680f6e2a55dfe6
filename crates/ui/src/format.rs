//! How numbers, times and event fields are written on pages.

use chrono::{DateTime, Utc};
use kubetrail_store::Record;
use maud::{Markup, html};

/// `1234567` → `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn utc(micros: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
}

/// `2026-11-26 10:00:05` (UTC).
pub fn time(micros: i64) -> String {
    utc(micros)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// `2026-11-26 10:00:05.123456 UTC`, for one event's own page.
pub fn precise_time(micros: i64) -> String {
    utc(micros)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.6f UTC").to_string())
        .unwrap_or_default()
}

/// A span of time in its largest units: `45s`, `12m`, `3h 20m`, `4d 2h`.
pub fn age(micros: i64) -> String {
    let s = (micros / 1_000_000).max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

/// With `pattern` (chrono's strftime), UTC.
pub fn time_as(micros: i64, pattern: &str) -> String {
    utc(micros)
        .map(|t| t.format(pattern).to_string())
        .unwrap_or_default()
}

/// The value a `datetime-local` input shows for `micros` (UTC, to the minute).
pub fn input_time(micros: i64) -> String {
    time_as(micros, "%Y-%m-%dT%H:%M")
}

/// `resource[.group][/subresource]`, as filters and reports write it (`""` when the event has
/// no object).
pub fn resource(r: &Record) -> String {
    r.resource_text()
}

/// The selector that matches exactly what a report's resource key counted: the core group
/// written `.core`, and no subresource written as a trailing `/` (`pods` → `pods.core/`,
/// `deployments.apps` → `deployments.apps/`, `pods/exec` → `pods.core/exec`). A plain `pods`
/// would also match `pods/status` and a `pods` resource of any other group.
pub fn exact_resource(key: &str) -> String {
    kubetrail_report::resource_of_key(key)
        .map(|r| kubetrail_api::params::resource_text(&r))
        .unwrap_or_default()
}

/// The link to the history of the object `r` is about.
pub fn history_href(r: &Record) -> String {
    crate::scope::with_query(
        "/history",
        [
            ("cluster", r.cluster.clone()),
            ("resource", object_resource(r)),
            ("namespace", r.namespace.clone()),
            ("name", r.name.clone()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty()),
    )
}

/// The object a history is kept for: the resource without its subresource (a write to
/// `deployments.apps/scale` changes the deployment).
pub fn object_resource(r: &Record) -> String {
    let mut s = r.resource.clone();
    if !r.api_group.is_empty() && !s.is_empty() {
        s.push('.');
        s.push_str(&r.api_group);
    }
    s
}

/// A user name as shown: `(none)` for requests without an authenticated user.
pub fn user(name: &str) -> &str {
    if name.is_empty() {
        crate::scope::NO_USER
    } else {
        name
    }
}

/// Whom an impersonating request acted as, after its user: ` → bob`, linking to that
/// identity's page; nothing for a request that impersonated no one. (The search filter for
/// such requests is `impersonated=bob`.)
pub fn acting_as(r: &Record) -> Markup {
    html! {
        @if !r.impersonated_user.is_empty() {
            " → " a.acting-as title="acting as (impersonated)" href=(crate::scope::with_query("/user", [("user", r.impersonated_user.clone())])) { (r.impersonated_user) }
        }
    }
}

/// A long name that may wrap only after its separators (`.`, `/`, `:`, `@`, `-`): a narrow
/// column breaks `clusterrolebindings.rbac.authorization.k8s.io` and
/// `system:serviceaccount:kube-system:replicaset-controller` between their parts, never
/// one letter per line.
pub fn breakable(text: &str) -> Markup {
    html! {
        @for (i, part) in text.split_inclusive(['.', '/', ':', '@', '-']).enumerate() {
            @if i > 0 { wbr; }
            (part)
        }
    }
}

/// A namespace as shown: `(cluster)` for cluster-scoped requests.
pub fn namespace(ns: &str) -> &str {
    if ns.is_empty() { "(cluster)" } else { ns }
}

/// A response code as shown.
pub fn code(code: Option<i32>) -> String {
    code.map(|c| c.to_string()).unwrap_or_default()
}

/// The CSS class of a response code: `ok`, `warn` (4xx) or `bad` (5xx).
pub fn code_class(code: Option<i32>) -> &'static str {
    match code {
        Some(c) if c >= 500 => "bad",
        Some(c) if c >= 400 => "warn",
        _ => "ok",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_get_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn exact_resources_name_the_group_and_the_subresource() {
        assert_eq!(exact_resource("pods"), "pods.core/");
        assert_eq!(exact_resource("pods/exec"), "pods.core/exec");
        assert_eq!(exact_resource("deployments.apps"), "deployments.apps/");
        assert_eq!(
            exact_resource("certificates.cert-manager.io/status"),
            "certificates.cert-manager.io/status"
        );
        for key in ["pods", "pods/exec", "deployments.apps/scale"] {
            let s: kubetrail_store::ResourceSelector = exact_resource(key).parse().unwrap();
            assert!(s.group.is_some() && s.subresource.is_some(), "{key}: {s:?}");
        }
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(time(1_764_151_205_000_000), "2025-11-26 10:00:05");
        assert_eq!(input_time(1_764_151_205_000_000), "2025-11-26T10:00");
    }
}
