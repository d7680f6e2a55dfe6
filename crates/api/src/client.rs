//! A blocking client of kubetrail's API (ureq over rustls): what the agent ships with and
//! what the command line's `--server` mode asks with. Every answer that is not 2xx becomes a
//! [`ClientError::Status`] carrying the server's reason, so callers can tell "retry later"
//! (5xx, transport errors) from "this will never work" (4xx).

use std::path::PathBuf;
use std::time::Duration;

use kubetrail_store::{Cursor, Filter};
use serde::de::DeserializeOwned;
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use crate::params::{encode_query, filter_to_pairs};
use crate::paths;
use crate::wire::{AgentStatus, AggregateReply, ErrorBody, EventsPage, IngestReply};

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error status.
    #[error("{url}: HTTP {status}: {reason}")]
    Status {
        /// The URL (without query).
        url: String,
        /// The status code.
        status: u16,
        /// The server's reason.
        reason: String,
    },
    /// The request did not complete (connection refused, TLS, timeout).
    #[error("{url}: {cause}")]
    Transport {
        /// The URL (without query).
        url: String,
        /// What failed (in the message, not chained: `{:#}` names it once).
        cause: ureq::Error,
    },
    /// The answer was not what the API promises.
    #[error("{url}: unexpected answer: {reason}")]
    Decode {
        /// The URL (without query).
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// A certificate or key file could not be used.
    #[error("{path}: {reason}")]
    Config {
        /// The file.
        path: String,
        /// What was wrong.
        reason: String,
    },
}

impl ClientError {
    /// Whether the same call may succeed later: transport errors, 5xx, 429 and 408.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Transport { .. } => true,
            ClientError::Status { status, .. } => *status >= 500 || matches!(status, 408 | 429),
            ClientError::Decode { .. } | ClientError::Config { .. } => false,
        }
    }
}

/// How to reach the server.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Bearer token.
    pub token: Option<String>,
    /// PEM file of the CA that signed the server's certificate (default: the web PKI roots).
    pub ca_file: Option<PathBuf>,
    /// PEM files of a client certificate and its key (mTLS).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Timeout of a whole call (default 30 s, as the apiserver's webhook client).
    pub timeout: Option<Duration>,
}

/// A client of one server.
#[derive(Debug, Clone)]
pub struct Client {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
}

/// Largest answer body read.
const MAX_ANSWER: u64 = 512 << 20;

fn read_pem(path: &PathBuf) -> Result<Vec<PemItem<'static>>, ClientError> {
    let config = |reason: String| ClientError::Config {
        path: path.display().to_string(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| config(e.to_string()))?;
    let items: Vec<PemItem<'static>> = ureq::tls::parse_pem(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| config(e.to_string()))?;
    if items.is_empty() {
        return Err(config("no PEM certificate or key in the file".into()));
    }
    Ok(items)
}

fn certs_of(path: &PathBuf) -> Result<Vec<Certificate<'static>>, ClientError> {
    let certs: Vec<_> = read_pem(path)?
        .into_iter()
        .filter_map(|i| match i {
            PemItem::Certificate(c) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(ClientError::Config {
            path: path.display().to_string(),
            reason: "no certificate in the file".into(),
        });
    }
    Ok(certs)
}

fn key_of(path: &PathBuf) -> Result<PrivateKey<'static>, ClientError> {
    read_pem(path)?
        .into_iter()
        .find_map(|i| match i {
            PemItem::PrivateKey(k) => Some(k),
            _ => None,
        })
        .ok_or_else(|| ClientError::Config {
            path: path.display().to_string(),
            reason: "no private key in the file".into(),
        })
}

