//! A page's state lives in its URL so that links can be shared: the time range (`range=1h`,
//! `24h`, `7d`, `30d`, or `custom` with `from` and `to`), the filter parameters of the HTTP API
//! (`cluster`, `namespace`, `user`, `verb`, ...) and a few page keys (`cursor`, `by`).
//! [`Scope`] reads them into a store [`Filter`] and writes them back into links.

use std::time::Duration;

use kubetrail_api::params::{encode_query, filter_from_pairs, filter_to_pairs, parse_query};
use kubetrail_store::text::parse_time;
use kubetrail_store::{Filter, TimeRange};

use crate::{Context, UiError, Viewer};

/// The time range a page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// The last hour, day, week or month, up to now.
    Last(&'static str),
    /// Between `from` and `to`.
    Custom,
}

/// The preset ranges, with their lengths.
pub const PRESETS: [(&str, Duration); 4] = [
    ("1h", Duration::from_secs(3600)),
    ("24h", Duration::from_secs(86_400)),
    ("7d", Duration::from_secs(7 * 86_400)),
    ("30d", Duration::from_secs(30 * 86_400)),
];

/// The range pages open with.
pub const DEFAULT_RANGE: &str = "24h";

/// Keys that describe the time range.
const TIME_KEYS: [&str; 3] = ["range", "from", "to"];

/// Keys of the scope bar every page keeps when moving to another page.
pub const SCOPE_KEYS: [&str; 3] = ["cluster", "namespace", "user"];

/// A page's parsed URL state.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The parameters as kept in links (empty form fields and the cursor dropped).
    pairs: Vec<(String, String)>,
    /// The range.
    pub range: Range,
    /// The filter, with the time range resolved.
    pub filter: Filter,
    /// Start of the window, microseconds.
    pub from_micros: i64,
    /// End of the window (exclusive), microseconds.
    pub to_micros: i64,
    /// Page keys, as given.
    pub extra: Vec<(String, String)>,
    /// The clusters the store holds events of ([`Context::clusters`]; empty from
    /// [`Scope::parse`]).
    pub clusters: Vec<String>,
}

/// How links write "no authenticated user" (the filter's empty user name), which is also how
/// pages show it.
pub const NO_USER: &str = "(none)";

/// Drops empty values, which is what an empty form field sends.
fn drop_empty(pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect()
}

/// A time as an RFC 3339 string or as a `datetime-local` input sends it (`2026-11-26T10:00`,
/// taken as UTC).
fn parse_input_time(key: &str, value: &str) -> Result<i64, UiError> {
    let candidates = [
        value.to_string(),
        format!("{value}:00Z"),
        format!("{value}Z"),
    ];
    candidates
        .iter()
        .find_map(|c| parse_time(c).ok())
        .map(|t| t.timestamp_micros())
        .ok_or_else(|| {
            UiError::BadRequest(format!(
                "parameter {key}: invalid time {value:?}: expected RFC 3339, e.g. 2026-11-26T10:00:00Z"
            ))
        })
}

impl Scope {
    /// A page's scope: [`Scope::parse`] with kubectl's names for resources and source
    /// networks resolved against the store ([`kubetrail_report::resolve_filter`]).
    pub fn of(ctx: &Context<'_>, query: &str, page_keys: &[&str]) -> Result<Scope, UiError> {
        let mut scope = Scope::parse(query, page_keys, ctx.now_micros, ctx.viewer)?;
        kubetrail_report::resolve_cached(ctx.store, ctx.resources, &mut scope.filter)?;
        scope.clusters = ctx.clusters.to_vec();
        Ok(scope)
    }

