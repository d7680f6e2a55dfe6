//! One identity: how much it did and how much of it failed, when, on what, from which
//! addresses and with which clients, and its latest requests.

use kubetrail_report::{self as report, Drill};
use kubetrail_store::{Aggregation, AggregationResult, Field, Filter};
use maud::{Markup, html};
use serde_json::Value;

use crate::counts;
use crate::layout::{self, Nav, tile};
use crate::overview::{Split, activity};
use crate::scope::Scope;
use crate::search::events_table;
use crate::{Context, UiError, format};

/// Latest requests shown.
const RECENT: usize = 25;
/// Rows per breakdown.
const ROWS: usize = 10;

/// Renders `/user?user=NAME`.
pub fn render(ctx: &Context<'_>, query: &str) -> Result<Markup, UiError> {
    let scope = Scope::of(ctx, query, &[])?;
    let [name] = scope.filter.users.as_slice() else {
        return Err(UiError::BadRequest(
            "parameter user: the user page needs exactly one user".into(),
        ));
    };
    let name = name.clone();
    let base = report::base(&scope.filter);
    let counts = report::user_counts(ctx.store, &scope.filter)?;
    let list = |f: Option<Filter>| {
        f.and_then(|f| scope.filter_link("/search", &f))
            .unwrap_or_else(|| "#".to_string())
    };
    let fields = vec![
        Field::Verb,
        Field::Resource,
        Field::Namespace,
        Field::SourceIp,
        Field::UserAgent,
    ];
    let each = match ctx
        .store
        .aggregate(&base, &Aggregation::CountEach { fields })?
    {
        AggregationResult::Each { groups, .. } => groups,
        _ => Vec::new(),
    };
    let group = |i: usize| each.get(i).cloned().unwrap_or_default();
    // Both directions of impersonation: whom this identity acted as, and who acted as it.
    let count_by =
        |f: &Filter, field: Field| -> Result<Vec<kubetrail_store::GroupCount>, UiError> {
            let mut groups = ctx
                .store
                .aggregate(
                    f,
                    &Aggregation::CountBy {
                        fields: vec![field],
                        limit: None,
                    },
                )?
                .groups()
                .to_vec();
            groups.retain(|g| g.keys.first().is_some_and(|k| !k.is_empty()));
            Ok(groups)
        };
    let acted_as = count_by(&base, Field::ImpersonatedUser)?;
    let as_me = Filter {
        users: Vec::new(),
        impersonated_users: vec![name.clone()],
        ..base.clone()
    };
    let impersonated_by = count_by(&as_me, Field::User)?;
    let chart = activity(ctx, &scope, Split::Verb)?;
    let recent = ctx.store.query(&scope.filter, None, RECENT)?.records;
    let groups = recent
        .first()
        .and_then(|r| serde_json::from_str::<Value>(&r.raw).ok())
        .and_then(|v| {
            v.pointer("/user/groups")
                .and_then(Value::as_array)
                .map(|g| {
                    g.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
        })
        .unwrap_or_default();
    let body = html! {
        h1 { "User " span #user-name { (format::user(&name)) } }
        @if !groups.is_empty() {
            p.muted { "Groups (latest request): " (groups.join(", ")) }
        }
        (layout::scope_bar(&scope, "/user", &[]))
        div.tiles {
            (tile("Requests", counts.requests, &list(Some(base.clone())), "requests", false))
            (tile("Writes", counts.writes, &list(report::writes(&scope.filter)?), "writes", false))
            (tile("Failed", counts.failed, &list(Drill::Failed.within(&scope.filter)?), "failed", true))
            (tile("Forbidden", counts.forbidden, &list(Drill::Forbidden.within(&scope.filter)?), "forbidden", true))
        }
        section.panel.wide { h2 { "Activity" } (chart) }
        div.grid {
            (counts::key_table(&scope, "verbs", "Verbs", &group(0), Field::Verb, &base, ROWS))
            (counts::key_table(&scope, "resources", "Resources", &group(1), Field::Resource, &base, ROWS))
            (counts::key_table(&scope, "namespaces", "Namespaces", &group(2), Field::Namespace, &base, ROWS))
            (counts::key_table(&scope, "sources", "From where (source addresses)", &group(3), Field::SourceIp, &base, ROWS))
            (counts::key_table(&scope, "agents", "With which client (user agents)", &group(4), Field::UserAgent, &base, ROWS))
            @if !acted_as.is_empty() {
                (counts::key_table(&scope, "acted-as", "Acted as (impersonated users)", &acted_as, Field::ImpersonatedUser, &base, ROWS))
            }
            @if !impersonated_by.is_empty() {
                (counts::key_table(&scope, "impersonated-by", "Impersonated by", &impersonated_by, Field::User, &as_me, ROWS))
            }
        }
        section.panel.wide {
            h2 { "Latest requests " a.more href=(scope.href("/search", &[])) { "all events →" } }
            @if recent.is_empty() { p.empty { "No events in this range." } }
            @else { (events_table(&scope, &recent, true)) }
        }
        (crate::permissions::panels(ctx, &scope, &name)?)
    };
    Ok(layout::page(
        ctx.viewer,
        "User",
        Nav::Search,
        Some(&scope),
        body,
    ))
}
