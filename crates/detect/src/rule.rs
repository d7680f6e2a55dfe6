//! Rules compiled from their [`spec`](crate::spec): match blocks, CEL programs and the
//! stateful settings, checked so that a rule that loads is a rule that can run.

use std::collections::BTreeMap;
use std::time::Duration;

use kubetrail_model::{Level, parse_duration};

use crate::expr::{Expr, Params, Runtime};
use crate::facts::{Facts, json};
use crate::matcher::Matcher;
use crate::spec::{Example, Kind, MatchBlocks, References, RuleSpec, Severity};

/// Where a rule came from: its file and the line of its `id`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The file (`default` for the embedded pack's files, as `default/NAME.yaml`).
    pub file: String,
    /// The line of the rule's `id:` (1-based; 0 when unknown).
    pub line: usize,
}

/// An error in a rule file: where, which rule, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {}{message}", rule.as_ref().map(|r| format!("rule {r}: ")).unwrap_or_default())]
pub struct RuleError {
    /// The file.
    pub file: String,
    /// The line (1-based; 0 when unknown).
    pub line: usize,
    /// The rule's id, when the error is within a rule.
    pub rule: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// A condition: match blocks and an optional CEL expression.
#[derive(Debug)]
pub struct Test {
    pub(crate) matcher: Matcher,
    pub(crate) condition: Option<Expr>,
}

impl Test {
    fn compile(
        rt: &Runtime,
        blocks: &MatchBlocks,
        condition: Option<&str>,
    ) -> Result<Test, String> {
        Ok(Test {
            matcher: Matcher::new(&blocks.0),
            condition: condition
                .map(|c| Expr::compile(rt, c).map_err(|e| format!("condition: {e}")))
                .transpose()?,
        })
    }

    /// Whether the event passes: the blocks, then the expression. An expression that fails
    /// (a missing field it did not guard) is an error, and the event does not pass.
    pub(crate) fn passes(
        &self,
        rt: &Runtime,
        facts: &Facts,
        params: &Params,
    ) -> Result<bool, String> {
        if !self.matcher.matches(facts.event, facts) {
            return Ok(false);
        }
        match &self.condition {
            None => Ok(true),
            Some(c) => c.test(rt, facts, params),
        }
    }
}

/// A write to a table.
#[derive(Debug)]
pub(crate) struct TableUpdate {
    pub(crate) test: Test,
    pub(crate) key: Option<Expr>,
    pub(crate) prefix: Option<Expr>,
    pub(crate) set: Option<Expr>,
}

/// The settings of a stateful rule, read from its parameters.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Limits {
    /// Sliding window (threshold, sequence), microseconds.
    pub(crate) window: i64,
    /// Threshold: alerts at this count.
    pub(crate) threshold: usize,
    /// After an alert, no other for the key for this long, microseconds.
    pub(crate) suppress: i64,
    /// Table: entries older than this are gone, microseconds.
    pub(crate) ttl: i64,
    /// Table: at most this many entries; the oldest go first.
    pub(crate) max_entries: usize,
}

