//! The overview: requests over time, the largest users, resources and namespaces, and the
//! sections an audit centre watches (failures, forbidden requests, deletions, exec / attach,
//! secret access, RBAC changes, anonymous and external requests, collection gaps). Every count
//! links to the events behind it.

use kubetrail_report::{self as report, Drill, Overview, TOP};
use kubetrail_store::{Aggregation, AggregationResult, Field, Filter, HistogramBucket};
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
    // Each bar opens the events it counts: the scope in the bar's part of the range.
    let link = |start: i64| {
        let f = Filter {
            time: kubetrail_store::TimeRange {
                from_micros: Some(start.max(scope.from_micros)),
                to_micros: Some((start + width).min(scope.to_micros)),
            },
            ..report::base(&scope.filter)
        };
        let mut pairs = vec![("range", "custom".to_string())];
        for (k, v) in kubetrail_api::params::filter_to_pairs(&f) {
            pairs.push(match (k, v.as_str()) {
                ("user", "") => (k, crate::scope::NO_USER.to_string()),
                _ => (k, v),
            });
        }
        crate::scope::with_query("/search", pairs)
    };
    Ok(chart::time_bars(
        title,
        &starts,
        width,
        &series,
        Some(&link),
    ))
}

/// How the overview shows a drill-down: the tile's label, the section's anchor, its columns,
/// and whether a non-zero count is a warning.
fn presentation(drill: Drill) -> (&'static str, &'static str, &'static [&'static str], bool) {
    match drill {
        Drill::Failed => ("Failed", "failed", &["User", "Code"], true),
        Drill::Forbidden => ("Forbidden", "forbidden", &["User"], true),
        Drill::Deletions => ("Deletions", "deletions", &["User", "Resource"], false),
        Drill::ExecAttach => (
            "Exec / attach / port-forward",
            "exec-attach",
            &["User"],
            true,
        ),
        Drill::SecretAccess => ("Secret access", "secret-access", &["User", "Verb"], false),
        Drill::RbacChanges => ("RBAC changes", "rbac-changes", &["User", "Resource"], true),
        Drill::Anonymous => ("Anonymous", "anonymous", &["Resource"], true),
    }
}

