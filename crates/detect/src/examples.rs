//! Running a rule's `examples`: each example alone, from empty state, with its own
//! parameter values; a failure says which example, what was expected and what happened.

use std::collections::BTreeMap;

use kubetrail_model::{ApiVersion, decode_event_value, parse_duration};
use serde_json::Value;

use crate::engine::Engine;
use crate::expr::Runtime;
use crate::rule::Rule;
use crate::spec::Example;

/// When an example's events have no time of their own.
const BASE_TIME_MICROS: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

/// An example that did not do what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExampleFailure {
    /// The rule.
    pub rule: String,
    /// The example's name.
    pub example: String,
    /// What went wrong.
    pub message: String,
}

/// How many examples ran, and the failures.
#[derive(Debug, Default)]
pub struct ExampleReport {
    /// Examples run.
    pub run: usize,
    /// The ones that failed.
    pub failures: Vec<ExampleFailure>,
}

fn replace_index(v: &Value, i: usize) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace("{i}", &i.to_string())),
        Value::Array(a) => Value::Array(a.iter().map(|x| replace_index(x, i)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), replace_index(x, i)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn with_time(mut v: Value, micros: i64) -> Value {
    if let Value::Object(o) = &mut v {
        let base = o
            .get("requestReceivedTimestamp")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<kubetrail_model::MicroTime>().ok())
            .map(|t| t.unix_micros());
        let t = base.unwrap_or(BASE_TIME_MICROS) + micros;
        o.insert(
            "requestReceivedTimestamp".into(),
            crate::alert::format_micros(t).into(),
        );
    }
    v
}

/// The events of an example, expanded.
fn events(example: &Example) -> Result<Vec<Value>, String> {
    if let Some(e) = &example.event {
        return Ok(vec![e.clone()]);
    }
    let mut out = Vec::new();
    let mut offset = 0i64;
    for e in &example.events {
        let step = match &e.every {
            Some(s) => i64::try_from(parse_duration(s)?.as_micros()).unwrap_or(i64::MAX),
            None => 1_000_000,
        };
        let n = e.repeat.unwrap_or(1);
        for i in 0..n {
            let v = if n > 1 {
                replace_index(&e.event, i)
            } else {
                e.event.clone()
            };
            out.push(with_time(v, offset));
            offset += step;
        }
    }
    Ok(out)
}

/// Runs one example of a rule.
fn run(rule: Rule, example: &Example) -> Result<(), String> {
    let rt = Runtime::new();
    let expected = match (example.fires, example.alerts) {
        (Some(true), None) => 1,
        (Some(false), None) => 0,
        (None, Some(n)) => n,
        _ => return Err("give either fires (one event) or alerts (events)".into()),
    };
    let mut engine = Engine::new(rt, vec![rule]);
    let mut alerts = Vec::new();
    for (n, v) in events(example)?.into_iter().enumerate() {
        let event =
            decode_event_value(v, Some(ApiVersion::V1)).map_err(|e| format!("event {n}: {e}"))?;
        engine.observe(&event, "example", &mut alerts);
    }
    if let Some(err) = engine.first_errors.first().cloned().flatten() {
        return Err(format!("the rule's expressions failed: {err}"));
    }
    if alerts.len() != expected {
        return Err(format!(
            "expected {expected} alert(s), got {}",
            alerts.len()
        ));
    }
    Ok(())
}

/// Runs every example of every rule.
pub fn run_examples(rules: &[Rule]) -> ExampleReport {
    let rt = Runtime::new();
    let mut report = ExampleReport::default();
    for rule in rules {
        for example in &rule.examples {
            report.run += 1;
            let fail = |message: String| ExampleFailure {
                rule: rule.id.clone(),
                example: example.name.clone(),
                message,
            };
            let set: BTreeMap<String, serde_json::Value> = example.set.clone();
            let result = rule
                .with_parameters(&rt, &set)
                .map_err(|e| e.message)
                .and_then(|r| run(r, example));
            if let Err(message) = result {
                report.failures.push(fail(message));
            }
        }
    }
    report
}
