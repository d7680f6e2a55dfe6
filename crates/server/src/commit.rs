//! Group commit: one thread appends to the store, taking the batches of all requests waiting
//! at that moment into one [`Store::append_all`], so concurrent senders (several apiservers,
//! many agents) share the fixed cost of a commit. Each request still gets its own outcome and
//! is answered only once the commit holding it is durable. Alone, a batch is committed at
//! once: grouping adds no waiting.

use std::sync::Arc;
use std::sync::mpsc;

use kubetrail_store::{AppendOutcome, Error, ErrorKind, Record, Store};
use tokio::sync::oneshot;

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
}

/// The same failure for every request of a failed group.
fn share(e: &Error) -> Error {
    match e.kind() {
        ErrorKind::Invalid => Error::Invalid(e.to_string()),
        ErrorKind::Unavailable | ErrorKind::Internal => {
            Error::db("committing", std::io::Error::other(e.to_string()))
        }
    }
}

impl Committer {
    /// Starts the committing thread over `store`.
    pub(crate) fn start(store: Arc<dyn Store>) -> std::io::Result<Committer> {
        let (tx, rx) = mpsc::channel::<Job>();
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
                    let batches: Vec<&[Record]> =
                        jobs.iter().map(|j| j.records.as_slice()).collect();
                    let result = store.append_all(&batches);
                    drop(batches);
                    match result {
                        Ok(outcomes) => {
                            for (job, outcome) in jobs.into_iter().zip(outcomes) {
                                // The request may have gone (client disconnected): nothing to do.
                                let _ = job.reply.send(Ok(outcome));
                            }
                        }
                        Err(e) => {
                            for job in jobs {
                                let _ = job.reply.send(Err(share(&e)));
                            }
                        }
                    }
                }
            })?;
        Ok(Committer { tx })
    }

    /// Commits `records`; returns once they are durable.
    pub(crate) async fn commit(&self, records: Vec<Record>) -> Result<AppendOutcome, Error> {
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
}
