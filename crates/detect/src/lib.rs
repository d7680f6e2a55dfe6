//! Detections over audit events: a rule language and the engine that runs it.
//!
//! A rule file is YAML ([`spec`]): each rule has an id, a severity, the audit level it
//! needs, the upstream detections it covers, a `match` block of cheap comparisons
//! ([`matcher`]) that dismisses most events before a CEL `condition` ([`expr`]) runs over the
//! event and its derived [`facts`], named parameters, evidence expressions and examples.
//! Stateful kinds count distinct values in a sliding window (`threshold`), tie one event to
//! an earlier one (`sequence`), or keep a keyed table (`table`) ([`state`]). The default pack
//! ([`pack::DEFAULT_PACK`]) is written in this language and embedded.
//!
//! The crate is pure: no I/O, no async, no store. Callers feed events in order to an
//! [`Engine`] and get [`Alert`]s back.

pub mod alert;
pub mod engine;
pub mod examples;
pub mod expr;
pub mod facts;
pub mod glob;
pub mod helpers;
pub mod lint;
pub mod matcher;
pub mod pack;
pub mod rule;
pub mod spec;
pub mod state;

pub use alert::{Alert, AlertObject};
pub use engine::{Counters, Engine, event_time};
pub use examples::{ExampleFailure, ExampleReport, run_examples};
pub use expr::Runtime;
pub use lint::lint;
pub use matcher::Head;
pub use pack::{DEFAULT_PACK, Overrides, load, load_file, parse_override};
pub use rule::{Origin, Rule, RuleError};
pub use spec::{Kind, Severity};
