//! `rules lint`: what loading cannot see. Every expression of a rule is evaluated on probe
//! events its match blocks let through — once with pod-like bodies, once at Metadata level
//! with none — so type errors (`verb + 1`), unknown functions and fields read without a
//! guard (`requestObject.spec` when there is no body) are found before an event finds them.

use kubetrail_model::{ApiVersion, decode_event_value};
use serde_json::{Value, json};

use crate::expr::{Expr, Runtime};
use crate::facts::Facts;
use crate::matcher::Sample;
use crate::rule::{Rule, RuleError};

fn probe(s: &Sample, bodies: bool) -> Value {
    let mut e = json!({
        "auditID": "probe",
        "stage": "ResponseComplete",
        "level": if bodies { "RequestResponse" } else { "Metadata" },
        "verb": s.verb,
        "requestURI": format!("/api/v1/namespaces/{}/{}/probe?command=sh", s.namespace, s.resource),
        "user": {"username": s.user, "groups": s.group.iter().chain(["system:authenticated".to_string()].iter()).collect::<Vec<_>>()},
        "sourceIPs": ["10.0.0.1"],
        "objectRef": {"resource": s.resource, "subresource": s.subresource, "namespace": s.namespace, "name": "probe", "apiGroup": s.api_group},
        "responseStatus": {"code": s.code},
        "annotations": {"authorization.k8s.io/decision": if s.code >= 400 { "forbid" } else { "allow" }},
    });
    if s.impersonated {
        e["impersonatedUser"] = json!({"username": "system:admin", "groups": ["system:masters"]});
    }
    if bodies {
        let body = json!({
            "metadata": {"name": "probe"},
            "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": true}}], "volumes": [{"hostPath": {"path": "/"}}]},
            "rules": [{"verbs": ["*"], "resources": ["*"]}],
        });
        e["requestObject"] = body.clone();
        e["responseObject"] = body;
    }
    e
}

/// The errors of expressions on the probe events of each rule.
pub fn lint(rules: &[Rule]) -> Vec<RuleError> {
    let rt = Runtime::new();
    let mut errors = Vec::new();
    for rule in rules {
        let mut seen: Vec<String> = Vec::new();
        for sample in rule.samples() {
            for bodies in [true, false] {
                let Ok(event) = decode_event_value(probe(&sample, bodies), Some(ApiVersion::V1))
                else {
                    continue;
                };
                let facts = Facts::new(&event);
                let check = |what: &str, e: &Expr, errors: &mut Vec<String>| {
                    if let Err(err) = e.eval(&rt, &facts, &rule.params) {
                        errors.push(format!(
                            "{what} fails on a {} {}{} event{}: {err}",
                            sample.verb,
                            sample.resource,
                            if sample.subresource.is_empty() {
                                String::new()
                            } else {
                                format!("/{}", sample.subresource)
                            },
                            if bodies {
                                ""
                            } else {
                                " without bodies (Metadata level)"
                            }
                        ));
                    }
                };
                let mut found = Vec::new();
                if rule.test.matcher.matches(&event, &facts) {
                    if let Some(c) = &rule.test.condition {
                        check("the condition", c, &mut found);
                    }
                    for (name, e) in &rule.evidence {
                        check(&format!("evidence {name}"), e, &mut found);
                    }
                    for (what, e) in [("the key", &rule.key), ("distinct", &rule.distinct)] {
                        if let Some(e) = e {
                            check(what, e, &mut found);
                        }
                    }
                }
                for u in &rule.record {
                    if u.test.matcher.matches(&event, &facts) {
                        for e in [&u.test.condition, &u.key, &u.prefix, &u.set]
                            .into_iter()
                            .flatten()
                        {
                            check("a record entry", e, &mut found);
                        }
                    }
                }
                for f in found {
                    if !seen.contains(&f) {
                        seen.push(f.clone());
                        errors.push(RuleError {
                            file: rule.origin.file.clone(),
                            line: rule.origin.line,
                            rule: Some(rule.id.clone()),
                            message: f,
                        });
                    }
                }
            }
        }
    }
    errors
}
