//! Nesting depth: the one bound on how deeply an event's JSON may nest arrays and objects
//! ([`MAX_DEPTH`]), checked once, when an event is decoded, so that nothing accepted can fail
//! later when it is encoded, parsed again or rendered by a parser with the common limit of 128
//! levels (serde_json's, for one).
//!
//! The fields decoded into values are bounded by the parser already (at 128 levels) and are
//! walked here; the bodies (`requestObject`, `responseObject`), kept as text, are not bounded
//! by the parser at all, so their text is scanned: its brackets counted, and only when there
//! are enough of them to be too deep, its depth. This module decides nothing else about events.

use serde_json::{Map, Value};

use crate::{Error, Event, Result};

/// The deepest nesting of arrays and objects an event may have, counting the event object
/// itself as level 1 (`{"requestObject":{"a":[1]}}` is 3 levels deep). A deeper event is
/// refused when it is decoded, with an error naming its field.
///
/// The margin under serde_json's recursion limit (128) leaves room for the envelopes an event
/// travels in: an `EventList` puts its items 2 levels down, an API answer a few more.
pub const MAX_DEPTH: usize = 100;

/// Refuses an event deeper than [`MAX_DEPTH`], naming the first field found too deep.
pub(crate) fn check(e: &Event) -> Result<()> {
    // Levels left below the event object, and below an object held in one of its fields.
    let top = MAX_DEPTH - 1;
    let nested = MAX_DEPTH - 2;
    for (field, body) in [
        ("requestObject", &e.request_object),
        ("responseObject", &e.response_object),
    ] {
        if let Some(body) = body
            && text_deeper_than(body.get().as_bytes(), top)
        {
            return Err(too_deep(field));
        }
    }
    if let Some(v) = &e.authentication_metadata
        && value_deeper_than(v, top)
    {
        return Err(too_deep("authenticationMetadata"));
    }
    check_map("", &e.unknown, top)?;
    for (field, user) in [
        ("user", &e.user),
        ("impersonatedUser", &e.impersonated_user),
    ] {
        if let Some(user) = user {
            check_map(field, &user.unknown, nested)?;
        }
    }
    if let Some(object_ref) = &e.object_ref {
        check_map("objectRef", &object_ref.unknown, nested)?;
    }
    if let Some(status) = &e.response_status {
        for (field, v) in [
            ("responseStatus.metadata", &status.metadata),
            ("responseStatus.details", &status.details),
        ] {
            if let Some(v) = v
                && value_deeper_than(v, nested)
            {
                return Err(too_deep(field));
            }
        }
        check_map("responseStatus", &status.unknown, nested)?;
    }
    Ok(())
}

/// The reason given for an event that nests too deeply; `field` is where.
pub(crate) fn too_deep(field: impl Into<String>) -> Error {
    Error::field(
        field,
        format!("JSON nested deeper than {MAX_DEPTH} levels (the event object is level 1)"),
    )
}

fn check_map(prefix: &str, map: &Map<String, Value>, budget: usize) -> Result<()> {
    match map.iter().find(|(_, v)| value_deeper_than(v, budget)) {
        Some((key, _)) if prefix.is_empty() => Err(too_deep(key.as_str())),
        Some((key, _)) => Err(too_deep(format!("{prefix}.{key}"))),
        None => Ok(()),
    }
}

/// Whether `v` nests arrays and objects more than `budget` levels deep (a scalar is 0 deep,
/// `[]` 1). Values come from the parser, so the recursion is bounded by its limit.
fn value_deeper_than(v: &Value, budget: usize) -> bool {
    match v {
        Value::Array(items) => {
            budget == 0 || items.iter().any(|v| value_deeper_than(v, budget - 1))
        }
        Value::Object(map) => budget == 0 || map.values().any(|v| value_deeper_than(v, budget - 1)),
        _ => false,
    }
}

