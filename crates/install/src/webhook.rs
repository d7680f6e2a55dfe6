//! The kubeconfig the apiserver's `--audit-webhook-config-file` takes to reach
//! `kubetrail serve`: the server URL with the cluster name in it, and the CA and credentials
//! embedded, since the file is read inside the apiserver's container, where paths of the
//! machine that wrote it may not exist.

use base64::Engine;

/// How the apiserver authenticates to kubetrail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A bearer token with the ingest role.
    Token(String),
    /// A client certificate and key (PEM) signed by the server's `--client-ca`.
    ClientCertificate {
        /// Certificate PEM.
        cert: Vec<u8>,
        /// Key PEM.
        key: Vec<u8>,
    },
}

/// A kubeconfig that cannot be written as asked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    /// The server URL.
    #[error("--server {0:?}: expected an http:// or https:// URL")]
    Url(String),
    /// A CA for a plain-HTTP server.
    #[error("--ca-file is only used with an https:// --server")]
    CaWithoutTls,
    /// Not PEM.
    #[error("{0}: not a PEM file")]
    NotPem(&'static str),
    /// Encoding failed.
    #[error("encoding the kubeconfig: {0}")]
    Encode(String),
}

fn pem(bytes: &[u8], what: &'static str) -> Result<String, WebhookError> {
    if !String::from_utf8_lossy(bytes).contains("-----BEGIN ") {
        return Err(WebhookError::NotPem(what));
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The kubeconfig text.
pub fn kubeconfig(
    server: &str,
    cluster: &str,
    credential: &Credential,
    ca: Option<&[u8]>,
) -> Result<String, WebhookError> {
    let base = server.trim_end_matches('/');
    if !(base.starts_with("https://") || base.starts_with("http://")) {
        return Err(WebhookError::Url(server.to_string()));
    }
    if base.starts_with("http://") && ca.is_some() {
        return Err(WebhookError::CaWithoutTls);
    }
    let query = kubetrail_api::params::encode_query([("cluster", cluster.to_string())]);
    let url = format!("{base}{}?{query}", kubetrail_api::paths::WEBHOOK);
    let mut c = serde_json::json!({ "server": url });
    if let Some(ca) = ca {
        c["certificate-authority-data"] = pem(ca, "--ca-file")?.into();
    }
    let user = match credential {
        Credential::Token(t) => serde_json::json!({ "token": t }),
        Credential::ClientCertificate { cert, key } => serde_json::json!({
            "client-certificate-data": pem(cert, "--client-cert")?,
            "client-key-data": pem(key, "--client-key")?,
        }),
    };
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "kubetrail", "cluster": c }],
        "users": [{ "name": "kubetrail-webhook", "user": user }],
        "contexts": [{ "name": "kubetrail", "context": { "cluster": "kubetrail", "user": "kubetrail-webhook" } }],
        "current-context": "kubetrail",
    });
    serde_norway::to_string(&config).map_err(|e| WebhookError::Encode(e.to_string()))
}