    /// Reads `query`; `page_keys` are the page's own keys, returned in `extra`.
    pub fn parse(
        query: &str,
        page_keys: &[&str],
        now_micros: i64,
        viewer: &Viewer,
    ) -> Result<Scope, UiError> {
        let pairs = drop_empty(parse_query(query));
        let single = |key: &str| -> Result<Option<&str>, UiError> {
            let mut values = pairs
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str());
            let first = values.next();
            if values.next().is_some() {
                return Err(UiError::BadRequest(format!(
                    "parameter {key} given more than once"
                )));
            }
            Ok(first)
        };
        if pairs.iter().any(|(k, _)| k == "since") {
            return Err(UiError::BadRequest(
                "parameter since: pages take range=1h, 24h, 7d or 30d, or range=custom with from and to".into(),
            ));
        }
        let (from, to) = (single("from")?, single("to")?);
        if let Some(r) = single("range")?
            && r != "custom"
            && (from.is_some() || to.is_some())
        {
            return Err(UiError::BadRequest(format!(
                "parameter from: only with range=custom, not range={r}"
            )));
        }
        let range = match single("range")? {
            Some("custom") => Range::Custom,
            None if from.is_some() || to.is_some() => Range::Custom,
            None => Range::Last(DEFAULT_RANGE),
            Some(name) => Range::Last(
                PRESETS
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(n, _)| *n)
                    .ok_or_else(|| {
                        UiError::BadRequest(format!(
                            "parameter range: {name:?} is not one of 1h, 24h, 7d, 30d, custom"
                        ))
                    })?,
            ),
        };
        let (from_micros, to_micros) = match range {
            Range::Last(name) => {
                let d = PRESETS
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or(Duration::from_secs(86_400), |(_, d)| *d);
                (now_micros - d.as_micros() as i64, now_micros)
            }
            Range::Custom => {
                let from = from.ok_or_else(|| {
                    UiError::BadRequest("parameter from: a custom range needs from and to".into())
                })?;
                let to = to.ok_or_else(|| {
                    UiError::BadRequest("parameter to: a custom range needs from and to".into())
                })?;
                let (f, t) = (parse_input_time("from", from)?, parse_input_time("to", to)?);
                if f >= t {
                    return Err(UiError::BadRequest(
                        "parameter from: the range is empty, from must be before to".into(),
                    ));
                }
                (f, t)
            }
        };
        let mut extra_keys: Vec<&str> = page_keys.to_vec();
        extra_keys.push("cursor");
        let rest: Vec<(String, String)> = pairs
            .iter()
            .filter(|(k, _)| !TIME_KEYS.contains(&k.as_str()))
            .map(|(k, v)| match (k.as_str(), v.as_str()) {
                ("user", NO_USER) => (k.clone(), String::new()),
                _ => (k.clone(), v.clone()),
            })
            .collect();
        let (mut filter, extra) =
            filter_from_pairs(&rest, &extra_keys, now_micros).map_err(UiError::BadRequest)?;
        filter.time = TimeRange {
            from_micros: Some(from_micros),
            to_micros: match range {
                Range::Last(_) => None,
                Range::Custom => Some(to_micros),
            },
        };
        viewer.restrict(&mut filter)?;
        let pairs = pairs.into_iter().filter(|(k, _)| k != "cursor").collect();
        Ok(Scope {
            pairs,
            range,
            filter,
            from_micros,
            to_micros,
            extra,
            clusters: Vec::new(),
        })
    }

    /// The first value of a parameter.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a parameter.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A page key given once (`by`, `cursor`...).
    pub fn extra(&self, key: &str) -> Option<&str> {
        self.extra
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The clusters of the filter that the store holds no event of, each with the closest known
    /// one (when the known clusters are given).
    pub fn unknown_clusters(&self) -> Vec<(&str, Option<&str>)> {
        if self.clusters.is_empty() {
            return Vec::new();
        }
        self.filter
            .clusters
            .iter()
            .filter(|c| !self.clusters.contains(c))
            .map(|c| {
                let closest =
                    kubetrail_report::closest(c, self.clusters.iter().map(String::as_str));
                (c.as_str(), closest)
            })
            .collect()
    }

    /// The page key `limit`: `default` when absent, refused outside 1..=`max`.
    pub fn limit(&self, default: usize, max: usize) -> Result<usize, UiError> {
        match self.extra("limit") {
            None => Ok(default),
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    UiError::BadRequest(format!(
                        "parameter limit: expected 1 to {max}, found {l:?}"
                    ))
                }),
        }
    }

    /// The page key `noop`: whether no-op and dry-run writes are shown (`show`) or hidden
    /// (`hide`, the default).
    pub fn show_noop(&self) -> Result<bool, UiError> {
        match self.extra("noop") {
            None | Some("hide") => Ok(false),
            Some("show") => Ok(true),
            Some(v) => Err(UiError::BadRequest(format!(
                "parameter noop: {v:?} is not show or hide"
            ))),
        }
    }

    /// A link to `path` with every current parameter and `add` on top (a value already
    /// present is not repeated).
    pub fn href(&self, path: &str, add: &[(&str, &str)]) -> String {
        self.link(path, |_| true, add)
    }

    /// A link to `path` keeping the time range and the scope bar's filters, with `add`.
    pub fn scoped(&self, path: &str, add: &[(&str, &str)]) -> String {
        self.link(
            path,
            |k| TIME_KEYS.contains(&k) || SCOPE_KEYS.contains(&k),
            add,
        )
    }

    /// A link to `path` keeping every parameter but `drop`, with `add`.
    pub fn without(&self, path: &str, drop: &[&str], add: &[(&str, &str)]) -> String {
        self.link(path, |k| !drop.contains(&k), add)
    }

    fn link(&self, path: &str, keep: impl Fn(&str) -> bool, add: &[(&str, &str)]) -> String {
        let mut out: Vec<(&str, String)> = self
            .pairs
            .iter()
            .filter(|(k, _)| keep(k))
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        for (k, v) in add {
            if !out.iter().any(|(k2, v2)| k2 == k && v2 == v) {
                out.push((k, v.to_string()));
            }
        }
        with_query(path, out)
    }

    /// A link to `path` listing exactly what `filter` selects within this page's time
    /// range: the range as the page has it, every other condition from the filter (whose own
    /// time is the range's). `None` when page links cannot say the filter: pages read an
    /// empty parameter as no filter, so only the empty user has a spelling (`(none)`).
    pub fn filter_link(&self, path: &str, filter: &Filter) -> Option<String> {
        let mut out: Vec<(&str, String)> = self
            .pairs
            .iter()
            .filter(|(k, _)| TIME_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        for (k, v) in filter_to_pairs(filter) {
            match (k, v.as_str()) {
                ("from" | "to", _) => {}
                ("user", "") => out.push((k, NO_USER.to_string())),
                // A user really called `(none)` would read back as no user.
                ("user", NO_USER) => return None,
                (_, "") => return None,
                _ => out.push((k, v)),
            }
        }
        Some(with_query(path, out))
    }

    /// The window's length.
    pub fn span_micros(&self) -> i64 {
        self.to_micros - self.from_micros
    }
}

