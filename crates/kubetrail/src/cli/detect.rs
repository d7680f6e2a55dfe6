//! `kubetrail detect` (the detection rules over audit log files) and `kubetrail rules
//! list|lint|test`. Logs are read as `import` reads them; events are evaluated in
//! `requestReceivedTimestamp` order (ties in file order), each run from empty state.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use kubetrail_detect::{
    Engine, Overrides, Rule, Runtime, Severity, event_time, load, parse_override,
};
use kubetrail_model::{Level, decode_event};
use kubetrail_policy::{LoadOptions, RequestAttributes, load_str};
use kubetrail_tail::{LineReader, order_paths};
use serde_json::json;

use super::import::expand;
use super::table::{escape, render};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table for people.
    Table,
    /// One JSON object a line.
    Json,
}

/// Which rules run.
#[derive(Debug, Clone, Args)]
pub struct RuleArgs {
    /// Rule files to load besides the default pack (repeatable).
    #[arg(long = "rules", value_name = "PATH")]
    rules: Vec<PathBuf>,
    /// Leave the embedded default pack out.
    #[arg(long)]
    no_default_rules: bool,
    /// Override a rule's parameter, e.g. `forbidden-burst.threshold=50` (value read as YAML).
    #[arg(long = "set", value_name = "RULE.PARAM=VALUE", value_parser = parse_override)]
    set: Vec<(String, String, serde_json::Value)>,
}

impl RuleArgs {
    /// Rules as a configuration names them: files, whether the default pack runs, and
    /// parameters by rule and name.
    pub(crate) fn new(
        rules: Vec<PathBuf>,
        no_default_rules: bool,
        parameters: &std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
    ) -> RuleArgs {
        let set = parameters
            .iter()
            .flat_map(|(rule, params)| {
                params
                    .iter()
                    .map(move |(name, value)| (rule.clone(), name.clone(), value.clone()))
            })
            .collect();
        RuleArgs {
            rules,
            no_default_rules,
            set,
        }
    }

