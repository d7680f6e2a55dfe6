//! Alert notifications. Each configured sink — Alertmanager (API v2), a generic webhook (JSON,
//! HMAC-SHA256 signed) or a Slack-compatible incoming webhook — has a durable [`Outbox`] and a
//! delivery thread: [`Notifier::send`] returns once every sink's outbox holds the notices on
//! disk; the thread delivers them in batches, retrying with exponential backoff (1 s doubling
//! to 60 s) while the sink is down, so an outage or a restart loses no alert. An outbox is
//! bounded ([`SinkConfig::max_pending`]); past it new notices are refused for that sink,
//! counted ([`Observer::dropped`]) and logged.
//!
//! The crate knows nothing of rules or stores: a [`Notice`] is what a notification says.

pub mod outbox;
pub mod payload;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use outbox::Outbox;

/// What one notification says about one alert.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    /// The rule's id.
    pub rule: String,
    /// The rule's title.
    pub title: String,
    /// `info` … `critical`.
    pub severity: String,
    /// The cluster.
    pub cluster: String,
    /// The object's namespace, `""` when none.
    pub namespace: String,
    /// Who made the request.
    pub user: String,
    /// The triggering event's auditID.
    #[serde(rename = "auditID")]
    pub audit_id: String,
    /// The event time, RFC 3339.
    pub time: String,
    /// The object, as `pods/exec prod/web`.
    pub object: String,
    /// The whole alert, as the API gives it (what the webhook sends).
    pub alert: serde_json::Value,
}

/// The kinds of sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// Alertmanager's API v2: `url` is Alertmanager's base URL (`http://alertmanager:9093`).
    Alertmanager,
    /// `POST url` with `{"alerts": [...]}`, signed when a secret is given.
    Webhook,
    /// A Slack-compatible incoming webhook: `POST url` with `{"text": ...}`.
    Slack,
}

/// The most notices a sink's outbox holds by default.
pub const DEFAULT_MAX_PENDING: usize = 100_000;

/// Notices sent to a sink at a time.
const BATCH: usize = 100;

/// How long one delivery may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);

/// Longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// One sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SinkConfig {
    /// A name: labels the sink's metrics and names its outbox file (letters, digits, `-`, `_`).
    pub name: String,
    /// What it is.
    #[serde(rename = "type")]
    pub kind: SinkKind,
    /// Where to send.
    pub url: String,
    /// Webhook only: a file whose first line is the HMAC-SHA256 secret the body is signed with
    /// (header `X-Kubetrail-Signature: sha256=HEX`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
    /// The most notices the outbox holds; past it new ones are dropped and counted.
    #[serde(default = "default_max_pending")]
    pub max_pending: usize,
}

fn default_max_pending() -> usize {
    DEFAULT_MAX_PENDING
}

