//! `kubetrail policy lint|explain|eval|convert|simulate`.

use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use kubetrail_model::{ApiVersion, decode_event};
use kubetrail_policy::explain::explain;
use kubetrail_policy::lint::lint_str;
use kubetrail_policy::requestinfo::resolve;
use kubetrail_policy::simulate::Simulator;
use kubetrail_policy::{
    Decision, KubeVersion, LoadOptions, Loaded, Policy, RequestAttributes, authenticated_groups,
    load_str,
};
use kubetrail_tail::LineReader;
use serde::Deserialize;
use serde_json::json;

use super::table::escape;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check that kube-apiserver would load a policy, and what a reviewer would flag.
    ///
    /// Exit status: 0 when the policy would load, 1 when not, 2 on usage errors.
    Lint(LintArgs),
    /// Show the level a request gets, the rule that decides it, and why earlier rules do not.
    Explain(Box<ExplainArgs>),
    /// Evaluate JSON lines of requests from standard input; one JSON line out per line in.
    Eval(EvalArgs),
    /// Rewrite a policy for another audit.k8s.io version, keeping comments and layout.
    Convert(ConvertArgs),
    /// Replay recorded audit logs through a policy: what it would record, and how much.
    Simulate(SimulateArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Policy file (YAML or JSON).
    file: PathBuf,
    /// Answer as this kube-apiserver release would (e.g. 1.24); default: accept every version.
    #[arg(long, value_name = "1.N")]
    kube_version: Option<KubeVersion>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    output: Output,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Policy file (YAML or JSON).
    file: PathBuf,
    /// The request as `METHOD URL`, e.g. 'GET /api/v1/namespaces/default/pods/x'
    /// (the method is upper-cased).
    #[arg(long, conflicts_with_all = ["verb", "resource", "path"])]
    request: Option<String>,
    /// Authenticated user name; without it the request has no user (failed authentication).
    #[arg(long)]
    user: Option<String>,
    /// A group of the user (repeatable). As kube-apiserver does, system:authenticated is
    /// added for every user but system:anonymous (who gets system:unauthenticated).
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// Verb, when giving attributes instead of --request.
    #[arg(long)]
    verb: Option<String>,
    /// Resource, optionally with subresource (pods, pods/log), for a resource request.
    #[arg(long)]
    resource: Option<String>,
    /// API group of --resource ("" is the core group).
    #[arg(long, default_value = "")]
    api_group: String,
    /// API version of --resource.
    #[arg(long, default_value = "v1")]
    api_version: String,
    /// Namespace of --resource.
    #[arg(long, short = 'n', default_value = "")]
    namespace: String,
    /// Object name of --resource.
    #[arg(long, default_value = "")]
    name: String,
    /// URL path, for a non-resource request.
    #[arg(long)]
    path: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    output: Output,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Policy file (YAML or JSON).
    #[arg(long)]
    policy: PathBuf,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Policy file (YAML or JSON).
    file: PathBuf,
    /// Target version.
    #[arg(long, value_name = "GROUP/VERSION", value_parser = parse_api_version)]
    to: ApiVersion,
    /// Write here instead of standard output.
    #[arg(long, short = 'w')]
    write: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Policy file (YAML or JSON).
    #[arg(long)]
    policy: PathBuf,
    /// Audit log files (JSON lines, plain or .gz).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    output: Output,
}

fn parse_api_version(s: &str) -> Result<ApiVersion, String> {
    s.parse()
}