/// A compiled rule.
#[derive(Debug)]
pub struct Rule {
    /// The id.
    pub id: String,
    /// The title.
    pub title: String,
    /// The severity.
    pub severity: Severity,
    /// The description.
    pub description: String,
    /// The upstream detections covered.
    pub references: References,
    /// The audit level needed.
    pub level: Level,
    /// Stateless or which stateful kind.
    pub kind: Kind,
    /// The parameters in effect (defaults, then overrides).
    pub parameters: BTreeMap<String, serde_json::Value>,
    /// The examples.
    pub examples: Vec<Example>,
    /// Where it was written.
    pub origin: Origin,
    /// The resources (as `match` spells them) its events have; empty when any may.
    pub resources: Vec<String>,
    pub(crate) params: Params,
    pub(crate) test: Test,
    pub(crate) evidence: Vec<(String, Expr)>,
    pub(crate) key: Option<Expr>,
    pub(crate) distinct: Option<Expr>,
    pub(crate) collect: Vec<(String, Expr)>,
    pub(crate) first: Option<Test>,
    pub(crate) record: Vec<TableUpdate>,
    pub(crate) limits: Limits,
    spec: RuleSpec,
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn compile_map(
    rt: &Runtime,
    what: &str,
    m: &BTreeMap<String, String>,
) -> Result<Vec<(String, Expr)>, String> {
    m.iter()
        .map(|(name, src)| {
            Expr::compile(rt, src)
                .map(|e| (name.clone(), e))
                .map_err(|e| format!("{what} {name}: {e}"))
        })
        .collect()
}

impl Rule {
    /// Compiles a rule with parameter overrides (names checked against the rule's own).
    pub fn compile(
        rt: &Runtime,
        spec: RuleSpec,
        origin: Origin,
        overrides: &BTreeMap<String, serde_json::Value>,
    ) -> Result<Rule, RuleError> {
        let err = |message: String| RuleError {
            file: origin.file.clone(),
            line: origin.line,
            rule: Some(spec.id.clone()),
            message,
        };
        if spec.id.is_empty()
            || !spec
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(err(
                "the id must be lower-case letters, digits and '-'".into()
            ));
        }
        let mut parameters = spec.parameters.clone();
        for (name, value) in overrides {
            let Some(old) = parameters.get(name) else {
                let known: Vec<&str> = parameters.keys().map(String::as_str).collect();
                return Err(err(format!(
                    "no parameter {name:?}{}",
                    if known.is_empty() {
                        " (the rule has none)".to_string()
                    } else {
                        format!(" (it has {})", known.join(", "))
                    }
                )));
            };
            if std::mem::discriminant(old) != std::mem::discriminant(value) {
                return Err(err(format!(
                    "parameter {name}: expected a value like {old}, got {value}"
                )));
            }
            parameters.insert(name.clone(), value.clone());
        }
        let params = Params::new(json(&serde_json::Value::Object(
            parameters
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )));
        let test = Test::compile(rt, &spec.matches, spec.condition.as_deref()).map_err(err)?;
        let evidence = compile_map(rt, "evidence", &spec.evidence).map_err(err)?;
        let collect = compile_map(rt, "collect", &spec.collect).map_err(err)?;
        let one = |what: &str, src: &Option<String>| -> Result<Option<Expr>, RuleError> {
            src.as_deref()
                .map(|s| Expr::compile(rt, s).map_err(|e| err(format!("{what}: {e}"))))
                .transpose()
        };
        let key = one("key", &spec.key)?;
        let distinct = one("distinct", &spec.distinct)?;
        let first = spec
            .first
            .as_ref()
            .map(|s| {
                Test::compile(rt, &s.matches, s.condition.as_deref())
                    .map_err(|e| err(format!("first: {e}")))
            })
            .transpose()?;
        let mut record = Vec::new();
        for (i, u) in spec.record.iter().enumerate() {
            let at = |e: String| err(format!("record[{i}]: {e}"));
            if u.key.is_some() == u.prefix.is_some() {
                return Err(at("give exactly one of key and prefix".into()));
            }
            record.push(TableUpdate {
                test: Test::compile(rt, &u.matches, u.condition.as_deref()).map_err(at)?,
                key: one(&format!("record[{i}].key"), &u.key)?,
                prefix: one(&format!("record[{i}].prefix"), &u.prefix)?,
                set: one(&format!("record[{i}].set"), &u.set)?,
            });
        }
        let duration = |name: &str| -> Result<i64, RuleError> {
            match parameters.get(name) {
                Some(serde_json::Value::String(s)) => parse_duration(s)
                    .map(micros)
                    .map_err(|e| err(format!("parameter {name}: {e}"))),
                Some(other) => Err(err(format!(
                    "parameter {name}: expected a duration such as \"5m\", got {other}"
                ))),
                None => Err(err(format!(
                    "a {} rule needs the parameter {name}",
                    kind_name(spec.kind)
                ))),
            }
        };
        let count = |name: &str| -> Result<usize, RuleError> {
            match parameters.get(name).and_then(serde_json::Value::as_u64) {
                Some(n) if n > 0 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
                _ => Err(err(format!(
                    "a {} rule needs the parameter {name}, a positive integer",
                    kind_name(spec.kind)
                ))),
            }
        };
        let suppress = || -> Result<i64, RuleError> {
            if parameters.contains_key("suppress") {
                duration("suppress")
            } else {
                Ok(30 * 60 * 1_000_000)
            }
        };
        let need_key = || -> Result<(), RuleError> {
            match key {
                Some(_) => Ok(()),
                None => Err(err(format!("a {} rule needs a key", kind_name(spec.kind)))),
            }
        };
        let limits = match spec.kind {
            Kind::Stateless => Limits::default(),
            Kind::Threshold => {
                need_key()?;
                Limits {
                    window: duration("window")?,
                    threshold: count("threshold")?,
                    suppress: suppress()?,
                    ..Limits::default()
                }
            }
            Kind::Sequence => {
                need_key()?;
                if first.is_none() {
                    return Err(err("a sequence rule needs a first step".into()));
                }
                Limits {
                    window: duration("window")?,
                    suppress: suppress()?,
                    ..Limits::default()
                }
            }
            Kind::Table => {
                need_key()?;
                if record.is_empty() {
                    return Err(err("a table rule needs record entries".into()));
                }
                Limits {
                    ttl: duration("ttl")?,
                    max_entries: count("max_entries")?,
                    suppress: suppress()?,
                    ..Limits::default()
                }
            }
        };
        if spec.kind != Kind::Threshold && (spec.distinct.is_some() || !spec.collect.is_empty()) {
            return Err(err("distinct and collect belong to threshold rules".into()));
        }
        if spec.kind != Kind::Sequence && spec.first.is_some() {
            return Err(err("first belongs to sequence rules".into()));
        }
        if spec.kind != Kind::Table && !spec.record.is_empty() {
            return Err(err("record belongs to table rules".into()));
        }
        let mut resources = Vec::new();
        let mut anywhere = false;
        let matchers = std::iter::once(&test.matcher)
            .chain(first.iter().map(|f| &f.matcher))
            .chain(record.iter().map(|u| &u.test.matcher));
        for m in matchers {
            match m.required_resources() {
                Some(r) => resources.extend(r.into_iter().map(String::from)),
                None => anywhere = true,
            }
        }
        if anywhere {
            resources.clear();
        }
        resources.sort();
        resources.dedup();
        Ok(Rule {
            id: spec.id.clone(),
            title: spec.title.clone(),
            severity: spec.severity,
            description: spec.description.clone(),
            references: spec.references.clone(),
            level: spec.level,
            kind: spec.kind,
            parameters,
            examples: spec.examples.clone(),
            origin,
            resources,
            params,
            test,
            evidence,
            key,
            distinct,
            collect,
            first,
            record,
            limits,
            spec,
        })
    }