/// Why the notifier cannot start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A sink's configuration is wrong.
    #[error("sink {sink:?}: {reason}")]
    Config {
        /// The sink.
        sink: String,
        /// What is wrong.
        reason: String,
    },
    /// An outbox could not be opened or written.
    #[error("the outbox of sink {sink:?}: {source}")]
    Outbox {
        /// The sink.
        sink: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Where the notifier reports what it did (the server's metrics).
pub trait Observer: Send + Sync {
    /// Notices delivered to a sink.
    fn delivered(&self, sink: &str, n: usize);
    /// A delivery attempt that failed.
    fn failed(&self, sink: &str);
    /// Notices refused because the sink's outbox was full.
    fn dropped(&self, sink: &str, n: usize);
    /// Notices waiting in a sink's outbox.
    fn pending(&self, sink: &str, n: usize);
}

/// An observer that records nothing.
pub struct Unobserved;

impl Observer for Unobserved {
    fn delivered(&self, _: &str, _: usize) {}
    fn failed(&self, _: &str) {}
    fn dropped(&self, _: &str, _: usize) {}
    fn pending(&self, _: &str, _: usize) {}
}

struct Shared {
    outbox: Mutex<Outbox>,
    wake: Condvar,
    stop: AtomicBool,
}

struct Sink {
    config: SinkConfig,
    shared: Arc<Shared>,
}

/// Every sink, with its outbox and delivery thread.
pub struct Notifier {
    sinks: Vec<Sink>,
    observer: Arc<dyn Observer>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field(
                "sinks",
                &self
                    .sinks
                    .iter()
                    .map(|s| &s.config.name)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn check(c: &SinkConfig) -> Result<(), NotifyError> {
    let bad = |reason: String| NotifyError::Config {
        sink: c.name.clone(),
        reason,
    };
    if c.name.is_empty()
        || !c
            .name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
    {
        return Err(bad("the name must be letters, digits, - or _".into()));
    }
    if !(c.url.starts_with("http://") || c.url.starts_with("https://")) {
        return Err(bad(format!(
            "url {:?}: expected http:// or https://",
            c.url
        )));
    }
    if c.secret_file.is_some() && c.kind != SinkKind::Webhook {
        return Err(bad("secretFile is for webhook sinks only".into()));
    }
    if c.max_pending == 0 {
        return Err(bad("maxPending must be at least 1".into()));
    }
    Ok(())
}

fn read_secret(c: &SinkConfig) -> Result<Option<Vec<u8>>, NotifyError> {
    let Some(path) = &c.secret_file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|e| NotifyError::Config {
        sink: c.name.clone(),
        reason: format!("reading secretFile {}: {e}", path.display()),
    })?;
    let secret = text.lines().next().unwrap_or("").trim().to_string();
    if secret.is_empty() {
        return Err(NotifyError::Config {
            sink: c.name.clone(),
            reason: format!("secretFile {} is empty", path.display()),
        });
    }
    Ok(Some(secret.into_bytes()))
}

impl Notifier {
    /// Opens every sink's outbox in `dir` and starts its delivery thread (which first delivers
    /// what an earlier run left). `external_url` is the server's address as people reach it,
    /// for links in notifications.
    pub fn start(
        configs: &[SinkConfig],
        dir: &Path,
        external_url: Option<String>,
        observer: Arc<dyn Observer>,
    ) -> Result<Notifier, NotifyError> {
        let mut names: Vec<&str> = Vec::new();
        for c in configs {
            check(c)?;
            if names.contains(&c.name.as_str()) {
                return Err(NotifyError::Config {
                    sink: c.name.clone(),
                    reason: "two sinks have this name".into(),
                });
            }
            names.push(&c.name);
        }
        let mut sinks = Vec::new();
        for c in configs {
            let secret = read_secret(c)?;
            let outbox = Outbox::open(dir, &c.name, c.max_pending).map_err(|source| {
                NotifyError::Outbox {
                    sink: c.name.clone(),
                    source,
                }
            })?;
            observer.pending(&c.name, outbox.pending());
            let shared = Arc::new(Shared {
                outbox: Mutex::new(outbox),
                wake: Condvar::new(),
                stop: AtomicBool::new(false),
            });
            let worker = Delivery {
                config: c.clone(),
                secret,
                external_url: external_url.clone(),
                shared: shared.clone(),
                observer: observer.clone(),
                agent: ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .max_redirects(0)
                    .timeout_global(Some(DELIVERY_TIMEOUT))
                    .build()
                    .into(),
            };
            std::thread::Builder::new()
                .name(format!("kubetrail-notify-{}", c.name))
                .spawn(move || worker.run())
                .map_err(|source| NotifyError::Outbox {
                    sink: c.name.clone(),
                    source,
                })?;
            sinks.push(Sink {
                config: c.clone(),
                shared,
            });
        }
        Ok(Notifier { sinks, observer })
    }

    /// The sinks' names.
    pub fn sinks(&self) -> Vec<String> {
        self.sinks.iter().map(|s| s.config.name.clone()).collect()
    }

    /// Queues notices in every sink's outbox, durably. A sink whose outbox is full or cannot
    /// be written drops them (counted and logged); the others still get them.
    pub fn send(&self, notices: &[Notice]) {
        if notices.is_empty() {
            return;
        }
        for s in &self.sinks {
            let mut outbox = s.shared.outbox.lock().unwrap_or_else(|p| p.into_inner());
            let dropped = match outbox.push(notices) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(sink = s.config.name, "the outbox could not be written: {e}");
                    notices.len()
                }
            };
            if dropped > 0 {
                self.observer.dropped(&s.config.name, dropped);
                tracing::error!(
                    sink = s.config.name,
                    dropped,
                    max = s.config.max_pending,
                    "notices dropped: the sink's outbox is full (the sink is down or too slow)"
                );
            }
            self.observer.pending(&s.config.name, outbox.pending());
            drop(outbox);
            s.shared.wake.notify_one();
        }
    }

    /// Notices waiting, per sink.
    pub fn pending(&self) -> Vec<(String, usize)> {
        self.sinks
            .iter()
            .map(|s| {
                let o = s.shared.outbox.lock().unwrap_or_else(|p| p.into_inner());
                (s.config.name.clone(), o.pending())
            })
            .collect()
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        for s in &self.sinks {
            s.shared.stop.store(true, Ordering::Release);
            s.shared.wake.notify_one();
        }
    }
}

/// A sink's delivery thread.
struct Delivery {
    config: SinkConfig,
    secret: Option<Vec<u8>>,
    external_url: Option<String>,
    shared: Arc<Shared>,
    observer: Arc<dyn Observer>,
    agent: ureq::Agent,
}

impl Delivery {
    fn run(self) {
        let name = self.config.name.clone();
        let mut backoff = Duration::from_secs(1);
        let mut failures = 0u64;
        loop {
            let batch = {
                let mut outbox = self.shared.outbox.lock().unwrap_or_else(|p| p.into_inner());
                while outbox.pending() == 0 && !self.shared.stop.load(Ordering::Acquire) {
                    outbox = self
                        .shared
                        .wake
                        .wait_timeout(outbox, Duration::from_secs(1))
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                if self.shared.stop.load(Ordering::Acquire) {
                    return;
                }
                outbox.peek(BATCH)
            };
            let (notices, end, lines) = match batch {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(sink = name, "reading the outbox failed: {e}");
                    std::thread::sleep(backoff);
                    continue;
                }
            };
            let result = if notices.is_empty() {
                Ok(())
            } else {
                self.deliver(&notices)
            };
            match result {
                Ok(()) => {
                    let mut outbox = self.shared.outbox.lock().unwrap_or_else(|p| p.into_inner());
                    if let Err(e) = outbox.ack(end, lines) {
                        tracing::error!(
                            sink = name,
                            "recording a delivery failed (it may be sent again): {e}"
                        );
                    }
                    self.observer.delivered(&name, notices.len());
                    self.observer.pending(&name, outbox.pending());
                    if failures > 0 {
                        tracing::info!(
                            sink = name,
                            after = failures,
                            "the sink takes notifications again"
                        );
                    }
                    failures = 0;
                    backoff = Duration::from_secs(1);
                }
                Err(reason) => {
                    self.observer.failed(&name);
                    failures += 1;
                    // The first failure and then every tenth: an outage is one story, not a flood.
                    if failures == 1 || failures.is_multiple_of(10) {
                        tracing::warn!(
                            sink = name,
                            failures,
                            retry_in_seconds = backoff.as_secs(),
                            "delivering notifications failed, kept in the outbox: {reason}"
                        );
                    }
                    let deadline = std::time::Instant::now() + backoff;
                    while std::time::Instant::now() < deadline {
                        if self.shared.stop.load(Ordering::Acquire) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Sends one batch; an answer outside 2xx is a failure.
    fn deliver(&self, notices: &[Notice]) -> Result<(), String> {
        let url_base = self.config.url.trim_end_matches('/');
        let external = self.external_url.as_deref();
        let (url, body) = match self.config.kind {
            SinkKind::Alertmanager => (
                format!("{url_base}/api/v2/alerts"),
                payload::alertmanager(notices, external),
            ),
            SinkKind::Webhook => (self.config.url.clone(), payload::webhook(notices)),
            SinkKind::Slack => (self.config.url.clone(), payload::slack(notices, external)),
        };
        let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
        let mut request = self
            .agent
            .post(&url)
            .header("content-type", "application/json");
        let signature;
        if let Some(secret) = &self.secret {
            signature = payload::signature(secret, &body);
            request = request.header(payload::SIGNATURE_HEADER, &signature);
        }
        let response = request.send(&body[..]).map_err(|e| format!("{url}: {e}"))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(format!("{url}: answered {status}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_are_checked_by_name() {
        let ok = SinkConfig {
            name: "am".into(),
            kind: SinkKind::Alertmanager,
            url: "http://127.0.0.1:9093".into(),
            secret_file: None,
            max_pending: 10,
        };
        assert!(check(&ok).is_ok());
        let e = check(&SinkConfig {
            url: "ftp://x".into(),
            ..ok.clone()
        })
        .unwrap_err();
        assert!(e.to_string().contains("sink \"am\"") && e.to_string().contains("ftp://x"));
        assert!(
            check(&SinkConfig {
                name: "a/b".into(),
                ..ok.clone()
            })
            .is_err()
        );
        assert!(
            check(&SinkConfig {
                secret_file: Some("s".into()),
                ..ok.clone()
            })
            .is_err()
        );
        let dir = tempfile::tempdir().unwrap();
        let twice = Notifier::start(&[ok.clone(), ok], dir.path(), None, Arc::new(Unobserved));
        assert!(twice.unwrap_err().to_string().contains("two sinks"));
    }

    /// What the test server saw of each request: its signature header and its body.
    type Seen = Vec<(String, Vec<u8>)>;

    /// A one-shot HTTP server answering `status` to each request, recording the bodies.
    fn server(statuses: Vec<u16>) -> (String, std::thread::JoinHandle<Seen>) {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for status in statuses {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                let mut length = 0;
                let mut signature = String::new();
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    if lower.starts_with("x-kubetrail-signature:") {
                        signature = line.split_once(':').unwrap().1.trim().to_string();
                    }
                    head.push_str(&line);
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let mut stream = stream;
                write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                )
                .unwrap();
                seen.push((signature, body));
            }
            seen
        });
        (url, handle)
    }

    #[test]
    fn a_webhook_outage_is_retried_and_every_notice_arrives_signed_once() {
        let (url, server) = server(vec![503, 200]);
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let config = SinkConfig {
            name: "hook".into(),
            kind: SinkKind::Webhook,
            url,
            secret_file: Some(secret),
            max_pending: 10,
        };
        let n = Notifier::start(&[config], dir.path(), None, Arc::new(Unobserved)).unwrap();
        let notices: Vec<Notice> = ["a", "b"]
            .iter()
            .map(|id| Notice {
                rule: "pod-exec".into(),
                audit_id: id.to_string(),
                alert: serde_json::json!({"auditID": id}),
                ..Notice::default()
            })
            .collect();
        n.send(&notices);
        let seen = server.join().unwrap();
        assert_eq!(seen.len(), 2, "refused once, then taken");
        let (signature, body) = &seen[1];
        assert_eq!(signature, &payload::signature(b"s3cret", body));
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(
            v["alerts"],
            serde_json::json!([{"auditID": "a"}, {"auditID": "b"}])
        );
        // Delivered and recorded: nothing waits.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while n.pending()[0].1 > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the delivery was not recorded"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
