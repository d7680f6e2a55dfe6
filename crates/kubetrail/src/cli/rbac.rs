//! `kubetrail rbac`: RBAC from the trail. `suggest` prints the least-privilege Roles and
//! bindings a subject's observed requests need (audit2rbac's output, deterministic; `--rbac
//! FILE --delta` only what the cluster's RBAC lacks); `unused` lists what a subject's bindings
//! grant, each permission used or not in the window, and the refused requests nothing grants.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{ArgAction, Args, Subcommand, ValueEnum};
use kubetrail_rbac::{
    Authorizer, Naming, Options, RbacObjects, Request, Subject, SubjectReport, SubjectSelector,
    UnusedOptions,
};
use kubetrail_store::{Filter, TimeRange};
use serde_json::Value;

use super::common::{SourceArgs, TimeArgs, format_time};
use super::table::{escape, render};

#[derive(Debug, Subcommand)]
pub enum RbacCommand {
    /// The Roles, ClusterRole and bindings that allow exactly what a subject was observed
    /// doing (audit2rbac's algorithm), as YAML for `kubectl apply -f` or one JSON `List`.
    ///
    /// Reads LOG files or directories when given (nothing is stored), else asks the store (or
    /// --server). Exit status 1 when no request of the subject is found.
    Suggest(Box<SuggestArgs>),
    /// What a subject's bindings grant, broken into single permissions, each marked used or
    /// unused by its requests in the window; and the refused requests nothing grants.
    Unused(Box<UnusedArgs>),
}

/// Whose requests.
#[derive(Debug, Clone, Args)]
#[group(id = "subject", multiple = false)]
pub struct SubjectArgs {
    /// A user, by name (the identity the request was authorized as: an impersonated user when
    /// there was one).
    #[arg(long, value_name = "USER")]
    user: Option<String>,
    /// A service account, as NAMESPACE:NAME.
    #[arg(long, value_name = "NS:NAME")]
    serviceaccount: Option<String>,
    /// Every request whose user is in this group; bindings to the group.
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,
}

impl SubjectArgs {
    fn selector(&self) -> Result<Option<SubjectSelector>> {
        Ok(match (&self.user, &self.serviceaccount, &self.group) {
            (Some(u), _, _) => Some(SubjectSelector::User(u.clone())),
            (_, Some(sa), _) => Some(SubjectSelector::service_account(sa)?),
            (_, _, Some(g)) => Some(SubjectSelector::Group(g.clone())),
            _ => None,
        })
    }
}

/// Where requests come from, and which.
#[derive(Debug, Clone, Args)]
pub struct TrailArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Cluster (repeatable) when asking the store.
    #[arg(long = "cluster", value_name = "CLUSTER")]
    clusters: Vec<String>,
    #[command(flatten)]
    time: TimeArgs,
    /// Audit log files or directories to read instead of the store (plain or .gz, rotated
    /// sets).
    #[arg(value_name = "LOG|DIR")]
    paths: Vec<PathBuf>,
}

impl TrailArgs {
    /// The subject's requests (every request in the window without `subject`), oldest first.
    fn requests(
        &self,
        subject: Option<&SubjectSelector>,
        range: TimeRange,
    ) -> Result<Vec<Request>> {
        if !self.paths.is_empty() {
            if !self.clusters.is_empty() || self.source.server.is_some() {
                bail!("--cluster and --server ask the store; log files are read as they are");
            }
            let ordered = kubetrail_tail::order_paths(&super::import::expand(&self.paths)?);
            let files: Vec<PathBuf> = ordered.into_iter().map(|f| f.path).collect();
            let (events, malformed) = super::detect::read_events(&files)?;
            if malformed > 0 {
                eprintln!("note: {malformed} lines were not audit events and were skipped");
            }
            let within = |r: &Request| {
                range.from_micros.is_none_or(|f| r.time_micros >= f)
                    && range.to_micros.is_none_or(|t| r.time_micros < t)
            };
            return Ok(events
                .in_time_order()
                .map(Request::from_event)
                .filter(|r| within(r) && subject.is_none_or(|s| s.matches(&r.user)))
                .collect());
        }
        let filter = Filter {
            time: range,
            clusters: self.clusters.clone(),
            ..Filter::default()
        };
        let source = self.source.open()?;
        let trailed = kubetrail_report::rbac_requests(&filter, subject, usize::MAX, |f, c, n| {
            source.page_heads(f, c, n)
        })?;
        trailed
            .one_cluster()
            .map_err(|e| anyhow::anyhow!("{e}: give --cluster"))?;
        let out = trailed.requests;
        if out.is_empty() {
            let mut asked = filter.clone();
            if let Some(SubjectSelector::User(u)) = subject {
                asked.identities = vec![u.clone()];
            }
            source.explain_empty(&asked)?;
        }
        Ok(out)
    }
}