    pub(crate) fn load(&self, rt: &Runtime) -> Result<Vec<Rule>> {
        let mut files = Vec::new();
        for p in &self.rules {
            for f in rule_files(p)? {
                let text = std::fs::read_to_string(&f)
                    .with_context(|| format!("reading {}", f.display()))?;
                files.push((f.display().to_string(), text));
            }
        }
        let mut overrides = Overrides::new();
        for (rule, param, value) in &self.set {
            overrides
                .entry(rule.clone())
                .or_default()
                .insert(param.clone(), value.clone());
        }
        load(rt, !self.no_default_rules, &files, &overrides).map_err(|errors| {
            anyhow::anyhow!(
                "the rules do not load:\n{}",
                errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        })
    }
}

/// A rule file, or the `.yaml`/`.yml` files of a directory (sorted).
fn rule_files(path: &PathBuf) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.clone()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("listing {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// `kubetrail detect`.
#[derive(Debug, Args)]
pub struct DetectArgs {
    #[command(flatten)]
    rules: RuleArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: Format,
    /// Exit with status 3 when an alert of this severity or above fired.
    #[arg(long, value_name = "SEVERITY")]
    fail_on: Option<Severity>,
    /// Cluster the events belong to.
    #[arg(long, default_value = "default")]
    cluster: String,
    /// Audit log files (plain or .gz), or directories of them (a rotated set is read oldest
    /// backup first).
    #[arg(required = true, value_name = "LOG|DIR")]
    paths: Vec<PathBuf>,
}

/// Lines handed to a decoding thread at a time.
const BATCH_LINES: usize = 2048;

/// A batch of lines: their text end to end, and per line its file, number and end offset.
#[derive(Default)]
struct Batch {
    text: String,
    lines: Vec<(usize, u64, usize)>,
}

/// Decoded lines of a batch, in order: events, or where a line failed and why.
type Decoded = Vec<Result<kubetrail_model::Event, (usize, u64, String)>>;

/// Decoded events, kept where their batch put them (events are large: moved once less).
pub(crate) struct Events {
    batches: Vec<Vec<kubetrail_model::Event>>,
}

impl Events {
    /// The events in event-time order; ties in file order.
    pub(crate) fn in_time_order(&self) -> impl Iterator<Item = &kubetrail_model::Event> {
        let mut order: Vec<(i64, u32, u32)> = Vec::new();
        for (b, batch) in self.batches.iter().enumerate() {
            for (i, e) in batch.iter().enumerate() {
                order.push((event_time(e).unwrap_or(i64::MIN), b as u32, i as u32));
            }
        }
        order.sort_unstable();
        order
            .into_iter()
            .map(|(_, b, i)| &self.batches[b as usize][i as usize])
    }
}

/// Reads and decodes every line of the files in order. One thread reads (and inflates `.gz`)
/// while the others decode; the events come back in file order. Malformed lines are
/// reported (the first 20) and counted, never fatal.
pub(crate) fn read_events(paths: &[PathBuf]) -> Result<(Events, u64)> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    let (jobs, queue) = std::sync::mpsc::sync_channel::<(usize, Batch)>(workers * 2);
    let queue = std::sync::Mutex::new(queue);
    let (batches, decoded) = std::thread::scope(|s| -> Result<(usize, Vec<(usize, Decoded)>)> {
        let (done, results) = std::sync::mpsc::channel::<(usize, Decoded)>();
        for _ in 0..workers {
            let queue = &queue;
            let done = done.clone();
            s.spawn(move || {
                loop {
                    let job = match queue.lock() {
                        Ok(q) => q.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, batch)) = job else { return };
                    let mut start = 0;
                    let out = batch
                        .lines
                        .iter()
                        .map(|&(file, number, end)| {
                            let text = &batch.text[start..end];
                            start = end;
                            decode_event(text.as_bytes()).map_err(|e| (file, number, e.to_string()))
                        })
                        .collect();
                    if done.send((seq, out)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done);
        let mut seq = 0;
        let mut batch = Batch::default();
        for (file, path) in paths.iter().enumerate() {
            let mut reader = LineReader::open(path)?;
            while let Some(line) = reader.next_line() {
                if line.text.trim().is_empty() {
                    continue;
                }
                batch.text.push_str(line.text);
                batch.lines.push((file, line.number, batch.text.len()));
                if batch.lines.len() == BATCH_LINES {
                    jobs.send((seq, std::mem::take(&mut batch)))?;
                    seq += 1;
                }
            }
            if let Some(damage) = reader.damage() {
                eprintln!("{}: {damage}", path.display());
            }
        }
        if !batch.lines.is_empty() {
            jobs.send((seq, batch))?;
            seq += 1;
        }
        drop(jobs);
        Ok((seq, results.iter().collect()))
    })?;
    let mut decoded = decoded;
    if decoded.len() != batches {
        bail!(
            "a decoding thread stopped: {} of {batches} batches decoded",
            decoded.len()
        );
    }
    decoded.sort_unstable_by_key(|(seq, _)| *seq);
    let mut events = Events {
        batches: Vec::with_capacity(decoded.len()),
    };
    let mut malformed = 0u64;
    for (_, batch) in decoded {
        let mut kept = Vec::with_capacity(batch.len());
        for r in batch {
            match r {
                Ok(e) => kept.push(e),
                Err((file, number, e)) => {
                    malformed += 1;
                    if malformed <= 20 {
                        eprintln!("{}:{number}: skipped: {e}", paths[file].display());
                    }
                }
            }
        }
        events.batches.push(kept);
    }
    Ok((events, malformed))
}

/// Runs the rules over log files and prints the alerts.
pub fn detect(args: DetectArgs) -> Result<ExitCode> {
    let rt = Runtime::new();
    let rules = args.rules.load(&rt)?;
    let ordered = order_paths(&expand(&args.paths)?);
    let paths: Vec<PathBuf> = ordered.into_iter().map(|f| f.path).collect();
    let (events, malformed) = read_events(&paths)?;
    let mut engine = Engine::new(rt, rules);
    let mut alerts = Vec::new();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut rows = Vec::new();
    let mut worst: Option<Severity> = None;
    for e in events.in_time_order() {
        engine.observe(e, &args.cluster, &mut alerts);
        for a in alerts.drain(..) {
            worst = worst.max(Some(a.severity));
            match args.output {
                Format::Json => writeln!(out, "{}", serde_json::to_string(&a)?)?,
                Format::Table => rows.push(vec![
                    a.time.clone(),
                    a.severity.to_string(),
                    a.rule.clone(),
                    escape(&a.user),
                    escape(&a.verb),
                    escape(&a.object_ref.text()),
                ]),
            }
        }
    }
    if args.output == Format::Table {
        if rows.is_empty() {
            writeln!(out, "no alerts")?;
        } else {
            write!(
                out,
                "{}",
                render(
                    &["TIME", "SEVERITY", "RULE", "USER", "VERB", "OBJECT"],
                    &rows
                )
            )?;
        }
    }
    out.flush()?;
    for (rule, err) in engine.rules().iter().zip(&engine.first_errors) {
        if let Some(err) = err {
            eprintln!(
                "rule {}: an expression failed on some events (they did not fire it): {err}",
                rule.id
            );
        }
    }
    // Freeing every decoded event one by one takes a tenth of the run; the process ends here.
    std::mem::forget(events);
    let c = engine.counters();
    eprintln!(
        "{} events, {} alerts{}",
        c.events,
        c.alerts,
        if malformed > 0 {
            format!(", {malformed} malformed lines skipped")
        } else {
            String::new()
        }
    );
    if let (Some(min), Some(worst)) = (args.fail_on, worst)
        && worst >= min
    {
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}

/// `kubetrail rules`.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// The rules: id, title, severity, the audit level each needs, references, parameters.
    List(ListArgs),
    /// Check rule files: loading, names, and every expression on probe events.
    ///
    /// Exit status: 0 when clean, 1 when not.
    Lint(FilesArgs),
    /// Run every rule's examples.
    ///
    /// Exit status: 0 when all pass, 1 when not.
    Test(FilesArgs),
}

/// `rules list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    rules: RuleArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: Format,
    /// Say which rules this audit policy leaves blind (it logs what they need below the
    /// level they need).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
}

/// `rules lint` and `rules test`.
#[derive(Debug, Args)]
pub struct FilesArgs {
    /// Rule files or directories of them; none: the default pack.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
}

impl FilesArgs {
    fn rule_args(&self) -> RuleArgs {
        RuleArgs {
            rules: self.paths.clone(),
            no_default_rules: !self.paths.is_empty(),
            set: Vec::new(),
        }
    }
}

/// What a policy records of a rule's events.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Coverage {
    /// Every event the rule needs is logged at its level or above.
    Sees,
    /// Some are logged below the level (the least level is given).
    Partly(Level),
    /// All are logged below the level.
    Blind(Level),
    /// The rule reads events of any resource; the policy cannot be judged per rule.
    Any,
}

fn coverage(policy: &kubetrail_policy::Policy, rule: &Rule) -> Coverage {
    let samples = rule.samples();
    if samples.is_empty() {
        return Coverage::Any;
    }
    let levels: Vec<Level> = samples
        .iter()
        .map(|s| {
            let attrs = RequestAttributes {
                user: Some(s.user.clone()),
                groups: kubetrail_policy::authenticated_groups(
                    Some(&s.user),
                    s.group.iter().cloned().collect(),
                ),
                verb: s.verb.clone(),
                resource_request: true,
                api_group: s.api_group.clone(),
                api_version: "v1".into(),
                namespace: s.namespace.clone(),
                resource: s.resource.clone(),
                subresource: s.subresource.clone(),
                name: String::new(),
                path: String::new(),
            };
            policy.evaluate(&attrs.as_attributes()).level
        })
        .collect();
    let below: Vec<Level> = levels.iter().copied().filter(|l| *l < rule.level).collect();
    let least = levels.iter().copied().min().unwrap_or(Level::None);
    if below.is_empty() {
        Coverage::Sees
    } else if below.len() == levels.len() {
        Coverage::Blind(least)
    } else {
        Coverage::Partly(least)
    }
}

fn coverage_text(c: &Coverage) -> String {
    match c {
        Coverage::Sees => "yes".into(),
        Coverage::Partly(l) => format!("partly (some at {l})"),
        Coverage::Blind(l) => format!("no (logged at {l})"),
        Coverage::Any => "any resource".into(),
    }
}

/// Runs a `rules` command.
pub fn rules(cmd: RulesCommand) -> Result<ExitCode> {
    match cmd {
        RulesCommand::List(args) => list(args),
        RulesCommand::Lint(args) => {
            let rt = Runtime::new();
            let rules = match args.rule_args().load(&rt) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{e:#}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            let errors = kubetrail_detect::lint(&rules);
            for e in &errors {
                println!("{e}");
            }
            if errors.is_empty() {
                println!("{} rules, no problems", rules.len());
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::FAILURE)
            }
        }
        RulesCommand::Test(args) => {
            let rt = Runtime::new();
            let rules = args.rule_args().load(&rt)?;
            let report = kubetrail_detect::run_examples(&rules);
            for f in &report.failures {
                println!("FAIL {}: {}: {}", f.rule, f.example, f.message);
            }
            println!(
                "{} examples of {} rules: {} passed, {} failed",
                report.run,
                rules.len(),
                report.run - report.failures.len(),
                report.failures.len()
            );
            Ok(if report.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

fn list(args: ListArgs) -> Result<ExitCode> {
    let rt = Runtime::new();
    let rules = args.rules.load(&rt)?;
    let policy = match &args.policy {
        None => None,
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let loaded = load_str(&text, LoadOptions::default());
            match loaded.policy {
                Some(policy) => Some(policy),
                None => bail!(
                    "{} is not a policy kube-apiserver would load:\n{}",
                    p.display(),
                    loaded
                        .errors
                        .iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
            }
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut rows = Vec::new();
    for r in &rules {
        let cov = policy.as_ref().map(|p| coverage(p, r));
        match args.output {
            Format::Json => {
                let mut v = json!({
                    "id": r.id,
                    "title": r.title,
                    "severity": r.severity,
                    "level": r.level.as_str(),
                    "kind": r.kind,
                    "references": r.references,
                    "parameters": r.parameters,
                    "file": r.origin.file,
                });
                if let Some(c) = &cov {
                    v["policyLogs"] = json!(match c {
                        Coverage::Sees => "yes",
                        Coverage::Partly(_) => "partly",
                        Coverage::Blind(_) => "no",
                        Coverage::Any => "any",
                    });
                }
                writeln!(out, "{v}")?;
            }
            Format::Table => {
                let mut row = vec![
                    r.id.clone(),
                    r.severity.to_string(),
                    r.level.as_str().to_string(),
                    r.title.clone(),
                ];
                if let Some(c) = &cov {
                    row.insert(3, coverage_text(c));
                }
                rows.push(row);
            }
        }
    }
    if args.output == Format::Table {
        let headers: &[&str] = if policy.is_some() {
            &["RULE", "SEVERITY", "NEEDS", "POLICY LOGS IT", "TITLE"]
        } else {
            &["RULE", "SEVERITY", "NEEDS", "TITLE"]
        };
        write!(out, "{}", render(headers, &rows))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What `import --detect` raised and stored.
pub(crate) struct Detected {
    /// Alerts the rules raised.
    pub raised: u64,
    /// Of those, alerts the store did not hold yet.
    pub stored: u64,
}

/// Alerts stored at a time.
const ALERT_BATCH: usize = 1000;

/// Runs the rules over log files, in event-time order, and stores the alerts (a repeat of a
/// stored alert changes nothing, so importing again raises nothing new).
pub(crate) fn detect_into(
    rt: Runtime,
    rules: Vec<Rule>,
    cluster: &str,
    paths: &[PathBuf],
    store: &dyn kubetrail_store::Store,
) -> Result<Detected> {
    let (events, _) = read_events(paths)?;
    let mut engine = Engine::new(rt, rules);
    let mut alerts = Vec::new();
    let mut pending = Vec::new();
    let mut done = Detected {
        raised: 0,
        stored: 0,
    };
    for e in events.in_time_order() {
        engine.observe(e, cluster, &mut alerts);
        for a in alerts.drain(..) {
            done.raised += 1;
            pending
                .push(kubetrail_server::detection::alert_record(&a).map_err(anyhow::Error::msg)?);
        }
        if pending.len() >= ALERT_BATCH {
            done.stored += store.append_alerts(&pending).context("storing alerts")? as u64;
            pending.clear();
        }
    }
    done.stored += store.append_alerts(&pending).context("storing alerts")? as u64;
    std::mem::forget(events);
    Ok(done)
}
