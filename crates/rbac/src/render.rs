//! Writing generated objects as Kubernetes writes them: YAML as the apimachinery YAML
//! serializer does (JSON turned into go-yaml v2 block style: keys sorted, sequences not
//! indented under their key, strings quoted only where go-yaml quotes them), documents
//! separated by `---`; JSON as one `v1` `List`.

use serde_json::{Map, Value, json};

use crate::objects::{Binding, GROUP, Meta, RbacObjects, Role};

fn meta(m: &Meta, annotations: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), Value::String(m.name.clone()));
    if !m.namespace.is_empty() {
        out.insert("namespace".into(), Value::String(m.namespace.clone()));
    }
    if !m.labels.is_empty() {
        out.insert("labels".into(), json!(m.labels));
    }
    if !annotations.is_empty() {
        out.insert("annotations".into(), Value::Object(annotations.clone()));
    }
    Value::Object(out)
}

fn role(kind: &str, r: &Role, annotations: &Map<String, Value>) -> Value {
    json!({
        "kind": kind,
        "apiVersion": format!("{GROUP}/v1"),
        "metadata": meta(&r.metadata, annotations),
        "rules": r.rules,
    })
}

fn binding(kind: &str, b: &Binding, annotations: &Map<String, Value>) -> Value {
    json!({
        "kind": kind,
        "apiVersion": format!("{GROUP}/v1"),
        "metadata": meta(&b.metadata, annotations),
        "subjects": b.subjects,
        "roleRef": b.role_ref,
    })
}

/// The objects as JSON values in document order: Roles, ClusterRoles, RoleBindings,
/// ClusterRoleBindings. `annotations(kind, index)` gives each object's annotations.
pub fn yaml_documents(
    objects: &RbacObjects,
    annotations: impl Fn(&str, usize) -> Map<String, Value>,
) -> Vec<Value> {
    let mut out = Vec::new();
    for (i, r) in objects.roles.iter().enumerate() {
        out.push(role("Role", r, &annotations("Role", i)));
    }
    for (i, r) in objects.cluster_roles.iter().enumerate() {
        out.push(role("ClusterRole", r, &annotations("ClusterRole", i)));
    }
    for (i, b) in objects.role_bindings.iter().enumerate() {
        out.push(binding("RoleBinding", b, &annotations("RoleBinding", i)));
    }
    for (i, b) in objects.cluster_role_bindings.iter().enumerate() {
        out.push(binding(
            "ClusterRoleBinding",
            b,
            &annotations("ClusterRoleBinding", i),
        ));
    }
    out
}

/// The documents as YAML separated by `---` lines (none before the first or after the last).
pub fn to_yaml(documents: &[Value]) -> String {
    let mut out = String::new();
    for (i, d) in documents.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        write_value_block(d, 0, &mut out);
    }
    out
}

/// The documents as one `v1` `List`, pretty-printed as kubectl prints it.
pub fn to_json_list(documents: &[Value]) -> String {
    let list = json!({
        "kind": "List",
        "apiVersion": "v1",
        "metadata": {},
        "items": documents,
    });
    let mut s = serde_json::to_string_pretty(&list).unwrap_or_default();
    s.push('\n');
    s
}

