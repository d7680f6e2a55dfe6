//! The engine: every rule over a stream of events, in the order given. Events at
//! `RequestReceived` are skipped; a stateless rule alerts once per auditID whichever stages
//! arrive; stateful rules keep their windows and tables in event time
//! (`requestReceivedTimestamp`, else `stageTimestamp`).

use std::collections::{HashMap, HashSet, VecDeque};

use kubetrail_model::{Event, Stage};

use crate::alert::Alert;
use crate::expr::Runtime;
use crate::facts::Facts;
use crate::matcher::Head;
use crate::rule::Rule;
use crate::spec::Kind;
use crate::state::{Sequence, Table, Threshold};

/// How many (rule, auditID) pairs that alerted are remembered for deduplication.
const FIRED_MEMORY: usize = 200_000;

/// A rule's state.
#[derive(Debug, Default)]
enum State {
    #[default]
    None,
    Threshold(Threshold),
    Sequence(Sequence),
    Table(Table),
}

/// What the engine has counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Events seen (RequestReceived included).
    pub events: u64,
    /// Alerts raised.
    pub alerts: u64,
    /// Per rule (in rule order): alerts raised and expression errors.
    pub per_rule: Vec<(u64, u64)>,
}

/// Every rule and its state.
pub struct Engine {
    runtime: Runtime,
    rules: Vec<Rule>,
    state: Vec<State>,
    /// Lists of rules in rule order: first those that any resource may trigger, then per
    /// resource named by some rule the rules it may trigger (those of any resource included).
    lists: Vec<Vec<usize>>,
    /// The list of each resource some rule names.
    by_resource: HashMap<String, usize, foldhash::fast::RandomState>,
    fired: HashSet<(usize, String)>,
    fired_order: VecDeque<(usize, String)>,
    counters: Counters,
    /// The first expression error per rule, for a caller to report.
    pub first_errors: Vec<Option<String>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("rules", &self.rules.len())
            .finish()
    }
}

/// The event time of an event in microseconds, if it has one.
pub fn event_time(event: &Event) -> Option<i64> {
    event
        .request_received_timestamp
        .or(event.stage_timestamp)
        .map(|t| t.unix_micros())
}

impl Engine {
    /// An engine over compiled rules, with empty state.
    pub fn new(runtime: Runtime, rules: Vec<Rule>) -> Engine {
        let mut anywhere = Vec::new();
        let mut by_resource: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, r) in rules.iter().enumerate() {
            if r.resources.is_empty() {
                anywhere.push(i);
            }
            for res in &r.resources {
                by_resource.entry(res.clone()).or_default().push(i);
            }
        }
        let mut lists = vec![anywhere];
        let by_resource = by_resource
            .into_iter()
            .map(|(resource, mut list)| {
                list.extend(&lists[0]);
                list.sort_unstable();
                list.dedup();
                lists.push(list);
                (resource, lists.len() - 1)
            })
            .collect();
        let state = rules
            .iter()
            .map(|r| match r.kind {
                Kind::Stateless => State::None,
                Kind::Threshold => State::Threshold(Threshold::default()),
                Kind::Sequence => State::Sequence(Sequence::default()),
                Kind::Table => State::Table(Table::default()),
            })
            .collect();
        let n = rules.len();
        Engine {
            runtime,
            rules,
            state,
            lists,
            by_resource,
            fired: HashSet::new(),
            fired_order: VecDeque::new(),
            counters: Counters {
                per_rule: vec![(0, 0); n],
                ..Counters::default()
            },
            first_errors: vec![None; n],
        }
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// What has been counted so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Forgets every window, table and deduplication record.
    pub fn reset(&mut self) {
        for (s, r) in self.state.iter_mut().zip(&self.rules) {
            *s = match r.kind {
                Kind::Stateless => State::None,
                Kind::Threshold => State::Threshold(Threshold::default()),
                Kind::Sequence => State::Sequence(Sequence::default()),
                Kind::Table => State::Table(Table::default()),
            };
        }
        self.fired.clear();
        self.fired_order.clear();
    }

    /// The list of the rules an event's resource may trigger.
    fn candidates(&self, event: &Event) -> usize {
        let resource = event
            .object_ref
            .as_ref()
            .and_then(|o| o.resource.as_deref())
            .unwrap_or("");
        self.by_resource.get(resource).copied().unwrap_or(0)
    }

