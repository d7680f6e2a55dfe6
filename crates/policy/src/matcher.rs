//! The evaluation hot path: a policy's rules compiled against a symbol table of every string
//! they mention, so that matching compares integers instead of strings.
//!
//! A request's strings are looked up in the table lazily, at most once each, and only when a
//! rule needs them; a string the policy never mentions gets the id 0, which no rule contains.
//! Nothing here allocates per evaluation. [`Rule::check`](crate::Rule::check) is the plain,
//! string-comparing form of the same logic, used by explain; property tests hold the two equal.

use kubetrail_model::Level;

use crate::rule::{Attributes, Rule, StageSet, path_matches, resource_matches};

/// Id of a string the policy does not mention.
const UNKNOWN: u32 = 0;
/// Id standing for the `"*"` group (any group).
const ANY_GROUP: u32 = u32::MAX;
/// Request groups interned up front; users with more groups are matched by string.
const MAX_INTERNED_GROUPS: usize = 16;

#[derive(Debug, Clone, Default)]
pub(crate) struct Matcher {
    symbols: Symbols,
    rules: Vec<CompiledRule>,
}

/// Longest string length with a bucket of its own; longer strings share the last bucket.
const MAX_BUCKET: usize = 96;

/// The policy's strings, bucketed by length: a lookup compares only against the few strings of
/// the same length, first by a key made of their first and last eight bytes, which for audit
/// policies (a few dozen distinct strings) beats hashing.
#[derive(Debug, Clone, Default)]
struct Symbols {
    by_len: Vec<Vec<(u128, Box<str>, u32)>>,
    count: u32,
}

/// The first and last eight bytes of `s` (zero-padded when shorter): two loads that tell most
/// same-length strings apart without a byte-by-byte comparison.
fn key(s: &str) -> u128 {
    let b = s.as_bytes();
    let (head, tail) = match (b.first_chunk::<8>(), b.last_chunk::<8>()) {
        (Some(head), Some(tail)) => (u64::from_le_bytes(*head), u64::from_le_bytes(*tail)),
        _ => {
            let short = b
                .iter()
                .rev()
                .fold(0u64, |acc, &c| (acc << 8) | u64::from(c));
            (short, short)
        }
    };
    (u128::from(head) << 64) | u128::from(tail)
}

impl Symbols {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(id) = self.get(s) {
            return id;
        }
        let bucket = s.len().min(MAX_BUCKET);
        if self.by_len.len() <= bucket {
            self.by_len.resize_with(bucket + 1, Vec::new);
        }
        self.count += 1;
        self.by_len[bucket].push((key(s), s.into(), self.count));
        self.count
    }

    fn get(&self, s: &str) -> Option<u32> {
        let bucket = self.by_len.get(s.len().min(MAX_BUCKET))?;
        if bucket.is_empty() {
            return None;
        }
        let k = key(s);
        bucket
            .iter()
            .find(|(bk, text, _)| *bk == k && (s.len() <= 16 || **text == *s))
            .map(|(_, _, id)| *id)
    }

    /// The id of `s`, or [`UNKNOWN`].
    fn id(&self, s: &str) -> u32 {
        self.get(s).unwrap_or(UNKNOWN)
    }
}

#[derive(Debug, Clone)]
struct CompiledRule {
    level: Level,
    omit_stages: StageSet,
    omit_managed_fields: Option<bool>,
    users: Box<[u32]>,
    user_groups: Box<[u32]>,
    verbs: Box<[u32]>,
    /// `namespaces` or `resources` non-empty: a resource rule.
    resource_scope: bool,
    namespaces: Box<[u32]>,
    resources: Box<[CompiledGroup]>,
    non_resource_urls: Box<[Box<str>]>,
}

#[derive(Debug, Clone)]
struct CompiledGroup {
    group: u32,
    resources: Box<[Box<str>]>,
    resource_names: Box<[u32]>,
}

/// What a matched rule decides.
pub(crate) struct Hit {
    pub index: usize,
    pub level: Level,
    pub omit_stages: StageSet,
    pub omit_managed_fields: Option<bool>,
}

impl Matcher {
    pub(crate) fn new(rules: &[Rule]) -> Self {
        let mut symbols = Symbols::default();
        let mut ids =
            |list: &[String]| -> Box<[u32]> { list.iter().map(|s| symbols.intern(s)).collect() };
        let rules = rules
            .iter()
            .map(|r| CompiledRule {
                level: r.level,
                omit_stages: r.omit_stages,
                omit_managed_fields: r.omit_managed_fields,
                users: ids(&r.users),
                user_groups: ids(&r.user_groups),
                verbs: ids(&r.verbs),
                resource_scope: !r.namespaces.is_empty() || !r.resources.is_empty(),
                namespaces: ids(&r.namespaces),
                resources: r
                    .resources
                    .iter()
                    .map(|g| CompiledGroup {
                        group: if g.group == "*" {
                            ANY_GROUP
                        } else {
                            ids(std::slice::from_ref(&g.group))[0]
                        },
                        resources: g.resources.iter().map(|s| s.as_str().into()).collect(),
                        resource_names: ids(&g.resource_names),
                    })
                    .collect(),
                non_resource_urls: r
                    .non_resource_urls
                    .iter()
                    .map(|s| s.as_str().into())
                    .collect(),
            })
            .collect();
        Matcher { symbols, rules }
    }

