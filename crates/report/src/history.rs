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
    page: impl FnMut(&Filter, Option<&Cursor>, usize) -> std::result::Result<Page, E>,
) -> std::result::Result<Vec<Record>, E> {
    let mut out = Vec::new();
    each_request(filter, limit, STORE_PAGE, page, |r| out.push(r))?;
    out.reverse();
    Ok(out)
}

/// Visits the newest `limit` requests `filter` selects (one event per request), newest first,
/// reading pages of `page_size`: for answers that keep less than the records (a page's
/// records are dropped as soon as they are visited).
pub fn each_request<E>(
    filter: &Filter,
    limit: usize,
    page_size: usize,
    mut page: impl FnMut(&Filter, Option<&Cursor>, usize) -> std::result::Result<Page, E>,
    mut visit: impl FnMut(Record),
) -> std::result::Result<usize, E> {
    let filter = Filter {
        stages: StageSelection::Final,
        ..filter.clone()
    };
    let mut seen = 0;
    let mut cursor = None;
    while seen < limit {
        let next = page(&filter, cursor.as_ref(), (limit - seen).min(page_size))?;
        seen += next.records.len();
        next.records.into_iter().for_each(&mut visit);
        match next.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(seen)
}
