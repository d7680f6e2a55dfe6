//! `verify`: recomputes a store's hash chains and names every problem with its cluster, link
//! and auditID.
//!
//! For each chain (cluster and key): the links must be numbered 1, 2, … without gaps or
//! repeats, each must name the hash of the one before, and each must carry its key's valid
//! signature. For each batch link in the time window: its manifest must hash to the signed
//! digest, and the rows carrying its batch id must be exactly the manifest's events — a row
//! whose digest differs is *changed*, a listed event with no row is *deleted* (unless a later
//! prune link says retention took it), a row the manifest does not list is *inserted*. Rows
//! that carry no link's batch id are outside the chain. A checkpoint exported earlier catches
//! a chain rewritten and re-signed by whoever holds the key.

use std::collections::HashMap;

use kubetrail_model::hex;
use kubetrail_store::chain::{Entry, Hash, Link, LinkKind, manifest_digest};
use kubetrail_store::{Record, Store};
use serde::{Deserialize, Serialize};

use crate::PublicKey;
use crate::checkpoint::{Checkpoint, check_checkpoint, rewritten_since};

/// How many problems are listed; the rest are counted.
pub const MAX_LISTED: usize = 1000;

/// Events read per round: links are taken in groups about this large.
const EVENTS_PER_ROUND: u64 = 200_000;

/// What to verify.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only this cluster's chains.
    pub cluster: Option<String>,
    /// Only the events of links that reach this time or later (microseconds).
    pub from_micros: Option<i64>,
    /// Only the events of links that start at this time or earlier.
    pub to_micros: Option<i64>,
    /// Only the events of links made at this time or later (microseconds): the server's
    /// continuous check of the newest links.
    pub created_from_micros: Option<i64>,
    /// Rows received at this time or later that carry a batch id no link has yet are not
    /// counted outside the chain: a backend without transactions stores a commit's link just
    /// after its events. `None`: every row counts.
    pub settled_before_micros: Option<i64>,
    /// The keys to trust; empty: the public keys the store keeps (which whoever can edit the
    /// store can replace too).
    pub keys: Vec<PublicKey>,
    /// A checkpoint exported earlier.
    pub checkpoint: Option<Checkpoint>,
}

/// What kind of problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// A row differs from the event its link lists.
    Changed,
    /// An event its link lists has no row, and no prune link accounts for it.
    Deleted,
    /// A row carries a link's batch id but the link does not list it (or lists it once).
    Inserted,
    /// A row carries no link's batch id.
    OutsideChain,
    /// Links are missing from the chain.
    LinkMissing,
    /// Two links claim one number.
    LinkRepeated,
    /// A link does not name the hash of the link before it.
    LinkOutOfOrder,
    /// A link's signature is not its key's.
    BadSignature,
    /// A chain is signed by a key not trusted.
    UnknownKey,
    /// A batch link's manifest is missing or does not hash to the signed digest.
    ManifestChanged,
    /// The chain differs from a checkpoint at its link.
    Rewritten,
    /// The chain ends before a checkpoint's link.
    Truncated,
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// What kind.
    pub kind: ProblemKind,
    /// The cluster.
    pub cluster: String,
    /// The chain's key id, when the problem is in a chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The link's number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<u64>,
    /// The event's auditID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_id: Option<String>,
    /// What was found, in words.
    pub detail: String,
}

/// One chain's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainSummary {
    /// The cluster.
    pub cluster: String,
    /// The signing key's id.
    pub key_id: String,
    /// Links stored.
    pub links: u64,
    /// The newest link's number.
    pub head: u64,
    /// The newest link's hash (hex).
    pub head_hash: String,
    /// Events found as their links list them.
    pub events_verified: u64,
    /// Events listed but gone, as a prune link allows.
    pub events_pruned: u64,
}

/// The outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// No problem found.
    pub intact: bool,
    /// Whose keys the signatures were checked with: `given` or `store`.
    pub keys: String,
    /// Every chain.
    pub chains: Vec<ChainSummary>,
    /// Problems found, the first [`MAX_LISTED`].
    pub problems: Vec<Problem>,
    /// All problems found.
    pub problems_total: u64,
}

