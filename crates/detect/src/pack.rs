//! Rule sets: the default pack embedded in the binary, rule files read from disk, and
//! parameter overrides (`RULE.PARAM=VALUE`), loaded into compiled [`Rule`]s with errors that
//! name the file, the line and the rule.

use std::collections::BTreeMap;

use crate::expr::Runtime;
use crate::rule::{Origin, Rule, RuleError};
use crate::spec::RuleFile;

/// The default pack's files, as (name, text).
pub const DEFAULT_PACK: &[(&str, &str)] = &[
    ("default/pods.yaml", include_str!("../rules/pods.yaml")),
    ("default/exec.yaml", include_str!("../rules/exec.yaml")),
    ("default/rbac.yaml", include_str!("../rules/rbac.yaml")),
    ("default/access.yaml", include_str!("../rules/access.yaml")),
    (
        "default/stateful.yaml",
        include_str!("../rules/stateful.yaml"),
    ),
];

/// Parameter overrides by rule id, then parameter name.
pub type Overrides = BTreeMap<String, BTreeMap<String, serde_json::Value>>;

/// Parses `RULE.PARAM=VALUE`; the value is read as YAML (`50`, `5m`, `[a, b]`).
pub fn parse_override(text: &str) -> Result<(String, String, serde_json::Value), String> {
    let bad = || format!("{text:?}: expected RULE.PARAM=VALUE, e.g. forbidden-burst.threshold=50");
    let (name, value) = text.split_once('=').ok_or_else(bad)?;
    let (rule, param) = name.split_once('.').ok_or_else(bad)?;
    if rule.is_empty() || param.is_empty() {
        return Err(bad());
    }
    let value: serde_json::Value =
        serde_norway::from_str(value).map_err(|e| format!("{text:?}: {e}"))?;
    let value = if value.is_null() {
        serde_json::Value::Array(Vec::new())
    } else {
        value
    };
    Ok((rule.to_string(), param.to_string(), value))
}

/// The line of each `id:` in a rule file, by id.
fn id_lines(text: &str) -> BTreeMap<String, usize> {
    let mut lines = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let t = line.trim_start().trim_start_matches("- ").trim_start();
        if let Some(id) = t.strip_prefix("id:") {
            let id = id.trim().trim_matches(|c| c == '"' || c == '\'');
            lines.entry(id.to_string()).or_insert(n + 1);
        }
    }
    lines
}

/// The rules of one file, compiled.
pub fn load_file(
    rt: &Runtime,
    file: &str,
    text: &str,
    overrides: &Overrides,
) -> Result<Vec<Rule>, Vec<RuleError>> {
    let spec: RuleFile = serde_norway::from_str(text).map_err(|e| {
        vec![RuleError {
            file: file.to_string(),
            line: e.location().map(|l| l.line()).unwrap_or(0),
            rule: None,
            message: e.to_string(),
        }]
    })?;
    let lines = id_lines(text);
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    for r in spec.rules {
        let origin = Origin {
            file: file.to_string(),
            line: lines.get(&r.id).copied().unwrap_or(0),
        };
        let empty = BTreeMap::new();
        let set = overrides.get(&r.id).unwrap_or(&empty);
        match Rule::compile(rt, r, origin, set) {
            Ok(rule) => rules.push(rule),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(errors)
    }
}

/// Loads the default pack (unless left out) and the given files, checks that ids are unique
/// and that every override names a loaded rule.
pub fn load(
    rt: &Runtime,
    default_pack: bool,
    files: &[(String, String)],
    overrides: &Overrides,
) -> Result<Vec<Rule>, Vec<RuleError>> {
    let mut all: Vec<Rule> = Vec::new();
    let mut errors = Vec::new();
    let pack = DEFAULT_PACK
        .iter()
        .filter(|_| default_pack)
        .map(|(n, t)| (n.to_string(), t.to_string()));
    for (name, text) in pack.chain(files.iter().cloned()) {
        match load_file(rt, &name, &text, overrides) {
            Ok(rules) => {
                for r in rules {
                    if let Some(old) = all.iter().find(|o| o.id == r.id) {
                        errors.push(RuleError {
                            file: r.origin.file.clone(),
                            line: r.origin.line,
                            rule: Some(r.id.clone()),
                            message: format!(
                                "the id is taken by the rule at {}:{}",
                                old.origin.file, old.origin.line
                            ),
                        });
                    } else {
                        all.push(r);
                    }
                }
            }
            Err(e) => errors.extend(e),
        }
    }
    for rule in overrides.keys() {
        if !all.iter().any(|r| &r.id == rule) {
            let hint = all
                .iter()
                .map(|r| (strsim::jaro_winkler(&r.id, rule), r.id.as_str()))
                .filter(|(s, _)| *s > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, id)| format!(" (did you mean {id:?}?)"))
                .unwrap_or_default();
            errors.push(RuleError {
                file: "--set".into(),
                line: 0,
                rule: None,
                message: format!("no rule {rule:?}{hint}"),
            });
        }
    }
    if errors.is_empty() {
        Ok(all)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_are_read_as_yaml() {
        let (r, p, v) = parse_override("forbidden-burst.threshold=50").unwrap();
        assert_eq!(
            (r.as_str(), p.as_str(), v),
            ("forbidden-burst", "threshold", serde_json::json!(50))
        );
        let (_, _, v) = parse_override("a.users=[x, 'y']").unwrap();
        assert_eq!(v, serde_json::json!(["x", "y"]));
        assert!(parse_override("threshold=5").is_err());
        assert!(parse_override("a.b").is_err());
    }
}
