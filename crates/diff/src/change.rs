//! [`Change`]s between two JSON values, at JSON Pointer paths (RFC 6901), and [`apply`], which
//! replays them: `apply(a, &diff(a, b)) == b` for any two values.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One changed path: `old` absent for an added path, `new` absent for a removed one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// JSON Pointer of the changed value (`""` is the whole value).
    pub path: String,
    /// The value before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    /// The value after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

impl Change {
    /// What happened at the path.
    pub fn kind(&self) -> ChangeKind {
        match (&self.old, &self.new) {
            (None, _) => ChangeKind::Added,
            (_, None) => ChangeKind::Removed,
            _ => ChangeKind::Changed,
        }
    }
}

/// Added, removed or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// The path did not exist before.
    Added,
    /// The path exists no more.
    Removed,
    /// The value at the path is another.
    Changed,
}

/// Appends `token` to a JSON Pointer, escaped (`~` as `~0`, `/` as `~1`).
pub fn push_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    for c in token.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

/// The reference tokens of a JSON Pointer, unescaped; `None` when it is not one.
pub fn tokens(pointer: &str) -> Option<Vec<String>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    pointer
        .strip_prefix('/')?
        .split('/')
        .map(|t| {
            if t.contains('~') {
                let mut out = String::new();
                let mut chars = t.chars();
                while let Some(c) = chars.next() {
                    match (c, c == '~') {
                        (_, false) => out.push(c),
                        _ => match chars.next() {
                            Some('0') => out.push('~'),
                            Some('1') => out.push('/'),
                            _ => return None,
                        },
                    }
                }
                Some(out)
            } else {
                Some(t.to_string())
            }
        })
        .collect()
}

/// The changes that turn `old` into `new`: objects compared key by key, arrays index by index
/// (removed tail elements last index first, so that [`apply`] can remove them in order);
/// an added or removed subtree is one change, a changed scalar or type is one change.
pub fn diff(old: &Value, new: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    let mut path = String::new();
    walk(&mut path, old, new, &mut out);
    out
}

fn walk(path: &mut String, old: &Value, new: &Value, out: &mut Vec<Change>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let len = path.len();
            for (k, va) in a {
                push_token(path, k);
                match b.get(k) {
                    Some(vb) => walk(path, va, vb, out),
                    None => out.push(Change {
                        path: path.clone(),
                        old: Some(va.clone()),
                        new: None,
                    }),
                }
                path.truncate(len);
            }
            for (k, vb) in b {
                if !a.contains_key(k) {
                    push_token(path, k);
                    out.push(Change {
                        path: path.clone(),
                        old: None,
                        new: Some(vb.clone()),
                    });
                    path.truncate(len);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            let len = path.len();
            let common = a.len().min(b.len());
            for i in 0..common {
                push_token(path, &i.to_string());
                walk(path, &a[i], &b[i], out);
                path.truncate(len);
            }
            for i in (common..a.len()).rev() {
                push_token(path, &i.to_string());
                out.push(Change {
                    path: path.clone(),
                    old: Some(a[i].clone()),
                    new: None,
                });
                path.truncate(len);
            }
            for (i, v) in b.iter().enumerate().skip(common) {
                push_token(path, &i.to_string());
                out.push(Change {
                    path: path.clone(),
                    old: None,
                    new: Some(v.clone()),
                });
                path.truncate(len);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(Change {
            path: path.clone(),
            old: Some(a.clone()),
            new: Some(b.clone()),
        }),
    }
}

/// Why changes could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyError {
    /// The change's path.
    pub path: String,
}

/// `base` with `changes` applied in order: a change with `new` sets the path (appending to an
/// array at its length), one without removes it.
pub fn apply(base: &Value, changes: &[Change]) -> Result<Value, ApplyError> {
    let mut value = base.clone();
    for c in changes {
        set(&mut value, &c.path, c.new.clone()).ok_or_else(|| ApplyError {
            path: c.path.clone(),
        })?;
    }
    Ok(value)
}

/// Sets (or with `None` removes) the value at `pointer`; `None` when the path's parent does
/// not exist.
pub fn set(root: &mut Value, pointer: &str, new: Option<Value>) -> Option<()> {
    let tokens = tokens(pointer)?;
    let Some((last, parents)) = tokens.split_last() else {
        *root = new.unwrap_or(Value::Null);
        return Some(());
    };
    let mut at = root;
    for t in parents {
        at = match at {
            Value::Object(m) => m.get_mut(t)?,
            Value::Array(a) => a.get_mut(index(t)?)?,
            _ => return None,
        };
    }
    match (at, new) {
        (Value::Object(m), Some(v)) => {
            m.insert(last.clone(), v);
        }
        (Value::Object(m), None) => {
            m.shift_remove(last)?;
        }
        (Value::Array(a), Some(v)) => {
            let i = if last == "-" { a.len() } else { index(last)? };
            match i.cmp(&a.len()) {
                std::cmp::Ordering::Less => a[i] = v,
                std::cmp::Ordering::Equal => a.push(v),
                std::cmp::Ordering::Greater => return None,
            }
        }
        (Value::Array(a), None) => {
            let i = index(last)?;
            if i >= a.len() {
                return None;
            }
            a.remove(i);
        }
        _ => return None,
    }
    Some(())
}

/// The value at `pointer`, if any.
pub fn get<'v>(root: &'v Value, pointer: &str) -> Option<&'v Value> {
    let mut at = root;
    for t in tokens(pointer)? {
        at = match at {
            Value::Object(m) => m.get(&t)?,
            Value::Array(a) => a.get(index(&t)?)?,
            _ => return None,
        };
    }
    Some(at)
}

