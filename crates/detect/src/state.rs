//! The state of stateful rules, all in event time: sliding windows of counted events per key
//! (threshold), the last first step per key (sequence), and keyed tables with a time to live
//! and a size bound (table). Keys are kept per cluster. After an alert a key is quiet for the
//! rule's `suppress` time.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use crate::engine::Found;
use crate::expr::Runtime;
use crate::facts::Facts;
use crate::rule::Rule;

/// How many auditIDs an alert lists at most.
const RELATED_MAX: usize = 100;
/// Sweep idle keys every this many counted events.
const SWEEP_EVERY: u64 = 10_000;

fn scoped(cluster: &str, key: &str) -> String {
    format!("{cluster}\u{0}{key}")
}

fn micros_text(m: i64) -> String {
    let secs = m / 1_000_000;
    if secs % 3600 == 0 {
        format!("{}h", secs / 3600)
    } else if secs % 60 == 0 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// One counted event.
#[derive(Debug)]
struct Entry {
    time: i64,
    audit_id: String,
    distinct: String,
    collected: Vec<String>,
}

/// A key's counted events, with the auditIDs and distinct values they hold kept up to date
/// as events enter and leave, so that counting is constant time.
#[derive(Debug, Default)]
struct Window {
    entries: VecDeque<Entry>,
    ids: HashSet<String>,
    distinct: HashMap<String, usize>,
    quiet_until: i64,
}

impl Window {
    fn push(&mut self, e: Entry) {
        if !e.audit_id.is_empty() {
            self.ids.insert(e.audit_id.clone());
        }
        *self.distinct.entry(e.distinct.clone()).or_default() += 1;
        self.entries.push_back(e);
    }

    fn expire(&mut self, before: i64) {
        while self.entries.front().is_some_and(|e| e.time <= before) {
            let Some(e) = self.entries.pop_front() else {
                break;
            };
            self.ids.remove(&e.audit_id);
            if let Some(n) = self.distinct.get_mut(&e.distinct) {
                *n -= 1;
                if *n == 0 {
                    self.distinct.remove(&e.distinct);
                }
            }
        }
    }
}

/// Threshold state: a window per key.
#[derive(Debug, Default)]
pub struct Threshold {
    keys: HashMap<String, Window>,
    counted: u64,
}

impl Threshold {
    /// Counts the event if the rule's test passes; alerts when the window reaches the
    /// threshold of distinct values.
    pub fn observe(
        &mut self,
        rt: &Runtime,
        rule: &Rule,
        facts: &Facts,
        cluster: &str,
        time: i64,
    ) -> Result<Option<Found>, String> {
        if !rule.test.passes(rt, facts, &rule.params)? {
            return Ok(None);
        }
        let Some(key_expr) = &rule.key else {
            return Ok(None);
        };
        let key = scoped(cluster, &key_expr.key(rt, facts, &rule.params)?);
        let audit_id = facts.event.audit_id.clone().unwrap_or_default();
        let distinct = match &rule.distinct {
            Some(d) => d.key(rt, facts, &rule.params)?,
            None => audit_id.clone(),
        };
        let collected = rule
            .collect
            .iter()
            .map(|(_, e)| e.key(rt, facts, &rule.params))
            .collect::<Result<Vec<_>, _>>()?;
        let limits = rule.limits;
        self.counted += 1;
        if self.counted.is_multiple_of(SWEEP_EVERY) {
            self.keys.retain(|_, w| {
                w.entries
                    .back()
                    .is_some_and(|e| e.time > time - limits.window)
                    || w.quiet_until > time
            });
        }
        let window = self.keys.entry(key).or_default();
        window.expire(time - limits.window);
        // Each auditID counts once: the other stages of a request are the same request.
        if !audit_id.is_empty() && window.ids.contains(&audit_id) {
            return Ok(None);
        }
        window.push(Entry {
            time,
            audit_id,
            distinct,
            collected,
        });
        let count = window.distinct.len();
        if count < limits.threshold || time < window.quiet_until {
            return Ok(None);
        }
        window.quiet_until = time.saturating_add(limits.suppress);
        let mut found = Found {
            related: window
                .entries
                .iter()
                .rev()
                .skip(1)
                .take(RELATED_MAX)
                .map(|e| e.audit_id.clone())
                .filter(|a| !a.is_empty())
                .collect(),
            ..Found::default()
        };
        found.related.reverse();
        found.evidence.insert("count".into(), count.into());
        found
            .evidence
            .insert("window".into(), micros_text(limits.window).into());
        for (i, (name, _)) in rule.collect.iter().enumerate() {
            let mut seen: Vec<&str> = Vec::new();
            for e in &window.entries {
                let v = e.collected[i].as_str();
                if !seen.contains(&v) {
                    seen.push(v);
                }
            }
            found.evidence.insert(name.clone(), seen.into());
        }
        Ok(Some(found))
    }
}

/// Sequence state: the last first step per key.
#[derive(Debug, Default)]
pub struct Sequence {
    firsts: HashMap<String, (i64, String)>,
    quiet: HashMap<String, i64>,
    counted: u64,
}

impl Sequence {
    /// Remembers a first step; alerts on a second within the window of one.
    pub fn observe(
        &mut self,
        rt: &Runtime,
        rule: &Rule,
        facts: &Facts,
        cluster: &str,
        time: i64,
    ) -> Result<Option<Found>, String> {
        let Some(key_expr) = &rule.key else {
            return Ok(None);
        };
        let window = rule.limits.window;
        if let Some(first) = &rule.first
            && first.passes(rt, facts, &rule.params)?
        {
            let key = scoped(cluster, &key_expr.key(rt, facts, &rule.params)?);
            self.firsts.insert(
                key,
                (time, facts.event.audit_id.clone().unwrap_or_default()),
            );
            self.counted += 1;
            if self.counted.is_multiple_of(SWEEP_EVERY) {
                self.firsts.retain(|_, (t, _)| *t >= time - window);
                self.quiet.retain(|_, q| *q > time);
            }
        }
        if !rule.test.passes(rt, facts, &rule.params)? {
            return Ok(None);
        }
        let key = scoped(cluster, &key_expr.key(rt, facts, &rule.params)?);
        let Some((at, first_id)) = self.firsts.get(&key) else {
            return Ok(None);
        };
        if !(*at <= time && time <= at.saturating_add(window)) {
            return Ok(None);
        }
        if self.quiet.get(&key).is_some_and(|q| time < *q) {
            return Ok(None);
        }
        let mut found = Found {
            related: vec![first_id.clone()],
            ..Found::default()
        };
        found
            .evidence
            .insert("firstAuditID".into(), first_id.clone().into());
        found
            .evidence
            .insert("secondsAfterFirst".into(), ((time - at) / 1_000_000).into());
        self.quiet
            .insert(key, time.saturating_add(rule.limits.suppress));
        Ok(Some(found))
    }
}

/// Table state: entries by key, each with the time and auditID that recorded it; the oldest
/// are evicted first when the table is full.
#[derive(Debug, Default)]
pub struct Table {
    entries: HashMap<String, (i64, u64, String)>,
    order: BTreeMap<(i64, u64), String>,
    quiet: HashMap<String, i64>,
    seq: u64,
}

impl Table {
    /// How many entries the table holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn remove(&mut self, key: &str) {
        if let Some((t, s, _)) = self.entries.remove(key) {
            self.order.remove(&(t, s));
        }
    }

    /// Records a key at a time.
    pub fn insert(&mut self, key: String, time: i64, audit_id: String, max: usize) {
        self.remove(&key);
        while self.entries.len() >= max {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        self.seq += 1;
        self.order.insert((time, self.seq), key.clone());
        self.entries.insert(key, (time, self.seq, audit_id));
    }

    /// Applies the rule's writes, then alerts when the event passes the test and its key
    /// was recorded within the time to live.
    pub fn observe(
        &mut self,
        rt: &Runtime,
        rule: &Rule,
        facts: &Facts,
        cluster: &str,
        time: i64,
    ) -> Result<Option<Found>, String> {
        let limits = rule.limits;
        for u in &rule.record {
            if !u.test.passes(rt, facts, &rule.params)? {
                continue;
            }
            if let Some(prefix) = &u.prefix {
                let prefix = scoped(cluster, &prefix.key(rt, facts, &rule.params)?);
                let gone: Vec<String> = self
                    .entries
                    .keys()
                    .filter(|k| k.starts_with(&prefix))
                    .cloned()
                    .collect();
                for k in gone {
                    self.remove(&k);
                }
                continue;
            }
            let Some(key) = &u.key else { continue };
            let key = scoped(cluster, &key.key(rt, facts, &rule.params)?);
            let set = match &u.set {
                Some(s) => s.test(rt, facts, &rule.params)?,
                None => false,
            };
            if set {
                let id = facts.event.audit_id.clone().unwrap_or_default();
                self.insert(key, time, id, limits.max_entries);
            } else {
                self.remove(&key);
            }
        }
        // Expired entries leave the oldest end.
        while let Some(((t, _), _)) = self.order.first_key_value() {
            if *t >= time.saturating_sub(limits.ttl) {
                break;
            }
            if let Some((_, k)) = self.order.pop_first() {
                self.entries.remove(&k);
            }
        }
        if !rule.test.passes(rt, facts, &rule.params)? {
            return Ok(None);
        }
        let Some(key_expr) = &rule.key else {
            return Ok(None);
        };
        let key = scoped(cluster, &key_expr.key(rt, facts, &rule.params)?);
        let Some((at, _, recorded_by)) = self.entries.get(&key) else {
            return Ok(None);
        };
        if time - at > limits.ttl || self.quiet.get(&key).is_some_and(|q| time < *q) {
            return Ok(None);
        }
        let mut found = Found::default();
        if !recorded_by.is_empty() {
            found.related.push(recorded_by.clone());
        }
        found
            .evidence
            .insert("recordedAt".into(), crate::alert::format_micros(*at).into());
        if self.quiet.len() > limits.max_entries {
            self.quiet.retain(|_, q| *q > time);
        }
        self.quiet.insert(key, time.saturating_add(limits.suppress));
        Ok(Some(found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_evicts_the_oldest_entry() {
        let mut t = Table::default();
        t.insert("a".into(), 1, String::new(), 2);
        t.insert("b".into(), 2, String::new(), 2);
        t.insert("c".into(), 3, String::new(), 2);
        assert_eq!(t.len(), 2);
        assert!(!t.entries.contains_key("a"));
        // Recording a key again moves it to the young end.
        t.insert("b".into(), 4, String::new(), 2);
        t.insert("d".into(), 5, String::new(), 2);
        assert!(t.entries.contains_key("b") && t.entries.contains_key("d"));
    }
}
