//! The hash chain that makes the stored trail tamper-evident.
//!
//! Every commit of events extends, for each cluster it holds events of, that cluster's chain
//! under the signing key of the writer ([`Chain`]): a [`Link`] with its sequence number, the
//! hash of the link before it, the digest of a *manifest* listing every event of the commit
//! (its identity and the digest of the columns stored for it, [`record_digest`]), the event
//! count and time range, signed with Ed25519. The events carry the link's random batch id in
//! their `chain_batch` column, so a verifier finds each link's rows, and the manifest names
//! the auditID of any row changed, deleted or inserted since.
//!
//! Retention removes old events and, in the same commit, adds a signed [`LinkKind::Prune`]
//! link per cluster: events older than its `pruned_before` may be missing from the links made
//! before it (of any key). A trail
//! that lost old events to retention still verifies, and says how many went that way.
//!
//! What is hashed is fixed here, byte for byte, for every backend: a backend stores the
//! link's fields and the manifest's entries and reads them back, and [`record_digest`] of a row
//! read back equals that of the record appended. The signing itself is behind [`Sign`] (the
//! key lives in `kubetrail-trust`).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use kubetrail_model::Stage;
use ring::digest::{Context, SHA256};

use crate::Record;

/// How long a row's link may lag behind it ([`crate::Store::chain_strays`]): ten minutes.
pub const SETTLING_MICROS: i64 = 600_000_000;

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// What the link encoding starts with: a new encoding gets a new tag.
const LINK_TAG: &[u8] = b"kubetrail-chain-link-v1\0";

/// What a record's encoding starts with.
const RECORD_TAG: &[u8] = b"kubetrail-chain-event-v1\0";

/// What a link stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkKind {
    /// The events of one commit.
    Batch,
    /// Retention ran: events older than [`Link::pruned_before`] may be gone from earlier links.
    Prune,
}

impl LinkKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Batch => "batch",
            LinkKind::Prune => "prune",
        }
    }

    /// The kind a stored name stands for.
    pub fn parse(s: &str) -> Option<LinkKind> {
        match s {
            "batch" => Some(LinkKind::Batch),
            "prune" => Some(LinkKind::Prune),
            _ => None,
        }
    }
}

/// One link of a chain, as stored (its manifest apart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The cluster whose chain this is.
    pub cluster: String,
    /// The signing key's id ([`key_id`]): each writer's key has its own chain per cluster.
    pub key_id: String,
    /// Position in the chain, from 1.
    pub seq: u64,
    /// What it stands for.
    pub kind: LinkKind,
    /// The `chain_batch` its events carry (0 for a prune link).
    pub batch: i64,
    /// [`Link::hash`] of the link before (zeros for the first).
    pub prev: Hash,
    /// [`manifest_digest`] of its events (zeros for a prune link).
    pub digest: Hash,
    /// Events in the manifest.
    pub events: u64,
    /// The oldest event time in it (microseconds; 0 when empty).
    pub first_micros: i64,
    /// The newest event time in it.
    pub last_micros: i64,
    /// For a prune link: events older than this may be gone from the links before it.
    pub pruned_before: i64,
    /// When the link was made (microseconds).
    pub created_micros: i64,
    /// Ed25519 signature of [`Link::hash`].
    pub signature: Vec<u8>,
}

impl Link {
    /// The hash the signature covers and the next link refers to: every field but the
    /// signature, in a fixed binary encoding.
    pub fn hash(&self) -> Hash {
        let mut h = Context::new(&SHA256);
        h.update(LINK_TAG);
        put_str(&mut h, &self.cluster);
        put_str(&mut h, &self.key_id);
        h.update(&self.seq.to_le_bytes());
        put_str(&mut h, self.kind.as_str());
        h.update(&self.batch.to_le_bytes());
        h.update(&self.prev);
        h.update(&self.digest);
        h.update(&self.events.to_le_bytes());
        h.update(&self.first_micros.to_le_bytes());
        h.update(&self.last_micros.to_le_bytes());
        h.update(&self.pruned_before.to_le_bytes());
        h.update(&self.created_micros.to_le_bytes());
        finish(h)
    }
}

/// A link as a commit stores it. Its manifest's entries ([`Entry`]) are stored one row each
/// beside the events, as the events are written (a bulk load's writers do it at once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRow {
    /// The link.
    pub link: Link,
}

