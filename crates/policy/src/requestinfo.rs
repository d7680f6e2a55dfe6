//! RequestInfo: an HTTP method and URL resolved into the attributes policy rules match on,
//! exactly as kube-apiserver's `RequestInfoFactory` (`pkg/endpoints/request/requestinfo.go`)
//! does with API prefixes `api` and `apis` (groupless: `api`).

use percent_encoding::percent_decode_str;

use crate::selector::required_exact_match;

/// The resolved request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestInfo {
    /// Resource request (under `/api` or `/apis`) or not.
    pub is_resource_request: bool,
    /// URL path, percent-decoded, without the query.
    pub path: String,
    /// Kubernetes verb; the lower-case method for non-resource requests.
    pub verb: String,
    /// `api` or `apis` for resource requests.
    pub api_prefix: String,
    /// API group.
    pub api_group: String,
    /// API version.
    pub api_version: String,
    /// Namespace.
    pub namespace: String,
    /// Resource.
    pub resource: String,
    /// Subresource.
    pub subresource: String,
    /// Object name.
    pub name: String,
    /// Path parts from the resource on: resource/name/subresource/...
    pub parts: Vec<String>,
    /// The first `fieldSelector` of list, watch and deletecollection requests.
    pub field_selector: Option<String>,
    /// The first `labelSelector` of list, watch and deletecollection requests.
    pub label_selector: Option<String>,
}

/// Why a URL cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestInfoError {
    /// Upstream's error for `/api/v1/watch` and `/api/v1/proxy` with nothing after them
    /// (the apiserver answers 500).
    #[error("unable to determine kind and namespace from url, {0}")]
    KindAndNamespace(String),
    /// The URL does not parse (Go's `url.Parse` would reject it, so the request never reaches
    /// the apiserver's handlers).
    #[error("invalid URL {url:?}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

/// Resolves `method` and `url` (`/path?query`, or an absolute `https://host/path?query`).
/// The method is used as given: HTTP methods are case-sensitive.
pub fn resolve(method: &str, url: &str) -> Result<RequestInfo, RequestInfoError> {
    let (raw_path, raw_query) = split_url(url);
    check_escapes(raw_path, url)?;
    let path = percent_decode_str(raw_path)
        .decode_utf8()
        .map_err(|e| RequestInfoError::Url {
            url: url.to_string(),
            reason: e.to_string(),
        })?
        .into_owned();
    let query = kubetrail_model::parse_query(raw_query);

    let mut info = RequestInfo {
        path: path.clone(),
        verb: method.to_lowercase(),
        ..RequestInfo::default()
    };

    let trimmed = path.trim_matches('/');
    let mut parts: Vec<&str> = if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    };
    if parts.len() < 3 || !matches!(parts[0], "api" | "apis") {
        return Ok(info);
    }
    info.api_prefix = parts[0].to_string();
    parts.remove(0);
    if info.api_prefix != "api" {
        if parts.len() < 3 {
            return Ok(info);
        }
        info.api_group = parts.remove(0).to_string();
    }
    info.is_resource_request = true;
    info.api_version = parts.remove(0).to_string();

    let mut verb_via_path = false;
    if matches!(parts[0], "watch" | "proxy") {
        if parts.len() < 2 {
            return Err(RequestInfoError::KindAndNamespace(url.to_string()));
        }
        info.verb = parts.remove(0).to_string();
        verb_via_path = true;
    } else {
        info.verb = match method {
            "POST" => "create",
            "GET" | "HEAD" => "get",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => "",
        }
        .to_string();
    }

    if parts[0] == "namespaces" && parts.len() > 1 {
        info.namespace = parts[1].to_string();
        if parts.len() > 2 && !matches!(parts[2], "status" | "finalize") {
            parts.drain(..2);
        }
    }
    info.parts = parts.iter().map(|p| p.to_string()).collect();
    if parts.len() >= 3 && info.verb != "proxy" {
        info.subresource = parts[2].to_string();
    }
    if parts.len() >= 2 {
        info.name = parts[1].to_string();
    }
    if !parts.is_empty() {
        info.resource = parts[0].to_string();
    }

    if info.name.is_empty() && info.verb == "get" {
        let (watch, name) = list_options(&query);
        info.verb = if watch { "watch" } else { "list" }.to_string();
        if let Some(name) = name.filter(|n| is_valid_path_segment_name(n)) {
            info.name = name;
        }
    }
    if info.name.is_empty() && info.verb == "delete" {
        info.verb = "deletecollection".to_string();
    }
    if !verb_via_path && matches!(info.verb.as_str(), "list" | "watch" | "deletecollection") {
        info.field_selector = first(&query, "fieldSelector").map(str::to_string);
        info.label_selector = first(&query, "labelSelector").map(str::to_string);
    }
    Ok(info)
}

/// What decoding the query into `ListOptions` yields for RequestInfo: whether it is a watch and
/// the exact `metadata.name` from the field selector. When any parameter fails to decode, the
/// options are reset: no name, and `watch` read from its raw value.
fn list_options(query: &[(String, String)]) -> (bool, Option<String>) {
    let watch = first(query, "watch").is_some_and(|v| v != "0" && !v.eq_ignore_ascii_case("false"));
    let ints_ok = ["limit", "timeoutSeconds"]
        .iter()
        .all(|k| first(query, k).is_none_or(|v| v.parse::<i64>().is_ok()));
    if !ints_ok {
        return (watch, None);
    }
    // labelSelector syntax errors would also reset the options; they are not checked here.
    match first(query, "fieldSelector").map(|s| required_exact_match(s, "metadata.name")) {
        None => (watch, None),
        Some(Ok(name)) => (watch, name),
        Some(Err(_)) => (watch, None),
    }
}

/// `path.IsValidPathSegmentName`: not `.` or `..`, no `/` or `%`.
fn is_valid_path_segment_name(name: &str) -> bool {
    name != "." && name != ".." && !name.contains(['/', '%'])
}

fn first<'q>(query: &'q [(String, String)], key: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Splits off scheme and host, the query and the fragment.
fn split_url(url: &str) -> (&str, &str) {
    let mut rest = url;
    if let Some(i) = rest.find("://") {
        let after = &rest[i + 3..];
        rest = after.find('/').map_or("/", |j| &after[j..]);
    }
    let rest = rest.split('#').next().unwrap_or("");
    match rest.split_once('?') {
        Some((p, q)) => (p, q),
        None => (rest, ""),
    }
}

/// Go's `url.Parse` rejects a `%` not followed by two hex digits.
fn check_escapes(raw: &str, url: &str) -> Result<(), RequestInfoError> {
    let b = raw.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'%'
            && !(i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit())
        {
            // Up to three characters, not bytes: what follows `%` may be any UTF-8.
            let escape: String = raw[i..].chars().take(3).collect();
            return Err(RequestInfoError::Url {
                url: url.to_string(),
                reason: format!("invalid URL escape {escape:?}"),
            });
        }
    }
    Ok(())
}
