//! Decoding the real audit logs in `testdata/real-audit` (see its SOURCES.md): every line decodes,
//! chosen events carry the values their files say, and re-encoding loses nothing.

#![allow(clippy::unwrap_used)]

mod hostile;

use std::collections::BTreeMap;
use std::path::PathBuf;

use kubetrail_model::{
    ApiVersion, Event, Level, Stage, decode_event, decode_event_list, decode_event_value,
};
use serde_json::{Value, json};

fn testdata(rel: &str) -> PathBuf {
    // Read at run time: a shared target directory may hold this binary from another checkout.
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../../testdata/real-audit")
        .join(rel)
}

fn lines(rel: &str) -> Vec<String> {
    std::fs::read_to_string(testdata(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
        .lines()
        .map(str::to_string)
        .collect()
}

fn decode_all(rel: &str) -> Vec<Event> {
    lines(rel)
        .iter()
        .enumerate()
        .map(|(i, l)| decode_event(l.as_bytes()).unwrap_or_else(|e| panic!("{rel}:{}: {e}", i + 1)))
        .collect()
}

const FILES: [&str; 5] = [
    "audit2rbac-v1beta1.jsonl",
    "audit2rbac-v1.jsonl",
    "falco-k8saudit.jsonl",
    "falco-k8saudit-variants.jsonl",
    "panther.jsonl",
];

#[test]
fn every_real_line_decodes_and_versions_are_counted() {
    let mut by_version: BTreeMap<Option<ApiVersion>, usize> = BTreeMap::new();
    let mut total = 0;
    for file in FILES {
        for e in decode_all(file) {
            *by_version.entry(e.source_version).or_default() += 1;
            total += 1;
        }
    }
    assert_eq!(total, 1065);
    assert_eq!(by_version[&Some(ApiVersion::V1Beta1)], 766);
    assert_eq!(by_version[&Some(ApiVersion::V1)], 143);
    assert_eq!(by_version[&None], 156);
}

#[test]
fn audit2rbac_v1beta1_first_event_has_its_values() {
    let events = decode_all("audit2rbac-v1beta1.jsonl");
    assert_eq!(events.len(), 757);
    let e = &events[0];
    assert_eq!(e.source_version, Some(ApiVersion::V1Beta1));
    assert_eq!(
        e.audit_id.as_deref(),
        Some("033d17af-082d-4b24-aa22-627752e83d71")
    );
    assert_eq!(e.level, Some(Level::Metadata));
    assert_eq!(e.stage, Some(Stage::ResponseComplete));
    assert_eq!(e.verb.as_deref(), Some("list"));
    assert_eq!(e.username(), "system:admin");
    assert_eq!(
        e.user.as_ref().unwrap().groups,
        ["system:masters", "system:authenticated"]
    );
    assert_eq!(
        e.impersonated_user.as_ref().unwrap().username.as_deref(),
        Some("bob")
    );
    assert_eq!(e.source_ips, ["::1"]);
    let r = e.object_ref.as_ref().unwrap();
    assert_eq!(r.resource.as_deref(), Some("pods"));
    assert_eq!(r.namespace.as_deref(), Some("default"));
    assert_eq!(e.code(), Some(403));
    assert_eq!(
        e.response_status.as_ref().unwrap().reason.as_deref(),
        Some("Forbidden")
    );
    // v1beta1 `timestamp` / `metadata.creationTimestamp` become the v1 timestamps.
    assert_eq!(
        e.request_received_timestamp.unwrap().to_string(),
        "2017-09-11T19:55:05.000000Z"
    );
    assert_eq!(
        e.stage_timestamp.unwrap().to_string(),
        "2017-09-11T19:55:05.000000Z"
    );
    assert!(e.unknown.is_empty());

    // Stage pairing: RequestReceived and ResponseComplete share auditIDs.
    let received = events
        .iter()
        .filter(|e| e.stage == Some(Stage::RequestReceived))
        .count();
    let complete = events
        .iter()
        .filter(|e| e.stage == Some(Stage::ResponseComplete))
        .count();
    assert_eq!((received, complete), (320, 437));
    let forbidden = events.iter().filter(|e| e.code() == Some(403)).count();
    assert_eq!(forbidden, 11);
}

#[test]
fn v1_events_keep_the_v1beta1_only_fields_as_unknown() {
    let e = &decode_all("audit2rbac-v1.jsonl")[0];
    assert_eq!(e.source_version, Some(ApiVersion::V1));
    assert_eq!(e.unknown["timestamp"], json!("2017-09-11T19:55:05Z"));
    assert_eq!(
        e.unknown["metadata"],
        json!({"creationTimestamp": "2017-09-11T19:55:05Z"})
    );
    let out = e.to_v1_value().unwrap();
    assert_eq!(out["timestamp"], json!("2017-09-11T19:55:05Z"));
}

#[test]
fn falco_exec_event_without_api_version() {
    let events = decode_all("falco-k8saudit.jsonl");
    let e = events
        .iter()
        .find(|e| e.audit_id.as_deref() == Some("ca1ed9f4-7bf4-4c85-81a8-1b11253d1ba6"))
        .expect("the exec event is in the file");
    assert_eq!(e.source_version, None);
    assert_eq!(e.stage, Some(Stage::ResponseStarted));
    assert_eq!(e.level, Some(Level::Request));
    assert_eq!(e.verb.as_deref(), Some("create"));
    assert_eq!(e.code(), Some(101));
    let r = e.object_ref.as_ref().unwrap();
    assert_eq!(r.subresource.as_deref(), Some("exec"));
    assert_eq!(r.name.as_deref(), Some("nginx-deployment-7998647bdf-phvq7"));
    assert_eq!(e.authorization_decision(), Some("allow"));
    assert_eq!(
        e.stage_timestamp.unwrap().to_string(),
        "2018-10-26T13:38:34.902914Z"
    );
    // Exec and attach are the two ResponseStarted events of the file.
    let started = events
        .iter()
        .filter(|e| e.stage == Some(Stage::ResponseStarted))
        .count();
    assert_eq!(started, 2);
    let with_request_object = events.iter().filter(|e| e.request_object.is_some()).count();
    assert_eq!(with_request_object, 42);
}

#[test]
fn panther_fixtures_without_ids_keep_their_enrichment_fields() {
    let events = decode_all("panther.jsonl");
    let e = events
        .iter()
        .find(|e| e.user_agent.as_deref() == Some("ELB-HealthChecker/2.0"))
        .unwrap();
    assert_eq!(e.audit_id, None);
    assert_eq!(e.request_uri.as_deref(), Some("/healthz"));
    assert_eq!(e.username(), "system:anonymous");
    let enriched = events
        .iter()
        .filter(|e| e.unknown.contains_key("p_log_type"))
        .count();
    assert_eq!(enriched, 180);
    let no_stage = events.iter().filter(|e| e.stage.is_none()).count();
    assert_eq!(no_stage, 169);
    // Panther's space-separated times are read as UTC.
    let with_p_time = events
        .iter()
        .find(|e| e.unknown.get("p_event_time") == Some(&json!("2022-11-29 00:09:04.38")))
        .unwrap();
    assert_eq!(
        with_p_time.request_received_timestamp.unwrap().to_string(),
        "2022-11-29T00:09:04.380000Z"
    );
}

/// Re-encoding keeps every field: decoding the v1 output gives the same event back, and the
/// JSON differs from the input only where v1 defines a different spelling.
#[test]
fn round_trip_through_v1_loses_nothing() {
    for file in FILES {
        for (i, line) in lines(file).iter().enumerate() {
            let event = decode_event(line.as_bytes()).unwrap();
            let encoded = event.to_v1_json();
            let again = decode_event(encoded.as_bytes()).unwrap();
            let mut expected = event.clone();
            expected.source_version = Some(ApiVersion::V1);
            assert_eq!(again, expected, "{file}:{}", i + 1);

            let original: Value = serde_json::from_str(line).unwrap();
            let out: Value = serde_json::from_str(&encoded).unwrap();
            for (key, value) in original.as_object().unwrap() {
                let converted = matches!(
                    key.as_str(),
                    "apiVersion" | "kind" | "requestReceivedTimestamp" | "stageTimestamp"
                ) || (event.source_version == Some(ApiVersion::V1Beta1)
                    && matches!(key.as_str(), "timestamp" | "metadata"));
                // Go's omitempty drops `[]` and `{}` for sourceIPs and annotations; so do we.
                let empty = value == &json!([]) || value == &json!({});
                let dropped_empty = empty && out[key].is_null();
                if !(converted || dropped_empty) {
                    assert_eq!(&out[key], value, "{file}:{} field {key}", i + 1);
                }
            }
        }
    }
}

#[test]
fn malformed_inputs_are_errors_with_reasons() {
    let fal = std::fs::read(testdata("malformed/falco-fal_01_003.json")).unwrap();
    assert_eq!(
        decode_event(&fal).unwrap_err().to_string(),
        "field `kind`: expected the string \"Event\", found a number"
    );
    let line = &lines("falco-k8saudit.jsonl")[0];
    for cut in [1, line.len() / 3, line.len() / 2, line.len() - 1] {
        let err = decode_event(&line.as_bytes()[..cut]).unwrap_err();
        assert!(
            err.to_string().starts_with("malformed JSON: "),
            "cut {cut}: {err}"
        );
    }
    assert!(decode_event(b"").is_err());
    assert!(
        decode_event(b"[{}]")
            .unwrap_err()
            .to_string()
            .contains("an array")
    );
    let err = decode_event(br#"{"apiVersion":"audit.k8s.io/v2"}"#).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("field `apiVersion`: unknown apiVersion"),
        "{err}"
    );
    let err = decode_event(br#"{"user":"alice"}"#).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("field `user`: invalid type: string"),
        "{err}"
    );
}

#[test]
fn an_event_list_of_real_events_decodes_in_order() {
    let items: Vec<Value> = lines("audit2rbac-v1.jsonl")
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let body = json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items});
    let list = decode_event_list(body.to_string().as_bytes()).unwrap();
    assert_eq!(list.items.len(), 37);
    assert_eq!(
        list.items[0].audit_id.as_deref(),
        Some("033d17af-082d-4b24-aa22-627752e83d71")
    );
    let encoded = list.to_v1_value().unwrap();
    assert_eq!(encoded["items"].as_array().unwrap().len(), 37);
    assert_eq!(encoded["kind"], "EventList");
    let again = decode_event_value(encoded["items"][5].clone(), None).unwrap();
    assert_eq!(again.audit_id, list.items[5].audit_id);
}

