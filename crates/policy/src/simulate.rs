//! Simulate: what a policy would have recorded for traffic that was recorded under another one.
//!
//! Each recorded event is turned back into the attributes the apiserver evaluated: the HTTP
//! method is derived from the verb and the request is re-resolved from `requestURI` through
//! RequestInfo, so the name is the one in the URL (not the one a create's body filled into
//! `objectRef`); the user is the authenticated one, never the impersonated one. A request is
//! counted once, however many stages were recorded for it.

use std::collections::{BTreeMap, HashSet};

use kubetrail_model::{Event, Level};
use serde::Serialize;

use crate::checker::{Policy, RequestAttributes};
use crate::requestinfo::resolve;

/// The attributes kube-apiserver evaluated for the request an event records.
pub fn request_attributes(event: &Event) -> RequestAttributes {
    let user = event
        .user
        .as_ref()
        .and_then(|u| u.username.clone())
        .filter(|u| !u.is_empty());
    let groups = if user.is_some() {
        event
            .user
            .as_ref()
            .map(|u| u.groups.clone())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let verb = event.verb.clone().unwrap_or_default();
    if let Some(Ok(info)) = event
        .request_uri
        .as_deref()
        .map(|uri| resolve(&method_of(&verb), uri))
    {
        let verb = if info.is_resource_request {
            info.verb.clone()
        } else {
            verb
        };
        return RequestAttributes {
            verb,
            ..RequestAttributes::from_request_info(info, user, groups)
        };
    }
    match &event.object_ref {
        Some(r) => RequestAttributes {
            user,
            groups,
            verb,
            resource_request: true,
            api_group: r.api_group.clone().unwrap_or_default(),
            api_version: r.api_version.clone().unwrap_or_default(),
            namespace: r.namespace.clone().unwrap_or_default(),
            resource: r.resource.clone().unwrap_or_default(),
            subresource: r.subresource.clone().unwrap_or_default(),
            name: r.name.clone().unwrap_or_default(),
            path: String::new(),
        },
        None => RequestAttributes {
            user,
            groups,
            verb,
            path: event.request_uri.clone().unwrap_or_default(),
            ..RequestAttributes::default()
        },
    }
}

/// The HTTP method that produces `verb`; for non-resource requests the verb is the lower-case
/// method itself.
fn method_of(verb: &str) -> String {
    match verb {
        "create" => "POST".into(),
        "get" | "list" | "watch" => "GET".into(),
        "update" => "PUT".into(),
        "delete" | "deletecollection" => "DELETE".into(),
        other => other.to_uppercase(),
    }
}

/// Totals of a simulation.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Simulation {
    /// Events read.
    pub events_in: u64,
    /// Their size as JSON lines.
    pub bytes_in: u64,
    /// Distinct requests (by auditID; events without one count alone).
    pub requests: u64,
    /// Requests per level the policy assigns.
    pub requests_by_level: BTreeMap<String, u64>,
    /// Requests decided by each rule (`null` key: no rule matched).
    pub requests_by_rule: BTreeMap<String, u64>,
    /// Rules that decided no request.
    pub unused_rules: Vec<usize>,
    /// Events the policy would still record (their stage not omitted, level not None).
    pub events_out: u64,
    /// Their size, with bodies dropped where the new level is lower. Bodies the old policy did
    /// not record cannot be added, so where the new level is higher this is a lower bound.
    pub bytes_out: u64,
    /// Requests whose new level is lower than recorded / higher than recorded.
    pub lowered: u64,
    /// See `lowered`.
    pub raised: u64,
}

/// Runs events through a policy and accumulates a [`Simulation`].
pub struct Simulator<'p> {
    policy: &'p Policy,
    seen: HashSet<String>,
    result: Simulation,
    rule_hits: Vec<u64>,
}

impl<'p> Simulator<'p> {
    /// A simulator for `policy`.
    pub fn new(policy: &'p Policy) -> Self {
        Simulator {
            policy,
            seen: HashSet::new(),
            result: Simulation::default(),
            rule_hits: vec![0; policy.rules().len()],
        }
    }

    /// Adds one recorded event; `raw_len` is its size in the input.
    pub fn add(&mut self, event: &Event, raw_len: usize) {
        self.result.events_in += 1;
        self.result.bytes_in += raw_len as u64;
        let attrs = request_attributes(event);
        let decision = self.policy.evaluate(&attrs.as_attributes());

        let first_of_request = match &event.audit_id {
            Some(id) if !id.is_empty() => self.seen.insert(id.clone()),
            _ => true,
        };
        if first_of_request {
            self.result.requests += 1;
            *self
                .result
                .requests_by_level
                .entry(decision.level.to_string())
                .or_default() += 1;
            let key = decision.rule.map_or("none".to_string(), |r| r.to_string());
            *self.result.requests_by_rule.entry(key).or_default() += 1;
            if let Some(r) = decision.rule {
                self.rule_hits[r] += 1;
            }
            if let Some(recorded) = event.level {
                if decision.level < recorded {
                    self.result.lowered += 1;
                } else if decision.level > recorded {
                    self.result.raised += 1;
                }
            }
        }

        let omitted = event
            .stage
            .is_some_and(|s| decision.omit_stages.contains(s));
        if decision.level == Level::None || omitted {
            return;
        }
        self.result.events_out += 1;
        let recorded = event.level.unwrap_or(Level::RequestResponse);
        if decision.level >= recorded {
            self.result.bytes_out += raw_len as u64;
        } else {
            let mut trimmed = event.clone();
            if decision.level < Level::RequestResponse {
                trimmed.response_object = None;
            }
            if decision.level < Level::Request {
                trimmed.request_object = None;
            }
            trimmed.level = Some(decision.level);
            self.result.bytes_out += trimmed.to_v1_json().len() as u64 + 1;
        }
    }

    /// The totals.
    pub fn finish(mut self) -> Simulation {
        self.result.unused_rules = self
            .rule_hits
            .iter()
            .enumerate()
            .filter(|(_, n)| **n == 0)
            .map(|(i, _)| i)
            .collect();
        self.result
    }
}