pub fn run(cmd: PolicyCommand) -> Result<ExitCode> {
    match cmd {
        PolicyCommand::Lint(args) => lint(args),
        PolicyCommand::Explain(args) => explain_cmd(*args),
        PolicyCommand::Eval(args) => eval(args),
        PolicyCommand::Convert(args) => convert(args),
        PolicyCommand::Simulate(args) => simulate(args),
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Loads a policy that must be valid; the error lists every problem with its line.
fn load_valid(path: &Path) -> Result<Policy> {
    let loaded = load_str(&read(path)?, LoadOptions::default());
    match loaded.policy {
        Some(policy) => Ok(policy),
        None => bail!(
            "{} would not load:\n{}",
            path.display(),
            error_lines(path, &loaded)
        ),
    }
}

fn error_lines(path: &Path, loaded: &Loaded) -> String {
    loaded
        .errors
        .iter()
        .map(|e| format!("{}: {}", location(path, e.line), escape(&e.to_string())))
        .collect::<Vec<_>>()
        .join("\n")
}

fn location(path: &Path, line: Option<usize>) -> String {
    match line {
        Some(l) => format!("{}:{l}", path.display()),
        None => path.display().to_string(),
    }
}

fn lint(args: LintArgs) -> Result<ExitCode> {
    let text = match read(&args.file) {
        Ok(t) => t,
        Err(e) => {
            if let Output::Json = args.output {
                let out = json!({"valid": false, "errors": [{"field": "", "type": "Decode", "detail": format!("{e:#}")}], "warnings": []});
                println!("{out}");
            } else {
                eprintln!("error: {e:#}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let options = LoadOptions {
        kube_version: args.kube_version,
    };
    let (loaded, report) = lint_str(&text, options);
    match args.output {
        Output::Json => println!("{}", serde_json::to_string(&report)?),
        Output::Text => {
            let path = &args.file;
            for e in &report.errors {
                println!(
                    "{}: error: {}",
                    location(path, e.line),
                    escape(&e.to_string())
                );
            }
            for w in &report.warnings {
                println!(
                    "{}: warning: {}: {}",
                    location(path, w.line),
                    escape(&w.field),
                    escape(&w.message)
                );
            }
            let target = args
                .kube_version
                .map(|v| format!(" by kube-apiserver {v}"))
                .unwrap_or_default();
            let version = loaded.api_version.map(|v| v.as_str()).unwrap_or("?");
            if report.valid {
                let rules = loaded.policy.as_ref().map_or(0, |p| p.rules().len());
                println!(
                    "{}: would load{target}: {rules} rules, {version}, {} warning(s)",
                    path.display(),
                    report.warnings.len()
                );
            } else {
                println!(
                    "{}: would NOT load{target}: {} error(s), {} warning(s)",
                    path.display(),
                    report.errors.len(),
                    report.warnings.len()
                );
            }
        }
    }
    Ok(if report.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn explain_cmd(args: ExplainArgs) -> Result<ExitCode> {
    let policy = load_valid(&args.file)?;
    let attrs = match &args.request {
        Some(request) => {
            let (method, url) = request
                .trim()
                .split_once(char::is_whitespace)
                .context("--request takes 'METHOD URL', e.g. 'GET /api/v1/pods'")?;
            from_request(&method.to_uppercase(), url.trim(), &args.user, &args.groups)?
        }
        None => from_flags(&args)?,
    };
    let explanation = explain(&policy, &attrs.as_attributes());
    let decision = explanation.decision;
    match args.output {
        Output::Json => {
            let rules: Vec<_> = explanation
                .rules
                .iter()
                .map(|r| json!({"rule": r.index, "line": r.line, "matched": r.reason.is_none(), "reason": r.reason}))
                .collect();
            let mut out = decision_json(&decision, &attrs);
            out["line"] = json!(decision.rule.and_then(|i| policy.rules()[i].line));
            out["rules"] = json!(rules);
            println!("{out}");
        }
        Output::Text => {
            let stages: Vec<&str> = decision.omit_stages.iter().map(|s| s.as_str()).collect();
            println!("level:             {}", decision.level);
            println!("omitStages:        [{}]", stages.join(", "));
            println!("omitManagedFields: {}", decision.omit_managed_fields);
            match decision.rule {
                Some(i) => println!(
                    "decided by:        rules[{i}]{}",
                    policy.rules()[i]
                        .line
                        .map(|l| format!(" ({}:{l})", args.file.display()))
                        .unwrap_or_default()
                ),
                None => println!("decided by:        no rule matched (level None)"),
            }
            println!(
                "request:           {}",
                escape(&describe_attributes(&attrs))
            );
            for r in &explanation.rules {
                let line = r.line.map(|l| format!(" line {l}")).unwrap_or_default();
                match &r.reason {
                    Some(reason) => println!("  rules[{}]{line}: no: {}", r.index, escape(reason)),
                    None => println!("  rules[{}]{line}: MATCH", r.index),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn describe_attributes(a: &RequestAttributes) -> String {
    let user = a
        .user
        .as_deref()
        .map_or("<no user>".into(), |u| format!("user={u:?}"));
    if a.resource_request {
        let group = if a.api_group.is_empty() {
            "core"
        } else {
            &a.api_group
        };
        let mut s = format!(
            "{user} groups={:?} verb={:?} {group}/{} resource={:?}",
            a.groups, a.verb, a.api_version, a.resource
        );
        if !a.subresource.is_empty() {
            s.push_str(&format!(" subresource={:?}", a.subresource));
        }
        s.push_str(&format!(" namespace={:?} name={:?}", a.namespace, a.name));
        s
    } else {
        format!(
            "{user} groups={:?} verb={:?} path={:?} (non-resource)",
            a.groups, a.verb, a.path
        )
    }
}

fn from_flags(args: &ExplainArgs) -> Result<RequestAttributes> {
    let Some(verb) = &args.verb else {
        bail!("give --request 'METHOD URL', or --verb with --resource or --path");
    };
    let mut attrs = RequestAttributes {
        user: args.user.clone(),
        groups: authenticated_groups(args.user.as_deref(), args.groups.clone()),
        verb: verb.clone(),
        ..RequestAttributes::default()
    };
    match (&args.resource, &args.path) {
        (Some(resource), None) => {
            let (res, sub) = resource.split_once('/').unwrap_or((resource, ""));
            attrs.resource_request = true;
            attrs.resource = res.to_string();
            attrs.subresource = sub.to_string();
            attrs.api_group = args.api_group.clone();
            attrs.api_version = args.api_version.clone();
            attrs.namespace = args.namespace.clone();
            attrs.name = args.name.clone();
        }
        (None, Some(path)) => attrs.path = path.clone(),
        _ => bail!(
            "give exactly one of --resource (resource request) or --path (non-resource request)"
        ),
    }
    Ok(attrs)
}

/// RequestInfo resolution of an HTTP request, plus the user.
fn from_request(
    method: &str,
    url: &str,
    user: &Option<String>,
    groups: &[String],
) -> Result<RequestAttributes> {
    let info = resolve(method, url)?;
    Ok(RequestAttributes::from_request_info(
        info,
        user.clone(),
        authenticated_groups(user.as_deref(), groups.to_vec()),
    ))
}

fn decision_json(decision: &Decision, attrs: &RequestAttributes) -> serde_json::Value {
    json!({
        "level": decision.level.as_str(),
        "omitStages": decision.omit_stages,
        "omitManagedFields": decision.omit_managed_fields,
        "rule": decision.rule,
        "attributes": attrs,
    })
}

/// An input line of `policy eval`: an HTTP request, or attributes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpRequestLine {
    method: String,
    url: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
}

fn eval_line(policy: &Policy, line: &str) -> Result<serde_json::Value, String> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("malformed JSON: {e}"))?;
    let obj = value
        .as_object()
        .ok_or_else(|| "expected a JSON object".to_string())?;
    let attrs = if obj.contains_key("method") || obj.contains_key("url") {
        let req: HttpRequestLine =
            serde_json::from_value(value).map_err(|e| format!("invalid HTTP request: {e}"))?;
        from_request(&req.method, &req.url, &req.user, &req.groups).map_err(|e| e.to_string())?
    } else {
        RequestAttributes::from_json(value).map_err(|e| format!("invalid attributes: {e}"))?
    };
    let decision = policy.evaluate(&attrs.as_attributes());
    Ok(decision_json(&decision, &attrs))
}

fn eval(args: EvalArgs) -> Result<ExitCode> {
    let policy = load_valid(&args.policy)?;
    let stdin = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    for (n, line) in stdin.lines().enumerate() {
        let line = line.with_context(|| format!("reading standard input line {}", n + 1))?;
        let answer = eval_line(&policy, &line)
            .unwrap_or_else(|e| json!({"error": format!("line {}: {e}", n + 1)}));
        writeln!(out, "{answer}")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn convert(args: ConvertArgs) -> Result<ExitCode> {
    let text = read(&args.file)?;
    let converted = kubetrail_policy::convert::convert(&text, args.to)
        .with_context(|| format!("converting {}", args.file.display()))?;
    match args.write {
        Some(path) => std::fs::write(&path, converted)
            .with_context(|| format!("writing {}", path.display()))?,
        None => print!("{converted}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn simulate(args: SimulateArgs) -> Result<ExitCode> {
    let policy = load_valid(&args.policy)?;
    let mut simulator = Simulator::new(&policy);
    let mut malformed = 0u64;
    for path in &args.files {
        let mut reader = LineReader::open(path)?;
        while let Some(line) = reader.next_line() {
            if line.text.trim().is_empty() {
                continue;
            }
            match decode_event(line.text.as_bytes()) {
                Ok(event) => simulator.add(&event, line.text.len() + 1),
                Err(e) => {
                    malformed += 1;
                    if malformed <= 5 {
                        eprintln!(
                            "{}:{}: skipped: {}",
                            path.display(),
                            line.number,
                            escape(&e.to_string())
                        );
                    }
                }
            }
        }
        if let Some(damage) = reader.damage() {
            eprintln!(
                "{}: {damage}; the lines before it were simulated",
                path.display()
            );
        }
    }
    let s = simulator.finish();
    if let Output::Json = args.output {
        let mut v = serde_json::to_value(&s)?;
        v["malformedLines"] = json!(malformed);
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    let pct = |a: u64, b: u64| {
        if b == 0 {
            0.0
        } else {
            100.0 * a as f64 / b as f64
        }
    };
    println!("policy: {}", args.policy.display());
    println!(
        "read:   {} events, {} bytes, {} requests{}",
        s.events_in,
        s.bytes_in,
        s.requests,
        if malformed > 0 {
            format!(" ({malformed} malformed lines skipped)")
        } else {
            String::new()
        }
    );
    println!(
        "would record: {} events ({:.1}%), {} bytes ({:.1}%)",
        s.events_out,
        pct(s.events_out, s.events_in),
        s.bytes_out,
        pct(s.bytes_out, s.bytes_in)
    );
    println!(
        "requests whose level goes down: {}, up: {}",
        s.lowered, s.raised
    );
    println!("\nLEVEL            REQUESTS");
    for level in kubetrail_model::Level::ALL {
        let n = s
            .requests_by_level
            .get(level.as_str())
            .copied()
            .unwrap_or(0);
        println!("{:<16} {n}", level.as_str());
    }
    println!("\nRULE   LINE   LEVEL            REQUESTS");
    for (i, rule) in policy.rules().iter().enumerate() {
        let n = s.requests_by_rule.get(&i.to_string()).copied().unwrap_or(0);
        let line = rule.line.map(|l| l.to_string()).unwrap_or_default();
        println!("{i:<6} {line:<6} {:<16} {n}", rule.level.as_str());
    }
    if let Some(n) = s.requests_by_rule.get("none") {
        println!("{:<6} {:<6} {:<16} {n}", "-", "", "None (no match)");
    }
    if !s.unused_rules.is_empty() {
        println!("\nrules that decided no request: {:?}", s.unused_rules);
    }
    Ok(ExitCode::SUCCESS)
}
