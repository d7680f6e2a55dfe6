//! An object's writes in time order, each with what it changed: [`Trail`] keeps the object's
//! last known state and turns every write event into a [`Step`].

use kubetrail_model::Event;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::change::{Change, diff, empty};
use crate::noise::normalize;
use crate::patch::{PatchKind, apply_exact, listing};

/// How a step's changes are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Basis {
    /// The object after the write compared with its state before.
    Diff,
    /// The object was created: every path is new.
    Created,
    /// The object was deleted.
    Deleted,
    /// A patch (its kind in [`Step::patch`]): applied to the state before where that is
    /// exact, else its body decoded: what it sets and removes.
    Patch,
    /// The object after the write is known, the state before is not (the first write seen, or
    /// one after a write whose result is not known): the base for the next diff.
    Baseline,
    /// A write to a subresource (scale, binding, eviction, ...): its request body.
    Subresource,
    /// The request failed: nothing changed.
    Failed,
    /// The event holds no body (Metadata level): what changed is not known.
    NoBody,
}

/// One write and what it changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// The write changed nothing (its diff is empty).
    pub noop: bool,
    /// A dry run (`dryRun=All`): what would have changed; the object did not.
    pub dry_run: bool,
    /// The changed paths.
    pub changes: Vec<Change>,
    /// How the changes are known.
    pub basis: Basis,
    /// The patch's kind, for a patch known by its body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<PatchKind>,
}

/// Whether the request URI asks for a dry run (`dryRun=All`).
pub fn is_dry_run(request_uri: &str) -> bool {
    request_uri.split_once('?').is_some_and(|(_, q)| {
        q.split('&').any(|p| {
            p.split_once('=').is_some_and(|(k, v)| {
                k == "dryRun"
                    && percent_encoding::percent_decode_str(v).decode_utf8_lossy() == "All"
            })
        })
    })
}

/// The known state of one object as its writes go by.
#[derive(Debug, Clone, Default)]
pub struct Trail {
    /// `Some(None)`: known not to exist; `None`: not known.
    state: Option<Option<Value>>,
}

/// The object in a body, when it is one (not a `Status`, which failures and some deletes
/// answer with).
fn object(body: Option<&kubetrail_model::RawJson>) -> Option<Value> {
    let v = body?.to_value().ok()?;
    match v.get("kind").and_then(Value::as_str) {
        Some("Status") => None,
        _ if v.is_object() => Some(v),
        _ => None,
    }
}

impl Trail {
    /// A trail that knows nothing of the object yet.
    pub fn new() -> Trail {
        Trail::default()
    }

    /// The object's state as last known (after normalizing nothing).
    pub fn state(&self) -> Option<&Value> {
        self.state.as_ref().and_then(Option::as_ref)
    }

    /// The state as known: `Some(Some(object))`, `Some(None)` known not to exist (deleted),
    /// `None` not known.
    pub fn known(&self) -> Option<Option<&Value>> {
        self.state.as_ref().map(Option::as_ref)
    }

    /// The step of `event`, a write to this object (the next in time), and the state after it.
    pub fn step(&mut self, event: &Event) -> Step {
        let uri = event.request_uri.as_deref().unwrap_or("");
        let dry_run = is_dry_run(uri);
        let verb = event.verb.as_deref().unwrap_or("");
        let sub = event
            .object_ref
            .as_ref()
            .and_then(|o| o.subresource.as_deref())
            .unwrap_or("");
        let with_status = sub == "status";
        let step = |basis, changes: Vec<Change>, noop| Step {
            noop,
            dry_run,
            changes,
            basis,
            patch: None,
        };
        if event.code().is_some_and(|c| !(200..300).contains(&c)) {
            return step(Basis::Failed, Vec::new(), false);
        }
        if matches!(verb, "delete" | "deletecollection") {
            if !dry_run {
                self.state = Some(None);
            }
            return step(Basis::Deleted, Vec::new(), false);
        }
        if !sub.is_empty() && !with_status {
            let changes = object(event.request_object.as_ref())
                .map(|mut body| {
                    normalize(&mut body, true);
                    diff(&empty(), &body)
                })
                .unwrap_or_default();
            if !dry_run {
                // The object changed in a way its own state does not show.
                self.state = None;
            }
            return step(Basis::Subresource, changes, false);
        }
        let after = object(event.response_object.as_ref()).or_else(|| {
            matches!(verb, "create" | "update")
                .then(|| object(event.request_object.as_ref()))
                .flatten()
        });
        let before = match &self.state {
            Some(Some(v)) => Some(v.clone()),
            _ => None,
        };
        let compare = |before: &Value, after: &Value| {
            let (mut b, mut a) = (before.clone(), after.clone());
            normalize(&mut b, with_status);
            normalize(&mut a, with_status);
            diff(&b, &a)
        };
        let mut patch = None;
        let (result, basis, changes) = match (after, verb) {
            (Some(after), "create") => {
                let changes = compare(&empty(), &after);
                (Some(Some(after)), Basis::Created, changes)
            }
            (Some(after), _) => match &before {
                Some(b) => {
                    let changes = compare(b, &after);
                    (Some(Some(after)), Basis::Diff, changes)
                }
                None => (Some(Some(after)), Basis::Baseline, Vec::new()),
            },
            (None, "patch") => {
                match event
                    .request_object
                    .as_ref()
                    .and_then(|r| r.to_value().ok())
                {
                    Some(body) => {
                        let kind = PatchKind::of(&body);
                        patch = Some(kind);
                        match before.as_ref().map(|b| (b, apply_exact(kind, &body, b))) {
                            Some((b, Some(after))) => {
                                let changes = compare(b, &after);
                                (Some(Some(after)), Basis::Patch, changes)
                            }
                            _ => (None, Basis::Patch, listing(kind, &body, before.as_ref())),
                        }
                    }
                    None => (None, Basis::NoBody, Vec::new()),
                }
            }
            (None, _) => (None, Basis::NoBody, Vec::new()),
        };
        // A decoded patch that could not be applied is a no-op when it sets nothing new.
        let noop = changes.is_empty() && matches!(basis, Basis::Diff | Basis::Patch);
        if !dry_run {
            self.state = result;
        }
        Step {
            patch,
            ..step(basis, changes, noop)
        }
    }
}
