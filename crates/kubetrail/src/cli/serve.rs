//! `kubetrail serve`: the server, configured by a YAML file and flags (flags win), and
//! `kubetrail webhook-config`, which writes the kubeconfig the apiserver's
//! `--audit-webhook-config-file` takes to reach it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use kubetrail_install::webhook::{Credential, kubeconfig};
use kubetrail_server::{
    AppState, Authenticator, ConnectionLimits, Limits, RequestLimits, TlsFiles, UiSettings,
    load_tokens, router, serve_with,
};
use kubetrail_store::{Retention, Store};
use kubetrail_ui::Networks;
use serde::Serialize;

use super::common::{Backend, BackendArgs, read_token_file};
use crate::config::{HumanDuration, ServeConfig, is_false};

/// The flags of `serve`. Each one but `--config`, `--print-config` and the demo's is a key of
/// [`ServeConfig`], whose docs are the flags' help (see [`crate::config::document_flags`]);
/// serialized, they are the top layer of the configuration.
#[derive(Debug, Args, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServeArgs {
    /// YAML configuration file (keys in docs/configuration.md); flags and environment
    /// variables override it.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Print the configuration the server would run with (defaults, file, environment and
    /// flags merged) as YAML, and exit.
    #[arg(long)]
    #[serde(skip)]
    print_config: bool,
    #[arg(long, value_name = "ADDR:PORT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    #[arg(long, env = "KUBETRAIL_DATA_DIR", value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens_file: Option<PathBuf>,
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cert: Option<PathBuf>,
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_key: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    client_ca: Option<PathBuf>,
    #[arg(long)]
    #[serde(skip_serializing_if = "is_false")]
    insecure_no_auth: bool,
    #[arg(long, value_name = "BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_body_bytes: Option<usize>,
    #[arg(long, value_name = "BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_url_bytes: Option<usize>,
    #[arg(long, value_name = "MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    header_read_timeout_ms: Option<u64>,
    #[arg(long, value_name = "MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    body_read_timeout_ms: Option<u64>,
    #[arg(long, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_connections: Option<usize>,
    #[command(flatten)]
    #[serde(flatten)]
    backend: BackendArgs,
    #[arg(long, value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    retention_max_age: Option<HumanDuration>,
    #[arg(long, value_name = "BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    retention_max_bytes: Option<u64>,
    #[arg(long, value_name = "CIDR,...", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    internal_networks: Option<Vec<String>>,
    #[arg(long)]
    #[serde(skip_serializing_if = "is_false")]
    secure_cookies: bool,
    #[arg(long)]
    #[serde(skip_serializing_if = "is_false")]
    no_detection: bool,
    #[arg(long, value_name = "PATH")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rules: Vec<PathBuf>,
    #[arg(long)]
    #[serde(skip_serializing_if = "is_false")]
    no_default_rules: bool,
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rbac: Vec<PathBuf>,
    #[arg(long, value_name = "CLUSTER")]
    #[serde(skip_serializing_if = "Option::is_none")]
    rbac_cluster: Option<String>,
    #[arg(long)]
    #[serde(skip_serializing_if = "is_false")]
    rbac_from_trail: bool,
    #[arg(long, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    external_url: Option<String>,
    #[arg(long)]
    #[serde(skip_serializing_if = "is_false")]
    no_redact: bool,
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_key: Option<PathBuf>,
    /// Serve a throwaway store loaded with the bundled real audit samples and a week of
    /// generated traffic; without --tokens-file, on loopback only and without sign-in.
    #[arg(long, conflicts_with_all = ["data_dir", "config"])]
    #[serde(skip)]
    demo: bool,
    /// Generated events in the demo.
    #[arg(long, default_value_t = 100_000, requires = "demo", value_name = "N")]
    #[serde(skip)]
    demo_events: u64,
}

/// The merged settings.
struct Settings {
    listen: SocketAddr,
    data_dir: PathBuf,
    auth: Authenticator,
    tls: Option<TlsFiles>,
    limits: Limits,
    requests: RequestLimits,
    connections: ConnectionLimits,
    retention: Retention,
    backend: BackendArgs,
    networks: Networks,
    secure_cookies: bool,
    /// Which rules run live; `None` without detection.
    detection: Option<super::detect::RuleArgs>,
    /// Where new alerts go.
    notify: Vec<kubetrail_notify::SinkConfig>,
    /// The server's address as people reach it.
    external_url: Option<String>,
    /// The chain's signing key, when not the data directory's.
    signing_key: Option<PathBuf>,
    /// The extra paths to redact; `None` with `--no-redact`.
    redaction: Option<Vec<kubetrail_redact::ExtraPaths>>,
    /// Generated events of a demo, when this is one.
    demo: Option<u64>,
    /// The cluster's RBAC: files, or rebuilt from the trail.
    rbac: Option<kubetrail_server::RbacSource>,
}