    /// Whether an event with this head may concern some rule: may pass the match blocks of a
    /// rule its resource may trigger (a rule's own, a sequence's first step, a table's
    /// writes). False means evaluating it would change nothing, so a caller that holds the
    /// columns need not decode the event at all; it counts it with [`Engine::pass`].
    pub fn may_concern(&self, head: &Head<'_>) -> bool {
        let list = self.by_resource.get(head.resource).copied().unwrap_or(0);
        self.lists[list].iter().any(|&i| {
            let r = &self.rules[i];
            r.test.matcher.may_match(head)
                || r.first.as_ref().is_some_and(|f| f.matcher.may_match(head))
                || r.record.iter().any(|u| u.test.matcher.may_match(head))
        })
    }

    /// Counts an event seen and not evaluated (see [`Engine::may_concern`]).
    pub fn pass(&mut self) {
        self.counters.events += 1;
    }

    /// Evaluates every rule on one event, appending the alerts it raises.
    pub fn observe(&mut self, event: &Event, cluster: &str, out: &mut Vec<Alert>) {
        self.observe_only(event, cluster, out, None);
    }

    /// Evaluates the rules `only` selects (by index in rule order; all when `None`) on one
    /// event: how a restarted engine sees again, for each rule, what its state reaches back to.
    pub fn observe_only(
        &mut self,
        event: &Event,
        cluster: &str,
        out: &mut Vec<Alert>,
        only: Option<&[bool]>,
    ) {
        self.counters.events += 1;
        if event.stage == Some(Stage::RequestReceived) {
            return;
        }
        let list = self.candidates(event);
        if self.lists[list].is_empty() {
            return;
        }
        let time = event_time(event).unwrap_or(0);
        let facts = Facts::new(event);
        let audit_id = event.audit_id.as_deref().unwrap_or("");
        for k in 0..self.lists[list].len() {
            let i = self.lists[list][k];
            if only.is_some_and(|o| !o.get(i).copied().unwrap_or(false)) {
                continue;
            }
            let before = out.len();
            let result = self.evaluate(i, &facts, cluster, time, out);
            if let Err(e) = result {
                self.counters.per_rule[i].1 += 1;
                if self.first_errors[i].is_none() {
                    self.first_errors[i] = Some(e);
                }
            }
            for alert in &mut out[before..] {
                if alert.audit_id.is_empty() {
                    alert.audit_id = audit_id.to_string();
                }
            }
            let raised = (out.len() - before) as u64;
            self.counters.per_rule[i].0 += raised;
            self.counters.alerts += raised;
        }
    }

    /// Whether (rule, auditID) alerted already; records it if not. Events without an auditID
    /// are each their own key.
    fn first_time(&mut self, rule: usize, audit_id: &str) -> bool {
        if audit_id.is_empty() {
            return true;
        }
        let key = (rule, audit_id.to_string());
        if self.fired.contains(&key) {
            return false;
        }
        if self.fired_order.len() >= FIRED_MEMORY
            && let Some(old) = self.fired_order.pop_front()
        {
            self.fired.remove(&old);
        }
        self.fired.insert(key.clone());
        self.fired_order.push_back(key);
        true
    }

    fn evaluate(
        &mut self,
        i: usize,
        facts: &Facts,
        cluster: &str,
        time: i64,
        out: &mut Vec<Alert>,
    ) -> Result<(), String> {
        let rt = &self.runtime;
        let rule = &self.rules[i];
        let audit_id = facts.event.audit_id.as_deref().unwrap_or("");
        let found = match (&mut self.state[i], rule.kind) {
            (_, Kind::Stateless) => rule
                .test
                .passes(rt, facts, &rule.params)?
                .then(Found::default),
            (State::Threshold(state), _) => state.observe(rt, rule, facts, cluster, time)?,
            (State::Sequence(state), _) => state.observe(rt, rule, facts, cluster, time)?,
            (State::Table(state), _) => state.observe(rt, rule, facts, cluster, time)?,
            (State::None, _) => None,
        };
        let Some(found) = found else {
            return Ok(());
        };
        if !self.first_time(i, audit_id) {
            return Ok(());
        }
        let rule = &self.rules[i];
        let mut a = Alert::new(&rule.id, rule.severity, cluster, facts, time);
        a.related_audit_ids = found.related;
        a.evidence = found.evidence;
        for (name, expr) in &rule.evidence {
            let value = expr
                .eval(&self.runtime, facts, &rule.params)
                .ok()
                .and_then(|v| v.json().ok())
                .unwrap_or(serde_json::Value::Null);
            a.evidence.insert(name.clone(), value);
        }
        out.push(a);
        Ok(())
    }
}

/// What a stateful rule adds to its alert.
#[derive(Debug, Default)]
pub struct Found {
    /// The other events the alert rests on.
    pub related: Vec<String>,
    /// The rule kind's own evidence (count, window, ...).
    pub evidence: serde_json::Map<String, serde_json::Value>,
}
