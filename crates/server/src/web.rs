//! The web UI's HTTP side: sign-in with a token into a session cookie (HttpOnly,
//! SameSite=Strict, Secure under TLS), sign-out, the pages of [`kubetrail_ui`] behind the read
//! role, the embedded stylesheet and icon, and the headers that keep pages inert: a
//! Content-Security-Policy that allows no script at all, no framing, no referrer to other sites.
//!
//! A bearer token in the `Authorization` header works on every page too, for automation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kubetrail_ui::{Context, Networks, Page, UiError, Viewer};

use crate::AppState;
use crate::auth::{Principal, Role};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "kubetrail_session";

/// How long a session lasts after sign-in.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// Sessions kept at most; the oldest go first.
const MAX_SESSIONS: usize = 10_000;

/// What pages may do: nothing but show themselves and their stylesheet.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// Settings of the web UI.
#[derive(Debug, Clone, Default)]
pub struct UiSettings {
    /// Mark the session cookie `Secure` (when serving HTTPS).
    pub secure_cookies: bool,
    /// Source addresses counted as internal.
    pub networks: Networks,
}

struct Session {
    principal: Principal,
    expires: Instant,
}

/// Signed-in sessions, in memory: a restart signs everyone out.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    fn create(&self, principal: Principal) -> std::io::Result<String> {
        let id = kubetrail_store::text::random_hex(32)?;
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            id.clone(),
            Session {
                principal,
                expires: now + SESSION_TTL,
            },
        );
        Ok(id)
    }

    fn get(&self, id: &str) -> Option<Principal> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id)
            .filter(|s| s.expires > Instant::now())
            .map(|s| s.principal.clone())
    }

    fn remove(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Signed-in sessions (expired ones included until the next sign-in prunes them).
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether nobody is signed in.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
        .find(|v| !v.is_empty())
}

/// An HTML answer with the headers that keep pages inert.
pub(crate) fn html_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Where to go after signing in: a local path only (never `//host` or a scheme).
fn local_path(next: &str) -> &str {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    if ok { next } else { "/" }
}

/// A state-changing form must come from our own pages: when the browser says where it comes
/// from (`Sec-Fetch-Site`, `Origin`), that must be this host. (Pages send their referrer to
/// their own origin only: under `no-referrer` browsers send `Origin: null` even for a form of
/// the same origin.)
fn same_origin(headers: &HeaderMap) -> bool {
    // Browsers that send Sec-Fetch-Site say it directly (and a proxy rewriting Host does not
    // confuse it); others are judged by Origin against Host.
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| !host.is_empty() && rest == host)
}

fn cross_origin() -> Response {
    html_response(
        StatusCode::FORBIDDEN,
        kubetrail_ui::login_page(
            "/",
            Some("This form must be sent from kubetrail's own page."),
        ),
    )
}

/// The viewer of a page request, as the middleware found it.
#[derive(Debug, Clone)]
pub struct PageViewer(pub Viewer);

/// Middleware for pages: a bearer token, a session cookie, or (with authentication off)
/// nobody in particular; otherwise a redirect to the sign-in page.
pub async fn require_viewer(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let (principal, session) = if request.headers().contains_key(header::AUTHORIZATION)
        || matches!(state.auth, crate::Authenticator::Insecure)
    {
        match state.auth.authenticate(&request) {
            Ok(p) => (p, false),
            Err(e) => {
                state.metrics.auth_failure("unauthenticated");
                return html_response(
                    StatusCode::UNAUTHORIZED,
                    kubetrail_ui::error_page(None, &UiError::Forbidden(e.reason)),
                );
            }
        }
    } else {
        match session_id(request.headers()).and_then(|id| state.sessions.get(id)) {
            Some(p) => (p, true),
            None => {
                let target = request
                    .uri()
                    .path_and_query()
                    .map_or("/".to_string(), |p| p.to_string());
                let to = format!(
                    "/login?{}",
                    kubetrail_api::params::encode_query([("next", target)])
                );
                return redirect(&to);
            }
        }
    };
    let viewer = Viewer {
        name: principal.name.clone(),
        cluster: principal.cluster.clone(),
        session,
    };
    if !principal.role.allows(Role::Read) {
        state.metrics.auth_failure("forbidden");
        let e = UiError::Forbidden(format!(
            "{} has role {}, the web UI needs read",
            principal.name,
            principal.role.as_str()
        ));
        return html_response(
            StatusCode::FORBIDDEN,
            kubetrail_ui::error_page(Some(&viewer), &e),
        );
    }
    request.extensions_mut().insert(PageViewer(viewer));
    next.run(request).await
}

