//! Audit events as they arrive — NDJSON lines (agents, `import`) or an `EventList` (the
//! apiserver's webhook) — decoded into [`Record`]s, with rejected input counted and its first
//! reasons kept by place (`line 4`, `kubernetes.audit:12`, `items[3]`). `serve` and `import`
//! both decode here, so a line is accepted or refused for the same reason everywhere, and
//! secrets are taken out ([`Redactor`]) before a record holds the text.

use std::fmt::Display;

use kubetrail_model::{Event, decode_event, decode_event_list_items};
use kubetrail_redact::Redactor;

use crate::Record;

/// How many rejections are described; the rest are counted.
pub const MAX_REASONS: usize = 10;

/// Rejected input: how much, and why for the first [`MAX_REASONS`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rejections {
    /// Everything rejected.
    pub count: u64,
    /// `place: reason` for the first ones.
    pub reasons: Vec<String>,
}

impl Rejections {
    /// Counts one rejection at `place`.
    pub fn reject(&mut self, place: impl Display, reason: impl Display) {
        self.count += 1;
        if self.reasons.len() < MAX_REASONS {
            self.reasons.push(format!("{place}: {reason}"));
        }
    }
}

/// One NDJSON line as a record; `Ok(None)` for a blank line. Events without timestamps take
/// `fallback_micros` (the file's time on import, so a second import finds the same events).
/// With `redact`, the record holds the redacted text (and URI), never the original.
pub fn decode_line(
    line: &[u8],
    cluster: &str,
    received_micros: i64,
    fallback_micros: i64,
    redact: Option<&Redactor>,
) -> Result<Option<Record>, String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let text = std::str::from_utf8(line).map_err(|e| format!("not UTF-8: {e}"))?;
    let event = decode_event(line).map_err(|e| e.to_string())?;
    let (event, text) = redacted(event, text.to_string(), redact)?;
    Ok(Some(Record::from_event_at(
        event,
        text,
        cluster,
        received_micros,
        fallback_micros,
    )))
}

/// The event and its text with secrets replaced, when `redact` finds any.
pub fn redacted(
    mut event: Event,
    text: String,
    redact: Option<&Redactor>,
) -> Result<(Event, String), String> {
    let Some(r) = redact else {
        return Ok((event, text));
    };
    match r
        .redact_event(&mut event, &text)
        .map_err(|e| e.to_string())?
    {
        None => Ok((event, text)),
        // The redacted text is what is stored; the event, whose fields become the record's
        // columns, was redacted with it.
        Some(clean) => Ok((event, clean)),
    }
}

/// The lines of an NDJSON body: the good ones as records, the bad ones as rejections by line
/// number (a truncated line in a log file will never become valid, so it does not hold back
/// the others).
pub fn decode_lines(
    body: &[u8],
    cluster: &str,
    received_micros: i64,
    redact: Option<&Redactor>,
) -> (Vec<Record>, Rejections) {
    let mut records = Vec::new();
    let mut rejections = Rejections::default();
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        match decode_line(line, cluster, received_micros, received_micros, redact) {
            Ok(Some(r)) => records.push(r),
            Ok(None) => {}
            Err(reason) => rejections.reject(format_args!("line {}", i + 1), reason),
        }
    }
    (records, rejections)
}

