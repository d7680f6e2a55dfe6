//! A gap: a stretch of audit log known lost between the apiserver and the store. The follower
//! records it in its checkpoint, the agent reports it, the server keeps and shows it; all three
//! hold this one type.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A stretch of audit log an agent could not deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gap {
    /// Unique per agent and gap; the server stores each id once.
    pub id: String,
    /// Cluster (filled in by the server from the agent's identity when empty).
    #[serde(default)]
    pub cluster: String,
    /// Node the agent runs on (filled in by the agent when it reports the gap).
    #[serde(default)]
    pub node: String,
    /// The file, as last seen.
    pub file: String,
    /// The file's fingerprint.
    pub fingerprint: String,
    /// First byte (of the uncompressed content) not delivered.
    pub from_offset: u64,
    /// Bytes known lost (the file's last known size minus `fromOffset`); the true loss can be
    /// larger when the file grew after it was last seen.
    pub bytes: u64,
    /// When the agent noticed (RFC 3339).
    pub detected_at: String,
    /// Why.
    pub reason: GapReason,
}

/// Why a stretch of log was lost. On the wire and in files it is its sentence (what agents
/// and servers have always exchanged), so a reason from a newer agent is kept as it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GapReason {
    /// The active file was renamed away or truncated before it was read to its end.
    RotatedAway,
    /// A rotated backup was deleted before it was read to its end.
    Deleted,
    /// A rotated backup was skipped to keep the backlog within `--max-backlog-bytes`.
    BacklogSkipped,
    /// A reason this build does not know, as it was sent.
    Other(String),
}

impl GapReason {
    const KNOWN: [(GapReason, &'static str); 3] = [
        (
            GapReason::RotatedAway,
            "rotated away or truncated before it was read to its end",
        ),
        (GapReason::Deleted, "deleted before it was read to its end"),
        (
            GapReason::BacklogSkipped,
            "skipped: the backlog was above --max-backlog-bytes",
        ),
    ];

    /// The sentence shown and sent.
    pub fn as_str(&self) -> &str {
        match self {
            GapReason::Other(text) => text,
            known => Self::KNOWN
                .iter()
                .find(|(r, _)| r == known)
                .map_or("", |(_, text)| text),
        }
    }

    /// The reason a sentence names.
    pub fn from_text(text: &str) -> GapReason {
        Self::KNOWN
            .iter()
            .find(|(_, t)| *t == text)
            .map_or_else(|| GapReason::Other(text.to_string()), |(r, _)| r.clone())
    }
}

impl fmt::Display for GapReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for GapReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for GapReason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|t| GapReason::from_text(&t))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reasons_travel_as_their_sentence() {
        for r in [
            GapReason::RotatedAway,
            GapReason::Deleted,
            GapReason::BacklogSkipped,
        ] {
            let text = serde_json::to_string(&r).unwrap();
            assert!(text.len() > 10, "{text}");
            assert_eq!(serde_json::from_str::<GapReason>(&text).unwrap(), r);
        }
        let newer: GapReason = serde_json::from_str("\"a reason from a newer agent\"").unwrap();
        assert_eq!(
            newer,
            GapReason::Other("a reason from a newer agent".into())
        );
        assert_eq!(
            serde_json::to_string(&newer).unwrap(),
            "\"a reason from a newer agent\""
        );
        assert_eq!(
            GapReason::Deleted.to_string(),
            "deleted before it was read to its end"
        );
    }
}
