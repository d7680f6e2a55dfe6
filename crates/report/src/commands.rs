//! The executed-commands list an audit centre opens with: the latest exec, attach and
//! port-forward requests of a scope, each with what it asked for (the command and its
//! arguments, the container, whether a terminal was opened), decoded from the request URI,
//! the only place the apiserver records them.

use kubetrail_model::StreamRequest;
use kubetrail_store::{Record, Result, Store};
use serde::{Deserialize, Serialize};

use crate::Drill;

/// Commands the overview lists.
pub const EXECUTED_SHOWN: usize = 10;

/// One exec, attach or port-forward request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutedCommand {
    /// When (RFC 3339).
    pub time: String,
    /// Cluster.
    pub cluster: String,
    /// Authenticated user.
    pub user: String,
    /// The user it impersonated (`""`: none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub impersonated_user: String,
    /// Namespace of the pod.
    pub namespace: String,
    /// The pod.
    pub pod: String,
    /// `exec`, `attach` or `portforward`.
    pub kind: String,
    /// The container (`None`: the pod's default).
    pub container: Option<String>,
    /// The command and its arguments (exec).
    pub command: Vec<String>,
    /// The command as a shell reads it (`sh -c 'id'`).
    pub command_line: String,
    /// A terminal was opened.
    pub tty: bool,
    /// The response code (`None`: still running when recorded).
    pub code: Option<i32>,
    /// The request's auditID.
    #[serde(rename = "auditID")]
    pub audit_id: String,
}

/// The latest `limit` exec, attach and port-forward requests of `scope`, newest first, each
/// with its decoded options.
pub fn executed(
    store: &dyn Store,
    scope: &kubetrail_store::Filter,
    limit: usize,
) -> Result<Vec<(Record, StreamRequest)>> {
    let Some(filter) = Drill::ExecAttach.within(scope)? else {
        return Ok(Vec::new());
    };
    Ok(store
        .query(&filter, None, limit)?
        .records
        .into_iter()
        .filter_map(|r| {
            let s = StreamRequest::of(&r.resource, &r.subresource, &r.request_uri)?;
            Some((r, s))
        })
        .collect())
}

impl ExecutedCommand {
    /// The list entry for one request.
    pub fn of(r: &Record, s: &StreamRequest) -> ExecutedCommand {
        ExecutedCommand {
            time: kubetrail_store::text::format_micros(r.ts_micros),
            cluster: r.cluster.clone(),
            user: r.user.clone(),
            impersonated_user: r.impersonated_user.clone(),
            namespace: r.namespace.clone(),
            pod: r.name.clone(),
            kind: s.kind.as_str().to_string(),
            container: s.container.clone(),
            command: s.command.clone(),
            command_line: s.command_line(),
            tty: s.tty,
            code: r.code,
            audit_id: r.audit_id.clone(),
        }
    }
}
