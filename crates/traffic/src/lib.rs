//! Realistic audit traffic, the way kube-apiserver would log it under a given policy: system
//! components dominate (kubelets and node leases, controllers, the scheduler, kube-proxy
//! watches, health probes), people use kubectl, CI service accounts deploy; exec and attach,
//! secret reads, RBAC edits, 401s, 403s, 404s and 409s happen now and then.
//!
//! Every request is resolved through RequestInfo and evaluated against the policy, so levels,
//! omitted stages and bodies are exactly what that policy would record. The output depends only
//! on the seed and the start time.

mod body;
mod rng;
mod scenario;

use chrono::{DateTime, SecondsFormat, Utc};
use kubetrail_model::{Level, Stage};
use kubetrail_policy::requestinfo::resolve;
use kubetrail_policy::{Policy, RequestAttributes};
use serde_json::{Map, Value, json};

pub use rng::Pcg32;
use scenario::{Request, pick};

/// Events per request under the seed policy, on average (measured over a generated week: some
/// requests are logged at two stages, many at none), for spreading a wanted number of events
/// over a wanted time.
pub const EVENTS_PER_REQUEST: f64 = 0.97;

/// Generator settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Seed of the pseudo-random sequence.
    pub seed: u64,
    /// Time of the first request.
    pub start: DateTime<Utc>,
    /// Requests per second (on average).
    pub rate: f64,
    /// Which cluster this stream is (changes node names, addresses and IDs).
    pub cluster: u32,
}

/// Produces events, request by request, in the order a log backend writes them: by the time
/// of their stage (a watch's ResponseComplete comes minutes after its ResponseStarted, with
/// other requests' events in between).
pub struct Generator<'p> {
    policy: &'p Policy,
    rng: Pcg32,
    now_micros: i64,
    mean_gap_micros: f64,
    cluster: u32,
    /// Events generated but not yet due, earliest first.
    pending: std::collections::BinaryHeap<std::cmp::Reverse<(i64, u64, String)>>,
    sequence: u64,
    /// Requests generated so far.
    pub requests: u64,
}

/// One generated event line and its time.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedEvent {
    /// Event time (stageTimestamp), microseconds since the epoch.
    pub ts_micros: i64,
    /// The event as one line of JSON.
    pub json: String,
}

impl<'p> Generator<'p> {
    /// A generator over `policy`.
    pub fn new(policy: &'p Policy, config: &Config) -> Self {
        Generator {
            policy,
            rng: Pcg32::new(
                config.seed ^ (u64::from(config.cluster) << 32),
                u64::from(config.cluster) * 2 + 1,
            ),
            now_micros: config.start.timestamp_micros(),
            mean_gap_micros: 1e6 / config.rate.max(1e-6),
            cluster: config.cluster,
            pending: std::collections::BinaryHeap::new(),
            sequence: 0,
            requests: 0,
        }
    }

    /// Starts the next request and appends to `out` every event that is due by its start
    /// time, in time order (possibly none).
    pub fn next_request(&mut self, out: &mut Vec<GeneratedEvent>) {
        // Exponential inter-arrival times around the mean rate.
        let gap = -self.mean_gap_micros * (1.0 - self.rng.next_f64()).ln();
        self.now_micros += gap.max(1.0) as i64;
        self.requests += 1;
        let req = pick(&mut self.rng, self.cluster);
        let mut events = Vec::new();
        self.emit(&req, &mut events);
        for e in events {
            self.sequence += 1;
            self.pending
                .push(std::cmp::Reverse((e.ts_micros, self.sequence, e.json)));
        }
        while let Some(std::cmp::Reverse((ts, _, _))) = self.pending.peek() {
            if *ts > self.now_micros {
                break;
            }
            let std::cmp::Reverse((ts_micros, _, json)) = self.pending.pop().expect("peeked");
            out.push(GeneratedEvent { ts_micros, json });
        }
    }

