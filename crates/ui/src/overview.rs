//! The overview: requests over time, the largest users, resources and namespaces, and the
//! sections an audit centre watches (failures, forbidden requests, deletions, exec / attach,
//! secret access, RBAC changes, anonymous and external requests, collection gaps). Every count
//! links to the events behind it.

use kubetrail_report::{self as report, Overview, Section, TOP};
use kubetrail_store::{Aggregation, AggregationResult, Field, GroupCount, HistogramBucket};
use maud::{Markup, html};

use crate::chart::{self, Series};
use crate::counts;
use crate::layout::{self, Nav, tile};
use crate::scope::Scope;
use crate::{Context, UiError, format};

/// Bucket widths a histogram may use, in seconds.
const BUCKETS: [i64; 12] = [
    60,
    300,
    600,
    900,
    1800,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86_400,
    7 * 86_400,
    30 * 86_400,
];

/// At most this many bars.
const MAX_BARS: i64 = 72;

/// How many verbs get their own colour; the rest are "other".
const VERB_SERIES: usize = 7;

/// The bucket width for a window of `span` microseconds.
pub fn bucket_for(span_micros: i64) -> i64 {
    let day = 86_400 * 1_000_000;
    BUCKETS
        .iter()
        .map(|s| s * 1_000_000)
        .find(|b| span_micros / b <= MAX_BARS)
        // Longer custom ranges: whole days, still at most MAX_BARS bars.
        .unwrap_or_else(|| (span_micros / MAX_BARS / day + 1) * day)
}

/// How the chart splits each bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// By verb.
    Verb,
    /// By response class (2xx, 3xx, 4xx, 5xx).
    Class,
}

fn class_of(code: &str) -> &'static str {
    match code.parse::<i32>() {
        Ok(c) if (100..200).contains(&c) => "1xx",
        Ok(c) if (200..300).contains(&c) => "2xx",
        Ok(c) if (300..400).contains(&c) => "3xx",
        Ok(c) if (400..500).contains(&c) => "4xx",
        Ok(c) if c >= 500 => "5xx",
        _ => "no code",
    }
}

/// Turns histogram buckets into bucket starts and one series per key.
pub fn series_of(
    buckets: &[HistogramBucket],
    from: i64,
    to: i64,
    width: i64,
    split: Split,
) -> (Vec<i64>, Vec<Series>) {
    let first = from.div_euclid(width) * width;
    let starts: Vec<i64> = (0..)
        .map(|i| first + i * width)
        .take_while(|s| *s < to)
        .collect();
    let key_of = |b: &HistogramBucket| -> String {
        let k = b.key.clone().unwrap_or_default();
        match split {
            Split::Verb => k,
            Split::Class => class_of(&k).to_string(),
        }
    };
    // Series ordered by size, largest first; verbs beyond the first few share "other".
    let mut totals: Vec<(String, u64)> = Vec::new();
    for b in buckets {
        let k = key_of(b);
        match totals.iter_mut().find(|(n, _)| *n == k) {
            Some(t) => t.1 += b.count,
            None => totals.push((k, b.count)),
        }
    }
    match split {
        Split::Verb => totals.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0))),
        Split::Class => totals.sort_by(|a, b| a.0.cmp(&b.0)),
    }
    let mut names: Vec<String> = totals.iter().map(|(n, _)| n.clone()).collect();
    if split == Split::Verb && names.len() > VERB_SERIES {
        names.truncate(VERB_SERIES);
        names.push("other".into());
    }
    let mut series: Vec<Series> = names
        .iter()
        .map(|n| Series {
            name: n.clone(),
            values: vec![0; starts.len()],
        })
        .collect();
    for b in buckets {
        let Ok(i) = usize::try_from((b.start_micros - first).div_euclid(width)) else {
            continue;
        };
        if i >= starts.len() {
            continue;
        }
        let k = key_of(b);
        let si = names
            .iter()
            .position(|n| *n == k)
            .unwrap_or(names.len().saturating_sub(1));
        if let Some(s) = series.get_mut(si) {
            s.values[i] += b.count;
        }
    }
    (starts, series)
}

