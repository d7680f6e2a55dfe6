//! Group commit: one thread appends to the store, taking the batches of all requests waiting
//! at that moment into one [`Store::append_all`], so concurrent senders (several apiservers,
//! many agents) share the fixed cost of a commit. Each request still gets its own outcome and
//! is answered only once the commit holding it is durable. Alone, a batch is committed at
//! once: grouping adds no waiting.
//!
//! A committed group goes on to live detection ([`crate::detection`]), when it runs, by a
//! queue push that never waits: detection never delays an acknowledgement.
//!
//! A commit that fails is never acknowledged: every request of the group gets the error (503
//! for an unavailable store, so the sender retries). Once the store says it is damaged
//! ([`Error::is_damaged`]), the committer remembers it: later batches are refused with that
//! error without touching the store, and readiness reports it, until kubetrail is restarted
//! on a repaired store.

use std::sync::mpsc;
use std::sync::{Arc, OnceLock};

use kubetrail_store::{AppendOutcome, Error, Record, Store};
use tokio::sync::oneshot;

use crate::detection::Detector;

/// Most events in one group commit.
const MAX_GROUP_EVENTS: usize = 50_000;
/// Most requests in one group commit.
const MAX_GROUP_BATCHES: usize = 64;

struct Job {
    records: Vec<Record>,
    reply: oneshot::Sender<Result<AppendOutcome, Error>>,
}

/// Hands batches to the committing thread.
pub(crate) struct Committer {
    tx: mpsc::Sender<Job>,
    /// The damage the store reported, once it did.
    failure: Arc<OnceLock<Error>>,
    /// Where committed events go next, once detection runs.
    detector: Arc<OnceLock<Arc<Detector>>>,
}

/// Remembers `e` if it says the store is damaged (the first such error is kept).
fn note(failure: &OnceLock<Error>, e: &Error) {
    if e.is_damaged() && failure.set(e.clone()).is_ok() {
        tracing::error!(
            error = %e,
            "the store is damaged: batches are refused (503) and /readyz fails until it is \
             repaired and kubetrail restarted"
        );
    }
}

/// One group's outcomes: the store's, or its error for every request of the group. A store
/// that answers fewer outcomes than batches, or panics, acknowledges nothing.
fn commit_group(store: &dyn Store, batches: &[&[Record]]) -> Result<Vec<AppendOutcome>, Error> {
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.append_all(batches)))
            .unwrap_or_else(|_| {
                Err(Error::db(
                    "committing",
                    std::io::Error::other("the store panicked while appending"),
                ))
            });
    match result {
        Ok(outcomes) if outcomes.len() != batches.len() => Err(Error::db(
            "committing",
            std::io::Error::other(format!(
                "the store answered {} outcomes for {} batches",
                outcomes.len(),
                batches.len()
            )),
        )),
        other => other,
    }
}

impl Committer {
    /// Starts the committing thread over `store`.
    pub(crate) fn start(store: Arc<dyn Store>) -> std::io::Result<Committer> {
        let (tx, rx) = mpsc::channel::<Job>();
        let failure = Arc::new(OnceLock::new());
        let failed = failure.clone();
        let detector: Arc<OnceLock<Arc<Detector>>> = Arc::new(OnceLock::new());
        let detect = detector.clone();
        std::thread::Builder::new()
            .name("kubetrail-commit".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut events = first.records.len();
                    let mut jobs = vec![first];
                    while events < MAX_GROUP_EVENTS && jobs.len() < MAX_GROUP_BATCHES {
                        match rx.try_recv() {
                            Ok(job) => {
                                events += job.records.len();
                                jobs.push(job);
                            }
                            Err(_) => break,
                        }
                    }
                    let result = match failed.get() {
                        Some(e) => Err(Error::clone(e)),
                        None => {
                            let batches: Vec<&[Record]> =
                                jobs.iter().map(|j| j.records.as_slice()).collect();
                            commit_group(store.as_ref(), &batches)
                        }
                    };
                    match result {
                        Ok(outcomes) => {
                            for (job, outcome) in jobs.into_iter().zip(outcomes) {
                                // Queued before the answer (a queue push, never a wait), so
                                // that a caller who saw the answer finds it queued.
                                if let Some(d) = detect.get() {
                                    d.submit(job.records);
                                }
                                // The request may have gone (client disconnected): nothing to do.
                                let _ = job.reply.send(Ok(outcome));
                            }
                        }
                        Err(e) => {
                            note(&failed, &e);
                            for job in jobs {
                                let _ = job.reply.send(Err(e.clone()));
                            }
                        }
                    }
                }
            })?;
        Ok(Committer {
            tx,
            failure,
            detector,
        })
    }

    /// Commits `records`; returns once they are durable.
    pub(crate) async fn commit(&self, records: Vec<Record>) -> Result<AppendOutcome, Error> {
        if let Some(e) = self.failure.get() {
            return Err(e.clone());
        }
        let (reply, answer) = oneshot::channel();
        let gone = || {
            Error::db(
                "committing",
                std::io::Error::other("the commit thread stopped"),
            )
        };
        self.tx.send(Job { records, reply }).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// Hands every later committed group to `detector`; false when one was set already.
    pub(crate) fn detect_with(&self, detector: Arc<Detector>) -> bool {
        self.detector.set(detector).is_ok()
    }

    /// The damage the store reported, if it did.
    pub(crate) fn failure(&self) -> Option<&Error> {
        self.failure.get()
    }

    /// Remembers damage found outside a commit (by the readiness check).
    pub(crate) fn note_failure(&self, e: &Error) {
        note(&self.failure, e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_damage_is_remembered() {
        let failure = OnceLock::new();
        note(&failure, &Error::db("x", std::io::Error::other("busy")));
        assert!(failure.get().is_none());
        let damaged = Error::damaged("x", std::io::Error::other("Corrupt database file"));
        note(&failure, &damaged);
        note(
            &failure,
            &Error::damaged("y", std::io::Error::other("later")),
        );
        assert!(
            failure
                .get()
                .is_some_and(|e| e.to_string().contains("Corrupt")),
            "the first is kept"
        );
    }
}
