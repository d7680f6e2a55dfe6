//! `*` patterns: a star matches any run of characters (none included); every other character
//! stands for itself, `?` and `[` too, so request URIs can be patterns as written.

/// Whether `text` matches `pattern`.
pub fn glob(text: &str, pattern: &str) -> bool {
    let Some((head, rest)) = pattern.split_once('*') else {
        return text == pattern;
    };
    let Some(mut text) = text.strip_prefix(head) else {
        return false;
    };
    let mut parts: Vec<&str> = rest.split('*').collect();
    let tail = parts.pop().unwrap_or("");
    for part in parts {
        match text.find(part) {
            Some(at) => text = &text[at + part.len()..],
            None => return false,
        }
    }
    text.len() >= tail.len() && text.ends_with(tail)
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn stars_match_runs_and_the_rest_is_literal() {
        assert!(glob("system:node:n1", "system:node:*"));
        assert!(!glob("system:nodes", "system:node:*"));
        assert!(glob("gke.gcr.io/x/y", "gke.gcr.io/*"));
        assert!(glob("abc", "*"));
        assert!(glob("", "*"));
        assert!(glob(
            "system:serviceaccount:ns:my-operator",
            "system:serviceaccount:*:*-operator"
        ));
        assert!(!glob(
            "system:serviceaccount:ns:my-operator-x",
            "system:serviceaccount:*:*-operator"
        ));
        assert!(glob("/a?b=1&c", "/a?b=*&c"));
        assert!(!glob("/aXb=1&c", "/a?b=*&c"));
        // The tail may not overlap what the middle parts used.
        assert!(!glob("ab", "a*b*b"));
        assert!(glob("abb", "a*b*b"));
        assert!(glob(
            "registry.crowdstrike.com/falcon-sensor/x",
            "registry.crowdstrike.com/falcon-sensor*"
        ));
    }
}
