//! `kubetrail history --diff`: each write of an object like `git log -p` — time, user, verb,
//! code, then the changed paths with old → new — or, with `-o json`, one line per write:
//! `{"event", "noop", "dryRun", "changes", "basis"}`; and `kubetrail changes`, the same for
//! the newest writes of a scope, newest first.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use kubetrail_diff::{Basis, Change, ChangeKind, PatchKind, Step};
use kubetrail_store::{Filter, Record};
use serde::Serialize;
use serde_json::Value;

use super::common::{SourceArgs, TimeArgs, format_time};
use super::question::EventOutput;
use super::table::escape;

#[derive(Debug, Args)]
pub struct ChangesArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Namespace; without it, every namespace.
    #[arg(short = 'n', long = "namespace")]
    namespace: Option<String>,
    /// Resource, as search takes it (e.g. deployments.apps, configmaps).
    #[arg(long)]
    resource: Option<String>,
    /// User who acted (repeatable): authenticated or impersonated; `!name`, `!prefix*` leave
    /// authenticated users out.
    #[arg(long = "user", value_name = "USER")]
    users: Vec<String>,
    /// Cluster (repeatable).
    #[arg(long = "cluster", value_name = "CLUSTER")]
    clusters: Vec<String>,
    #[command(flatten)]
    time: TimeArgs,
    /// At most this many writes, newest first.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    limit: u32,
    /// Also show no-op writes and dry runs (-o json always lists them, marked).
    #[arg(long)]
    include_noop: bool,
    /// Output format (wide is table).
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: EventOutput,
}