/// Why `cluster` cannot be verified when the store has no chain of it (`"prd": no chain of
/// that cluster in the store (chains: prod)`), so that a typo is not an empty report.
pub fn unknown_cluster(
    store: &dyn Store,
    cluster: &str,
) -> kubetrail_store::Result<Option<String>> {
    let mut clusters: Vec<String> = store
        .chain_links()?
        .into_iter()
        .map(|l| l.cluster)
        .collect();
    clusters.sort();
    clusters.dedup();
    if clusters.iter().any(|c| c == cluster) {
        return Ok(None);
    }
    Ok(Some(format!(
        "{cluster:?}: no chain of that cluster in the store (chains: {})",
        if clusters.is_empty() {
            "none".to_string()
        } else {
            clusters.join(", ")
        }
    )))
}

pub(crate) struct Found {
    problems: Vec<Problem>,
    total: u64,
}

impl Found {
    pub(crate) fn add(&mut self, problem: Problem) {
        self.total += 1;
        if self.problems.len() < MAX_LISTED {
            self.problems.push(problem);
        }
    }
}

fn problem(kind: ProblemKind, link: &Link, detail: String) -> Problem {
    Problem {
        kind,
        cluster: link.cluster.clone(),
        key_id: Some(link.key_id.clone()),
        link: Some(link.seq),
        audit_id: None,
        detail,
    }
}

/// Verifies what `store` holds.
pub fn verify(store: &dyn Store, options: &Options) -> kubetrail_store::Result<Report> {
    let mut found = Found {
        problems: Vec::new(),
        total: 0,
    };
    let (keys, keys_from) = if options.keys.is_empty() {
        let keys = store
            .chain_public_keys()?
            .iter()
            .filter_map(|pem| PublicKey::from_pem(pem, std::path::Path::new("the store")).ok())
            .collect::<Vec<_>>();
        (keys, "store")
    } else {
        (options.keys.clone(), "given")
    };
    let keys: HashMap<&str, &PublicKey> = keys.iter().map(|k| (k.id(), k)).collect();
    let wanted = |cluster: &str| options.cluster.as_deref().is_none_or(|c| c == cluster);
    let mut chains: HashMap<(String, String), Vec<Link>> = HashMap::new();
    for l in store.chain_links()? {
        if wanted(&l.cluster) {
            chains
                .entry((l.cluster.clone(), l.key_id.clone()))
                .or_default()
                .push(l);
        }
    }
    let mut order: Vec<(String, String)> = chains.keys().cloned().collect();
    order.sort();
    // Per cluster: the batch links to check, and the prune links (created, pruned_before)
    // that account for old events gone.
    let mut batches: HashMap<String, Vec<Link>> = HashMap::new();
    let mut prunes: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    let mut summaries = Vec::new();
    for key in &order {
        let links = chains.get_mut(key).map(std::mem::take).unwrap_or_default();
        let summary = check_links(links, &keys, &mut found, &mut batches, &mut prunes);
        summaries.push(summary);
    }
    let in_window = |l: &Link| {
        options.from_micros.is_none_or(|f| l.last_micros >= f)
            && options.to_micros.is_none_or(|t| l.first_micros <= t)
            && options
                .created_from_micros
                .is_none_or(|c| l.created_micros >= c)
    };
    let mut clusters: Vec<&String> = batches.keys().collect();
    clusters.sort();
    let mut verified: HashMap<(String, String), (u64, u64)> = HashMap::new();
    let mut gone = Vec::new();
    for cluster in clusters {
        let links: Vec<&Link> = batches[cluster].iter().filter(|l| in_window(l)).collect();
        let no_prunes = Vec::new();
        let prunes = prunes.get(cluster).unwrap_or(&no_prunes);
        let mut start = 0;
        while start < links.len() {
            let mut end = start;
            let mut events = 0;
            while end < links.len() && (end == start || events < EVENTS_PER_ROUND) {
                events += links[end].events;
                end += 1;
            }
            check_events(
                store,
                cluster,
                &links[start..end],
                prunes,
                &mut found,
                &mut verified,
                &mut gone,
            )?;
            start = end;
        }
    }
    settle(store, gone, &keys, &mut found, &mut verified)?;
    for s in &mut summaries {
        if let Some((ok, pruned)) = verified.get(&(s.cluster.clone(), s.key_id.clone())) {
            s.events_verified = *ok;
            s.events_pruned = *pruned;
        }
    }
    let strays = store.chain_strays(20, options.settled_before_micros.unwrap_or(i64::MAX))?;
    for (cluster, count) in strays.counts.iter().filter(|(c, _)| wanted(c)) {
        let first: Vec<&(i64, Record)> = strays
            .first
            .iter()
            .filter(|(_, r)| &r.cluster == cluster)
            .collect();
        for (batch, r) in &first {
            found.add(Problem {
                kind: ProblemKind::OutsideChain,
                cluster: cluster.clone(),
                key_id: None,
                link: None,
                audit_id: Some(r.audit_id.clone()),
                detail: outside_detail(*batch, r),
            });
        }
        let rest = count.saturating_sub(first.len() as u64);
        if rest > 0 {
            found.add(Problem {
                kind: ProblemKind::OutsideChain,
                cluster: cluster.clone(),
                key_id: None,
                link: None,
                audit_id: None,
                detail: format!("{rest} more events of {cluster} belong to no link"),
            });
        }
    }
    if let Some(cp) = &options.checkpoint {
        check_checkpoint(cp, &summaries, &keys, &mut found, wanted);
        for p in rewritten_since(store, cp, options.cluster.as_deref())? {
            found.add(p);
        }
    }
    Ok(Report {
        intact: found.total == 0,
        keys: keys_from.into(),
        chains: summaries,
        problems: found.problems,
        problems_total: found.total,
    })
}

