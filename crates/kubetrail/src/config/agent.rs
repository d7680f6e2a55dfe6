//! `kubetrail agent`'s configuration: the keys of `--config FILE`, each also a flag.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Result, bail};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{check_version, current_version};

/// The agent's configuration file (YAML). Flags and environment variables override it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentConfig {
    /// Format version of this file; this kubetrail reads version 1.
    #[serde(default = "current_version")]
    pub version: u32,
    /// The apiserver's `--audit-log-path`; its rotated backups (plain and `.gz`) beside it
    /// are read too.
    #[serde(default = "default_path")]
    pub path: PathBuf,
    /// Base URL of `kubetrail serve`, e.g. `https://kubetrail.example:8443`. Required.
    #[serde(default)]
    pub server: Option<String>,
    /// File holding an ingest token (its first line).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// CA certificate (PEM) that signed the server's certificate.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Cluster name stamped on the events, when the token is not bound to one.
    #[serde(default)]
    pub cluster: Option<String>,
    /// This node's name. Unset: the `NODE_NAME` environment variable, else the host name.
    #[serde(default)]
    pub node: Option<String>,
    /// Where the checkpoint (and the gaps not yet reported) is kept.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Largest batch in bytes, before compression; at least 1024.
    #[serde(default = "default_batch_max_bytes")]
    pub batch_max_bytes: usize,
    /// How often to look for new lines and files, in milliseconds; at least 10.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// When more than this many bytes wait undelivered, skip the oldest rotated files and
    /// report them as gaps. Unset: no limit.
    #[serde(default)]
    pub max_backlog_bytes: Option<u64>,
    /// Serve the agent's `/metrics` and `/healthz` here, without authentication (keep it on
    /// loopback or a private network). Unset: off.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
}

fn default_path() -> PathBuf {
    PathBuf::from("/var/log/kubernetes/kubernetes.audit")
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/kubetrail-agent")
}

fn default_batch_max_bytes() -> usize {
    4 << 20
}

fn default_poll_interval_ms() -> u64 {
    200
}

impl AgentConfig {
    /// Refuses values no agent can run with, naming the key.
    pub fn check(&self) -> Result<()> {
        check_version(self.version)?;
        if self.batch_max_bytes < 1024 {
            bail!("batchMaxBytes {}: at least 1024", self.batch_max_bytes);
        }
        if self.poll_interval_ms < 10 {
            bail!("pollIntervalMs {}: at least 10", self.poll_interval_ms);
        }
        Ok(())
    }
}
