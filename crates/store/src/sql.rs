//! The query model compiled to SQL. Both backends share the table layout and this compiler;
//! the few functions that differ between DuckDB and ClickHouse go through [`Dialect`].
//! Values are never spliced into SQL text: they are returned as parameters to bind.

use std::collections::HashMap;

use crate::query::{
    Aggregation, CodeFilter, Cursor, Field, Filter, GroupCount, SectionCount, SectionSpec,
    StageSelection,
};

/// Separator around each group in the `groups` column: `"\u{1f}dev\u{1f}ops\u{1f}"`.
pub const GROUP_SEP: char = '\u{1f}';

/// The columns of a [`Record`](crate::Record). The table has one more, `counted` (see
/// [`crate::record::stands_for_request`]), filled by the store, and keeps `content_hash` last.
pub const COLUMNS: &[&str] = &[
    "cluster",
    "audit_id",
    "stage",
    "level",
    "ts",
    "request_ts",
    "received",
    "verb",
    "username",
    "groups",
    "impersonated_user",
    "source_ip",
    "user_agent",
    "api_group",
    "api_version",
    "resource",
    "subresource",
    "namespace",
    "name",
    "code",
    "decision",
    "reason",
    "request_uri",
    "raw",
    "content_hash",
];

/// The order of pages, newest first, and of the cursor: (time, cluster, auditID, stage,
/// content hash), descending.
pub const PAGE_ORDER: &str =
    "ORDER BY ts DESC, cluster DESC, audit_id DESC, stage DESC, content_hash DESC";

/// A value to bind to a `?` placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    /// An integer.
    Int(i64),
    /// A string.
    Text(String),
}

/// Where the SQL of the two backends differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// DuckDB.
    DuckDb,
    /// DuckDB over a table of pre-counted rows: each row stands for `n` events, so counts are
    /// sums of `n`.
    DuckDbCounted,
    /// ClickHouse.
    ClickHouse,
}

impl Dialect {
    fn starts_with(self, text: &str) -> String {
        match self {
            Dialect::DuckDb | Dialect::DuckDbCounted => format!("starts_with({text}, ?)"),
            Dialect::ClickHouse => format!("position({text}, ?) = 1"),
        }
    }

    fn contains(self, haystack: &str) -> String {
        match self {
            Dialect::DuckDb | Dialect::DuckDbCounted => format!("contains({haystack}, ?)"),
            Dialect::ClickHouse => format!("position({haystack}, ?) > 0"),
        }
    }

    /// The number of events in a group.
    fn count(self) -> &'static str {
        match self {
            Dialect::DuckDb | Dialect::ClickHouse => "count(*)",
            Dialect::DuckDbCounted => "CAST(coalesce(sum(n), 0) AS BIGINT)",
        }
    }

    fn count_if(self, cond: &str) -> String {
        match self {
            Dialect::DuckDb => format!("count(*) FILTER (WHERE {cond})"),
            Dialect::DuckDbCounted => {
                format!("CAST(coalesce(sum(n) FILTER (WHERE {cond}), 0) AS BIGINT)")
            }
            Dialect::ClickHouse => format!("countIf({cond})"),
        }
    }

    fn to_text(self, expr: &str) -> String {
        match self {
            Dialect::DuckDb | Dialect::DuckDbCounted => format!("CAST({expr} AS VARCHAR)"),
            Dialect::ClickHouse => format!("toString({expr})"),
        }
    }
}