fn outside_detail(batch: i64, r: &Record) -> String {
    let what = format!(
        "{} {} at {} (stage {})",
        r.verb,
        r.resource,
        r.ts_micros,
        r.stage.map(|s| s.as_str()).unwrap_or("none")
    );
    if batch == 0 {
        format!(
            "{what} belongs to no link: stored before signing began or while no key was set, or inserted"
        )
    } else {
        format!(
            "{what} carries batch {batch}, which no link has: inserted, or its link was never stored"
        )
    }
}

/// Checks one chain's numbering, hashes and signatures; sorts its links into `batches` and
/// `prunes`.
fn check_links(
    mut links: Vec<Link>,
    keys: &HashMap<&str, &PublicKey>,
    found: &mut Found,
    batches: &mut HashMap<String, Vec<Link>>,
    prunes: &mut HashMap<String, Vec<(i64, i64)>>,
) -> ChainSummary {
    links.sort_by_key(|l| l.seq);
    let (cluster, key_id) = (links[0].cluster.clone(), links[0].key_id.clone());
    let key = keys.get(key_id.as_str()).copied();
    if key.is_none() {
        found.add(Problem {
            kind: ProblemKind::UnknownKey,
            cluster: cluster.clone(),
            key_id: Some(key_id.clone()),
            link: None,
            audit_id: None,
            detail: format!(
                "{} links are signed by key {key_id}, which is not trusted: pass its public key with --public-key",
                links.len()
            ),
        });
    }
    let mut before: Option<(u64, Hash)> = None;
    let mut trusted_prunes = Vec::new();
    for l in &links {
        let hash = l.hash();
        let signed = key.is_some_and(|k| k.verifies(&hash, &l.signature));
        // Only a prune link signed by a trusted key accounts for events gone.
        if signed && l.kind == LinkKind::Prune {
            trusted_prunes.push((l.created_micros, l.pruned_before));
        }
        if key.is_some() && !signed {
            found.add(problem(
                ProblemKind::BadSignature,
                l,
                format!(
                    "link {} is not signed by key {key_id}: it was changed after signing",
                    l.seq
                ),
            ));
        }
        let expected = before.map_or(1, |(seq, _)| seq + 1);
        match before {
            Some((seq, _)) if l.seq == seq => found.add(problem(
                ProblemKind::LinkRepeated,
                l,
                format!(
                    "two links claim number {seq}: one was inserted, or two writers share the key"
                ),
            )),
            _ if l.seq > expected => found.add(problem(
                ProblemKind::LinkMissing,
                l,
                if l.seq == expected + 1 {
                    format!("link {expected} is missing")
                } else {
                    format!("links {expected} to {} are missing", l.seq - 1)
                },
            )),
            _ => {}
        }
        let prev_hash = match before {
            Some((seq, h)) if seq + 1 == l.seq => Some(h),
            None if l.seq == 1 => Some([0; 32]),
            _ => None,
        };
        if prev_hash.is_some_and(|p| p != l.prev) {
            found.add(problem(
                ProblemKind::LinkOutOfOrder,
                l,
                format!(
                    "link {} does not follow link {}: the chain was rewritten or reordered there",
                    l.seq,
                    l.seq.saturating_sub(1)
                ),
            ));
        }
        before = Some((l.seq, hash));
    }
    let head = links.last().map_or((0, [0; 32]), |l| (l.seq, l.hash()));
    let count = links.len() as u64;
    prunes
        .entry(cluster.clone())
        .or_default()
        .extend(trusted_prunes);
    for l in links {
        if l.kind == LinkKind::Batch {
            batches.entry(l.cluster.clone()).or_default().push(l);
        }
    }
    ChainSummary {
        cluster,
        key_id,
        links: count,
        head: head.0,
        head_hash: hex(&head.1),
        events_verified: 0,
        events_pruned: 0,
    }
}

