//! The web UI over HTTP: sign-in, sessions and their cookie, roles, the headers that keep
//! pages inert, numbers equal to the API's, and attacker-controlled text shown as text.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use kubetrail_model::decode_event;
use kubetrail_server::{AppState, Authenticator, Limits, UiSettings};
use kubetrail_store::Record;
use serde_json::json;

use crate::{ADMIN, Harness, INGEST, PROD_READ, READ, testdata};

fn form(uri: &str, body: &str, cookie: Option<&str>) -> Request<Body> {
    let mut r = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, "127.0.0.1:8080");
    if let Some(c) = cookie {
        r = r.header(header::COOKIE, c);
    }
    r.body(Body::from(body.to_string())).unwrap()
}

pub(crate) fn page(uri: &str, cookie: Option<&str>) -> Request<Body> {
    let mut r = Request::get(uri);
    if let Some(c) = cookie {
        r = r.header(header::COOKIE, c);
    }
    r.body(Body::empty()).unwrap()
}

fn location(h: &HeaderMap) -> &str {
    h.get(header::LOCATION).unwrap().to_str().unwrap()
}

/// Signs in with `token`; returns the `name=value` of the session cookie and the whole header.
pub(crate) async fn sign_in(h: &Harness, token: &str) -> (String, String) {
    let (status, _, headers) = h
        .send(form(
            "/login",
            &format!("token={token}&next=%2Fsearch%3Fverb%3Dget"),
            None,
        ))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/search?verb=get");
    let cookie = headers
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    (cookie.split(';').next().unwrap().to_string(), cookie)
}

