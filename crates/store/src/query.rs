//! The typed query model: a [`Filter`] (AND across fields, OR within one), a [`Cursor`] for
//! newest-first paging, and [`Aggregation`]s. Every backend compiles these to its own SQL; the
//! CLI, the HTTP API and the web UI all speak them.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use kubetrail_model::Stage;
use serde::{Deserialize, Serialize};

use crate::Record;

pub use kubetrail_model::KNOWN_VERBS;

/// A half-open time range `[from, to)` in microseconds since the epoch; open ends are `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TimeRange {
    /// Inclusive start.
    pub from_micros: Option<i64>,
    /// Exclusive end.
    pub to_micros: Option<i64>,
}

/// A resource, as `pods`, `deployments.apps`, `pods/exec` or `certificates.cert-manager.io`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResourceSelector {
    /// API group; `None` matches every group, `Some("")` only the core group.
    pub group: Option<String>,
    /// Resource; `None` matches every resource of the group.
    pub resource: Option<String>,
    /// Subresource; `None` matches with or without one, `Some("")` only without.
    pub subresource: Option<String>,
}

impl FromStr for ResourceSelector {
    type Err = String;

    /// `resource[.group][/subresource]`: `pods`, `pods/exec`, `deployments.apps`,
    /// `deployments.apps/scale`. A bare resource matches it in any group, with or without a
    /// subresource; `.core` names the core group and a trailing `/` means no subresource
    /// (`pods.core/` is exactly core pods, not `pods/status`); `*` is every resource
    /// (`*.rbac.authorization.k8s.io`: every resource of that group).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (main, sub) = match s.split_once('/') {
            Some((m, sub)) => (m, Some(sub.to_string())),
            None => (s, None),
        };
        let (resource, group) = match main.split_once('.') {
            Some((r, g)) => (r, Some(g.to_string())),
            None => (main, None),
        };
        let valid = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        };
        if !(valid(resource) || resource == "*")
            || group.as_deref().is_some_and(|g| !valid(g))
            || sub.as_deref().is_some_and(|s| !s.is_empty() && !valid(s))
        {
            return Err(format!(
                "invalid resource {s:?}: expected RESOURCE[.GROUP][/SUBRESOURCE], e.g. pods, deployments.apps, pods/exec, *.rbac.authorization.k8s.io"
            ));
        }
        Ok(ResourceSelector {
            group: group.map(|g| if g == "core" { String::new() } else { g }),
            resource: (resource != "*").then(|| resource.to_string()),
            subresource: sub,
        })
    }
}

impl ResourceSelector {
    /// A selector as a person writes it: [`FromStr`]'s form, the resource in any case (kinds
    /// are written `Deployment`, and resolved to plurals by the questions that take names).
    pub fn parse_any_case(s: &str) -> Result<Self, String> {
        let end = s.find(['.', '/']).unwrap_or(s.len());
        let (resource, rest) = s.split_at(end);
        format!("{}{rest}", resource.to_ascii_lowercase()).parse()
    }

    /// Every resource of one API group.
    pub fn group(group: &str) -> Self {
        ResourceSelector {
            group: Some(group.to_string()),
            resource: None,
            subresource: None,
        }
    }

    /// A core-group resource (and optionally one subresource).
    pub fn core(resource: &str, subresource: Option<&str>) -> Self {
        ResourceSelector {
            group: Some(String::new()),
            resource: Some(resource.to_string()),
            subresource: subresource.map(str::to_string),
        }
    }
}

/// A response code condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CodeFilter {
    /// Exactly this code.
    Exact(u16),
    /// A class: 2 for 2xx, 4 for 4xx, ...
    Class(u8),
    /// Any code of 400 or more.
    Failed,
}

impl FromStr for CodeFilter {
    type Err = String;

    /// `403`, `4xx`, or `failed`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "invalid code {s:?}: expected a status code (100-599), a class (1xx-5xx) or \"failed\""
            )
        };
        if s == "failed" {
            return Ok(CodeFilter::Failed);
        }
        if let Some(class) = s.strip_suffix("xx").or_else(|| s.strip_suffix("XX")) {
            let c: u8 = class.parse().map_err(|_| bad())?;
            return if (1..=5).contains(&c) {
                Ok(CodeFilter::Class(c))
            } else {
                Err(bad())
            };
        }
        let code: u16 = s.parse().map_err(|_| bad())?;
        if (100..=599).contains(&code) {
            Ok(CodeFilter::Exact(code))
        } else {
            Err(bad())
        }
    }
}