/// Whether a prune link made after a link (created at `created`) accounts for its event at
/// `ts` being gone.
fn pruned_by(prunes: &[(i64, i64)], created: i64, ts: i64) -> bool {
    prunes
        .iter()
        .any(|(made, before)| *made >= created && ts < *before)
}

/// A listed event with no row in its link's batch.
struct Gone {
    cluster: String,
    key_id: String,
    seq: u64,
    created_micros: i64,
    audit_id: String,
    stage: String,
    ts: i64,
    digest: Hash,
}

/// Most listed events without a row that are looked for elsewhere in the store.
const MAX_LOOKUPS: usize = 10_000;

/// Decides, once every link was read, what happened to listed events with no row in their
/// batch: taken by a retention that committed while verification ran (a prune link read now,
/// signed by a trusted key), or stored under another link too (two writers stored one event,
/// and ClickHouse merged the copies), or else deleted.
fn settle(
    store: &dyn Store,
    gone: Vec<Gone>,
    keys: &HashMap<&str, &PublicKey>,
    found: &mut Found,
    verified: &mut HashMap<(String, String), (u64, u64)>,
) -> kubetrail_store::Result<()> {
    if gone.is_empty() {
        return Ok(());
    }
    let mut prunes: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    for l in store.chain_links()? {
        let trusted = keys
            .get(l.key_id.as_str())
            .is_some_and(|k| k.verifies(&l.hash(), &l.signature));
        if trusted && l.kind == LinkKind::Prune {
            prunes
                .entry(l.cluster.clone())
                .or_default()
                .push((l.created_micros, l.pruned_before));
        }
    }
    for (looked, g) in gone.into_iter().enumerate() {
        let tally = verified
            .entry((g.cluster.clone(), g.key_id.clone()))
            .or_default();
        let cluster_prunes = prunes.get(&g.cluster).map_or(&[][..], Vec::as_slice);
        if pruned_by(cluster_prunes, g.created_micros, g.ts) {
            tally.1 += 1;
            continue;
        }
        if looked < MAX_LOOKUPS && stored_elsewhere(store, &g)? {
            tally.0 += 1;
            continue;
        }
        found.add(Problem {
            kind: ProblemKind::Deleted,
            cluster: g.cluster.clone(),
            key_id: Some(g.key_id.clone()),
            link: Some(g.seq),
            audit_id: Some(g.audit_id.clone()),
            detail: format!(
                "the event (stage {}, time {}) that link {} lists is gone, and no retention took it",
                g.stage, g.ts, g.seq
            ),
        });
    }
    Ok(())
}

/// Whether the store holds the event `g` stands for, as it was, under any link.
fn stored_elsewhere(store: &dyn Store, g: &Gone) -> kubetrail_store::Result<bool> {
    let filter = kubetrail_store::Filter {
        clusters: vec![g.cluster.clone()],
        audit_ids: vec![g.audit_id.clone()],
        time: kubetrail_store::TimeRange {
            from_micros: Some(g.ts),
            to_micros: Some(g.ts.saturating_add(1)),
        },
        ..kubetrail_store::Filter::default()
    };
    let page = store.query(&filter, None, 100)?;
    Ok(page.records.iter().any(|r| {
        r.stage.map(|s| s.as_str()).unwrap_or("") == g.stage
            && kubetrail_store::chain::record_digest(r) == g.digest
    }))
}

/// One listed event: its digest, and whether a row was found for it.
struct Expected {
    digest: Hash,
    seen: bool,
}

type Identity = (String, String, i64);

