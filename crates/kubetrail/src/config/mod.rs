//! The configuration of the long-running commands, one typed struct each ([`ServeConfig`],
//! [`AgentConfig`]). Each key's `///` doc is its user documentation: the flag's help, the
//! reference in `docs/configuration.md` and the JSON schema all come from it.
//!
//! Layering is done once, here: the named defaults, then the `--config` file, then the
//! environment and the flags (clap reads the variables a flag names, and a flag given on the
//! command line wins over its variable). The file and the flags are each turned into a JSON
//! object in the configuration's key space, merged key by key, and deserialized into the struct,
//! whose `#[serde(default = ...)]` functions fill what no layer gave.

mod agent;
mod duration;
pub mod reference;
mod serve;

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

pub use agent::AgentConfig;
pub use duration::HumanDuration;
pub use reference::document_flags;
pub use serve::ServeConfig;

/// Keys that are maps or lists of objects: written in the configuration file, with no flag.
#[cfg(test)]
pub const FILE_ONLY_KEYS: [&str; 3] = ["ruleParameters", "notify", "redactPaths"];

/// The configuration format this build reads.
pub const VERSION: u32 = 1;

/// `version`'s default: files written before the key existed are version 1.
pub fn current_version() -> u32 {
    VERSION
}

/// Refuses a configuration written for another format version.
pub fn check_version(version: u32) -> Result<()> {
    if version != VERSION {
        bail!("version {version}: this kubetrail reads configuration version {VERSION}");
    }
    Ok(())
}

/// The configuration from the file at `path` (if any) under the flags: `flags` serializes to
/// the configuration's key space, leaving out what was not given. `what` names the file's kind
/// in errors ("a serve configuration").
pub fn layered<T: DeserializeOwned>(
    path: Option<&Path>,
    what: &str,
    flags: &impl Serialize,
) -> Result<T> {
    let mut value = match path {
        Some(path) => read_file::<T>(path, what)?,
        None => Value::Object(Map::new()),
    };
    merge(
        &mut value,
        serde_json::to_value(flags).context("the command-line flags")?,
    );
    serde_json::from_value(value).context("the command-line flags and environment")
}

/// The file's keys as a JSON object, after checking that the file alone is a `T` (so unknown
/// keys and wrong types are reported with the file's name, line and column).
fn read_file<T: DeserializeOwned>(path: &Path, what: &str) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if text.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    serde_norway::from_str::<T>(&text)
        .with_context(|| format!("{}: not {what}", path.display()))?;
    let value: Value =
        serde_norway::from_str(&text).with_context(|| format!("{}: not {what}", path.display()))?;
    match value {
        Value::Null => Ok(Value::Object(Map::new())),
        Value::Object(_) => Ok(value),
        _ => bail!("{}: not {what}: expected a mapping of keys", path.display()),
    }
}

/// Lays `over` on `base`: objects key by key, anything else replaced.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

/// For `skip_serializing_if` on flags that are off unless given.
pub fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use schemars::JsonSchema;
    use serde_json::json;
    use std::path::PathBuf;

    fn repo_file(path: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(path)
    }

    /// The example parses, passes the checks, and spells every key of the schema.
    fn example_has_every_key<T: DeserializeOwned + JsonSchema>(
        path: &str,
        check: fn(&T) -> Result<()>,
    ) {
        let file = repo_file(path);
        let config: T = layered(Some(&file), "an example", &json!({})).unwrap();
        check(&config).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        let given: Value = serde_norway::from_str(&text).unwrap();
        let schema = reference::schema::<T>();
        let keys: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        let given: Vec<&String> = given.as_object().unwrap().keys().collect();
        assert_eq!(given, keys, "{path} lists every key, in the struct's order");
    }

    #[test]
    fn the_examples_spell_every_key() {
        example_has_every_key::<ServeConfig>("examples/serve.yaml", ServeConfig::check);
        example_has_every_key::<AgentConfig>("examples/agent.yaml", AgentConfig::check);
    }

    /// `docs/configuration.md` holds each table as the schema gives it, between markers.
    /// `KUBETRAIL_UPDATE_DOCS=1 cargo test` rewrites them.
    #[test]
    fn the_reference_is_generated_from_the_structs() {
        let path = repo_file("docs/configuration.md");
        let mut text = std::fs::read_to_string(&path).unwrap();
        let mut stale = Vec::new();
        for (name, table) in [
            (
                "serve",
                reference::markdown(&reference::schema::<ServeConfig>()),
            ),
            (
                "agent",
                reference::markdown(&reference::schema::<AgentConfig>()),
            ),
        ] {
            let begin = format!("<!-- keys of {name}: generated from the code -->\n");
            let end = format!("<!-- end of {name}'s keys -->");
            let from = text.find(&begin).unwrap() + begin.len();
            let to = from + text[from..].find(&end).unwrap();
            if text[from..to] != table {
                stale.push(name);
                text.replace_range(from..to, &table);
            }
        }
        if std::env::var_os("KUBETRAIL_UPDATE_DOCS").is_some() {
            std::fs::write(&path, &text).unwrap();
        } else {
            assert!(
                stale.is_empty(),
                "docs/configuration.md is stale for {stale:?}: run KUBETRAIL_UPDATE_DOCS=1 cargo test -p kubetrail config"
            );
        }
    }

    #[test]
    fn the_file_is_checked_alone_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("serve.yaml");
        std::fs::write(&file, "listen: 0.0.0.0:9000\nmaxConnections: 64\n").unwrap();
        let c: ServeConfig = layered(Some(&file), "a serve configuration", &json!({})).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.max_connections, 64);
        assert_eq!(c.max_url_bytes, 8192, "the named default");
        let c: ServeConfig = layered(
            Some(&file),
            "a serve configuration",
            &json!({"maxConnections": 8}),
        )
        .unwrap();
        assert_eq!((c.listen.port(), c.max_connections), (9000, 8));

        std::fs::write(&file, "listen: 0.0.0.0:9000\nmaxConection: 64\n").unwrap();
        let e = format!(
            "{:#}",
            layered::<ServeConfig>(Some(&file), "a serve configuration", &json!({})).unwrap_err()
        );
        assert!(
            e.contains("serve.yaml: not a serve configuration")
                && e.contains("unknown field `maxConection`")
                && e.contains("line 2"),
            "{e}"
        );
        std::fs::write(&file, "- listen\n").unwrap();
        let e = format!(
            "{:#}",
            layered::<ServeConfig>(Some(&file), "a serve configuration", &json!({})).unwrap_err()
        );
        assert!(e.contains("not a serve configuration"), "{e}");
        // An empty file is no keys, not an error.
        std::fs::write(&file, "# nothing yet\n").unwrap();
        let c: ServeConfig = layered(Some(&file), "a serve configuration", &json!({})).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn later_layers_win_key_by_key() {
        let mut base = json!({"listen": "a", "keep": 1, "nested": {"x": 1, "y": 2}});
        merge(
            &mut base,
            json!({"listen": "b", "nested": {"y": 3}, "new": true}),
        );
        assert_eq!(
            base,
            json!({"listen": "b", "keep": 1, "nested": {"x": 1, "y": 3}, "new": true})
        );
    }

    #[test]
    fn another_version_is_refused() {
        assert!(check_version(1).is_ok());
        let e = check_version(2).unwrap_err().to_string();
        assert!(e.contains("version 2") && e.contains("version 1"), "{e}");
    }
}
