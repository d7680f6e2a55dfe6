//! The [`Store`] trait: what every backend provides, and nothing more.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kubetrail_model::Stage;

use crate::chain::{Chain, Link};
use crate::record::same_content;
use crate::{
    Aggregation, AggregationResult, AlertField, AlertFilter, AlertRecord, Cursor, Error, Filter,
    Page, Record, Result, identity_of,
};

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AppendOutcome {
    /// Records newly stored.
    pub stored: u64,
    /// Records already present (same identity and content), or repeated within the batch.
    pub duplicates: u64,
    /// Of the stored records, those that claim the identity of a different event stored
    /// before them ([`identity_of`]): both are kept, and this counts the conflict.
    pub conflicts: u64,
}

/// An identity as a backend reads it back: (cluster, auditID, stage as stored, time).
pub type StoredIdentity = (String, String, String, i64);

/// The identity of `record` as [`StoredIdentity`].
pub fn stored_identity(record: &Record) -> StoredIdentity {
    (
        record.cluster.clone(),
        record.audit_id.clone(),
        record.stage.map(Stage::as_str).unwrap_or("").to_string(),
        record.ts_micros,
    )
}

/// What to store of an append's batches, from [`plan_append`].
#[derive(Debug, Default)]
pub struct AppendPlan<'r> {
    /// Each batch's records to store, in order.
    pub rows: Vec<Vec<&'r Record>>,
    /// Each batch's outcome once those are stored.
    pub outcomes: Vec<AppendOutcome>,
}

/// Who already claims an identity.
enum Claim<'r> {
    /// A stored event, by its content hash (0: stored without one).
    Stored(i64),
    /// A record stored earlier in this append, or one found to be the same as a claim.
    Earlier(&'r Record),
}

/// Decides which records of an append's batches to store, as every backend must: as if the
/// batches were appended one after another, a record is a duplicate when an event with its
/// identity and the same content ([`same_content`]) is stored or comes earlier; a record whose
/// identity is claimed only by different events is stored too, and counted as a conflict.
///
/// `stored` gets the append's distinct records and answers the content hashes of the stored
/// events that share an identity with any of them. A stored event with the record's hash is
/// the same event; `text_of` is asked for a stored event's text only when the hashes differ
/// (a conflict, a retry re-serialized with its keys in another order, or an event stored
/// without a hash), which a retried batch never needs.
pub fn plan_append<'r, E>(
    batches: &[Vec<&'r Record>],
    stored: impl FnOnce(&[&'r Record]) -> Result<Vec<(StoredIdentity, i64)>, E>,
    mut text_of: impl FnMut(&StoredIdentity, i64) -> Result<Option<String>, E>,
) -> Result<AppendPlan<'r>, E> {
    // Exact repeats within the append (same identity and hash) are dropped before asking the
    // store. foldhash: the set lives for one call and needs no resistance to chosen keys.
    let mut seen = foldhash::HashSet::default();
    let distinct: Vec<&'r Record> = batches
        .iter()
        .flatten()
        .copied()
        .filter(|r| seen.insert((identity_of(r), r.content_hash)))
        .collect();
    drop(seen);
    let found = if distinct.is_empty() {
        Vec::new()
    } else {
        stored(&distinct)?
    };
    // Keyed by borrowed identities: nothing is copied per record on the usual path, where no
    // identity is claimed twice.
    type Key<'k> = (&'k str, &'k str, &'k str, i64);
    let key_of = |r: &'r Record| -> Key<'r> {
        (
            &r.cluster,
            &r.audit_id,
            r.stage.map(Stage::as_str).unwrap_or(""),
            r.ts_micros,
        )
    };
    let mut claims: foldhash::HashMap<Key<'_>, Vec<Claim<'r>>> = foldhash::HashMap::default();
    for ((cluster, audit_id, stage, ts), hash) in &found {
        claims
            .entry((cluster, audit_id, stage, *ts))
            .or_default()
            .push(Claim::Stored(*hash));
    }
    let mut plan = AppendPlan {
        rows: Vec::with_capacity(batches.len()),
        outcomes: Vec::with_capacity(batches.len()),
    };
    for batch in batches {
        let mut rows = Vec::new();
        let mut outcome = AppendOutcome::default();
        for &r in batch {
            let key = key_of(r);
            let Some(held) = claims.get_mut(&key) else {
                claims.insert(key, vec![Claim::Earlier(r)]);
                rows.push(r);
                outcome.stored += 1;
                continue;
            };
            let mut same = held.iter().any(|c| match c {
                Claim::Stored(h) => *h == r.content_hash,
                Claim::Earlier(e) => e.content_hash == r.content_hash && e.raw == r.raw,
            });
            if !same {
                for c in held.iter() {
                    let text = match c {
                        Claim::Earlier(e) => Some(std::borrow::Cow::Borrowed(e.raw.as_str())),
                        Claim::Stored(h) => {
                            text_of(&stored_identity(r), *h)?.map(std::borrow::Cow::Owned)
                        }
                    };
                    if text.is_some_and(|t| same_content(&t, &r.raw)) {
                        same = true;
                        break;
                    }
                }
            }
            if same {
                outcome.duplicates += 1;
            } else {
                outcome.stored += 1;
                outcome.conflicts += 1;
                rows.push(r);
            }
            // Either way its text now speaks for the identity: later copies are found by hash.
            held.push(Claim::Earlier(r));
        }
        plan.rows.push(rows);
        plan.outcomes.push(outcome);
    }
    Ok(plan)
}