/// The cluster's RBAC: snapshot files, or rebuilt from the trail's RBAC writes.
#[derive(Debug, Clone, Args)]
pub struct RbacArgs {
    /// The cluster's RBAC: `kubectl get clusterroles,clusterrolebindings,roles,rolebindings -A -o yaml` output (repeatable).
    #[arg(long = "rbac", value_name = "FILE", conflicts_with = "rbac_from_trail")]
    rbac: Vec<PathBuf>,
    /// Rebuild the RBAC objects from the trail's creates, updates, patches and deletes of
    /// roles and bindings (the policy must log them with their bodies).
    #[arg(long)]
    rbac_from_trail: bool,
    /// With --rbac-from-trail: the RBAC as of this RFC 3339 time (default: now).
    #[arg(long, value_parser = super::common::parse_time, value_name = "TIME", requires = "rbac_from_trail")]
    at: Option<chrono::DateTime<chrono::Utc>>,
}

impl RbacArgs {
    fn given(&self) -> bool {
        !self.rbac.is_empty() || self.rbac_from_trail
    }

    /// The snapshot, when one is asked for.
    fn load(&self, trail: &TrailArgs) -> Result<Option<RbacObjects>> {
        if !self.rbac.is_empty() {
            return Ok(Some(read_snapshot(&self.rbac)?));
        }
        if !self.rbac_from_trail {
            return Ok(None);
        }
        let to = self.at.map(|t| t.timestamp_micros());
        let rebuilt = trail.rbac_writes(to)?;
        eprintln!(
            "RBAC rebuilt from {} writes in the trail: {} objects{}",
            rebuilt.writes,
            rebuilt.objects.len(),
            self.at
                .map(|t| format!(" as of {}", t.to_rfc3339()))
                .unwrap_or_default()
        );
        if !rebuilt.unknown.is_empty() {
            let shown: Vec<String> = rebuilt.unknown.iter().take(10).map(|u| escape(u)).collect();
            eprintln!(
                "note: {} objects could not be rebuilt (written without their bodies, by a patch that cannot be replayed, or maybe deleted by a deletecollection): {}{}",
                rebuilt.unknown.len(),
                shown.join(", "),
                if rebuilt.unknown.len() > 10 {
                    ", ..."
                } else {
                    ""
                }
            );
        }
        eprintln!(
            "note: objects never written in the trail (e.g. created before it began) are not known"
        );
        if rebuilt.objects.is_empty() {
            bail!("--rbac-from-trail: the trail holds no RBAC object with its body");
        }
        Ok(Some(rebuilt.objects))
    }
}

impl TrailArgs {
    /// The trail's RBAC objects as its writes before `to` leave them.
    fn rbac_writes(&self, to: Option<i64>) -> Result<kubetrail_rbac::Rebuilt> {
        let range = TimeRange {
            from_micros: None,
            to_micros: to,
        };
        if !self.paths.is_empty() {
            let ordered = kubetrail_tail::order_paths(&super::import::expand(&self.paths)?);
            let files: Vec<PathBuf> = ordered.into_iter().map(|f| f.path).collect();
            let (events, _) = super::detect::read_events(&files)?;
            let within = |e: &&kubetrail_model::Event| {
                let t = Request::from_event(e).time_micros;
                range.to_micros.is_none_or(|to| t < to)
            };
            return Ok(kubetrail_rbac::from_trail(
                events.in_time_order().filter(within),
            ));
        }
        let source = self.source.open()?;
        kubetrail_report::rbac_from_trail(&self.clusters, to, usize::MAX, |f, c, n| {
            source.page(f, c, n)
        })?
        .map_err(|e| anyhow::anyhow!("--rbac-from-trail: {e}; give --cluster"))
    }
}

