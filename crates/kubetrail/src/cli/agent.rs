//! `kubetrail agent`: follow the apiserver's audit log and ship it to `kubetrail serve`.
//! Configured by a YAML file and flags (flags win).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use kubetrail_agent::{Agent, AgentConfig, AgentMetrics, serve_metrics};
use kubetrail_api::ClientOptions;
use serde::Deserialize;

use super::common::read_token_file;
use super::serve::init_logging;

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// YAML configuration file; every key is also a flag, and flags override the file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The apiserver's --audit-log-path [default: /var/log/kubernetes/kubernetes.audit].
    #[arg(long, value_name = "FILE")]
    path: Option<PathBuf>,
    /// Base URL of kubetrail serve.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// File holding an ingest token.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// CA certificate (PEM) of the server.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Cluster name stamped on the events (when the token is not bound to one).
    #[arg(long)]
    cluster: Option<String>,
    /// This node's name [default: $NODE_NAME, else the host name].
    #[arg(long)]
    node: Option<String>,
    /// Where the checkpoint is kept [default: /var/lib/kubetrail-agent].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Largest batch in bytes, before compression [default: 4 MiB].
    #[arg(long, value_name = "BYTES")]
    batch_max_bytes: Option<usize>,
    /// How often to look for new lines and files, in milliseconds [default: 200].
    #[arg(long, value_name = "MS")]
    poll_interval_ms: Option<u64>,
    /// When more than this many bytes wait undelivered, skip the oldest rotated files and
    /// report them as gaps [default: no limit].
    #[arg(long, value_name = "BYTES")]
    max_backlog_bytes: Option<u64>,
    /// Serve the agent's /metrics and /healthz here, without authentication (keep it on
    /// loopback or a private network) [default: off].
    #[arg(long, value_name = "ADDR:PORT")]
    metrics_listen: Option<SocketAddr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AgentFile {
    path: Option<PathBuf>,
    server: Option<String>,
    token_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    cluster: Option<String>,
    node: Option<String>,
    state_dir: Option<PathBuf>,
    batch_max_bytes: Option<usize>,
    poll_interval_ms: Option<u64>,
    max_backlog_bytes: Option<u64>,
    metrics_listen: Option<SocketAddr>,
}

fn host_name() -> Option<String> {
    std::env::var("NODE_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
}

pub fn run(args: AgentArgs) -> Result<ExitCode> {
    init_logging();
    let file: AgentFile = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_norway::from_str(&text)
                .with_context(|| format!("{}: not an agent configuration", path.display()))?
        }
        None => AgentFile::default(),
    };
    let Some(server) = args.server.or(file.server) else {
        bail!("agent needs --server URL (kubetrail serve's base URL)");
    };
    let token = match args.token_file.or(file.token_file) {
        Some(f) => Some(read_token_file(&f)?),
        None => None,
    };
    let Some(node) = args.node.or(file.node).or_else(host_name) else {
        bail!("cannot tell this node's name: give --node or set NODE_NAME");
    };
    let path = args
        .path
        .or(file.path)
        .unwrap_or_else(|| PathBuf::from("/var/log/kubernetes/kubernetes.audit"));
    let state_dir = args
        .state_dir
        .or(file.state_dir)
        .unwrap_or_else(|| PathBuf::from("/var/lib/kubetrail-agent"));
    let mut config = AgentConfig::new(path, server, node, state_dir);
    config.client = ClientOptions {
        token,
        ca_file: args.ca_file.or(file.ca_file),
        ..ClientOptions::default()
    };
    config.cluster = args.cluster.or(file.cluster);
    if let Some(b) = args.batch_max_bytes.or(file.batch_max_bytes) {
        if b < 1024 {
            bail!("--batch-max-bytes {b}: at least 1024");
        }
        config.batch_max_bytes = b;
    }
    if let Some(ms) = args.poll_interval_ms.or(file.poll_interval_ms) {
        config.poll_interval = Duration::from_millis(ms.max(10));
    }
    config.max_backlog_bytes = args.max_backlog_bytes.or(file.max_backlog_bytes);
    let metrics_listen = args.metrics_listen.or(file.metrics_listen);

    let metrics = Arc::new(AgentMetrics::new());
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    {
        let stop = stop.clone();
        let metrics = metrics.clone();
        runtime.spawn(async move {
            if let Some(addr) = metrics_listen {
                tokio::spawn(async move {
                    if let Err(e) = serve_metrics(addr, metrics).await {
                        tracing::error!(error = %e, %addr, "serving metrics failed");
                    }
                });
            }
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
            }
            stop.store(true, Ordering::Relaxed);
        });
    }
    // The runtime drives the metrics server and signals on its own thread.
    let driver = std::thread::spawn(move || {
        runtime.block_on(std::future::pending::<()>());
    });
    let mut agent = Agent::new(config, metrics)?;
    agent.run(&stop)?;
    drop(driver);
    Ok(ExitCode::SUCCESS)
}
