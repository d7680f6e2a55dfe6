//! Authentication and roles. A request is authenticated by a bearer token from the tokens
//! file, or — for ingest — by a client certificate signed by the configured CA (the
//! apiserver's webhook kubeconfig can carry either). Roles: `ingest` may post events, `read`
//! may query, `admin` may do both. A token bound to a cluster can only write events of that
//! cluster and only read them.
//!
//! Unauthenticated requests get 401, a known identity with the wrong role 403. Tokens are
//! compared in constant time and never logged.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use serde::Deserialize;

use crate::{ApiError, AppState};

/// What an identity may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Post events (webhook, agent batches, agent status).
    Ingest,
    /// Query events, reports and metrics.
    Read,
    /// Both.
    Admin,
}

impl Role {
    /// Whether this role covers `needed`.
    pub fn allows(self, needed: Role) -> bool {
        self == Role::Admin || self == needed
    }

    /// The role's name in the tokens file.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Read => "read",
            Role::Admin => "admin",
        }
    }
}

/// One entry of the tokens file.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Who holds the token (shown in logs and metrics; the token itself never is).
    pub name: String,
    /// The secret.
    pub token: String,
    /// What it may do.
    pub role: Role,
    /// The only cluster it may write or read, if bound.
    #[serde(default)]
    pub cluster: Option<String>,
}

impl std::fmt::Debug for TokenEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenEntry")
            .field("name", &self.name)
            .field("token", &"<redacted>")
            .field("role", &self.role)
            .field("cluster", &self.cluster)
            .finish()
    }
}

/// Shortest token accepted: guessing one must be hopeless.
pub const MIN_TOKEN_LEN: usize = 16;

/// A tokens file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    /// Unreadable.
    #[error("reading the tokens file {path}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not a list of `{name, token, role, cluster?}`.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong, naming the entry.
        reason: String,
    },
}

/// Reads and checks a tokens file: a YAML list of `{name, token, role, cluster?}`.
pub fn load_tokens(path: &Path) -> Result<Vec<TokenEntry>, TokensError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokensError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_tokens(&text).map_err(|reason| TokensError::Invalid {
        path: path.display().to_string(),
        reason,
    })
}

/// Parses and checks the tokens file's text.
pub fn parse_tokens(text: &str) -> Result<Vec<TokenEntry>, String> {
    let entries: Vec<TokenEntry> = serde_norway::from_str(text).map_err(|e| {
        // The YAML error may quote the input, and the input holds secrets: keep only the place.
        let place = e
            .location()
            .map(|l| format!(" at line {}, column {}", l.line(), l.column()))
            .unwrap_or_default();
        format!(
            "not a list of {{name, token, role (ingest|read|admin), cluster?}}{place}: {}",
            redact_yaml_error(&e.to_string())
        )
    })?;
    if entries.is_empty() {
        return Err("no tokens: every request would be refused".into());
    }
    for (i, e) in entries.iter().enumerate() {
        let which = format!("entry {} ({:?})", i + 1, e.name);
        if e.name.is_empty() {
            return Err(format!("entry {}: empty name", i + 1));
        }
        if e.token.len() < MIN_TOKEN_LEN {
            return Err(format!(
                "{which}: the token is shorter than {MIN_TOKEN_LEN} characters"
            ));
        }
        if e.token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{which}: the token contains whitespace"));
        }
        if e.cluster.as_deref() == Some("") {
            return Err(format!(
                "{which}: empty cluster (leave it out for any cluster)"
            ));
        }
        if entries[..i].iter().any(|o| o.name == e.name) {
            return Err(format!("{which}: the name is used twice"));
        }
        if entries[..i].iter().any(|o| o.token == e.token) {
            return Err(format!("{which}: the token is the same as another entry's"));
        }
    }
    Ok(entries)
}

/// serde's messages quote unexpected values (`invalid type: string "s3cr3t..."`); drop quotes.
fn redact_yaml_error(message: &str) -> String {
    let mut out = String::new();
    let mut in_quote = false;
    for c in message.chars() {
        if c == '"' {
            in_quote = !in_quote;
            if in_quote {
                out.push_str("\"…");
            } else {
                out.push('"');
            }
            continue;
        }
        if !in_quote {
            out.push(c);
        }
    }
    out
}

/// How an identity was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// A bearer token.
    Token,
    /// A client certificate.
    ClientCertificate,
    /// Authentication is off (`--insecure-no-auth`).
    None,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Token name, or the certificate's subject common name.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The only cluster it may use, if bound.
    pub cluster: Option<String>,
    /// How it was authenticated.
    pub method: Method,
}

impl Principal {
    /// The cluster a write goes to: the one asked for (`?cluster=`), the principal's own, or
    /// `default`. Asking for another cluster than the bound one is refused.
    pub fn write_cluster(&self, asked: Option<&str>) -> Result<String, ApiError> {
        match (asked.filter(|c| !c.is_empty()), &self.cluster) {
            (Some(a), Some(bound)) if a != bound => Err(ApiError::forbidden(format!(
                "{} may only write cluster {bound:?}, not {a:?}",
                self.name
            ))),
            (Some(a), _) => Ok(a.to_string()),
            (None, Some(bound)) => Ok(bound.clone()),
            (None, None) => Ok("default".into()),
        }
    }

    /// Restricts a read filter to what the principal may read ([`Filter::restrict_to`]);
    /// asking for another cluster than the bound one is refused.
    ///
    /// [`Filter::restrict_to`]: kubetrail_store::Filter::restrict_to
    pub fn scope_read(&self, filter: &mut kubetrail_store::Filter) -> Result<(), ApiError> {
        filter
            .restrict_to(&kubetrail_store::ReadScope::of(self.cluster.as_deref()))
            .map_err(|e| ApiError::forbidden(format!("{} {e}", self.name)))
    }
}

