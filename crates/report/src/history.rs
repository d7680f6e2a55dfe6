//! One object's history: every write to it (create, update, patch, delete, including writes
//! to its subresources), one event per request. The HTTP API, the command line and the web UI
//! ask it as [`history_filter`] (checked once, before the store is asked) and read it a page at
//! a time or whole with [`requests`].

use kubetrail_store::{Cursor, Filter, Page, Record, Result, StageSelection, Store};

use crate::WRITE_VERBS;

/// Most events one store page holds when a history is read whole.
const STORE_PAGE: usize = 5000;

/// The question "what happened to this object": `filter` must name one resource and one
/// object; without verbs it asks for every write. One event per request.
pub fn history_filter(filter: &Filter) -> Result<Filter> {
    if filter.resources.len() != 1 || filter.names.len() != 1 {
        return Err(kubetrail_store::Error::Invalid(
            "a history needs one resource and one name: resource=deployments.apps&name=nginx"
                .into(),
        ));
    }
    let mut f = filter.clone();
    if f.verbs.is_empty() {
        f.verbs = WRITE_VERBS.iter().map(|v| v.to_string()).collect();
    }
    f.stages = StageSelection::Final;
    Ok(f)
}

/// The newest `limit` requests `filter` selects (one event per request), oldest first: an
/// answer read whole, page after page.
pub fn requests(store: &dyn Store, filter: &Filter, limit: usize) -> Result<Vec<Record>> {
    read_requests(filter, limit, |f, cursor, n| store.query(f, cursor, n))
}

/// [`requests`] over any source of pages (the local store, or a server asked over HTTP).
pub fn read_requests<E>(
    filter: &Filter,
    limit: usize,
    mut page: impl FnMut(&Filter, Option<&Cursor>, usize) -> std::result::Result<Page, E>,
) -> std::result::Result<Vec<Record>, E> {
    let filter = Filter {
        stages: StageSelection::Final,
        ..filter.clone()
    };
    let mut out = Vec::new();
    let mut cursor = None;
    while out.len() < limit {
        let next = page(
            &filter,
            cursor.as_ref(),
            (limit - out.len()).min(STORE_PAGE),
        )?;
        out.extend(next.records);
        match next.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    out.reverse();
    Ok(out)
}
