//! Loading a policy file as kube-apiserver's `LoadPolicyFromBytes` does: YAML or JSON; unknown
//! and duplicate fields warned about and dropped; the group version checked against what the
//! target release accepts; `ValidatePolicy`; a policy without rules rejected. Every error and
//! warning carries its field path and, from the file, its line.

use kubetrail_model::policy::Policy as RawPolicy;
use kubetrail_model::{ApiVersion, Level, Stage};
use serde::Serialize;
use serde_json::Value;

use crate::checker::Policy;
use crate::field::FieldError;
use crate::rule::{GroupResources, Rule, StageSet};
use crate::validate::{ValidationOptions, validate};
use crate::version::KubeVersion;
use crate::yaml::{self, Node, NodeValue};

/// How to load.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Answer as this kube-apiserver release would; `None` accepts every version and feature.
    pub kube_version: Option<KubeVersion>,
}

/// Something worth knowing that does not stop the policy from loading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// Field path, e.g. `rules[4]`.
    pub field: String,
    /// What is worth knowing.
    pub message: String,
    /// 1-based line in the file, when known.
    #[serde(skip)]
    pub line: Option<usize>,
}

/// The result of loading: the policy when it loads, and everything found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file's group version, when it names a known one.
    pub api_version: Option<ApiVersion>,
    /// The decoded file (unknown fields dropped), when it decodes.
    pub raw: Option<RawPolicy>,
    /// The policy, when there are no errors.
    pub policy: Option<Policy>,
    /// Why it would not load.
    pub errors: Vec<FieldError>,
    /// Warnings from loading (unknown and duplicate fields, deprecated versions).
    pub warnings: Vec<Warning>,
    /// The document tree, for line numbers.
    pub tree: Option<Node>,
}

impl Loaded {
    /// Whether kube-apiserver would load the policy.
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    /// The line of a field path in the file, when the file parsed.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        self.tree.as_ref().map(|t| t.line_of(path))
    }
}

/// Loads a policy from YAML or JSON text.
pub fn load_str(text: &str, options: LoadOptions) -> Loaded {
    let mut loaded = Loaded {
        api_version: None,
        raw: None,
        policy: None,
        errors: Vec::new(),
        warnings: Vec::new(),
        tree: None,
    };
    match yaml::parse(text) {
        Err(e) => {
            let mut err = FieldError::decode("", e.to_string());
            err.line = Some(e.line);
            loaded.errors.push(err);
        }
        Ok(tree) => {
            decode_and_validate(&mut loaded, tree.as_ref(), options);
            loaded.tree = tree;
        }
    }
    for e in &mut loaded.errors {
        if e.line.is_none() {
            e.line = loaded.tree.as_ref().map(|t| t.line_of(&e.locate));
        }
    }
    for w in &mut loaded.warnings {
        if w.line.is_none() {
            w.line = loaded.tree.as_ref().map(|t| t.line_of(&w.field));
        }
    }
    if loaded.errors.is_empty()
        && let Some(raw) = &loaded.raw
    {
        loaded.policy = Some(compile(raw, loaded.tree.as_ref()));
    }
    loaded
}

fn decode_and_validate(loaded: &mut Loaded, tree: Option<&Node>, options: LoadOptions) {
    let root = match tree {
        None => None,
        Some(n) if matches!(n.value, NodeValue::Scalar(Value::Null)) => None,
        Some(n) => Some(n),
    };
    let Some(root) = root else {
        // An empty file decodes to an empty policy, which the loader rejects for having no rules.
        loaded.errors.push(FieldError::required(
            "rules",
            "loaded illegal policy with 0 rules",
        ));
        return;
    };
    if !matches!(root.value, NodeValue::Map(_)) {
        loaded.errors.push(FieldError::decode(
            "",
            "expected a Policy object at the top of the document",
        ));
        return;
    }
    let json = root.to_json();

    check_type_meta(loaded, &json, options);

    let mut unknown = Vec::new();
    let decoded: Result<RawPolicy, _> =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(&json, &mut |path| {
            unknown.push(ignored_path(&path))
        }));
    let mut raw = match decoded {
        Ok(raw) => raw,
        Err(e) => {
            loaded.errors.extend(decode_errors(&json, e));
            return;
        }
    };
    for field in unknown {
        loaded.warnings.push(Warning {
            message: format!("unknown field \"{field}\": kube-apiserver drops it"),
            field,
            line: None,
        });
    }
    for (field, line) in root.duplicate_keys() {
        loaded.warnings.push(Warning {
            message: format!("duplicate field \"{field}\": the last value is used"),
            field,
            line: Some(line),
        });
    }
    if let Some(v) = options.kube_version.filter(|v| v.minor < 23) {
        drop_omit_managed_fields(&mut raw, root, loaded, v);
    }

    let validation = ValidationOptions::for_version(options.kube_version);
    loaded.errors.extend(validate(&raw, validation));
    if raw.rules.is_empty() {
        loaded.errors.push(FieldError::required(
            "rules",
            "loaded illegal policy with 0 rules",
        ));
    }
    loaded.raw = Some(raw);
}