/// `kubetrail changes`: what the newest writes in scope changed, newest first. Each write's
/// state before comes from its object's history.
pub fn changes(args: ChangesArgs) -> Result<ExitCode> {
    let resources = match &args.resource {
        Some(r) => vec![
            kubetrail_store::ResourceSelector::parse_any_case(r)
                .map_err(|e| anyhow::anyhow!("--resource: {e}"))?,
        ],
        None => Vec::new(),
    };
    let (identities, excluded_users) = super::common::split_users(&args.users)?;
    let scope = Filter {
        time: args.time.range()?,
        clusters: args.clusters.clone(),
        identities,
        excluded_users,
        namespaces: args.namespace.clone().into_iter().collect(),
        resources,
        ..Filter::default()
    };
    super::question::no_csv_diff(args.output)?;
    let source = args.source.open()?;
    let scope = source.resolve(scope)?;
    let (newest_first, steps): (Vec<Record>, Vec<Option<Step>>) =
        kubetrail_report::changes(&scope, args.limit as usize, |f, c, n| source.page(f, c, n))?
            .into_iter()
            .unzip();
    if newest_first.is_empty() {
        eprintln!("no writes match (in the stored events)");
        source.explain_empty(&scope)?;
    }
    print(
        &newest_first,
        &steps,
        matches!(args.output, EventOutput::Json),
        args.include_noop,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Longest value shown on one line; longer ones are cut with `…`.
const MAX_VALUE_CHARS: usize = 200;

/// One `-o json` line.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Line<'a> {
    event: &'a serde_json::value::RawValue,
    noop: bool,
    dry_run: bool,
    changes: &'a [Change],
    basis: Basis,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<PatchKind>,
}

/// Prints every write with its step, oldest first: all of them as JSON lines, or for people
/// without the no-op and dry-run ones unless `include_noop`.
pub fn print(
    records: &[Record],
    steps: &[Option<Step>],
    json: bool,
    include_noop: bool,
) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if json {
        for (r, step) in records.iter().zip(steps) {
            let Some(step) = step else { continue };
            let event: &serde_json::value::RawValue = serde_json::from_str(&r.raw)?;
            let line = Line {
                event,
                noop: step.noop,
                dry_run: step.dry_run,
                changes: &step.changes,
                basis: step.basis,
                patch: step.patch,
            };
            writeln!(out, "{}", serde_json::to_string(&line)?)?;
        }
        return Ok(out.flush()?);
    }
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let paint = |code: &str, s: &str| {
        if colour {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let (mut hidden_noop, mut hidden_dry) = (0, 0);
    for (r, step) in records.iter().zip(steps) {
        let Some(step) = step else { continue };
        if !include_noop && kubetrail_report::hidden_by_default(step) {
            if step.dry_run {
                hidden_dry += 1;
            } else {
                hidden_noop += 1;
            }
            continue;
        }
        let mut marks = Vec::new();
        if step.noop {
            marks.push("no-op".to_string());
        }
        if step.dry_run {
            marks.push("dry run".to_string());
        }
        marks.extend(note(step));
        let code = r.code.map(|c| c.to_string()).unwrap_or_default();
        let mut object = format!("{}/{}", r.resource_text(), r.name);
        if !r.namespace.is_empty() {
            object = format!("{object} -n {}", r.namespace);
        }
        writeln!(
            out,
            "{} {} {} {} {} {}{}",
            paint("33", &format_time(r.ts_micros)),
            escape(&r.cluster),
            escape(&r.user),
            escape(&r.verb),
            escape(&object),
            code,
            if marks.is_empty() {
                String::new()
            } else {
                format!("  ({})", marks.join(", "))
            }
        )?;
        for c in &step.changes {
            let path = escape(if c.path.is_empty() { "/" } else { &c.path });
            let line = match c.kind() {
                ChangeKind::Added => {
                    paint("32", &format!("    + {path}: {}", shown(c.new.as_ref())))
                }
                ChangeKind::Removed => {
                    paint("31", &format!("    - {path}: {}", shown(c.old.as_ref())))
                }
                ChangeKind::Changed => format!(
                    "    ~ {path}: {} → {}",
                    paint("31", &shown(c.old.as_ref())),
                    paint("32", &shown(c.new.as_ref()))
                ),
            };
            writeln!(out, "{line}")?;
        }
    }
    if hidden_noop + hidden_dry > 0 {
        writeln!(
            out,
            "({hidden_noop} no-op and {hidden_dry} dry-run write(s) not shown: --include-noop shows them)"
        )?;
    }
    Ok(out.flush()?)
}

/// Why a step shows no diff, or where its changes come from.
fn note(step: &Step) -> Option<String> {
    Some(match step.basis {
        Basis::Diff | Basis::Created => return None,
        Basis::Deleted => "deleted".into(),
        Basis::Patch => match step.patch {
            Some(PatchKind::Json) => "JSON patch".into(),
            Some(PatchKind::Merge) => "merge patch".into(),
            Some(PatchKind::Strategic) => "strategic merge patch".into(),
            Some(PatchKind::Apply) => "apply patch".into(),
            None => "patch".into(),
        },
        Basis::Baseline => "the state before is not known".into(),
        Basis::Subresource => "subresource: its request body".into(),
        Basis::Failed => "failed: nothing changed".into(),
        Basis::NoBody => "no body recorded: what changed is not known".into(),
    })
}

/// A value on one line: strings bare when plain, everything else as compact JSON, cut at
/// [`MAX_VALUE_CHARS`] and escaped for the terminal.
fn shown(v: Option<&Value>) -> String {
    let text = match v {
        None => String::new(),
        // Bare unless it would read as another type ("5", "true") or hide its edges.
        Some(Value::String(s))
            if !s.is_empty()
                && !s.contains(['\n', '"'])
                && s.trim() == s
                && serde_json::from_str::<Value>(s).is_err() =>
        {
            s.clone()
        }
        Some(v) => v.to_string(),
    };
    let cut: String = text.chars().take(MAX_VALUE_CHARS).collect();
    let cut = if cut.len() < text.len() {
        format!("{cut}…")
    } else {
        cut
    };
    escape(&cut)
}