/// An `EventList` as records: all of it, or the first bad item's place and reason.
pub fn decode_event_list(
    body: &[u8],
    cluster: &str,
    received_micros: i64,
    redact: Option<&Redactor>,
) -> Result<Vec<Record>, String> {
    let items =
        decode_event_list_items(body).map_err(|e| format!("not an audit EventList: {e}"))?;
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let (event, text) =
                redacted(item.event, item.json, redact).map_err(|e| format!("items[{i}]: {e}"))?;
            Ok(Record::from_event(event, text, cluster, received_micros))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"ResponseComplete","requestURI":"/api/v1/pods","verb":"list","user":{"username":"alice"},"stageTimestamp":"2024-05-01T10:00:00.000000Z"}"#;

    #[test]
    fn good_lines_are_kept_and_bad_ones_counted_by_line() {
        let body = format!("{LINE}\r\n\n  \nnot json\n{LINE}\n{{\"kind\":\n");
        let (records, rejected) = decode_lines(body.as_bytes(), "c", 7, None);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].cluster, "c");
        assert_eq!(records[0].received_micros, 7);
        assert_eq!(rejected.count, 2);
        assert_eq!(rejected.reasons.len(), 2);
        assert!(
            rejected.reasons[0].starts_with("line 4: "),
            "{:?}",
            rejected.reasons
        );
        assert!(
            rejected.reasons[1].starts_with("line 6: "),
            "{:?}",
            rejected.reasons
        );
    }

    #[test]
    fn reasons_are_bounded_and_the_rest_counted() {
        let body = "x\n".repeat(MAX_REASONS + 5);
        let (_, rejected) = decode_lines(body.as_bytes(), "c", 0, None);
        assert_eq!(rejected.count, MAX_REASONS as u64 + 5);
        assert_eq!(rejected.reasons.len(), MAX_REASONS);
        assert_eq!(
            decode_line(&[0xff, b'{'], "c", 0, 0, None)
                .unwrap_err()
                .split(':')
                .next(),
            Some("not UTF-8")
        );
    }

    #[test]
    fn an_event_list_is_all_or_its_first_bad_item() {
        let list = format!(
            r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{LINE},{LINE}]}}"#
        );
        assert_eq!(
            decode_event_list(list.as_bytes(), "c", 0, None)
                .unwrap()
                .len(),
            2
        );
        let bad = format!(
            r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{LINE},{{"verb":3}}]}}"#
        );
        let e = decode_event_list(bad.as_bytes(), "c", 0, None).unwrap_err();
        assert!(e.contains("items[1]"), "{e}");
        assert!(
            decode_event_list(b"{}", "c", 0, None)
                .unwrap_err()
                .starts_with("not an audit EventList")
        );
    }

    const SECRETS: &str = include_str!("../../../testdata/redaction/secrets.jsonl");

    fn redactor() -> Redactor {
        Redactor::new(&kubetrail_redact::Key::from_bytes([1; 32]), &[]).unwrap()
    }

    fn clean(r: &Record) -> bool {
        !r.raw.contains("S3CRET")
            && !r.raw.contains("UzNDUkVU")
            && !r.request_uri.contains("S3CRET")
    }

    #[test]
    fn records_hold_the_redacted_text_and_uri() {
        let r = redactor();
        let (records, rejected) = decode_lines(SECRETS.as_bytes(), "c", 0, Some(&r));
        assert_eq!((records.len(), rejected.count), (8, 0));
        assert!(records.iter().all(clean));
        let log = records.iter().find(|r| r.subresource == "log").unwrap();
        assert!(
            log.request_uri.starts_with(
                "/api/v1/namespaces/shop/pods/web-0/log?access_token=redacted:hmac-sha256:"
            ),
            "{}",
            log.request_uri
        );
        // What has nothing to hide is kept byte for byte.
        let unchanged = records
            .iter()
            .filter(|r| SECRETS.contains(r.raw.as_str()))
            .count();
        assert_eq!(
            unchanged, 1,
            "only the dry-run delete carries no credential"
        );
        // Without a redactor the same lines keep their values: the check above can fail.
        let (open, _) = decode_lines(SECRETS.as_bytes(), "c", 0, None);
        assert_eq!(open.iter().filter(|r| !clean(r)).count(), 7);
    }

    #[test]
    fn webhook_items_are_redacted_in_every_version() {
        let r = redactor();
        for version in ["audit.k8s.io/v1", "audit.k8s.io/v1beta1"] {
            let items: Vec<serde_json::Value> = SECRETS
                .lines()
                .map(|l| {
                    let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                    v.as_object_mut().unwrap().remove("apiVersion");
                    v
                })
                .collect();
            let list =
                serde_json::json!({"kind": "EventList", "apiVersion": version, "items": items});
            let records = decode_event_list(list.to_string().as_bytes(), "c", 0, Some(&r)).unwrap();
            assert_eq!(records.len(), 8);
            assert!(records.iter().all(clean), "{version}");
        }
    }
}
