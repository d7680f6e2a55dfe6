//! The server's HTTP contract, in process (the router over a real DuckDB store in a temporary
//! directory): webhook and agent ingest with their acknowledgement rules, authentication and
//! roles, the query API, metrics and the OpenAPI document.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod deploy;
mod detection;
mod hostile_ingest;
mod ingest;
mod integrity;
mod limits;
mod metrics_scope;
mod openapi;
mod rbac;
mod store_failure;
mod tls;
mod web;

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use kubetrail_server::auth::parse_tokens;
use kubetrail_server::{AppState, Authenticator, Limits, router};
use kubetrail_store::Store;
use kubetrail_store_duckdb::DuckDbStore;
use tower::ServiceExt;

pub(crate) const INGEST: &str = "ingest-token-0123456789";
pub(crate) const READ: &str = "read-token-0123456789ab";
pub(crate) const ADMIN: &str = "admin-token-0123456789a";
pub(crate) const PROD_INGEST: &str = "prod-ingest-token-01234";
pub(crate) const PROD_READ: &str = "prod-read-token-0123456";

/// A file under the repository's `testdata/`.
pub(crate) fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(rel)
}

/// A server over a fresh store.
pub(crate) struct Harness {
    pub(crate) state: Arc<AppState>,
    pub(crate) store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

impl Default for Harness {
    fn default() -> Self {
        Self::with_limits(Limits::default())
    }
}

impl Harness {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn with_limits(limits: Limits) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(DuckDbStore::open(dir.path()).unwrap());
        Self::over(store, limits, dir)
    }

    /// A server over a fresh store that runs the default detection pack.
    pub(crate) fn detecting() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(DuckDbStore::open(dir.path()).unwrap());
        Self::detecting_over(store, dir)
    }

    /// A server over `store` that runs the default detection pack: what a restart over the
    /// same store is.
    pub(crate) fn detecting_over(store: Arc<dyn Store>, dir: tempfile::TempDir) -> Self {
        let mut h = Self::over(store, Limits::default(), dir);
        let state = Arc::into_inner(h.state).expect("nothing else holds a new state");
        h.state = Arc::new(state.with_detection(default_rules()).unwrap());
        h
    }

    pub(crate) fn over(store: Arc<dyn Store>, limits: Limits, dir: tempfile::TempDir) -> Self {
        let tokens = parse_tokens(&format!(
            "- {{name: apiserver, token: {INGEST}, role: ingest}}\n\
             - {{name: ui, token: {READ}, role: read}}\n\
             - {{name: ops, token: {ADMIN}, role: admin}}\n\
             - {{name: prod-apiserver, token: {PROD_INGEST}, role: ingest, cluster: prod}}\n\
             - {{name: prod-reader, token: {PROD_READ}, role: read, cluster: prod}}\n"
        ))
        .unwrap();
        let state = Arc::new(
            AppState::new(
                store.clone(),
                Authenticator::Tokens(tokens),
                limits,
                Some(dir.path().to_path_buf()),
            )
            .unwrap(),
        );
        Harness {
            state,
            store,
            _dir: dir,
        }
    }

    /// Posts a testdata file of audit event lines as an agent batch; returns the reply.
    pub(crate) async fn post_lines(&self, testdata: &str) -> serde_json::Value {
        let body = std::fs::read(crate::testdata(testdata)).unwrap();
        let (status, reply) = self
            .post(
                &format!("{}?node=cp-1", kubetrail_api::paths::EVENTS),
                Some(INGEST),
                &[],
                body,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        reply
    }

    /// Sends a request; returns the status and the body.
    pub(crate) async fn send(
        &self,
        request: Request<Body>,
    ) -> (StatusCode, Vec<u8>, axum::http::HeaderMap) {
        let response = router(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        (status, body, headers)
    }

    pub(crate) async fn get(
        &self,
        uri: &str,
        token: Option<&str>,
    ) -> (StatusCode, serde_json::Value) {
        let mut r = Request::get(uri);
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        let (status, body, _) = self.send(r.body(Body::empty()).unwrap()).await;
        (
            status,
            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        )
    }

    pub(crate) async fn get_text(&self, uri: &str, token: Option<&str>) -> String {
        let mut r = Request::get(uri);
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        let (status, body, _) = self.send(r.body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        String::from_utf8(body).unwrap()
    }

    pub(crate) async fn post(
        &self,
        uri: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (StatusCode, serde_json::Value) {
        let mut r = Request::post(uri);
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let (status, body, _) = self.send(r.body(Body::from(body)).unwrap()).await;
        let json = serde_json::from_slice(&body)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into()));
        (status, json)
    }
}

/// Loads the embedded default pack.
pub(crate) fn default_rules() -> kubetrail_server::RuleLoader {
    Arc::new(|| {
        let rt = kubetrail_detect::Runtime::new();
        let rules = kubetrail_detect::load(&rt, true, &[], &kubetrail_detect::Overrides::new())
            .map_err(|e| format!("{e:?}"))?;
        Ok((rt, rules))
    })
}

/// The events of a real sample file, as the items of an `EventList` in `api_version`.
pub(crate) fn event_list(file: &str, api_version: &str) -> (Vec<u8>, usize) {
    let text = std::fs::read_to_string(testdata(file)).unwrap();
    let items: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            // In a list the items carry no type of their own, as the apiserver encodes them.
            let o = v.as_object_mut().unwrap();
            o.remove("kind");
            o.remove("apiVersion");
            v
        })
        .collect();
    let n = items.len();
    let list = serde_json::json!({"kind": "EventList", "apiVersion": api_version, "metadata": {}, "items": items});
    (serde_json::to_vec(&list).unwrap(), n)
}
