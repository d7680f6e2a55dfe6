//! The typed [`Filter`] as URL query parameters, both ways. Repeated parameters are ORed
//! (`verb=get&verb=list`), different ones ANDed, as in the filter itself:
//!
//! | parameter | filter field | example |
//! | --- | --- | --- |
//! | `cluster`, `user`, `group`, `verb`, `namespace`, `name` | the same, repeatable | `verb=delete` |
//! | `auditID` | the event's auditID, repeatable | |
//! | `sourceIP` | the first source IP, repeatable | `sourceIP=203.0.113.7` |
//! | `resource` | `RESOURCE[.GROUP][/SUBRESOURCE]`, repeatable; empty is no filter | `resource=deployments.apps` |
//! | `code` | `403`, `4xx` or `failed`, repeatable | `code=4xx` |
//! | `decision` | `allow` or `forbid` | |
//! | `text` | substring of the event JSON | |
//! | `since` | a duration before now (with `from`, the later start counts) | `since=24h` |
//! | `from`, `to` | RFC 3339; `from` not before `to` is an empty window, not an error | |
//! | `stages` | `all` (every stage event) or `final` (one event per request) | |
//!
//! Errors name the parameter. Parameters an endpoint does not know are errors too, so a typo
//! does not silently widen a question.
//!
//! A filter is a question a person asks, not a list to upload: one parameter takes at most
//! [`MAX_VALUES_PER_PARAMETER`] values and a query at most [`MAX_FILTER_VALUES`] in all. Every
//! value costs the store a comparison per event and every page that shows the filter a link,
//! so without a bound a short URL could ask for an unbounded answer.

use kubetrail_store::text::{format_micros, parse_duration, parse_time};
use kubetrail_store::{
    AlertFilter, CodeFilter, Decision, Filter, ResourceSelector, StageSelection, TimeRange,
};

/// The parameters every filtering endpoint takes.
pub const FILTER_KEYS: [&str; 18] = [
    "cluster",
    "user",
    "identity",
    "impersonated",
    "group",
    "verb",
    "resource",
    "namespace",
    "name",
    "auditID",
    "sourceIP",
    "code",
    "decision",
    "text",
    "since",
    "from",
    "to",
    "stages",
];

/// Most values one filter parameter takes (`user=a&user=b&...`).
pub const MAX_VALUES_PER_PARAMETER: usize = 100;

/// Most filter values one query takes, over every filter parameter.
pub const MAX_FILTER_VALUES: usize = 200;

/// The first microsecond of the year 1: no audit event is before it, and every time from it on
/// prints as RFC 3339 that reads back (found by the query_params fuzz target: a window before
/// the year 0 printed a time no parser reads).
const YEAR_ONE_MICROS: i64 = -62_135_596_800_000_000;

/// What a window with `from` not before `to` becomes: the first microsecond of the year 1.
/// The answer is empty, as the window asks, and the filter stays one every store takes and
/// that reads back from its own query.
const EMPTY_WINDOW: TimeRange = TimeRange {
    from_micros: Some(YEAR_ONE_MICROS),
    to_micros: Some(YEAR_ONE_MICROS + 1),
};

/// A query string split into pairs, in order.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A query string from pairs.
pub fn encode_query<'a>(pairs: impl IntoIterator<Item = (&'a str, String)>) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, &v);
    }
    ser.finish()
}

/// The text form of a resource selector (what [`ResourceSelector`]'s `FromStr` reads).
pub fn resource_text(r: &ResourceSelector) -> String {
    let mut s = r.resource.clone().unwrap_or_else(|| "*".into());
    match r.group.as_deref() {
        Some("") => s.push_str(".core"),
        Some(g) => {
            s.push('.');
            s.push_str(g);
        }
        None => {}
    }
    if let Some(sub) = r.subresource.as_deref() {
        s.push('/');
        s.push_str(sub);
    }
    s
}

fn code_text(c: &CodeFilter) -> String {
    match c {
        CodeFilter::Exact(c) => c.to_string(),
        CodeFilter::Class(c) => format!("{c}xx"),
        CodeFilter::Failed => "failed".into(),
    }
}

