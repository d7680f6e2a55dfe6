//! `kubetrail install apiserver|manifests`: turn auditing on in a kube-apiserver static-pod
//! manifest (policy file, flags, volumes; backed up, reversible), and print the manifests that
//! run kubetrail in a cluster.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use kubetrail_install::apiserver::{AuditSettings, LogBackend, apply};
use kubetrail_install::manifests::{ManifestOptions, StoreKind, random_token, render};
use kubetrail_install::{backup, policy};
use kubetrail_policy::KubeVersion;

use super::serve::WebhookCredentialArgs;

#[derive(Debug, Subcommand)]
pub enum InstallCommand {
    /// Turn auditing on in a kube-apiserver static-pod manifest (kubeadm layout).
    Apiserver(Box<ApiserverArgs>),
    /// Print (or write) the manifests that run kubetrail in a cluster.
    Manifests(Box<ManifestsArgs>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The log backend: files the agent follows.
    Log,
    /// The webhook backend: EventList batches to kubetrail serve.
    Webhook,
    /// Both, as the apiserver allows.
    Both,
}

#[derive(Debug, Args)]
pub struct ApiserverArgs {
    /// The kube-apiserver static-pod manifest.
    #[arg(long, default_value = "/etc/kubernetes/manifests/kube-apiserver.yaml")]
    manifest: PathBuf,
    /// The audit policy to install [default: kubetrail's recommended policy].
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Where the policy is written on the node (and what the flag and mount point at).
    #[arg(long, default_value = "/etc/kubernetes/audit-policy.yaml")]
    policy_path: PathBuf,
    /// --audit-log-path.
    #[arg(long, default_value = "/var/log/kubernetes/kubernetes.audit")]
    log_path: String,
    /// --audit-log-maxage (days).
    #[arg(long, default_value_t = 30)]
    maxage: u32,
    /// --audit-log-maxbackup.
    #[arg(long, default_value_t = 10)]
    maxbackup: u32,
    /// --audit-log-maxsize (MB).
    #[arg(long, default_value_t = 100)]
    maxsize: u32,
    /// --audit-log-compress (gzip rotated files).
    #[arg(long)]
    compress: bool,
    /// Which audit backend(s).
    #[arg(long, value_enum, default_value = "log")]
    backend: Backend,
    /// kubetrail serve's base URL (webhook backend).
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Cluster name stamped on webhook events (a DNS-1123 label).
    #[arg(long, default_value = "default", value_parser = kubetrail_install::manifests::cluster_name)]
    cluster: String,
    #[command(flatten)]
    credential: WebhookCredentialArgs,
    /// Where the webhook kubeconfig is written on the node.
    #[arg(long, default_value = "/etc/kubernetes/audit-webhook.kubeconfig")]
    webhook_config_path: PathBuf,
    /// Where backups go: outside the manifests directory.
    #[arg(long, default_value = "/var/lib/kubetrail/backups")]
    backup_dir: PathBuf,
    /// The apiserver's version, when the image tag does not say (e.g. 1.29).
    #[arg(long, value_name = "1.N")]
    kube_version: Option<KubeVersion>,
    /// Print what would change (a unified diff) and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Put back what the last install changed.
    #[arg(long, conflicts_with = "dry_run")]
    revert: bool,
    /// Replace audit settings someone else made.
    #[arg(long)]
    force: bool,
    /// Where the kubeadm ClusterConfiguration fragment goes, for a manifest kubeadm wrote
    /// (merge it into kube-system/kubeadm-config so `kubeadm upgrade` keeps auditing on).
    #[arg(long, default_value = "/etc/kubernetes/kubetrail-kubeadm-patch.yaml")]
    kubeadm_patch: PathBuf,
    /// After the change, do not wait for the apiserver to answer /readyz again.
    #[arg(long)]
    no_wait: bool,
    /// The apiserver's readiness URL [default: https://ADVERTISED:PORT/readyz from the
    /// manifest, else https://127.0.0.1:6443/readyz].
    #[arg(long, value_name = "URL")]
    readyz_url: Option<String>,
    /// CA of the apiserver's serving certificate [default: /etc/kubernetes/pki/ca.crt when it
    /// exists].
    #[arg(long, value_name = "FILE")]
    readyz_ca_file: Option<PathBuf>,
    /// How long the restarted apiserver may take to answer ready again once it went down; past
    /// it the original manifest is put back.
    #[arg(long, default_value = "3m", value_parser = super::common::parse_duration)]
    wait_timeout: std::time::Duration,
}

/// The apiserver's readiness URL: given, or where kubeadm says it listens.
fn readyz_url(args: &ApiserverArgs, manifest: &str) -> String {
    if let Some(u) = &args.readyz_url {
        return u.clone();
    }
    let endpoint = kubetrail_install::kubeadm::advertised_endpoint(manifest)
        .unwrap_or_else(|| "127.0.0.1:6443".into());
    format!("https://{endpoint}/readyz")
}

/// How the apiserver answered its readiness URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Readiness {
    /// 200.
    Ready,
    /// It answered, but its readiness cannot be read: 401 or 403 (anonymous requests to
    /// `/readyz` turned off). The process is up and serving TLS.
    Answering,
    /// Another status (503 while starting) or no connection.
    Down,
}

