//! `kubetrail agent`: follow the apiserver's audit log and ship it to `kubetrail serve`.
//! Configured by a YAML file and flags (flags win): [`AgentConfig`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use kubetrail_agent::{Agent, AgentConfig as Runtime, AgentMetrics, serve_metrics};
use kubetrail_api::ClientOptions;
use serde::Serialize;

use crate::config::AgentConfig;

use super::common::read_token_file;
use super::serve::init_logging;

/// The flags of `agent`. Each one but `--config` and `--print-config` is a key of
/// [`AgentConfig`], whose docs are the flags' help; serialized, they are the top layer of the
/// configuration.
#[derive(Debug, Args, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentArgs {
    /// YAML configuration file (keys in docs/configuration.md); flags and environment
    /// variables override it.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Print the configuration the agent would run with (defaults, file, environment and
    /// flags merged) as YAML, and exit.
    #[arg(long)]
    #[serde(skip)]
    print_config: bool,
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<PathBuf>,
    #[arg(long, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<String>,
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    token_file: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_file: Option<PathBuf>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<String>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<String>,
    #[arg(long, value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    state_dir: Option<PathBuf>,
    #[arg(long, value_name = "BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_max_bytes: Option<usize>,
    #[arg(long, value_name = "MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    poll_interval_ms: Option<u64>,
    #[arg(long, value_name = "BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_backlog_bytes: Option<u64>,
    #[arg(long, value_name = "ADDR:PORT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_listen: Option<SocketAddr>,
}

/// The configuration: defaults, then `--config`, then flags.
fn config(args: &AgentArgs) -> Result<AgentConfig> {
    let config: AgentConfig =
        crate::config::layered(args.config.as_deref(), "an agent configuration", args)?;
    config.check()?;
    Ok(config)
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
    let c = config(&args)?;
    if args.print_config {
        print!("{}", serde_norway::to_string(&c)?);
        return Ok(ExitCode::SUCCESS);
    }
    init_logging();
    let Some(server) = c.server else {
        bail!("agent needs --server URL (kubetrail serve's base URL)");
    };
    let token = match &c.token_file {
        Some(f) => Some(read_token_file(f)?),
        None => None,
    };
    let Some(node) = c.node.or_else(host_name) else {
        bail!("cannot tell this node's name: give --node or set NODE_NAME");
    };
    let mut settings = Runtime::new(c.path, server, node, c.state_dir);
    settings.client = ClientOptions {
        token,
        ca_file: c.ca_file,
        ..ClientOptions::default()
    };
    settings.cluster = c.cluster;
    settings.batch_max_bytes = c.batch_max_bytes;
    settings.poll_interval = Duration::from_millis(c.poll_interval_ms);
    settings.max_backlog_bytes = c.max_backlog_bytes;
    let metrics_listen = c.metrics_listen;

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
    let mut agent = Agent::new(settings, metrics)?;
    agent.run(&stop)?;
    drop(driver);
    Ok(ExitCode::SUCCESS)
}
