//! Live detection: every event `serve` commits — webhook, agent or import through the
//! server — is evaluated by the detection rules *after* its commit, on a thread of its own, so
//! detection never delays an acknowledgement. Alerts go to the store, which keeps one per
//! (cluster, rule, auditID): whichever stages and retries arrive, and however often an event
//! is evaluated again, a rule alerts once per request.
//!
//! A restart neither loses nor repeats alerts: before it takes new events the engine sees
//! again, from the store, what each rule's state reaches back to ([`Rule::memory_micros`];
//! at least [`REPLAY_FLOOR`], which also covers events committed but not yet evaluated when
//! the process stopped). Alerts raised again on the way are already stored and change nothing.
//! A reload ([`Detector::reload`], on SIGHUP) loads the rules anew, refuses a file that does
//! not load with its error and keeps the running rules, and otherwise starts the new rules
//! the same way.
//!
//! Alerts new to the store — not those a replay raises again — are handed to the notifier
//! ([`kubetrail_notify`]) when sinks are configured: it queues them in each sink's durable
//! outbox and delivers them from there.
//!
//! The queue between commits and the engine is bounded ([`QUEUE_EVENTS`]): when detection
//! cannot keep up, events past the bound are not evaluated live, counted in
//! `kubetrail_detection_skipped_events_total` and logged — the events themselves are stored
//! and acknowledged as always. Alerts the store refuses are kept and offered again.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use kubetrail_detect::{Alert, Engine, Head, Kind, Rule, Runtime, event_time};
use kubetrail_model::decode_event;
use kubetrail_notify::{Notice, Notifier};
use kubetrail_store::{AlertRecord, Cursor, Filter, Record, ResourceSelector, Store, TimeRange};
use serde::Serialize;

use crate::metrics::DetectionMetrics;

/// Loads the rules (the embedded pack, rule files, parameter overrides): called at start and
/// on every reload; an error is the text a person reads.
pub type RuleLoader = Arc<dyn Fn() -> Result<(Runtime, Vec<Rule>), String> + Send + Sync>;

/// Most committed events waiting for the engine.
pub const QUEUE_EVENTS: usize = 200_000;

/// Every rule sees at least this much again after a start or reload, in microseconds.
pub const REPLAY_FLOOR: i64 = 10 * 60 * 1_000_000;

/// A replay reads its span in this many slices, oldest first (each at least a minute).
const REPLAY_SLICES: i64 = 64;

/// Most events one replay slice reads; past it the slice's newest are kept.
pub const MAX_REPLAY_EVENTS: usize = 200_000;

/// Most alerts kept while the store refuses them; past it the oldest are dropped (and
/// counted).
const MAX_UNSAVED_ALERTS: usize = 100_000;

/// Alerts are stored once this many are waiting…
const SAVE_EVERY_ALERTS: usize = 1000;

/// …or this long after the last store call.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Events a replay reads from the store at a time.
const REPLAY_PAGE: usize = 5_000;

/// A rule as the API and the pages show it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleSummary {
    /// The id.
    pub id: String,
    /// The title.
    pub title: String,
    /// `info` … `critical`.
    pub severity: kubetrail_detect::Severity,
    /// The audit level the rule needs.
    pub level: String,
    /// `stateless`, `threshold`, `sequence` or `table`.
    pub kind: Kind,
    /// What it detects and why.
    pub description: String,
    /// The upstream detections it covers.
    pub references: kubetrail_detect::spec::References,
    /// Parameters and their values.
    pub parameters: std::collections::BTreeMap<String, serde_json::Value>,
}

impl RuleSummary {
    fn of(r: &Rule) -> RuleSummary {
        RuleSummary {
            id: r.id.clone(),
            title: r.title.clone(),
            severity: r.severity,
            level: r.level.as_str().to_string(),
            kind: r.kind,
            description: r.description.clone(),
            references: r.references.clone(),
            parameters: r.parameters.clone(),
        }
    }
}

/// An alert as the store keeps it.
pub fn alert_record(a: &Alert) -> Result<AlertRecord, String> {
    let ts = chrono::DateTime::parse_from_rfc3339(&a.time)
        .map_err(|e| format!("alert {} has no valid time {:?}: {e}", a.rule, a.time))?
        .timestamp_micros();
    Ok(AlertRecord {
        cluster: a.cluster.clone(),
        rule: a.rule.clone(),
        audit_id: a.audit_id.clone(),
        severity: a.severity.to_string(),
        ts_micros: ts,
        user: a.user.clone(),
        namespace: a.object_ref.namespace.clone(),
        resource: a.object_ref.resource.clone(),
        name: a.object_ref.name.clone(),
        json: serde_json::to_string(a).map_err(|e| e.to_string())?,
    })
}

