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
use serde::Deserialize;

use super::common::{Backend, BackendArgs, parse_duration, read_token_file};

/// Default address: loopback only, so nothing is exposed by accident.
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// YAML configuration file; every key is also a flag, and flags override the file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address and port to listen on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// Data directory of the embedded store [default: kubetrail-data].
    #[arg(long, env = "KUBETRAIL_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Tokens file: a YAML list of {name, token, role: ingest|read|admin, cluster?}.
    #[arg(long, value_name = "FILE")]
    tokens_file: Option<PathBuf>,
    /// Server certificate (PEM): serve HTTPS.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA (PEM) whose client certificates may post to the webhook (mTLS).
    #[arg(long, value_name = "FILE")]
    client_ca: Option<PathBuf>,
    /// Run without authentication: anyone who can connect may read and write everything.
    #[arg(long)]
    insecure_no_auth: bool,
    /// Largest request body in bytes (and largest decompressed agent batch).
    #[arg(long, value_name = "BYTES")]
    max_body_bytes: Option<usize>,
    /// Longest URL (path and query) in bytes; longer requests are answered 414 [default: 8192].
    #[arg(long, value_name = "BYTES")]
    max_url_bytes: Option<usize>,
    /// Time a client has for the TLS handshake and for each request's line and headers, also
    /// the idle time of a kept-alive connection; then the connection is closed [default: 10000].
    #[arg(long, value_name = "MS")]
    header_read_timeout_ms: Option<u64>,
    /// Time a client has to send a request's body after its headers; then it is answered 408
    /// and the connection closed [default: 60000].
    #[arg(long, value_name = "MS")]
    body_read_timeout_ms: Option<u64>,
    /// Connections served at once; further connections wait in the listen backlog until one
    /// ends [default: 1024].
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    #[command(flatten)]
    backend: BackendArgs,
    /// Delete events older than this (e.g. 90d); checked every 10 minutes.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    retention_max_age: Option<Duration>,
    /// Delete the oldest events while the store is larger than this many bytes.
    #[arg(long, value_name = "BYTES")]
    retention_max_bytes: Option<u64>,
    /// Source address ranges counted as internal by the web UI (CIDR, comma-separated)
    /// [default: loopback, private, link-local and shared address space].
    #[arg(long, value_name = "CIDR,...", value_delimiter = ',')]
    internal_networks: Option<Vec<String>>,
    /// Mark the session cookie Secure even when serving plain HTTP (behind a proxy that
    /// terminates TLS); with --tls-cert it always is.
    #[arg(long)]
    secure_cookies: bool,
    /// Serve a throwaway store loaded with the bundled real audit samples and a week of
    /// generated traffic; without --tokens-file, on loopback only and without sign-in.
    #[arg(long, conflicts_with_all = ["data_dir", "config"])]
    demo: bool,
    /// Generated events in the demo.
    #[arg(long, default_value_t = 100_000, requires = "demo", value_name = "N")]
    demo_events: u64,
}

/// The configuration file: the flags' names in camelCase.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ServeFile {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    tokens_file: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
    #[serde(default)]
    insecure_no_auth: bool,
    max_body_bytes: Option<usize>,
    max_url_bytes: Option<usize>,
    header_read_timeout_ms: Option<u64>,
    body_read_timeout_ms: Option<u64>,
    max_connections: Option<usize>,
    retention_max_age: Option<String>,
    retention_max_bytes: Option<u64>,
    store: Option<Backend>,
    clickhouse_url: Option<String>,
    clickhouse_database: Option<String>,
    clickhouse_user: Option<String>,
    clickhouse_password_file: Option<PathBuf>,
    internal_networks: Option<Vec<String>>,
    #[serde(default)]
    secure_cookies: bool,
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
    /// Generated events of a demo, when this is one.
    demo: Option<u64>,
}

