//! `kubetrail serve`'s configuration: the keys of `--config FILE`, each also a flag.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Result, bail};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{HumanDuration, check_version, current_version};
use crate::cli::common::Backend;

/// The server's configuration file (YAML). Flags and environment variables override it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServeConfig {
    /// Format version of this file; this kubetrail reads version 1.
    #[serde(default = "current_version")]
    pub version: u32,
    /// Address and port to listen on. The default is loopback only, so nothing is exposed
    /// by accident; in a pod, listen on 0.0.0.0.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Data directory of the embedded store; also holds the agents' gaps (`gaps.jsonl`).
    /// Environment: `KUBETRAIL_DATA_DIR`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Tokens file: a YAML list of `{name, token, role: ingest|read|admin, cluster?}`.
    /// Required unless `insecureNoAuth`.
    #[serde(default)]
    pub tokens_file: Option<PathBuf>,
    /// Server certificate (PEM): serve HTTPS. Needs `tlsKey`.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// Private key of `tlsCert` (PEM).
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// CA (PEM) whose client certificates may post to the webhook (mTLS). Needs HTTPS.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// Run without authentication: anyone who can connect may read and write everything.
    #[serde(default)]
    pub insecure_no_auth: bool,
    /// Largest request body in bytes, and largest decompressed agent batch.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Longest URL (path and query) in bytes; longer requests are answered 414.
    #[serde(default = "default_max_url_bytes")]
    pub max_url_bytes: usize,
    /// Milliseconds a client has for the TLS handshake and for each request's line and
    /// headers, also the idle time of a kept-alive connection; then the connection is closed.
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// Milliseconds a client has to send a request's body after its headers; then it is
    /// answered 408 and the connection closed.
    #[serde(default = "default_body_read_timeout_ms")]
    pub body_read_timeout_ms: u64,
    /// Connections served at once; further connections wait in the listen backlog until one
    /// ends.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Delete events older than this (e.g. `90d`); checked every 10 minutes. Unset: keep
    /// events until `retentionMaxBytes` or forever.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub retention_max_age: Option<HumanDuration>,
    /// Delete the oldest events while the store is larger than this many bytes.
    #[serde(default)]
    pub retention_max_bytes: Option<u64>,
    /// The store: the embedded one (`duckdb`), or a ClickHouse server (`clickhouse`).
    /// Environment: `KUBETRAIL_STORE`.
    #[serde(default)]
    pub store: Backend,
    /// ClickHouse's HTTP interface, e.g. `http://127.0.0.1:8123`. Environment:
    /// `KUBETRAIL_CLICKHOUSE_URL`.
    #[serde(default)]
    pub clickhouse_url: Option<String>,
    /// ClickHouse database, created if missing.
    #[serde(default = "default_clickhouse_database")]
    pub clickhouse_database: String,
    /// ClickHouse user.
    #[serde(default)]
    pub clickhouse_user: Option<String>,
    /// File holding the ClickHouse user's password (its first line).
    #[serde(default)]
    pub clickhouse_password_file: Option<PathBuf>,
    /// Source address ranges (CIDR) the web UI counts as internal; requests from elsewhere
    /// are listed under "from outside".
    #[serde(default = "default_internal_networks")]
    pub internal_networks: Vec<String>,
    /// Mark the session cookie Secure even when serving plain HTTP (behind a proxy that
    /// terminates TLS); with `tlsCert` it always is.
    #[serde(default)]
    pub secure_cookies: bool,
    /// Do not run the detection rules on committed events (no alerts are raised).
    #[serde(default)]
    pub no_detection: bool,
    /// Rule files, or directories of `.yaml` rule files, run besides the embedded default
    /// pack; read again on SIGHUP (a set that does not load is refused, the running rules stay).
    #[serde(default)]
    pub rules: Vec<PathBuf>,
    /// Leave the embedded default rule pack out.
    #[serde(default)]
    pub no_default_rules: bool,
    /// Rule parameters that replace the rules' defaults, by rule id and parameter name
    /// (e.g. `{forbidden-burst: {threshold: 50}}`); read again on SIGHUP.
    #[serde(default)]
    #[schemars(
        with = "std::collections::BTreeMap<String, std::collections::BTreeMap<String, serde_json::Value>>"
    )]
    pub rule_parameters:
        std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
    /// Where new alerts are sent, each sink with a durable outbox in the data directory
    /// (`outbox/NAME.jsonl`): a list of `{name, type: alertmanager|webhook|slack, url,
    /// secretFile?, maxPending?}`. `alertmanager` posts to `URL/api/v2/alerts`; `webhook` posts
    /// `{"alerts": [...]}` signed with `X-Kubetrail-Signature: sha256=HMAC` when `secretFile`
    /// is given; `slack` posts an incoming-webhook message. Needs detection.
    #[serde(default)]
    #[schemars(with = "Vec<serde_json::Value>")]
    pub notify: Vec<kubetrail_notify::SinkConfig>,
    /// Store events as received: Secret `data` and `stringData` values, TokenReview and
    /// TokenRequest tokens and credentials in request URIs are kept instead of being replaced
    /// by keyed-hash markers (the key is `redaction.key` in the data directory). Logged as a
    /// warning at start.
    #[serde(default)]
    pub no_redact: bool,
    /// The Ed25519 key (PKCS#8 PEM) that signs each link of the hash chain over the stored
    /// events, made owner-only on first start when absent [default: `signing.key` in the data
    /// directory]. Keep a copy of its public key (logged at start, and at
    /// `/api/v1/chain/public-keys`) outside the cluster for `kubetrail verify --public-key`.
    #[serde(default)]
    pub signing_key: Option<PathBuf>,
    /// More values to redact, by resource: a list of `{group, resource, paths}` where `paths`
    /// are JSON Pointers into the request and response objects (`/spec/password`; `*` stands
    /// for any key or index).
    #[serde(default)]
    #[schemars(with = "Vec<serde_json::Value>")]
    pub redact_paths: Vec<kubetrail_redact::ExtraPaths>,
    /// The cluster's RBAC (`kubectl get clusterroles,clusterrolebindings,roles,rolebindings
    /// -A -o yaml` output), for the RBAC endpoints and the user page's permissions; read again
    /// on SIGHUP (a file that does not read is refused, the snapshot in use stays).
    #[serde(default)]
    pub rbac: Vec<PathBuf>,
    /// The cluster the `rbac` files describe. A reader bound to a cluster sees them only when
    /// it is this one; without it, only readers bound to no cluster do.
    #[serde(default)]
    pub rbac_cluster: Option<String>,
    /// Rebuild the cluster's RBAC from the stored writes of roles and bindings at each RBAC
    /// question instead of reading `rbac` files (the policy must log them with their bodies).
    #[serde(default)]
    pub rbac_from_trail: bool,
    /// The address people reach this server at (e.g. `https://kubetrail.example`): links in
    /// notifications point there.
    #[serde(default)]
    pub external_url: Option<String>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("kubetrail-data")
}