/// The subject of a verified client certificate, put on each request of its connection by
/// the TLS listener.
#[derive(Debug, Clone)]
pub struct PeerCertificate {
    /// Subject common name (or the whole subject when it has none).
    pub subject: String,
}

/// Who may call.
#[derive(Debug, Clone)]
pub enum Authenticator {
    /// Bearer tokens; client certificates (verified by the TLS layer) get the ingest role.
    Tokens(Vec<TokenEntry>),
    /// Everyone is admin. Only with an explicit `--insecure-no-auth`.
    Insecure,
}

/// Equality whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Authenticator {
    /// The principal a bearer token stands for (none for an unknown token, or when
    /// authentication is off).
    pub fn token(&self, token: &str) -> Option<Principal> {
        let Authenticator::Tokens(entries) = self else {
            return None;
        };
        if token.is_empty() {
            return None;
        }
        // Compare with every entry, so the time does not tell which one matched.
        let mut found = None;
        for e in entries {
            if constant_time_eq(e.token.as_bytes(), token.as_bytes()) {
                found = Some(e);
            }
        }
        found.map(|e| Principal {
            name: e.name.clone(),
            role: e.role,
            cluster: e.cluster.clone(),
            method: Method::Token,
        })
    }

    /// The caller of `request`, or why there is none.
    pub fn authenticate(&self, request: &Request) -> Result<Principal, ApiError> {
        if let Authenticator::Insecure = self {
            return Ok(Principal {
                name: "anonymous".into(),
                role: Role::Admin,
                cluster: None,
                method: Method::None,
            });
        }
        if let Some(value) = request.headers().get(header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(str::trim)
                .ok_or_else(|| {
                    ApiError::unauthorized("the Authorization header is not \"Bearer TOKEN\"")
                })?;
            return self
                .token(token)
                .ok_or_else(|| ApiError::unauthorized("unknown token"));
        }
        if let Some(peer) = request.extensions().get::<PeerCertificate>() {
            return Ok(Principal {
                name: peer.subject.clone(),
                role: Role::Ingest,
                cluster: None,
                method: Method::ClientCertificate,
            });
        }
        Err(ApiError::unauthorized(
            "authentication required: a bearer token or a client certificate",
        ))
    }
}

/// Most of a refused request's body read before answering. Reading it lets a client that
/// sends its whole body before looking at the answer (as HTTP/1 clients do) see the 401 or 403
/// instead of a broken connection; beyond this the connection is simply closed.
const REFUSED_BODY_DRAIN: usize = 1 << 20;

async fn refuse(request: Request, error: ApiError) -> Response {
    use axum::response::IntoResponse;
    let _ = axum::body::to_bytes(request.into_body(), REFUSED_BODY_DRAIN).await;
    error.into_response()
}

async fn require(state: Arc<AppState>, needed: Role, mut request: Request, next: Next) -> Response {
    let principal = match state.auth.authenticate(&request) {
        Ok(p) => p,
        Err(e) => {
            state.metrics.auth_failure("unauthenticated");
            return refuse(request, e).await;
        }
    };
    if !principal.role.allows(needed) {
        state.metrics.auth_failure("forbidden");
        let e = ApiError::forbidden(format!(
            "{} has role {}, this needs {}",
            principal.name,
            principal.role.as_str(),
            needed.as_str()
        ));
        return refuse(request, e).await;
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// Middleware: the ingest role.
pub async fn require_ingest(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    require(state, Role::Ingest, request, next).await
}

/// Middleware: the read role.
pub async fn require_read(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    require(state, Role::Read, request, next).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_files_are_checked_and_never_echo_a_secret() {
        let ok = parse_tokens(
            "- {name: apiserver, token: aaaaaaaaaaaaaaaa, role: ingest, cluster: prod}\n- {name: ui, token: bbbbbbbbbbbbbbbb, role: read}\n",
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].cluster.as_deref(), Some("prod"));
        assert_eq!(ok[1].role, Role::Read);
        assert!(!format!("{ok:?}").contains("aaaa"));

        let err = |t: &str| parse_tokens(t).unwrap_err();
        assert!(err("- {name: a, token: short, role: read}").contains("shorter than 16"));
        assert!(err("[]").contains("no tokens"));
        let e = err("- {name: a, token: supersecretvalue1, role: root}");
        assert!(e.contains("line 1"), "{e}");
        assert!(!e.contains("supersecret"), "{e}");
        assert!(err("- {name: a, token: aaaaaaaaaaaaaaaa, role: read}\n- {name: a, token: cccccccccccccccc, role: read}").contains("used twice"));
        assert!(err("- {name: a, token: aaaaaaaaaaaaaaaa, role: read}\n- {name: b, token: aaaaaaaaaaaaaaaa, role: read}").contains("same as another"));
        let e = err("- {name: a, tokn: supersecretvalue1, role: read}");
        assert!(!e.contains("supersecret"), "{e}");
    }

    #[test]
    fn bound_clusters_limit_writes_and_reads() {
        let p = Principal {
            name: "x".into(),
            role: Role::Admin,
            cluster: Some("prod".into()),
            method: Method::Token,
        };
        assert_eq!(p.write_cluster(None).unwrap(), "prod");
        assert_eq!(p.write_cluster(Some("prod")).unwrap(), "prod");
        assert_eq!(p.write_cluster(Some("dev")).unwrap_err().status, 403);
        let mut f = kubetrail_store::Filter::default();
        p.scope_read(&mut f).unwrap();
        assert_eq!(f.clusters, ["prod"]);
        f.clusters = vec!["dev".into()];
        assert!(p.scope_read(&mut f).is_err());
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
