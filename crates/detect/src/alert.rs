//! An alert: which rule fired on which event, with what the rule found. Its JSON form is the
//! contract of `kubetrail detect -o json` (one alert a line) and of `/api/v1/alerts`.

use serde::{Deserialize, Serialize};

use crate::facts::Facts;
use crate::spec::Severity;

/// The object an alert is about: the event's `objectRef`, `""` for what it lacks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertObject {
    /// The resource (`pods`).
    pub resource: String,
    /// The subresource (`exec`), `""` when none.
    pub subresource: String,
    /// `""` when cluster-scoped.
    pub namespace: String,
    /// `""` when the request named none.
    pub name: String,
    /// `""` for the core group.
    pub api_group: String,
}

impl AlertObject {
    /// The object as a person reads it: `pods/exec prod/web`, `clusterroles admin`, `nodes`.
    pub fn text(&self) -> String {
        let mut s = self.resource.clone();
        if !self.subresource.is_empty() {
            s = format!("{s}/{}", self.subresource);
        }
        if !self.namespace.is_empty() {
            s = format!("{s} {}/{}", self.namespace, self.name);
        } else if !self.name.is_empty() {
            s = format!("{s} {}", self.name);
        }
        s
    }
}

/// A rule that fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// The rule's id.
    pub rule: String,
    /// The rule's severity.
    pub severity: Severity,
    /// The event time (RFC 3339, microseconds, UTC).
    pub time: String,
    /// The triggering event's auditID.
    #[serde(rename = "auditID")]
    pub audit_id: String,
    /// Other events the alert rests on (a stateful rule's window or first step).
    #[serde(rename = "relatedAuditIDs")]
    pub related_audit_ids: Vec<String>,
    /// The cluster the event came from.
    pub cluster: String,
    /// `user.username`.
    pub user: String,
    /// `impersonatedUser.username`, `""` when nobody was impersonated.
    pub impersonated_user: String,
    /// The first source IP.
    #[serde(rename = "sourceIP")]
    pub source_ip: String,
    /// The verb.
    pub verb: String,
    /// The object.
    pub object_ref: AlertObject,
    /// The request URI.
    #[serde(rename = "requestURI")]
    pub request_uri: String,
    /// What the rule found, by name.
    pub evidence: serde_json::Map<String, serde_json::Value>,
}

impl Alert {
    /// An alert of a rule on an event, without evidence yet.
    pub fn new(rule: &str, severity: Severity, cluster: &str, facts: &Facts, time: i64) -> Alert {
        let e = facts.event;
        let object = e.object_ref.as_ref();
        let text = |s: Option<&String>| s.cloned().unwrap_or_default();
        let field = |f: fn(&kubetrail_model::ObjectReference) -> &Option<String>| {
            object.and_then(|o| f(o).clone()).unwrap_or_default()
        };
        Alert {
            rule: rule.to_string(),
            severity,
            time: format_micros(time),
            audit_id: text(e.audit_id.as_ref()),
            related_audit_ids: Vec::new(),
            cluster: cluster.to_string(),
            user: facts.user.to_string(),
            impersonated_user: e
                .impersonated_user
                .as_ref()
                .and_then(|u| u.username.clone())
                .unwrap_or_default(),
            source_ip: e.source_ips.first().cloned().unwrap_or_default(),
            verb: text(e.verb.as_ref()),
            object_ref: AlertObject {
                resource: field(|o| &o.resource),
                subresource: field(|o| &o.subresource),
                namespace: field(|o| &o.namespace),
                name: field(|o| &o.name),
                api_group: field(|o| &o.api_group),
            },
            request_uri: text(e.request_uri.as_ref()),
            evidence: serde_json::Map::new(),
        }
    }
}

/// Microseconds since the epoch as kube-apiserver writes times.
pub fn format_micros(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| kubetrail_model::MicroTime(t).to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::{AlertObject, format_micros};

    #[test]
    fn objects_read_as_kubectl_names_them() {
        let o = |resource: &str, sub: &str, ns: &str, name: &str| AlertObject {
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
            api_group: String::new(),
        };
        assert_eq!(
            o("pods", "exec", "prod", "web").text(),
            "pods/exec prod/web"
        );
        assert_eq!(
            o("clusterroles", "", "", "admin").text(),
            "clusterroles admin"
        );
        assert_eq!(o("nodes", "", "", "").text(), "nodes");
    }

    #[test]
    fn times_are_written_as_the_apiserver_writes_them() {
        assert_eq!(format_micros(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            format_micros(1_505_144_061_123_000),
            "2017-09-11T15:34:21.123000Z"
        );
        assert_eq!(
            format_micros(951_782_400_000_001),
            "2000-02-29T00:00:00.000001Z"
        );
    }
}