/// `path?query` (just `path` without parameters).
pub fn with_query<'a>(path: &str, pairs: impl IntoIterator<Item = (&'a str, String)>) -> String {
    let q = encode_query(pairs);
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{q}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer(cluster: Option<&str>) -> Viewer {
        Viewer {
            name: "ui".into(),
            cluster: cluster.map(str::to_string),
            session: true,
        }
    }

    const NOW: i64 = 1_764_151_200_000_000;

    #[test]
    fn the_default_is_the_last_day() {
        let s = Scope::parse("", &[], NOW, &viewer(None)).unwrap();
        assert_eq!(s.range, Range::Last("24h"));
        assert_eq!(s.filter.time.from_micros, Some(NOW - 86_400_000_000));
        assert_eq!(s.filter.time.to_micros, None);
    }

    #[test]
    fn empty_form_fields_do_not_filter_and_none_is_no_user() {
        let s = Scope::parse("user=&namespace=prod&verb=", &[], NOW, &viewer(None)).unwrap();
        assert!(s.filter.users.is_empty());
        assert!(s.filter.verbs.is_empty());
        assert_eq!(s.filter.namespaces, ["prod"]);
        let s = Scope::parse(
            "user=system%3Aanonymous&user=(none)&user=",
            &[],
            NOW,
            &viewer(None),
        )
        .unwrap();
        assert_eq!(s.filter.users, ["system:anonymous", ""]);
    }

    #[test]
    fn custom_ranges_take_datetime_local_inputs() {
        let s = Scope::parse(
            "range=custom&from=2025-11-26T09:00&to=2025-11-26T10:00",
            &[],
            NOW,
            &viewer(None),
        )
        .unwrap();
        assert_eq!(s.range, Range::Custom);
        assert_eq!(s.from_micros, NOW - 3_600_000_000);
        assert_eq!(s.filter.time.to_micros, Some(NOW));
    }

    #[test]
    fn errors_name_the_parameter() {
        let e = |q: &str| {
            Scope::parse(q, &["by"], NOW, &viewer(None))
                .unwrap_err()
                .to_string()
        };
        assert!(
            e("range=2y").starts_with("parameter range:"),
            "{}",
            e("range=2y")
        );
        assert!(
            e("range=custom&from=yesterday&to=2025-11-26T10:00").starts_with("parameter from:")
        );
        assert!(e("verb=GET").contains("invalid verb"));
        assert!(e("colour=red").contains("unknown parameter \"colour\""));
        assert!(e("since=1h").starts_with("parameter since:"));
        assert!(e("range=7d&from=2025-11-26T09:00").starts_with("parameter from:"));
    }

    #[test]
    fn a_bound_viewer_sees_only_its_cluster() {
        let s = Scope::parse("", &[], NOW, &viewer(Some("prod"))).unwrap();
        assert_eq!(s.filter.clusters, ["prod"]);
        let e = Scope::parse("cluster=dev", &[], NOW, &viewer(Some("prod"))).unwrap_err();
        assert_eq!(e.status(), 403);
    }

    #[test]
    fn links_keep_the_state_and_encode_values() {
        let s = Scope::parse(
            "range=7d&namespace=prod&verb=delete&cursor=abc",
            &[],
            NOW,
            &viewer(None),
        )
        .unwrap();
        assert_eq!(
            s.href("/search", &[("user", "a&b <c>")]),
            "/search?range=7d&namespace=prod&verb=delete&user=a%26b+%3Cc%3E"
        );
        assert_eq!(
            s.scoped("/resources", &[]),
            "/resources?range=7d&namespace=prod"
        );
        assert_eq!(
            s.without("/search", &["range"], &[("range", "1h")]),
            "/search?namespace=prod&verb=delete&range=1h"
        );
    }
}
