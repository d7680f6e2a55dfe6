//! The configuration's documentation, read from its JSON schema (whose descriptions are the
//! structs' `///` docs and whose defaults are the named default functions' values): the flags'
//! help text and the key tables in `docs/configuration.md`.

use schemars::JsonSchema;
use serde_json::Value;

/// The schema of `T` as JSON.
pub fn schema<T: JsonSchema>() -> Value {
    schemars::schema_for!(T).to_value()
}

/// `tls-cert` as a configuration key: `tlsCert`.
pub fn key_of_flag(long: &str) -> String {
    let mut out = String::with_capacity(long.len());
    let mut upper = false;
    for c in long.chars() {
        if c == '-' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// One key's documentation.
struct Key<'a> {
    name: &'a str,
    /// The key's schema.
    #[cfg_attr(not(test), allow(dead_code))]
    schema: &'a Value,
    default: Option<String>,
    description: String,
}

fn keys(schema: &Value) -> Vec<Key<'_>> {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, p)| Key {
            name,
            schema: p,
            default: p.get("default").and_then(shown),
            description: one_paragraph(p.get("description").and_then(Value::as_str)),
        })
        .collect()
}

/// Doc lines joined into one paragraph.
fn one_paragraph(text: Option<&str>) -> String {
    text.unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A default as a reader would write it; `None` when there is none (null).
fn shown(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(items) if items.is_empty() => Some("none".into()),
        Value::Array(items) => Some(items.iter().filter_map(shown).collect::<Vec<_>>().join(",")),
        other => Some(other.to_string()),
    }
}

/// `string`, `integer`, `duckdb | clickhouse`, `list of string`.
#[cfg(test)]
fn kind(root: &Value, p: &Value) -> String {
    if let Some(target) = p.get("$ref").and_then(Value::as_str) {
        let name = target.rsplit('/').next().unwrap_or(target);
        if let Some(def) = root.get("$defs").and_then(|d| d.get(name)) {
            return kind(root, def);
        }
    }
    if let Some(choices) = p.get("oneOf").or(p.get("enum")).and_then(Value::as_array) {
        let names: Vec<String> = choices
            .iter()
            .filter_map(|c| match c {
                Value::String(s) => Some(s.clone()),
                c => c.get("const").and_then(Value::as_str).map(str::to_string),
            })
            .collect();
        if !names.is_empty() {
            return names.join(" | ");
        }
    }
    let types: Vec<&str> = match p.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let t = types.into_iter().find(|t| *t != "null").unwrap_or("any");
    match t {
        "array" => format!(
            "list of {}",
            p.get("items").map_or("any".into(), |i| kind(root, i))
        ),
        "boolean" => "true | false".into(),
        t => t.into(),
    }
}

/// The help of each flag that is a key of the configuration whose schema is `schema`: the
/// key's description, and its default. Flags that are no key (`--config`) keep their own.
pub fn document_flags(mut command: clap::Command, schema: &Value) -> clap::Command {
    let keys = keys(schema);
    let flags: Vec<(clap::Id, String)> = command
        .get_arguments()
        .filter_map(|a| Some((a.get_id().clone(), a.get_long()?.to_string())))
        .collect();
    for (id, long) in flags {
        let name = key_of_flag(&long);
        // `--version` is clap's, not the file format's.
        if name == "version" {
            continue;
        }
        let Some(key) = keys.iter().find(|k| k.name == name) else {
            continue;
        };
        let default = key
            .default
            .as_ref()
            .map_or(String::new(), |d| format!(" [default: {d}]"));
        let help = format!("{}{default}", first_sentence(&key.description));
        let long_help = format!("{}{default} (key `{name}`)", key.description);
        command = command.mut_arg(id, |a| a.help(help).long_help(long_help));
    }
    command
}

/// The description up to the first full stop that ends a sentence (one followed by a capital,
/// so `e.g. \`http://…\`` does not end it).
fn first_sentence(text: &str) -> &str {
    let bytes = text.as_bytes();
    for (i, _) in text.match_indices(". ") {
        if bytes.get(i + 2).is_some_and(u8::is_ascii_uppercase) {
            return &text[..=i];
        }
    }
    text
}

/// The keys as a Markdown table: key, type, default, description; what
/// `docs/configuration.md` holds (a test keeps it so).
#[cfg(test)]
pub fn markdown(schema: &Value) -> String {
    let mut out =
        String::from("| Key | Type | Default | Description |\n| --- | --- | --- | --- |\n");
    for k in keys(schema) {
        let default = k.default.map_or("unset".to_string(), |d| format!("`{d}`"));
        let cell = |s: &str| s.replace('|', "\\|");
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            k.name,
            cell(&kind(schema, k.schema)),
            cell(&default),
            cell(&k.description)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn flags_spell_keys_in_camel_case() {
        assert_eq!(key_of_flag("tls-cert"), "tlsCert");
        assert_eq!(key_of_flag("header-read-timeout-ms"), "headerReadTimeoutMs");
        assert_eq!(key_of_flag("listen"), "listen");
    }

    #[test]
    fn short_help_is_the_first_sentence() {
        assert_eq!(first_sentence("One. Two."), "One.");
        assert_eq!(
            first_sentence("URL, e.g. `http://a`. Environment: X."),
            "URL, e.g. `http://a`."
        );
        assert_eq!(first_sentence("Only one."), "Only one.");
    }
}
