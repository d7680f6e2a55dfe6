//! Convert: rewrite a policy file for another `audit.k8s.io` version. The three versions share
//! every Policy field, so only `apiVersion` changes; the edit is made in the text itself, so
//! comments, key order, quoting and layout stay as they were.

use kubetrail_model::ApiVersion;

use crate::field::FieldError;
use crate::load::{LoadOptions, load_str};
use crate::yaml::{self, NodeValue};

/// Why a policy cannot be converted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConvertError {
    /// The file is not a YAML/JSON mapping with an `apiVersion` string.
    #[error("cannot convert: {0}")]
    Shape(String),
    /// The converted policy would not load.
    #[error("the converted policy would not load: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
}

/// Returns `text` with its `apiVersion` set to `target`. Fails when the result would not load
/// in a release that accepts `target`.
pub fn convert(text: &str, target: ApiVersion) -> Result<String, ConvertError> {
    let root = yaml::parse(text)
        .map_err(|e| ConvertError::Shape(e.to_string()))?
        .ok_or_else(|| ConvertError::Shape("the file is empty".into()))?;
    let node = root
        .get("apiVersion")
        .ok_or_else(|| ConvertError::Shape("the policy has no apiVersion".into()))?;
    let NodeValue::Scalar(serde_json::Value::String(current)) = &node.value else {
        return Err(ConvertError::Shape("apiVersion is not a string".into()));
    };
    let (start, end) = scalar_span(text, node.offset, current, node.quoted)
        .ok_or_else(|| ConvertError::Shape("cannot locate apiVersion in the text".into()))?;
    let replacement = if node.quoted {
        let quote = &text[start..start + 1];
        format!("{quote}{}{quote}", target.as_str())
    } else {
        target.as_str().to_string()
    };
    let converted = format!("{}{}{}", &text[..start], replacement, &text[end..]);

    let check = load_str(&converted, LoadOptions::default());
    if !check.errors.is_empty() {
        return Err(ConvertError::Invalid(check.errors));
    }
    Ok(converted)
}

/// The byte span of a scalar starting at `offset`: a plain scalar is its text; a quoted one
/// runs to its closing quote.
fn scalar_span(text: &str, offset: usize, value: &str, quoted: bool) -> Option<(usize, usize)> {
    let rest = text.get(offset..)?;
    if !quoted {
        return rest
            .starts_with(value)
            .then_some((offset, offset + value.len()));
    }
    let quote = rest.chars().next()?;
    let mut escaped = false;
    for (i, c) in rest.char_indices().skip(1) {
        if quote == '"' && escaped {
            escaped = false;
        } else if quote == '"' && c == '\\' {
            escaped = true;
        } else if c == quote {
            if quote == '\'' && rest[i + 1..].starts_with('\'') {
                continue;
            }
            return Some((offset, offset + i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_comments_and_quoting() {
        let text = "# top\napiVersion: \"audit.k8s.io/v1beta1\" # why\nkind: Policy\nrules:\n  - level: Metadata # all\n";
        let out = convert(text, ApiVersion::V1).unwrap();
        assert_eq!(
            out,
            "# top\napiVersion: \"audit.k8s.io/v1\" # why\nkind: Policy\nrules:\n  - level: Metadata # all\n"
        );
        let json =
            r#"{"kind":"Policy","apiVersion":"audit.k8s.io/v1alpha1","rules":[{"level":"None"}]}"#;
        assert_eq!(
            convert(json, ApiVersion::V1).unwrap(),
            r#"{"kind":"Policy","apiVersion":"audit.k8s.io/v1","rules":[{"level":"None"}]}"#
        );
    }

    #[test]
    fn refuses_what_would_not_load() {
        let err = convert(
            "apiVersion: audit.k8s.io/v1beta1\nkind: Policy\n",
            ApiVersion::V1,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("loaded illegal policy with 0 rules"),
            "{err}"
        );
        assert!(matches!(
            convert("kind: Policy\n", ApiVersion::V1),
            Err(ConvertError::Shape(_))
        ));
    }
}
