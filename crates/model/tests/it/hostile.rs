//! Hostile input (issue 18): one nesting limit on every decoding path, refusals that name the
//! item and field instead of panics, whatever is accepted encodes and parses again, and
//! bodies that are not an `EventList` are refused by name.

use kubetrail_model::{
    ApiVersion, MAX_DEPTH, decode_event, decode_event_list, decode_event_list_items,
    decode_event_value,
};
use serde_json::Value;

/// `levels` nested arrays.
fn nested(levels: usize) -> String {
    format!("{}{}", "[".repeat(levels), "]".repeat(levels))
}

/// A v1beta1-style list item (no type of its own) whose `requestObject` makes it `depth` deep.
fn item_of_depth(id: &str, depth: usize) -> String {
    format!(
        r#"{{"auditID":"{id}","stage":"ResponseComplete","level":"Request","timestamp":"2017-09-11T15:34:21Z","requestObject":{}}}"#,
        nested(depth - 1)
    )
}

fn list(api_version: &str, items: &[String]) -> String {
    format!(
        r#"{{"kind":"EventList","apiVersion":"{api_version}","metadata":{{}},"items":[{}]}}"#,
        items.join(",")
    )
}

/// Five good items and, at index 3, `bad`.
fn batch_with(bad: String) -> Vec<String> {
    let mut items: Vec<String> = (0..5)
        .map(|i| item_of_depth(&format!("ok-{i}"), 3))
        .collect();
    items[3] = bad;
    items
}

#[test]
fn a_deep_v1beta1_item_is_refused_by_name_instead_of_panicking() {
    for depth in [127, 128, 129, 300] {
        let body = list(
            "audit.k8s.io/v1beta1",
            &batch_with(item_of_depth("deep", depth)),
        );
        for err in [
            decode_event_list_items(body.as_bytes()).map(|_| ()),
            decode_event_list(body.as_bytes()).map(|_| ()),
        ] {
            let err = err.expect_err("too deep").to_string();
            assert!(
                err.contains("items[3].requestObject") && err.contains("deeper than 100 levels"),
                "depth {depth}: {err}"
            );
        }
    }
}

#[test]
fn a_deep_v1_item_with_kind_but_no_api_version_is_refused_by_name() {
    let item = format!(
        r#"{{"kind":"Event","auditID":"deep","stage":"ResponseComplete","requestObject":{}}}"#,
        nested(130)
    );
    let body = list("audit.k8s.io/v1", &batch_with(item));
    let err = decode_event_list_items(body.as_bytes())
        .expect_err("too deep")
        .to_string();
    assert!(err.contains("items[3].requestObject"), "{err}");
}

#[test]
fn the_depth_limit_is_the_same_on_every_path() {
    let line = |depth: usize| {
        format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a","requestObject":{}}}"#,
            nested(depth - 1)
        )
    };
    for (version, depth, ok) in [
        ("audit.k8s.io/v1", MAX_DEPTH, true),
        ("audit.k8s.io/v1", MAX_DEPTH + 1, false),
        ("audit.k8s.io/v1beta1", MAX_DEPTH, true),
        ("audit.k8s.io/v1beta1", MAX_DEPTH + 1, false),
    ] {
        let item = item_of_depth("a", depth);
        let body = list(version, std::slice::from_ref(&item));
        assert_eq!(
            decode_event(line(depth).as_bytes()).is_ok(),
            ok,
            "line {depth}"
        );
        assert_eq!(
            decode_event_list(body.as_bytes()).is_ok(),
            ok,
            "{version} {depth}"
        );
        assert_eq!(
            decode_event_list_items(body.as_bytes()).is_ok(),
            ok,
            "{version} {depth}"
        );
        let value: Value = serde_json::from_str(&item).unwrap();
        let v1beta1 = Some(ApiVersion::V1Beta1);
        assert_eq!(decode_event_value(value, v1beta1).is_ok(), ok, "{depth}");
    }
}