/// SQL text with its parameters.
#[derive(Debug, Default)]
pub struct Sql {
    /// The statement, with `?` placeholders.
    pub text: String,
    /// The values for the placeholders, in order.
    pub params: Vec<Param>,
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// `WHERE ...` for a filter (and an optional cursor), or `""` when nothing constrains.
pub fn where_clause(d: Dialect, f: &Filter, cursor: Option<&Cursor>) -> Sql {
    let mut conds: Vec<String> = Vec::new();
    let mut params = Vec::new();
    if let Some(from) = f.time.from_micros {
        conds.push("ts >= ?".into());
        params.push(Param::Int(from));
    }
    if let Some(to) = f.time.to_micros {
        conds.push("ts < ?".into());
        params.push(Param::Int(to));
    }
    let mut any_of = |column: &str, values: &[String]| {
        if !values.is_empty() {
            conds.push(format!("{column} IN ({})", placeholders(values.len())));
            params.extend(values.iter().cloned().map(Param::Text));
        }
    };
    any_of("cluster", &f.clusters);
    any_of("username", &f.users);
    any_of("verb", &f.verbs);
    any_of("namespace", &f.namespaces);
    any_of("name", &f.names);
    any_of("audit_id", &f.audit_ids);
    any_of("source_ip", &f.source_ips);
    any_of("impersonated_user", &f.impersonated_users);
    if !f.identities.is_empty() {
        // `""` is "no authenticated user": a request that impersonated no one has an empty
        // impersonated user too, and is not "acting as nobody".
        let named: Vec<&String> = f.identities.iter().filter(|i| !i.is_empty()).collect();
        let users = placeholders(f.identities.len());
        params.extend(f.identities.iter().cloned().map(Param::Text));
        if named.is_empty() {
            conds.push(format!("username IN ({users})"));
        } else {
            conds.push(format!(
                "(username IN ({users}) OR impersonated_user IN ({}))",
                placeholders(named.len())
            ));
            params.extend(named.into_iter().cloned().map(Param::Text));
        }
    }
    for u in &f.excluded_users {
        match u.strip_suffix('*') {
            // `*` alone: every user, the unauthenticated ones included.
            Some("") => conds.push("1 = 0".into()),
            Some(prefix) => {
                conds.push(format!("NOT {}", d.starts_with("username")));
                params.push(Param::Text(prefix.to_string()));
            }
            None => {
                conds.push("username <> ?".into());
                params.push(Param::Text(u.clone()));
            }
        }
    }
    if !f.groups.is_empty() {
        let parts: Vec<String> = f.groups.iter().map(|_| d.contains("groups")).collect();
        conds.push(format!("({})", parts.join(" OR ")));
        params.extend(
            f.groups
                .iter()
                .map(|g| Param::Text(format!("{GROUP_SEP}{g}{GROUP_SEP}"))),
        );
    }
    if !f.resources.is_empty() {
        let mut alts = Vec::new();
        for r in &f.resources {
            let mut parts = Vec::new();
            if let Some(g) = &r.group {
                parts.push("api_group = ?");
                params.push(Param::Text(g.clone()));
            }
            match &r.resource {
                Some(res) => {
                    parts.push("resource = ?");
                    params.push(Param::Text(res.clone()));
                }
                // Every resource: a non-resource request (`/healthz`) is none.
                None => parts.push("resource <> ''"),
            }
            if let Some(sub) = &r.subresource {
                parts.push("subresource = ?");
                params.push(Param::Text(sub.clone()));
            }
            alts.push(if parts.is_empty() {
                "1 = 1".to_string()
            } else {
                parts.join(" AND ")
            });
        }
        conds.push(format!("(({}))", alts.join(") OR (")));
    }
    if !f.codes.is_empty() {
        let alts: Vec<String> = f
            .codes
            .iter()
            .map(|c| match c {
                CodeFilter::Exact(code) => format!("code = {code}"),
                CodeFilter::Class(class) => {
                    let lo = i64::from(*class) * 100;
                    format!("(code >= {lo} AND code < {})", lo + 100)
                }
                CodeFilter::Failed => "code >= 400".to_string(),
            })
            .collect();
        conds.push(format!("({})", alts.join(" OR ")));
    }
    if let Some(decision) = f.decision {
        conds.push("decision = ?".into());
        params.push(Param::Text(decision.as_str().into()));
    }
    if let Some(text) = &f.text {
        conds.push(d.contains("raw"));
        params.push(Param::Text(text.clone()));
    }
    if f.stages == StageSelection::Final {
        conds.push("counted".into());
    }
    if let Some(c) = cursor {
        conds.push(
            "(ts < ? OR (ts = ? AND (cluster < ? OR (cluster = ? AND (audit_id < ? OR (audit_id = ? AND (stage < ? OR (stage = ? AND content_hash < ?))))))))"
                .into(),
        );
        params.extend([
            Param::Int(c.ts_micros),
            Param::Int(c.ts_micros),
            Param::Text(c.cluster.clone()),
            Param::Text(c.cluster.clone()),
            Param::Text(c.audit_id.clone()),
            Param::Text(c.audit_id.clone()),
            Param::Text(c.stage.clone()),
            Param::Text(c.stage.clone()),
            Param::Int(c.content_hash),
        ]);
    }
    let text = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    Sql { text, params }
}

/// `WHERE ...` for the events matching `f` and, when given, `extra` as well (whose time range
/// is not used: a report's sections narrow its scope, they do not move it).
pub fn where_clause_and(d: Dialect, f: &Filter, extra: Option<&Filter>) -> Sql {
    let mut w = where_clause(d, f, None);
    if let Some(extra) = extra {
        let mut e = extra.clone();
        e.time = crate::TimeRange::default();
        let x = where_clause(d, &e, None);
        if let Some(cond) = x.text.strip_prefix(" WHERE ") {
            w.text = if w.text.is_empty() {
                format!(" WHERE {cond}")
            } else {
                format!("{} AND ({cond})", w.text)
            };
            w.params.extend(x.params);
        }
    }
    w
}

/// The SQL expression for a field, as text.
pub fn field_expr(d: Dialect, field: Field) -> String {
    match field {
        Field::Cluster => "cluster".into(),
        Field::User => "username".into(),
        Field::ImpersonatedUser => "impersonated_user".into(),
        Field::Verb => "verb".into(),
        Field::Resource => "concat(resource, CASE WHEN api_group = '' THEN '' ELSE concat('.', api_group) END, CASE WHEN subresource = '' THEN '' ELSE concat('/', subresource) END)".into(),
        Field::ApiGroup => "api_group".into(),
        Field::Namespace => "namespace".into(),
        Field::Name => "name".into(),
        Field::Code => d.to_text("code"),
        Field::Decision => "decision".into(),
        Field::Stage => "stage".into(),
        Field::Level => "level".into(),
        Field::UserAgent => "user_agent".into(),
        Field::SourceIp => "source_ip".into(),
    }
}

/// The stored columns a field is made of. Grouping happens on these (cheap), and the field's
/// text is built from the few groups afterwards: building `resource.group/subresource` for
/// every one of millions of rows costs more than the whole grouping.
fn field_columns(field: Field) -> &'static [&'static str] {
    match field {
        Field::Cluster => &["cluster"],
        Field::User => &["username"],
        Field::ImpersonatedUser => &["impersonated_user"],
        Field::Verb => &["verb"],
        Field::Resource => &["resource", "api_group", "subresource"],
        Field::ApiGroup => &["api_group"],
        Field::Namespace => &["namespace"],
        Field::Name => &["name"],
        Field::Code => &["code"],
        Field::Decision => &["decision"],
        Field::Stage => &["stage"],
        Field::Level => &["level"],
        Field::UserAgent => &["user_agent"],
        Field::SourceIp => &["source_ip"],
    }
}