/// One event as a manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// Event time (microseconds).
    pub ts_micros: i64,
    /// `auditID` as stored.
    pub audit_id: String,
    /// Stage as stored (`""` when none).
    pub stage: String,
    /// [`record_digest`] of the row.
    pub digest: Hash,
}

impl Entry {
    /// The entry for `record`.
    pub fn of(record: &Record) -> Entry {
        Entry {
            ts_micros: record.ts_micros,
            audit_id: record.audit_id.clone(),
            stage: record.stage.map(Stage::as_str).unwrap_or("").to_string(),
            digest: record_digest(record),
        }
    }
}

/// What a manifest's digest starts with.
const MANIFEST_TAG: &[u8] = b"kubetrail-chain-manifest-v1\0";

/// The digest of a manifest: SHA-256 over the count and the sorted [`record_digest`]s of its
/// entries (each covers the event's identity and every column). The same events always give
/// the same digest, in whatever order a store returns them.
pub fn manifest_digest(digests: &mut [Hash]) -> Hash {
    digests.sort_unstable();
    let mut h = Context::new(&SHA256);
    h.update(MANIFEST_TAG);
    h.update(&(digests.len() as u64).to_le_bytes());
    for d in digests.iter() {
        h.update(d);
    }
    finish(h)
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Hash {
    let mut h = Context::new(&SHA256);
    h.update(bytes);
    finish(h)
}

/// A hash from its hex text.
pub fn parse_hash(hex: &str) -> Option<Hash> {
    kubetrail_model::unhex(hex)?.try_into().ok()
}

/// The digest of every column stored for `record`, as it reads back from any backend: the
/// groups as stored (split at the stored separator, empty names not kept), a code of 0 as
/// none. The store's own `counted` flag is derived, and not covered.
pub fn record_digest(r: &Record) -> Hash {
    let mut h = Context::new(&SHA256);
    h.update(RECORD_TAG);
    for s in [
        r.cluster.as_str(),
        &r.audit_id,
        r.stage.map(Stage::as_str).unwrap_or(""),
        r.level.map(kubetrail_model::Level::as_str).unwrap_or(""),
    ] {
        put_str(&mut h, s);
    }
    h.update(&r.ts_micros.to_le_bytes());
    match r.request_ts_micros {
        Some(t) => {
            h.update(&[1]);
            h.update(&t.to_le_bytes());
        }
        None => h.update(&[0]),
    }
    h.update(&r.received_micros.to_le_bytes());
    put_str(&mut h, &r.verb);
    put_str(&mut h, &r.user);
    let groups: Vec<&str> = r
        .groups
        .iter()
        .flat_map(|g| g.split(crate::sql::GROUP_SEP))
        .filter(|g| !g.is_empty())
        .collect();
    h.update(&(groups.len() as u64).to_le_bytes());
    for g in groups {
        put_str(&mut h, g);
    }
    for s in [
        &r.impersonated_user,
        &r.source_ip,
        &r.user_agent,
        &r.api_group,
        &r.api_version,
        &r.resource,
        &r.subresource,
        &r.namespace,
        &r.name,
    ] {
        put_str(&mut h, s);
    }
    h.update(&r.code.unwrap_or(0).to_le_bytes());
    for s in [&r.decision, &r.reason, &r.request_uri, &r.raw] {
        put_str(&mut h, s);
    }
    h.update(&r.content_hash.to_le_bytes());
    finish(h)
}

fn put_str(h: &mut Context, s: &str) {
    h.update(&(s.len() as u64).to_le_bytes());
    h.update(s.as_bytes());
}

fn finish(h: Context) -> Hash {
    let mut out = [0u8; 32];
    out.copy_from_slice(h.finish().as_ref());
    out
}

/// Signs links: the writer's private key.
pub trait Sign: Send + Sync {
    /// The key's id ([`key_id`] of its public key).
    fn key_id(&self) -> &str;
    /// The public key, PEM (SubjectPublicKeyInfo), for the store to keep beside the chain.
    fn public_key_pem(&self) -> String;
    /// The Ed25519 signature of `message`.
    fn sign(&self, message: &[u8]) -> Vec<u8>;
}

/// The id of a public key: the first 16 hex digits of the SHA-256 of its 32 bytes.
pub fn key_id(public_key: &[u8]) -> String {
    kubetrail_model::hex(&sha256(public_key)[..8])
}

/// The events a commit will link, gathered as it writes them: per cluster, a fresh batch id
/// (the rows' `chain_batch`) and their manifest entries.
#[derive(Debug, Default)]
pub struct Pending {
    batches: HashMap<String, PendingBatch>,
}

#[derive(Debug)]
struct PendingBatch {
    batch: i64,
    digests: Vec<Hash>,
    first: i64,
    last: i64,
}

impl Pending {
    /// Adds `record` to its cluster's batch; returns the batch id to store with it, and its
    /// [`record_digest`] (for a backend that stores the entry as it stores the event).
    pub fn add(&mut self, record: &Record) -> (i64, Hash) {
        let batch = match self.batches.get_mut(&record.cluster) {
            Some(b) => b,
            None => self
                .batches
                .entry(record.cluster.clone())
                .or_insert_with(|| PendingBatch {
                    batch: fresh_batch_id(),
                    digests: Vec::new(),
                    first: i64::MAX,
                    last: i64::MIN,
                }),
        };
        let digest = record_digest(record);
        batch.digests.push(digest);
        batch.first = batch.first.min(record.ts_micros);
        batch.last = batch.last.max(record.ts_micros);
        (batch.batch, digest)
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }
}

/// A random, nonzero batch id (0 marks events stored outside any chain).
fn fresh_batch_id() -> i64 {
    let mut bytes = [0u8; 8];
    // The system's generator failing is not something a store can work around; a clock-based
    // id still keeps batches apart within one store.
    if getrandom::fill(&mut bytes).is_err() {
        bytes = (chrono::Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64).to_le_bytes();
    }
    match i64::from_le_bytes(bytes) {
        0 => 1,
        id => id,
    }
}

/// Where each chain of a writer's key stands: (seq, hash) of its newest link, by cluster.
type Heads = HashMap<String, (u64, Hash)>;

/// A writer's chains: its key and the head of its chain per cluster. A backend resumes it
/// from the links it holds ([`Chain::resume`]), and extends it under [`Chain::lock`] from
/// before a commit's links are made until the commit is done, so that links are numbered in
/// the order they are committed.
pub struct Chain {
    signer: Box<dyn Sign>,
    heads: Mutex<Heads>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("key_id", &self.signer.key_id())
            .finish_non_exhaustive()
    }
}