/// What to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Delete events older than this (by event time).
    pub max_age: Option<Duration>,
    /// Delete the oldest events until the store is at most this large.
    pub max_bytes: Option<u64>,
}

/// What retention removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionOutcome {
    /// Events deleted.
    pub deleted: u64,
    /// Store size afterwards, in bytes.
    pub bytes_after: u64,
}

/// What a backend found damaged when it opened, and set aside for recovery instead of letting
/// the engine overwrite it: today, a DuckDB write-ahead log that could not be replayed to its
/// end (events committed in its lost part are not in the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The damaged file.
    pub damaged: PathBuf,
    /// Its bytes as they were found, copied before the engine touched them.
    pub backup: PathBuf,
    /// Its size as it was found, in bytes.
    pub bytes: u64,
    /// What the engine said about it.
    pub reason: String,
}

/// Rows outside every chain ([`Store::chain_strays`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Strays {
    /// How many, per cluster.
    pub counts: Vec<(String, u64)>,
    /// The first ones, with the batch id they carry (0: none).
    pub first: Vec<(i64, Record)>,
}

/// An audit event store. Implementations are safe to share between threads.
pub trait Store: Send + Sync {
    /// Stores a batch. Idempotent: storing an event again changes nothing — a record is the
    /// same event as a stored one when it has its identity ([`identity_of`]) and content
    /// ([`same_content`](crate::same_content)); a different event that claims a stored
    /// identity is stored as well, as a conflict ([`plan_append`]). When this returns `Ok`,
    /// the batch is durable.
    fn append(&self, batch: &[Record]) -> Result<AppendOutcome>;

    /// Stores several batches at once (one commit where the backend can), with each batch's
    /// own outcome, as if they were appended one after the other in this order: an event in
    /// two of them counts as stored in the first and as a duplicate in the later one. Either
    /// all are durable when this returns `Ok`, or none is acknowledged.
    fn append_all(&self, batches: &[&[Record]]) -> Result<Vec<AppendOutcome>> {
        batches.iter().map(|b| self.append(b)).collect()
    }