#[test]
fn list_items_decode_as_the_list_does_and_their_text_stands_alone() {
    for (file, version) in [
        ("audit2rbac-v1.jsonl", "audit.k8s.io/v1"),
        ("audit2rbac-v1beta1.jsonl", "audit.k8s.io/v1beta1"),
        ("falco-k8saudit.jsonl", "audit.k8s.io/v1"),
    ] {
        let items: Vec<Value> = lines(file)
            .iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let mut v: Value = serde_json::from_str(l).unwrap();
                // As the apiserver encodes list items: no type of their own.
                let o = v.as_object_mut().unwrap();
                o.remove("kind");
                o.remove("apiVersion");
                v
            })
            .collect();
        let body = json!({"kind": "EventList", "apiVersion": version, "items": items}).to_string();
        let list = decode_event_list(body.as_bytes()).unwrap();
        let fast = kubetrail_model::decode_event_list_items(body.as_bytes()).unwrap();
        assert_eq!(fast.len(), list.items.len(), "{file}");
        for (item, event) in fast.iter().zip(&list.items) {
            assert_eq!(&item.event, event, "{file}");
            // The text decodes on its own, as v1, to the same event.
            let alone = decode_event(item.json.as_bytes()).unwrap();
            assert_eq!(
                alone.to_v1_value().unwrap(),
                event.to_v1_value().unwrap(),
                "{file}"
            );
            let v: Value = serde_json::from_str(&item.json).unwrap();
            assert_eq!(v["apiVersion"], "audit.k8s.io/v1", "{file}");
            assert_eq!(v["kind"], "Event", "{file}");
        }
    }
    let err = |body: &str| {
        kubetrail_model::decode_event_list_items(body.as_bytes())
            .unwrap_err()
            .to_string()
    };
    assert!(err(r#"{"kind":"Event"}"#).contains("kind"));
    assert!(err(r#"{"items":{}}"#).contains("items"));
    assert!(err(r#"{"items":[{"stage":"Soon"}]}"#).contains("items[0]"));
    assert!(err(r#"{"items":[1]}"#).contains("items[0]"));
    assert!(err(r#"{"apiVersion":"audit.k8s.io/v2","items":[]}"#).contains("apiVersion"));
    assert!(
        kubetrail_model::decode_event_list_items(br#"{"items":[{}]}"#).unwrap()[0]
            .json
            .starts_with(r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1"}"#)
    );
}
