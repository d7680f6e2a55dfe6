//! Patch bodies as a Request-level event records them: which kind of patch ([`PatchKind`],
//! told from the body, since the event does not keep the Content-Type), the paths it sets or
//! removes ([`listing`]), and the state after it where that is exact ([`apply_exact`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::change::{Change, get, push_token, set, tokens};
use crate::noise::{LAST_APPLIED, SERVER_METADATA};

/// The kind of a patch body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PatchKind {
    /// RFC 6902 JSON patch: a list of operations.
    Json,
    /// RFC 7386 JSON merge patch, or a strategic merge patch without directives (the event
    /// does not say which).
    Merge,
    /// A strategic merge patch (it holds `$patch`, `$setElementOrder`, ... directives).
    Strategic,
    /// A server-side apply configuration (a whole object with `apiVersion` and `kind`).
    Apply,
}

impl PatchKind {
    /// Tells the kind from the body.
    pub fn of(body: &Value) -> PatchKind {
        match body {
            Value::Array(_) => PatchKind::Json,
            Value::Object(m)
                if m.get("apiVersion").is_some_and(Value::is_string)
                    && m.get("kind").is_some_and(Value::is_string) =>
            {
                PatchKind::Apply
            }
            v if has_directive(v) => PatchKind::Strategic,
            _ => PatchKind::Merge,
        }
    }
}

fn has_directive(v: &Value) -> bool {
    match v {
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| k.starts_with('$') || has_directive(v)),
        Value::Array(a) => a.iter().any(has_directive),
        _ => false,
    }
}

fn noise(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/metadata/") else {
        return false;
    };
    SERVER_METADATA
        .iter()
        .any(|f| rest == *f || rest.starts_with(&format!("{f}/")))
        || rest == format!("annotations/{}", LAST_APPLIED.replace('/', "~1"))
}

/// What the patch sets and removes, with the old values where `before` (the object's known
/// state) has them. Directives that only order lists (`$setElementOrder/...`) and the server's
/// bookkeeping are left out.
pub fn listing(kind: PatchKind, body: &Value, before: Option<&Value>) -> Vec<Change> {
    let old = |path: &str| before.and_then(|b| get(b, path)).cloned();
    let mut out = Vec::new();
    match (kind, body) {
        (PatchKind::Json, Value::Array(ops)) => {
            for op in ops {
                let Some(path) = op.get("path").and_then(Value::as_str) else {
                    continue;
                };
                if noise(path) {
                    continue;
                }
                match op.get("op").and_then(Value::as_str) {
                    Some("add" | "replace") => out.push(Change {
                        path: path.to_string(),
                        old: old(path),
                        new: op.get("value").cloned(),
                    }),
                    Some("remove") => out.push(Change {
                        path: path.to_string(),
                        old: old(path).or(Some(Value::Null)),
                        new: None,
                    }),
                    Some(verb @ ("move" | "copy")) => {
                        let from = op.get("from").and_then(Value::as_str).unwrap_or("");
                        let moved = old(from);
                        if verb == "move" {
                            out.push(Change {
                                path: from.to_string(),
                                old: moved.clone().or(Some(Value::Null)),
                                new: None,
                            });
                        }
                        out.push(Change {
                            path: path.to_string(),
                            old: old(path),
                            new: Some(
                                moved.unwrap_or_else(|| Value::String(format!("(from {from})"))),
                            ),
                        });
                    }
                    _ => {}
                }
            }
        }
        (_, Value::Object(_)) => {
            let mut path = String::new();
            merge_listing(&mut path, body, &old, &mut out);
        }
        _ => out.push(Change {
            path: String::new(),
            old: before.cloned(),
            new: Some(body.clone()),
        }),
    }
    out
}

fn merge_listing(
    path: &mut String,
    patch: &Value,
    old: &dyn Fn(&str) -> Option<Value>,
    out: &mut Vec<Change>,
) {
    let Value::Object(m) = patch else {
        return;
    };
    let len = path.len();
    for (k, v) in m {
        if k.starts_with("$setElementOrder/") {
            continue;
        }
        push_token(path, k);
        if !noise(path) {
            match v {
                Value::Object(inner) if !inner.is_empty() => merge_listing(path, v, old, out),
                Value::Null => out.push(Change {
                    path: path.clone(),
                    old: old(path).or(Some(Value::Null)),
                    new: None,
                }),
                v => {
                    let before = old(path);
                    if before.as_ref() != Some(v) {
                        out.push(Change {
                            path: path.clone(),
                            old: before,
                            new: Some(v.clone()),
                        });
                    }
                }
            }
        }
        path.truncate(len);
    }
}