/// The latest exec, attach and port-forward requests with what each ran, each a link to its
/// request's events.
fn executed_panel(scope: &Scope, commands: &[report::ExecutedCommand]) -> Markup {
    html! {
        section.panel.wide #executed-commands {
            h2 { "Executed commands" }
            @if commands.is_empty() {
                p.empty { "No exec, attach or port-forward in this range." }
            } @else {
                table {
                    thead { tr { th { "Time" } th { "User" } th { "Pod" } th { "Container" } th { "Command" } th.num { "Code" } } }
                    tbody {
                        @for c in commands {
                            @let events = scope.filter_link("/search", &Filter {
                                clusters: vec![c.cluster.clone()],
                                audit_ids: vec![c.audit_id.clone()],
                                ..Filter::default()
                            });
                            @let time = kubetrail_store::text::parse_time(&c.time)
                                .map(|t| format::time(t.timestamp_micros()))
                                .unwrap_or_else(|_| c.time.clone());
                            tr {
                                td.time { @match &events { Some(h) => a href=(h) { (time) }, None => (time) } }
                                td {
                                    (format::breakable(format::user(&c.user)))
                                    @if !c.impersonated_user.is_empty() { " → " (format::breakable(&c.impersonated_user)) }
                                }
                                td { (format::breakable(&format!("{}/{}", c.namespace, c.pod))) }
                                td.nowrap { (c.container.as_deref().unwrap_or("(default)")) }
                                td {
                                    @match c.kind.as_str() {
                                        "exec" => code.command { (c.command_line) },
                                        "attach" => span.muted { "attach" },
                                        _ => span.muted { "port-forward" },
                                    }
                                    @if c.tty { " " span.muted title="interactive terminal" { "(tty)" } }
                                }
                                td.num { (format::code(c.code)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Renders `/`.
pub fn render(ctx: &Context<'_>, query: &str) -> Result<Markup, UiError> {
    let scope = Scope::of(ctx, query, &["by"])?;
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
        let external = t.spawn(|| report::from_outside(ctx.store, &scope.filter, ctx.networks));
        let o = report::overview(ctx.store, &scope.filter);
        (o, chart.join(), external.join())
    });
    let joined = |what: &str| UiError::Internal(format!("computing the {what} failed"));
    let o: Overview = o?;
    let empty = match o.requests {
        0 => Some(layout::empty_range(ctx, &scope, "/")?),
        _ => None,
    };
    let chart = chart.map_err(|_| joined("chart"))??;
    let external = external.map_err(|_| joined("external addresses"))??;
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
    // Each drill-down's count and the list behind it are one filter.
    let all = report::base(&scope.filter);
    let drills: Vec<(Drill, Option<Filter>)> = Drill::ALL
        .into_iter()
        .map(|d| Ok((d, d.within(&scope.filter)?)))
        .collect::<Result<_, kubetrail_store::Error>>()?;
    let list = |f: Option<&Filter>, anchor: &str| {
        f.and_then(|f| scope.filter_link("/search", f))
            .unwrap_or_else(|| format!("#{anchor}"))
    };
    let alerts = crate::alerts::overview_panel(ctx, &scope)?;
    let split_link = |by: &str| scope.without("/", &["by"], &[("by", by)]);
    let body = html! {
        h1 { "Overview" }
        (layout::scope_bar(&scope, "/", &["by"]))
        @if let Some(notice) = &empty { (notice) }
        div.tiles {
            (tile("Requests", o.requests, &list(Some(&all), "requests"), "requests", false))
            @for (d, f) in &drills {
                @let (label, anchor, _, alert) = presentation(*d);
                (tile(label, o.section(*d).total, &list(f.as_ref(), anchor), d.name(), alert))
            }
            (tile("From outside", external.total, "#external", "external", true))
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
            @if let Some(panel) = &alerts { (panel) }
            (counts::key_table(&scope, "top-users", "Top users", &o.top_users, Field::User, &all, TOP))
            (counts::key_table(&scope, "top-resources", "Top resources", &o.top_resources, Field::Resource, &all, TOP))
            (counts::key_table(&scope, "top-namespaces", "Top namespaces", &o.top_namespaces, Field::Namespace, &all, TOP))
            (counts::key_table(&scope, "by-verb", "Requests by verb", &o.by_verb, Field::Verb, &all, TOP))
            @for (d, f) in &drills {
                @let (_, anchor, columns, _) = presentation(*d);
                (counts::section_table(&scope, anchor, d.title(), o.section(*d), columns, d.breakdown(), f.as_ref()))
            }
            (counts::section_table(&scope, "external", "Requests from outside the internal networks", &external, &["Source address", "User"], &[Field::SourceIp, Field::User], Some(&all)))
        }
        (executed_panel(&scope, &o.executed_commands))
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
    let body = html! { (body) (integrity_panel(ctx, &scope)) };
    Ok(layout::page(
        ctx.viewer,
        "Overview",
        Nav::Overview,
        Some(&scope),
        body,
    ))
}

/// What the server's checks of the hash chain found, for the clusters in scope.
fn integrity_panel(ctx: &Context<'_>, scope: &Scope) -> Markup {
    let in_scope = |c: &str| {
        (scope.filter.clusters.is_empty() || scope.filter.clusters.iter().any(|s| s == c))
            && ctx.viewer.cluster.as_deref().is_none_or(|v| v == c)
    };
    html! {
        section.panel.wide #integrity {
            h2 { "Trail integrity" }
            @match ctx.integrity {
                None => p.empty { "This server keeps no hash chain over the events." },
                Some(i) => {
                    @let problems: Vec<&(String, String)> = i.problems.iter().filter(|(c, _)| in_scope(c)).collect();
                    @let (links, events) = i.clusters.iter().filter(|(c, _, _)| in_scope(c)).fold((0, 0), |(l, e), (_, cl, ce)| (l + cl, e + ce));
                    @if !problems.is_empty() {
                        p.error role="alert" data-integrity="broken" {
                            "NOT INTACT: the server's checks found problems since it started; the newest are listed. "
                            "Run " code { "kubetrail verify" } " for every one."
                        }
                        ul { @for (cluster, what) in &problems { li { b { (cluster) } ": " (what) } } }
                    } @else if i.error.is_some() {
                        // What failed may name other clusters: the viewer is told only that it did.
                        p.error role="alert" data-integrity="unknown" {
                            "The last check of the hash chain could not run: the trail's integrity is not known. "
                            "Run " code { "kubetrail verify" } "."
                        }
                    } @else if let Some(at) = &i.checked_at {
                        p data-integrity="intact" {
                            "Intact at " (at) ": " (format::count(links)) " links, and the "
                            (format::count(events)) " events of the newest, verified. The server checks the newest links every 5 minutes; "
                            code { "kubetrail verify" } " checks the whole trail."
                        }
                    } @else {
                        p.empty data-integrity="pending" { "Not checked yet: the first check runs as the server starts." }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Viewer;

    /// A link is the drill-down's filter written out: the search page it opens reads back
    /// exactly the filter the tile counted ([`Drill::within`]), in every scope, for a bound
    /// viewer too; and so does the link of each row of a section.
    #[test]
    fn every_drill_down_link_asks_what_its_count_counted() {
        const NOW: i64 = 1_764_151_200_000_000;
        let viewer = Viewer {
            name: "ui".into(),
            cluster: Some("prod".into()),
            session: true,
        };
        let read = |link: &str| {
            let (_, query) = link.split_once('?').unwrap();
            Scope::parse(query, &[], NOW, &viewer).unwrap().filter
        };
        let mut links = 0;
        for q in [
            "",
            "user=alice",
            "user=(none)&user=bob",
            "namespace=prod&range=7d",
            "range=custom&from=2025-11-26T09:00&to=2025-11-26T10:00",
            "code=5xx&code=403",
            "resource=roles&resource=pods&verb=create",
        ] {
            let scope = Scope::parse(q, &["by"], NOW, &viewer).unwrap();
            for d in Drill::ALL {
                let Some(f) = d.within(&scope.filter).unwrap() else {
                    continue;
                };
                let link = scope.filter_link("/search", &f).unwrap();
                assert_eq!(read(&link), f, "{q}: {d}: {link}");
                links += 1;
                // A row of the section: its keys narrow the drill-down further.
                let keys: Vec<String> = d
                    .breakdown()
                    .iter()
                    .map(|field| match field {
                        Field::User => String::new(),
                        Field::Code => "403".into(),
                        Field::Resource => "roles.rbac.authorization.k8s.io".into(),
                        _ => "delete".into(),
                    })
                    .collect();
                if let Some(row) =
                    report::group_filter(d.breakdown(), &keys).and_then(|g| f.and(&g).unwrap())
                {
                    let link = scope.filter_link("/search", &row).unwrap();
                    assert_eq!(read(&link), row, "{q}: {d} row: {link}");
                    links += 1;
                }
            }
        }
        assert!(links > 30, "{links}");
    }

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
