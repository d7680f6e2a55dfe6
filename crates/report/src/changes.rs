//! What each write of an object's history changed: the history's requests walked oldest first,
//! one [`Trail`] per object (cluster, group, resource, namespace, name), each write a [`Step`].

use std::collections::HashMap;

use kubetrail_diff::{Step, Trail};
use kubetrail_store::{Cursor, Filter, Page, Record, ResourceSelector, Result, TimeRange};

/// The newest writes of an object read to know the state before the writes shown; older writes
/// than these are shown without their changes.
pub const DIFF_WINDOW: usize = 5000;

/// A stored event as the steps are looked up by: (cluster, auditID, event time).
pub type EventKey = (String, String, i64);

/// The key of `r`.
pub fn event_key(r: &Record) -> EventKey {
    (r.cluster.clone(), r.audit_id.clone(), r.ts_micros)
}

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

/// The step of each of the newest [`DIFF_WINDOW`] writes the history `filter` selects (see
/// [`history_filter`](crate::history_filter)), by event, read a page at a time from `page`
/// (the local store, or a server asked over HTTP).
pub fn steps_by_event<E>(
    filter: &Filter,
    page: impl FnMut(&Filter, Option<&Cursor>, usize) -> std::result::Result<Page, E>,
) -> std::result::Result<HashMap<EventKey, Step>, E> {
    let records = crate::read_requests(filter, DIFF_WINDOW, page)?;
    let steps = history_steps(&records);
    Ok(records
        .iter()
        .zip(steps)
        .filter_map(|(r, s)| Some((event_key(r), s?)))
        .collect())
}

/// The history of the object `write` is about, up to and including `write`; `None` when the
/// write names no object.
pub fn history_until(write: &Record) -> Result<Option<Filter>> {
    if write.name.is_empty() || write.resource.is_empty() {
        return Ok(None);
    }
    let resource = ResourceSelector {
        group: Some(write.api_group.clone()),
        resource: Some(write.resource.clone()),
        subresource: None,
    };
    crate::history_filter(&Filter {
        clusters: vec![write.cluster.clone()],
        resources: vec![resource],
        namespaces: vec![write.namespace.clone()],
        names: vec![write.name.clone()],
        time: TimeRange {
            from_micros: None,
            to_micros: Some(write.ts_micros.saturating_add(1)),
        },
        ..Filter::default()
    })
    .map(Some)
}

/// Whether "who changed it" leaves the step out by default: a no-op, or a dry run.
pub fn hidden_by_default(step: &Step) -> bool {
    step.noop || step.dry_run
}