/// The activity chart for `scope`, split by `split`.
pub fn activity(ctx: &Context<'_>, scope: &Scope, split: Split) -> Result<Markup, UiError> {
    let width = bucket_for(scope.span_micros());
    let by = match split {
        Split::Verb => Field::Verb,
        Split::Class => Field::Code,
    };
    let buckets = match ctx.store.aggregate(
        &report::base(&scope.filter),
        &Aggregation::Histogram {
            bucket: std::time::Duration::from_micros(width as u64),
            by: Some(by),
        },
    )? {
        AggregationResult::Histogram(b) => b,
        _ => Vec::new(),
    };
    let (starts, series) = series_of(&buckets, scope.from_micros, scope.to_micros, width, split);
    let title = match split {
        Split::Verb => "Requests over time, by verb",
        Split::Class => "Requests over time, by response class",
    };
    Ok(chart::time_bars(title, &starts, width, &series))
}

/// Requests from outside the internal networks: the total, and the largest (address, user)
/// pairs. Addresses are counted first (one cheap grouping); users only for the largest
/// external addresses.
fn external(ctx: &Context<'_>, scope: &Scope) -> Result<(u64, Vec<GroupCount>), UiError> {
    let count_by = |filter: &kubetrail_store::Filter, fields: Vec<Field>| {
        ctx.store
            .aggregate(
                filter,
                &Aggregation::CountBy {
                    fields,
                    limit: None,
                },
            )
            .map(|a| a.groups().to_vec())
    };
    let base = report::base(&scope.filter);
    let outside: Vec<GroupCount> = count_by(&base, vec![Field::SourceIp])?
        .into_iter()
        .filter(|g| ctx.networks.is_external(&g.keys[0]))
        .collect();
    let total = outside.iter().map(|g| g.count).sum();
    if outside.is_empty() {
        return Ok((0, Vec::new()));
    }
    let narrowed = kubetrail_store::Filter {
        source_ips: outside
            .iter()
            .take(TOP)
            .map(|g| g.keys[0].clone())
            .collect(),
        ..base
    };
    let mut pairs = count_by(&narrowed, vec![Field::SourceIp, Field::User])?;
    pairs.truncate(TOP);
    Ok((total, pairs))
}

const RBAC: [&str; 4] = [
    "roles.rbac.authorization.k8s.io",
    "rolebindings.rbac.authorization.k8s.io",
    "clusterroles.rbac.authorization.k8s.io",
    "clusterrolebindings.rbac.authorization.k8s.io",
];