/// `GET` of a page.
pub async fn page(
    State(state): State<Arc<AppState>>,
    axum::Extension(PageViewer(viewer)): axum::Extension<PageViewer>,
    uri: Uri,
) -> Response {
    let Some(page) = Page::at(uri.path()) else {
        let e = UiError::NotFound(format!("no page at {}", uri.path()));
        return html_response(
            StatusCode::NOT_FOUND,
            kubetrail_ui::error_page(Some(&viewer), &e),
        );
    };
    let query = uri.query().unwrap_or("").to_string();
    // Only the overview and the fleet show the agents' gaps, only the fleet the agents; a
    // viewer bound to a cluster sees its own.
    let own = |c: &str| viewer.cluster.as_deref().is_none_or(|v| v == c);
    let gaps: Vec<_> = match page {
        Page::Overview | Page::Fleet => state
            .agents
            .gaps()
            .into_iter()
            .filter(|g| own(&g.cluster))
            .collect(),
        _ => Vec::new(),
    };
    let agents: Vec<_> = match page {
        Page::Fleet => state
            .agents
            .agents()
            .into_iter()
            .filter(|a| own(&a.cluster))
            .collect(),
        _ => Vec::new(),
    };
    let started = Instant::now();
    let worker = state.clone();
    let shown = viewer.clone();
    // The pages that name rules get the running ones (their counts are the pages' own);
    // the others do not copy them on every view.
    let rules: Option<Vec<kubetrail_api::wire::RuleItem>> = match page {
        Page::Alerts | Page::Rules => state.detector.as_ref().map(|d| {
            d.rules()
                .into_iter()
                .map(crate::alerts::rule_item)
                .collect()
        }),
        _ => None,
    };
    let integrity = match page {
        Page::Overview => state.integrity.as_ref().map(|i| {
            let s = i.status();
            kubetrail_ui::Integrity {
                checked_at: s
                    .checked_at_micros
                    .and_then(chrono::DateTime::from_timestamp_micros)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                problems: s.first,
                clusters: s.clusters,
                error: s.error,
            }
        }),
        _ => None,
    };
    let result = crate::on_store(&state, move |store| {
        // A viewer bound to a cluster picks from that one only.
        let clusters = match &shown.cluster {
            Some(c) => vec![c.clone()],
            None => worker.clusters.all(store)?,
        };
        // Only the user page compares RBAC with use: the RBAC of the cluster it asks about
        // (the viewer's own when bound).
        let rbac = match (page, &worker.rbac) {
            (Page::User, Some(source)) => {
                let asked: Vec<String> = match &shown.cluster {
                    Some(c) => vec![c.clone()],
                    None => kubetrail_api::params::parse_query(&query)
                        .into_iter()
                        .filter(|(k, v)| k == "cluster" && !v.is_empty())
                        .map(|(_, v)| v)
                        .collect(),
                };
                Some(match source.scope(shown.cluster.as_deref(), &asked) {
                    Ok(clusters) => source.current(
                        store,
                        &kubetrail_store::Filter {
                            clusters,
                            ..kubetrail_store::Filter::default()
                        },
                    )?,
                    Err(e) => Err(e.reason),
                })
            }
            _ => None,
        };
        let ctx = Context {
            store,
            now_micros: chrono::Utc::now().timestamp_micros(),
            viewer: &shown,
            networks: &worker.ui.networks,
            gaps: &gaps,
            agents: &agents,
            rules: rules.as_deref(),
            rbac: rbac.as_ref().map(|r| r.as_deref().map_err(String::as_str)),
            clusters: &clusters,
            resources: &worker.resources,
            integrity: integrity.as_ref(),
        };
        kubetrail_ui::render(page, &ctx, &query)
    })
    .await;
    let elapsed = started.elapsed();
    let mut response = match result {
        Ok(Ok(html)) => html_response(StatusCode::OK, html),
        Ok(Err(e)) => {
            if e.status() >= 500 {
                tracing::error!(error = %e, path = uri.path(), "rendering a page failed");
            }
            let status =
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            html_response(status, kubetrail_ui::error_page(Some(&viewer), &e))
        }
        Err(e) => {
            // The store did not answer in time, or the page task failed.
            tracing::error!(error = %e.reason, "a page could not be rendered");
            let shown = if e.status == StatusCode::SERVICE_UNAVAILABLE {
                UiError::Store(kubetrail_store::Error::db(
                    "rendering the page",
                    std::io::Error::other(e.reason),
                ))
            } else {
                UiError::Internal("the page could not be rendered".into())
            };
            html_response(e.status, kubetrail_ui::error_page(Some(&viewer), &shown))
        }
    };
    // How long the server took, for browsers' developer tools and the page benchmark.
    if let Ok(v) =
        HeaderValue::from_str(&format!("render;dur={:.1}", elapsed.as_secs_f64() * 1000.0))
    {
        response.headers_mut().insert("server-timing", v);
    }
    response
}