/// A client of the apiserver's readiness URL.
struct ReadyProbe {
    client: kubetrail_api::Client,
    path: String,
    url: String,
}

impl ReadyProbe {
    fn new(url: &str, ca: Option<PathBuf>) -> Result<ReadyProbe> {
        use std::time::Duration;
        let at = url
            .find("://")
            .and_then(|i| url[i + 3..].find('/').map(|j| i + 3 + j));
        let (base, path) = match at {
            Some(at) => (&url[..at], &url[at..]),
            None => (url, "/readyz"),
        };
        let client = kubetrail_api::Client::new(
            base,
            &kubetrail_api::ClientOptions {
                ca_file: ca,
                timeout: Some(Duration::from_secs(5)),
                ..Default::default()
            },
        )?;
        Ok(ReadyProbe {
            client,
            path: path.to_string(),
            url: url.to_string(),
        })
    }

    /// One look; the error is why there was no answer at all.
    fn look(&self) -> std::result::Result<Readiness, String> {
        match self.client.status_of(&self.path) {
            Ok(200) => Ok(Readiness::Ready),
            Ok(401 | 403) => Ok(Readiness::Answering),
            Ok(_) => Ok(Readiness::Down),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// How long the kubelet may take to restart the apiserver after its manifest changed: it
/// reads the manifests directory every 20 s.
const RESTART_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// Waits for the restarted apiserver: first for the old one to stop answering (the kubelet
/// restarts it when it sees the manifest change), then, within `timeout` of that, for the new
/// one to answer ready. `Err`: it went down and did not come back. Not seeing it go down
/// within [`RESTART_WINDOW`] is not a failure (the kubelet may be slow): it is said, and the
/// new apiserver is left unchecked.
fn wait_ready(probe: &ReadyProbe, timeout: std::time::Duration) -> Result<()> {
    use std::time::{Duration, Instant};
    let url = &probe.url;
    let start = Instant::now();
    let mut went_down = None;
    while start.elapsed() < RESTART_WINDOW {
        if !matches!(probe.look(), Ok(Readiness::Ready | Readiness::Answering)) {
            went_down = Some(Instant::now());
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let Some(down) = went_down else {
        eprintln!(
            "warning: the apiserver kept answering {url} for {}s: the kubelet has not restarted it yet, so the new settings are unchecked (undo with --revert)",
            RESTART_WINDOW.as_secs()
        );
        return Ok(());
    };
    while down.elapsed() < timeout {
        match probe.look() {
            Ok(Readiness::Ready) => {
                println!("the apiserver is ready again ({url})");
                return Ok(());
            }
            Ok(Readiness::Answering) => {
                println!(
                    "the apiserver answers {url} again (401/403: its readiness is not readable anonymously)"
                );
                return Ok(());
            }
            _ => std::thread::sleep(Duration::from_secs(1)),
        }
    }
    bail!(
        "the apiserver did not answer {url} with 200 within {}s of going down for the restart",
        timeout.as_secs()
    )
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn current(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

fn diff(path: &Path, old: &str, new: &str) -> String {
    let name = path.display().to_string();
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&name, &name)
        .to_string()
}

fn apiserver(args: ApiserverArgs) -> Result<ExitCode> {
    if args.revert {
        let (dir, record) = backup::latest(&args.backup_dir, &args.manifest)?;
        backup::restore(&dir, &record)?;
        for f in &record.files {
            match &f.copy {
                Some(_) => println!("restored {}", f.path.display()),
                None => println!("removed {} (the install created it)", f.path.display()),
            }
        }
        println!(
            "reverted the install of {} (backup {})",
            record.stamp,
            dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let manifest_bytes = read(&args.manifest)?;
    let manifest = String::from_utf8(manifest_bytes)
        .with_context(|| format!("{}: not UTF-8", args.manifest.display()))?;
    let want_log = matches!(args.backend, Backend::Log | Backend::Both);
    let want_webhook = matches!(args.backend, Backend::Webhook | Backend::Both);
    let settings = AuditSettings {
        policy_path: args.policy_path.display().to_string(),
        log: want_log.then(|| LogBackend {
            path: args.log_path.clone(),
            max_age: args.maxage,
            max_backup: args.maxbackup,
            max_size: args.maxsize,
            compress: args.compress,
        }),
        webhook_config: want_webhook.then(|| args.webhook_config_path.display().to_string()),
    };
    let edit = apply(&manifest, &settings, args.force)
        .with_context(|| format!("{}", args.manifest.display()))?;
    let version = args.kube_version.or(edit.image_version);
    if version.is_none() {
        eprintln!(
            "warning: the apiserver's version is not in its image tag; checking the policy for every version (give --kube-version)"
        );
    }
    let policy_source = match &args.policy {
        Some(p) => {
            String::from_utf8(read(p)?).with_context(|| format!("{}: not UTF-8", p.display()))?
        }
        None => policy::RECOMMENDED.to_string(),
    };
    let (policy_text, warnings) = policy::prepare(&policy_source, version).with_context(|| {
        args.policy
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the recommended policy".into())
    })?;
    for w in &warnings {
        eprintln!("policy warning: {}", super::table::escape(&w.to_string()));
    }
    let webhook_text = if want_webhook {
        let Some(server) = &args.server else {
            bail!("--backend {:?} needs --server URL", args.backend);
        };
        Some(args.credential.kubeconfig(server, &args.cluster)?)
    } else {
        None
    };

    // What would change.
    let mut files: Vec<(&Path, String)> = vec![(&args.policy_path, policy_text)];
    if let Some(w) = webhook_text {
        files.push((&args.webhook_config_path, w));
    }
    // kubeadm rewrites this manifest on upgrade: the same settings as its configuration.
    if kubetrail_install::kubeadm::is_kubeadm_manifest(&manifest) {
        if version.is_none() {
            eprintln!(
                "warning: the kubeadm version is unknown; {} is written for kubeadm.k8s.io/v1beta3 (kubeadm 1.31 on: `kubeadm config migrate`)",
                args.kubeadm_patch.display()
            );
        }
        let patch = kubetrail_install::kubeadm::cluster_configuration_patch(&settings, version);
        files.push((&args.kubeadm_patch, patch));
    } else {
        eprintln!(
            "note: {} was not written by kubeadm; if a tool regenerates it, give it the same audit flags and volumes, or they are lost at its next run",
            args.manifest.display()
        );
    }
    let changed_files: Vec<&(&Path, String)> = files
        .iter()
        .filter(|(p, text)| current(p).as_deref() != Some(text.as_bytes()))
        .collect();
    let manifest_changes = edit.text != manifest;
    if !manifest_changes && changed_files.is_empty() {
        println!(
            "{}: auditing is already set up as asked; nothing to change",
            args.manifest.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if args.dry_run {
        for (path, text) in &changed_files {
            let old = current(path)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            // The webhook kubeconfig holds a credential: say that it changes, not what.
            if *path == args.webhook_config_path.as_path() {
                println!(
                    "would write {} (holds a credential, not shown)",
                    path.display()
                );
            } else {
                print!("{}", diff(path, &old, text));
            }
        }
        if manifest_changes {
            print!("{}", diff(&args.manifest, &manifest, &edit.text));
        }
        return Ok(ExitCode::SUCCESS);
    }
    backup::check_location(&args.backup_dir, &args.manifest)?;
    // The readiness check must work before the change, or a failure after it would say
    // nothing about the new settings (a wrong URL, a CA that does not match).
    let probe = if args.no_wait || !manifest_changes {
        None
    } else {
        let url = readyz_url(&args, &manifest);
        let ca = args.readyz_ca_file.clone().or_else(|| {
            let kubeadm_ca = PathBuf::from("/etc/kubernetes/pki/ca.crt");
            kubeadm_ca.exists().then_some(kubeadm_ca)
        });
        let probe = ReadyProbe::new(&url, ca)?;
        match probe.look() {
            Ok(Readiness::Ready | Readiness::Answering) => Some(probe),
            Ok(Readiness::Down) => bail!(
                "the apiserver is not ready at {url} before the change: nothing changed (--no-wait to change it anyway)"
            ),
            Err(e) => bail!(
                "cannot check the apiserver's readiness at {url} ({e}): nothing changed; give --readyz-url and --readyz-ca-file, or --no-wait"
            ),
        }
    };
    let mut paths: Vec<&Path> = vec![&args.manifest];
    paths.extend(files.iter().map(|(p, _)| *p));
    let record = backup::save(&args.backup_dir, &paths)?;
    // The files the manifest mounts first, the manifest (which restarts the apiserver) last.
    for (path, text) in &files {
        // Created owner-only (the webhook kubeconfig holds a credential).
        backup::write_atomically(path, text.as_bytes())?;
        println!("wrote {}", path.display());
    }
    if kubetrail_install::kubeadm::is_kubeadm_manifest(&manifest) {
        println!(
            "kubeadm: merge {} into kube-system/kubeadm-config (kubectl -n kube-system edit configmap kubeadm-config) so that `kubeadm upgrade` keeps auditing on",
            args.kubeadm_patch.display()
        );
    }
    if manifest_changes {
        backup::write_atomically(&args.manifest, edit.text.as_bytes())?;
        println!(
            "updated {} (the kubelet restarts the apiserver)",
            args.manifest.display()
        );
        if let Some(probe) = &probe
            && let Err(e) = wait_ready(probe, args.wait_timeout)
        {
            backup::restore(&args.backup_dir.join(&record.stamp), &record)?;
            bail!(
                "{e}: put the original {} back (and removed what the install wrote); the backup stays in {}",
                args.manifest.display(),
                args.backup_dir.join(&record.stamp).display()
            );
        }
    }
    println!(
        "backup in {}: undo with `kubetrail install apiserver --revert --manifest {} --backup-dir {}`",
        args.backup_dir.join(&record.stamp).display(),
        args.manifest.display(),
        args.backup_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Store {
    /// The embedded store (one replica with a volume).
    Duckdb,
    /// ClickHouse (two replicas).
    Clickhouse,
}

#[derive(Debug, Args)]
pub struct ManifestsArgs {
    /// Namespace for everything.
    #[arg(long, short = 'n', default_value = "kubetrail")]
    namespace: String,
    /// The store the server uses.
    #[arg(long, value_enum, default_value = "duckdb")]
    store: Store,
    /// Cluster name stamped on the agents' events (a DNS-1123 label).
    #[arg(long, default_value = "default", value_parser = kubetrail_install::manifests::cluster_name)]
    cluster: String,
    /// Container image.
    #[arg(long, default_value = concat!("ghcr.io/kubetrail/kubetrail:", env!("CARGO_PKG_VERSION")))]
    image: String,
    /// The apiservers' --audit-log-path.
    #[arg(long, default_value = "/var/log/kubernetes/kubernetes.audit")]
    log_path: String,
    /// ClickHouse HTTP URL (with --store clickhouse).
    #[arg(long, default_value = "http://clickhouse.kubetrail.svc:8123")]
    clickhouse_url: String,
    /// Volume size of the embedded store.
    #[arg(long, default_value = "50Gi")]
    storage: String,
    /// How long events are kept (the server's --retention-max-age); `forever` keeps them all.
    /// Size the volume for it: see the README's capacity figures.
    #[arg(long, default_value = "90d")]
    retention: String,
    /// Plain HTTP between agents and the server instead of TLS with a generated certificate:
    /// tokens and events then cross the cluster network in the clear.
    #[arg(long)]
    no_tls: bool,
    /// The namespace Prometheus scrapes from: the agents' metrics port admits only it.
    #[arg(long, default_value = "monitoring")]
    monitoring_namespace: String,
    /// Also write ServiceMonitors (Prometheus Operator's monitoring.coreos.com/v1).
    #[arg(long)]
    service_monitor: bool,
    /// Write `kubetrail.yaml` into this directory instead of printing.
    #[arg(long, short = 'o', value_name = "DIR")]
    output: Option<PathBuf>,
}

fn manifests(args: ManifestsArgs) -> Result<ExitCode> {
    let tokens = [random_token()?, random_token()?, random_token()?];
    let retention = match args.retention.as_str() {
        "forever" => None,
        age => {
            kubetrail_store::text::parse_duration(age)
                .map_err(|e| anyhow::anyhow!("--retention: {e}"))?;
            Some(age.to_string())
        }
    };
    let tls = if args.no_tls {
        None
    } else {
        let names = kubetrail_install::tls::service_names("kubetrail", &args.namespace);
        Some(kubetrail_install::tls::generate(names)?)
    };
    let text = render(&ManifestOptions {
        namespace: args.namespace,
        store: match args.store {
            Store::Duckdb => StoreKind::DuckDb,
            Store::Clickhouse => StoreKind::ClickHouse,
        },
        cluster: args.cluster,
        image: args.image,
        log_path: args.log_path,
        clickhouse_url: args.clickhouse_url,
        storage: args.storage,
        tokens,
        tls,
        retention,
        monitoring_namespace: args.monitoring_namespace,
        service_monitor: args.service_monitor,
    });
    match args.output {
        None => print!("{text}"),
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let path = dir.join("kubetrail.yaml");
            backup::write_atomically(&path, text.as_bytes())?;
            use std::os::unix::fs::PermissionsExt;
            // Owner-only even when it replaces a file that was readable by others.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            eprintln!(
                "wrote {} (it holds the tokens: keep it 0600)",
                path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run(command: InstallCommand) -> Result<ExitCode> {
    match command {
        InstallCommand::Apiserver(args) => apiserver(*args),
        InstallCommand::Manifests(args) => manifests(*args),
    }
}
