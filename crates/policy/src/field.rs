//! Field errors in kube-apiserver's shape (`k8s.io/apimachinery/pkg/util/validation/field`):
//! a field path, an error type, the bad value and a detail, printed the way the apiserver
//! prints them (`rules[0].level: Unsupported value: "Loud": supported values: ...`).

use std::fmt;

use serde::Serialize;
use serde_json::Value;

/// The error types validation and loading use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ErrorType {
    /// `field.Invalid`: the value is malformed.
    Invalid,
    /// `field.Required`: the value is missing.
    Required,
    /// `field.NotSupported`: the value is not one of the allowed ones.
    NotSupported,
    /// The document could not be decoded at all (syntax, wrong types).
    Decode,
}

impl ErrorType {
    /// The phrase kube-apiserver prints for this type.
    pub fn phrase(self) -> &'static str {
        match self {
            ErrorType::Invalid => "Invalid value",
            ErrorType::Required => "Required value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Decode => "failed decoding",
        }
    }
}

/// One reason a policy would not load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    /// Field path as kube-apiserver names it, e.g. `rules[0].nonResourceURLs[0]`.
    pub field: String,
    /// The error type.
    #[serde(rename = "type")]
    pub error_type: ErrorType,
    /// Explanation.
    pub detail: String,
    /// The offending value, when there is one.
    #[serde(skip)]
    pub bad_value: Option<Value>,
    /// Path used to find the line: like `field`, but with indexes upstream leaves out
    /// (`rules[1].resources[2].group` for the field `rules[1].resources.group`).
    #[serde(skip)]
    pub locate: String,
    /// 1-based line in the policy file, once known (text output only: the JSON contract is
    /// `{field, type, detail}`).
    #[serde(skip)]
    pub line: Option<usize>,
    /// The allowed value the bad one is probably a misspelling of (text output only).
    #[serde(skip)]
    pub hint: Option<String>,
}

impl FieldError {
    fn new(field: &str, error_type: ErrorType, bad_value: Option<Value>, detail: String) -> Self {
        FieldError {
            field: field.to_string(),
            error_type,
            detail,
            bad_value,
            locate: field.to_string(),
            line: None,
            hint: None,
        }
    }

    /// `field.Invalid(path, value, detail)`.
    pub fn invalid(field: &str, value: impl Into<Value>, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorType::Invalid, Some(value.into()), detail.into())
    }

    /// `field.Required(path, detail)`.
    pub fn required(field: &str, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorType::Required, None, detail.into())
    }

    /// `field.NotSupported(path, value, valid)`: the detail lists the quoted valid values.
    /// A close valid value becomes the hint.
    pub fn not_supported(field: &str, value: impl Into<Value>, valid: &[&str]) -> Self {
        let quoted: Vec<String> = valid.iter().map(|v| format!("{v:?}")).collect();
        let detail = format!("supported values: {}", quoted.join(", "));
        let value = value.into();
        let hint = value.as_str().and_then(|v| closest(v, valid));
        let mut e = Self::new(field, ErrorType::NotSupported, Some(value), detail);
        e.hint = hint.map(str::to_string);
        e
    }

    /// Names the value the bad one was probably meant to be.
    pub fn with_hint(mut self, hint: Option<&str>) -> Self {
        self.hint = hint.map(str::to_string);
        self
    }

    /// A document that cannot be decoded.
    pub fn decode(field: &str, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorType::Decode, None, detail.into())
    }

    /// Sets the path used to find the line.
    pub fn located_at(mut self, locate: impl Into<String>) -> Self {
        self.locate = locate.into();
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.error_type == ErrorType::Decode {
            if self.field.is_empty() {
                return write!(f, "failed decoding: {}", self.detail);
            }
            return write!(f, "failed decoding: {}: {}", self.field, self.detail);
        }
        write!(f, "{}: {}", self.field, self.error_type.phrase())?;
        match &self.bad_value {
            Some(Value::String(s)) => write!(f, ": {s:?}")?,
            Some(v) => write!(f, ": {v}")?,
            None => {}
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        if let Some(hint) = &self.hint {
            write!(f, " (did you mean {hint:?}?)")?;
        }
        Ok(())
    }
}

/// The one of `choices` that `word` is probably a misspelling of: the same but for case, or
/// at most two edits away (and nearer than its own length).
pub fn closest<'a>(word: &str, choices: &[&'a str]) -> Option<&'a str> {
    if let Some(c) = choices.iter().find(|c| c.eq_ignore_ascii_case(word)) {
        return Some(c);
    }
    choices
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2 && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_the_apiserver() {
        let e = FieldError::invalid(
            "rules[0].nonResourceURLs[0]",
            "healthz",
            "non-resource URL rules must begin with a '/' character",
        );
        assert_eq!(
            e.to_string(),
            "rules[0].nonResourceURLs[0]: Invalid value: \"healthz\": non-resource URL rules must begin with a '/' character"
        );
        let e = FieldError::not_supported("rules[1].level", "Loud", &["None", "Metadata"]);
        assert_eq!(
            e.to_string(),
            "rules[1].level: Unsupported value: \"Loud\": supported values: \"None\", \"Metadata\""
        );
        assert_eq!(
            FieldError::required("rules[2].level", "").to_string(),
            "rules[2].level: Required value"
        );
        let e = FieldError::invalid("rules[0].resources.resourceNames", vec!["x"], "d");
        assert_eq!(
            e.to_string(),
            "rules[0].resources.resourceNames: Invalid value: [\"x\"]: d"
        );
    }
}