/// What the store's columns tell of an event, for the engine's prefilter. Whether somebody
/// was impersonated: a name says yes, an event text without `impersonatedUser` says no.
fn head(r: &Record) -> Head<'_> {
    let impersonated = if !r.impersonated_user.is_empty() {
        Some(true)
    } else if r.raw.contains("\"impersonatedUser\"") {
        None
    } else {
        Some(false)
    };
    Head {
        verb: &r.verb,
        resource: &r.resource,
        subresource: &r.subresource,
        api_group: &r.api_group,
        namespace: &r.namespace,
        user: &r.user,
        groups: &r.groups,
        code: r.code,
        decision: &r.decision,
        impersonated,
    }
}

/// Rule titles by id.
fn titles(rules: &[Rule]) -> std::collections::HashMap<String, String> {
    rules
        .iter()
        .map(|r| (r.id.clone(), r.title.clone()))
        .collect()
}

/// What a notification says of a stored alert.
fn notice(a: &AlertRecord, titles: &std::collections::HashMap<String, String>) -> Notice {
    let alert: serde_json::Value = serde_json::from_str(&a.json).unwrap_or_default();
    let object =
        serde_json::from_value::<kubetrail_detect::AlertObject>(alert["objectRef"].clone())
            .map(|o| o.text())
            .unwrap_or_default();
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    Notice {
        rule: a.rule.clone(),
        title: titles
            .get(&a.rule)
            .cloned()
            .unwrap_or_else(|| a.rule.clone()),
        severity: a.severity.clone(),
        cluster: a.cluster.clone(),
        namespace: a.namespace.clone(),
        user: a.user.clone(),
        audit_id: a.audit_id.clone(),
        time: text(&alert["time"]),
        object,
        alert,
    }
}

enum Message {
    Committed(Vec<Record>),
    Rules(Runtime, Vec<Rule>),
}

/// Hands committed events to the detection thread.
pub struct Detector {
    tx: SyncSender<Message>,
    /// Events handed over and not yet evaluated and stored.
    queued: Arc<AtomicUsize>,
    /// True while the engine replays stored events (after a start or reload).
    replaying: Arc<AtomicBool>,
    /// Alerts raised and not yet offered to the store.
    unsaved: Arc<AtomicUsize>,
    loader: RuleLoader,
    rules: Arc<RwLock<Vec<RuleSummary>>>,
    metrics: DetectionMetrics,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector").finish_non_exhaustive()
    }
}

impl Detector {
    /// Loads the rules and starts the detection thread over `store`; the thread first sees
    /// the stored events its rules' state reaches back to.
    pub fn start(
        store: Arc<dyn Store>,
        loader: RuleLoader,
        metrics: DetectionMetrics,
        notifier: Option<Arc<Notifier>>,
    ) -> Result<Detector, String> {
        let (rt, rules) = loader()?;
        let summaries = Arc::new(RwLock::new(rules.iter().map(RuleSummary::of).collect()));
        metrics.rules_loaded(rules.len());
        // Messages, not events: a batch is one message; the event bound is `queued`.
        let (tx, rx) = mpsc::sync_channel(4096);
        let queued = Arc::new(AtomicUsize::new(0));
        let replaying = Arc::new(AtomicBool::new(true));
        let unsaved = Arc::new(AtomicUsize::new(0));
        let worker = Worker {
            unsaved_count: unsaved.clone(),
            store,
            queued: queued.clone(),
            replaying: replaying.clone(),
            metrics: metrics.clone(),
            unsaved: Vec::new(),
            last: Vec::new(),
            titles: titles(&rules),
            notifier,
        };
        std::thread::Builder::new()
            .name("kubetrail-detect".into())
            .spawn(move || worker.run(rx, Engine::new(rt, rules)))
            .map_err(|e| format!("starting the detection thread: {e}"))?;
        Ok(Detector {
            tx,
            queued,
            replaying,
            unsaved,
            loader,
            rules: summaries,
            metrics,
        })
    }