    fn emit(&mut self, req: &Request, out: &mut Vec<GeneratedEvent>) {
        let Ok(info) = resolve(req.method, &req.url) else {
            return;
        };
        let user = (!req.user.is_empty()).then(|| req.user.clone());
        let attrs = RequestAttributes::from_request_info(info.clone(), user, req.groups.clone());
        let decision = self.policy.evaluate(&attrs.as_attributes());
        if decision.level == Level::None {
            return;
        }
        let audit_id = self.rng.uuid();
        let received = self.now_micros;
        let latency = req.latency_ms as i64 * 1000 + (self.rng.next_f64() * 3000.0) as i64;
        let long_running = kubetrail_model::is_long_running(&info.verb, &info.subresource);

        // The object's name: from the URL, or for a create from the body.
        let name = if info.name.is_empty() {
            req.body_name.clone().unwrap_or_default()
        } else {
            info.name.clone()
        };
        let mut base = Map::new();
        base.insert("kind".into(), "Event".into());
        base.insert("apiVersion".into(), "audit.k8s.io/v1".into());
        base.insert("level".into(), decision.level.as_str().into());
        base.insert("auditID".into(), audit_id.into());
        base.insert("stage".into(), Value::Null);
        base.insert("requestURI".into(), req.url.clone().into());
        base.insert("verb".into(), info.verb.clone().into());
        let mut user = Map::new();
        if req.user.is_empty() {
            user.insert("username".into(), "system:anonymous".into());
            user.insert("groups".into(), json!(["system:unauthenticated"]));
        } else {
            user.insert("username".into(), req.user.clone().into());
            user.insert("uid".into(), self.rng.uuid().into());
            user.insert("groups".into(), json!(req.groups));
        }
        base.insert("user".into(), Value::Object(user));
        if let Some(imp) = &req.impersonate {
            base.insert(
                "impersonatedUser".into(),
                json!({"username": imp, "groups": ["system:authenticated"]}),
            );
        }
        base.insert("sourceIPs".into(), json!([req.source_ip]));
        base.insert("userAgent".into(), req.user_agent.into());
        if info.is_resource_request {
            let mut r = Map::new();
            r.insert("resource".into(), info.resource.clone().into());
            if !info.namespace.is_empty() {
                r.insert("namespace".into(), info.namespace.clone().into());
            }
            if !name.is_empty() {
                r.insert("name".into(), name.clone().into());
            }
            if !info.api_group.is_empty() {
                r.insert("apiGroup".into(), info.api_group.clone().into());
            }
            r.insert("apiVersion".into(), info.api_version.clone().into());
            if !info.subresource.is_empty() {
                r.insert("subresource".into(), info.subresource.clone().into());
            }
            base.insert("objectRef".into(), Value::Object(r));
        }
        // A failed authentication is one ResponseStarted event with an empty user.
        let unauthenticated = req.code == 401;
        if unauthenticated {
            base.insert("user".into(), json!({}));
        }
        let all_stages = [
            (Stage::RequestReceived, received),
            (Stage::ResponseStarted, received + latency / 4),
            (Stage::ResponseComplete, received + latency),
        ];
        let stages: &[(Stage, i64)] = if unauthenticated {
            &all_stages[1..2]
        } else {
            &all_stages
        };
        for &(stage, at) in stages {
            let started_applies = long_running || unauthenticated;
            if decision.omit_stages.contains(stage)
                || (stage == Stage::ResponseStarted && !started_applies)
            {
                continue;
            }
            let mut e = base.clone();
            e.insert("stage".into(), stage.as_str().into());
            if stage != Stage::RequestReceived {
                e.insert(
                    "responseStatus".into(),
                    body::status(req.code, &info.resource, &name, &req.user),
                );
            }
            let level = decision.level;
            if level >= Level::Request && info.is_resource_request && req.body.is_some() {
                e.insert(
                    "requestObject".into(),
                    body::object(req.body, &name, &info.namespace, &mut self.rng),
                );
            }
            if level == Level::RequestResponse
                && info.is_resource_request
                && stage != Stage::RequestReceived
                && req.code < 300
            {
                let response = req.response.or(req.body);
                if response.is_some() {
                    e.insert(
                        "responseObject".into(),
                        body::object(response, &name, &info.namespace, &mut self.rng),
                    );
                }
            }
            e.insert(
                "requestReceivedTimestamp".into(),
                micro_time(received).into(),
            );
            e.insert("stageTimestamp".into(), micro_time(at).into());
            if stage != Stage::RequestReceived && !unauthenticated {
                let forbidden = req.code == 403;
                let mut annotations = Map::new();
                annotations.insert(
                    "authorization.k8s.io/decision".into(),
                    if forbidden { "forbid" } else { "allow" }.into(),
                );
                annotations.insert(
                    "authorization.k8s.io/reason".into(),
                    if forbidden {
                        String::new()
                    } else {
                        format!("RBAC: allowed by ClusterRoleBinding \"{}\"", req.binding)
                    }
                    .into(),
                );
                e.insert("annotations".into(), Value::Object(annotations));
            }
            out.push(GeneratedEvent {
                ts_micros: at,
                json: Value::Object(e).to_string(),
            });
        }
    }
}

