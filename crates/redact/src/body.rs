//! Redaction inside one request or response object: the paths of the kinds that carry
//! credentials (a Secret's `data` and `stringData`, a TokenReview's `spec.token`, a
//! TokenRequest's `status.token`) and the configured ones, wherever the object is — the body
//! itself, the items of a list, the object of a watch event, a Secret nested in any other
//! object by its `kind`, the `last-applied-configuration` annotation that repeats it, and the
//! operations of a JSON patch.

use serde_json::{Map, Value};

use crate::Redactor;
use crate::paths::{Pointer, Segment};

/// The annotation `kubectl apply` keeps the applied object in, as JSON text.
pub(crate) const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A kind that carries credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sensitive {
    Secret,
    TokenReview,
    TokenRequest,
}

impl Sensitive {
    pub(crate) fn of_kind(kind: &str) -> Option<Sensitive> {
        match kind {
            "Secret" => Some(Sensitive::Secret),
            "TokenReview" => Some(Sensitive::TokenReview),
            "TokenRequest" => Some(Sensitive::TokenRequest),
            _ => None,
        }
    }
}

/// The built-in paths of each [`Sensitive`] kind.
#[derive(Debug)]
pub(crate) struct Builtin {
    secret: [Pointer; 2],
    token_review: [Pointer; 1],
    token_request: [Pointer; 1],
}

impl Builtin {
    pub(crate) fn new() -> Builtin {
        let p = |path, base64| Pointer::new(path, base64).unwrap_or_else(|_| unreachable!());
        Builtin {
            secret: [p("/data/*", true), p("/stringData/*", false)],
            token_review: [p("/spec/token", false)],
            token_request: [p("/status/token", false)],
        }
    }

    fn of(&self, kind: Sensitive) -> &[Pointer] {
        match kind {
            Sensitive::Secret => &self.secret,
            Sensitive::TokenReview => &self.token_review,
            Sensitive::TokenRequest => &self.token_request,
        }
    }
}

/// What a body is about: the kind its objects have when they do not say (the request's
/// resource), and the configured paths for that resource.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Context<'a> {
    pub(crate) implied: Option<Sensitive>,
    pub(crate) extra: &'a [&'a Pointer],
}

impl Redactor {
    /// Redacts a top-level request or response object in place; true when anything changed.
    pub(crate) fn body(&self, value: &mut Value, cx: Context<'_>) -> bool {
        match value {
            // A JSON patch (RFC 6902) of an object of the request's resource.
            Value::Array(ops) => {
                let paths = self.paths(cx.implied, cx.extra);
                let mut changed = false;
                for op in ops.iter_mut() {
                    if let Value::Object(op) = op {
                        changed |= self.patch_op(op, &paths);
                    }
                    changed |= self.node(op, false, Context::default());
                }
                changed
            }
            Value::Object(_) => self.node(value, true, cx),
            _ => false,
        }
    }