/// The object after `body` is applied to `before`, where that is exact: a JSON patch, or a
/// merge patch without lists (where merge and strategic merge agree). `None` otherwise.
pub fn apply_exact(kind: PatchKind, body: &Value, before: &Value) -> Option<Value> {
    match (kind, body) {
        (PatchKind::Json, Value::Array(ops)) => {
            let mut v = before.clone();
            for op in ops {
                let path = op.get("path")?.as_str()?;
                match op.get("op")?.as_str()? {
                    "add" => add(&mut v, path, op.get("value")?.clone())?,
                    "replace" => {
                        get(&v, path)?;
                        set(&mut v, path, Some(op.get("value")?.clone()))?
                    }
                    "remove" => set(&mut v, path, None)?,
                    "test" => (get(&v, path)? == op.get("value")?).then_some(())?,
                    "move" | "copy" => {
                        let from = op.get("from")?.as_str()?;
                        let moved = get(&v, from)?.clone();
                        if op.get("op")?.as_str()? == "move" {
                            set(&mut v, from, None)?;
                        }
                        add(&mut v, path, moved)?;
                    }
                    _ => return None,
                }
            }
            Some(v)
        }
        (PatchKind::Merge, Value::Object(_)) if !has_array(body) => {
            let mut v = before.clone();
            merge(&mut v, body);
            Some(v)
        }
        _ => None,
    }
}

/// RFC 6902 `add`: into an array it inserts, into an object it sets.
fn add(root: &mut Value, path: &str, value: Value) -> Option<()> {
    let t = tokens(path)?;
    let Some((last, parents)) = t.split_last() else {
        *root = value;
        return Some(());
    };
    let parent_path: String = parents.iter().fold(String::new(), |mut p, t| {
        push_token(&mut p, t);
        p
    });
    if let Some(Value::Array(_)) = get(root, &parent_path) {
        let mut at = &mut *root;
        for t in parents {
            at = match at {
                Value::Object(m) => m.get_mut(t)?,
                Value::Array(a) => a.get_mut(t.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        let Value::Array(a) = at else { return None };
        let i = if last == "-" {
            a.len()
        } else {
            last.parse::<usize>().ok()?
        };
        if i > a.len() {
            return None;
        }
        a.insert(i, value);
        return Some(());
    }
    set(root, path, Some(value))
}

fn has_array(v: &Value) -> bool {
    match v {
        Value::Array(_) => true,
        Value::Object(m) => m.values().any(has_array),
        _ => false,
    }
}

/// RFC 7386.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let Value::Object(t) = target else { return };
    for (k, v) in p {
        if v.is_null() {
            t.shift_remove(k);
        } else {
            merge(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_are_told_from_the_body() {
        assert_eq!(PatchKind::of(&json!([{"op": "add"}])), PatchKind::Json);
        assert_eq!(
            PatchKind::of(&json!({"spec": {"replicas": 3}})),
            PatchKind::Merge
        );
        assert_eq!(
            PatchKind::of(&json!({"spec": {"containers": [{"$patch": "delete", "name": "a"}]}})),
            PatchKind::Strategic
        );
        assert_eq!(
            PatchKind::of(&json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {}})),
            PatchKind::Apply
        );
    }

    #[test]
    fn a_merge_patch_lists_what_it_sets_with_the_old_values() {
        let before = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 2}});
        let patch = json!({"metadata": {"labels": {"a": "9", "b": null}, "resourceVersion": "7"},
            "spec": {"replicas": 2, "paused": true}});
        let changes = listing(PatchKind::Merge, &patch, Some(&before));
        let shown: Vec<_> = changes
            .iter()
            .map(|c| (c.path.as_str(), c.old.clone(), c.new.clone()))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("/metadata/labels/a", Some(json!("1")), Some(json!("9"))),
                ("/metadata/labels/b", Some(json!("2")), None),
                ("/spec/paused", None, Some(json!(true))),
            ]
        );
        let after = apply_exact(PatchKind::Merge, &patch, &before).unwrap();
        assert_eq!(after["metadata"]["labels"], json!({"a": "9"}));
        assert_eq!(after["spec"], json!({"replicas": 2, "paused": true}));
        // Lists: merge and strategic merge disagree, so the state after is not known.
        assert_eq!(
            apply_exact(PatchKind::Merge, &json!({"spec": {"x": [1]}}), &before),
            None
        );
    }

    #[test]
    fn a_json_patch_is_applied_as_rfc_6902_says() {
        let before = json!({"spec": {"args": ["a", "c"], "replicas": 2}});
        let ops = json!([
            {"op": "add", "path": "/spec/args/1", "value": "b"},
            {"op": "replace", "path": "/spec/replicas", "value": 4},
            {"op": "test", "path": "/spec/replicas", "value": 4},
            {"op": "move", "from": "/spec/replicas", "path": "/spec/count"},
        ]);
        let after = apply_exact(PatchKind::Json, &ops, &before).unwrap();
        assert_eq!(
            after,
            json!({"spec": {"args": ["a", "b", "c"], "count": 4}})
        );
        let failing = json!([{"op": "test", "path": "/spec/replicas", "value": 9}]);
        assert_eq!(apply_exact(PatchKind::Json, &failing, &before), None);
        let listed = listing(PatchKind::Json, &ops, Some(&before));
        assert_eq!(listed[1].old, Some(json!(2)));
        assert_eq!(listed[1].new, Some(json!(4)));
    }
}
