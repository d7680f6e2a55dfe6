//! What kube-apiserver decides about a request from its verb and subresource alone.

/// Whether kube-apiserver treats the request as long-running (and so emits ResponseStarted):
/// verb `watch` or `proxy`, or a subresource `attach`, `exec`, `proxy`, `log` or `portforward`
/// (`BasicLongRunningRequestCheck` with the sets the apiserver's server config passes).
pub fn is_long_running(verb: &str, subresource: &str) -> bool {
    matches!(verb, "watch" | "proxy")
        || matches!(
            subresource,
            "attach" | "exec" | "proxy" | "log" | "portforward"
        )
}

/// Verbs the apiserver records: Kubernetes verbs, and lower-case HTTP methods for non-resource
/// requests.
pub const KNOWN_VERBS: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "proxy",
    "post",
    "put",
    "head",
    "options",
    "connect",
    "trace",
];

/// Whether `s` can be a recorded verb: the apiserver records a non-resource request's HTTP
/// method lower-cased, and a method is any HTTP token (RFC 9110 `tchar`s), so `propfind` is
/// as real as `get`. Upper case never is.
pub fn is_verb_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_lower_case_method_is_a_verb_token() {
        for v in KNOWN_VERBS.iter().copied().chain(["propfind", "m-search"]) {
            assert!(is_verb_token(v), "{v}");
        }
        for v in ["", "GET", "Get", "two words", "get;", "gét"] {
            assert!(!is_verb_token(v), "{v:?}");
        }
    }

    #[test]
    fn watches_proxies_and_streams_are_long_running() {
        assert!(is_long_running("watch", ""));
        assert!(is_long_running("get", "log"));
        assert!(is_long_running("create", "exec"));
        assert!(!is_long_running("get", "status"));
        assert!(!is_long_running("list", ""));
    }
}