/// Renders `/`.
pub fn render(ctx: &Context<'_>, query: &str) -> Result<Markup, UiError> {
    let scope = Scope::parse(query, &["by"], ctx.now_micros, ctx.viewer)?;
    let split = match scope.extra("by") {
        None | Some("verb") => Split::Verb,
        Some("code") => Split::Class,
        Some(other) => {
            return Err(UiError::BadRequest(format!(
                "parameter by: {other:?} is not verb or code"
            )));
        }
    };
    // The report, the chart and the external addresses are independent questions: the store
    // answers them side by side.
    let (o, chart, external) = std::thread::scope(|t| {
        let chart = t.spawn(|| activity(ctx, &scope, split));
        let external = t.spawn(|| external(ctx, &scope));
        let o = report::overview(ctx.store, &scope.filter);
        (o, chart.join(), external.join())
    });
    let joined = |what: &str| UiError::Internal(format!("computing the {what} failed"));
    let o: Overview = o?;
    let chart = chart.map_err(|_| joined("chart"))??;
    let (external_total, external_top) = external.map_err(|_| joined("external addresses"))??;
    let gaps: Vec<_> = ctx
        .gaps
        .iter()
        .filter(|g| scope.filter.clusters.is_empty() || scope.filter.clusters.contains(&g.cluster))
        .filter(|g| {
            kubetrail_store::text::parse_time(&g.detected_at)
                .map(|t| {
                    let t = t.timestamp_micros();
                    t >= scope.from_micros && t < scope.to_micros
                })
                .unwrap_or(true)
        })
        .collect();
    let s = |add: &[(&str, &str)]| {
        let mut all = vec![("stages", "final")];
        all.extend_from_slice(add);
        scope.scoped("/search", &all)
    };
    let mut rbac: Vec<(&str, &str)> = RBAC.iter().map(|r| ("resource", *r)).collect();
    rbac.extend(report::WRITE_VERBS.iter().map(|v| ("verb", *v)));
    let exec = [
        ("resource", "pods/exec"),
        ("resource", "pods/attach"),
        ("resource", "pods/portforward"),
    ];
    // Anonymous requests within the scope: with a user filter, only the anonymous names it
    // holds (the tile then counts their intersection).
    let anonymous_users: Vec<&str> = ["system:anonymous", ""]
        .into_iter()
        .filter(|u| scope.filter.users.is_empty() || scope.filter.users.iter().any(|s| s == u))
        .map(format::user)
        .collect();
    let mut anonymous_add: Vec<(&str, &str)> = vec![("stages", "final")];
    anonymous_add.extend(anonymous_users.iter().map(|u| ("user", *u)));
    let anonymous_link = if anonymous_users.is_empty() {
        // Nothing anonymous can be in scope; the tile counts 0.
        "#anonymous".to_string()
    } else {
        scope.without("/search", &["user", "by", "cursor"], &anonymous_add)
    };
    let split_link = |by: &str| scope.without("/", &["by"], &[("by", by)]);
    let body = html! {
        h1 { "Overview" }
        (layout::scope_bar(&scope, "/", &["by"]))
        div.tiles {
            (tile("Requests", o.requests, &s(&[]), "requests", false))
            (tile("Failed", o.failed.total, &s(&[("code", "failed")]), "failed", true))
            (tile("Forbidden", o.forbidden.total, &s(&[("code", "403")]), "forbidden", true))
            (tile("Deletions", o.deletions.total, &s(&[("verb", "delete"), ("verb", "deletecollection")]), "deletions", false))
            (tile("Exec / attach / port-forward", o.exec_attach.total, &s(&exec), "exec", true))
            (tile("Secret access", o.secret_access.total, &s(&[("resource", "secrets")]), "secrets", false))
            (tile("RBAC changes", o.rbac_changes.total, &s(&rbac), "rbac", true))
            (tile("Anonymous", o.anonymous.total, &anonymous_link, "anonymous", true))
            (tile("From outside", external_total, "#external", "external", true))
            (tile("Collection gaps", gaps.len() as u64, "#gaps", "gaps", true))
        }
        section.panel.wide {
            div.panelhead {
                h2 { "Activity" }
                div.ranges role="group" aria-label="split by" {
                    a.range href=(split_link("verb")) aria-current=[(split == Split::Verb).then_some("true")] { "by verb" }
                    a.range href=(split_link("code")) aria-current=[(split == Split::Class).then_some("true")] { "by response" }
                }
            }
            (chart)
        }
        div.grid {
            (counts::key_table(&scope, "top-users", "Top users", &o.top_users, Some("user"), TOP))
            (counts::key_table(&scope, "top-resources", "Top resources", &o.top_resources, Some("resource"), TOP))
            (counts::key_table(&scope, "top-namespaces", "Top namespaces", &o.top_namespaces, Some("namespace"), TOP))
            (counts::key_table(&scope, "by-verb", "Requests by verb", &o.by_verb, Some("verb"), TOP))
            (counts::section_table(&scope, "failed", "Failed requests", &o.failed, &["User", "Code"], &[Some("user"), Some("code")], &[("stages", "final")]))
            (counts::section_table(&scope, "forbidden", "Forbidden requests", &o.forbidden, &["User"], &[Some("user")], &[("stages", "final"), ("code", "403")]))
            (counts::section_table(&scope, "deletions", "Deletions", &o.deletions, &["User", "Resource"], &[Some("user"), Some("resource")], &[("stages", "final"), ("verb", "delete"), ("verb", "deletecollection")]))
            (counts::section_table(&scope, "exec-attach", "Exec, attach and port-forward", &o.exec_attach, &["User"], &[Some("user")], &[&[("stages", "final")], &exec[..]].concat()))
            (counts::section_table(&scope, "secret-access", "Secret access", &o.secret_access, &["User", "Verb"], &[Some("user"), Some("verb")], &[("stages", "final"), ("resource", "secrets")]))
            (counts::section_table(&scope, "rbac-changes", "RBAC changes", &o.rbac_changes, &["User", "Resource"], &[Some("user"), None], &[&[("stages", "final")], &rbac[..]].concat()))
            (counts::section_table(&scope, "anonymous", "Anonymous requests", &o.anonymous, &["Resource"], &[Some("resource")], &anonymous_add))
            (counts::section_table(&scope, "external", "Requests from outside the internal networks", &Section { total: external_total, top: external_top }, &["Source address", "User"], &[Some("sourceIP"), Some("user")], &[("stages", "final")]))
        }
        p.note { "Internal networks: " (ctx.networks.describe()) }
        section.panel.wide #gaps {
            h2 { "Collection gaps " span.muted { (gaps.len()) } }
            @if gaps.is_empty() {
                p.empty { "No agent reported lost data in this range." }
            } @else {
                table {
                    thead { tr { th { "Detected" } th { "Cluster" } th { "Node" } th { "File" } th.num { "Bytes lost (at least)" } th { "Reason" } } }
                    tbody {
                        @for g in &gaps {
                            tr { td { (g.detected_at) } td { (g.cluster) } td { (g.node) } td { code { (g.file) } } td.num { (format::count(g.bytes)) } td { (g.reason) } }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(
        ctx.viewer,
        "Overview",
        Nav::Overview,
        Some(&scope),
        body,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_the_bar_count_bounded() {
        let h = 3_600_000_000;
        assert_eq!(bucket_for(h), 60_000_000);
        assert_eq!(bucket_for(24 * h), 1_800_000_000);
        assert_eq!(bucket_for(7 * 24 * h), 3 * h);
        assert_eq!(bucket_for(30 * 24 * h), 12 * h);
        // Any range, however long, draws a bounded number of bars.
        let span = 9_000 * 365 * 24 * h;
        assert!(span / bucket_for(span) <= MAX_BARS);
    }

    #[test]
    fn histogram_buckets_fill_their_slots_and_small_verbs_share_other() {
        let b = |start: i64, key: &str, count: u64| HistogramBucket {
            start_micros: start,
            key: Some(key.into()),
            count,
        };
        let verbs = [
            "get", "list", "watch", "create", "update", "patch", "delete", "proxy", "post",
        ];
        let mut buckets: Vec<HistogramBucket> = verbs
            .iter()
            .enumerate()
            .map(|(i, v)| b(60, v, 100 - i as u64))
            .collect();
        buckets.push(b(120, "get", 5));
        let (starts, series) = series_of(&buckets, 30, 150, 60, Split::Verb);
        assert_eq!(starts, [0, 60, 120]);
        assert_eq!(series.len(), VERB_SERIES + 1);
        assert_eq!(series[0].name, "get");
        assert_eq!(series[0].values, [0, 100, 5]);
        let other = series.last().unwrap();
        assert_eq!(other.name, "other");
        assert_eq!(other.values, [0, 93 + 92, 0]);
        let total: u64 = series.iter().flat_map(|s| &s.values).sum();
        assert_eq!(total, buckets.iter().map(|b| b.count).sum::<u64>());

        let (_, classes) = series_of(
            &[b(0, "200", 3), b(0, "201", 1), b(0, "403", 2), b(0, "", 1)],
            0,
            60,
            60,
            Split::Class,
        );
        let names: Vec<&str> = classes.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["2xx", "4xx", "no code"]);
        assert_eq!(classes[0].values, [4]);
    }
}
