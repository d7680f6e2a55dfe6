//! What a client may make the server hold or produce: filter values per parameter and in all,
//! the URL's length, the body's size and the time to send it — answered in the API's
//! `{"error"}` shape or as a page — the search page's size against its URL, and over a real
//! socket the header read timeout (also the keep-alive idle timeout) and the connection limit.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{Request, StatusCode, header};
use hyper::body::Frame;
use kubetrail_api::params::{MAX_FILTER_VALUES, MAX_VALUES_PER_PARAMETER, encode_query};
use kubetrail_api::paths;
use kubetrail_server::auth::parse_tokens;
use kubetrail_server::{
    AppState, Authenticator, ConnectionLimits, Limits, RequestLimits, router, serve_with,
};
use kubetrail_store::Store;
use kubetrail_store_duckdb::DuckDbStore;
use tokio::net::{TcpListener, TcpStream};

use crate::{ADMIN, Harness, INGEST, READ, event_list};

fn many(key: &str, n: usize, width: usize) -> String {
    encode_query((0..n).map(|i| (key, format!("{i:0width$}"))))
}

#[tokio::test]
async fn filter_values_past_the_limit_are_refused_by_the_api_and_the_pages() {
    let h = Harness::new();
    let ok = many("user", MAX_VALUES_PER_PARAMETER, 4);
    let (status, _) = h.get(&format!("{}?{ok}", paths::EVENTS), Some(READ)).await;
    assert_eq!(status, StatusCode::OK);

    let over = many("user", MAX_VALUES_PER_PARAMETER + 1, 4);
    let in_all = format!(
        "{}&{}&verb=get",
        many("user", MAX_FILTER_VALUES / 2, 4),
        many("namespace", MAX_FILTER_VALUES / 2, 4)
    );
    for (query, parameter, limit) in [
        (&over, "parameter user", MAX_VALUES_PER_PARAMETER),
        (&in_all, "parameter verb", MAX_FILTER_VALUES),
    ] {
        for path in [
            paths::EVENTS.to_string(),
            paths::AGGREGATE.to_string(),
            format!("{}/users", paths::REPORTS),
        ] {
            let uri = format!("{path}?{query}");
            let (status, reply) = h.get(&uri, Some(READ)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {reply}");
            let reason = reply["error"].as_str().unwrap();
            assert!(reason.starts_with(parameter), "{path}: {reason}");
            assert!(reason.contains(&limit.to_string()), "{path}: {reason}");
        }
        // The page says the same, as a page.
        let (status, body, headers) = h
            .send(
                Request::get(format!("/search?{query}"))
                    .header(header::AUTHORIZATION, format!("Bearer {READ}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let body = String::from_utf8(body).unwrap();
        assert!(body.contains(parameter), "{body}");
        assert!(body.contains(&limit.to_string()), "{body}");
    }
}

async fn search_page_len(h: &Harness, query: &str) -> usize {
    h.get_text(&format!("/search?{query}"), Some(READ))
        .await
        .len()
}

#[tokio::test]
async fn the_search_page_grows_linearly_with_its_url() {
    let h = Harness::new();
    let (body, _) = event_list("real-audit/audit2rbac-v1.jsonl", "audit.k8s.io/v1");
    let json = [("content-type", "application/json")];
    let (status, _) = h.post(paths::WEBHOOK, Some(INGEST), &json, body).await;
    assert_eq!(status, StatusCode::OK);
    let base = search_page_len(&h, "range=custom&from=2000-01-01T00:00&to=2100-01-01T00:00").await;
    // A few values: each chip still removes itself.
    let few = h
        .get_text("/search?user=alice&user=bob&verb=get", Some(READ))
        .await;
    assert_eq!(few.matches("class=\"remove\"").count(), 3, "{few}");
    // As many values as one parameter may have, each long.
    let query = format!(
        "range=custom&from=2000-01-01T00:00&to=2100-01-01T00:00&{}",
        many("user", MAX_VALUES_PER_PARAMETER, 60)
    );
    assert!(query.len() < kubetrail_server::DEFAULT_MAX_URL_BYTES);
    let len = search_page_len(&h, &query).await;
    // The page repeats the URL in a bounded number of links and fields (the navigation, the
    // scope bar, the form, the rows' links), never once per value.
    let grown = len - base;
    assert!(
        grown < 25 * query.len(),
        "{grown} bytes more for a {}-byte query",
        query.len()
    );
}

#[tokio::test]
async fn an_overlong_url_is_refused_with_414() {
    let h = Harness::new();
    let text = "x".repeat(kubetrail_server::DEFAULT_MAX_URL_BYTES);
    let (status, reply) = h
        .get(&format!("{}?text={text}", paths::EVENTS), Some(READ))
        .await;
    assert_eq!(status, StatusCode::URI_TOO_LONG, "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("8192"), "{reply}");
    // Before authentication: the token is not even looked at.
    let (status, _) = h.get(&format!("{}?text={text}", paths::EVENTS), None).await;
    assert_eq!(status, StatusCode::URI_TOO_LONG);
    let (status, body, headers) = h
        .send(
            Request::get(format!("/search?text={text}"))
                .header(header::AUTHORIZATION, format!("Bearer {READ}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::URI_TOO_LONG);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(String::from_utf8(body).unwrap().contains("8192"));
    // Just under the limit is fine.
    let text = "x".repeat(kubetrail_server::DEFAULT_MAX_URL_BYTES - 100);
    let (status, _) = h
        .get(&format!("{}?text={text}", paths::EVENTS), Some(READ))
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn an_oversize_body_is_refused_in_the_error_shape() {
    let h = Harness::with_limits(Limits {
        max_body_bytes: 4096,
    });
    let (body, _) = event_list("real-audit/audit2rbac-v1.jsonl", "audit.k8s.io/v1");
    for path in [paths::WEBHOOK, paths::EVENTS, paths::AGENT_STATUS] {
        let (status, reply) = h
            .post(
                path,
                Some(INGEST),
                &[("content-type", "application/json")],
                body.clone(),
            )
            .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        let reason = reply["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: {reply}"));
        assert!(reason.contains("4096"), "{path}: {reason}");
    }
    // Other refusals of the framework have the shape too.
    let (status, body, headers) = h
        .send(
            Request::delete(paths::EVENTS)
                .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(headers.contains_key(header::ALLOW));
    let reply: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(reply["error"].is_string(), "{reply}");
}

/// A body that sends a little, then nothing.
struct Stalled {
    sent: bool,
}

impl HttpBody for Stalled {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.sent {
            return Poll::Pending;
        }
        self.sent = true;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"{\"kind\":")))))
    }
}

fn state_with(requests: RequestLimits) -> (Arc<AppState>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(DuckDbStore::open(dir.path()).unwrap());
    let tokens = parse_tokens(&format!(
        "- {{name: apiserver, token: {INGEST}, role: ingest}}\n- {{name: ui, token: {READ}, role: read}}\n"
    ))
    .unwrap();
    let state = AppState::new(
        store,
        Authenticator::Tokens(tokens),
        Limits::default(),
        Some(dir.path().to_path_buf()),
    )
    .unwrap()
    .with_request_limits(requests);
    (Arc::new(state), dir)
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_refused_with_408() {
    use tower::ServiceExt;
    let (state, _dir) = state_with(RequestLimits {
        body_read_timeout: Duration::from_millis(200),
        ..RequestLimits::default()
    });
    for path in [paths::WEBHOOK, paths::EVENTS] {
        let request = Request::post(path)
            .header(header::AUTHORIZATION, format!("Bearer {INGEST}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::new(Stalled { sent: false }))
            .unwrap();
        let started = Instant::now();
        let response = tokio::time::timeout(
            Duration::from_secs(10),
            router(state.clone()).oneshot(request),
        )
        .await
        .expect("the server waits for the body forever")
        .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT, "{path}");
        assert_eq!(response.headers()[header::CONNECTION], "close");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let reply: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(
            reply["error"].as_str().unwrap().contains("200 ms"),
            "{reply}"
        );
    }
    // Even an unauthenticated request cannot keep the server reading.
    let request = Request::post(paths::WEBHOOK)
        .body(Body::new(Stalled { sent: false }))
        .unwrap();
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        router(state.clone()).oneshot(request),
    )
    .await
    .expect("the server waits for a refused body forever")
    .unwrap();
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
}

/// A server on a loopback port with `limits`; stops when the returned sender is dropped.
async fn listening(
    limits: ConnectionLimits,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
    Harness,
) {
    let h = Harness::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = router(h.state.clone());
    let server = tokio::spawn(async move {
        serve_with(listener, app, None, limits, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (addr, stop, server, h)
}

/// Writes all of `bytes`.
async fn send(conn: &TcpStream, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        conn.writable().await.unwrap();
        match conn.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("writing: {e}"),
        }
    }
}

/// Reads what is there, waiting for at least one byte; `None` at the end.
async fn receive(conn: &TcpStream, buf: &mut [u8]) -> Option<usize> {
    loop {
        conn.readable().await.ok()?;
        match conn.try_read(buf) {
            Ok(0) => return None,
            Ok(n) => return Some(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return None,
        }
    }
}

/// Reads until the server closes the connection (or resets it); returns what came and when.
async fn read_to_close(conn: &mut TcpStream, within: Duration) -> Option<(Vec<u8>, Instant)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, receive(conn, &mut buf)).await {
            Err(_) => return None,
            Ok(None) => return Some((got, Instant::now())),
            Ok(Some(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_request_head_is_closed_after_the_header_read_timeout() {
    let timeout = Duration::from_millis(300);
    let (addr, _stop, _server, _h) = listening(ConnectionLimits {
        header_read_timeout: timeout,
        ..ConnectionLimits::default()
    })
    .await;
    // Half a head, and then nothing: a slowloris client.
    let started = Instant::now();
    let mut conn = TcpStream::connect(addr).await.unwrap();
    send(
        &conn,
        b"GET /healthz HTTP/1.1\r\nHost: kubetrail\r\nX-Slow: ",
    )
    .await;
    let (_, closed) = read_to_close(&mut conn, Duration::from_secs(5))
        .await
        .expect("the server kept a half-sent request open");
    // The timer starts when the server accepts, a little after `started` (the clocks differ
    // by the scheduling of two tasks).
    let took = closed - started;
    assert!(
        took >= timeout - Duration::from_millis(50),
        "closed after {took:?}"
    );
    // A connection that sends nothing at all goes the same way.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert!(
        read_to_close(&mut silent, Duration::from_secs(5))
            .await
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed_after_the_header_read_timeout() {
    let timeout = Duration::from_millis(300);
    let (addr, _stop, _server, _h) = listening(ConnectionLimits {
        header_read_timeout: timeout,
        ..ConnectionLimits::default()
    })
    .await;
    let mut conn = TcpStream::connect(addr).await.unwrap();
    send(&conn, b"GET /healthz HTTP/1.1\r\nHost: kubetrail\r\n\r\n").await;
    let mut buf = [0u8; 1024];
    let n = receive(&conn, &mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    let answered = Instant::now();
    // Kept alive, then closed once idle for the timeout.
    let (rest, closed) = read_to_close(&mut conn, Duration::from_secs(5))
        .await
        .expect("an idle kept-alive connection stayed open");
    assert!(rest.is_empty() || rest.ends_with(b"ok"));
    assert!(closed - answered >= timeout - Duration::from_millis(50));
}

async fn get_healthz(conn: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    send(
        conn,
        b"GET /healthz HTTP/1.1\r\nHost: kubetrail\r\nConnection: close\r\n\r\n",
    )
    .await;
    read_to_close(conn, within).await.map(|(b, _)| b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limit_wait_until_one_ends() {
    let (addr, stop, server, _h) = listening(ConnectionLimits {
        header_read_timeout: Duration::from_secs(30),
        max_connections: 2,
    })
    .await;
    let first = TcpStream::connect(addr).await.unwrap();
    let _second = TcpStream::connect(addr).await.unwrap();
    // Give the server the time to accept both.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = TcpStream::connect(addr).await.unwrap();
    let waiting = tokio::spawn(async move {
        let answer = get_healthz(&mut third, Duration::from_secs(10)).await;
        (answer, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "a third connection was served");
    let freed = Instant::now();
    drop(first);
    let (answer, at) = waiting.await.unwrap();
    let answer = answer.expect("the waiting connection was never served");
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    assert!(at > freed);
    // Shutting down ends the idle connection and returns.
    drop(stop);
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("shutdown waited for an idle connection")
        .unwrap();
}