/// Checks the events of `links` (one cluster) against their manifests.
fn check_events(
    store: &dyn Store,
    cluster: &str,
    links: &[&Link],
    prunes: &[(i64, i64)],
    found: &mut Found,
    verified: &mut HashMap<(String, String), (u64, u64)>,
    gone: &mut Vec<Gone>,
) -> kubetrail_store::Result<()> {
    let ids: Vec<i64> = links.iter().map(|l| l.batch).collect();
    let mut manifests: HashMap<i64, Vec<Entry>> = HashMap::new();
    for (batch, entry) in store.chain_entries(cluster, &ids)? {
        manifests.entry(batch).or_default().push(entry);
    }
    let mut expected: HashMap<i64, (usize, HashMap<Identity, Vec<Expected>>)> = HashMap::new();
    for (i, l) in links.iter().enumerate() {
        let entries = manifests.remove(&l.batch).unwrap_or_default();
        // A link whose every event retention took may have lost its entries with them: any
        // row still carrying its batch is one inserted since.
        if entries.is_empty() && l.events > 0 && pruned_by(prunes, l.created_micros, l.last_micros)
        {
            verified
                .entry((l.cluster.clone(), l.key_id.clone()))
                .or_default()
                .1 += l.events;
            expected.insert(l.batch, (i, HashMap::new()));
            continue;
        }
        let mut digests: Vec<Hash> = entries.iter().map(|e| e.digest).collect();
        if manifest_digest(&mut digests) != l.digest {
            let what = if entries.is_empty() {
                "is missing"
            } else {
                "does not hash to the signed digest: an entry was changed, added or removed"
            };
            found.add(problem(
                ProblemKind::ManifestChanged,
                l,
                format!(
                    "the manifest of link {} {what}; its events cannot be checked",
                    l.seq
                ),
            ));
            continue;
        }
        let mut by_identity: HashMap<Identity, Vec<Expected>> = HashMap::new();
        for Entry {
            ts_micros,
            audit_id,
            stage,
            digest,
        } in entries
        {
            by_identity
                .entry((audit_id, stage, ts_micros))
                .or_default()
                .push(Expected {
                    digest,
                    seen: false,
                });
        }
        expected.insert(l.batch, (i, by_identity));
    }
    let mut rows_ok: HashMap<usize, u64> = HashMap::new();
    store.chain_events(cluster, &ids, &mut |batch, record| {
        let Some((i, by_identity)) = expected.get_mut(&batch) else {
            // The manifest could not be read: reported above.
            return;
        };
        let link = links[*i];
        let digest = kubetrail_store::chain::record_digest(&record);
        let identity = (
            record.audit_id.clone(),
            record.stage.map(|s| s.as_str()).unwrap_or("").to_string(),
            record.ts_micros,
        );
        let listed = by_identity.get_mut(&identity);
        let what = || {
            format!(
                "{} {} {}/{} (stage {}, time {})",
                record.verb,
                record.resource,
                record.namespace,
                record.name,
                identity.1,
                record.ts_micros
            )
        };
        let mut add = |kind, detail: String| {
            let mut p = problem(kind, link, detail);
            p.audit_id = Some(record.audit_id.clone());
            found.add(p);
        };
        match listed {
            None => add(
                ProblemKind::Inserted,
                format!(
                    "{} is in no manifest of link {}: inserted",
                    what(),
                    link.seq
                ),
            ),
            Some(entries) => {
                if let Some(e) = entries.iter_mut().find(|e| e.digest == digest && !e.seen) {
                    e.seen = true;
                    *rows_ok.entry(*i).or_default() += 1;
                } else if entries.iter().any(|e| e.digest == digest) {
                    add(
                        ProblemKind::Inserted,
                        format!("{} is stored twice: a copy was inserted", what()),
                    );
                } else if let Some(e) = entries.iter_mut().find(|e| !e.seen) {
                    e.seen = true;
                    add(
                        ProblemKind::Changed,
                        format!(
                            "{} differs from what link {} lists: changed after it was stored",
                            what(),
                            link.seq
                        ),
                    );
                } else {
                    add(
                        ProblemKind::Inserted,
                        format!("{} is a second, different row: inserted", what()),
                    );
                }
            }
        }
    })?;
    for (i, by_identity) in expected.into_values() {
        let link = links[i];
        let mut pruned = 0;
        for ((audit_id, stage, ts), entries) in by_identity {
            for e in entries.iter().filter(|e| !e.seen) {
                if pruned_by(prunes, link.created_micros, ts) {
                    pruned += 1;
                } else {
                    // Decided once every link is read: see `settle`.
                    gone.push(Gone {
                        cluster: link.cluster.clone(),
                        key_id: link.key_id.clone(),
                        seq: link.seq,
                        created_micros: link.created_micros,
                        audit_id: audit_id.clone(),
                        stage: stage.clone(),
                        ts,
                        digest: e.digest,
                    });
                }
            }
        }
        let tally = verified
            .entry((link.cluster.clone(), link.key_id.clone()))
            .or_default();
        tally.0 += rows_ok.get(&i).copied().unwrap_or(0);
        tally.1 += pruned;
    }
    Ok(())
}
