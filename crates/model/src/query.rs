//! A request URI's query as the apiserver reads it: Go's `url.ParseQuery`, which
//! `URL.Query()` calls and whose errors the apiserver ignores. What the apiserver never saw
//! (a pair with a `;`, a bad `%` escape) is not shown as if it had.

/// The query's pairs in order: split on `&`, then at the first `=`; `+` is a space and `%XX`
/// a byte; an empty pair, a pair holding `;` and a pair with a bad escape are skipped. Bytes
/// that are not UTF-8 are shown as U+FFFD.
pub fn parse_query(raw: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for pair in raw.split('&') {
        if pair.is_empty() || pair.contains(';') {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if let (Some(k), Some(v)) = (query_unescape(k), query_unescape(v)) {
            out.push((k, v));
        }
    }
    out
}

/// Go's `QueryUnescape`; `None` for a `%` not followed by two hex digits.
fn query_unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut bytes = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                    return None;
                }
                bytes.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                bytes.push(b' ');
                i += 1;
            }
            c => {
                bytes.push(c);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_the_apiserver_never_saw_are_skipped() {
        assert_eq!(
            parse_query("a=1&&b=x+y&c=%41&d;e=2&f=%zz&g=%+f&h"),
            [
                ("a".to_string(), "1".to_string()),
                ("b".into(), "x y".into()),
                ("c".into(), "A".into()),
                ("h".into(), String::new()),
            ]
        );
    }
}
