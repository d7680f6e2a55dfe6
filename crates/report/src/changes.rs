//! What each write of an object's history changed: the history's requests walked oldest first,
//! one [`Trail`] per object (cluster, group, resource, namespace, name), each write a [`Step`];
//! and [`changes`], the newest writes of a scope, each against its object's state before.

use std::collections::HashMap;

use kubetrail_diff::{Step, Trail};
use kubetrail_store::{Cursor, Filter, Page, Record, ResourceSelector, Result, TimeRange};

/// Writes of an object read before the oldest one a [`changes`] feed shows of it, to know the
/// state it changed: one with a body is enough, the rest allow for writes that carry none.
pub const CHANGES_CONTEXT: usize = 32;

/// The newest writes of an object read to know the state before the writes shown; older writes
/// than these are shown without their changes.
pub const DIFF_WINDOW: usize = 5000;

/// A stored event as the steps are looked up by: (cluster, auditID, event time).
pub type EventKey = (String, String, i64);

/// The key of `r`.
pub fn event_key(r: &Record) -> EventKey {
    (r.cluster.clone(), r.audit_id.clone(), r.ts_micros)
}

/// An object, as a history keys it: cluster, group, resource, namespace, name.
type ObjectKey<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);

/// The object a record is about, as a history keys it.
fn object_key(r: &Record) -> ObjectKey<'_> {
    (&r.cluster, &r.api_group, &r.resource, &r.namespace, &r.name)
}