/// The authorization decision annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// `allow`
    Allow,
    /// `forbid`
    Forbid,
}

impl Decision {
    /// The annotation value.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Forbid => "forbid",
        }
    }
}

impl FromStr for Decision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "allow" => Ok(Decision::Allow),
            "forbid" => Ok(Decision::Forbid),
            _ => Err(format!("invalid decision {s:?}: expected allow or forbid")),
        }
    }
}

/// Which stages count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum StageSelection {
    /// Every stored event.
    #[default]
    All,
    /// One event per request, for counting requests: the ResponseStarted of a long-running
    /// request or a failed authentication, otherwise the ResponseComplete or Panic, and events
    /// without a stage.
    Final,
}

/// Which events: AND across fields, OR within one; empty fields do not constrain.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Filter {
    /// Event time range.
    pub time: TimeRange,
    /// Clusters.
    pub clusters: Vec<String>,
    /// Authenticated user names (`""` for requests without a user).
    pub users: Vec<String>,
    /// Identities that acted: an event matches when its authenticated user or the user it
    /// impersonated is one of these (`--user bob` finds what `system:admin` did as bob, and
    /// what bob did himself).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<String>,
    /// Authenticated users left out: a name, or a prefix ending in `*` (`system:*` hides every
    /// system identity). Written `!system:*` where a user is asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_users: Vec<String>,
    /// Impersonated user names: requests made as them by another identity (`""` for requests
    /// that impersonated no one).
    pub impersonated_users: Vec<String>,
    /// Groups of the user.
    pub groups: Vec<String>,
    /// Verbs.
    pub verbs: Vec<String>,
    /// Resources.
    pub resources: Vec<ResourceSelector>,
    /// Namespaces (`""` for cluster-scoped requests).
    pub namespaces: Vec<String>,
    /// Object names.
    pub names: Vec<String>,
    /// auditIDs (as stored: synthetic ids for events that had none).
    pub audit_ids: Vec<String>,
    /// First source IPs, as the event records them.
    pub source_ips: Vec<String>,
    /// Response codes.
    pub codes: Vec<CodeFilter>,
    /// Authorization decision.
    pub decision: Option<Decision>,
    /// Substring of the original event JSON (case-sensitive).
    pub text: Option<String>,
    /// Which stages.
    pub stages: StageSelection,
}

impl Filter {
    /// Checks what the types cannot: verbs that can be recorded (lower-case HTTP tokens: the
    /// apiserver records any method, `propfind` included), an ordered time range. Whether an
    /// unusual verb was ever recorded is the resolver's question (`report::resolve_filter`).
    pub fn validate(&self) -> Result<(), String> {
        for v in &self.verbs {
            if !kubetrail_model::is_verb_token(v) {
                return Err(format!(
                    "invalid verb {v:?}: verbs are recorded in lower case, one word (one of {} or another HTTP method)",
                    KNOWN_VERBS.join(", ")
                ));
            }
        }
        if let (Some(from), Some(to)) = (self.time.from_micros, self.time.to_micros)
            && from >= to
        {
            return Err("the time range is empty: --from must be before --to".into());
        }
        if self.text.as_deref() == Some("") {
            return Err("empty text search".into());
        }
        for u in &self.excluded_users {
            if u.trim_end_matches('*').contains('*') {
                return Err(format!(
                    "invalid user pattern {u:?}: only a trailing * is a wildcard (system:*)"
                ));
            }
        }
        Ok(())
    }
}

/// A field events can be grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Field {
    /// Cluster.
    Cluster,
    /// User name (the authenticated identity).
    User,
    /// The user a request impersonated (`""`: none).
    ImpersonatedUser,
    /// Verb.
    Verb,
    /// `resource.group` (just `resource` for core), with `/subresource` when there is one.
    Resource,
    /// API group.
    ApiGroup,
    /// Namespace.
    Namespace,
    /// Object name.
    Name,
    /// Response code.
    Code,
    /// Authorization decision.
    Decision,
    /// Stage.
    Stage,
    /// Level.
    Level,
    /// User agent.
    UserAgent,
    /// First source IP.
    SourceIp,
}

