//! The rule language as written: the YAML a rule file holds, decoded as it is, before any
//! compilation. Every key is documented here; `docs/detections.md` explains them with
//! examples.

use std::collections::BTreeMap;
use std::fmt;

use kubetrail_model::Level;
use serde::{Deserialize, Serialize};

/// A rule file: one or more rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// The rules, in the order alerts of one event are reported.
    pub rules: Vec<RuleSpec>,
}

/// How bad it is when a rule fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Worth a look.
    Low,
    /// Worth a look today.
    Medium,
    /// Worth a look now.
    High,
    /// Worth waking somebody.
    Critical,
}

impl Severity {
    /// Every severity, least first.
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The name rule files and flags use.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                format!("unknown severity {s:?}: expected info, low, medium, high or critical")
            })
    }
}

/// What a rule remembers between events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Each event on its own (the default).
    #[default]
    Stateless,
    /// A count of distinct values per key within a sliding window of event time.
    Threshold,
    /// An event (`first`) followed by another (the rule's own `match` and `condition`) with
    /// the same key within a window.
    Sequence,
    /// A keyed table that some events write (`record`) and the rule's events read.
    Table,
}

/// The detections of other engines that a rule covers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct References {
    /// Falco k8saudit rule names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub falco: Vec<String>,
    /// Panther rule ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub panther: Vec<String>,
    /// Sigma rule titles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sigma: Vec<String>,
    /// Elastic detection rule names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elastic: Vec<String>,
    /// Datadog out-of-the-box rule names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datadog: Vec<String>,
}

/// One rule as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Stable identifier: lower-case words joined by `-` (`privileged-pod`).
    pub id: String,
    /// One line for a person.
    pub title: String,
    /// How bad it is.
    pub severity: Severity,
    /// What it means, why it matters, and what to do.
    #[serde(default)]
    pub description: String,
    /// The upstream detections it covers.
    #[serde(default)]
    pub references: References,
    /// The least audit level at which the rule sees what it needs.
    pub level: Level,
    /// `stateless` (default), `threshold`, `sequence` or `table`.
    #[serde(default)]
    pub kind: Kind,
    /// Cheap conditions checked before the expression: all keys must hold; a list of
    /// blocks means any one of them.
    #[serde(default, rename = "match")]
    pub matches: MatchBlocks,
    /// A CEL expression over the event that must be true (absent: true).
    #[serde(default)]
    pub condition: Option<String>,
    /// Named values the expressions read as `params.NAME`; a configuration can override them.
    #[serde(default)]
    pub parameters: BTreeMap<String, serde_json::Value>,
    /// Named CEL expressions evaluated when the rule fires, shown with the alert.
    #[serde(default)]
    pub evidence: BTreeMap<String, String>,
    /// Threshold, sequence and table: a CEL expression giving the string that state is kept by.
    #[serde(default)]
    pub key: Option<String>,
    /// Threshold: a CEL expression giving what is counted distinctly (default: the auditID).
    #[serde(default)]
    pub distinct: Option<String>,
    /// Threshold: CEL expressions whose distinct values within the window go in the evidence.
    #[serde(default)]
    pub collect: BTreeMap<String, String>,
    /// Sequence: the event that must come first.
    #[serde(default)]
    pub first: Option<Step>,
    /// Table: the events that write the table.
    #[serde(default)]
    pub record: Vec<Update>,
    /// Events that must (and must not) fire; `kubetrail rules test` runs them.
    #[serde(default)]
    pub examples: Vec<Example>,
}

/// `match`: one block, or a list of blocks of which any one must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(from = "OneOrMany")]
pub struct MatchBlocks(pub Vec<MatchSpec>);

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    Many(Vec<MatchSpec>),
    One(MatchSpec),
}

impl From<OneOrMany> for MatchBlocks {
    fn from(v: OneOrMany) -> Self {
        match v {
            OneOrMany::Many(v) => MatchBlocks(v),
            OneOrMany::One(v) => MatchBlocks(vec![v]),
        }
    }
}

/// Whether the request did what it asked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Any outcome (the default).
    #[default]
    Any,
    /// No error code (absent or below 400); the authorizer may still have said forbid.
    Succeeded,
    /// Succeeded and not forbidden: the action happened.
    Ok,
    /// An error code (400 or above) or a forbid decision.
    Failed,
}

/// A block of cheap conditions. Within a key any listed value may match; all keys must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MatchSpec {
    /// Verbs (`create`, `get`, ...).
    #[serde(default)]
    pub verbs: Vec<String>,
    /// API groups; `""` is the core group.
    #[serde(default)]
    pub api_groups: Vec<String>,
    /// Resources as audit policies write them: `pods` (not its subresources), `pods/exec`,
    /// `pods/*` (any subresource of pods), `*/scale`, `*`.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Namespaces; `""` is cluster-scoped.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// User names; `*` in a pattern matches any run of characters.
    #[serde(default)]
    pub users: Vec<String>,
    /// User names that dismiss the event; `*` as in `users`.
    #[serde(default)]
    pub exclude_users: Vec<String>,
    /// Groups, any of which the user must be in.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Response codes.
    #[serde(default)]
    pub codes: Vec<i32>,
    /// `any` (default), `succeeded`, `ok` or `failed`.
    #[serde(default)]
    pub outcome: Outcome,
    /// Whether the request must (true) or must not (false) impersonate somebody.
    #[serde(default)]
    pub impersonated: Option<bool>,
}

/// The first event of a sequence.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// As the rule's `match`.
    #[serde(default, rename = "match")]
    pub matches: MatchBlocks,
    /// As the rule's `condition`.
    #[serde(default)]
    pub condition: Option<String>,
}

/// A write to a table rule's table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Update {
    /// Which events write.
    #[serde(default, rename = "match")]
    pub matches: MatchBlocks,
    /// A CEL condition on top of `match`.
    #[serde(default)]
    pub condition: Option<String>,
    /// CEL: the entry's key. One of `key` and `prefix`.
    #[serde(default)]
    pub key: Option<String>,
    /// CEL: every entry whose key starts with this is removed.
    #[serde(default)]
    pub prefix: Option<String>,
    /// CEL: true records the entry (at the event's time), false removes it. Default false.
    #[serde(default)]
    pub set: Option<String>,
}

/// An example: one event for a stateless rule, a list for a stateful one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    /// What the example shows.
    pub name: String,
    /// Stateless: whether the event fires the rule.
    #[serde(default)]
    pub fires: Option<bool>,
    /// Stateless: the event.
    #[serde(default)]
    pub event: Option<serde_json::Value>,
    /// Stateful: the events, in order.
    #[serde(default)]
    pub events: Vec<ExampleEvent>,
    /// Stateful: how many alerts the events raise.
    #[serde(default)]
    pub alerts: Option<usize>,
    /// Parameters set for this example only.
    #[serde(default)]
    pub set: BTreeMap<String, serde_json::Value>,
}

/// An event of a stateful example, possibly repeated.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExampleEvent {
    /// The event; in a repeated one, `{i}` in any string is replaced by the repetition's
    /// number (0, 1, ...).
    pub event: serde_json::Value,
    /// How many times (default 1).
    #[serde(default)]
    pub repeat: Option<usize>,
    /// Repetitions' `requestReceivedTimestamp` step (default `1s`).
    #[serde(default)]
    pub every: Option<String>,
}