    /// How far back in event time the rule's state reaches, in microseconds: a window and
    /// its suppression, or a table's TTL and its suppression; 0 for a stateless rule. An
    /// engine that sees again the events of this span decides as one that never stopped.
    pub fn memory_micros(&self) -> i64 {
        let l = &self.limits;
        match self.kind {
            Kind::Stateless => 0,
            Kind::Threshold | Kind::Sequence => l.window.saturating_add(l.suppress),
            Kind::Table => l.ttl.saturating_add(l.suppress),
        }
    }

    /// The requests the rule's events are (its own match blocks, a sequence's first step,
    /// a table's writes), as an audit policy sees them; empty when the rule names no
    /// resource.
    pub fn samples(&self) -> Vec<crate::matcher::Sample> {
        std::iter::once(&self.test.matcher)
            .chain(self.first.iter().map(|f| &f.matcher))
            .chain(self.record.iter().map(|u| &u.test.matcher))
            .flat_map(|m| m.blocks.iter().flat_map(|b| b.samples()))
            .collect()
    }

    /// The rule as written, compiled again with other parameter values.
    pub fn with_parameters(
        &self,
        rt: &Runtime,
        overrides: &BTreeMap<String, serde_json::Value>,
    ) -> Result<Rule, RuleError> {
        let mut all = self.parameters.clone();
        all.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        Rule::compile(rt, self.spec.clone(), self.origin.clone(), &all)
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Stateless => "stateless",
        Kind::Threshold => "threshold",
        Kind::Sequence => "sequence",
        Kind::Table => "table",
    }
}