    /// Queues committed events for the engine; never waits. Past the bound they are counted
    /// as skipped.
    pub(crate) fn submit(&self, records: Vec<Record>) {
        let n = records.len();
        if n == 0 {
            return;
        }
        if self.queued.fetch_add(n, Ordering::AcqRel) + n > QUEUE_EVENTS {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            self.skipped(n);
            return;
        }
        match self.tx.try_send(Message::Committed(records)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(n, Ordering::AcqRel);
                self.skipped(n);
            }
        }
    }

    fn skipped(&self, n: usize) {
        if self.metrics.skipped(n) {
            tracing::warn!(
                events = n,
                "detection is behind: committed events were stored but not evaluated live \
                 (kubetrail_detection_skipped_events_total)"
            );
        }
    }

    /// Loads the rules again. A rule set that does not load is refused with its error and
    /// the running rules stay; otherwise the new rules replace them and see the stored
    /// events their state reaches back to. Returns how many rules run.
    pub fn reload(&self) -> Result<usize, String> {
        let (rt, rules) = match (self.loader)() {
            Ok(loaded) => loaded,
            Err(e) => {
                self.metrics.reloaded(false);
                return Err(e);
            }
        };
        let n = rules.len();
        let summaries = rules.iter().map(RuleSummary::of).collect();
        self.replaying.store(true, Ordering::Release);
        self.tx
            .send(Message::Rules(rt, rules))
            .map_err(|_| "the detection thread stopped".to_string())?;
        *self.rules.write().unwrap_or_else(|p| p.into_inner()) = summaries;
        self.metrics.reloaded(true);
        self.metrics.rules_loaded(n);
        Ok(n)
    }

    /// True when every event handed over is evaluated and its alerts offered to the store,
    /// and no replay runs.
    pub fn caught_up(&self) -> bool {
        !self.replaying.load(Ordering::Acquire)
            && self.queued.load(Ordering::Acquire) == 0
            && self.unsaved.load(Ordering::Acquire) == 0
    }

    /// The running rules.
    pub fn rules(&self) -> Vec<RuleSummary> {
        self.rules.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The detection thread.
struct Worker {
    store: Arc<dyn Store>,
    queued: Arc<AtomicUsize>,
    replaying: Arc<AtomicBool>,
    /// How many `unsaved` holds, for [`Detector::caught_up`].
    unsaved_count: Arc<AtomicUsize>,
    metrics: DetectionMetrics,
    /// Alerts the store has not taken yet.
    unsaved: Vec<AlertRecord>,
    /// Per rule, the engine's counters when they were last reported.
    last: Vec<(u64, u64)>,
    /// Where new alerts are announced, when sinks are configured.
    notifier: Option<Arc<Notifier>>,
    /// Rule titles, by id, for notifications.
    titles: std::collections::HashMap<String, String>,
}

impl Worker {
    fn run(mut self, rx: Receiver<Message>, engine: Engine) {
        let mut engine = engine;
        self.replay(&mut engine);
        self.save();
        self.replaying.store(false, Ordering::Release);
        let mut last_save = std::time::Instant::now();
        loop {
            let wait = SAVE_EVERY
                .saturating_sub(last_save.elapsed())
                .max(Duration::from_millis(1));
            match rx.recv_timeout(wait) {
                Ok(Message::Committed(records)) => {
                    self.evaluate(&mut engine, &records);
                    // Alerts are stored by the thousand or every second: a store call per
                    // batch would take the store from the commits it would wait behind.
                    if self.unsaved.len() >= SAVE_EVERY_ALERTS || last_save.elapsed() >= SAVE_EVERY
                    {
                        self.save();
                        last_save = std::time::Instant::now();
                    }
                    self.queued.fetch_sub(records.len(), Ordering::AcqRel);
                    continue;
                }
                Ok(Message::Rules(rt, rules)) => {
                    self.titles = titles(&rules);
                    engine = Engine::new(rt, rules);
                    self.replay(&mut engine);
                    self.save();
                    self.replaying.store(false, Ordering::Release);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.save();
                    return;
                }
            }
            self.save();
            last_save = std::time::Instant::now();
        }
    }

    /// Evaluates events, in event-time order, and queues their alerts for the store.
    fn evaluate(&mut self, engine: &mut Engine, records: &[Record]) {
        self.evaluate_only(engine, records, None);
    }

    /// Evaluates the records `only` selects rules for. A record whose columns say no rule can
    /// concern it ([`Engine::may_concern`]: most of them) is counted and never decoded.
    fn evaluate_only(&mut self, engine: &mut Engine, records: &[Record], only: Option<&[bool]>) {
        let mut decoded: Vec<(i64, usize, &str, kubetrail_model::Event)> = Vec::new();
        for (i, r) in records.iter().enumerate() {
            if r.stage == Some(kubetrail_model::Stage::RequestReceived)
                || !engine.may_concern(&head(r))
            {
                engine.pass();
                continue;
            }
            // Stored events decoded once already: one that no longer does is left out.
            if let Ok(mut e) = decode_event(r.raw.as_bytes()) {
                // The identity the store gave an event without one: alerts name the stored
                // event (its page, its deduplication), and take the time the store keys it by.
                if e.audit_id.as_deref().is_none_or(str::is_empty) {
                    e.audit_id = Some(r.audit_id.clone());
                }
                if e.request_received_timestamp.is_none() && e.stage_timestamp.is_none() {
                    e.stage_timestamp = chrono::DateTime::from_timestamp_micros(r.ts_micros)
                        .map(kubetrail_model::MicroTime);
                }
                decoded.push((event_time(&e).unwrap_or(i64::MIN), i, &r.cluster, e));
            }
        }
        decoded.sort_unstable_by_key(|(t, i, _, _)| (*t, *i));
        let mut alerts = Vec::new();
        for (_, _, cluster, e) in &decoded {
            engine.observe_only(e, cluster, &mut alerts, only);
        }
        self.metrics.evaluated(records.len());
        for a in &alerts {
            match alert_record(a) {
                Ok(r) => self.unsaved.push(r),
                Err(e) => tracing::error!("an alert could not be stored: {e}"),
            }
        }
        self.unsaved_count
            .store(self.unsaved.len(), Ordering::Release);
        self.report(engine);
    }

    /// Reports the engine's per-rule counts (alerts, expression errors) since last time.
    fn report(&mut self, engine: &Engine) {
        let counters = &engine.counters().per_rule;
        if self.last.len() != counters.len() {
            self.last = vec![(0, 0); counters.len()];
        }
        for ((rule, now), last) in engine.rules().iter().zip(counters).zip(&mut self.last) {
            let raised = now.0.saturating_sub(last.0);
            let errors = now.1.saturating_sub(last.1);
            if raised > 0 || errors > 0 {
                self.metrics
                    .rule_counts(&rule.id, rule.severity, raised, errors);
            }
            *last = *now;
        }
    }

    /// Offers the unsaved alerts to the store; keeps them when it refuses.
    fn save(&mut self) {
        if self.unsaved.is_empty() {
            return;
        }
        let fresh = match &self.notifier {
            Some(_) => match self.not_stored() {
                Ok(fresh) => Some(fresh),
                Err(e) => {
                    tracing::warn!(error = %e, "the store did not say which alerts are new; they are offered again");
                    return;
                }
            },
            None => None,
        };
        match self.store.append_alerts(&self.unsaved) {
            Ok(stored) => {
                self.metrics.stored(stored);
                if let (Some(notifier), Some(fresh)) = (&self.notifier, fresh) {
                    let notices: Vec<Notice> = fresh
                        .into_iter()
                        .map(|i| notice(&self.unsaved[i], &self.titles))
                        .collect();
                    notifier.send(&notices);
                }
                self.unsaved.clear();
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    alerts = self.unsaved.len(),
                    "the store did not take the alerts; they are offered again"
                );
                if self.unsaved.len() > MAX_UNSAVED_ALERTS {
                    let over = self.unsaved.len() - MAX_UNSAVED_ALERTS;
                    self.unsaved.drain(..over);
                    self.metrics.dropped(over);
                    tracing::error!(
                        dropped = over,
                        "alerts dropped: the store refused them for too long"
                    );
                }
            }
        }
        self.metrics.unsaved(self.unsaved.len());
        self.unsaved_count
            .store(self.unsaved.len(), Ordering::Release);
    }

    /// The unsaved alerts the store does not hold yet (by index), each key once: what is
    /// announced. Alerts a replay raises again are stored already and are not.
    fn not_stored(&self) -> kubetrail_store::Result<Vec<usize>> {
        use std::collections::HashSet;
        let key = |a: &AlertRecord| (a.cluster.clone(), a.rule.clone(), a.audit_id.clone());
        let mut stored: HashSet<(String, String, String)> = HashSet::new();
        for chunk in self.unsaved.chunks(500) {
            let distinct = |f: fn(&AlertRecord) -> &String| {
                let mut v: Vec<String> = chunk.iter().map(|a| f(a).clone()).collect();
                v.sort();
                v.dedup();
                v
            };
            let filter = kubetrail_store::AlertFilter {
                clusters: distinct(|a| &a.cluster),
                rules: distinct(|a| &a.rule),
                audit_ids: distinct(|a| &a.audit_id),
                ..kubetrail_store::AlertFilter::default()
            };
            // The filter is a cross product of the keys: it may match more than the chunk.
            let limit = chunk.len() * 8 + 1000;
            stored.extend(self.store.query_alerts(&filter, limit)?.iter().map(key));
        }
        let mut seen = HashSet::new();
        Ok((0..self.unsaved.len())
            .filter(|i| {
                let k = key(&self.unsaved[*i]);
                !stored.contains(&k) && seen.insert(k)
            })
            .collect())
    }

    /// Sees again the stored events each rule's state reaches back to, from the newest
    /// stored event: the table rules their resources over their (long) span, the others
    /// every event over theirs.
    fn replay(&mut self, engine: &mut Engine) {
        let started = std::time::Instant::now();
        let newest = match self.store.query(&Filter::default(), None, 1) {
            Ok(page) => page.records.first().map(|r| r.ts_micros),
            Err(e) => {
                tracing::warn!(error = %e, "detection starts without replaying stored events");
                return;
            }
        };
        let Some(newest) = newest else {
            return;
        };
        let table: Vec<bool> = engine
            .rules()
            .iter()
            .map(|r| r.kind == Kind::Table)
            .collect();
        let others: Vec<bool> = table.iter().map(|t| !t).collect();
        let span = |select: &[bool]| {
            engine
                .rules()
                .iter()
                .zip(select)
                .filter(|(_, s)| **s)
                .map(|(r, _)| r.memory_micros())
                .max()
        };
        let mut phases: Vec<(i64, Vec<ResourceSelector>, Vec<bool>)> = Vec::new();
        if let Some(reach) = span(&table) {
            let mut resources: Vec<ResourceSelector> = Vec::new();
            let mut any = false;
            for r in engine.rules().iter().filter(|r| r.kind == Kind::Table) {
                any |= r.resources.is_empty();
                for res in &r.resources {
                    resources.push(ResourceSelector {
                        group: None,
                        resource: Some(res.clone()),
                        subresource: None,
                    });
                }
            }
            phases.push((reach, if any { Vec::new() } else { resources }, table));
        }
        if let Some(reach) = span(&others) {
            phases.push((reach.max(REPLAY_FLOOR), Vec::new(), others));
        }
        let mut seen = 0;
        for (reach, resources, only) in phases {
            // Oldest slice first, one slice in memory at a time.
            let step = (reach / REPLAY_SLICES).max(60_000_000);
            let mut from = newest.saturating_sub(reach);
            while from <= newest {
                let filter = Filter {
                    time: TimeRange {
                        from_micros: Some(from),
                        to_micros: Some(from.saturating_add(step)),
                    },
                    resources: resources.clone(),
                    ..Filter::default()
                };
                let events = match self.read_back(&filter) {
                    Ok(events) => events,
                    Err(e) => {
                        tracing::warn!(error = %e, "detection could not replay stored events");
                        break;
                    }
                };
                seen += events.len();
                self.evaluate_only(engine, &events, Some(&only));
                self.save();
                from = from.saturating_add(step);
            }
        }
        // Alerts raised again count as raised (the store keeps each once; `alerts_stored`
        // counts the new ones).
        tracing::info!(
            events = seen,
            seconds = started.elapsed().as_secs_f64(),
            "detection replayed the stored events its rules' state reaches back to"
        );
    }

    /// The events `filter` selects, newest first, at most [`MAX_REPLAY_EVENTS`].
    fn read_back(&self, filter: &Filter) -> kubetrail_store::Result<Vec<Record>> {
        let mut out = Vec::new();
        let mut cursor: Option<Cursor> = None;
        loop {
            let page = self.store.query(filter, cursor.as_ref(), REPLAY_PAGE)?;
            out.extend(page.records);
            if out.len() >= MAX_REPLAY_EVENTS {
                out.truncate(MAX_REPLAY_EVENTS);
                tracing::warn!(
                    events = MAX_REPLAY_EVENTS,
                    "detection replays only the newest stored events of a slice of its span"
                );
                return Ok(out);
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(out),
            }
        }
    }
}