/// The configuration: defaults, then `--config`, then environment and flags.
fn config(args: &ServeArgs) -> Result<ServeConfig> {
    let config: ServeConfig =
        crate::config::layered(args.config.as_deref(), "a serve configuration", args)?;
    config.check()?;
    Ok(config)
}

fn settings(args: ServeArgs) -> Result<Settings> {
    let c = config(&args)?;
    // A demo holds no one's real data: without tokens it needs no sign-in, on loopback only.
    let demo_open = args.demo && c.tokens_file.is_none();
    if demo_open && !c.listen.ip().is_loopback() {
        bail!(
            "--demo without --tokens-file listens on loopback only, not {}",
            c.listen
        );
    }
    let auth = match (c.tokens_file, c.insecure_no_auth || demo_open) {
        (Some(_), true) => bail!("--tokens-file and --insecure-no-auth contradict each other"),
        (Some(f), false) => Authenticator::Tokens(load_tokens(&f)?),
        (None, true) => Authenticator::Insecure,
        (None, false) => bail!(
            "serve needs --tokens-file (a YAML list of {{name, token, role, cluster?}}), or \
             --insecure-no-auth to run without authentication"
        ),
    };
    let tls = match (c.tls_cert, c.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert,
            key,
            client_ca: c.client_ca,
        }),
        (None, None) if c.client_ca.is_some() => {
            bail!("--client-ca needs HTTPS: give --tls-cert and --tls-key")
        }
        (None, None) => None,
        _ => bail!("give both --tls-cert and --tls-key"),
    };
    // A demo's store is the throwaway embedded one, never a configured server's.
    if args.demo && c.store == Backend::Clickhouse {
        bail!(
            "--demo loads generated events into a throwaway embedded store; it does not take --store clickhouse (nor KUBETRAIL_STORE=clickhouse)"
        );
    }
    let networks = Networks::parse(&c.internal_networks)
        .map_err(|e| anyhow::anyhow!("--internal-networks: {e}"))?;
    let detection = (!c.no_detection).then(|| {
        super::detect::RuleArgs::new(c.rules.clone(), c.no_default_rules, &c.rule_parameters)
    });
    if detection.is_none() && !c.notify.is_empty() {
        bail!("notify needs detection: it sends the alerts the rules raise (noDetection is set)");
    }
    if c.no_redact && !c.redact_paths.is_empty() {
        bail!("redactPaths and noRedact contradict each other");
    }
    let rbac = match (c.rbac.is_empty(), c.rbac_from_trail) {
        (false, true) => bail!("rbac files and rbacFromTrail contradict each other"),
        (false, false) => Some(
            kubetrail_server::RbacSource::files(c.rbac.clone(), c.rbac_cluster.clone())
                .map_err(|e| anyhow::anyhow!("--rbac: {e}"))?,
        ),
        (true, true) if c.rbac_cluster.is_some() => {
            bail!(
                "rbacCluster names the cluster of rbac files; rbacFromTrail rebuilds each cluster's own"
            )
        }
        (true, true) => Some(kubetrail_server::RbacSource::from_trail()),
        (true, false) if c.rbac_cluster.is_some() => bail!("rbacCluster needs rbac files"),
        (true, false) => None,
    };
    Ok(Settings {
        rbac,
        redaction: (!c.no_redact).then(|| c.redact_paths.clone()),
        signing_key: c.signing_key.clone(),
        notify: c.notify.clone(),
        external_url: c.external_url.clone(),
        detection,
        networks,
        secure_cookies: c.secure_cookies,
        demo: args.demo.then_some(args.demo_events),
        listen: c.listen,
        data_dir: c.data_dir,
        auth,
        tls,
        limits: Limits {
            max_body_bytes: c.max_body_bytes,
        },
        requests: RequestLimits {
            max_url_bytes: c.max_url_bytes,
            body_read_timeout: Duration::from_millis(c.body_read_timeout_ms),
        },
        connections: ConnectionLimits {
            header_read_timeout: Duration::from_millis(c.header_read_timeout_ms),
            max_connections: c.max_connections,
        },
        retention: Retention {
            max_age: c.retention_max_age.map(|d| d.0),
            max_bytes: c.retention_max_bytes,
        },
        backend: BackendArgs {
            store: Some(c.store),
            clickhouse_url: c.clickhouse_url,
            clickhouse_database: Some(c.clickhouse_database),
            clickhouse_user: c.clickhouse_user,
            clickhouse_password_file: c.clickhouse_password_file,
        },
    })
}

