//! What is redacted where, checked on whole events.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn redactor() -> Redactor {
    Redactor::new(&Key::from_bytes([7; 32]), &[]).unwrap()
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// An event about `resource` (`group/resource/subresource`, parts may be empty) with bodies.
fn event(
    resource: (&str, &str, &str),
    uri: &str,
    request: Option<Value>,
    response: Option<Value>,
) -> String {
    let mut e = json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": "a1",
        "stage": "ResponseComplete",
        "requestURI": uri,
        "verb": "create",
        "user": {"username": "alice"},
        "userAgent": "kubectl/v1.31 (linux/amd64)",
        "objectRef": {"resource": resource.1, "apiGroup": resource.0, "subresource": resource.2, "namespace": "ns", "name": "n"},
        "stageTimestamp": "2024-05-01T10:00:00.000000Z",
    });
    if let Some(r) = request {
        e["requestObject"] = r;
    }
    if let Some(r) = response {
        e["responseObject"] = r;
    }
    e.to_string()
}

fn redact(r: &Redactor, text: &str) -> Option<String> {
    let mut e = kubetrail_model::decode_event(text.as_bytes()).unwrap();
    let out = r.redact_event(&mut e, text).unwrap();
    // The event is redacted as its text is.
    if let Some(out) = &out {
        assert_eq!(&e, &kubetrail_model::decode_event(out.as_bytes()).unwrap());
    }
    out
}

