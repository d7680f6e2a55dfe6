//! What rules know of one event: the cheap facts every `match` block reads (user, code,
//! decision, outcome), computed once, and the CEL variables expressions read, each built on
//! first use and shared by every rule that evaluates the event.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::sync::Arc;

use cel::Value;
use cel::common::value::Val;
use cel::objects::{Key, Map};
use kubetrail_model::{Event, UserInfo};

use crate::helpers;

/// The cheap facts about an event.
#[derive(Debug)]
pub struct Facts<'e> {
    /// The event.
    pub event: &'e Event,
    /// `user.username`, `""` when absent.
    pub user: &'e str,
    /// The verb's bit among the known verbs (see `matcher`).
    pub verb_bit: Option<u32>,
    /// `responseStatus.code`.
    pub code: Option<i32>,
    /// No error code.
    pub succeeded: bool,
    /// An impersonated user with a name or groups.
    pub impersonated: bool,
    decision: OnceCell<&'e str>,
    /// What expressions read, made when the first one runs (most events never get that far).
    cache: OnceCell<Box<Cache>>,
}

/// The variables of one event, each built on first use.
#[derive(Debug)]
struct Cache {
    vars: [OnceCell<Value>; VARS.len()],
    vals: [OnceCell<Option<Box<dyn Val>>>; VARS.len()],
    bodies: [OnceCell<Value>; 2],
}

/// The names expressions can read, besides `params`.
pub const VARS: &[&str] = &[
    "auditID",
    "stage",
    "level",
    "verb",
    "requestURI",
    "userAgent",
    "sourceIPs",
    "user",
    "impersonatedUser",
    "objectRef",
    "responseStatus",
    "requestObject",
    "responseObject",
    "annotations",
    "u",
    "code",
    "decision",
    "ok",
    "succeeded",
    "ns",
    "name",
    "resource",
    "subresource",
    "group",
    "pod_name",
    "spec",
    "containers",
    "images",
    "hostpaths",
    "command",
    "cmd_str",
    "uri_path",
    "source_ip",
    "loopback_only",
    "system_principal",
    "human",
    "system_ns",
];

/// The index of a variable name in [`VARS`].
pub fn var_index(name: &str) -> Option<usize> {
    VARS.iter().position(|v| *v == name)
}

impl<'e> Facts<'e> {
    /// The facts of an event.
    pub fn new(event: &'e Event) -> Facts<'e> {
        let code = event.response_status.as_ref().and_then(|s| s.code);
        let succeeded = code.is_none_or(|c| c < 400);
        let impersonated = event.impersonated_user.as_ref().is_some_and(|u| {
            u.username.as_deref().is_some_and(|n| !n.is_empty()) || !u.groups.is_empty()
        });
        Facts {
            event,
            user: event
                .user
                .as_ref()
                .and_then(|u| u.username.as_deref())
                .unwrap_or(""),
            verb_bit: crate::matcher::verb_bit(event.verb.as_deref().unwrap_or("")),
            code,
            succeeded,
            impersonated,
            decision: OnceCell::new(),
            cache: OnceCell::new(),
        }
    }

    /// The `authorization.k8s.io/decision` annotation, `""` when absent.
    pub fn decision(&self) -> &'e str {
        // A scan of the few annotations, lengths first, beats the map's search over keys
        // that share the `authorization.k8s.io/` prefix.
        const KEY: &str = "authorization.k8s.io/decision";
        self.decision.get_or_init(|| {
            self.event
                .annotations
                .iter()
                .find(|(k, _)| k.len() == KEY.len() && k.as_str() == KEY)
                .map_or("", |(_, v)| v.as_str())
        })
    }

    /// Succeeded and not forbidden.
    pub fn ok(&self) -> bool {
        self.succeeded && self.decision() != "forbid"
    }

    fn cache(&self) -> &Cache {
        self.cache.get_or_init(|| {
            Box::new(Cache {
                vars: std::array::from_fn(|_| OnceCell::new()),
                vals: std::array::from_fn(|_| OnceCell::new()),
                bodies: Default::default(),
            })
        })
    }