/// `GET /login`.
pub async fn login_form(State(state): State<Arc<AppState>>, uri: Uri) -> Response {
    if matches!(state.auth, crate::Authenticator::Insecure) {
        return redirect("/");
    }
    let pairs = kubetrail_api::params::parse_query(uri.query().unwrap_or(""));
    let next = pairs
        .iter()
        .find(|(k, _)| k == "next")
        .map_or("/", |(_, v)| local_path(v));
    html_response(StatusCode::OK, kubetrail_ui::login_page(next, None))
}

/// `POST /login` with `token` and `next`: a session for a token of role read or admin.
pub async fn login(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !same_origin(&headers) {
        return cross_origin();
    }
    let pairs = kubetrail_api::params::parse_query(&String::from_utf8_lossy(&body));
    let get = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    };
    let next = local_path(get("next")).to_string();
    let refuse = |status: StatusCode, why: &str| {
        html_response(status, kubetrail_ui::login_page(&next, Some(why)))
    };
    let Some(principal) = state.auth.token(get("token").trim()) else {
        state.metrics.auth_failure("unauthenticated");
        return refuse(StatusCode::UNAUTHORIZED, "Unknown token.");
    };
    if !principal.role.allows(Role::Read) {
        state.metrics.auth_failure("forbidden");
        return refuse(
            StatusCode::FORBIDDEN,
            &format!(
                "The token {} has role {}; the web UI needs read or admin.",
                principal.name,
                principal.role.as_str()
            ),
        );
    }
    let id = match state.sessions.create(principal) {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(error = %e, "no randomness for a session id");
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Could not start a session.",
            );
        }
    };
    let secure = if state.ui.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        SESSION_TTL.as_secs()
    );
    let mut r = redirect(&next);
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `POST /logout`: ends the session.
pub async fn logout(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !same_origin(&headers) {
        return cross_origin();
    }
    if let Some(id) = session_id(&headers) {
        state.sessions.remove(id);
    }
    let secure = if state.ui.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let mut r = redirect("/login");
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

/// `GET /assets/style.css`.
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", kubetrail_ui::STYLE_CSS)
}

/// `GET /assets/icon.svg`.
pub async fn icon() -> Response {
    asset("image/svg+xml", kubetrail_ui::ICON_SVG)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Method;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(local_path("/search?user=a"), "/search?user=a");
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "\\\\evil",
            "/\\evil",
            "",
            "search",
        ] {
            assert_eq!(local_path(bad), "/", "{bad}");
        }
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; kubetrail_session=abc123; x=y"),
        );
        assert_eq!(session_id(&h), Some("abc123"));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("kubetrail_sessionx=1"),
        );
        assert_eq!(session_id(&h), None);
    }

    #[test]
    fn cross_origin_forms_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h));
        // Behind a proxy that rewrites Host, the browser's own word counts.
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://audit.example.com"),
        );
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(same_origin(&h));
    }

    #[test]
    fn sessions_expire_and_end() {
        let s = Sessions::default();
        let p = Principal {
            name: "ui".into(),
            role: Role::Read,
            cluster: None,
            method: Method::Token,
        };
        let id = s.create(p).unwrap();
        assert_eq!(id.len(), 64);
        assert_eq!(s.get(&id).map(|p| p.name), Some("ui".into()));
        assert!(s.get("nope").is_none());
        s.remove(&id);
        assert!(s.get(&id).is_none());
    }
}