/// Reads `--rbac` files into one snapshot.
fn read_snapshot(files: &[PathBuf]) -> Result<RbacObjects> {
    let mut objects = RbacObjects::default();
    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    for f in files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        for (kind, n) in objects.read(&f.display().to_string(), &text)? {
            *skipped.entry(kind).or_default() += n;
        }
    }
    if !skipped.is_empty() {
        let kinds: Vec<String> = skipped
            .iter()
            .map(|(k, n)| format!("{n} {}", if k.is_empty() { "without kind" } else { k }))
            .collect();
        eprintln!(
            "note: --rbac: not RBAC objects, skipped: {}",
            kinds.join(", ")
        );
    }
    if objects.is_empty() {
        bail!(
            "--rbac: no Role, ClusterRole, RoleBinding or ClusterRoleBinding in {}",
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(objects)
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SuggestOutput {
    Yaml,
    Json,
}

#[derive(Debug, Args)]
pub struct SuggestArgs {
    #[command(flatten)]
    subject: SubjectArgs,
    /// Only requests in this namespace (cluster-scoped and non-resource requests are left out).
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    namespace: Option<String>,
    /// The same operation in two or more namespaces becomes a cluster-wide rule.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = ArgAction::Set)]
    expand_multi_namespace: bool,
    /// The same operation on two or more names drops resourceNames.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = ArgAction::Set)]
    expand_multi_name: bool,
    #[command(flatten)]
    rbac: RbacArgs,
    /// Print only what the cluster's RBAC (--rbac or --rbac-from-trail) does not already grant.
    #[arg(long)]
    delta: bool,
    /// Name of every generated object; ${user} is the subject.
    #[arg(long, value_name = "NAME", default_value = "kubetrail:${user}")]
    generate_name: String,
    /// Labels of every generated object (KEY=VALUE, comma-separated or repeated).
    #[arg(
        long,
        value_name = "KEY=VALUE",
        value_delimiter = ',',
        default_value = "kubetrail.io/generated=true,kubetrail.io/subject=${user}"
    )]
    generate_labels: Vec<String>,
    /// Annotations of every generated object (KEY=VALUE, comma-separated or repeated).
    #[arg(long, value_name = "KEY=VALUE", value_delimiter = ',')]
    generate_annotations: Vec<String>,
    /// Annotate each Role and ClusterRole with up to N auditIDs of the requests each rule
    /// was needed for (`kubetrail.io/rule-audit-ids`: one list per rule, in rule order).
    #[arg(long, value_name = "N", default_value_t = 0)]
    audit_ids: usize,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "yaml")]
    output: SuggestOutput,
    #[command(flatten)]
    trail: TrailArgs,
}

/// `KEY=VALUE` pairs (an entry without `=` has an empty value, as in audit2rbac).
fn pairs(values: &[String]) -> Vec<(String, String)> {
    values
        .iter()
        .filter(|v| !v.is_empty())
        .map(|v| match v.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (v.clone(), String::new()),
        })
        .collect()
}

pub fn run(cmd: RbacCommand) -> Result<ExitCode> {
    match cmd {
        RbacCommand::Suggest(args) => suggest(*args),
        RbacCommand::Unused(args) => unused(*args),
    }
}