/// Says something to the operator on standard error: a plain line, or with `--log-format
/// json` an info log record, so a log pipeline reads only JSON.
macro_rules! announce {
    ($($arg:tt)*) => {
        match LOG_FORMAT.get().copied().unwrap_or_default() {
            LogFormat::Text => eprintln!($($arg)*),
            LogFormat::Json => tracing::info!("{}", format!($($arg)*)),
        }
    };
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people; coloured only on a terminal (and without `NO_COLOR`).
    #[default]
    Text,
    /// One JSON object per line, for a log pipeline.
    Json,
}

/// The format `--log-format` chose (set once, before a command runs).
pub static LOG_FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

/// Logs to standard error in the `--log-format`; `KUBETRAIL_LOG` sets the level (error, warn,
/// info, debug, trace).
pub fn init_logging() {
    use std::io::IsTerminal;
    let level = std::env::var("KUBETRAIL_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr);
    let _ = match LOG_FORMAT.get().copied().unwrap_or_default() {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .try_init(),
    };
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}

/// Reloads the detection rules and the RBAC files at every SIGHUP; a set that does not load
/// is refused with its error and the one in use stays.
async fn reload_on_hangup(
    detector: Option<Arc<kubetrail_server::Detector>>,
    rbac: Option<Arc<kubetrail_server::RbacSource>>,
) {
    #[cfg(unix)]
    {
        let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("SIGHUP cannot be caught: rules and RBAC files are not reloaded on it");
            return;
        };
        while hangups.recv().await.is_some() {
            if let Some(d) = detector.clone() {
                match tokio::task::spawn_blocking(move || d.reload()).await {
                    Ok(Ok(n)) => tracing::info!(rules = n, "detection rules reloaded"),
                    Ok(Err(e)) => {
                        tracing::error!("detection rules not reloaded, the running rules stay: {e}")
                    }
                    Err(e) => tracing::error!("reloading the detection rules failed: {e}"),
                }
            }
            if let Some(r) = rbac.clone() {
                match tokio::task::spawn_blocking(move || r.reload()).await {
                    Ok(Ok(n)) => tracing::info!(objects = n, "RBAC files reloaded"),
                    Ok(Err(e)) => {
                        tracing::error!("RBAC files not reloaded, the snapshot in use stays: {e}")
                    }
                    Err(e) => tracing::error!("reloading the RBAC files failed: {e}"),
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (detector, rbac);
}

pub fn run(args: ServeArgs) -> Result<ExitCode> {
    if args.print_config {
        print!("{}", serde_norway::to_string(&config(&args)?)?);
        return Ok(ExitCode::SUCCESS);
    }
    init_logging();
    let s = settings(args)?;
    if matches!(s.auth, Authenticator::Insecure) {
        tracing::warn!(
            "AUTHENTICATION IS OFF (--insecure-no-auth): anyone who can reach {} may read every audit event and write fake ones",
            s.listen
        );
    }
    // The demo's directory lives as long as the server.
    let demo_dir = match s.demo {
        Some(_) => Some(tempfile::tempdir().context("creating the demo's data directory")?),
        None => None,
    };
    let data_dir = demo_dir
        .as_ref()
        .map_or(s.data_dir.clone(), |d| d.path().to_path_buf());
    let store: Arc<dyn Store> = Arc::from(s.backend.open(&data_dir, true)?);
    // Linked before anything is stored: every event the server commits is in the chain.
    let (public_key, notes) =
        super::common::link_chain(store.as_ref(), &data_dir, s.signing_key.as_deref())?;
    for note in notes {
        tracing::warn!("{note}");
    }
    tracing::info!(
        key_id = %public_key.id(),
        "stored events are chained and signed; the public key is at /api/v1/chain/public-keys"
    );
    // The key is read (or made) once the store opens, before anything is stored: no event is kept unredacted.
    let redactor = match &s.redaction {
        Some(extra) => {
            let (r, notes) = super::common::redactor(&data_dir, extra)?;
            for note in notes {
                tracing::warn!("{note}");
            }
            Some(Arc::new(r))
        }
        None => {
            tracing::warn!(
                "REDACTION IS OFF (--no-redact): Secret values, tokens and passwords in audit events are stored, shown and forwarded as received"
            );
            None
        }
    };
    if let Some(events) = s.demo {
        announce!(
            "kubetrail serve --demo: loading the real samples and {events} generated events..."
        );
        let loaded = super::demo::load(store.as_ref(), events, redactor.as_deref())?;
        announce!(
            "kubetrail serve --demo: {} sample events (clusters falco, audit2rbac, audit2rbac-v1beta1, panther) and {} generated (clusters prod, staging, the last 7 days), {} alerts, in {}",
            loaded.samples,
            loaded.generated,
            loaded.alerts,
            data_dir.display()
        );
    }
    let ui = UiSettings {
        secure_cookies: s.tls.is_some() || s.secure_cookies,
        networks: s.networks.clone(),
    };
    let mut state = AppState::new(store.clone(), s.auth, s.limits, Some(data_dir.clone()))
        .with_context(|| format!("reading agent gaps in {}", data_dir.display()))?
        .with_ui(ui)
        .with_request_limits(s.requests)
        .with_integrity(public_key);
    if let Some(r) = redactor {
        state = state.with_redaction(r);
    }
    let rbac = s.rbac.map(Arc::new);
    if let Some(r) = &rbac {
        state = state.with_rbac(r.clone());
    }
    if let Some(rules) = &s.detection {
        let rules = rules.clone();
        let loader: kubetrail_server::RuleLoader = Arc::new(move || {
            let rt = kubetrail_detect::Runtime::new();
            let loaded = rules.load(&rt).map_err(|e| format!("{e:#}"))?;
            Ok((rt, loaded))
        });
        let notifier = if s.notify.is_empty() {
            None
        } else {
            let n = kubetrail_notify::Notifier::start(
                &s.notify,
                &data_dir.join("outbox"),
                s.external_url.clone(),
                Arc::new(state.metrics.notify()),
            )
            .context("notify")?;
            tracing::info!(sinks = ?n.sinks(), "alerts are sent to these sinks");
            Some(Arc::new(n))
        };
        state = state
            .with_detection_notifying(loader, notifier)
            .map_err(|e| anyhow::anyhow!("detection: {e}"))?;
    }
    let state = Arc::new(state);
    let demo = s.demo.is_some();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(s.listen)
            .await
            .with_context(|| format!("listening on {}", s.listen))?;
        let local = listener.local_addr()?;
        let scheme = if s.tls.is_some() { "https" } else { "http" };
        // Tests and scripts read this line to learn the port when --listen asked for port 0.
        announce!("kubetrail serve: listening on {scheme}://{local}");
        announce!("kubetrail serve: web UI at {scheme}://{local}/");
        if demo {
            announce!(
                "kubetrail serve --demo: the samples are from past years; pick a custom range to see them"
            );
        }
        tracing::info!(data_dir = %data_dir.display(), "serving");
        if s.retention.max_age.is_some() || s.retention.max_bytes.is_some() {
            let store = store.clone();
            let retention = s.retention;
            tokio::spawn(async move {
                loop {
                    let st = store.clone();
                    match tokio::task::spawn_blocking(move || st.apply_retention(&retention)).await
                    {
                        Ok(Ok(o)) if o.deleted > 0 => {
                            tracing::info!(
                                deleted = o.deleted,
                                bytes_after = o.bytes_after,
                                "retention"
                            )
                        }
                        Ok(Err(e)) => tracing::error!(error = %e, "retention failed"),
                        _ => {}
                    }
                    tokio::time::sleep(Duration::from_secs(600)).await;
                }
            });
        }
        if state.detector.is_some() || rbac.is_some() {
            tokio::spawn(reload_on_hangup(state.detector.clone(), rbac));
        }
        serve_with(
            listener,
            router(state),
            s.tls,
            s.connections,
            shutdown_signal(),
        )
        .await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct WebhookConfigArgs {
    /// Base URL of kubetrail serve, e.g. https://kubetrail.example:8443.
    #[arg(long, value_name = "URL")]
    server: String,
    /// Cluster name stamped on the events (added to the webhook URL).
    #[arg(long)]
    cluster: String,
    #[command(flatten)]
    credential: WebhookCredentialArgs,
    /// Write here (mode 0600) instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// How the apiserver's webhook authenticates to kubetrail: the flags `webhook-config` and
/// `install apiserver --backend webhook` share.
#[derive(Debug, Args)]
pub struct WebhookCredentialArgs {
    /// File holding an ingest token.
    #[arg(long, value_name = "FILE", conflicts_with = "client_cert")]
    pub token_file: Option<PathBuf>,
    /// Client certificate (PEM), for mTLS instead of a token.
    #[arg(long, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// Key of --client-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// CA certificate (PEM) that signed the server's certificate (`--ca` is the old name).
    #[arg(long = "ca-file", visible_alias = "ca", value_name = "FILE")]
    pub ca: Option<PathBuf>,
}

impl WebhookCredentialArgs {
    /// The webhook kubeconfig for `server` and `cluster`.
    pub fn kubeconfig(&self, server: &str, cluster: &str) -> Result<String> {
        let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
        let credential = match (&self.token_file, &self.client_cert, &self.client_key) {
            (Some(f), _, _) => Credential::Token(read_token_file(f)?),
            (None, Some(cert), Some(key)) => Credential::ClientCertificate {
                cert: read(cert)?,
                key: read(key)?,
            },
            _ => bail!("the webhook needs --token-file, or --client-cert and --client-key"),
        };
        let ca = self.ca.as_deref().map(read).transpose()?;
        Ok(kubeconfig(server, cluster, &credential, ca.as_deref())?)
    }
}

pub fn webhook_config(args: WebhookConfigArgs) -> Result<ExitCode> {
    let text = args.credential.kubeconfig(&args.server, &args.cluster)?;
    match &args.output {
        None => print!("{text}"),
        Some(path) => {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut f = options
                .open(path)
                .with_context(|| format!("writing {}", path.display()))?;
            f.write_all(text.as_bytes())?;
            // Also when the file existed before with a wider mode.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            eprintln!(
                "wrote {} (it holds a credential: keep it 0600)",
                path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn parse(flags: &[&str]) -> Result<Settings> {
        let mut argv = vec!["serve", "--insecure-no-auth"];
        argv.extend_from_slice(flags);
        settings(Cli::try_parse_from(argv)?.args)
    }

    #[test]
    fn connection_and_request_limits_come_from_the_file_and_flags() {
        let s = parse(&[]).unwrap();
        assert_eq!(s.connections.header_read_timeout, Duration::from_secs(10));
        assert_eq!(s.connections.max_connections, 1024);
        assert_eq!(s.requests.body_read_timeout, Duration::from_secs(60));
        assert_eq!(s.requests.max_url_bytes, 8192);

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("serve.yaml");
        std::fs::write(
            &file,
            "headerReadTimeoutMs: 2500\nbodyReadTimeoutMs: 30000\nmaxConnections: 64\nmaxUrlBytes: 4096\nretentionMaxAge: 30d\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let s = parse(&["--config", path]).unwrap();
        assert_eq!(
            s.connections.header_read_timeout,
            Duration::from_millis(2500)
        );
        assert_eq!(s.connections.max_connections, 64);
        assert_eq!(s.requests.body_read_timeout, Duration::from_secs(30));
        assert_eq!(s.requests.max_url_bytes, 4096);
        assert_eq!(s.retention.max_age, Some(Duration::from_secs(30 * 86_400)));
        // Flags win.
        let s = parse(&[
            "--config",
            path,
            "--max-connections",
            "8",
            "--retention-max-age",
            "1d",
        ])
        .unwrap();
        assert_eq!(s.connections.max_connections, 8);
        assert_eq!(s.retention.max_age, Some(Duration::from_secs(86_400)));
        // Zero would refuse everything, or wait for nothing.
        for (flag, key) in [
            ("--header-read-timeout-ms", "headerReadTimeoutMs"),
            ("--body-read-timeout-ms", "bodyReadTimeoutMs"),
            ("--max-connections", "maxConnections"),
            ("--max-url-bytes", "maxUrlBytes"),
            ("--max-body-bytes", "maxBodyBytes"),
        ] {
            let e = parse(&[flag, "0"]).err().unwrap().to_string();
            assert!(e.contains(key), "{e}");
        }
    }
}