/// What to compute over matching events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Aggregation {
    /// Count per distinct value of one or two fields, largest first; all groups, or the top
    /// `limit`. No fields: one group with the total.
    CountBy {
        /// Fields to group by (zero, one or two).
        fields: Vec<Field>,
        /// Keep only the largest groups.
        limit: Option<usize>,
    },
    /// For each field on its own, the count per distinct value (largest first), and the total:
    /// what several `CountBy`s of one field each would answer, in one pass.
    CountEach {
        /// The fields, each grouped separately.
        fields: Vec<Field>,
    },
    /// Several subsets of the matching events, each a further filter, with its total and its
    /// largest groups by some fields: what a `CountBy` per subset would answer, with each
    /// subset's total taken from the same query as its groups.
    Sections(Vec<SectionSpec>),
    /// Events per time bucket, optionally split by a field; buckets in time order.
    Histogram {
        /// Bucket width.
        bucket: Duration,
        /// Split each bucket by this field.
        by: Option<Field>,
    },
}

/// One subset of [`Aggregation::Sections`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionSpec {
    /// Conditions on top of the aggregation's filter (its time range is not used).
    pub filter: Filter,
    /// Fields of the largest groups.
    pub fields: Vec<Field>,
    /// How many of the largest groups.
    pub limit: usize,
}

/// A subset's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionCount {
    /// Events in the subset.
    pub total: u64,
    /// Its largest groups.
    pub top: Vec<GroupCount>,
}

/// One group of a `CountBy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCount {
    /// The group's values, one per field.
    pub keys: Vec<String>,
    /// Events in the group.
    pub count: u64,
}

/// One bucket of a histogram.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistogramBucket {
    /// Bucket start, microseconds since the epoch.
    pub start_micros: i64,
    /// The split field's value, when split.
    pub key: Option<String>,
    /// Events in the bucket.
    pub count: u64,
}

/// An aggregation's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AggregationResult {
    /// For `CountBy`.
    Groups(Vec<GroupCount>),
    /// For `Histogram`.
    Histogram(Vec<HistogramBucket>),
    /// For `CountEach`: the total, and per field its groups, largest first.
    Each {
        /// Matching events.
        total: u64,
        /// One list per field, in the order asked.
        groups: Vec<Vec<GroupCount>>,
    },
    /// For `Sections`, one per subset, in the order asked.
    Sections(Vec<SectionCount>),
}

impl AggregationResult {
    /// The groups of a `CountBy` (empty for a histogram).
    pub fn groups(&self) -> &[GroupCount] {
        match self {
            AggregationResult::Groups(g) => g,
            _ => &[],
        }
    }

    /// The total of a key-less `CountBy`.
    pub fn total(&self) -> u64 {
        self.groups().iter().map(|g| g.count).sum()
    }
}

/// Where a page ended: the sort key of its last event (time, cluster, auditID, stage, content
/// hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Event time.
    pub ts_micros: i64,
    /// Cluster.
    pub cluster: String,
    /// auditID.
    pub audit_id: String,
    /// Stage as stored (`""` for none).
    pub stage: String,
    /// [`Record::content_hash`]: orders distinct events that claim one identity.
    pub content_hash: i64,
}

impl Cursor {
    /// The cursor after `record`.
    pub fn after(record: &Record) -> Cursor {
        Cursor {
            ts_micros: record.ts_micros,
            cluster: record.cluster.clone(),
            audit_id: record.audit_id.clone(),
            stage: record.stage.map(Stage::as_str).unwrap_or("").to_string(),
            content_hash: record.content_hash,
        }
    }
}

fn hex(s: &str) -> String {
    crate::text::hex(s.as_bytes())
}

fn unhex(s: &str) -> Option<String> {
    String::from_utf8(crate::text::unhex(s)?).ok()
}

impl fmt::Display for Cursor {
    /// An opaque, URL-safe token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}.{}.{}",
            self.ts_micros,
            hex(&self.cluster),
            hex(&self.audit_id),
            hex(&self.stage),
            self.content_hash
        )
    }
}