#[test]
fn every_field_is_held_to_the_limit_and_named() {
    // Fields decoded into values, below the event (level 1) and below an object in a field.
    let too_deep = nested(MAX_DEPTH);
    let just_right = nested(MAX_DEPTH - 1);
    let nested_ok = nested(MAX_DEPTH - 2);
    for (field, deep, ok) in [
        (
            "responseObject",
            format!(r#""responseObject":{too_deep}"#),
            format!(r#""responseObject":{just_right}"#),
        ),
        (
            "extension",
            format!(r#""extension":{too_deep}"#),
            format!(r#""extension":{just_right}"#),
        ),
        (
            "authenticationMetadata",
            format!(r#""authenticationMetadata":{too_deep}"#),
            format!(r#""authenticationMetadata":{just_right}"#),
        ),
        (
            "user.x",
            format!(r#""user":{{"x":{just_right}}}"#),
            format!(r#""user":{{"x":{nested_ok}}}"#),
        ),
        (
            "objectRef.x",
            format!(r#""objectRef":{{"x":{just_right}}}"#),
            format!(r#""objectRef":{{"x":{nested_ok}}}"#),
        ),
        (
            "responseStatus.details",
            format!(r#""responseStatus":{{"details":{just_right}}}"#),
            format!(r#""responseStatus":{{"details":{nested_ok}}}"#),
        ),
        // Deeper than serde_json's own limit of 128: the same refusal, not "malformed JSON".
        (
            "extension",
            format!(r#""extension":{}"#, nested(200)),
            String::from(r#""extension":1"#),
        ),
    ] {
        let err = decode_event(format!(r#"{{"auditID":"a",{deep}}}"#).as_bytes())
            .expect_err(field)
            .to_string();
        assert_eq!(
            err,
            format!(
                "field `{field}`: JSON nested deeper than 100 levels (the event object is level 1)"
            ),
        );
        let accepted = format!(r#"{{"auditID":"a",{ok}}}"#);
        decode_event(accepted.as_bytes()).unwrap_or_else(|e| panic!("{field}: {e}"));
    }
}

#[test]
fn whatever_is_accepted_encodes_and_parses_again_even_inside_a_list() {
    let body = list(
        "audit.k8s.io/v1beta1",
        &[item_of_depth("a", MAX_DEPTH), item_of_depth("b", 2)],
    );
    let items = decode_event_list_items(body.as_bytes()).unwrap();
    assert_eq!(items.len(), 2);
    for item in &items {
        let v: Value = serde_json::from_str(&item.json).unwrap();
        assert_eq!(v["apiVersion"], "audit.k8s.io/v1");
        // The stored text in an envelope of a few more levels still parses.
        let page = format!(r#"{{"items":[{{"event":{}}}]}}"#, item.json);
        serde_json::from_str::<Value>(&page).unwrap();
        let again = decode_event(item.event.to_v1_json().as_bytes()).unwrap();
        assert_eq!(again.audit_id, item.event.audit_id);
    }
}

#[test]
fn a_lone_surrogate_in_a_body_is_stored_as_written() {
    let item = r#"{"kind":"Event","auditID":"s","requestObject":{"name":"\ud800"}}"#;
    for version in ["audit.k8s.io/v1", "audit.k8s.io/v1beta1"] {
        let body = list(version, &[item.to_string()]);
        let items = decode_event_list_items(body.as_bytes()).unwrap();
        assert!(
            items[0]
                .json
                .contains(r#""requestObject":{"name":"\ud800"}"#),
            "{}",
            items[0].json
        );
    }
}

#[test]
fn bodies_that_are_not_an_event_list_are_refused_by_name() {
    for (body, reason) in [
        ("{}", "field `items`: required"),
        (r#"{"foo":"bar"}"#, "field `items`: required"),
        (
            r#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1"}"#,
            "field `items`: required",
        ),
        (
            r#"{"items":null}"#,
            "field `items`: expected an array of events, found null",
        ),
        (r#"{"Items":[{"auditID":"a"}]}"#, r#"found "Items""#),
        ("", "malformed JSON"),
    ] {
        for err in [
            decode_event_list_items(body.as_bytes()).map(|_| ()),
            decode_event_list(body.as_bytes()).map(|_| ()),
        ] {
            let err = err.expect_err(body).to_string();
            assert!(err.contains(reason), "{body}: {err}");
        }
    }
    // An empty batch is still a batch, and the apiserver always sends `kind`, but a list
    // without it is accepted.
    for body in [
        r#"{"kind":"EventList","items":[]}"#,
        r#"{"items":[{"auditID":"a"}]}"#,
    ] {
        decode_event_list_items(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"));
        decode_event_list(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"));
    }
}

/// Found by the `event_line` fuzz target: a number serde_json's default parser rounds off by
/// one unit in the last place printed as the nearest shorter text, which parsed again rounded
/// elsewhere, so an event's v1 text changed each time it went through. Numbers now parse
/// correctly rounded (serde_json's `float_roundtrip`): the text a decode gives encodes to itself.
#[test]
fn a_huge_number_in_an_unknown_field_encodes_the_same_every_time() {
    for line in [
        r#"{"aind":2000000333794034201149799E6}"#,
        r#"{"auditID":"n","requestObject":{"x":[1.7976931348623157e308,5e-324,0.30000000000000004,123456789012345678901234567890]}}"#,
    ] {
        let once = decode_event(line.as_bytes()).unwrap().to_v1_json();
        let twice = decode_event(once.as_bytes()).unwrap().to_v1_json();
        assert_eq!(once, twice, "{line}");
    }
}
