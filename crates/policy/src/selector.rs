//! Just enough of `k8s.io/apimachinery/pkg/fields` to do what RequestInfo does with a list's
//! `fieldSelector`: parse it and read a required exact `metadata.name`.

/// Why a field selector does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A term without an operator.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    Term {
        /// The whole selector.
        selector: String,
        /// The term.
        term: String,
    },
    /// A backslash not followed by `\`, `,` or `=`.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    Escape(String),
    /// An unescaped `,` or `=` in a value.
    #[error("invalid field selector: unescaped character in value: {0}")]
    Unescaped(char),
}

/// `fields.ParseSelector(s).RequiresExactMatch(field)`: the value of the first (in sorted term
/// order) `field=value` or `field==value` term.
pub fn required_exact_match(selector: &str, field: &str) -> Result<Option<String>, SelectorError> {
    let mut terms = split_terms(selector);
    terms.sort_unstable();
    let mut found = None;
    for term in terms.into_iter().filter(|t| !t.is_empty()) {
        let (lhs, op, rhs) = split_term(term).ok_or_else(|| SelectorError::Term {
            selector: selector.to_string(),
            term: term.to_string(),
        })?;
        let value = unescape_value(rhs)?;
        if found.is_none() && op != "!=" && lhs == field {
            found = Some(value);
        }
    }
    Ok(found)
}

/// Splits on commas that are not escaped with a backslash.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in selector.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// The first occurrence of `!=`, `==` or `=` (tried in that order at each position).
fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for (i, _) in term.char_indices() {
        for op in ["!=", "==", "="] {
            if term[i..].starts_with(op) {
                return Some((&term[..i], op, &term[i + op.len()..]));
            }
        }
    }
    None
}

fn unescape_value(s: &str) -> Result<String, SelectorError> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut slash = false;
    for c in s.chars() {
        if slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                _ => return Err(SelectorError::Escape(format!("\\{c}"))),
            }
            slash = false;
            continue;
        }
        match c {
            '\\' => slash = true,
            ',' | '=' => return Err(SelectorError::Unescaped(c)),
            _ => out.push(c),
        }
    }
    if slash {
        return Err(SelectorError::Escape("\\".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_name_matches() {
        let m = |s| required_exact_match(s, "metadata.name");
        assert_eq!(m("metadata.name=foo"), Ok(Some("foo".into())));
        assert_eq!(m("metadata.name==foo"), Ok(Some("foo".into())));
        assert_eq!(m("metadata.name!=foo"), Ok(None));
        assert_eq!(m("spec.nodeName=n1,metadata.name=x"), Ok(Some("x".into())));
        assert_eq!(m("metadata.name=b,metadata.name=a"), Ok(Some("a".into())));
        assert_eq!(m("metadata.name=a\\,b"), Ok(Some("a,b".into())));
        assert_eq!(m(""), Ok(None));
        assert_eq!(m("metadata.namespace=x"), Ok(None));
        assert_eq!(
            m("metadata.name=a,foo").unwrap_err().to_string(),
            "invalid selector: 'metadata.name=a,foo'; can't understand 'foo'"
        );
        assert!(matches!(
            m("metadata.name=a\\x"),
            Err(SelectorError::Escape(_))
        ));
        assert!(matches!(
            m("metadata.name=a=b"),
            Err(SelectorError::Unescaped('='))
        ));
    }
}