fn settings(args: ServeArgs) -> Result<Settings> {
    let file: ServeFile = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_norway::from_str(&text)
                .with_context(|| format!("{}: not a serve configuration", path.display()))?
        }
        None => ServeFile::default(),
    };
    let listen = match args.listen.or(file.listen) {
        Some(l) => l,
        None => DEFAULT_LISTEN.parse().context("the default address")?,
    };
    let tokens_file = args.tokens_file.or(file.tokens_file);
    // A demo holds no one's real data: without tokens it needs no sign-in, on loopback only.
    let demo_open = args.demo && tokens_file.is_none();
    if demo_open && !listen.ip().is_loopback() {
        bail!("--demo without --tokens-file listens on loopback only, not {listen}");
    }
    let insecure = args.insecure_no_auth || file.insecure_no_auth || demo_open;
    let auth = match (tokens_file, insecure) {
        (Some(_), true) => bail!("--tokens-file and --insecure-no-auth contradict each other"),
        (Some(f), false) => Authenticator::Tokens(load_tokens(&f)?),
        (None, true) => Authenticator::Insecure,
        (None, false) => bail!(
            "serve needs --tokens-file (a YAML list of {{name, token, role, cluster?}}), or \
             --insecure-no-auth to run without authentication"
        ),
    };
    let cert = args.tls_cert.or(file.tls_cert);
    let key = args.tls_key.or(file.tls_key);
    let client_ca = args.client_ca.or(file.client_ca);
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert,
            key,
            client_ca,
        }),
        (None, None) if client_ca.is_some() => {
            bail!("--client-ca needs HTTPS: give --tls-cert and --tls-key")
        }
        (None, None) => None,
        _ => bail!("give both --tls-cert and --tls-key"),
    };
    let max_age = match (args.retention_max_age, &file.retention_max_age) {
        (Some(d), _) => Some(d),
        (None, Some(text)) => Some(
            parse_duration(text)
                .map_err(anyhow::Error::msg)
                .context("retentionMaxAge")?,
        ),
        (None, None) => None,
    };
    // A demo's store is the throwaway embedded one, never a configured server's.
    if args.demo && matches!(args.backend.store, Some(Backend::Clickhouse)) {
        bail!(
            "--demo loads generated events into a throwaway embedded store; it does not take --store clickhouse (nor KUBETRAIL_STORE=clickhouse)"
        );
    }
    let positive = |key: &str, v: Option<u64>| -> Result<Option<u64>> {
        match v {
            Some(0) => bail!("{key}: must be greater than 0"),
            v => Ok(v),
        }
    };
    let ms = |key: &str, flag: Option<u64>, file: Option<u64>, default: Duration| {
        positive(key, flag.or(file)).map(|v| v.map_or(default, Duration::from_millis))
    };
    let requests = RequestLimits {
        max_url_bytes: positive(
            "maxUrlBytes",
            args.max_url_bytes.or(file.max_url_bytes).map(|v| v as u64),
        )?
        .map_or(kubetrail_server::DEFAULT_MAX_URL_BYTES, |v| v as usize),
        body_read_timeout: ms(
            "bodyReadTimeoutMs",
            args.body_read_timeout_ms,
            file.body_read_timeout_ms,
            kubetrail_server::DEFAULT_BODY_READ_TIMEOUT,
        )?,
    };
    let connections = ConnectionLimits {
        header_read_timeout: ms(
            "headerReadTimeoutMs",
            args.header_read_timeout_ms,
            file.header_read_timeout_ms,
            kubetrail_server::tls::DEFAULT_HEADER_READ_TIMEOUT,
        )?,
        max_connections: positive(
            "maxConnections",
            args.max_connections
                .or(file.max_connections)
                .map(|v| v as u64),
        )?
        .map_or(kubetrail_server::tls::DEFAULT_MAX_CONNECTIONS, |v| {
            v as usize
        }),
    };
    let networks = match args.internal_networks.or(file.internal_networks) {
        Some(list) => {
            Networks::parse(&list).map_err(|e| anyhow::anyhow!("--internal-networks: {e}"))?
        }
        None => Networks::default(),
    };
    Ok(Settings {
        networks,
        secure_cookies: args.secure_cookies || file.secure_cookies,
        demo: args.demo.then_some(args.demo_events),
        listen,
        data_dir: args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("kubetrail-data")),
        auth,
        tls,
        limits: Limits {
            max_body_bytes: args
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(kubetrail_server::DEFAULT_MAX_BODY_BYTES),
        },
        requests,
        connections,
        retention: Retention {
            max_age,
            max_bytes: args.retention_max_bytes.or(file.retention_max_bytes),
        },
        backend: BackendArgs {
            store: args.backend.store.or(file.store),
            clickhouse_url: args.backend.clickhouse_url.or(file.clickhouse_url),
            clickhouse_database: args
                .backend
                .clickhouse_database
                .or(file.clickhouse_database),
            clickhouse_user: args.backend.clickhouse_user.or(file.clickhouse_user),
            clickhouse_password_file: args
                .backend
                .clickhouse_password_file
                .or(file.clickhouse_password_file),
        },
    })
}

/// Logs to standard error; `KUBETRAIL_LOG` sets the level (error, warn, info, debug, trace).
pub fn init_logging() {
    let level = std::env::var("KUBETRAIL_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .try_init();
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

pub fn run(args: ServeArgs) -> Result<ExitCode> {
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
    if let Some(events) = s.demo {
        eprintln!(
            "kubetrail serve --demo: loading the real samples and {events} generated events..."
        );
        let loaded = super::demo::load(store.as_ref(), events)?;
        eprintln!(
            "kubetrail serve --demo: {} sample events (clusters falco, audit2rbac, audit2rbac-v1beta1, panther) and {} generated (clusters prod, staging, the last 7 days) in {}",
            loaded.samples,
            loaded.generated,
            data_dir.display()
        );
    }
    let ui = UiSettings {
        secure_cookies: s.tls.is_some() || s.secure_cookies,
        networks: s.networks.clone(),
    };
    let state = Arc::new(
        AppState::new(store.clone(), s.auth, s.limits, Some(data_dir.clone()))
            .with_context(|| format!("reading agent gaps in {}", data_dir.display()))?
            .with_ui(ui)
            .with_request_limits(s.requests),
    );
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
        eprintln!("kubetrail serve: listening on {scheme}://{local}");
        eprintln!("kubetrail serve: web UI at {scheme}://{local}/");
        if demo {
            eprintln!(
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
    /// CA certificate (PEM) that signed the server's certificate.
    #[arg(long, value_name = "FILE")]
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
            "headerReadTimeoutMs: 2500\nbodyReadTimeoutMs: 30000\nmaxConnections: 64\nmaxUrlBytes: 4096\n",
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
        // Flags win.
        let s = parse(&["--config", path, "--max-connections", "8"]).unwrap();
        assert_eq!(s.connections.max_connections, 8);
        // Zero would refuse everything, or wait for nothing.
        for (flag, key) in [
            ("--header-read-timeout-ms", "headerReadTimeoutMs"),
            ("--body-read-timeout-ms", "bodyReadTimeoutMs"),
            ("--max-connections", "maxConnections"),
            ("--max-url-bytes", "maxUrlBytes"),
        ] {
            let e = parse(&[flag, "0"]).err().unwrap().to_string();
            assert!(e.contains(key), "{e}");
        }
    }
}