/// Every decoding error of a policy that does not decode, not only the first: each rule is
/// decoded on its own, then the policy without its rules. `first` is the whole policy's error,
/// the answer when the parts all decode (which they do not when it failed).
fn decode_errors(
    json: &Value,
    first: serde_path_to_error::Error<serde_json::Error>,
) -> Vec<FieldError> {
    fn error(prefix: &str, e: serde_path_to_error::Error<serde_json::Error>) -> FieldError {
        let path = e.path().to_string();
        let field = match (prefix, path.as_str()) {
            (p, ".") => p.to_string(),
            ("", path) => path.to_string(),
            (p, path) => format!("{p}.{path}"),
        };
        FieldError::decode(&field, e.into_inner().to_string())
    }
    let mut out = Vec::new();
    let mut rest = json.clone();
    if let Some(rules) = rest.get_mut("rules").and_then(Value::as_array_mut) {
        for (i, rule) in std::mem::take(rules).into_iter().enumerate() {
            if let Err(e) =
                serde_path_to_error::deserialize::<_, kubetrail_model::policy::PolicyRule>(rule)
            {
                out.push(error(&format!("rules[{i}]"), e));
            }
        }
    }
    if let Err(e) = serde_path_to_error::deserialize::<_, RawPolicy>(rest) {
        out.push(error("", e));
    }
    if out.is_empty() {
        out.push(error("", first));
    }
    out
}

/// `apiVersion` and `kind`: present, known, and accepted by the target release.
fn check_type_meta(loaded: &mut Loaded, json: &Value, options: LoadOptions) {
    let kind = json.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = json.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if kind.is_empty() {
        loaded
            .errors
            .push(FieldError::required("kind", "Object 'Kind' is missing"));
    } else if kind != "Policy" {
        loaded
            .errors
            .push(FieldError::not_supported("kind", kind, &["Policy"]));
    }
    let accepted: Vec<ApiVersion> = ApiVersion::ALL
        .into_iter()
        .rev()
        .filter(|v| {
            options.kube_version.is_none_or(|k| {
                k.minor >= v.introduced_in() && v.removed_in().is_none_or(|r| k.minor < r)
            })
        })
        .collect();
    let accepted_names: Vec<&str> = accepted.iter().map(|v| v.as_str()).collect();
    if api_version.is_empty() {
        loaded.errors.push(FieldError::required(
            "apiVersion",
            "Object 'apiVersion' is missing",
        ));
        return;
    }
    let Ok(version) = api_version.parse::<ApiVersion>() else {
        loaded.errors.push(FieldError::not_supported(
            "apiVersion",
            api_version,
            &accepted_names,
        ));
        return;
    };
    loaded.api_version = Some(version);
    if !accepted.contains(&version) {
        let kv = options
            .kube_version
            .map(|k| k.to_string())
            .unwrap_or_default();
        let mut err = FieldError::not_supported("apiVersion", api_version, &accepted_names);
        err.detail = format!(
            "unknown group version field {version}, Kind=Policy in policy: kube-apiserver {kv} accepts {}",
            accepted_names.join(", ")
        );
        loaded.errors.push(err);
    } else if version != ApiVersion::V1 {
        loaded.warnings.push(Warning {
            field: "apiVersion".into(),
            message: format!(
                "{version} is deprecated since Kubernetes 1.21 and rejected from 1.24: convert with `kubetrail policy convert --to audit.k8s.io/v1`"
            ),
            line: None,
        });
    }
}

/// Before 1.23 `omitManagedFields` did not exist: the apiserver drops it as an unknown field.
fn drop_omit_managed_fields(raw: &mut RawPolicy, root: &Node, loaded: &mut Loaded, v: KubeVersion) {
    let mut dropped = Vec::new();
    if root.get("omitManagedFields").is_some() {
        raw.omit_managed_fields = false;
        dropped.push("omitManagedFields".to_string());
    }
    for (i, rule) in raw.rules.iter_mut().enumerate() {
        if rule.omit_managed_fields.take().is_some() {
            dropped.push(format!("rules[{i}].omitManagedFields"));
        }
    }
    for field in dropped {
        loaded.warnings.push(Warning {
            message: format!(
                "unknown field \"{field}\" in kube-apiserver {v} (added in 1.23): it is dropped"
            ),
            field,
            line: None,
        });
    }
}

/// `rules.0.foo` (serde_ignored's path) → `rules[0].foo`.
fn ignored_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        Path::Map { parent, key } => {
            let p = ignored_path(parent);
            if p.is_empty() {
                key.clone()
            } else {
                format!("{p}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => ignored_path(parent),
    }
}

/// A validated raw policy → the evaluable form (each rule's omitStages united with the
/// policy's, as `NewChecker` does).
fn compile(raw: &RawPolicy, tree: Option<&Node>) -> Policy {
    let stages = |list: &[String]| -> StageSet {
        list.iter()
            .map(|s| s.parse::<Stage>().expect("validated stage"))
            .collect()
    };
    let policy_stages = stages(&raw.omit_stages);
    let rules = raw
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| Rule {
            level: r.level.parse::<Level>().expect("validated level"),
            users: r.users.clone(),
            user_groups: r.user_groups.clone(),
            verbs: r.verbs.clone(),
            resources: r
                .resources
                .iter()
                .map(|g| GroupResources {
                    group: g.group.clone(),
                    resources: g.resources.clone(),
                    resource_names: g.resource_names.clone(),
                })
                .collect(),
            namespaces: r.namespaces.clone(),
            non_resource_urls: r.non_resource_urls.clone(),
            omit_stages: policy_stages.union(stages(&r.omit_stages)),
            omit_managed_fields: r.omit_managed_fields,
            line: tree.map(|t| t.line_of(&format!("rules[{i}]"))),
        })
        .collect();
    Policy::new(rules, policy_stages, raw.omit_managed_fields)
}