/// The parameters describing `filter`. Times are written as absolute `from`/`to`; the core
/// group as `.core` and "no subresource" as a trailing `/`, so every selector survives the
/// round trip.
pub fn filter_to_pairs(filter: &Filter) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let many = |out: &mut Vec<(&'static str, String)>, key: &'static str, vals: &[String]| {
        out.extend(vals.iter().map(|v| (key, v.clone())));
    };
    many(&mut out, "cluster", &filter.clusters);
    many(&mut out, "user", &filter.users);
    out.extend(
        filter
            .excluded_users
            .iter()
            .map(|u| ("user", format!("!{u}"))),
    );
    many(&mut out, "identity", &filter.identities);
    many(&mut out, "impersonated", &filter.impersonated_users);
    many(&mut out, "group", &filter.groups);
    many(&mut out, "verb", &filter.verbs);
    out.extend(
        filter
            .resources
            .iter()
            .map(|r| ("resource", resource_text(r))),
    );
    many(&mut out, "namespace", &filter.namespaces);
    many(&mut out, "name", &filter.names);
    many(&mut out, "auditID", &filter.audit_ids);
    many(&mut out, "sourceIP", &filter.source_ips);
    out.extend(filter.codes.iter().map(|c| ("code", code_text(c))));
    if let Some(d) = filter.decision {
        out.push(("decision", d.as_str().to_string()));
    }
    if let Some(t) = &filter.text {
        out.push(("text", t.clone()));
    }
    if let Some(f) = filter.time.from_micros {
        out.push(("from", format_micros(f)));
    }
    if let Some(t) = filter.time.to_micros {
        out.push(("to", format_micros(t)));
    }
    if filter.stages == StageSelection::Final {
        out.push(("stages", "final".into()));
    }
    out
}