impl FromStr for Cursor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid cursor {s:?}");
        let mut parts = s.split('.');
        let ts = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let mut next = || parts.next().and_then(unhex).ok_or_else(bad);
        let (cluster, audit_id, stage) = (next()?, next()?, next()?);
        if !stage.is_empty() && stage.parse::<Stage>().is_err() {
            return Err(bad());
        }
        // Cursors of earlier releases end at the stage: after every event of that identity.
        let content_hash = match parts.next() {
            Some(h) => h.parse().map_err(|_| bad())?,
            None => i64::MIN,
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Cursor {
            ts_micros: ts,
            cluster,
            audit_id,
            stage,
            content_hash,
        })
    }
}

/// A page of events, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    /// The events.
    pub records: Vec<Record>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

impl Page {
    /// A page of at most `limit` from `records` read newest first with one more than a page
    /// asked for: the extra one says there is a next page, which starts after the last kept.
    pub fn from_overfetch(mut records: Vec<Record>, limit: usize) -> Page {
        let next = if records.len() > limit {
            records.truncate(limit);
            records.last().map(Cursor::after)
        } else {
            None
        };
        Page { records, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_parse_like_kubectl() {
        let r: ResourceSelector = "deployments.apps/scale".parse().unwrap();
        assert_eq!(r.group.as_deref(), Some("apps"));
        assert_eq!(r.resource.as_deref(), Some("deployments"));
        assert_eq!(r.subresource.as_deref(), Some("scale"));
        let r: ResourceSelector = "certificates.cert-manager.io".parse().unwrap();
        assert_eq!(r.group.as_deref(), Some("cert-manager.io"));
        let r: ResourceSelector = "pods".parse().unwrap();
        assert_eq!((r.group, r.subresource), (None, None));
        let r: ResourceSelector = "pods.core/".parse().unwrap();
        assert_eq!(r.group.as_deref(), Some(""));
        assert_eq!(r.subresource.as_deref(), Some(""));
        let r: ResourceSelector = "deployments.apps/".parse().unwrap();
        assert_eq!(
            (r.group.as_deref(), r.subresource.as_deref()),
            (Some("apps"), Some(""))
        );
        for bad in ["", "Pods", "/exec", "pods.", "po ds", "pods/Exec"] {
            assert!(bad.parse::<ResourceSelector>().is_err(), "{bad}");
        }
    }

    #[test]
    fn codes_parse() {
        assert_eq!("403".parse(), Ok(CodeFilter::Exact(403)));
        assert_eq!("4xx".parse(), Ok(CodeFilter::Class(4)));
        assert_eq!("failed".parse(), Ok(CodeFilter::Failed));
        for bad in ["6xx", "0xx", "99", "600", "abc", "4x"] {
            assert!(bad.parse::<CodeFilter>().is_err(), "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip() {
        let c = Cursor {
            ts_micros: -5,
            cluster: "a.b".into(),
            audit_id: "x/y?z".into(),
            stage: "Panic".into(),
            content_hash: -7,
        };
        assert_eq!(c.to_string().parse::<Cursor>(), Ok(c.clone()));
        let earlier = "-5.612e62.782f793f7a.50616e6963".parse::<Cursor>();
        assert_eq!(
            earlier,
            Ok(Cursor {
                content_hash: i64::MIN,
                ..c
            }),
            "a cursor without a hash goes on after its identity"
        );
        assert!("1.61.62.50616e6963.x".parse::<Cursor>().is_err());
        assert!("1.61.62.50616e6963.1.2".parse::<Cursor>().is_err());
        assert!("1.zz.00.00".parse::<Cursor>().is_err());
        assert!(
            "1.61.62.6e6f7065".parse::<Cursor>().is_err(),
            "unknown stage"
        );
        assert!("x".parse::<Cursor>().is_err());
    }

    #[test]
    fn filters_validate() {
        let f = Filter {
            verbs: vec!["GET".into()],
            ..Filter::default()
        };
        assert!(
            f.validate()
                .unwrap_err()
                .starts_with("invalid verb \"GET\"")
        );
        let f = Filter {
            verbs: vec!["propfind".into()],
            ..Filter::default()
        };
        assert_eq!(f.validate(), Ok(()));
        let f = Filter {
            time: TimeRange {
                from_micros: Some(5),
                to_micros: Some(5),
            },
            ..Filter::default()
        };
        assert!(f.validate().is_err());
        assert!(Filter::default().validate().is_ok());
    }
}