#[tokio::test]
async fn pages_need_a_sign_in_and_a_session_opens_them_until_sign_out() {
    let h = Harness::new();
    let (status, _, headers) = h.send(page("/search?verb=get", None)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/login?next=%2Fsearch%3Fverb%3Dget");
    let (status, body, headers) = h.send(page("/login?next=%2Fsearch", None)).await;
    assert_eq!(status, StatusCode::OK);
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("name=\"next\" value=\"/search\""), "{body}");
    assert!(
        headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'")
    );

    let (cookie, whole) = sign_in(&h, READ).await;
    assert!(whole.contains("HttpOnly"), "{whole}");
    assert!(whole.contains("SameSite=Strict"), "{whole}");
    assert!(!whole.contains("Secure"), "plain HTTP: {whole}");
    assert_eq!(cookie.len(), "kubetrail_session=".len() + 64);

    let (status, body, headers) = h.send(page("/", Some(&cookie))).await;
    assert_eq!(status, StatusCode::OK);
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("Sign out"));
    assert!(body.contains(">ui<"), "the viewer's name is shown");
    for (name, value) in [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        assert_eq!(headers[name], value);
    }
    assert!(!body.contains("<script"), "pages carry no script");

    let (status, _, headers) = h.send(form("/logout", "", Some(&cookie))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/login");
    assert!(
        headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let (status, _, _) = h.send(page("/", Some(&cookie))).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the session is gone");
    let (status, _, _) = h.send(page("/", Some("kubetrail_session=forged"))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn wrong_tokens_roles_and_origins_are_refused() {
    let h = Harness::new();
    let (status, body, headers) = h
        .send(form("/login", "token=not-a-token&next=%2F", None))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.get(header::SET_COOKIE).is_none());
    assert!(String::from_utf8(body).unwrap().contains("Unknown token."));

    let (status, body, _) = h
        .send(form("/login", &format!("token={INGEST}"), None))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(String::from_utf8(body).unwrap().contains("has role ingest"));

    let mut cross = form("/login", &format!("token={READ}"), None);
    cross
        .headers_mut()
        .insert(header::ORIGIN, "https://evil.example".parse().unwrap());
    let (status, _, headers) = h.send(cross).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(headers.get(header::SET_COOKIE).is_none());

    // Open redirects: only local paths are followed.
    let (status, _, headers) = h
        .send(form(
            "/login",
            &format!("token={ADMIN}&next=%2F%2Fevil.example%2F"),
            None,
        ))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/");

    // A bearer token works on pages too, with the same roles.
    let bearer = |t: &str| {
        Request::get("/resources")
            .header(header::AUTHORIZATION, format!("Bearer {t}"))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(h.send(bearer(READ)).await.0, StatusCode::OK);
    assert_eq!(h.send(bearer(INGEST)).await.0, StatusCode::FORBIDDEN);
    assert_eq!(h.send(bearer("nope")).await.0, StatusCode::UNAUTHORIZED);

    // A reader bound to a cluster cannot look at another one.
    let r = Request::get("/?cluster=dev")
        .header(header::AUTHORIZATION, format!("Bearer {PROD_READ}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(h.send(r).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn under_tls_the_cookie_is_secure() {
    let base = Harness::new();
    let tokens = kubetrail_server::auth::parse_tokens(&format!(
        "- {{name: ui, token: {READ}, role: read}}\n"
    ))
    .unwrap();
    let state = AppState::new(
        base.store.clone(),
        Authenticator::Tokens(tokens),
        Limits::default(),
        None,
    )
    .unwrap()
    .with_ui(UiSettings {
        secure_cookies: true,
        ..UiSettings::default()
    });
    let h = Harness {
        state: Arc::new(state),
        ..base
    };
    let (_, whole) = sign_in(&h, READ).await;
    assert!(whole.contains("; Secure"), "{whole}");
}

/// An event whose every free-text field is an attack.
fn hostile_event() -> String {
    json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": "0e1f2a3b-xss0-4c5d-8e9f-000000000001",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/default/configmaps/javascript:alert(3)",
        "verb": "update",
        "user": {"username": "\"><img src=x onerror=alert(1)>", "groups": ["<script>alert(6)</script>"]},
        "sourceIPs": ["198.51.100.9"],
        "userAgent": "<script>alert(2)</script>",
        "objectRef": {"resource": "configmaps", "namespace": "default", "name": "javascript:alert(3)", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200, "reason": "<b>Because</b>", "message": "<script>alert(7)</script>"},
        "requestReceivedTimestamp": "2026-11-20T10:00:00.000000Z",
        "stageTimestamp": "2026-11-20T10:00:00.100000Z",
        "annotations": {
            "authorization.k8s.io/decision": "allow",
            "authorization.k8s.io/reason": "<script>alert(4)</script>",
            "example.com/<i>note</i>": "javascript:alert(5)"
        }
    })
    .to_string()
}

/// An exec whose command is markup.
fn hostile_exec() -> String {
    json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": "0e1f2a3b-xss0-4c5d-8e9f-000000000002",
        "stage": "ResponseStarted",
        "requestURI": "/api/v1/namespaces/default/pods/web-0/exec?command=sh&command=-c&command=%3Cscript%3Ealert(8)%3C%2Fscript%3E&container=app&stdin=true&tty=true",
        "verb": "create",
        "user": {"username": "mallory", "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.0.5"],
        "userAgent": "kubectl/v1.30.0",
        "objectRef": {"resource": "pods", "namespace": "default", "name": "web-0", "apiVersion": "v1", "subresource": "exec", "uid": "8f9e-uid-web-0"},
        "responseStatus": {"metadata": {}, "code": 101},
        "requestReceivedTimestamp": "2026-11-20T11:00:00.000000Z",
        "stageTimestamp": "2026-11-20T11:00:00.100000Z"
    })
    .to_string()
}

fn assert_inert(uri: &str, html: &str) {
    assert!(!html.contains("<script"), "{uri}: a script element");
    assert!(!html.contains("<img src=x"), "{uri}: an injected image");
    assert!(!html.contains("<i>note"), "{uri}: injected markup");
    assert!(
        !html.contains("href=\"javascript:"),
        "{uri}: a javascript: link"
    );
    assert!(
        !html.contains("onerror=alert(1)>"),
        "{uri}: an unescaped attribute"
    );
}

#[tokio::test]
async fn pages_show_the_apis_numbers_and_attacks_as_text() {
    let h = Harness::new();
    let raw = std::fs::read_to_string(testdata("real-audit/falco-k8saudit.jsonl")).unwrap();
    let hostile = hostile_event();
    let exec = hostile_exec();
    let records: Vec<Record> = raw
        .lines()
        .chain([hostile.as_str(), exec.as_str()])
        .filter_map(|l| {
            decode_event(l.as_bytes())
                .ok()
                .map(|e| Record::from_event(e, l, "default", 0))
        })
        .collect();
    h.store.append(&records).unwrap();
    let range = "range=custom&from=2000-01-01T00:00:00Z&to=2030-01-01T00:00:00Z";
    let api = "from=2000-01-01T00:00:00Z&to=2030-01-01T00:00:00Z";

    let (_, overview) = h
        .get(&format!("/api/v1/audit/reports/overview?{api}"), Some(READ))
        .await;
    let html = h.get_text(&format!("/?{range}"), Some(READ)).await;
    assert_inert("/", &html);
    for (tile, key) in [
        ("requests", "/requests"),
        ("failed", "/failed/total"),
        ("forbidden", "/forbidden/total"),
        ("exec", "/execAttach/total"),
        ("rbac", "/rbacChanges/total"),
    ] {
        let want = overview
            .pointer(key)
            .and_then(|v| v.as_u64())
            .unwrap_or_else(|| {
                panic!("{key} in {overview}");
            });
        let shown = html
            .split(&format!("data-tile=\"{tile}\""))
            .nth(1)
            .and_then(|s| s.split("class=\"value\">").nth(1))
            .and_then(|s| s.split('<').next())
            .unwrap()
            .replace(',', "");
        assert_eq!(shown, want.to_string(), "tile {tile}");
    }
    assert!(overview["requests"].as_u64().unwrap() > 20, "{overview}");
    // The executed commands, decoded, newest first, the markup in them shown as text.
    assert_inert("/", &html);
    let commands = overview["executedCommands"].as_array().unwrap();
    assert_eq!(
        commands[0]["commandLine"],
        "sh -c '<script>alert(8)</script>'"
    );
    assert_eq!(commands[0]["user"], "mallory");
    assert!(
        html.contains("sh -c &#39;&lt;script&gt;alert(8)&lt;/script&gt;&#39;")
            || html.contains("sh -c '&lt;script&gt;alert(8)&lt;/script&gt;'"),
        "the command is listed as text"
    );
    let exec_page = h
        .get_text(
            "/event?cluster=default&auditID=0e1f2a3b-xss0-4c5d-8e9f-000000000002",
            Some(READ),
        )
        .await;
    assert_inert("/event (exec)", &exec_page);
    assert!(exec_page.contains("id=\"event-command\""));
    assert!(exec_page.contains("8f9e-uid-web-0"), "the object's UID");
    assert!(exec_page.contains("interactive terminal"));
    // The fleet: the one cluster, with the overview's count.
    let fleet = h.get_text(&format!("/fleet?{range}"), Some(READ)).await;
    assert_inert("/fleet", &fleet);
    let row = fleet.split("data-cluster=\"default\"").nth(1).unwrap();
    let count = row
        .split("class=\"num\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap()
        .replace(',', "");
    assert_eq!(count, overview["requests"].to_string());
    assert!(
        row.contains("silent for"),
        "the newest event is from 2026-11-20"
    );
    // The hostile address is outside the internal networks.
    assert!(html.contains("198.51.100.9"));

    let user = "%22%3E%3Cimg+src%3Dx+onerror%3Dalert%281%29%3E";
    let event = "/event?cluster=default&auditID=0e1f2a3b-xss0-4c5d-8e9f-000000000001";
    for uri in [
        format!("/resources?{range}"),
        format!("/search?{range}&text=alert"),
        format!("/user?{range}&user={user}"),
        event.to_string(),
        "/history?resource=configmaps&namespace=default&name=javascript%3Aalert%283%29".into(),
    ] {
        let html = h.get_text(&uri, Some(READ)).await;
        assert_inert(&uri, &html);
        assert!(
            html.contains("javascript:alert(3)") || uri.starts_with("/resources"),
            "{uri}: the name is shown as text"
        );
    }
    let html = h.get_text(event, Some(READ)).await;
    assert!(
        html.contains("&lt;script&gt;alert(2)&lt;/script&gt;"),
        "user agent"
    );
    assert!(html.contains("Authorization</strong>: reason: &lt;script&gt;alert(4)&lt;/script&gt;"));
    assert!(html.contains("&lt;i&gt;note&lt;/i&gt;"));
    assert!(
        html.contains("&lt;script&gt;alert(7)&lt;/script&gt;"),
        "responseStatus.message"
    );
    assert!(
        html.contains("&lt;b&gt;Because&lt;/b&gt;"),
        "responseStatus.reason"
    );
    let html = h
        .get_text(&format!("/search?{range}&text=alert"), Some(READ))
        .await;
    assert_eq!(
        html.matches("<tr data-audit-id=").count(),
        2,
        "the hostile update and the hostile exec have the text"
    );
    assert!(
        !html.contains("data-count"),
        "free-text searches are not counted"
    );
    let html = h
        .get_text(
            &format!("/search?{range}&sourceIP=198.51.100.9"),
            Some(READ),
        )
        .await;
    assert!(
        html.contains("data-count=\"1\""),
        "one event from that address"
    );

    // A bad parameter is a 400 page naming it, not a crash.
    let (status, body, _) = h
        .send(
            Request::get("/search?code=6xx")
                .header(header::AUTHORIZATION, format!("Bearer {READ}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8(body).unwrap().contains("parameter code"));
}