fn index(token: &str) -> Option<usize> {
    // RFC 6901: no leading zeros, no sign.
    if token.is_empty() || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
}

/// An empty object, for diffs against nothing.
pub(crate) fn empty() -> Value {
    Value::Object(Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn changes_are_pointer_paths_with_old_and_new() {
        let a = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:1.25"}]}}}, "metadata": {"labels": {"a/b": "x", "gone": "y"}}});
        let b = json!({"spec": {"replicas": 5, "template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:1.27"}, {"name": "side", "image": "envoy"}]}}},
            "metadata": {"labels": {"a/b": "x", "new~": "z"}}});
        let changes = diff(&a, &b);
        let shown: Vec<(String, Option<Value>, Option<Value>)> = changes
            .iter()
            .map(|c| (c.path.clone(), c.old.clone(), c.new.clone()))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("/spec/replicas".into(), Some(json!(2)), Some(json!(5))),
                (
                    "/spec/template/spec/containers/0/image".into(),
                    Some(json!("nginx:1.25")),
                    Some(json!("nginx:1.27"))
                ),
                (
                    "/spec/template/spec/containers/1".into(),
                    None,
                    Some(json!({"name": "side", "image": "envoy"}))
                ),
                ("/metadata/labels/gone".into(), Some(json!("y")), None),
                ("/metadata/labels/new~0".into(), None, Some(json!("z"))),
            ]
        );
        assert_eq!(changes[2].kind(), ChangeKind::Added);
        assert_eq!(changes[3].kind(), ChangeKind::Removed);
        assert_eq!(apply(&a, &changes).unwrap(), b);
        assert_eq!(
            serde_json::to_value(&changes[3]).unwrap(),
            json!({"path": "/metadata/labels/gone", "old": "y"})
        );
        assert!(diff(&a, &a.clone()).is_empty());
    }

    #[test]
    fn pointers_round_trip_and_bad_ones_are_refused() {
        let mut p = String::new();
        push_token(&mut p, "a/b~c");
        push_token(&mut p, "");
        assert_eq!(p, "/a~1b~0c/");
        assert_eq!(tokens(&p).unwrap(), ["a/b~c", ""]);
        assert_eq!(tokens("x"), None);
        assert_eq!(tokens("/a~"), None);
        let v = json!({"a": [1, 2]});
        assert_eq!(get(&v, "/a/1"), Some(&json!(2)));
        assert_eq!(get(&v, "/a/01"), None);
        let mut w = v.clone();
        assert_eq!(set(&mut w, "/a/5", Some(json!(0))), None);
        assert_eq!(set(&mut w, "/a/-", Some(json!(3))), Some(()));
        assert_eq!(w, json!({"a": [1, 2, 3]}));
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-5i64..5).prop_map(|n| json!(n)),
            "[a-c/~]{0,3}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map("[a-c/~]{0,2}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn applying_the_diff_gives_the_new_value(a in json_value(), b in json_value()) {
            let changes = diff(&a, &b);
            prop_assert_eq!(apply(&a, &changes).unwrap(), b.clone());
            prop_assert_eq!(changes.is_empty(), a == b);
        }
    }
}