fn default_max_body_bytes() -> usize {
    kubetrail_server::DEFAULT_MAX_BODY_BYTES
}

fn default_max_url_bytes() -> usize {
    kubetrail_server::DEFAULT_MAX_URL_BYTES
}

fn default_header_read_timeout_ms() -> u64 {
    millis(kubetrail_server::tls::DEFAULT_HEADER_READ_TIMEOUT)
}

fn default_body_read_timeout_ms() -> u64 {
    millis(kubetrail_server::DEFAULT_BODY_READ_TIMEOUT)
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn default_max_connections() -> usize {
    kubetrail_server::tls::DEFAULT_MAX_CONNECTIONS
}

fn default_clickhouse_database() -> String {
    "kubetrail".into()
}

fn default_internal_networks() -> Vec<String> {
    kubetrail_report::DEFAULT_INTERNAL
        .iter()
        .map(|s| s.to_string())
        .collect()
}

impl ServeConfig {
    /// Refuses values no server can run with, naming the key.
    pub fn check(&self) -> Result<()> {
        check_version(self.version)?;
        for (key, value) in [
            ("maxBodyBytes", self.max_body_bytes as u64),
            ("maxUrlBytes", self.max_url_bytes as u64),
            ("headerReadTimeoutMs", self.header_read_timeout_ms),
            ("bodyReadTimeoutMs", self.body_read_timeout_ms),
            ("maxConnections", self.max_connections as u64),
        ] {
            // Zero would refuse everything, or wait for nothing.
            if value == 0 {
                bail!("{key}: must be greater than 0");
            }
        }
        if self.retention_max_age.is_some_and(|d| d.0.is_zero()) {
            bail!("retentionMaxAge: must be longer than 0s");
        }
        Ok(())
    }
}