/// A top-level value (a mapping in practice).
fn write_value_block(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => write_map(m, indent, out),
        Value::Array(a) if !a.is_empty() => write_seq(a, indent, out),
        other => {
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

/// A value after `key:` or `- `: scalars and empty collections on the same line.
fn inline(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => scalar(s),
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Object(m) if m.is_empty() => "{}".into(),
        _ => String::new(),
    }
}

fn is_block(v: &Value) -> bool {
    match v {
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
        _ => false,
    }
}

fn write_map(m: &Map<String, Value>, indent: usize, out: &mut String) {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort_by(|a, b| go_yaml_key_order(a, b));
    for k in keys {
        let v = &m[k];
        out.push_str(&" ".repeat(indent));
        out.push_str(&scalar(k));
        out.push(':');
        if is_block(v) {
            out.push('\n');
            match v {
                Value::Object(inner) => write_map(inner, indent + 2, out),
                Value::Array(items) => write_seq(items, indent, out),
                _ => {}
            }
        } else {
            out.push(' ');
            out.push_str(&inline(v));
            out.push('\n');
        }
    }
}

fn write_seq(items: &[Value], indent: usize, out: &mut String) {
    for item in items {
        if is_block(item) {
            // The item's first line follows the dash; the rest are indented past it.
            let mut body = String::new();
            write_value_block(item, indent + 2, &mut body);
            out.push_str(&" ".repeat(indent));
            out.push_str("- ");
            out.push_str(&body[indent + 2..]);
        } else {
            out.push_str(&" ".repeat(indent));
            out.push_str("- ");
            out.push_str(&inline(item));
            out.push('\n');
        }
    }
}

/// go-yaml v2's map key order: runs of digits compare as numbers, a non-letter sorts before a
/// letter, otherwise by character.
fn go_yaml_key_order(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (ar, br): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    for i in 0..ar.len().min(br.len()) {
        if ar[i] == br[i] {
            continue;
        }
        let (al, bl) = (ar[i].is_alphabetic(), br[i].is_alphabetic());
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let number = |r: &[char]| {
            let mut n: i64 = 0;
            let mut j = i;
            while j < r.len() && r[j].is_ascii_digit() {
                n = n
                    .saturating_mul(10)
                    .saturating_add(r[j] as i64 - '0' as i64);
                j += 1;
            }
            (n, j)
        };
        let ((an, ai), (bn, bi)) = (number(&ar), number(&br));
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

/// A string as go-yaml v2 writes it: plain when it reads back as the same string, double
/// quotes when plain text would read as another type (`"true"`, `""`, `"123"`), single
/// quotes when YAML's syntax forbids it plain (`'*'`, `'- x'`), double quotes with escapes for
/// control characters — and, unlike go-yaml, for invisible and bidirectional format
/// characters too (`\u202E`), so that a crafted name cannot read differently in a terminal.
fn scalar(s: &str) -> String {
    if s.chars().any(needs_escape) {
        return double_quoted(s);
    }
    if resolves_to_non_string(s) {
        return double_quoted(s);
    }
    if !plain_allowed(s) {
        return format!("'{}'", s.replace('\'', "''"));
    }
    s.to_string()
}

fn needs_escape(c: char) -> bool {
    c.is_control() || c == '\u{feff}' || kubetrail_model::is_invisible_format(c)
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if needs_escape(c) => {
                let n = c as u32;
                if n <= 0xff {
                    out.push_str(&format!("\\x{n:02X}"));
                } else if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04X}"));
                } else {
                    out.push_str(&format!("\\U{n:08X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether go-yaml's resolver reads the plain text as something other than a string: null,
/// YAML 1.1 booleans, numbers, timestamps, the merge key.
fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
        "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
        ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
        "-.Inf", "-.INF", "<<",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let Some(first) = s.chars().next() else {
        return true;
    };
    if !(first.is_ascii_digit() || matches!(first, '+' | '-' | '.')) {
        return false;
    }
    let plain = s.replace('_', "");
    let unsigned = plain.trim_start_matches(['+', '-']);
    let radix = |p: &str, r: u32| !p.is_empty() && i64::from_str_radix(p, r).is_ok();
    let is_int = radix(unsigned, 10)
        || unsigned.strip_prefix("0x").is_some_and(|p| radix(p, 16))
        || unsigned.strip_prefix("0o").is_some_and(|p| radix(p, 8))
        || unsigned.strip_prefix("0b").is_some_and(|p| radix(p, 2));
    let is_float = plain
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | 'e' | 'E'))
        && plain.parse::<f64>().is_ok();
    // Sexagesimal (YAML 1.1 base 60: 1:20) and dates (2001-12-14...) also resolve.
    let base60 = s.contains(':')
        && s.split(':')
            .skip(1)
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        && s.split(':').next().is_some_and(|p| {
            let p = p.trim_start_matches(['+', '-']);
            !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())
        });
    let date =
        s.len() >= 8 && s.as_bytes()[..4].iter().all(u8::is_ascii_digit) && s.as_bytes()[4] == b'-';
    is_int || is_float || base60 || date
}

/// libyaml's analysis of a scalar for the plain style in block context.
fn plain_allowed(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() || s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    let blank_after = |i: usize| chars.get(i + 1).is_none_or(|c| *c == ' ' || *c == '\t');
    if chars[0] == ' ' || chars[chars.len() - 1] == ' ' {
        return false;
    }
    for (i, &c) in chars.iter().enumerate() {
        if i == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(c) {
                return false;
            }
            if matches!(c, '-' | '?' | ':') && blank_after(0) {
                return false;
            }
        } else {
            if c == ':' && blank_after(i) {
                return false;
            }
            if c == '#' && matches!(chars[i - 1], ' ' | '\t') {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_quoted_where_go_yaml_quotes_them() {
        assert_eq!(scalar(""), "\"\"");
        assert_eq!(scalar("true"), "\"true\"");
        assert_eq!(scalar("yes"), "\"yes\"");
        assert_eq!(scalar("123"), "\"123\"");
        assert_eq!(scalar("1e3"), "\"1e3\"");
        assert_eq!(scalar("*"), "'*'");
        assert_eq!(scalar("*/scale"), "'*/scale'");
        assert_eq!(scalar("/api*"), "/api*");
        assert_eq!(scalar("audit2rbac:alice"), "audit2rbac:alice");
        assert_eq!(
            scalar("system:serviceaccount:ns1:sa1"),
            "system:serviceaccount:ns1:sa1"
        );
        assert_eq!(scalar("a: b"), "'a: b'");
        assert_eq!(scalar("it's"), "it's");
        assert_eq!(scalar("'x"), "'''x'");
        assert_eq!(scalar("a\u{202e}b\n"), "\"a\\u202Eb\\n\"");
        // YAML's \u takes four digits: a character past U+FFFF needs \U and eight.
        assert_eq!(scalar("x\u{e0001}"), "\"x\\U000E0001\"");
        assert_eq!(scalar("pods"), "pods");
        assert_eq!(scalar("v1"), "v1");
        assert_eq!(scalar("1.2.3"), "1.2.3");
    }

    #[test]
    fn keys_sort_as_go_yaml_sorts_them() {
        let mut keys = vec!["b", "a10", "a9", "a-b", "ab", "resources", "resourceNames"];
        keys.sort_by(|a, b| go_yaml_key_order(a, b));
        assert_eq!(
            keys,
            vec!["a-b", "a9", "a10", "ab", "b", "resourceNames", "resources"]
        );
    }

    #[test]
    fn block_layout_is_kubectl_s() {
        let v = json!({"kind": "Role", "metadata": {"name": "x", "labels": {"a": "true"}},
            "rules": [{"verbs": ["get"], "apiGroups": [""]}], "empty": {}, "none": []});
        assert_eq!(
            to_yaml(&[v.clone(), v]),
            "empty: {}\nkind: Role\nmetadata:\n  labels:\n    a: \"true\"\n  name: x\nnone: []\nrules:\n- apiGroups:\n  - \"\"\n  verbs:\n  - get\n---\nempty: {}\nkind: Role\nmetadata:\n  labels:\n    a: \"true\"\n  name: x\nnone: []\nrules:\n- apiGroups:\n  - \"\"\n  verbs:\n  - get\n"
        );
    }
}