/// Whether the JSON text `json` (valid, as the parser kept it) nests arrays and objects more
/// than `budget` levels deep: brackets are counted outside strings. It stops at the first
/// level too many; text with no more brackets than `budget` (most bodies) is only counted.
pub(crate) fn text_deeper_than(json: &[u8], budget: usize) -> bool {
    // Depth cannot exceed the number of opening brackets, strings included. This count is the
    // cheap part; the exact scan below runs only for bracket-heavy bodies.
    if opening_brackets(json) <= budget {
        return false;
    }
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = json.get(i) {
        i += 1;
        match b {
            b'"' => i = string_end(json, i),
            b'[' | b'{' => {
                depth += 1;
                if depth > budget {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// How many bytes of `json` are `[` or `{` (the two differ in one bit), counted in runs short
/// enough for a byte counter, which the compiler turns into vector code.
fn opening_brackets(json: &[u8]) -> usize {
    json.chunks(255)
        .map(|run| {
            let mut n = 0u8;
            for &b in run {
                n += u8::from((b | 0x20) == b'{');
            }
            usize::from(n)
        })
        .sum()
}

/// The index just past the quote that closes the string whose contents start at `i`.
fn string_end(json: &[u8], mut i: usize) -> usize {
    loop {
        i += quote_or_backslash(json.get(i..).unwrap_or_default());
        match json.get(i) {
            Some(b'\\') => i += 2,
            Some(_) => return i + 1,
            None => return json.len(),
        }
    }
}

/// The index of the first `"` or `\` in `s` (`s.len()` if none), eight bytes at a time.
fn quote_or_backslash(s: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // Bytes of `w` equal to `b` get their high bit set; the lowest set bit is exact (higher
    // ones may be false, after a borrow), which is all `trailing_zeros` looks at.
    let matching = |w: u64, b: u8| {
        let x = w ^ (ONES * u64::from(b));
        x.wrapping_sub(ONES) & !x & HIGHS
    };
    let mut chunks = s.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let hits = matching(w, b'"') | matching(w, b'\\');
        if hits != 0 {
            return at + (hits.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    at + chunks
        .remainder()
        .iter()
        .position(|&b| b == b'"' || b == b'\\')
        .unwrap_or(chunks.remainder().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        format!("{}{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn text_depth_counts_brackets_outside_strings_only() {
        assert!(!text_deeper_than(b"1", 0));
        assert!(text_deeper_than(b"[]", 0));
        assert!(!text_deeper_than(b"[]", 1));
        assert!(!text_deeper_than(nested(99).as_bytes(), 99));
        assert!(text_deeper_than(nested(100).as_bytes(), 99));
        let in_strings = format!(r#"["{}","\"{}"]"#, "[".repeat(300), "{".repeat(300));
        assert!(!text_deeper_than(in_strings.as_bytes(), 1));
        assert!(text_deeper_than(in_strings.as_bytes(), 0));
        // An escaped backslash ends before the quote that closes the string.
        let after_escape = format!(r#"["\\",{}]"#, nested(150));
        assert!(text_deeper_than(after_escape.as_bytes(), 100));
        // Siblings do not add up.
        let wide = format!("[{}]", vec![nested(50); 20].join(","));
        assert!(!text_deeper_than(wide.as_bytes(), 51));
        assert!(text_deeper_than(wide.as_bytes(), 50));
    }

    /// The scan, one byte at a time, as the reference.
    fn reference_depth(json: &[u8]) -> usize {
        let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0, false, false);
        for &b in json {
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    max = max.max(depth);
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        max
    }

    proptest::proptest! {
        #[test]
        fn the_fast_scan_agrees_with_the_reference(
            text in proptest::collection::vec(
                proptest::sample::select(b"[]{}\"\\ax\xc3\xa9".to_vec()),
                0..400,
            ),
            budget in 0usize..40,
        ) {
            let deeper = reference_depth(&text) > budget;
            proptest::prop_assert_eq!(text_deeper_than(&text, budget), deeper);
        }
    }

    #[test]
    fn opening_brackets_are_counted_past_the_counter_runs() {
        let text = "[{]}x".repeat(1000);
        assert_eq!(opening_brackets(text.as_bytes()), 2000);
        assert_eq!(opening_brackets(&[b'{'; 255]), 255);
        assert_eq!(opening_brackets(b"[{;\x5b\x7b\xdb\xfb"), 4);
    }

    #[test]
    fn quotes_and_backslashes_are_found_across_words() {
        for len in 0..40 {
            for at in 0..len {
                for b in [b'"', b'\\'] {
                    let mut s = vec![b'a'; len];
                    s[at] = b;
                    if at + 1 < len {
                        s[at + 1] = b'"';
                    }
                    assert_eq!(quote_or_backslash(&s), at, "{len} {at}");
                }
            }
            assert_eq!(quote_or_backslash(&vec![0xff; len]), len);
        }
    }

    #[test]
    fn value_depth_counts_levels() {
        let v: Value = serde_json::from_str(&nested(100)).unwrap();
        assert!(!value_deeper_than(&v, 100));
        assert!(value_deeper_than(&v, 99));
        assert!(!value_deeper_than(&Value::Null, 0));
        let v: Value = serde_json::from_str(r#"{"a":[{"b":1}],"c":2}"#).unwrap();
        assert!(!value_deeper_than(&v, 3));
        assert!(value_deeper_than(&v, 2));
    }
}