fn distinct_columns(fields: &[Field]) -> Vec<&'static str> {
    let mut cols: Vec<&'static str> = Vec::new();
    for f in fields {
        for c in field_columns(*f) {
            if !cols.contains(c) {
                cols.push(c);
            }
        }
    }
    cols
}

/// `CountBy` over the events matching `filter` and, when given, `extra` as well: rows
/// `(key1[, key2], count, total of all groups)`, largest first.
pub fn select_count_by(
    d: Dialect,
    table: &str,
    f: &Filter,
    extra: Option<&Filter>,
    fields: &[Field],
    limit: Option<usize>,
) -> Sql {
    let w = where_clause_and(d, f, extra);
    if fields.is_empty() {
        return Sql {
            text: format!("SELECT {} FROM {table}{}", d.count(), w.text),
            params: w.params,
        };
    }
    let cols = distinct_columns(fields).join(", ");
    let keys: Vec<String> = fields
        .iter()
        .enumerate()
        .map(|(i, fl)| format!("{} AS k{i}", field_expr(d, *fl)))
        .collect();
    let order: Vec<String> = (0..fields.len()).map(|i| format!("k{i}")).collect();
    let limit = limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
    // The last column is the count over all groups (before LIMIT): a subset's total comes with
    // its top groups from the same scan.
    Sql {
        text: format!(
            "SELECT {}, n, sum(n) OVER () AS total FROM (SELECT {cols}, {} AS n FROM {table}{} GROUP BY {cols}) AS g ORDER BY n DESC, {}{limit}",
            keys.join(", "),
            d.count(),
            w.text,
            order.join(", ")
        ),
        params: w.params,
    }
}