impl Client {
    /// A client of the server at `base` (`https://kubetrail.example:8443`).
    pub fn new(base: &str, options: &ClientOptions) -> Result<Client, ClientError> {
        let mut tls = TlsConfig::builder();
        if let Some(ca) = &options.ca_file {
            tls = tls.root_certs(RootCerts::new_with_certs(&certs_of(ca)?));
        }
        if let Some((cert, key)) = &options.client_cert {
            tls = tls.client_cert(Some(ClientCert::new_with_certs(
                &certs_of(cert)?,
                key_of(key)?,
            )));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(options.timeout.unwrap_or(Duration::from_secs(30))))
            .tls_config(tls.build())
            .build()
            .into();
        Ok(Client {
            agent,
            base: base.trim_end_matches('/').to_string(),
            token: options.token.clone(),
        })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The status code a GET of `path` is answered with (a health check such as the
    /// apiserver's `/readyz`): any answer is a status, only a failed connection is an error.
    pub fn status_of(&self, path: &str) -> Result<u16, ClientError> {
        let url = self.url(path);
        let mut request = self.agent.get(&url);
        if let Some(t) = &self.token {
            request = request.header("Authorization", &format!("Bearer {t}"));
        }
        request
            .call()
            .map(|r| r.status().as_u16())
            .map_err(|cause| ClientError::Transport { url, cause })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn finish(
        &self,
        url: &str,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Vec<u8>, ClientError> {
        let mut response = result.map_err(|cause| ClientError::Transport {
            url: url.to_string(),
            cause,
        })?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .map_err(|cause| ClientError::Transport {
                url: url.to_string(),
                cause,
            })?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let reason = serde_json::from_slice::<ErrorBody>(&body)
            .map(|b| b.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(&body).chars().take(500).collect());
        Err(ClientError::Status {
            url: url.to_string(),
            status,
            reason,
        })
    }

    fn decode<T: DeserializeOwned>(url: &str, body: &[u8]) -> Result<T, ClientError> {
        serde_json::from_slice(body).map_err(|e| ClientError::Decode {
            url: url.to_string(),
            reason: e.to_string(),
        })
    }

    fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        pairs: Vec<(&str, String)>,
    ) -> Result<T, ClientError> {
        let url = self.url(path);
        let query = encode_query(pairs);
        let full = if query.is_empty() {
            url.clone()
        } else {
            format!("{url}?{query}")
        };
        let mut request = self.agent.get(&full);
        if let Some(t) = &self.token {
            request = request.header("Authorization", &format!("Bearer {t}"));
        }
        let body = self.finish(&url, request.call())?;
        Self::decode(&url, &body)
    }

    fn post(
        &self,
        path: &str,
        query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Vec<u8>, ClientError> {
        let url = self.url(path);
        let full = if query.is_empty() {
            url.clone()
        } else {
            format!("{url}?{query}")
        };
        let mut request = self.agent.post(&full);
        if let Some(t) = &self.token {
            request = request.header("Authorization", &format!("Bearer {t}"));
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        self.finish(&url, request.send(body))
    }

    /// `GET path?pairs`, its JSON answer decoded: for the endpoints without a method here.
    pub fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        pairs: Vec<(&str, String)>,
    ) -> Result<T, ClientError> {
        self.get(path, pairs)
    }

    /// `POST path` with a JSON body, its JSON answer decoded.
    pub fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, ClientError> {
        let answer = self.post(
            path,
            "",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )?;
        Self::decode(&self.url(path), &answer)
    }

    /// Events matching `filter`, newest first.
    pub fn events(
        &self,
        filter: &Filter,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<EventsPage, ClientError> {
        let mut pairs = filter_to_pairs(filter);
        pairs.push(("limit", limit.to_string()));
        if let Some(c) = cursor {
            pairs.push(("cursor", c.to_string()));
        }
        self.get(paths::EVENTS, pairs)
    }

    /// Counts by `by` (one or two field names), the largest `top`.
    pub fn aggregate(
        &self,
        filter: &Filter,
        by: &[&str],
        top: Option<usize>,
    ) -> Result<AggregateReply, ClientError> {
        let mut pairs = filter_to_pairs(filter);
        pairs.push(("by", by.join(",")));
        if let Some(t) = top {
            pairs.push(("top", t.to_string()));
        }
        self.get(paths::AGGREGATE, pairs)
    }

    /// One of the reports (`overview`, `resources`, `users`, `failures`).
    pub fn report<T: DeserializeOwned>(
        &self,
        name: &str,
        filter: &Filter,
    ) -> Result<T, ClientError> {
        self.get(
            &format!("{}/{name}", paths::REPORTS),
            filter_to_pairs(filter),
        )
    }

    /// Ships an agent batch: `ndjson_gz` is gzip-compressed NDJSON; `key` makes retries
    /// idempotent.
    pub fn post_events(
        &self,
        ndjson_gz: &[u8],
        cluster: Option<&str>,
        node: &str,
        key: &str,
    ) -> Result<IngestReply, ClientError> {
        let mut pairs = vec![("node", node.to_string())];
        if let Some(c) = cluster {
            pairs.push(("cluster", c.to_string()));
        }
        let body = self.post(
            paths::EVENTS,
            &encode_query(pairs),
            &[
                ("Content-Type", "application/x-ndjson"),
                ("Content-Encoding", "gzip"),
                (paths::IDEMPOTENCY_KEY, key),
            ],
            ndjson_gz,
        )?;
        Self::decode(&self.url(paths::EVENTS), &body)
    }

    /// Posts a webhook batch (an `EventList` as JSON), as the apiserver does.
    pub fn post_webhook(
        &self,
        event_list: &[u8],
        cluster: Option<&str>,
    ) -> Result<IngestReply, ClientError> {
        let query = cluster
            .map(|c| encode_query([("cluster", c.to_string())]))
            .unwrap_or_default();
        let body = self.post(
            paths::WEBHOOK,
            &query,
            &[("Content-Type", "application/json")],
            event_list,
        )?;
        Self::decode(&self.url(paths::WEBHOOK), &body)
    }

    /// Reports an agent's status.
    pub fn post_status(&self, status: &AgentStatus) -> Result<(), ClientError> {
        let body = serde_json::to_vec(status).map_err(|e| ClientError::Decode {
            url: self.url(paths::AGENT_STATUS),
            reason: e.to_string(),
        })?;
        self.post(
            paths::AGENT_STATUS,
            "",
            &[("Content-Type", "application/json")],
            &body,
        )?;
        Ok(())
    }
}
