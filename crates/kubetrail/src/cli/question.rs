//! `kubetrail search | who | history`: questions over the local store.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use kubetrail_store::{
    CodeFilter, Cursor, Decision, Filter, Record, ResourceSelector, StageSelection,
};

use super::common::{ScopeArgs, SourceArgs, TimeArgs, format_time, parse_verb};
use super::table::render;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EventOutput {
    /// kubectl-style table.
    Table,
    /// The table with more columns.
    Wide,
    /// The original event JSON, one event per line.
    Json,
    /// The wide columns as CSV, for a spreadsheet.
    Csv,
}

/// Filter flags of `search`.
#[derive(Debug, Args)]
pub struct FilterArgs {
    #[command(flatten)]
    scope: ScopeArgs,
    /// Group of the user (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// Verb (repeatable).
    #[arg(long = "verb", value_name = "VERB", value_parser = parse_verb)]
    verbs: Vec<String>,
    /// Resource: pods, deployments.apps, pods/exec (repeatable).
    #[arg(long = "resource", value_name = "RESOURCE", value_parser = parse_resource)]
    resources: Vec<ResourceSelector>,
    /// Object name (repeatable).
    #[arg(long = "name", value_name = "NAME")]
    names: Vec<String>,
    /// The request's auditID (repeatable): every stage of it.
    #[arg(long = "audit-id", value_name = "ID")]
    audit_ids: Vec<String>,
    /// First source IP, or a network of them: 10.0.0.0/8 (repeatable).
    #[arg(long = "source-ip", value_name = "IP")]
    source_ips: Vec<String>,
    /// Response code: 403, a class such as 4xx, or failed (repeatable).
    #[arg(long = "code", value_name = "CODE", value_parser = parse_code)]
    codes: Vec<CodeFilter>,
    /// Authorization decision: allow or forbid.
    #[arg(long, value_parser = parse_decision)]
    decision: Option<Decision>,
    /// Text anywhere in the event JSON (case-sensitive).
    #[arg(long)]
    text: Option<String>,
}

fn parse_resource(s: &str) -> Result<ResourceSelector, String> {
    kubetrail_store::ResourceSelector::parse_any_case(s)
}
fn parse_code(s: &str) -> Result<CodeFilter, String> {
    s.parse()
}
fn parse_decision(s: &str) -> Result<Decision, String> {
    s.parse()
}

impl FilterArgs {
    fn filter(&self) -> Result<Filter> {
        Ok(Filter {
            groups: self.groups.clone(),
            verbs: self.verbs.clone(),
            resources: self.resources.clone(),
            names: self.names.clone(),
            audit_ids: self.audit_ids.clone(),
            source_ips: self.source_ips.clone(),
            codes: self.codes.clone(),
            decision: self.decision,
            text: self.text.clone(),
            stages: StageSelection::All,
            ..self.scope.filter()?
        })
    }
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    filter: FilterArgs,
    /// At most this many events, newest first.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    limit: u32,
    /// Continue after a previous page (printed on stderr when there are more events).
    #[arg(long)]
    after: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: EventOutput,
}

/// `RESOURCE[.GROUP][/NAME[/SUBRESOURCE]]` as `who` and `history` take it.
fn parse_object(s: &str) -> Result<(ResourceSelector, Option<String>)> {
    let mut parts = s.splitn(3, '/');
    let resource = parts.next().unwrap_or("");
    let name = parts.next().map(str::to_string);
    let sub = parts.next();
    let mut sel =
        kubetrail_store::ResourceSelector::parse_any_case(resource).map_err(anyhow::Error::msg)?;
    if let Some(sub) = sub {
        sel.subresource = Some(sub.to_string());
    }
    if name.as_deref() == Some("") {
        bail!("invalid object {s:?}: empty name");
    }
    Ok((sel, name))
}

fn resource_cell(r: &Record) -> String {
    let mut s = r.resource_text();
    if s.is_empty() {
        // A non-resource request: show its path.
        s = r.request_uri.split('?').next().unwrap_or("").to_string();
    }
    s
}