/// Every section of an [`Aggregation::Sections`] in one scan: one row per group of the union
/// of the sections' fields, with one count per section, over the events matching `f` and at
/// least one section. Rows are the union fields' keys, then a count per section in order;
/// [`sections_from_groups`] turns them into the sections' answers. Returns the query and the
/// union of fields, in column order.
pub fn select_sections(
    d: Dialect,
    table: &str,
    f: &Filter,
    specs: &[SectionSpec],
) -> (Sql, Vec<Field>) {
    let mut fields: Vec<Field> = Vec::new();
    for spec in specs {
        for field in &spec.fields {
            if !fields.contains(field) {
                fields.push(*field);
            }
        }
    }
    let mut params = Vec::new();
    let mut counts = Vec::new();
    let mut any = Vec::new();
    let mut any_params = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let mut narrow = spec.filter.clone();
        narrow.time = crate::TimeRange::default();
        let x = where_clause(d, &narrow, None);
        let cond = x
            .text
            .strip_prefix(" WHERE ")
            .unwrap_or("1 = 1")
            .to_string();
        counts.push(format!("{} AS n{i}", d.count_if(&cond)));
        params.extend(x.params.iter().cloned());
        any.push(format!("({cond})"));
        any_params.extend(x.params);
    }
    let keys: Vec<String> = fields.iter().map(|fl| field_expr(d, *fl)).collect();
    let w = where_clause(d, f, None);
    params.extend(w.params);
    params.extend(any_params);
    let any = if any.is_empty() {
        "1 = 0".to_string()
    } else {
        any.join(" OR ")
    };
    let filter = if w.text.is_empty() {
        format!(" WHERE ({any})")
    } else {
        format!("{} AND ({any})", w.text)
    };
    // Grouped by the columns, the key text built from the few groups afterwards (as in
    // `select_count_by`): building `resource.group/subresource` for every row costs more.
    let cols = distinct_columns(&fields);
    let names: Vec<String> = (0..specs.len()).map(|i| format!("n{i}")).collect();
    let inner: Vec<String> = cols.iter().map(|c| c.to_string()).chain(counts).collect();
    let group = if cols.is_empty() {
        String::new()
    } else {
        format!(" GROUP BY {}", cols.join(", "))
    };
    let outer: Vec<String> = keys.into_iter().chain(names).collect();
    (
        Sql {
            text: format!(
                "SELECT {} FROM (SELECT {} FROM {table}{filter}{group}) AS g",
                outer.join(", "),
                inner.join(", ")
            ),
            params,
        },
        fields,
    )
}