    /// Starts a bulk load (an import): batches appended one after another as with
    /// [`Store::append`], except that they are durable only once [`BulkAppend::finish`]
    /// returns `Ok` — a backend may keep one transaction open over many batches and commit now
    /// and then, which lets it write whole compressed blocks instead of logging every row. An
    /// error, or dropping the load unfinished, may lose the batches since the last commit:
    /// appending them again is safe, as every append is idempotent. The default appends batch
    /// by batch.
    fn bulk(&self) -> Result<Box<dyn BulkAppend + '_>> {
        Ok(Box::new(EachBatch(self)))
    }

    /// Events matching `filter`, newest first, at most `limit`, continuing after `cursor`.
    fn query(&self, filter: &Filter, cursor: Option<&Cursor>, limit: usize) -> Result<Page>;

    /// [`query`](Self::query) for answers that read the typed columns only: each record's
    /// `raw` is empty but for impersonated requests (whose impersonated user's groups only the
    /// text holds). A backend that can leave the text unread does; the same page otherwise.
    fn query_heads(&self, filter: &Filter, cursor: Option<&Cursor>, limit: usize) -> Result<Page> {
        self.query(filter, cursor, limit)
    }

    /// Counts, top-N and time histograms over the events matching `filter`.
    fn aggregate(&self, filter: &Filter, aggregation: &Aggregation) -> Result<AggregationResult>;

    /// Applies a retention policy.
    fn apply_retention(&self, retention: &Retention) -> Result<RetentionOutcome>;

    /// Number of stored events.
    fn count(&self) -> Result<u64>;

    /// Bytes the store occupies.
    fn size_bytes(&self) -> Result<u64>;

    /// The schema version the store is at.
    fn schema_version(&self) -> Result<u32>;

    /// Whether the store can store and give back events now, for readiness: reads stored data
    /// (the newest event), not only a ping, and answers the [`Error::Damaged`](crate::Error)
    /// a backend remembers once it found its data damaged. The default reads one page of one
    /// event.
    fn check(&self) -> Result<()> {
        self.query(&Filter::default(), None, 1).map(|_| ())
    }

    /// What the backend found damaged and set aside when it opened (`None`: nothing), for
    /// the operator and a metric. The default has nothing to report.
    fn recovery_report(&self) -> Option<RecoveryReport> {
        None
    }

    /// Stores alerts, idempotently: an alert is unique by (cluster, rule, auditID) and one
    /// already stored (or earlier in the batch) changes nothing. Returns how many were new.
    /// Durable when this returns `Ok`. The default (test doubles) keeps none and says so.
    fn append_alerts(&self, alerts: &[AlertRecord]) -> Result<usize> {
        let _ = alerts;
        Err(Error::Internal("this store keeps no alerts".into()))
    }

    /// Alerts matching `filter`, newest first (ties by rule, then auditID), at most `limit`.
    fn query_alerts(&self, filter: &AlertFilter, limit: usize) -> Result<Vec<AlertRecord>> {
        let _ = (filter, limit);
        Err(Error::Internal("this store keeps no alerts".into()))
    }

    /// Alerts matching `filter` counted by `field`, most first (ties by value).
    fn count_alerts(&self, filter: &AlertFilter, field: AlertField) -> Result<Vec<(String, u64)>> {
        let _ = (filter, field);
        Err(Error::Internal("this store keeps no alerts".into()))
    }

    /// Links what is appended from now on into `chain` ([`crate::chain`]), going on from the
    /// links of its key the store holds, and keeps its public key beside them. Retention then
    /// adds a prune link per chain.
    fn set_chain(&self, chain: Arc<Chain>) -> Result<()> {
        let _ = chain;
        Err(Error::Invalid("this store keeps no hash chain".into()))
    }

    /// Every link stored, of every cluster and key, in no particular order.
    fn chain_links(&self) -> Result<Vec<Link>> {
        Ok(Vec::new())
    }

    /// The public keys (PEM) of the writers whose chains the store holds, as it keeps them.
    fn chain_public_keys(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// The manifest entries of `cluster`'s links with these batch ids, each with its batch:
    /// every stored row (a forged one too).
    fn chain_entries(
        &self,
        cluster: &str,
        batches: &[i64],
    ) -> Result<Vec<(i64, crate::chain::Entry)>> {
        let _ = (cluster, batches);
        Ok(Vec::new())
    }

    /// Calls `each` with every stored row of `cluster` whose `chain_batch` is one of
    /// `batches`, with that batch id: every physical row, before any deduplication.
    fn chain_events(
        &self,
        cluster: &str,
        batches: &[i64],
        each: &mut dyn FnMut(i64, Record),
    ) -> Result<()> {
        let _ = (cluster, batches, each);
        Ok(())
    }

    /// The rows that belong to no batch link of their cluster (stored outside any chain, or
    /// inserted): how many per cluster, and the first `limit` with their batch ids. Rows that
    /// carry a batch id and were received at `settled_before` or later are left out: their
    /// link may be on its way (a backend that writes events and links apart).
    fn chain_strays(&self, limit: usize, settled_before: i64) -> Result<Strays> {
        let _ = (limit, settled_before);
        Ok(Strays::default())
    }
}

/// A bulk load in progress, from [`Store::bulk`].
pub trait BulkAppend {
    /// Appends a batch; its outcome is final, but the batch is durable only after
    /// [`BulkAppend::finish`].
    fn append(&mut self, batch: &[Record]) -> Result<AppendOutcome>;

    /// Makes everything appended durable.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// The default bulk load: every batch its own append, durable at once.
struct EachBatch<'s, S: Store + ?Sized>(&'s S);