fn parsed(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn a_secret_loses_its_values_everywhere_and_keeps_its_shape() {
    let r = redactor();
    let applied = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
        "stringData": {"password": "hunter2"}})
    .to_string()
        + "\n";
    let secret = json!({"kind": "Secret", "apiVersion": "v1",
        "metadata": {"name": "db", "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": applied, "team": "payments"}},
        "type": "Opaque",
        "data": {"password": b64("hunter2"), "user": b64("admin-user")}});
    let text = event(
        ("", "secrets", ""),
        "/api/v1/namespaces/ns/secrets",
        Some(secret.clone()),
        Some(secret),
    );
    let out = redact(&r, &text).expect("something to redact");
    for leaked in ["hunter2", "admin-user", &b64("hunter2"), &b64("admin-user")] {
        assert!(!out.contains(leaked), "{leaked} in {out}");
    }
    let v = parsed(&out);
    let marker = r.marker(b"hunter2");
    assert!(is_marker(&marker));
    for body in ["requestObject", "responseObject"] {
        let o = &v[body];
        assert_eq!(o["data"]["password"], json!(marker));
        assert_eq!(o["data"]["user"], json!(r.marker(b"admin-user")));
        assert_eq!(o["type"], "Opaque");
        assert_eq!(o["metadata"]["annotations"]["team"], "payments");
        let applied = o["metadata"]["annotations"][body::LAST_APPLIED]
            .as_str()
            .unwrap();
        assert!(applied.ends_with('\n'));
        // stringData's value hashes like the bytes data's base64 stands for.
        assert_eq!(parsed(applied)["stringData"]["password"], json!(marker));
    }
    // The envelope keeps its fields, in their order and text.
    let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    let before: Vec<_> = parsed(&text).as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, before);
    assert!(out.contains(r#""userAgent":"kubectl/v1.31 (linux/amd64)""#));
    // Redacting again changes nothing.
    assert_eq!(redact(&r, &out), None);
}

#[test]
fn secret_lists_watch_events_and_nested_secrets_are_redacted() {
    let r = redactor();
    let list = json!({"kind": "SecretList", "apiVersion": "v1", "metadata": {},
        "items": [{"metadata": {"name": "a"}, "data": {"k": b64("s3cr3t-one")}},
                  {"metadata": {"name": "b"}, "stringData": {"k": "s3cr3t-two"}}]});
    let out = redact(
        &r,
        &event(("", "secrets", ""), "/api/v1/secrets", None, Some(list)),
    )
    .unwrap();
    assert!(
        !out.contains("s3cr3t") && !out.contains(&b64("s3cr3t-one")),
        "{out}"
    );
    assert_eq!(
        parsed(&out)["responseObject"]["items"][1]["metadata"]["name"],
        "b"
    );

    let watch =
        json!({"type": "ADDED", "object": {"kind": "Secret", "data": {"k": b64("w4tch-value")}}});
    let out = redact(
        &r,
        &event(
            ("", "secrets", ""),
            "/api/v1/secrets?watch=1",
            None,
            Some(watch),
        ),
    )
    .unwrap();
    assert_eq!(
        parsed(&out)["responseObject"]["object"]["data"]["k"],
        json!(r.marker(b"w4tch-value"))
    );
    assert_eq!(parsed(&out)["responseObject"]["type"], "ADDED");

    // A Secret inside another resource's object, and a SecretList nested in a List.
    let template = json!({"kind": "SecretTemplate", "spec": {"template": {"kind": "Secret",
        "stringData": {"token": "n3sted-token"}}},
        "status": {"seen": {"kind": "SecretList", "items": [{"data": {"x": b64("l1sted")}}]}}});
    let out = redact(
        &r,
        &event(
            ("example.com", "templates", ""),
            "/apis/example.com/v1/templates",
            Some(template),
            None,
        ),
    )
    .unwrap();
    assert!(
        !out.contains("n3sted-token") && !out.contains(&b64("l1sted")),
        "{out}"
    );
    assert_eq!(
        parsed(&out)["requestObject"]["spec"]["template"]["stringData"]["token"],
        json!(r.marker(b"n3sted-token"))
    );
}

#[test]
fn patches_of_a_secret_lose_the_values_they_set() {
    let r = redactor();
    let merge = json!({"data": {"password": b64("m3rge"), "old": null},
        "metadata": {"labels": {"app": "web"}}});
    let out = redact(
        &r,
        &event(
            ("", "secrets", ""),
            "/api/v1/namespaces/ns/secrets/n",
            Some(merge),
            None,
        ),
    )
    .unwrap();
    let v = parsed(&out);
    assert_eq!(
        v["requestObject"]["data"]["password"],
        json!(r.marker(b"m3rge"))
    );
    assert_eq!(v["requestObject"]["data"]["old"], Value::Null);
    assert_eq!(v["requestObject"]["metadata"]["labels"]["app"], "web");

    let ops = json!([
        {"op": "replace", "path": "/data/password", "value": b64("j50n-one")},
        {"op": "add", "path": "/data", "value": {"k": b64("j50n-two")}},
        {"op": "add", "path": "/stringData/k", "value": "j50n-three"},
        {"op": "add", "path": "/metadata/labels/app", "value": "kept"},
        {"op": "remove", "path": "/data/gone"},
    ]);
    let out = redact(
        &r,
        &event(
            ("", "secrets", ""),
            "/api/v1/namespaces/ns/secrets/n",
            Some(ops),
            None,
        ),
    )
    .unwrap();
    assert!(
        !out.contains("j50n") && !out.contains(&b64("j50n-one")),
        "{out}"
    );
    let v = parsed(&out);
    assert_eq!(v["requestObject"][0]["value"], json!(r.marker(b"j50n-one")));
    assert_eq!(
        v["requestObject"][1]["value"]["k"],
        json!(r.marker(b"j50n-two"))
    );
    assert_eq!(v["requestObject"][3]["value"], "kept");
    assert_eq!(
        v["requestObject"][4],
        json!({"op": "remove", "path": "/data/gone"})
    );
}

#[test]
fn token_reviews_token_requests_and_query_credentials_are_redacted() {
    let r = redactor();
    let review = json!({"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
        "spec": {"token": "eyJhbGciOi.review"}, "status": {"authenticated": true,
        "user": {"username": "system:serviceaccount:ns:sa"}}});
    let out = redact(
        &r,
        &event(
            ("authentication.k8s.io", "tokenreviews", ""),
            "/apis/authentication.k8s.io/v1/tokenreviews",
            Some(review.clone()),
            Some(review),
        ),
    )
    .unwrap();
    assert!(!out.contains("eyJhbGciOi"), "{out}");
    assert_eq!(
        parsed(&out)["responseObject"]["status"]["user"]["username"],
        "system:serviceaccount:ns:sa"
    );

    let request = json!({"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
        "spec": {"audiences": ["api"], "expirationSeconds": 3600}});
    let mut response = request.clone();
    response["status"] =
        json!({"token": "eyJrequested", "expirationTimestamp": "2024-05-01T11:00:00Z"});
    let out = redact(
        &r,
        &event(
            ("", "serviceaccounts", "token"),
            "/api/v1/namespaces/ns/serviceaccounts/sa/token",
            Some(request),
            Some(response),
        ),
    )
    .unwrap();
    let v = parsed(&out);
    assert_eq!(
        v["responseObject"]["status"]["token"],
        json!(r.marker(b"eyJrequested"))
    );
    assert_eq!(v["requestObject"]["spec"]["expirationSeconds"], 3600);

    let uri = "/api/v1/namespaces/ns/pods?watch=true&access_token=abc%2Bdef&Token=x+y&tokenx=keep&password=";
    let out = redact(&r, &event(("", "pods", ""), uri, None, None)).unwrap();
    let got = parsed(&out)["requestURI"].as_str().unwrap().to_string();
    assert_eq!(
        got,
        format!(
            "/api/v1/namespaces/ns/pods?watch=true&access_token={}&Token={}&tokenx=keep&password=",
            r.marker(b"abc+def"),
            r.marker(b"x y")
        )
    );
    let e = kubetrail_model::decode_event(out.as_bytes()).unwrap();
    assert_eq!(e.request_uri.as_deref(), Some(got.as_str()));
}

#[test]
fn configured_paths_redact_a_custom_resource() {
    let r = Redactor::new(
        &Key::from_bytes([7; 32]),
        &[ExtraPaths {
            group: "db.example.com".into(),
            resource: "databases".into(),
            paths: vec!["/spec/password".into(), "/spec/users/*/key".into()],
        }],
    )
    .unwrap();
    let object = json!({"kind": "Database", "spec": {"password": "pa55", "port": 5432,
        "users": [{"name": "u1", "key": "k3y-1"}, {"name": "u2", "key": {"v": 9}}]}});
    let list = json!({"kind": "DatabaseList", "items": [object.clone()]});
    let out = redact(
        &r,
        &event(
            ("db.example.com", "databases", ""),
            "/apis/db.example.com/v1/databases",
            Some(object),
            Some(list),
        ),
    )
    .unwrap();
    let v = parsed(&out);
    for o in [&v["requestObject"], &v["responseObject"]["items"][0]] {
        assert_eq!(o["spec"]["password"], json!(r.marker(b"pa55")));
        assert_eq!(o["spec"]["port"], 5432);
        assert_eq!(o["spec"]["users"][0]["name"], "u1");
        assert_eq!(o["spec"]["users"][0]["key"], json!(r.marker(b"k3y-1")));
        assert_eq!(o["spec"]["users"][1]["key"]["v"], json!(r.marker(b"9")));
    }
    // Another resource of the group is left alone.
    let other = event(
        ("db.example.com", "backups", ""),
        "/x",
        Some(json!({"spec": {"password": "x"}})),
        None,
    );
    assert_eq!(redact(&r, &other), None);
}

#[test]
fn events_without_secrets_are_left_as_they_are() {
    let r = redactor();
    let pod = json!({"kind": "Pod", "spec": {"containers": [{"name": "c", "env": [
        {"name": "X", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]}]}});
    assert_eq!(
        redact(
            &r,
            &event(("", "pods", ""), "/api/v1/pods?limit=500", Some(pod), None)
        ),
        None
    );
    // A Secret's metadata-only answer has nothing to hide either.
    let meta = json!({"kind": "Secret", "metadata": {"name": "db"}, "type": "Opaque"});
    assert_eq!(
        redact(
            &r,
            &event(("", "secrets", ""), "/api/v1/secrets", None, Some(meta))
        ),
        None
    );
}

#[test]
fn a_body_that_cannot_be_read_as_a_tree_goes_whole() {
    let r = redactor();
    let text = event(("", "secrets", ""), "/api/v1/secrets", None, None).replacen(
        "\"stageTimestamp\"",
        r#""requestObject":{"data":{"k":"\ud800 lone-surrogate"}},"stageTimestamp""#,
        1,
    );
    let out = redact(&r, &text).unwrap();
    assert!(!out.contains("lone-surrogate"), "{out}");
    assert!(is_marker(parsed(&out)["requestObject"].as_str().unwrap()));
}

#[test]
fn markers_depend_on_the_key() {
    let a = redactor();
    let b = Redactor::new(&Key::from_bytes([8; 32]), &[]).unwrap();
    assert_eq!(a.marker(b"x"), a.marker(b"x"));
    assert_ne!(a.marker(b"x"), b.marker(b"x"));
    assert_ne!(a.marker(b"x"), a.marker(b"y"));
    assert_eq!(a.marker(b"x").len(), MARKER_PREFIX.len() + 32);
    assert!(!is_marker("redacted:hmac-sha256:xyz"));
}

proptest! {
    #[test]
    fn no_secret_value_survives(value in "[A-Za-z0-9+/=_.-]{6,40}", as_data in any::<bool>()) {
        let r = redactor();
        let field = if as_data { "data" } else { "stringData" };
        let stored = if as_data { b64(&value) } else { value.clone() };
        let secret = json!({"kind": "Secret", field: {"k": stored}});
        let text = event(("", "secrets", ""), "/api/v1/namespaces/ns/secrets", Some(secret.clone()), Some(json!({"kind": "SecretList", "items": [secret]})));
        let out = redact(&r, &text).unwrap();
        prop_assert!(!out.contains(&stored));
        prop_assert_eq!(parsed(&out)["requestObject"][field]["k"].clone(), json!(r.marker(value.as_bytes())));
    }
}
