//! Paths into an object whose values are redacted: JSON Pointers (RFC 6901) where a `*`
//! segment stands for every key or index, and the configuration that names them per
//! group/resource ([`ExtraPaths`]).

use serde::{Deserialize, Serialize};

/// Extra paths to redact in the request and response objects of one resource (custom
/// resources that hold credentials, for example).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtraPaths {
    /// API group; `""` for the core group.
    #[serde(default)]
    pub group: String,
    /// Resource, plural and lower case (`widgets`).
    pub resource: String,
    /// JSON Pointers into the object (`/spec/password`, `/spec/credentials/*/value`); every
    /// string, number and boolean at or under each is replaced by a marker.
    pub paths: Vec<String>,
}

/// A path that is not a JSON Pointer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("redaction path {path:?} for {resource}: {reason}")]
pub struct PathError {
    /// The resource it was given for.
    pub resource: String,
    /// The path.
    pub path: String,
    /// What is wrong.
    pub reason: &'static str,
}

/// One segment of a compiled path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Any,
}

/// A compiled path: its segments, and whether the values it reaches are base64 (a Secret's
/// `data`), so that a marker hashes the bytes they stand for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pointer {
    pub(crate) segments: Vec<Segment>,
    pub(crate) base64: bool,
}

impl Pointer {
    pub(crate) fn new(path: &str, base64: bool) -> Result<Pointer, &'static str> {
        let segments = kubetrail_diff::tokens(path)
            .ok_or("not a JSON Pointer: it starts with /, and ~ is only ~0 or ~1")?
            .into_iter()
            .map(|s| {
                if s == "*" {
                    Segment::Any
                } else {
                    Segment::Key(s)
                }
            })
            .collect();
        Ok(Pointer { segments, base64 })
    }

    /// Whether `segment` (of a concrete path) is matched by this pointer's `i`th segment.
    pub(crate) fn matches_at(&self, i: usize, segment: &str) -> bool {
        match &self.segments[i] {
            Segment::Any => true,
            Segment::Key(k) => k == segment,
        }
    }
}

/// The configured paths, compiled and looked up by (group, resource).
#[derive(Debug, Clone, Default)]
pub(crate) struct ExtraTable {
    entries: Vec<(String, String, Vec<Pointer>)>,
}

impl ExtraTable {
    pub(crate) fn new(extra: &[ExtraPaths]) -> Result<ExtraTable, PathError> {
        let mut entries = Vec::new();
        for e in extra {
            let name = if e.group.is_empty() {
                e.resource.clone()
            } else {
                format!("{}.{}", e.resource, e.group)
            };
            let error = |path: &str, reason| PathError {
                resource: name.clone(),
                path: path.to_string(),
                reason,
            };
            if e.resource.is_empty() {
                return Err(error("", "the resource is empty"));
            }
            let mut pointers = Vec::new();
            for p in &e.paths {
                let pointer = Pointer::new(p, false).map_err(|r| error(p, r))?;
                if pointer.segments.is_empty() {
                    return Err(error(
                        p,
                        "the whole object cannot be redacted; name its fields",
                    ));
                }
                pointers.push(pointer);
            }
            entries.push((e.group.clone(), e.resource.clone(), pointers));
        }
        Ok(ExtraTable { entries })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every pointer configured for the resource.
    pub(crate) fn for_resource(&self, group: &str, resource: &str) -> Vec<&Pointer> {
        self.entries
            .iter()
            .filter(|(g, r, _)| g == group && r == resource)
            .flat_map(|(_, _, p)| p)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_unescape_and_refuse_what_is_not_one() {
        let escaped = Pointer::new("/a~1b/c~0d/", false).unwrap();
        let keys = |p: &Pointer| -> Vec<Segment> { p.segments.clone() };
        assert_eq!(
            keys(&escaped),
            [
                Segment::Key("a/b".into()),
                Segment::Key("c~d".into()),
                Segment::Key(String::new())
            ]
        );
        assert!(Pointer::new("", false).unwrap().segments.is_empty());
        assert!(Pointer::new("spec/x", false).is_err());
        assert!(Pointer::new("/a~2", false).is_err());
        let p = Pointer::new("/spec/*/value", false).unwrap();
        assert_eq!(p.segments[1], Segment::Any);
        assert!(p.matches_at(1, "anything") && p.matches_at(0, "spec") && !p.matches_at(0, "x"));
    }

    #[test]
    fn configured_paths_are_checked_and_found_by_resource() {
        let ok = ExtraTable::new(&[ExtraPaths {
            group: "example.com".into(),
            resource: "widgets".into(),
            paths: vec!["/spec/password".into()],
        }])
        .unwrap();
        assert_eq!(ok.for_resource("example.com", "widgets").len(), 1);
        assert!(ok.for_resource("", "widgets").is_empty());
        let bad = ExtraTable::new(&[ExtraPaths {
            group: "example.com".into(),
            resource: "widgets".into(),
            paths: vec!["spec".into()],
        }])
        .unwrap_err();
        assert_eq!(
            bad.to_string(),
            "redaction path \"spec\" for widgets.example.com: not a JSON Pointer: it starts with /, and ~ is only ~0 or ~1"
        );
        let whole = ExtraTable::new(&[ExtraPaths {
            group: String::new(),
            resource: "configmaps".into(),
            paths: vec![String::new()],
        }])
        .unwrap_err();
        assert!(whole.reason.contains("whole object"));
    }
}