impl<S: Store + ?Sized> BulkAppend for EachBatch<'_, S> {
    fn append(&mut self, batch: &[Record]) -> Result<AppendOutcome> {
        self.0.append(batch)
    }

    fn finish(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(audit_id: &str, raw: &str) -> Record {
        let e = kubetrail_model::decode_event(raw.as_bytes()).unwrap_or_default();
        let mut r = Record::from_event(e, raw, "c", 1);
        r.audit_id = audit_id.into();
        r.ts_micros = 10;
        r
    }

    type Found = Vec<(StoredIdentity, i64)>;

    fn plan<'r>(batches: &[&'r [Record]], stored: &[(&Record, &str)]) -> (AppendPlan<'r>, usize) {
        let found: Found = stored
            .iter()
            .map(|(r, _)| (stored_identity(r), r.content_hash))
            .collect();
        let mut asked = 0;
        let batches: Vec<Vec<&Record>> = batches.iter().map(|b| b.iter().collect()).collect();
        let plan = plan_append::<()>(
            &batches,
            |_| Ok(found),
            |identity, hash| {
                asked += 1;
                Ok(stored
                    .iter()
                    .find(|(r, _)| stored_identity(r) == *identity && r.content_hash == hash)
                    .map(|(_, t)| t.to_string()))
            },
        )
        .unwrap();
        (plan, asked)
    }

    const A: &str =
        r#"{"auditID":"x","stage":"ResponseComplete","verb":"get","user":{"username":"alice"}}"#;
    const A_REORDERED: &str =
        r#"{"user":{"username":"alice"},"verb":"get","stage":"ResponseComplete","auditID":"x"}"#;
    const B: &str = r#"{"auditID":"x","stage":"ResponseComplete","verb":"delete","user":{"username":"mallory"}}"#;

    #[test]
    fn a_retry_is_a_duplicate_without_reading_stored_text() {
        let a = record("x", A);
        let batch = [a.clone(), a.clone()];
        let (p, asked) = plan(&[&batch], &[(&a, A)]);
        assert_eq!(p.rows[0].len(), 0);
        assert_eq!(
            p.outcomes[0],
            AppendOutcome {
                stored: 0,
                duplicates: 2,
                conflicts: 0
            }
        );
        assert_eq!(asked, 0, "equal hashes decide");
    }

    #[test]
    fn a_different_event_with_a_stored_identity_is_kept_as_a_conflict() {
        let (a, b) = (record("x", A), record("x", B));
        let batch = [b.clone(), b.clone()];
        let (p, asked) = plan(&[&batch], &[(&a, A)]);
        assert_eq!(p.rows[0].len(), 1);
        assert_eq!(p.rows[0][0].raw, B);
        assert_eq!(
            p.outcomes[0],
            AppendOutcome {
                stored: 1,
                duplicates: 1,
                conflicts: 1
            }
        );
        assert_eq!(asked, 1, "the stored text is read to compare");
    }

    #[test]
    fn key_order_alone_is_a_duplicate() {
        let (a, again) = (record("x", A), record("x", A_REORDERED));
        let (p, _) = plan(&[std::slice::from_ref(&again)], &[(&a, A)]);
        assert_eq!(
            p.outcomes[0],
            AppendOutcome {
                stored: 0,
                duplicates: 1,
                conflicts: 0
            }
        );
        // And within one append.
        let both = [a.clone(), again];
        let (p, _) = plan(&[&both], &[]);
        assert_eq!(
            p.outcomes[0],
            AppendOutcome {
                stored: 1,
                duplicates: 1,
                conflicts: 0
            }
        );
    }

    #[test]
    fn events_stored_without_a_hash_are_compared_by_text() {
        let a = record("x", A);
        let mut old = a.clone();
        old.content_hash = 0;
        let (p, asked) = plan(&[std::slice::from_ref(&a)], &[(&old, A)]);
        assert_eq!(p.outcomes[0].duplicates, 1);
        assert_eq!(asked, 1);
    }

    #[test]
    fn batches_are_taken_in_order() {
        let (a, b) = (record("x", A), record("x", B));
        let first = [a.clone()];
        let second = [b.clone(), a.clone()];
        let (p, _) = plan(&[&first, &second], &[]);
        assert_eq!(
            p.outcomes[0],
            AppendOutcome {
                stored: 1,
                duplicates: 0,
                conflicts: 0
            }
        );
        assert_eq!(
            p.outcomes[1],
            AppendOutcome {
                stored: 1,
                duplicates: 1,
                conflicts: 1
            }
        );
        let other_time = Record {
            ts_micros: 11,
            ..b.clone()
        };
        let apart = [a, other_time];
        let (p, _) = plan(&[&apart], &[]);
        assert_eq!(
            p.outcomes[0].conflicts, 0,
            "another time is another identity"
        );
    }
}