/// The step of each record of a history (oldest first, as [`requests`](crate::requests) reads
/// it), in the same order. A record whose event does not decode has no step.
pub fn history_steps(records: &[Record]) -> Vec<Option<Step>> {
    let mut trails: HashMap<ObjectKey<'_>, Trail> = HashMap::new();
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

/// The newest `limit` writes `scope` selects (one event per request), newest first, each with
/// what it changed ([`steps_of`]). `page` is the local store, or a server asked over HTTP.
pub fn changes<E: From<kubetrail_store::Error>>(
    scope: &Filter,
    limit: usize,
    mut page: impl FnMut(&Filter, Option<&Cursor>, usize) -> std::result::Result<Page, E>,
) -> std::result::Result<Vec<(Record, Option<Step>)>, E> {
    // Every write in scope (a scope of reads only holds none).
    let Some(writes_filter) = crate::writes(&crate::base(scope))? else {
        return Ok(Vec::new());
    };
    let mut writes = crate::read_requests(&writes_filter, limit, &mut page)?;
    writes.reverse();
    let steps = steps_of(&writes, page)?;
    Ok(writes.into_iter().zip(steps).collect())
}

/// The step of each of `writes` (one event per request, in any order). An update or patch is
/// stepped against its object's state before, read from that object's history: its writes
/// from the oldest of `writes` to the newest (at most [`DIFF_WINDOW`]; other users' writes
/// between them included) and [`CHANGES_CONTEXT`] older ones; other writes are stepped alone.
/// A write whose event does not decode has no step.
pub fn steps_of<E: From<kubetrail_store::Error>>(
    writes: &[Record],
    mut page: impl FnMut(&Filter, Option<&Cursor>, usize) -> std::result::Result<Page, E>,
) -> std::result::Result<Vec<Option<Step>>, E> {
    let mut steps: HashMap<EventKey, Step> = HashMap::new();
    // The time span, per object, of the writes whose step depends on the state before.
    let mut span_of: HashMap<ObjectKey<'_>, (i64, i64)> = HashMap::new();
    for w in writes {
        let history = if depends_on_state(w) {
            history_until(w)?
        } else {
            None
        };
        if history.is_none() {
            // Its own history: a create, a delete, a failed write, a write naming no object.
            if let Ok(event) = kubetrail_model::decode_event(w.raw.as_bytes()) {
                steps.insert(event_key(w), Trail::new().step(&event));
            }
            continue;
        }
        let span = span_of
            .entry(object_key(w))
            .or_insert((w.ts_micros, w.ts_micros));
        span.0 = span.0.min(w.ts_micros);
        span.1 = span.1.max(w.ts_micros);
    }
    for w in writes {
        let Some(&(oldest, newest)) = span_of.get(&object_key(w)) else {
            continue;
        };
        if steps.contains_key(&event_key(w)) {
            continue;
        }
        let Some(mut history) = history_until(w)? else {
            continue;
        };
        history.time.to_micros = Some(newest.saturating_add(1));
        let mut within = history.clone();
        within.time.from_micros = Some(oldest);
        history.time.to_micros = Some(oldest);
        let mut records = crate::read_requests(&history, CHANGES_CONTEXT, &mut page)?;
        records.extend(crate::read_requests(&within, DIFF_WINDOW, &mut page)?);
        let found = history_steps(&records);
        steps.extend(
            records
                .iter()
                .zip(found)
                .filter_map(|(r, s)| Some((event_key(r), s?))),
        );
        span_of.remove(&object_key(w));
    }
    Ok(writes.iter().map(|w| steps.remove(&event_key(w))).collect())
}

/// Whether the step of `w` depends on its object's state before: a successful update or patch
/// of the object or its status that carries a body. Creates, deletes, failed writes, other
/// subresources' writes and writes logged at Metadata level are stepped alone ([`Trail::step`]
/// gives them the same step either way), so a question over many bodiless writes (leases)
/// reads no history.
fn depends_on_state(w: &Record) -> bool {
    w.level
        .is_some_and(|l| l >= kubetrail_model::Level::Request)
        && matches!(w.verb.as_str(), "update" | "patch")
        && matches!(w.subresource.as_str(), "" | "status")
        && w.code.is_none_or(|c| (200..300).contains(&c))
}

/// Whether "who changed it" leaves the step out by default: a no-op, or a dry run.
pub fn hidden_by_default(step: &Step) -> bool {
    step.noop || step.dry_run
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubetrail_model::{Level, Stage};
    use kubetrail_testsuite::conformance::{T0, record};

    fn write(id: &str, verb: &str, level: Level, uri: &str) -> Record {
        let mut r = record("c1", id, Some(Stage::ResponseComplete), T0);
        r.verb = verb.into();
        r.level = Some(level);
        r.request_uri = uri.into();
        r.raw = format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"{level:?}","auditID":"{id}","stage":"ResponseComplete","verb":"{verb}","requestURI":"{uri}","objectRef":{{"resource":"pods","namespace":"default","name":"web-1","apiVersion":"v1"}},"responseStatus":{{"code":200}}}}"#
        );
        r
    }

    #[test]
    fn writes_whose_step_needs_no_state_read_no_history() {
        let uri = "/api/v1/namespaces/default/pods/web-1";
        let writes = [
            write(
                "u1",
                "update",
                Level::Metadata,
                &format!("{uri}?dryRun=All"),
            ),
            write("d1", "delete", Level::RequestResponse, uri),
            write(
                "c1",
                "create",
                Level::Request,
                "/api/v1/namespaces/default/pods",
            ),
        ];
        let steps = steps_of(&writes, |_, _, _| -> Result<Page> {
            panic!("no history is read")
        })
        .unwrap();
        let steps: Vec<Step> = steps.into_iter().map(Option::unwrap).collect();
        assert_eq!(steps[0].basis, kubetrail_diff::Basis::NoBody);
        assert!(steps[0].dry_run && !steps[0].noop);
        assert_eq!(steps[1].basis, kubetrail_diff::Basis::Deleted);
        // A patch with a body is stepped on its object's history: asked once for the writes
        // before it and once for those it spans.
        let patch = write("p1", "patch", Level::Request, uri);
        let mut asked = Vec::new();
        steps_of(&[patch], |f, _, _| -> Result<Page> {
            asked.push((f.names.clone(), f.time));
            Ok(Page {
                records: Vec::new(),
                next: None,
            })
        })
        .unwrap();
        assert_eq!(asked.len(), 2, "{asked:?}");
        assert!(asked.iter().all(|(names, _)| names == &["web-1"]));
        assert_eq!(asked[0].1.to_micros, Some(T0), "the writes before it");
        assert_eq!(
            (asked[1].1.from_micros, asked[1].1.to_micros),
            (Some(T0), Some(T0 + 1))
        );
    }
}
