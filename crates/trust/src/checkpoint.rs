//! Checkpoints: the signed head of every chain, exported for safekeeping outside the cluster,
//! and what verification finds against one (a chain rewritten and re-signed since, or cut
//! short).

use std::collections::HashMap;

use kubetrail_model::hex;
use kubetrail_store::Store;
use kubetrail_store::chain::Link;
use serde::{Deserialize, Serialize};

use crate::PublicKey;
use crate::verify::{ChainSummary, Found, Problem, ProblemKind};

/// The newest link of each chain, signed: kept elsewhere, it shows later whether the chain was
/// rewritten ([`ProblemKind::Rewritten`]) or cut short ([`ProblemKind::Truncated`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// `kubetrail-checkpoint/v1`.
    pub kind: String,
    /// When it was exported (microseconds).
    pub created_micros: i64,
    /// One head per chain.
    pub heads: Vec<Head>,
}

/// A chain's head in a [`Checkpoint`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Head {
    /// The cluster.
    pub cluster: String,
    /// The key id.
    pub key_id: String,
    /// The link's number.
    pub seq: u64,
    /// The link's hash (hex).
    pub hash: String,
    /// The link's signature (hex).
    pub signature: String,
}

/// The kind a checkpoint says it is.
pub const CHECKPOINT_KIND: &str = "kubetrail-checkpoint/v1";

/// The checkpoint of what `store` holds now.
pub fn checkpoint(store: &dyn Store, now_micros: i64) -> kubetrail_store::Result<Checkpoint> {
    let mut heads: HashMap<(String, String), Link> = HashMap::new();
    for l in store.chain_links()? {
        let key = (l.cluster.clone(), l.key_id.clone());
        if heads.get(&key).is_none_or(|h| l.seq > h.seq) {
            heads.insert(key, l);
        }
    }
    let mut heads: Vec<Head> = heads
        .into_values()
        .map(|l| Head {
            hash: hex(&l.hash()),
            signature: hex(&l.signature),
            cluster: l.cluster,
            key_id: l.key_id,
            seq: l.seq,
        })
        .collect();
    heads.sort_by(|a, b| (&a.cluster, &a.key_id).cmp(&(&b.cluster, &b.key_id)));
    Ok(Checkpoint {
        kind: CHECKPOINT_KIND.into(),
        created_micros: now_micros,
        heads,
    })
}

pub(crate) fn check_checkpoint(
    cp: &Checkpoint,
    chains: &[ChainSummary],
    keys: &HashMap<&str, &PublicKey>,
    found: &mut Found,
    wanted: impl Fn(&str) -> bool,
) {
    for h in cp.heads.iter().filter(|h| wanted(&h.cluster)) {
        let mut add = |kind, detail: String| {
            found.add(Problem {
                kind,
                cluster: h.cluster.clone(),
                key_id: Some(h.key_id.clone()),
                link: Some(h.seq),
                audit_id: None,
                detail,
            })
        };
        let signed = kubetrail_store::chain::parse_hash(&h.hash).is_some_and(|hash| {
            kubetrail_model::unhex(&h.signature).is_some_and(|sig| {
                keys.get(h.key_id.as_str())
                    .is_none_or(|k| k.verifies(&hash, &sig))
            })
        });
        if !signed {
            add(
                ProblemKind::BadSignature,
                format!(
                    "the checkpoint's link {} is not signed by key {}: the checkpoint was changed",
                    h.seq, h.key_id
                ),
            );
            continue;
        }
        let chain = chains
            .iter()
            .find(|c| c.cluster == h.cluster && c.key_id == h.key_id);
        match chain {
            None => add(
                ProblemKind::Truncated,
                format!(
                    "the checkpoint has link {} of this chain, and the store has none of it: the chain was removed",
                    h.seq
                ),
            ),
            Some(c) if c.head < h.seq => add(
                ProblemKind::Truncated,
                format!(
                    "the chain ends at link {}, before the checkpoint's link {}: links were removed",
                    c.head, h.seq
                ),
            ),
            Some(_) => {}
        }
    }
}

/// The checkpoint's heads that the store holds with other contents.
pub(crate) fn rewritten_since(
    store: &dyn Store,
    cp: &Checkpoint,
    cluster: Option<&str>,
) -> kubetrail_store::Result<Vec<Problem>> {
    let links = store.chain_links()?;
    let mut out = Vec::new();
    for h in cp
        .heads
        .iter()
        .filter(|h| cluster.is_none_or(|c| c == h.cluster))
    {
        let stored: Vec<&Link> = links
            .iter()
            .filter(|l| l.cluster == h.cluster && l.key_id == h.key_id && l.seq == h.seq)
            .collect();
        if !stored.is_empty() && stored.iter().all(|l| hex(&l.hash()) != h.hash) {
            out.push(Problem {
                kind: ProblemKind::Rewritten,
                cluster: h.cluster.clone(),
                key_id: Some(h.key_id.clone()),
                link: Some(h.seq),
                audit_id: None,
                detail: format!(
                    "link {} differs from the checkpoint's: the chain was rewritten from this link or before",
                    h.seq
                ),
            });
        }
    }
    Ok(out)
}
