//! What each write of an object's history changed: the history's requests walked oldest first,
//! one [`Trail`] per object (cluster, group, resource, namespace, name), each write a [`Step`].

use std::collections::HashMap;

use kubetrail_diff::{Step, Trail};
use kubetrail_store::Record;

/// The object a record is about, as a history keys it.
fn object_key(r: &Record) -> (&str, &str, &str, &str, &str) {
    (&r.cluster, &r.api_group, &r.resource, &r.namespace, &r.name)
}

/// The step of each record of a history (oldest first, as [`requests`](crate::requests) reads
/// it), in the same order. A record whose event does not decode has no step.
pub fn history_steps(records: &[Record]) -> Vec<Option<Step>> {
    let mut trails: HashMap<(&str, &str, &str, &str, &str), Trail> = HashMap::new();
    records
        .iter()
        .map(|r| {
            let event = kubetrail_model::decode_event(r.raw.as_bytes()).ok()?;
            Some(trails.entry(object_key(r)).or_default().step(&event))
        })
        .collect()
}

/// Whether "who changed it" leaves the step out by default: a no-op, or a dry run.
pub fn hidden_by_default(step: &Step) -> bool {
    step.noop || step.dry_run
}
