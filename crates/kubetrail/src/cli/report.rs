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
    match args.kind {
        ReportKind::Overview => {
            let o = source.report(ReportKind::Overview, &scope, |s| {
                report::overview(s, &scope)
            })?;
            if json {
                println!("{}", serde_json::to_string(&o)?);
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
                println!("{}", serde_json::to_string(&r)?);
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
                println!("{}", serde_json::to_string(&u)?);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = u
                .iter()
                .map(|a| {
                    vec![
                        a.user.clone(),
                        a.requests.to_string(),
                        a.writes.to_string(),
                        a.failed.to_string(),
                        a.forbidden.to_string(),
                    ]
                })
                .collect();
            print!(
                "{}",
                render(
                    &["USER", "REQUESTS", "WRITES", "FAILED", "FORBIDDEN"],
                    &rows
                )
            );
        }
        ReportKind::Failures => {
            let f = source.report(ReportKind::Failures, &scope, |s| {
                report::failures(s, &scope)
            })?;
            if json {
                println!("{}", serde_json::to_string(&f)?);
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
