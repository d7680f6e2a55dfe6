//! ClickHouse SQL: the shared filter compiler's output with values bound on the client (old
//! servers have no query parameters), and the aggregations written without window functions
//! or grouping sets, which 18.16 lacks.

use std::time::Duration;

use kubetrail_store::sql::{Dialect, Param, Sql, field_expr, where_clause, where_clause_and};
use kubetrail_store::{Error, Field, Filter, Result, TimeRange};

/// A database name as an identifier (checked to be letters, digits and `_` on connect).
pub(crate) fn ident(name: &str) -> String {
    format!("`{name}`")
}

/// A string literal: quoted, with backslashes and quotes escaped.
pub(crate) fn literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The statement with each `?` replaced by its value.
pub(crate) fn bind(sql: &Sql) -> Result<String> {
    let mut out = String::with_capacity(sql.text.len() + 64);
    let mut params = sql.params.iter();
    for c in sql.text.chars() {
        if c == '?' {
            match params.next() {
                Some(Param::Int(i)) => out.push_str(&i.to_string()),
                Some(Param::Text(t)) => out.push_str(&literal(t)),
                None => return Err(Error::Invalid("more placeholders than values".into())),
            }
        } else {
            out.push(c);
        }
    }
    if params.next().is_some() {
        return Err(Error::Invalid("more values than placeholders".into()));
    }
    Ok(out)
}

/// ` WHERE ...` for a filter and, when given, an extra filter whose time range is not used.
/// Fails closed: conditions that do not bind are an error, never an empty `WHERE` that would
/// answer with every event of every cluster (a bound reader's too).
pub(crate) fn conditions(filter: &Filter, extra: Option<&Filter>) -> Result<String> {
    bound_where(&where_clause_and(Dialect::ClickHouse, filter, extra))
}

/// `where_clause`'s output bound, or the binding error.
fn bound_where(sql: &Sql) -> Result<String> {
    bind(sql).map_err(|e| Error::Internal(format!("the filter's SQL did not bind: {e}")))
}

/// A filter's conditions (its time range aside) as one boolean expression, `1` for none.
pub(crate) fn condition(filter: &Filter) -> Result<String> {
    let mut f = filter.clone();
    f.time = TimeRange::default();
    let bound = bind(&where_clause(Dialect::ClickHouse, &f, None))?;
    Ok(match bound.strip_prefix(" WHERE ") {
        Some(c) => format!("({c})"),
        None => "1".to_string(),
    })
}

/// Counts per distinct value of `fields`, largest first (ties by key).
pub(crate) fn count_by(
    table: &str,
    filter: &Filter,
    extra: Option<&Filter>,
    fields: &[Field],
    limit: Option<usize>,
) -> Result<String> {
    let keys: Vec<String> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| format!("{} AS k{i}", field_expr(Dialect::ClickHouse, *f)))
        .collect();
    let names: Vec<String> = (0..fields.len()).map(|i| format!("k{i}")).collect();
    let limit = limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
    Ok(format!(
        "SELECT {}, count() AS n FROM {table} FINAL{} GROUP BY {} ORDER BY n DESC, {}{limit}",
        keys.join(", "),
        conditions(filter, extra)?,
        names.join(", "),
        names.join(", ")
    ))
}

/// Events per time bucket, optionally split by a field.
pub(crate) fn histogram(
    table: &str,
    filter: &Filter,
    bucket: Duration,
    by: Option<Field>,
) -> Result<String> {
    let b = (bucket.as_micros() as i64).max(1);
    let key = by
        .map(|f| field_expr(Dialect::ClickHouse, f))
        .unwrap_or_else(|| "''".into());
    Ok(format!(
        "SELECT ts - (ts % {b}) AS bucket, {key} AS k, count() AS n FROM {table} FINAL{} GROUP BY bucket, k ORDER BY bucket, n DESC, k",
        conditions(filter, None)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_bound_as_escaped_literals() {
        assert_eq!(literal("it's a \\ test"), "'it\\'s a \\\\ test'");
        let sql = Sql {
            text: "a = ? AND b IN (?, ?)".into(),
            params: vec![
                Param::Int(-5),
                Param::Text("x'y".into()),
                Param::Text("?".into()),
            ],
        };
        assert_eq!(bind(&sql).unwrap(), "a = -5 AND b IN ('x\\'y', '?')");
        let short = Sql {
            text: "a = ? AND b = ?".into(),
            params: vec![Param::Int(1)],
        };
        assert!(bind(&short).is_err());
        // Conditions that do not bind fail the query; they do not become "no conditions".
        let e = bound_where(&Sql {
            text: " WHERE cluster IN (?)".into(),
            params: vec![],
        })
        .unwrap_err();
        assert_eq!(e.kind(), kubetrail_store::ErrorKind::Internal);
        assert!(e.to_string().contains("did not bind"), "{e}");
    }
}