fn suggest(args: SuggestArgs) -> Result<ExitCode> {
    let Some(subject) = args.subject.selector()? else {
        bail!("say whose permissions: --user USER, --serviceaccount NS:NAME or --group GROUP");
    };
    if args.delta && !args.rbac.given() {
        bail!("--delta subtracts the cluster's RBAC: give --rbac FILE or --rbac-from-trail");
    }
    let snapshot = args.rbac.load(&args.trail)?;
    let requests = args
        .trail
        .requests(Some(&subject), args.trail.time.range()?)?;
    let mut existing = kubetrail_rbac::default_existing();
    if args.delta
        && let Some(s) = &snapshot
    {
        existing.extend(s);
    }
    let options = Options {
        expand_multi_namespace: args.expand_multi_namespace,
        expand_multi_name: args.expand_multi_name,
        namespace: args.namespace.clone(),
        audit_ids_per_rule: args.audit_ids,
        ..Options::default()
    };
    let naming = Naming {
        name: args.generate_name.clone(),
        labels: pairs(&args.generate_labels),
        annotations: pairs(&args.generate_annotations),
    };
    let generated = match kubetrail_rbac::suggest(
        &requests,
        &subject,
        &Authorizer::new(&existing),
        &options,
        &naming,
    ) {
        Ok(g) => g,
        Err(e @ kubetrail_rbac::Error::NoEvents(_)) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    };
    let objects = generated.objects();
    let rules: usize = generated.roles.iter().map(|r| r.rules.len()).sum();
    eprintln!(
        "{} distinct operations of {}; {} already allowed{}; {rules} rules in {} objects",
        generated.operations,
        subject.describe(),
        generated.already_allowed,
        if args.delta {
            " (discovery and the cluster's RBAC)"
        } else {
            " (discovery)"
        },
        objects.len(),
    );
    if let (Some(s), false) = (&snapshot, args.delta) {
        let current = Authorizer::new(s);
        let granted = requests.iter().filter(|r| current.allows(r)).count();
        eprintln!(
            "note: the cluster's RBAC already allows {granted} of the {} events read; --delta prints only what it lacks",
            requests.len()
        );
    }
    let docs = generated.documents(args.audit_ids > 0);
    match args.output {
        SuggestOutput::Yaml => print!("{}", kubetrail_rbac::to_yaml(&docs)),
        SuggestOutput::Json => print!("{}", kubetrail_rbac::to_json_list(&docs)),
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum UnusedOutput {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct UnusedArgs {
    #[command(flatten)]
    rbac: RbacArgs,
    #[command(flatten)]
    subject: SubjectArgs,
    /// Every subject the bindings name, cluster-admin equivalents first, then by unused grants.
    #[arg(long, conflicts_with = "subject")]
    all: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: UnusedOutput,
    #[command(flatten)]
    trail: TrailArgs,
}

fn unused(args: UnusedArgs) -> Result<ExitCode> {
    let selector = args.subject.selector()?;
    if selector.is_none() && !args.all {
        bail!("say whose grants: --user USER, --serviceaccount NS:NAME, --group GROUP, or --all");
    }
    let Some(snapshot) = args.rbac.load(&args.trail)? else {
        bail!(
            "say what is granted: --rbac FILE (kubectl get clusterroles,clusterrolebindings,roles,rolebindings -A -o yaml) or --rbac-from-trail"
        );
    };
    let authorizer = Authorizer::new(&snapshot);
    let mut range = args.trail.time.range()?;
    if args.trail.time.since.is_none()
        && args.trail.time.from.is_none()
        && args.trail.time.to.is_none()
    {
        // The window a least-privilege review looks at.
        range.from_micros = Some(chrono::Utc::now().timestamp_micros() - 30 * 86_400_000_000);
    }
    let subjects: Vec<Subject> = match &selector {
        Some(s) => vec![s.subject()],
        None => kubetrail_rbac::subjects_of(&authorizer),
    };
    let requests = args.trail.requests(selector.as_ref(), range)?;
    let mut reports: Vec<SubjectReport> = subjects
        .iter()
        .map(|s| kubetrail_rbac::unused(&authorizer, s, &requests, &UnusedOptions::default()))
        .collect();
    if let Some(s) = &selector
        && reports.iter().all(|r| r.atoms.is_empty())
    {
        eprintln!("note: no binding grants anything to {}", s.describe());
    }
    kubetrail_rbac::rank(&mut reports);
    match args.output {
        UnusedOutput::Json => {
            let items: Vec<Value> = reports.iter().map(|r| r.to_json(&format_time)).collect();
            println!("{}", serde_json::to_string_pretty(&items)?);
        }
        UnusedOutput::Table if args.all => print!("{}", ranking_table(&reports)),
        UnusedOutput::Table => {
            for r in &reports {
                print!("{}", subject_table(r));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn ranking_table(reports: &[SubjectReport]) -> String {
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            vec![
                escape(&r.subject.display()),
                if r.cluster_admin() { "yes" } else { "no" }.to_string(),
                r.atoms.len().to_string(),
                r.unused().to_string(),
                r.denied.len().to_string(),
                r.requests.to_string(),
            ]
        })
        .collect();
    render(
        &[
            "SUBJECT",
            "CLUSTER-ADMIN",
            "GRANTED",
            "UNUSED",
            "DENIED",
            "REQUESTS",
        ],
        &rows,
    )
}

fn subject_table(r: &SubjectReport) -> String {
    let mut out = format!(
        "{}: {} granted, {} unused; {} refused and not granted; {} allowed requests{}\n",
        escape(&r.subject.display()),
        r.atoms.len(),
        r.unused(),
        r.denied.len(),
        r.requests,
        if r.cluster_admin() {
            "; cluster-admin equivalent"
        } else {
            ""
        },
    );
    if !r.atoms.is_empty() {
        let rows: Vec<Vec<String>> = r
            .atoms
            .iter()
            .map(|a| {
                let status = match (a.uses > 0, a.atom.is_wildcard()) {
                    (true, true) => "used (wildcard)",
                    (true, false) => "used",
                    (false, true) => "UNUSED (wildcard)",
                    (false, false) => "UNUSED",
                };
                vec![
                    status.to_string(),
                    escape(&a.atom.describe()),
                    a.uses.to_string(),
                    a.last
                        .as_ref()
                        .map(|(id, t)| format!("{} {}", format_time(*t), escape(id)))
                        .unwrap_or_default(),
                    escape(&a.via.join(", ")),
                ]
            })
            .collect();
        out.push_str(&render(
            &["STATUS", "PERMISSION", "USES", "LAST", "VIA"],
            &rows,
        ));
    }
    if !r.denied.is_empty() {
        out.push_str("refused, and not granted:\n");
        let rows: Vec<Vec<String>> = r
            .denied
            .iter()
            .map(|d| {
                vec![
                    escape(&d.request.describe()),
                    d.count.to_string(),
                    format!("{} {}", format_time(d.last.1), escape(&d.last.0)),
                ]
            })
            .collect();
        out.push_str(&render(&["REQUEST", "TIMES", "LAST"], &rows));
    }
    out
}