/// The sections' answers from [`select_sections`]' rows (`keys` per union field, a count per
/// section): each section's total, and its largest groups (count descending, then keys
/// ascending, as `select_count_by` orders them).
pub fn sections_from_groups(
    specs: &[SectionSpec],
    fields: &[Field],
    rows: &[(Vec<String>, Vec<u64>)],
) -> Vec<SectionCount> {
    specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let idx: Vec<usize> = spec
                .fields
                .iter()
                .filter_map(|f| fields.iter().position(|g| g == f))
                .collect();
            let mut groups: HashMap<Vec<String>, u64> = HashMap::new();
            let mut total = 0;
            for (keys, counts) in rows {
                let n = counts.get(i).copied().unwrap_or(0);
                if n == 0 {
                    continue;
                }
                total += n;
                if !idx.is_empty() {
                    let key = idx.iter().map(|&j| keys[j].clone()).collect();
                    *groups.entry(key).or_default() += n;
                }
            }
            let mut top: Vec<GroupCount> = groups
                .into_iter()
                .map(|(keys, count)| GroupCount { keys, count })
                .collect();
            top.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.keys.cmp(&b.keys)));
            top.truncate(spec.limit);
            SectionCount { total, top }
        })
        .collect()
}

/// A newest-first page of events.
pub fn select_page(
    d: Dialect,
    table: &str,
    f: &Filter,
    cursor: Option<&Cursor>,
    limit: usize,
    columns: &str,
) -> Sql {
    let w = where_clause(d, f, cursor);
    Sql {
        text: format!(
            "SELECT {columns} FROM {table}{} {PAGE_ORDER} LIMIT {limit}",
            w.text
        ),
        params: w.params,
    }
}

/// The columns of a page: [`COLUMNS`], or with `heads` the same with `raw` read only for
/// impersonated requests ([`Store::query_heads`](crate::Store::query_heads)).
pub fn page_columns(heads: bool) -> String {
    COLUMNS
        .iter()
        .map(|c| match (*c, heads) {
            ("raw", true) => "CASE WHEN impersonated_user = '' THEN '' ELSE raw END AS raw",
            (c, _) => c,
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// An aggregation. CountBy returns rows `(key1[, key2], count)`; Histogram
/// `(bucket, key or '', count)`.
pub fn select_aggregation(d: Dialect, table: &str, f: &Filter, a: &Aggregation) -> Sql {
    let w = where_clause(d, f, None);
    let text = match a {
        Aggregation::CountBy { fields, limit } => {
            return select_count_by(d, table, f, None, fields, *limit);
        }
        Aggregation::CountEach { fields } => {
            let cols = distinct_columns(fields);
            let sets: Vec<String> = fields
                .iter()
                .map(|fl| format!("({})", field_columns(*fl).join(", ")))
                .chain(["()".to_string()])
                .collect();
            let marks: Vec<String> = fields
                .iter()
                .map(|fl| {
                    format!(
                        "grouping({}) AS g_{}",
                        field_columns(*fl)[0],
                        field_columns(*fl)[0]
                    )
                })
                .collect();
            let keys: Vec<String> = fields.iter().map(|fl| field_expr(d, *fl)).collect();
            let mark_names: Vec<String> = fields
                .iter()
                .map(|fl| format!("g_{}", field_columns(*fl)[0]))
                .collect();
            format!(
                "SELECT {}, {}, n FROM (SELECT {}, {}, {} AS n FROM {table}{} GROUP BY GROUPING SETS ({})) AS g",
                keys.join(", "),
                mark_names.join(", "),
                cols.join(", "),
                marks.join(", "),
                d.count(),
                w.text,
                sets.join(", ")
            )
        }
        Aggregation::Sections(_) => {
            unreachable!("sections are answered with select_sections and sections_from_groups")
        }
        Aggregation::Histogram { bucket, by } => {
            let b = (bucket.as_micros() as i64).max(1);
            let key = by
                .map(|fl| field_expr(d, fl))
                .unwrap_or_else(|| "''".into());
            format!(
                "SELECT ts - (ts % {b}) AS bucket, {key} AS k, {} AS n FROM {table}{} GROUP BY bucket, k ORDER BY bucket, n DESC, k",
                d.count(),
                w.text
            )
        }
    };
    Sql {
        text,
        params: w.params,
    }
}