/// The user as a person reads it: the authenticated one, and the one it acted as when it
/// impersonated (`system:admin → bob`).
fn user_cell(r: &Record) -> String {
    if r.impersonated_user.is_empty() {
        r.user.clone()
    } else {
        format!("{} → {}", r.user, r.impersonated_user)
    }
}

/// Prints a table, with a CLUSTER column after the first when `records` (one per row) come
/// from more than one cluster: the same object in two clusters must not read as one.
fn print_table(headers: &[&str], mut rows: Vec<Vec<String>>, records: &[Record]) {
    let spans_clusters = records.windows(2).any(|w| w[0].cluster != w[1].cluster);
    if !spans_clusters {
        return print!("{}", render(headers, &rows));
    }
    let mut headers = headers.to_vec();
    headers.insert(1, "CLUSTER");
    for (row, r) in rows.iter_mut().zip(records) {
        row.insert(1, r.cluster.clone());
    }
    print!("{}", render(&headers, &rows));
}

fn code_cell(r: &Record) -> String {
    r.code.map(|c| c.to_string()).unwrap_or_default()
}

fn print_events(records: &[Record], output: EventOutput) {
    match output {
        EventOutput::Json => {
            for r in records {
                println!("{}", r.raw);
            }
        }
        EventOutput::Table => {
            let rows: Vec<Vec<String>> = records
                .iter()
                .map(|r| {
                    vec![
                        format_time(r.ts_micros),
                        user_cell(r),
                        r.verb.clone(),
                        resource_cell(r),
                        r.namespace.clone(),
                        r.name.clone(),
                        code_cell(r),
                    ]
                })
                .collect();
            print_table(
                &[
                    "TIME",
                    "USER",
                    "VERB",
                    "RESOURCE",
                    "NAMESPACE",
                    "NAME",
                    "CODE",
                ],
                rows,
                records,
            );
        }
        EventOutput::Wide => print!("{}", render(&WIDE_COLUMNS, &wide_rows(records))),
        EventOutput::Csv => {
            if let Err(e) = write_csv(records, std::io::stdout().lock()) {
                eprintln!("writing CSV: {e}");
            }
        }
    }
}

/// What each write changed has no columns: `-o csv` lists events only.
pub(crate) fn no_csv_diff(output: EventOutput) -> Result<()> {
    if let EventOutput::Csv = output {
        bail!("-o csv lists events; what writes changed prints as a table or with -o json");
    }
    Ok(())
}

/// The columns of `-o wide` and `-o csv`.
const WIDE_COLUMNS: [&str; 16] = [
    "TIME",
    "CLUSTER",
    "USER",
    "AS",
    "VERB",
    "RESOURCE",
    "NAMESPACE",
    "NAME",
    "CODE",
    "DECISION",
    "STAGE",
    "SOURCE",
    "USER-AGENT",
    "AUDIT-ID",
    "MESSAGE",
    "COMMAND",
];

/// Why the apiserver answered as it did: `responseStatus.reason` and `.message` of the
/// stored event ("Forbidden: secrets is forbidden: User …"), or `""`.
fn response_message(r: &Record) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&r.raw) else {
        return String::new();
    };
    let text = |p: &str| {
        v.pointer(p)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
    };
    match (
        text("/responseStatus/reason"),
        text("/responseStatus/message"),
    ) {
        ("", m) => m.to_string(),
        (r, "") => r.to_string(),
        (r, m) => format!("{r}: {m}"),
    }
}

/// What an exec, attach or port-forward asked for (`sh -c 'id' in app`), or `""`.
fn stream_cell(r: &Record) -> String {
    kubetrail_model::StreamRequest::of(&r.resource, &r.subresource, &r.request_uri)
        .map(|s| s.summary())
        .unwrap_or_default()
}

fn wide_rows(records: &[Record]) -> Vec<Vec<String>> {
    records
        .iter()
        .map(|r| {
            vec![
                format_time(r.ts_micros),
                r.cluster.clone(),
                r.user.clone(),
                r.impersonated_user.clone(),
                r.verb.clone(),
                resource_cell(r),
                r.namespace.clone(),
                r.name.clone(),
                code_cell(r),
                r.decision.clone(),
                r.stage.map(|s| s.as_str().to_string()).unwrap_or_default(),
                r.source_ip.clone(),
                r.user_agent.clone(),
                r.audit_id.clone(),
                response_message(r),
                stream_cell(r),
            ]
        })
        .collect()
}