    /// The first rule that matches.
    pub(crate) fn first_match(&self, attrs: &Attributes<'_>) -> Option<Hit> {
        let mut req = Request::new(&self.symbols, attrs);
        self.rules.iter().enumerate().find_map(|(index, rule)| {
            rule.matches(&mut req).then_some(Hit {
                index,
                level: rule.level,
                omit_stages: rule.omit_stages,
                omit_managed_fields: rule.omit_managed_fields,
            })
        })
    }
}

/// A request with its strings' ids, looked up on first use.
struct Request<'s, 'a> {
    symbols: &'s Symbols,
    attrs: &'a Attributes<'a>,
    user: Option<u32>,
    verb: Option<u32>,
    namespace: Option<u32>,
    api_group: Option<u32>,
    name: Option<u32>,
    groups: Option<([u32; MAX_INTERNED_GROUPS], usize)>,
}

impl<'s, 'a> Request<'s, 'a> {
    fn new(symbols: &'s Symbols, attrs: &'a Attributes<'a>) -> Self {
        Request {
            symbols,
            attrs,
            user: None,
            verb: None,
            namespace: None,
            api_group: None,
            name: None,
            groups: None,
        }
    }

    fn cached(slot: &mut Option<u32>, symbols: &Symbols, s: &str) -> u32 {
        *slot.get_or_insert_with(|| symbols.id(s))
    }

    fn user(&mut self) -> u32 {
        Self::cached(&mut self.user, self.symbols, self.attrs.user.unwrap_or(""))
    }
    fn verb(&mut self) -> u32 {
        Self::cached(&mut self.verb, self.symbols, self.attrs.verb)
    }
    fn namespace(&mut self) -> u32 {
        Self::cached(&mut self.namespace, self.symbols, self.attrs.namespace)
    }
    fn api_group(&mut self) -> u32 {
        Self::cached(&mut self.api_group, self.symbols, self.attrs.api_group)
    }
    fn name(&mut self) -> u32 {
        Self::cached(&mut self.name, self.symbols, self.attrs.name)
    }

    /// Whether any of the user's groups is in `wanted`.
    fn in_groups(&mut self, wanted: &[u32]) -> bool {
        let groups = self.attrs.groups;
        if groups.len() > MAX_INTERNED_GROUPS {
            return groups.iter().any(|g| wanted.contains(&self.symbols.id(g)));
        }
        let symbols = self.symbols;
        let (ids, n) = self.groups.get_or_insert_with(|| {
            let mut ids = [UNKNOWN; MAX_INTERNED_GROUPS];
            for (slot, g) in ids.iter_mut().zip(groups) {
                *slot = symbols.id(g);
            }
            (ids, groups.len())
        });
        ids[..*n]
            .iter()
            .any(|id| *id != UNKNOWN && wanted.contains(id))
    }
}

impl CompiledRule {
    /// `ruleMatches`, on ids.
    fn matches(&self, req: &mut Request<'_, '_>) -> bool {
        let attrs = req.attrs;
        if !self.users.is_empty() && (attrs.user.is_none() || !self.users.contains(&req.user())) {
            return false;
        }
        if !self.user_groups.is_empty()
            && (attrs.user.is_none() || !req.in_groups(&self.user_groups))
        {
            return false;
        }
        if !self.verbs.is_empty() && !self.verbs.contains(&req.verb()) {
            return false;
        }
        if self.resource_scope {
            return attrs.resource_request
                && (self.namespaces.is_empty() || self.namespaces.contains(&req.namespace()))
                && (self.resources.is_empty() || self.matches_resource(req));
        }
        if !self.non_resource_urls.is_empty() {
            return !attrs.resource_request
                && self
                    .non_resource_urls
                    .iter()
                    .any(|spec| path_matches(attrs.path, spec));
        }
        true
    }

    fn matches_resource(&self, req: &mut Request<'_, '_>) -> bool {
        let group = req.api_group();
        for gr in self.resources.iter() {
            if gr.group != ANY_GROUP && gr.group != group {
                continue;
            }
            if gr.resources.is_empty() {
                return true;
            }
            if !gr.resource_names.is_empty() && !gr.resource_names.contains(&req.name()) {
                continue;
            }
            let (resource, subresource) = (req.attrs.resource, req.attrs.subresource);
            if gr
                .resources
                .iter()
                .any(|p| resource_matches(p, resource, subresource))
            {
                return true;
            }
        }
        false
    }
}