fn micro_time(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use kubetrail_model::decode_event;
    use kubetrail_policy::{LoadOptions, load_str};
    use std::collections::HashMap;

    const SEED: &str = include_str!("../../../testdata/policy/seed-audit-policy.yaml");

    fn generate(seed: u64, requests: usize) -> Vec<GeneratedEvent> {
        let policy = load_str(SEED, LoadOptions::default()).policy.unwrap();
        let config = Config {
            seed,
            start: Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap(),
            rate: 100.0,
            cluster: 0,
        };
        let mut g = Generator::new(&policy, &config);
        let mut out = Vec::new();
        for _ in 0..requests {
            g.next_request(&mut out);
        }
        out
    }

    #[test]
    fn the_same_seed_gives_the_same_events() {
        assert_eq!(generate(7, 500), generate(7, 500));
        assert_ne!(generate(7, 500), generate(8, 500));
    }

    #[test]
    fn events_are_what_the_seed_policy_records() {
        let events = generate(1, 20_000);
        let mut by_stage: HashMap<String, usize> = HashMap::new();
        let mut by_level: HashMap<String, usize> = HashMap::new();
        let mut codes: HashMap<i32, usize> = HashMap::new();
        for e in &events {
            let ev = decode_event(e.json.as_bytes()).expect("generated events decode");
            assert_eq!(ev.stage_timestamp.unwrap().unix_micros(), e.ts_micros);
            *by_stage.entry(ev.stage.unwrap().to_string()).or_default() += 1;
            *by_level.entry(ev.level.unwrap().to_string()).or_default() += 1;
            *codes.entry(ev.code().unwrap_or(0)).or_default() += 1;
            let resource = ev
                .object_ref
                .as_ref()
                .and_then(|o| o.resource.clone())
                .unwrap_or_default();
            // The seed policy: secrets and configmaps only at Metadata, events never.
            if resource == "secrets" || resource == "configmaps" {
                assert_eq!(ev.level, Some(Level::Metadata));
                assert!(ev.request_object.is_none() && ev.response_object.is_none());
            }
            assert_ne!(resource, "events");
            if ev.level == Some(Level::Metadata) {
                assert!(ev.request_object.is_none());
            }
            // The seed policy omits RequestReceived.
            assert_ne!(ev.stage, Some(Stage::RequestReceived));
            if ev.code() == Some(401) {
                assert_eq!(ev.stage, Some(Stage::ResponseStarted));
                assert_eq!(ev.username(), "");
            }
        }
        assert!(events.len() > 15_000, "{}", events.len());
        assert!(
            events.windows(2).all(|w| w[0].ts_micros <= w[1].ts_micros),
            "written in stage-time order"
        );
        assert!(
            by_stage["ResponseStarted"] > 0
                && by_stage["ResponseComplete"] > by_stage["ResponseStarted"]
        );
        for level in ["Metadata", "Request", "RequestResponse"] {
            assert!(
                by_level.get(level).copied().unwrap_or(0) > 100,
                "{level}: {by_level:?}"
            );
        }
        for code in [101, 200, 201, 401, 403, 404, 409] {
            assert!(
                codes.get(&code).copied().unwrap_or(0) > 0,
                "code {code}: {codes:?}"
            );
        }
    }
}