/// Reads a filter from `pairs`. `extra` lists the endpoint's own parameters, which are
/// returned (in order) for the endpoint to read; any other parameter is an error. `now_micros`
/// anchors `since`.
pub fn filter_from_pairs(
    pairs: &[(String, String)],
    extra: &[&str],
    now_micros: i64,
) -> Result<(Filter, Vec<(String, String)>), String> {
    let mut f = Filter::default();
    let mut rest = Vec::new();
    let mut since = None;
    let mut range = TimeRange::default();
    let mut seen_single: Vec<&str> = Vec::new();
    let mut counts = [0usize; FILTER_KEYS.len()];
    let mut total = 0usize;
    for (k, v) in pairs {
        let key = k.as_str();
        let err = |e: String| format!("parameter {key}: {e}");
        if let Some(i) = FILTER_KEYS.iter().position(|f| *f == key) {
            counts[i] += 1;
            total += 1;
            if counts[i] > MAX_VALUES_PER_PARAMETER {
                return Err(format!(
                    "parameter {key}: more than {MAX_VALUES_PER_PARAMETER} values (the limit per parameter)"
                ));
            }
            if total > MAX_FILTER_VALUES {
                return Err(format!(
                    "parameter {key}: more than {MAX_FILTER_VALUES} filter values in one query (the limit over all parameters)"
                ));
            }
        }
        if matches!(
            key,
            "decision" | "text" | "since" | "from" | "to" | "stages"
        ) {
            if seen_single.contains(&key) {
                return Err(format!("parameter {key} given more than once"));
            }
            seen_single.push(key);
        }
        match key {
            "cluster" => f.clusters.push(v.clone()),
            // `!name` and `!prefix*` leave users out (`user=!system:*`).
            "user" | "identity" if v.starts_with('!') => f.excluded_users.push(v[1..].to_string()),
            "user" => f.users.push(v.clone()),
            "identity" => f.identities.push(v.clone()),
            "impersonated" => f.impersonated_users.push(v.clone()),
            "group" => f.groups.push(v.clone()),
            "verb" => f.verbs.push(v.clone()),
            // An empty field of a form: no filter.
            "resource" if v.is_empty() => {}
            "resource" => f
                .resources
                .push(ResourceSelector::parse_any_case(v).map_err(err)?),
            "namespace" => f.namespaces.push(v.clone()),
            "name" => f.names.push(v.clone()),
            "auditID" => f.audit_ids.push(v.clone()),
            "sourceIP" => f.source_ips.push(v.clone()),
            "code" => f.codes.push(v.parse().map_err(err)?),
            "decision" => f.decision = Some(v.parse::<Decision>().map_err(err)?),
            "text" => f.text = Some(v.clone()),
            "since" => since = Some(parse_duration(v).map_err(err)?),
            "from" => range.from_micros = Some(parse_time(v).map_err(err)?.timestamp_micros()),
            "to" => range.to_micros = Some(parse_time(v).map_err(err)?.timestamp_micros()),
            "stages" => {
                f.stages = match v.as_str() {
                    "all" => StageSelection::All,
                    "final" => StageSelection::Final,
                    _ => return Err(err(format!("expected all or final, found {v:?}"))),
                }
            }
            _ if extra.contains(&key) => rest.push((k.clone(), v.clone())),
            _ => {
                let mut known: Vec<&str> = FILTER_KEYS.to_vec();
                known.extend_from_slice(extra);
                return Err(format!(
                    "unknown parameter {key:?}: expected one of {}",
                    known.join(", ")
                ));
            }
        }
    }
    if let Some(d) = since {
        // The last DURATION, within from and to when they are given too. A duration longer
        // than the calendar (`since=4h2h232…h`, found by the query_params fuzz target) starts
        // at the year 1: every event, and a start that prints as a time that reads back.
        let start = now_micros
            .saturating_sub(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .max(YEAR_ONE_MICROS);
        range.from_micros = Some(range.from_micros.map_or(start, |f| f.max(start)));
    }
    if let (Some(from), Some(to)) = (range.from_micros, range.to_micros)
        && from >= to
    {
        range = EMPTY_WINDOW;
    }
    f.time = range;
    f.validate().map_err(|e| format!("invalid filter: {e}"))?;
    Ok((f, rest))
}

/// The parameters `/api/v1/alerts` and the Alerts page take: who, where, which rule and how
/// severe, and the time of the triggering event.
pub const ALERT_KEYS: [&str; 10] = [
    "cluster",
    "rule",
    "severity",
    "minSeverity",
    "namespace",
    "user",
    "auditID",
    "since",
    "from",
    "to",
];

/// Severities, least first.
pub const SEVERITIES: [&str; 5] = ["info", "low", "medium", "high", "critical"];

fn severity(v: &str) -> Result<usize, String> {
    SEVERITIES.iter().position(|s| *s == v).ok_or_else(|| {
        format!(
            "unknown severity {v:?}: expected one of {}",
            SEVERITIES.join(", ")
        )
    })
}

/// Reads an alert filter from `pairs` as [`filter_from_pairs`] reads an event filter:
/// repeated parameters are ORed, `severity` names severities and `minSeverity` the least one
/// (both given: those of the list at or above it), `since`/`from`/`to` bound the triggering
/// event's time. Rule ids are taken as given: the caller checks them against the rules it
/// knows.
pub fn alert_filter_from_pairs(
    pairs: &[(String, String)],
    extra: &[&str],
    now_micros: i64,
) -> Result<(AlertFilter, Vec<(String, String)>), String> {
    let mut f = AlertFilter::default();
    let mut rest = Vec::new();
    let mut time = Vec::new();
    let mut least: Option<usize> = None;
    let mut named: Vec<usize> = Vec::new();
    let mut total = 0usize;
    let mut counts = [0usize; ALERT_KEYS.len()];
    for (k, v) in pairs {
        let key = k.as_str();
        let err = |e: String| format!("parameter {key}: {e}");
        if let Some(i) = ALERT_KEYS.iter().position(|a| *a == key) {
            counts[i] += 1;
            if counts[i] > MAX_VALUES_PER_PARAMETER {
                return Err(format!(
                    "parameter {key}: more than {MAX_VALUES_PER_PARAMETER} values (the limit per parameter)"
                ));
            }
            total += 1;
            if total > MAX_FILTER_VALUES {
                return Err(format!(
                    "parameter {key}: more than {MAX_FILTER_VALUES} filter values in one query"
                ));
            }
        }
        match key {
            "cluster" => f.clusters.push(v.clone()),
            "rule" => f.rules.push(v.clone()),
            "namespace" => f.namespaces.push(v.clone()),
            // Events' `!name` exclusion is not an alerts filter: refused, not matched literally.
            "user" if v.starts_with('!') => {
                return Err(err(
                    "alerts are filtered by user names; !name (leaving users out) is for events"
                        .into(),
                ));
            }
            "user" => f.users.push(v.clone()),
            "auditID" => f.audit_ids.push(v.clone()),
            // An empty field of a form: no filter.
            "severity" | "minSeverity" if v.is_empty() => {}
            "severity" => named.push(severity(v).map_err(err)?),
            "minSeverity" => {
                if least.is_some() {
                    return Err("parameter minSeverity given more than once".into());
                }
                least = Some(severity(v).map_err(err)?);
            }
            "since" | "from" | "to" => time.push((k.clone(), v.clone())),
            _ if extra.contains(&key) => rest.push((k.clone(), v.clone())),
            _ => {
                let mut known: Vec<&str> = ALERT_KEYS.to_vec();
                known.extend_from_slice(extra);
                return Err(format!(
                    "unknown parameter {key:?}: expected one of {}",
                    known.join(", ")
                ));
            }
        }
    }
    // The time parameters read exactly as an event filter's.
    let (window, _) = filter_from_pairs(&time, &[], now_micros)?;
    f.time = window.time;
    let mut levels: Vec<usize> = if named.is_empty() {
        least.map_or_else(Vec::new, |l| (l..SEVERITIES.len()).collect())
    } else {
        named
            .into_iter()
            .filter(|n| least.is_none_or(|l| *n >= l))
            .collect()
    };
    levels.sort_unstable();
    levels.dedup();
    f.severities = levels.iter().map(|i| SEVERITIES[*i].to_string()).collect();
    if f.severities.is_empty()
        && (least.is_some() || pairs.iter().any(|(k, v)| k == "severity" && !v.is_empty()))
    {
        // `severity=low&minSeverity=high`: nothing can match; say so rather than match all.
        return Err("parameters severity and minSeverity leave no severity".into());
    }
    Ok((f, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        parse_query(q)
    }

    #[test]
    fn a_filter_survives_the_round_trip() {
        let f = Filter {
            time: TimeRange {
                from_micros: Some(1_714_557_600_123_456),
                to_micros: Some(1_714_557_700_000_000),
            },
            clusters: vec!["prod eu".into()],
            users: vec!["alice@example.com".into(), "".into()],
            impersonated_users: vec!["bob".into()],
            identities: vec!["carol".into()],
            excluded_users: vec!["system:*".into(), "eve".into()],
            groups: vec!["system:masters".into()],
            verbs: vec!["delete".into(), "patch".into()],
            resources: vec![
                "deployments.apps/scale".parse().unwrap(),
                "pods".parse().unwrap(),
                ResourceSelector::core("pods", Some("")),
                ResourceSelector::core("pods", Some("exec")),
                ResourceSelector::group("rbac.authorization.k8s.io"),
                ResourceSelector::default(),
            ],
            namespaces: vec!["kube-system".into()],
            names: vec!["a&b=c".into()],
            audit_ids: vec!["0b7d2f4e-1c3a-4f1e-9a77-5d1c2b3a4e5f".into()],
            source_ips: vec!["203.0.113.7".into(), "2001:db8::1".into()],
            codes: vec![
                CodeFilter::Exact(403),
                CodeFilter::Class(5),
                CodeFilter::Failed,
            ],
            decision: Some(Decision::Forbid),
            text: Some("\"secret\"".into()),
            stages: StageSelection::Final,
        };
        let query = encode_query(filter_to_pairs(&f));
        let (back, rest) = filter_from_pairs(&pairs(&query), &[], 0).unwrap();
        assert_eq!(back, f);
        assert!(rest.is_empty());
    }

    /// Found by the query_params fuzz target: chrono read `-06022-5-5` as a date whose
    /// RFC 3339 form no parser reads back, so the filter's own query was refused.
    #[test]
    fn a_signed_year_is_not_a_date() {
        let e = filter_from_pairs(&pairs("user&to=-06022-5-5"), &[], 0).unwrap_err();
        assert!(e.starts_with("parameter to:"), "{e}");
    }

    #[test]
    fn errors_name_the_parameter() {
        let e = |q: &str| filter_from_pairs(&pairs(q), &["limit"], 0).unwrap_err();
        assert!(e("verb=GET").contains("invalid verb \"GET\""));
        assert!(e("code=6xx").starts_with("parameter code:"));
        assert!(e("since=3y").starts_with("parameter since:"));
        assert!(e("from=yesterday").starts_with("parameter from:"));
        assert!(e("resource=pods!").starts_with("parameter resource:"));
        assert!(e("decision=maybe").starts_with("parameter decision:"));
        assert!(e("stages=some").starts_with("parameter stages:"));
        assert!(e("usr=alice").starts_with("unknown parameter \"usr\""));
        assert!(e("usr=alice").contains("limit"));
        assert!(e("text=a&text=b").contains("more than once"));
    }

    #[test]
    fn values_are_limited_per_parameter_and_in_all() {
        let many = |key: &str, n: usize| encode_query((0..n).map(|i| (key, format!("v{i}"))));
        let q = many("user", MAX_VALUES_PER_PARAMETER);
        let (f, _) = filter_from_pairs(&pairs(&q), &[], 0).unwrap();
        assert_eq!(f.users.len(), MAX_VALUES_PER_PARAMETER);
        let q = many("user", MAX_VALUES_PER_PARAMETER + 1);
        let e = filter_from_pairs(&pairs(&q), &[], 0).unwrap_err();
        assert!(e.starts_with("parameter user:"), "{e}");
        assert!(e.contains(&MAX_VALUES_PER_PARAMETER.to_string()), "{e}");
        // Under the limit per parameter, over the limit in all.
        let q = format!(
            "{}&{}&{}",
            many("user", 100),
            many("namespace", 100),
            many("name", 1)
        );
        let e = filter_from_pairs(&pairs(&q), &[], 0).unwrap_err();
        assert!(e.starts_with("parameter name:"), "{e}");
        assert!(e.contains(&MAX_FILTER_VALUES.to_string()), "{e}");
        // The endpoint's own parameters do not count.
        let q = format!("{}&{}", many("user", 100), many("limit", 300));
        assert!(filter_from_pairs(&pairs(&q), &["limit"], 0).is_ok());
    }

    #[test]
    fn windows_combine_and_an_empty_one_selects_nothing() {
        let hour = 3_600_000_000;
        let at = |q: &str| filter_from_pairs(&pairs(q), &[], 10 * hour).unwrap().0.time;
        // since and from: the later start.
        let t = at("since=1h&from=1970-01-01T05:00:00Z&to=1970-01-01T09:30:00Z");
        assert_eq!(t.from_micros, Some(9 * hour));
        assert_eq!(t.to_micros, Some(9 * hour + hour / 2));
        let t = at("since=8h&from=1970-01-01T05:00:00Z");
        assert_eq!(t.from_micros, Some(5 * hour));
        // Nothing is in an empty window, and no event can be in what it becomes.
        for q in [
            "from=2024-01-02T00:00:00Z&to=2024-01-01T00:00:00Z",
            "from=2024-01-01T00:00:00Z&to=2024-01-01T00:00:00Z",
            "since=1h&to=1970-01-01T01:00:00Z",
        ] {
            let t = at(q);
            assert_eq!(t, EMPTY_WINDOW, "{q}");
            let year_one = parse_time("0001-01-01T00:00:00.000001Z")
                .unwrap()
                .timestamp_micros();
            assert!(t.to_micros.unwrap() <= year_one);
            // The window reads back from its own query string.
            let q = encode_query(filter_to_pairs(&Filter {
                time: t,
                ..Filter::default()
            }));
            assert_eq!(at(&q), t, "{q}");
        }
    }

    #[test]
    fn a_since_longer_than_the_calendar_starts_at_the_year_one() {
        // Many summed units, far beyond the year 1 but within u64 seconds.
        let long = format!("{}h", u64::MAX / 3600 / 2);
        for q in [
            format!("since={long}"),
            "since=4h2h2322222222222222h".to_string(),
        ] {
            let (f, _) = filter_from_pairs(&pairs(&q), &[], 1_714_558_830_000_000).unwrap();
            assert_eq!(f.time.from_micros, Some(YEAR_ONE_MICROS), "{q}");
            let back = encode_query(filter_to_pairs(&f));
            let (again, _) = filter_from_pairs(&pairs(&back), &[], 0).unwrap();
            assert_eq!(again, f, "{back}");
        }
        // A since within the calendar is unchanged.
        let (f, _) = filter_from_pairs(&pairs("since=1d"), &[], 86_400_000_000).unwrap();
        assert_eq!(f.time.from_micros, Some(0));
    }

    #[test]
    fn an_empty_resource_is_no_filter() {
        let (f, _) = filter_from_pairs(&pairs("resource=&resource=pods"), &[], 0).unwrap();
        assert_eq!(f.resources, ["pods".parse::<ResourceSelector>().unwrap()]);
        let (f, _) = filter_from_pairs(&pairs("resource="), &[], 0).unwrap();
        assert!(f.resources.is_empty());
    }

    #[test]
    fn since_is_relative_to_now_and_extras_are_returned() {
        let (f, rest) = filter_from_pairs(
            &pairs("since=1h&limit=5&user=bob"),
            &["limit"],
            7_200_000_000,
        )
        .unwrap();
        assert_eq!(f.time.from_micros, Some(3_600_000_000));
        assert_eq!(f.time.to_micros, None);
        assert_eq!(f.users, ["bob"]);
        assert_eq!(rest, [("limit".to_string(), "5".to_string())]);
    }

    #[test]
    fn alert_filters_read_severities_rules_and_time() {
        let now = 1_800_000_000_000_000;
        let (f, rest) = alert_filter_from_pairs(
            &pairs("rule=pod-exec&rule=secret-read&minSeverity=high&since=1h&limit=5&cluster=prod"),
            &["limit"],
            now,
        )
        .unwrap();
        assert_eq!(f.rules, ["pod-exec", "secret-read"]);
        assert_eq!(f.severities, ["high", "critical"]);
        assert_eq!(f.clusters, ["prod"]);
        assert_eq!(f.time.from_micros, Some(now - 3_600_000_000));
        assert_eq!(rest, [("limit".to_string(), "5".to_string())]);
        let (f, _) = alert_filter_from_pairs(
            &pairs("severity=critical&severity=low&minSeverity=medium"),
            &[],
            now,
        )
        .unwrap();
        assert_eq!(f.severities, ["critical"]);
        let (f, _) = alert_filter_from_pairs(&pairs("severity=&minSeverity="), &[], now).unwrap();
        assert!(f.severities.is_empty());
        let e = alert_filter_from_pairs(&pairs("severity=hgih"), &[], now).unwrap_err();
        assert!(e.contains("hgih") && e.contains("critical"), "{e}");
        let e =
            alert_filter_from_pairs(&pairs("severity=low&minSeverity=high"), &[], now).unwrap_err();
        assert!(e.contains("no severity"), "{e}");
        let e = alert_filter_from_pairs(&pairs("verb=get"), &[], now).unwrap_err();
        assert!(e.contains("unknown parameter \"verb\""), "{e}");
        let many = vec!["auditID=x"; MAX_VALUES_PER_PARAMETER + 1].join("&");
        let e = alert_filter_from_pairs(&pairs(&many), &[], now).unwrap_err();
        assert!(
            e.contains("auditID") && e.contains("limit per parameter"),
            "{e}"
        );
        let e = alert_filter_from_pairs(&pairs("since=soon"), &[], now).unwrap_err();
        assert!(e.contains("since"), "{e}");
    }
}