impl Chain {
    /// A chain signed by `signer`, with no links yet.
    pub fn new(signer: Box<dyn Sign>) -> Chain {
        Chain {
            signer,
            heads: Mutex::new(HashMap::new()),
        }
    }

    /// The key's id.
    pub fn key_id(&self) -> &str {
        self.signer.key_id()
    }

    /// The public key (PEM).
    pub fn public_key_pem(&self) -> String {
        self.signer.public_key_pem()
    }

    /// Takes up the chains of this key where `links` (what the store holds) leave them.
    pub fn resume(&self, links: &[Link]) {
        self.lock().resume(links);
    }

    /// Holds the heads for one commit.
    pub fn lock(&self) -> ChainLock<'_> {
        ChainLock {
            chain: self,
            heads: self.lock_heads(),
        }
    }

    fn lock_heads(&self) -> MutexGuard<'_, Heads> {
        self.heads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn sign(&self, mut link: Link) -> Link {
        link.signature = self.signer.sign(&link.hash());
        link
    }
}

/// The heads, held from making a commit's links until it is done.
pub struct ChainLock<'c> {
    chain: &'c Chain,
    heads: MutexGuard<'c, Heads>,
}

impl ChainLock<'_> {
    /// The links of a commit's `pending` events, one per cluster, numbered after the heads.
    pub fn links(&self, pending: Pending, now_micros: i64) -> Vec<LinkRow> {
        let mut batches: Vec<(String, PendingBatch)> = pending.batches.into_iter().collect();
        batches.sort_by(|a, b| a.0.cmp(&b.0));
        batches
            .into_iter()
            .map(|(cluster, mut b)| {
                let (first, last) = (b.first, b.last);
                let events = b.digests.len() as u64;
                let digest = manifest_digest(&mut b.digests);
                let (seq, prev) = self.next(&cluster);
                let link = Link {
                    cluster,
                    key_id: self.chain.key_id().to_string(),
                    seq,
                    kind: LinkKind::Batch,
                    batch: b.batch,
                    prev,
                    digest,
                    events,
                    first_micros: first,
                    last_micros: last,
                    pruned_before: 0,
                    created_micros: now_micros,
                    signature: Vec::new(),
                };
                LinkRow {
                    link: self.chain.sign(link),
                }
            })
            .collect()
    }

    /// A prune link in this key's chain of each of `clusters`: retention removed their events
    /// older than `before`. It covers the links of every key made before it.
    pub fn prune(&self, clusters: &[String], before: i64, now_micros: i64) -> Vec<LinkRow> {
        let mut clusters: Vec<&String> = clusters.iter().collect();
        clusters.sort();
        clusters.dedup();
        clusters
            .into_iter()
            .map(|cluster| {
                let (seq, prev) = self.next(cluster);
                let link = Link {
                    cluster: cluster.clone(),
                    key_id: self.chain.key_id().to_string(),
                    seq,
                    kind: LinkKind::Prune,
                    batch: 0,
                    prev,
                    digest: [0; 32],
                    events: 0,
                    first_micros: 0,
                    last_micros: 0,
                    pruned_before: before,
                    created_micros: now_micros,
                    signature: Vec::new(),
                };
                LinkRow {
                    link: self.chain.sign(link),
                }
            })
            .collect()
    }

    /// Takes up the chains where `links` (what the store holds) leave them: after a commit
    /// whose outcome is not known (its links may be stored or not), the next links follow
    /// what is there rather than reuse a number.
    pub fn resume(&mut self, links: &[Link]) {
        self.heads.clear();
        for l in links.iter().filter(|l| l.key_id == self.chain.key_id()) {
            let newer = self
                .heads
                .get(&l.cluster)
                .is_none_or(|(seq, _)| l.seq > *seq);
            if newer {
                self.heads.insert(l.cluster.clone(), (l.seq, l.hash()));
            }
        }
    }

    /// Moves the heads past `rows`, once they are committed.
    pub fn advance(&mut self, rows: &[LinkRow]) {
        for r in rows {
            self.heads
                .insert(r.link.cluster.clone(), (r.link.seq, r.link.hash()));
        }
    }

    fn next(&self, cluster: &str) -> (u64, Hash) {
        match self.heads.get(cluster) {
            Some((seq, hash)) => (seq + 1, *hash),
            None => (1, [0; 32]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;
    impl Sign for Fake {
        fn key_id(&self) -> &str {
            "k1"
        }
        fn public_key_pem(&self) -> String {
            String::new()
        }
        fn sign(&self, message: &[u8]) -> Vec<u8> {
            message.to_vec()
        }
    }

    fn record(cluster: &str, id: &str, ts: i64) -> Record {
        let raw = format!(r#"{{"auditID":"{id}"}}"#);
        Record {
            cluster: cluster.into(),
            audit_id: id.into(),
            stage: Some(Stage::ResponseComplete),
            level: None,
            ts_micros: ts,
            request_ts_micros: None,
            received_micros: 0,
            verb: "get".into(),
            user: "alice".into(),
            groups: vec!["a".into(), String::new()],
            impersonated_user: String::new(),
            source_ip: String::new(),
            user_agent: String::new(),
            api_group: String::new(),
            api_version: String::new(),
            resource: "pods".into(),
            subresource: String::new(),
            namespace: "ns".into(),
            name: "p".into(),
            code: Some(0),
            decision: String::new(),
            reason: String::new(),
            request_uri: String::new(),
            content_hash: crate::content_hash(&raw),
            raw,
        }
    }

    #[test]
    fn the_digest_covers_every_column_and_ignores_what_does_not_read_back() {
        let r = record("c", "a", 5);
        let mut same = r.clone();
        same.groups.retain(|g| !g.is_empty());
        same.code = None;
        assert_eq!(record_digest(&r), record_digest(&same));
        // A group holding the stored separator reads back as two.
        let (mut joined, mut split) = (r.clone(), r.clone());
        joined.groups = vec![format!("x{}y", crate::sql::GROUP_SEP)];
        split.groups = vec!["x".into(), "y".into()];
        assert_eq!(record_digest(&joined), record_digest(&split));
        let edits: [fn(&mut Record); 6] = [
            |r| r.user.push('x'),
            |r| r.namespace = "other".into(),
            |r| r.raw.push(' '),
            |r| r.ts_micros += 1,
            |r| r.groups.push("b".into()),
            |r| r.request_ts_micros = Some(0),
        ];
        for edit in edits {
            let mut changed = r.clone();
            edit(&mut changed);
            assert_ne!(record_digest(&r), record_digest(&changed), "{changed:?}");
        }
        // Fields run into each other only through their lengths.
        let (mut a, mut b) = (r.clone(), r.clone());
        a.user = "ab".into();
        a.verb = "c".into();
        b.user = "a".into();
        b.verb = "bc".into();
        assert_ne!(record_digest(&a), record_digest(&b));
    }

    #[test]
    fn links_are_numbered_per_cluster_and_chained_once_committed() {
        let chain = Chain::new(Box::new(Fake));
        let mut pending = Pending::default();
        let (b1, d1) = pending.add(&record("c1", "a", 20));
        assert_eq!(d1, record_digest(&record("c1", "a", 20)));
        assert_eq!(pending.add(&record("c1", "b", 10)).0, b1);
        let (b2, _) = pending.add(&record("c2", "a", 5));
        assert_ne!(b1, b2);
        assert_ne!(b1, 0);
        let mut lock = chain.lock();
        let rows = lock.links(pending, 99);
        assert_eq!(rows.len(), 2);
        let l1 = &rows[0].link;
        assert_eq!(
            (l1.cluster.as_str(), l1.seq, l1.events, l1.batch),
            ("c1", 1, 2, b1)
        );
        assert_eq!((l1.first_micros, l1.last_micros), (10, 20));
        assert_eq!(l1.prev, [0; 32]);
        assert_eq!(l1.signature, l1.hash().to_vec());
        let mut digests = vec![
            record_digest(&record("c1", "b", 10)),
            record_digest(&record("c1", "a", 20)),
        ];
        assert_eq!(l1.digest, manifest_digest(&mut digests));
        // Not committed: the next commit takes the same numbers.
        let again = lock.links(
            {
                let mut p = Pending::default();
                p.add(&record("c1", "z", 1));
                p
            },
            100,
        );
        assert_eq!(again[0].link.seq, 1);
        lock.advance(&rows);
        let prune = lock.prune(&["c2".into(), "c1".into(), "c1".into()], 7, 101);
        assert_eq!(prune.len(), 2);
        assert_eq!(prune[0].link.seq, 2);
        assert_eq!(prune[0].link.prev, l1.hash());
        assert_eq!(prune[0].link.kind, LinkKind::Prune);
        drop(lock);
        // A resumed chain goes on from the newest stored link of its key.
        let resumed = Chain::new(Box::new(Fake));
        let mut stored: Vec<Link> = prune.iter().map(|r| r.link.clone()).collect();
        stored.push(l1.clone());
        let mut other = l1.clone();
        other.key_id = "k2".into();
        other.seq = 40;
        stored.push(other);
        resumed.resume(&stored);
        let lock = resumed.lock();
        assert_eq!(lock.next("c1"), (3, prune[0].link.hash()));
    }

    #[test]
    fn a_manifest_digest_covers_each_entry_and_not_their_order() {
        let mut entries: Vec<Hash> = (0..3)
            .map(|i| record_digest(&record("c", &format!("a{i}"), i)))
            .collect();
        let digest = manifest_digest(&mut entries.clone());
        entries.reverse();
        assert_eq!(manifest_digest(&mut entries), digest);
        let mut fewer = entries[1..].to_vec();
        assert_ne!(manifest_digest(&mut fewer), digest);
        let mut changed = entries.clone();
        changed[0][0] ^= 1;
        assert_ne!(manifest_digest(&mut changed), digest);
    }

    #[test]
    fn the_link_hash_covers_every_field_but_the_signature() {
        let l = Link {
            cluster: "c".into(),
            key_id: "k".into(),
            seq: 1,
            kind: LinkKind::Batch,
            batch: 2,
            prev: [0; 32],
            digest: [1; 32],
            events: 3,
            first_micros: 4,
            last_micros: 5,
            pruned_before: 0,
            created_micros: 6,
            signature: vec![9],
        };
        let edits: [fn(&mut Link); 8] = [
            |l| l.seq = 2,
            |l| l.kind = LinkKind::Prune,
            |l| l.batch = 3,
            |l| l.prev = [2; 32],
            |l| l.events = 4,
            |l| l.last_micros = 9,
            |l| l.pruned_before = 1,
            |l| l.cluster = "d".into(),
        ];
        for edit in edits {
            let mut m = l.clone();
            edit(&mut m);
            assert_ne!(m.hash(), l.hash(), "{m:?}");
        }
        let mut m = l.clone();
        m.signature = vec![];
        assert_eq!(m.hash(), l.hash());
    }
}
