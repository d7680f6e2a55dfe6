//! What agents report about themselves: their lag, and the gaps — stretches of audit log they
//! could not deliver. Gaps are kept durably (one JSON line each in `gaps.jsonl` under the
//! state directory) so a restart of the server does not hide a loss; each gap id is stored
//! once, however often an agent repeats it.

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Extension, State};
use kubetrail_api::wire::{AgentStatus, AgentView, Gap};

use crate::auth::Principal;
use crate::{ApiError, AppState};

/// The file gaps are kept in.
pub const GAPS_FILE: &str = "gaps.jsonl";

/// A gap's identity: the agent's id is unique per agent, an agent is (cluster, node).
fn key(gap: &Gap) -> String {
    format!("{}\u{1f}{}\u{1f}{}", gap.cluster, gap.node, gap.id)
}

#[derive(Default)]
struct Book {
    agents: BTreeMap<(String, String), AgentView>,
    gaps: Vec<Gap>,
    ids: HashSet<String>,
}

/// Agents' last statuses and every gap reported.
pub struct AgentBook {
    path: Option<PathBuf>,
    book: Mutex<Book>,
}

impl AgentBook {
    /// Opens the book, reading earlier gaps from `state_dir` (memory only when `None`).
    pub fn open(state_dir: Option<PathBuf>) -> std::io::Result<Self> {
        let mut book = Book::default();
        let path = state_dir.map(|d| d.join(GAPS_FILE));
        if let Some(p) = &path
            && p.exists()
        {
            for line in BufReader::new(File::open(p)?).lines() {
                let line = line?;
                // A torn last line (a crash mid-write) is skipped: the agent reports it again.
                if let Ok(gap) = serde_json::from_str::<Gap>(&line)
                    && book.ids.insert(key(&gap))
                {
                    book.gaps.push(gap);
                }
            }
        }
        Ok(AgentBook {
            path,
            book: Mutex::new(book),
        })
    }

    /// Records a status; returns how many of its gaps were new. New gaps are durable when
    /// this returns.
    pub fn record(&self, cluster: &str, mut status: AgentStatus) -> std::io::Result<u64> {
        let mut book = self.book.lock().unwrap_or_else(|p| p.into_inner());
        let mut fresh = Vec::new();
        for gap in &mut status.gaps {
            gap.cluster = cluster.to_string();
            gap.node = status.node.clone();
            let id = key(gap);
            if !book.ids.contains(&id) {
                fresh.push((id, gap.clone()));
            }
        }
        if !fresh.is_empty()
            && let Some(p) = &self.path
        {
            let mut file = OpenOptions::new().create(true).append(true).open(p)?;
            let mut text = String::new();
            for (_, gap) in &fresh {
                text.push_str(&serde_json::to_string(gap).map_err(std::io::Error::other)?);
                text.push('\n');
            }
            file.write_all(text.as_bytes())?;
            file.sync_data()?;
        }
        let n = fresh.len() as u64;
        for (id, gap) in fresh {
            book.ids.insert(id);
            book.gaps.push(gap);
        }
        status.gaps.clear();
        book.agents.insert(
            (cluster.to_string(), status.node.clone()),
            AgentView {
                cluster: cluster.to_string(),
                status,
                seen_at: chrono::Utc::now().to_rfc3339(),
            },
        );
        Ok(n)
    }

    /// Every gap, oldest report first.
    pub fn gaps(&self) -> Vec<Gap> {
        self.book
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .gaps
            .clone()
    }

    /// The agents' last statuses.
    pub fn agents(&self) -> Vec<AgentView> {
        self.book
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .agents
            .values()
            .cloned()
            .collect()
    }
}

/// `POST /api/v1/agents/status`.
pub(crate) async fn report(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let status: AgentStatus = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("not an agent status: {e}")))?;
    if status.node.is_empty() {
        return Err(ApiError::bad_request("node: must not be empty"));
    }
    let asked = Some(status.cluster.as_str()).filter(|c| !c.is_empty());
    let cluster = principal.write_cluster(asked)?;
    let node = status.node.clone();
    let s = state.clone();
    let c = cluster.clone();
    let status_for_metrics = AgentStatus {
        gaps: Vec::new(),
        ..status.clone()
    };
    let new_gaps = tokio::task::spawn_blocking(move || s.agents.record(&c, status))
        .await
        .map_err(|e| ApiError::internal(format!("the status task failed: {e}")))?
        .map_err(|e| {
            tracing::error!(error = %e, "storing agent gaps failed");
            ApiError {
                status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
                reason: format!("storing the gaps failed: {e}"),
            }
        })?;
    if new_gaps > 0 {
        tracing::warn!(cluster, node, new_gaps, "agent reported collection gaps");
    }
    state
        .metrics
        .agent_status(&cluster, &node, &status_for_metrics, new_gaps);
    Ok(Json(serde_json::json!({ "newGaps": new_gaps })))
}

/// `GET /api/v1/agents/gaps`.
pub(crate) async fn gaps(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
) -> Json<Vec<Gap>> {
    let mut gaps = state.agents.gaps();
    if let Some(bound) = &principal.cluster {
        gaps.retain(|g| &g.cluster == bound);
    }
    Json(gaps)
}

/// `GET /api/v1/agents`.
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
) -> Json<Vec<AgentView>> {
    let mut agents = state.agents.agents();
    if let Some(bound) = &principal.cluster {
        agents.retain(|a| &a.cluster == bound);
    }
    Json(agents)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gap(id: &str) -> Gap {
        Gap {
            id: id.into(),
            cluster: String::new(),
            node: String::new(),
            file: "/var/log/kubernetes/kubernetes-2024-01-01T00-00-00.000.audit".into(),
            fingerprint: "f".into(),
            from_offset: 10,
            bytes: 90,
            detected_at: "2024-01-01T00:00:01Z".into(),
            reason: kubetrail_api::wire::GapReason::Deleted,
        }
    }

    #[test]
    fn gaps_are_kept_once_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let book = AgentBook::open(Some(dir.path().to_path_buf())).unwrap();
        let status = AgentStatus {
            node: "cp-1".into(),
            gaps: vec![gap("g1"), gap("g2")],
            ..AgentStatus::default()
        };
        assert_eq!(book.record("prod", status.clone()).unwrap(), 2);
        assert_eq!(book.record("prod", status.clone()).unwrap(), 0);
        // The same gap id from another node is another gap.
        let other = AgentStatus {
            node: "cp-2".into(),
            ..status
        };
        assert_eq!(book.record("prod", other).unwrap(), 2);
        drop(book);
        let again = AgentBook::open(Some(dir.path().to_path_buf())).unwrap();
        let gaps = again.gaps();
        assert_eq!(gaps.len(), 4);
        assert_eq!(gaps[0].cluster, "prod");
        assert_eq!(gaps[0].node, "cp-1");
        assert_eq!(gaps[3].node, "cp-2");
    }
}