    /// The paths that apply to an object of `kind` with `extra` configured.
    fn paths<'p>(&'p self, kind: Option<Sensitive>, extra: &[&'p Pointer]) -> Vec<&'p Pointer> {
        let mut paths: Vec<&Pointer> = kind
            .map(|k| self.builtin.of(k).iter().collect())
            .unwrap_or_default();
        paths.extend_from_slice(extra);
        paths
    }

    /// One object and everything under it. `of_resource`: the object is one of the request's
    /// resource (the body, a list item, a watch event's object), so the context applies where
    /// its own `kind` does not say otherwise. A list's items and a watch event's object are of
    /// what the list or event is of: a `SecretList`'s items are Secrets wherever it is.
    fn node(&self, value: &mut Value, of_resource: bool, cx: Context<'_>) -> bool {
        let mut changed = false;
        match value {
            Value::Array(items) => {
                for item in items {
                    changed |= self.node(item, false, Context::default());
                }
            }
            Value::Object(map) => {
                let kind = map.get("kind").and_then(Value::as_str);
                let list = kind.is_some_and(|k| k.ends_with("List"))
                    || (of_resource
                        && kind.is_none()
                        && map.get("items").is_some_and(Value::is_array));
                let watch = of_resource
                    && matches!(kind, None | Some("WatchEvent"))
                    && map.contains_key("type")
                    && map.get("object").is_some_and(Value::is_object);
                let inner = if list || watch {
                    let named = kind
                        .and_then(|k| k.strip_suffix("List"))
                        .and_then(Sensitive::of_kind);
                    let own = if of_resource { cx } else { Context::default() };
                    Some(Context {
                        implied: named.or(own.implied),
                        extra: own.extra,
                    })
                } else {
                    let sensitive = match kind {
                        Some(kind) => Sensitive::of_kind(kind),
                        None if of_resource => cx.implied,
                        None => None,
                    };
                    let extra = if of_resource { cx.extra } else { &[] };
                    let paths = self.paths(sensitive, extra);
                    if !paths.is_empty() {
                        for p in &paths {
                            changed |= self.apply_map(map, &p.segments, p.base64);
                        }
                        let cx = Context {
                            implied: sensitive,
                            extra,
                        };
                        changed |= self.last_applied(map, cx);
                    }
                    None
                };
                for (key, child) in map.iter_mut() {
                    match (inner, key.as_str(), child) {
                        (Some(cx), "items", Value::Array(items)) if list => {
                            for item in items {
                                changed |= self.node(item, true, cx);
                            }
                        }
                        (Some(cx), "object", object) if watch => {
                            changed |= self.node(object, true, cx)
                        }
                        (_, _, child) => changed |= self.node(child, false, Context::default()),
                    }
                }
            }
            _ => {}
        }
        changed
    }

    /// The applied object kept in `metadata.annotations`, redacted as the object is.
    fn last_applied(&self, map: &mut Map<String, Value>, cx: Context<'_>) -> bool {
        let Some(Value::String(text)) = map
            .get_mut("metadata")
            .and_then(|m| m.get_mut("annotations"))
            .and_then(|a| a.get_mut(LAST_APPLIED))
        else {
            return false;
        };
        match serde_json::from_str::<Value>(text) {
            Ok(mut applied) => {
                if !self.body(&mut applied, cx) {
                    return false;
                }
                let newline = text.ends_with('\n');
                *text = applied.to_string();
                if newline {
                    text.push('\n');
                }
                true
            }
            // Not JSON: nothing in it can be told apart, so all of it goes.
            Err(_) => {
                *text = self.marker(text.as_bytes());
                true
            }
        }
    }

    fn apply_map(&self, map: &mut Map<String, Value>, segments: &[Segment], base64: bool) -> bool {
        let Some((first, rest)) = segments.split_first() else {
            return false;
        };
        match first {
            Segment::Key(k) => map.get_mut(k).is_some_and(|v| self.apply(v, rest, base64)),
            Segment::Any => {
                let mut changed = false;
                for v in map.values_mut() {
                    changed |= self.apply(v, rest, base64);
                }
                changed
            }
        }
    }

    fn apply(&self, value: &mut Value, segments: &[Segment], base64: bool) -> bool {
        let Some((first, rest)) = segments.split_first() else {
            return self.leaves(value, base64);
        };
        match value {
            Value::Object(map) => self.apply_map(map, segments, base64),
            Value::Array(items) => {
                let mut changed = false;
                for (i, item) in items.iter_mut().enumerate() {
                    let hit = match first {
                        Segment::Any => true,
                        Segment::Key(k) => k.parse::<usize>() == Ok(i),
                    };
                    if hit {
                        changed |= self.apply(item, rest, base64);
                    }
                }
                changed
            }
            _ => false,
        }
    }

    /// Every string, number and boolean at or under `value` replaced by its marker; `null`
    /// stays (a merge patch's "remove this key" reveals nothing).
    pub(crate) fn leaves(&self, value: &mut Value, base64: bool) -> bool {
        match value {
            Value::Null => false,
            Value::String(s) if crate::is_marker(s) => false,
            Value::String(s) => {
                let marker = if base64 {
                    use base64::Engine as _;
                    match base64::engine::general_purpose::STANDARD.decode(s.as_bytes()) {
                        Ok(bytes) => self.marker(&bytes),
                        Err(_) => self.marker(s.as_bytes()),
                    }
                } else {
                    self.marker(s.as_bytes())
                };
                *s = marker;
                true
            }
            Value::Bool(_) | Value::Number(_) => {
                *value = Value::String(self.marker(value.to_string().as_bytes()));
                true
            }
            Value::Array(items) => {
                let mut changed = false;
                for item in items {
                    changed |= self.leaves(item, base64);
                }
                changed
            }
            Value::Object(map) => {
                let mut changed = false;
                for v in map.values_mut() {
                    changed |= self.leaves(v, base64);
                }
                changed
            }
        }
    }

    /// One JSON patch operation: its `value` where the operation's `path` is at, above or
    /// under a redacted path.
    fn patch_op(&self, op: &mut Map<String, Value>, paths: &[&Pointer]) -> bool {
        let Some(target) = op
            .get("path")
            .and_then(Value::as_str)
            .and_then(kubetrail_diff::tokens)
        else {
            return false;
        };
        let Some(value) = op.get_mut("value") else {
            return false;
        };
        let mut changed = false;
        for p in paths {
            let n = target.len().min(p.segments.len());
            if !(0..n).all(|i| p.matches_at(i, &target[i])) {
                continue;
            }
            changed |= if target.len() <= p.segments.len() {
                // The operation sets the redacted path or an object above it.
                self.apply(value, &p.segments[target.len()..], p.base64)
            } else {
                // The operation sets something inside a redacted value.
                self.leaves(value, p.base64)
            };
        }
        changed
    }
}