/// The wide columns as RFC 4180 CSV with a header. Audit data is attacker-written: a cell a
/// spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage
/// return) is written after a `'`, as OWASP advises, so opening the export runs nothing.
fn write_csv(records: &[Record], out: impl std::io::Write) -> csv::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(WIDE_COLUMNS)?;
    for row in wide_rows(records) {
        w.write_record(row.iter().map(|cell| {
            if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                format!("'{cell}")
            } else {
                cell.clone()
            }
        }))?;
    }
    w.flush()?;
    Ok(())
}

pub fn search(args: SearchArgs) -> Result<ExitCode> {
    let source = args.source.open()?;
    let filter = source.resolve(args.filter.filter()?)?;
    let cursor = match &args.after {
        Some(c) => Some(
            c.parse::<Cursor>()
                .map_err(|e| anyhow::anyhow!("--after: {e}"))?,
        ),
        None => None,
    };
    let page = source.page(&filter, cursor.as_ref(), args.limit as usize)?;
    if page.records.is_empty() && !matches!(args.output, EventOutput::Json | EventOutput::Csv) {
        eprintln!("no events match");
        source.explain_empty(&filter)?;
        return Ok(ExitCode::SUCCESS);
    }
    print_events(&page.records, args.output);
    if let Some(next) = page.next {
        eprintln!("more events: continue with --after {next}");
    }
    Ok(ExitCode::SUCCESS)
}

/// What `who` and `history` share: where to look and how to print.
#[derive(Debug, Args)]
pub struct ObjectScope {
    #[command(flatten)]
    source: SourceArgs,
    /// Namespace; without it, every namespace.
    #[arg(short = 'n', long = "namespace")]
    namespace: Option<String>,
    /// Cluster (repeatable).
    #[arg(long = "cluster", value_name = "CLUSTER")]
    clusters: Vec<String>,
    #[command(flatten)]
    time: TimeArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: EventOutput,
}

impl ObjectScope {
    /// The filter for `object` in this scope (its verbs left open).
    fn filter(&self, object: &str) -> Result<Filter> {
        let (resource, name) = parse_object(object)?;
        Ok(Filter {
            time: self.time.range()?,
            clusters: self.clusters.clone(),
            resources: vec![resource],
            names: name.into_iter().collect(),
            namespaces: self.namespace.clone().into_iter().collect(),
            ..Filter::default()
        })
    }
}

#[derive(Debug, Args)]
pub struct WhoArgs {
    /// The verb, e.g. delete.
    #[arg(value_parser = parse_verb)]
    verb: String,
    /// RESOURCE[.GROUP][/NAME[/SUBRESOURCE]], e.g. deployments/nginx or secrets.
    object: String,
    #[command(flatten)]
    scope: ObjectScope,
    /// Show what each write changed, like `git log -p`: the changed paths with old → new.
    /// With -o json, one line per write: {"event", "noop", "dryRun", "changes", "basis"}.
    #[arg(long)]
    diff: bool,
    /// Also show writes that changed nothing (no-op) and dry runs, which "who" leaves out.
    #[arg(long)]
    include_noop: bool,
}

