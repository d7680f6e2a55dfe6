//! `kubetrail agent`: follows the apiserver's audit log and its rotated backups
//! ([`kubetrail_tail::Follower`]), ships what it reads to `kubetrail serve` in gzip-compressed
//! batches, and advances its checkpoint only once the server acknowledged a batch — so a crash
//! anywhere re-sends at most one batch, which the server deduplicates, and never skips one.
//!
//! Failures are retried with exponential backoff and jitter, for as long as it takes; memory
//! stays bounded by one batch, since undelivered data waits on disk. What the agent cannot
//! deliver (files deleted before it read them, data skipped under `--max-backlog-bytes`) is
//! reported to the server as gaps, and counted in its own metrics.

mod metrics;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kubetrail_api::wire::{AgentStatus, Gap};
use kubetrail_api::{Client, ClientError, ClientOptions};
use kubetrail_tail::{Chunk, FollowError, FollowOptions, Follower};

pub use metrics::{AgentMetrics, serve_metrics};

/// The agent's settings.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The apiserver's `--audit-log-path`.
    pub path: PathBuf,
    /// Base URL of `kubetrail serve`.
    pub server: String,
    /// How to authenticate to it.
    pub client: ClientOptions,
    /// Cluster (when the token does not say).
    pub cluster: Option<String>,
    /// This node's name.
    pub node: String,
    /// Where the checkpoint lives.
    pub state_dir: PathBuf,
    /// Largest batch, uncompressed.
    pub batch_max_bytes: usize,
    /// How often the log directory is looked at when idle.
    pub poll_interval: Duration,
    /// How often the status (lag, gaps) is reported.
    pub status_interval: Duration,
    /// Skip (and report) the oldest backups when the backlog exceeds this.
    pub max_backlog_bytes: Option<u64>,
    /// Longest wait between retries.
    pub max_backoff: Duration,
}

