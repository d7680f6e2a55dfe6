//! `kubetrail report overview|resources|users|failures`.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, ValueEnum};
use kubetrail_report::{self as report, ReportKind};
use kubetrail_store::GroupCount;

use super::common::{ScopeArgs, SourceArgs};
use super::table::render;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportOutput {
    /// Tables.
    Table,
    /// One JSON document.
    Json,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Which report: overview (totals, top users/resources/namespaces, failures, exec,
    /// secrets, RBAC, anonymous), resources (writes per resource kind), users (activity per
    /// user) or failures (failed and forbidden requests).
    #[arg(value_parser = report_kind())]
    kind: ReportKind,
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    scope: ScopeArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: ReportOutput,
    /// With -o json: the snake_case keys of releases before 0.2 (`by_verb`, `exec_attach`)
    /// instead of camelCase. Kept for one release.
    #[arg(long)]
    snake_case_keys: bool,
}

/// `value` as JSON text, its object keys in snake_case when `snake` (the old report keys).
fn json_text(value: &impl serde::Serialize, snake: bool) -> Result<String> {
    let mut v = serde_json::to_value(value)?;
    if snake {
        snake_keys(&mut v);
    }
    Ok(serde_json::to_string(&v)?)
}

fn snake_keys(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            let old = std::mem::take(map);
            for (k, mut child) in old {
                snake_keys(&mut child);
                map.insert(snake_case(&k), child);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(snake_keys),
        _ => {}
    }
}

/// `byVerb` → `by_verb`; a run of capitals is one word (`auditID` → `audit_id`).
fn snake_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    let mut previous_upper = false;
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            if !previous_upper && !out.is_empty() {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
        previous_upper = c.is_ascii_uppercase();
    }
    out
}

/// The report names as clap lists them, read as [`ReportKind`].
fn report_kind() -> impl clap::builder::TypedValueParser<Value = ReportKind> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(ReportKind::ALL.map(ReportKind::name))
        .try_map(|s| s.parse::<ReportKind>())
}

fn groups_table(title: &str, headers: &[&str], groups: &[GroupCount]) -> String {
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            let mut row = g.keys.clone();
            row.push(g.count.to_string());
            row
        })
        .collect();
    format!("{title}\n{}", render(headers, &rows))
}