pub fn who(args: WhoArgs) -> Result<ExitCode> {
    let filter = Filter {
        verbs: vec![args.verb.clone()],
        ..args.scope.filter(&args.object)?
    };
    let is_write = kubetrail_report::WRITE_VERBS.contains(&args.verb.as_str());
    if args.diff {
        no_csv_diff(args.scope.output)?;
    }
    if args.diff && !is_write {
        bail!(
            "--diff shows what writes changed: {} is not one of {}",
            args.verb,
            kubetrail_report::WRITE_VERBS.join(", ")
        );
    }
    let source = args.scope.source.open()?;
    let filter = source.resolve(filter)?;
    let records = source.requests(&filter)?;
    // A write that changed nothing, or a dry run, changed nothing: left out unless asked.
    let steps = if is_write && (args.diff || !args.include_noop) {
        kubetrail_report::steps_of(&records, |f, c, n| source.page(f, c, n))?
    } else {
        Vec::new()
    };
    if args.diff {
        if records.is_empty() {
            eprintln!("nobody did that (in the stored events)");
            source.explain_empty(&filter)?;
        }
        let json = matches!(args.scope.output, EventOutput::Json);
        super::diff::print(&records, &steps, json, args.include_noop)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut hidden = 0;
    let records: Vec<Record> = if steps.is_empty() {
        records
    } else {
        records
            .into_iter()
            .zip(&steps)
            .filter(|(_, step)| {
                let hide = step
                    .as_ref()
                    .is_some_and(kubetrail_report::hidden_by_default);
                hidden += usize::from(hide);
                !hide
            })
            .map(|(r, _)| r)
            .collect()
    };
    let hidden_note = || {
        if hidden > 0 {
            eprintln!("({hidden} no-op or dry-run write(s) not shown: --include-noop shows them)");
        }
    };
    if records.is_empty() {
        eprintln!("nobody did that (in the stored events)");
        hidden_note();
        if hidden == 0 {
            source.explain_empty(&filter)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let EventOutput::Json | EventOutput::Csv = args.scope.output {
        print_events(&records, args.scope.output);
        hidden_note();
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                format_time(r.ts_micros),
                r.user.clone(),
                r.impersonated_user.clone(),
                r.namespace.clone(),
                r.name.clone(),
                code_cell(r),
                r.source_ip.clone(),
                r.user_agent.clone(),
            ]
        })
        .collect();
    print_table(
        &[
            "TIME",
            "USER",
            "AS",
            "NAMESPACE",
            "NAME",
            "CODE",
            "SOURCE",
            "USER-AGENT",
        ],
        rows,
        &records,
    );
    let mut users: Vec<&str> = records.iter().map(|r| r.user.as_str()).collect();
    users.sort_unstable();
    users.dedup();
    println!("{} request(s) by {} user(s)", records.len(), users.len());
    hidden_note();
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// RESOURCE[.GROUP]/NAME, e.g. deployments.apps/nginx or configmaps/app-config.
    object: String,
    #[command(flatten)]
    scope: ObjectScope,
    /// Show what each write changed, like `git log -p`: the changed paths with old → new.
    /// With -o json, one line per write: {"event", "noop", "dryRun", "changes", "basis"}.
    #[arg(long)]
    diff: bool,
    /// With --diff, also show no-op writes (which changed nothing) and dry runs.
    #[arg(long, requires = "diff")]
    include_noop: bool,
}

pub fn history(args: HistoryArgs) -> Result<ExitCode> {
    if args.diff {
        no_csv_diff(args.scope.output)?;
    }
    if parse_object(&args.object)?.1.is_none() {
        bail!("history needs an object: RESOURCE/NAME, e.g. deployments/nginx");
    }
    let filter = kubetrail_report::history_filter(&args.scope.filter(&args.object)?)?;
    let source = args.scope.source.open()?;
    let filter = source.resolve(filter)?;
    let records = source.requests(&filter)?;
    if records.is_empty() {
        eprintln!("no writes to that object (in the stored events)");
        source.explain_empty(&filter)?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.diff {
        let steps = kubetrail_report::history_steps(&records);
        let json = matches!(args.scope.output, EventOutput::Json);
        super::diff::print(&records, &steps, json, args.include_noop)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let EventOutput::Json | EventOutput::Csv = args.scope.output {
        print_events(&records, args.scope.output);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                format_time(r.ts_micros),
                r.user.clone(),
                r.verb.clone(),
                resource_cell(r),
                r.namespace.clone(),
                code_cell(r),
                r.impersonated_user.clone(),
            ]
        })
        .collect();
    print_table(
        &[
            "TIME",
            "USER",
            "VERB",
            "RESOURCE",
            "NAMESPACE",
            "CODE",
            "AS",
        ],
        rows,
        &records,
    );
    Ok(ExitCode::SUCCESS)
}