impl AgentConfig {
    /// Settings with defaults for everything but where to read and where to send.
    pub fn new(path: PathBuf, server: String, node: String, state_dir: PathBuf) -> Self {
        AgentConfig {
            path,
            server,
            client: ClientOptions::default(),
            cluster: None,
            node,
            state_dir,
            batch_max_bytes: 4 << 20,
            poll_interval: Duration::from_millis(200),
            status_interval: Duration::from_secs(10),
            max_backlog_bytes: None,
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// The agent failed for good.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Following the files.
    #[error(transparent)]
    Follow(#[from] FollowError),
    /// Setting up the client.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The state directory.
    #[error("state directory {path}: {cause}")]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// Why (in the message, not chained: `{:#}` names it once).
        cause: std::io::Error,
    },
}

/// The checkpoint file's name in the state directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.json";

/// A small xorshift generator for backoff jitter (no cryptographic use).
struct Jitter(u64);

impl Jitter {
    fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            ^ u64::from(std::process::id()).rotate_left(32);
        Jitter(seed | 1)
    }

    /// A factor in [0.8, 1.2).
    fn factor(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        0.8 + (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 0.4
    }
}

/// The agent.
pub struct Agent {
    config: AgentConfig,
    follower: Follower,
    client: Client,
    metrics: Arc<AgentMetrics>,
    shipped_events: u64,
    jitter: Jitter,
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 8),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

impl Agent {
    /// Opens the checkpoint and the client.
    pub fn new(config: AgentConfig, metrics: Arc<AgentMetrics>) -> Result<Agent, AgentError> {
        std::fs::create_dir_all(&config.state_dir).map_err(|cause| AgentError::StateDir {
            path: config.state_dir.clone(),
            cause,
        })?;
        let follower = Follower::open(
            &config.path,
            &config.state_dir.join(CHECKPOINT_FILE),
            FollowOptions {
                max_backlog_bytes: config.max_backlog_bytes,
            },
        )?;
        let client = Client::new(&config.server, &config.client)?;
        Ok(Agent {
            config,
            follower,
            client,
            metrics,
            shipped_events: 0,
            jitter: Jitter::new(),
        })
    }

    fn update_gauges(&self) {
        self.metrics.set_state(
            self.follower.lag_bytes(),
            self.follower.pending_files(),
            self.follower.dropped_bytes(),
        );
    }

    /// Sleeps up to `d`, waking early when `stop` is set. Returns whether to stop.
    fn sleep(stop: &AtomicBool, d: Duration) -> bool {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if stop.load(Ordering::Relaxed) {
                return true;
            }
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
        }
        stop.load(Ordering::Relaxed)
    }

    /// Reports lag and gaps; acknowledged gaps are forgotten.
    fn report_status(&mut self) {
        let gaps: Vec<Gap> = self
            .follower
            .pending_gaps()
            .iter()
            .map(|g| Gap {
                node: self.config.node.clone(),
                ..g.clone()
            })
            .collect();
        let status = AgentStatus {
            node: self.config.node.clone(),
            cluster: self.config.cluster.clone().unwrap_or_default(),
            lag_bytes: self.follower.lag_bytes(),
            pending_files: self.follower.pending_files(),
            shipped_events: self.shipped_events,
            dropped_bytes: self.follower.dropped_bytes(),
            gaps,
        };
        match self.client.post_status(&status) {
            Ok(()) => {
                let ids: Vec<String> = status.gaps.iter().map(|g| g.id.clone()).collect();
                if let Err(e) = self.follower.ack_gaps(&ids) {
                    tracing::error!(error = %e, "recording acknowledged gaps failed");
                }
            }
            Err(e) => tracing::debug!(error = %e, "status report failed"),
        }
    }

    /// Ships one chunk, retrying until the server acknowledges it (or `stop`). Returns
    /// whether it was acknowledged.
    fn ship(&mut self, chunk: &Chunk, stop: &AtomicBool) -> bool {
        let body = gzip(&chunk.data);
        let key = format!(
            "{}/{}/{}-{}",
            self.config.node, chunk.fingerprint, chunk.start, chunk.end
        );
        let mut failures = 0u32;
        loop {
            let started = Instant::now();
            match self.client.post_events(
                &body,
                self.config.cluster.as_deref(),
                &self.config.node,
                &key,
            ) {
                Ok(reply) => {
                    self.shipped_events += reply.received;
                    self.metrics.shipped(
                        reply.received,
                        chunk.data.len() as u64,
                        reply.rejected,
                        started.elapsed(),
                    );
                    if reply.rejected > 0 {
                        tracing::warn!(
                            file = %chunk.path.display(),
                            rejected = reply.rejected,
                            first = reply.rejected_reasons.first().map(String::as_str).unwrap_or(""),
                            "the server refused lines that are not audit events"
                        );
                    }
                    if failures > 0 {
                        tracing::info!(after = failures, "the server accepts batches again");
                    }
                    return true;
                }
                Err(e) => {
                    failures += 1;
                    self.metrics.failed();
                    let level_error = !e.is_retryable();
                    if failures == 1 || failures.is_power_of_two() {
                        if level_error {
                            tracing::error!(error = %e, failures, "the server refused a batch; retrying (check the token and the server's limits)");
                        } else {
                            tracing::warn!(error = %e, failures, "shipping a batch failed; retrying");
                        }
                    }
                    let base = Duration::from_millis(250)
                        .saturating_mul(2u32.saturating_pow(failures.min(16) - 1));
                    let wait = base
                        .min(self.config.max_backoff)
                        .mul_f64(self.jitter.factor());
                    if Self::sleep(stop, wait) {
                        return false;
                    }
                }
            }
        }
    }

    /// Runs until `stop` is set.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<(), AgentError> {
        tracing::info!(path = %self.config.path.display(), server = self.client.base(), node = self.config.node, "following");
        self.follower.scan()?;
        let mut last_scan = Instant::now();
        let mut last_status = Instant::now() - self.config.status_interval;
        loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if last_scan.elapsed() >= self.config.poll_interval {
                self.follower.scan()?;
                last_scan = Instant::now();
            }
            self.update_gauges();
            if last_status.elapsed() >= self.config.status_interval
                || !self.follower.pending_gaps().is_empty()
                    && last_status.elapsed() >= Duration::from_secs(1)
            {
                self.report_status();
                last_status = Instant::now();
            }
            match self.follower.next_chunk(self.config.batch_max_bytes)? {
                Some(chunk) => {
                    if !self.ship(&chunk, stop) {
                        break;
                    }
                    self.follower.commit(&chunk)?;
                }
                None => {
                    if Self::sleep(stop, self.config.poll_interval) {
                        break;
                    }
                    self.follower.scan()?;
                    last_scan = Instant::now();
                }
            }
        }
        self.update_gauges();
        self.report_status();
        tracing::info!("stopped");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let mut j = Jitter::new();
        for _ in 0..10_000 {
            let f = j.factor();
            assert!((0.8..1.2).contains(&f), "{f}");
        }
    }

    #[test]
    fn batches_are_gzip() {
        use std::io::Read;
        let data = b"{\"a\":1}\n".repeat(100);
        let gz = gzip(&data);
        assert!(gz.len() < data.len());
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
    }
}
