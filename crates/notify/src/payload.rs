//! What each kind of sink is sent: Alertmanager's API v2 alerts, kubetrail's signed webhook
//! body, and a Slack-compatible incoming-webhook message.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use ring::hmac;
use serde_json::{Value, json};

use crate::Notice;

/// The header that carries the webhook body's signature: `sha256=` and the hex HMAC-SHA256
/// of the body under the sink's secret.
pub const SIGNATURE_HEADER: &str = "X-Kubetrail-Signature";

/// Most alerts one Slack message lists; the rest are counted.
const SLACK_LINES: usize = 20;

/// The link to a notice's alert on the web UI, when the server's external URL is known.
pub fn link(external_url: Option<&str>, n: &Notice) -> Option<String> {
    let base = external_url?.trim_end_matches('/');
    let query: String = form_urlencoded(&[
        ("cluster", &n.cluster),
        ("rule", &n.rule),
        ("auditID", &n.audit_id),
        ("range", "custom"),
        ("from", &n.time),
        ("to", &plus_one_second(&n.time)),
    ]);
    Some(format!("{base}/alerts?{query}"))
}

fn plus_one_second(time: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(time)
        .map(|t| {
            (t + chrono::Duration::seconds(1)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        })
        .unwrap_or_else(|_| time.to_string())
}

/// What a query value keeps unescaped: RFC 3986's unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn form_urlencoded(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, QUERY_VALUE)))
        .collect::<Vec<_>>()
        .join("&")
}

/// One line for a person: "Exec into a pod: bob on pods/exec prod/web".
pub fn summary(n: &Notice) -> String {
    let who = if n.user.is_empty() {
        "(no user)"
    } else {
        &n.user
    };
    if n.object.is_empty() {
        format!("{}: {who}", n.title)
    } else {
        format!("{}: {who} on {}", n.title, n.object)
    }
}

/// Alertmanager API v2 (`POST /api/v2/alerts`): one alert per notice, labelled by rule
/// (`alertname` too), severity, cluster, namespace and the triggering auditID (so that two
/// requests are two alerts), starting at the event's time.
pub fn alertmanager(notices: &[Notice], external_url: Option<&str>) -> Value {
    Value::Array(
        notices
            .iter()
            .map(|n| {
                let mut labels = serde_json::Map::new();
                for (k, v) in [
                    ("alertname", &n.rule),
                    ("rule", &n.rule),
                    ("severity", &n.severity),
                    ("cluster", &n.cluster),
                    ("namespace", &n.namespace),
                    ("auditID", &n.audit_id),
                ] {
                    // Alertmanager reads an empty label as no label.
                    if !v.is_empty() {
                        labels.insert(k.into(), Value::String(v.clone()));
                    }
                }
                let link = link(external_url, n);
                let mut annotations = json!({ "summary": summary(n) });
                if let Some(l) = &link {
                    annotations["link"] = json!(l);
                }
                let mut alert = json!({
                    "labels": labels,
                    "annotations": annotations,
                    "startsAt": n.time,
                });
                if let Some(l) = link {
                    alert["generatorURL"] = json!(l);
                }
                alert
            })
            .collect(),
    )
}

/// The generic webhook's body: `{"alerts": [...]}`, each alert as `/api/v1/alerts` gives it.
pub fn webhook(notices: &[Notice]) -> Value {
    json!({ "alerts": notices.iter().map(|n| n.alert.clone()).collect::<Vec<_>>() })
}

/// `sha256=HEX`: the HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// A Slack incoming-webhook message: one line per alert (at most twenty, then a count).
pub fn slack(notices: &[Notice], external_url: Option<&str>) -> Value {
    let mut lines: Vec<String> = notices
        .iter()
        .take(SLACK_LINES)
        .map(|n| {
            let text = format!(
                "[{}] {} ({}) — {}",
                n.severity,
                slack_escape(&summary(n)),
                slack_escape(&n.cluster),
                n.time
            );
            match link(external_url, n) {
                Some(l) => format!("• <{l}|{text}>"),
                None => format!("• {text}"),
            }
        })
        .collect();
    if notices.len() > SLACK_LINES {
        lines.push(format!("… and {} more", notices.len() - SLACK_LINES));
    }
    json!({ "text": format!("kubetrail: {} alert(s)\n{}", notices.len(), lines.join("\n")) })
}

/// Slack's three control characters, escaped as its docs ask: audit text is the attacker's.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice() -> Notice {
        Notice {
            rule: "pod-exec".into(),
            title: "Exec into a pod".into(),
            severity: "medium".into(),
            cluster: "prod".into(),
            namespace: "".into(),
            user: "<bob>".into(),
            audit_id: "a 1".into(),
            time: "2026-11-01T10:00:01.000000Z".into(),
            object: "pods/exec prod/web".into(),
            alert: json!({"rule": "pod-exec"}),
        }
    }

    #[test]
    fn alertmanager_alerts_carry_the_labels_and_a_link() {
        let v = alertmanager(&[notice()], Some("https://kubetrail.example/"));
        let a = &v[0];
        assert_eq!(a["labels"]["alertname"], "pod-exec");
        assert_eq!(a["labels"]["severity"], "medium");
        assert_eq!(a["labels"]["auditID"], "a 1");
        assert!(
            a["labels"].get("namespace").is_none(),
            "an empty label is left out"
        );
        assert_eq!(a["startsAt"], "2026-11-01T10:00:01.000000Z");
        assert_eq!(
            a["annotations"]["summary"],
            "Exec into a pod: <bob> on pods/exec prod/web"
        );
        assert_eq!(
            a["annotations"]["link"],
            "https://kubetrail.example/alerts?cluster=prod&rule=pod-exec&auditID=a%201&range=custom&from=2026-11-01T10%3A00%3A01.000000Z&to=2026-11-01T10%3A00%3A02.000000Z"
        );
        assert!(
            alertmanager(&[notice()], None)[0]
                .get("generatorURL")
                .is_none()
        );
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn slack_text_escapes_markup_and_counts_the_rest() {
        let many: Vec<Notice> = (0..25).map(|_| notice()).collect();
        let text = slack(&many, None)["text"].as_str().unwrap().to_string();
        assert!(text.starts_with("kubetrail: 25 alert(s)"));
        assert!(
            text.contains("&lt;bob&gt;") && !text.contains("<bob>"),
            "{text}"
        );
        assert!(text.ends_with("… and 5 more"), "{text}");
    }
}