    /// The namespace, `""` when cluster-scoped.
    pub fn namespace(&self) -> &'e str {
        self.object(|o| o.namespace.as_deref())
    }

    fn object(
        &self,
        f: impl Fn(&'e kubetrail_model::ObjectReference) -> Option<&'e str>,
    ) -> &'e str {
        self.event.object_ref.as_ref().and_then(f).unwrap_or("")
    }

    /// The CEL value of a variable of [`VARS`], built on first use.
    pub fn var(&self, index: usize) -> &Value {
        self.cache().vars[index].get_or_init(|| self.build(VARS[index]))
    }

    /// A variable of [`VARS`] as a program reads it, converted on first use.
    pub fn val(&self, index: usize) -> Option<&dyn Val> {
        self.cache().vals[index]
            .get_or_init(|| Box::<dyn Val>::try_from(self.var(index).clone()).ok())
            .as_deref()
    }

    /// The request (0) or response (1) body as a CEL value, `null` when absent.
    fn body(&self, which: usize) -> &Value {
        self.cache().bodies[which].get_or_init(|| {
            let raw = if which == 0 {
                self.event.request_object.as_ref()
            } else {
                self.event.response_object.as_ref()
            };
            raw.and_then(|r| r.to_value().ok())
                .map(|v| json(&v))
                .unwrap_or(Value::Null)
        })
    }

    fn build(&self, name: &str) -> Value {
        let e = self.event;
        let text = |s: Option<&str>| Value::from(s.unwrap_or(""));
        match name {
            "auditID" => text(e.audit_id.as_deref()),
            "stage" => text(e.stage.map(|s| s.as_str())),
            "level" => text(e.level.map(|l| l.as_str())),
            "verb" => text(e.verb.as_deref()),
            "requestURI" => text(e.request_uri.as_deref()),
            "userAgent" => text(e.user_agent.as_deref()),
            "sourceIPs" => strings(&e.source_ips),
            "user" => user(e.user.as_ref()),
            "impersonatedUser" => match &e.impersonated_user {
                Some(u) => user(Some(u)),
                None => Value::Null,
            },
            "objectRef" => {
                let o = e.object_ref.as_ref();
                let field = |f: fn(&kubetrail_model::ObjectReference) -> &Option<String>| {
                    Value::from(o.and_then(|o| f(o).as_deref()).unwrap_or(""))
                };
                map([
                    ("resource", field(|o| &o.resource)),
                    ("subresource", field(|o| &o.subresource)),
                    ("namespace", field(|o| &o.namespace)),
                    ("name", field(|o| &o.name)),
                    ("apiGroup", field(|o| &o.api_group)),
                    ("apiVersion", field(|o| &o.api_version)),
                    ("uid", field(|o| &o.uid)),
                ])
            }
            "responseStatus" => {
                let s = e.response_status.as_ref();
                map([
                    ("code", Value::Int(self.code.unwrap_or(0).into())),
                    ("status", text(s.and_then(|s| s.status.as_deref()))),
                    ("reason", text(s.and_then(|s| s.reason.as_deref()))),
                    ("message", text(s.and_then(|s| s.message.as_deref()))),
                ])
            }
            "requestObject" => self.body(0).clone(),
            "responseObject" => self.body(1).clone(),
            "annotations" => Value::Map(Map {
                map: Arc::new(
                    e.annotations
                        .iter()
                        .map(|(k, v)| (Key::from(k.as_str()), Value::from(v.as_str())))
                        .collect(),
                ),
            }),
            "u" => Value::from(self.user),
            "code" => Value::Int(self.code.unwrap_or(0).into()),
            "decision" => Value::from(self.decision()),
            "ok" => Value::Bool(self.ok()),
            "succeeded" => Value::Bool(self.succeeded),
            "ns" => Value::from(self.namespace()),
            "name" => Value::from(self.object(|o| o.name.as_deref())),
            "resource" => Value::from(self.object(|o| o.resource.as_deref())),
            "subresource" => Value::from(self.object(|o| o.subresource.as_deref())),
            "group" => Value::from(self.object(|o| o.api_group.as_deref())),
            "pod_name" => Value::from(helpers::pod_name(self.event, self.body(0), self.body(1))),
            "spec" => helpers::spec(self.body(0), self.body(1)),
            "containers" => helpers::containers(self.var(var_index("spec").unwrap_or(0))),
            "images" => helpers::images(self.var(var_index("containers").unwrap_or(0))),
            "hostpaths" => helpers::hostpaths(self.var(var_index("spec").unwrap_or(0))),
            "command" => {
                let cmd = helpers::command(self.body(0), e.request_uri.as_deref().unwrap_or(""));
                Value::List(Arc::new(cmd.into_iter().map(Value::from).collect()))
            }
            "cmd_str" => {
                let cmd = helpers::command(self.body(0), e.request_uri.as_deref().unwrap_or(""));
                Value::from(cmd.join(" "))
            }
            "uri_path" => {
                let uri = e.request_uri.as_deref().unwrap_or("");
                Value::from(uri.split_once('?').map_or(uri, |(p, _)| p))
            }
            "source_ip" => text(e.source_ips.first().map(String::as_str)),
            "loopback_only" => Value::Bool(
                !e.source_ips.is_empty()
                    && e.source_ips
                        .iter()
                        .all(|ip| ip == "127.0.0.1" || ip == "::1"),
            ),
            "system_principal" => Value::Bool(helpers::system_principal(self.user)),
            "human" => Value::Bool(helpers::human(self.user)),
            "system_ns" => Value::Bool(helpers::system_ns(self.namespace())),
            _ => Value::Null,
        }
    }
}

fn strings(v: &[String]) -> Value {
    Value::List(Arc::new(
        v.iter().map(|s| Value::from(s.as_str())).collect(),
    ))
}

fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
    let map: HashMap<Key, Value> = entries
        .into_iter()
        .map(|(k, v)| (Key::from(k), v))
        .collect();
    Value::Map(Map { map: Arc::new(map) })
}

fn user(u: Option<&UserInfo>) -> Value {
    let text = |s: Option<&String>| Value::from(s.map(String::as_str).unwrap_or(""));
    let extra: HashMap<Key, Value> = u
        .map(|u| {
            u.extra
                .iter()
                .map(|(k, v)| (Key::from(k.as_str()), strings(v)))
                .collect()
        })
        .unwrap_or_default();
    map([
        ("username", text(u.and_then(|u| u.username.as_ref()))),
        ("uid", text(u.and_then(|u| u.uid.as_ref()))),
        (
            "groups",
            strings(u.map(|u| u.groups.as_slice()).unwrap_or(&[])),
        ),
        (
            "extra",
            Value::Map(Map {
                map: Arc::new(extra),
            }),
        ),
    ])
}

/// A JSON value as a CEL value: numbers that are integers become `int`.
pub fn json(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => Value::UInt(u),
            _ => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(a) => Value::List(Arc::new(a.iter().map(json).collect())),
        serde_json::Value::Object(o) => Value::Map(Map {
            map: Arc::new(
                o.iter()
                    .map(|(k, v)| (Key::from(k.as_str()), json(v)))
                    .collect(),
            ),
        }),
    }
}