pub fn run(args: ReportArgs) -> Result<ExitCode> {
    let scope = args.scope.filter()?;
    let source = args.source.open()?;
    let json = matches!(args.output, ReportOutput::Json);
    if args.snake_case_keys && !json {
        anyhow::bail!("--snake-case-keys is for -o json");
    }
    match args.kind {
        ReportKind::Overview => {
            let o = source.report(ReportKind::Overview, &scope, |s| {
                report::overview(s, &scope)
            })?;
            if json {
                println!("{}", json_text(&o, args.snake_case_keys)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!("requests: {}\n", o.requests);
            let sections = [
                ("failed", &o.failed),
                ("forbidden", &o.forbidden),
                ("deletions", &o.deletions),
                ("exec/attach/port-forward", &o.exec_attach),
                ("secret access", &o.secret_access),
                ("RBAC changes", &o.rbac_changes),
                ("anonymous", &o.anonymous),
            ];
            let rows: Vec<Vec<String>> = sections
                .iter()
                .map(|(name, s)| vec![name.to_string(), s.total.to_string()])
                .collect();
            println!("{}", render(&["WHAT", "REQUESTS"], &rows));
            println!(
                "{}",
                groups_table("by verb", &["VERB", "REQUESTS"], &o.by_verb)
            );
            println!(
                "{}",
                groups_table("top users", &["USER", "REQUESTS"], &o.top_users)
            );
            println!(
                "{}",
                groups_table("top resources", &["RESOURCE", "REQUESTS"], &o.top_resources)
            );
            println!(
                "{}",
                groups_table(
                    "top namespaces",
                    &["NAMESPACE", "REQUESTS"],
                    &o.top_namespaces
                )
            );
            println!(
                "{}",
                groups_table("failed", &["USER", "CODE", "REQUESTS"], &o.failed.top)
            );
            println!(
                "{}",
                groups_table("forbidden", &["USER", "REQUESTS"], &o.forbidden.top)
            );
            println!(
                "{}",
                groups_table(
                    "deletions",
                    &["USER", "RESOURCE", "REQUESTS"],
                    &o.deletions.top
                )
            );
            println!(
                "{}",
                groups_table(
                    "exec/attach/port-forward",
                    &["USER", "REQUESTS"],
                    &o.exec_attach.top
                )
            );
            if !o.executed_commands.is_empty() {
                let rows: Vec<Vec<String>> = o
                    .executed_commands
                    .iter()
                    .map(|c| {
                        let user = match c.impersonated_user.as_str() {
                            "" => c.user.clone(),
                            as_user => format!("{} → {as_user}", c.user),
                        };
                        let what = match c.kind.as_str() {
                            "exec" => c.command_line.clone(),
                            other => other.to_string(),
                        };
                        vec![
                            c.time.clone(),
                            user,
                            format!("{}/{}", c.namespace, c.pod),
                            c.container.clone().unwrap_or_default(),
                            what,
                        ]
                    })
                    .collect();
                println!(
                    "executed commands (latest)\n{}",
                    render(&["TIME", "USER", "POD", "CONTAINER", "COMMAND"], &rows)
                );
            }
            println!(
                "{}",
                groups_table(
                    "secret access",
                    &["USER", "VERB", "REQUESTS"],
                    &o.secret_access.top
                )
            );
            println!(
                "{}",
                groups_table(
                    "RBAC changes",
                    &["USER", "RESOURCE", "REQUESTS"],
                    &o.rbac_changes.top
                )
            );
            print!(
                "{}",
                groups_table("anonymous", &["RESOURCE", "REQUESTS"], &o.anonymous.top)
            );
        }
        ReportKind::Resources => {
            let r = source.report(ReportKind::Resources, &scope, |s| {
                report::resources(s, &scope)
            })?;
            if json {
                println!("{}", json_text(&r, args.snake_case_keys)?);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = r
                .iter()
                .map(|w| {
                    vec![
                        w.resource.clone(),
                        w.create.to_string(),
                        w.update.to_string(),
                        w.patch.to_string(),
                        w.delete.to_string(),
                        w.total.to_string(),
                    ]
                })
                .collect();
            print!(
                "{}",
                render(
                    &["RESOURCE", "CREATE", "UPDATE", "PATCH", "DELETE", "TOTAL"],
                    &rows
                )
            );
        }
        ReportKind::Users => {
            let u = source.report(ReportKind::Users, &scope, |s| report::users(s, &scope))?;
            if json {
                println!("{}", json_text(&u, args.snake_case_keys)?);
                return Ok(ExitCode::SUCCESS);
            }
            // Requests are counted by the identity that acted; who impersonated it is shown
            // when anyone did.
            let via = u.iter().any(|a| !a.impersonated_by.is_empty());
            let rows: Vec<Vec<String>> = u
                .iter()
                .map(|a| {
                    let mut row = vec![
                        a.user.clone(),
                        a.requests.to_string(),
                        a.writes.to_string(),
                        a.failed.to_string(),
                        a.forbidden.to_string(),
                    ];
                    if via {
                        row.push(a.impersonated_by.join(", "));
                    }
                    row
                })
                .collect();
            let mut headers = vec!["USER", "REQUESTS", "WRITES", "FAILED", "FORBIDDEN"];
            if via {
                headers.push("IMPERSONATED BY");
            }
            print!("{}", render(&headers, &rows));
        }
        ReportKind::Failures => {
            let f = source.report(ReportKind::Failures, &scope, |s| {
                report::failures(s, &scope)
            })?;
            if json {
                println!("{}", json_text(&f, args.snake_case_keys)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{}",
                groups_table("failed requests by code", &["CODE", "REQUESTS"], &f.by_code)
            );
            println!(
                "{}",
                groups_table("by user", &["USER", "CODE", "REQUESTS"], &f.by_user)
            );
            println!(
                "{}",
                groups_table(
                    "by resource",
                    &["RESOURCE", "CODE", "REQUESTS"],
                    &f.by_resource
                )
            );
            print!(
                "{}",
                groups_table("forbidden", &["USER", "RESOURCE", "REQUESTS"], &f.forbidden)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::snake_case;

    #[test]
    fn the_old_keys_are_snake_case_with_acronyms_as_one_word() {
        for (camel, snake) in [
            ("byVerb", "by_verb"),
            ("execAttach", "exec_attach"),
            ("auditID", "audit_id"),
            ("requests", "requests"),
        ] {
            assert_eq!(snake_case(camel), snake);
        }
    }
}
