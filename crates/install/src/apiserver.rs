//! Editing a kube-apiserver static-pod manifest to turn auditing on: the `--audit-*` flags on
//! the kube-apiserver container (in `command`, or in `args` when that is where its flags are),
//! and the hostPath volumes and mounts they need. The edit is made on the text, line by line,
//! located through a position-aware parse: everything else — other flags, comments, key order,
//! quoting — stays byte for byte. Applying the same settings twice changes nothing.

use kubetrail_policy::KubeVersion;
use kubetrail_policy::yaml::{self, Node, NodeValue};
use serde_json::Value;

/// A manifest kubetrail will not edit, and why.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    /// Not YAML.
    #[error("the manifest is not YAML: {0}")]
    Syntax(String),
    /// Not the shape of a kube-apiserver static pod.
    #[error("{0}")]
    Shape(String),
    /// Audit settings already there, pointing elsewhere.
    #[error("{0} (use --force to replace it)")]
    Conflict(String),
}

/// The log backend's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogBackend {
    /// `--audit-log-path`.
    pub path: String,
    /// `--audit-log-maxage` (days).
    pub max_age: u32,
    /// `--audit-log-maxbackup`.
    pub max_backup: u32,
    /// `--audit-log-maxsize` (MB).
    pub max_size: u32,
    /// `--audit-log-compress`.
    pub compress: bool,
}

/// What to configure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    /// Where the policy file is on the node (flag and mount).
    pub policy_path: String,
    /// The log backend, if wanted.
    pub log: Option<LogBackend>,
    /// The webhook kubeconfig's path on the node, if the webhook backend is wanted.
    pub webhook_config: Option<String>,
}

/// A hostPath volume and its mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    pub(crate) name: &'static str,
    pub(crate) path: String,
    pub(crate) host_type: &'static str,
    pub(crate) read_only: bool,
}

impl AuditSettings {
    /// The flags, in the order kubeadm keeps them (sorted).
    pub fn flags(&self) -> Vec<(String, String)> {
        let mut flags = vec![("--audit-policy-file".to_string(), self.policy_path.clone())];
        if let Some(log) = &self.log {
            flags.push(("--audit-log-path".into(), log.path.clone()));
            flags.push(("--audit-log-maxage".into(), log.max_age.to_string()));
            flags.push(("--audit-log-maxbackup".into(), log.max_backup.to_string()));
            flags.push(("--audit-log-maxsize".into(), log.max_size.to_string()));
            if log.compress {
                flags.push(("--audit-log-compress".into(), "true".into()));
            }
        }
        if let Some(path) = &self.webhook_config {
            flags.push(("--audit-webhook-config-file".into(), path.clone()));
            flags.push(("--audit-webhook-mode".into(), "batch".into()));
            flags.push(("--audit-webhook-batch-max-size".into(), "400".into()));
            flags.push(("--audit-webhook-batch-max-wait".into(), "5s".into()));
        }
        flags.sort();
        flags
    }

    pub(crate) fn mounts(&self) -> Vec<Mount> {
        let mut m = vec![Mount {
            name: "audit-policy",
            path: self.policy_path.clone(),
            host_type: "FileOrCreate",
            read_only: true,
        }];
        if let Some(log) = &self.log
            && log.path != "-"
        {
            let dir = match log.path.rfind('/') {
                Some(0) => "/".to_string(),
                Some(i) => log.path[..i].to_string(),
                None => ".".to_string(),
            };
            m.push(Mount {
                name: "audit-log",
                path: dir,
                host_type: "DirectoryOrCreate",
                read_only: false,
            });
        }
        if let Some(path) = &self.webhook_config {
            m.push(Mount {
                name: "audit-webhook",
                path: path.clone(),
                host_type: "FileOrCreate",
                read_only: true,
            });
        }
        m
    }
}

/// Flags whose existing value, when different, means someone else set auditing up: replaced
/// only with `--force`. Other audit flags (sizes, ages, batching) are simply updated.
const IDENTITY_FLAGS: [&str; 3] = [
    "--audit-policy-file",
    "--audit-log-path",
    "--audit-webhook-config-file",
];

/// The result of an edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// The new manifest.
    pub text: String,
    /// The kube-apiserver version in the image tag, when it has one.
    pub image_version: Option<KubeVersion>,
}

/// The kube-apiserver version from an image such as `registry.k8s.io/kube-apiserver:v1.29.3`.
pub fn version_of_image(image: &str) -> Option<KubeVersion> {
    let image = image.split('@').next()?;
    let tag = image.rsplit_once(':')?.1;
    let rest = tag.strip_prefix('v').unwrap_or(tag);
    let mut parts = rest.split('.');
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()?;
    (major == 1).then(|| KubeVersion::new(minor))
}

fn shape(msg: impl Into<String>) -> ManifestError {
    ManifestError::Shape(msg.into())
}

fn scalar_str(node: &Node) -> Option<&str> {
    match &node.value {
        NodeValue::Scalar(Value::String(s)) => Some(s),
        _ => None,
    }
}

fn seq(node: &Node) -> Option<&[Node]> {
    match &node.value {
        NodeValue::Seq(items) => Some(items),
        _ => None,
    }
}

/// The last line a node occupies (its last descendant's line).
fn last_line(node: &Node) -> usize {
    match &node.value {
        NodeValue::Scalar(_) => node.line,
        NodeValue::Seq(items) => items.iter().map(last_line).max().unwrap_or(node.line),
        NodeValue::Map(pairs) => pairs
            .iter()
            .map(|(k, v)| last_line(k).max(last_line(v)))
            .max()
            .unwrap_or(node.line),
    }
}

/// The manifest as lines, edited by line number.
struct Lines {
    lines: Vec<String>,
    trailing_newline: bool,
}

impl Lines {
    fn new(text: &str) -> Lines {
        Lines {
            lines: text.lines().map(str::to_string).collect(),
            trailing_newline: text.ends_with('\n'),
        }
    }

    /// The indentation and `- ` prefix of a block sequence item starting on `line` (1-based).
    fn item_prefix(&self, line: usize) -> Result<String, ManifestError> {
        let text = self
            .lines
            .get(line - 1)
            .ok_or_else(|| shape("line out of range"))?;
        let indent = text.len() - text.trim_start().len();
        if !text.trim_start().starts_with("- ") {
            return Err(shape(format!(
                "line {line}: expected a block list item (\"- ...\"); flow-style lists are not edited"
            )));
        }
        Ok(format!("{}- ", &text[..indent]))
    }

    fn text(&self) -> String {
        let mut s = self.lines.join("\n");
        if self.trailing_newline {
            s.push('\n');
        }
        s
    }
}

/// Quotes a flag item the way the manifest quoted it.
fn flag_item(prefix: &str, flag: &str, value: &str, quoted_like: Option<&str>) -> String {
    let body = format!("{flag}={value}");
    match quoted_like
        .and_then(|l| l.trim_start().strip_prefix("- "))
        .and_then(|r| r.chars().next())
    {
        Some('"') => format!("{prefix}\"{body}\""),
        Some('\'') => format!("{prefix}'{body}'"),
        _ => format!("{prefix}{body}"),
    }
}

/// Applies `settings` to the manifest `text`. The edit is a fixed point: applied again, it
/// changes nothing.
pub fn apply(text: &str, settings: &AuditSettings, force: bool) -> Result<Edit, ManifestError> {
    let edit = apply_once(text, settings, force)?;
    // A layout the line editor did not foresee (found by the apiserver_manifest fuzz target: a
    // mangled `volumes:` key left the Pod's volumes parsed as a second container) can put the
    // mounts where the next run does not find them, and every run would add them again. Such
    // an edit is refused, never written over a static-pod manifest.
    match apply_once(&edit.text, settings, force) {
        Ok(again) if again.text == edit.text => Ok(edit),
        Ok(_) => Err(shape(
            "the edited manifest would not hold the audit settings where kubetrail looks for \
             them (applied again, it would change); edit this layout by hand",
        )),
        Err(e) => Err(shape(format!(
            "the edited manifest would be refused when applied again ({e}); edit this layout by hand"
        ))),
    }
}

/// One pass of [`apply`].
fn apply_once(text: &str, settings: &AuditSettings, force: bool) -> Result<Edit, ManifestError> {
    let root = yaml::parse(text)
        .map_err(|e| ManifestError::Syntax(e.to_string()))?
        .ok_or_else(|| shape("the manifest is empty"))?;
    if root.get("kind").and_then(scalar_str) != Some("Pod") {
        return Err(shape("not a Pod manifest (kind: Pod expected)"));
    }
    let spec = root
        .get("spec")
        .ok_or_else(|| shape("the Pod has no spec"))?;
    let containers = spec
        .get("containers")
        .and_then(seq)
        .ok_or_else(|| shape("the Pod has no containers list"))?;
    let is_apiserver = |c: &Node| {
        c.get("name").and_then(scalar_str) == Some("kube-apiserver")
            || c.get("command")
                .and_then(seq)
                .and_then(|s| s.first())
                .and_then(scalar_str)
                .is_some_and(|s| s.ends_with("kube-apiserver"))
    };
    let container = containers
        .iter()
        .find(|c| is_apiserver(c))
        .ok_or_else(|| shape("no kube-apiserver container in the manifest"))?;
    let image_version = container
        .get("image")
        .and_then(scalar_str)
        .and_then(version_of_image);

    // Where the flags are: `command` (kubeadm) or `args`.
    let has_flags = |n: &Node| {
        seq(n).is_some_and(|items| {
            items
                .iter()
                .any(|i| scalar_str(i).is_some_and(|s| s.starts_with("--")))
        })
    };
    let list = match (container.get("command"), container.get("args")) {
        (Some(c), Some(a)) if has_flags(c) && has_flags(a) => {
            return Err(shape(
                "the kube-apiserver container has flags in both command and args",
            ));
        }
        (Some(c), _) if has_flags(c) => c,
        (_, Some(a)) if seq(a).is_some() => a,
        (Some(c), _) if seq(c).is_some() => c,
        _ => {
            return Err(shape(
                "the kube-apiserver container has no command or args list",
            ));
        }
    };
    let items = seq(list).ok_or_else(|| shape("command/args is not a list"))?;
    if items.is_empty() {
        return Err(shape("the kube-apiserver command/args list is empty"));
    }
    let mut lines = Lines::new(text);
    let mut existing: Vec<(String, Option<String>, usize)> = Vec::new();
    for item in items {
        let s = scalar_str(item).ok_or_else(|| {
            shape(format!(
                "line {}: a command item that is not a string",
                item.line
            ))
        })?;
        if let Some(flag) = s.strip_prefix("--") {
            let (name, value) = match flag.split_once('=') {
                Some((n, v)) => (format!("--{n}"), Some(v.to_string())),
                None => (format!("--{flag}"), None),
            };
            if existing.iter().any(|(n, _, _)| *n == name) && name.starts_with("--audit-") {
                return Err(shape(format!("{name} is given twice")));
            }
            existing.push((name, value, item.line));
        }
    }
    // Line edits are collected and applied bottom-up so line numbers stay valid.
    let mut replace: Vec<(usize, String)> = Vec::new();
    let mut insert: Vec<(usize, Vec<String>)> = Vec::new(); // insert after line
    let prefix = lines.item_prefix(items[items.len() - 1].line)?;
    let sorted = existing.windows(2).all(|w| w[0].0 <= w[1].0);
    for (flag, value) in settings.flags() {
        match existing.iter().find(|(n, _, _)| *n == flag) {
            Some((_, Some(v), _)) if *v == value => {}
            Some((_, old, line)) => {
                let old = old.clone().unwrap_or_default();
                if IDENTITY_FLAGS.contains(&flag.as_str()) && !force {
                    return Err(ManifestError::Conflict(format!(
                        "{flag} is already set to {old:?}, not {value:?}"
                    )));
                }
                let original = lines.lines[line - 1].clone();
                let p = lines.item_prefix(*line)?;
                replace.push((*line, flag_item(&p, &flag, &value, Some(&original))));
            }
            None => {
                // After the last flag that sorts before it (kubeadm sorts its flags), else last.
                let after = if sorted {
                    existing
                        .iter()
                        .filter(|(n, _, _)| *n < flag)
                        .map(|(_, _, l)| *l)
                        .max()
                        .unwrap_or(items[0].line)
                } else {
                    last_line(&items[items.len() - 1])
                };
                let quoted_like = lines.lines.get(after - 1).cloned();
                insert.push((
                    after,
                    vec![flag_item(&prefix, &flag, &value, quoted_like.as_deref())],
                ));
            }
        }
    }

    // Volume mounts on the container, volumes on the pod.
    let mounts = settings.mounts();
    plan_list(
        &lines,
        container,
        "volumeMounts",
        &mounts,
        force,
        |m| {
            vec![
                format!("mountPath: {}", m.path),
                format!("name: {}", m.name),
            ]
            .into_iter()
            .chain(m.read_only.then(|| "readOnly: true".to_string()))
            .collect()
        },
        |node| {
            node.get("mountPath")
                .and_then(scalar_str)
                .map(str::to_string)
        },
        &mut insert,
        &mut replace,
    )?;
    plan_list(
        &lines,
        spec,
        "volumes",
        &mounts,
        force,
        |m| {
            vec![
                "hostPath:".to_string(),
                format!("  path: {}", m.path),
                format!("  type: {}", m.host_type),
                format!("name: {}", m.name),
            ]
        },
        |node| {
            node.get("hostPath")
                .and_then(|h| h.get("path"))
                .and_then(scalar_str)
                .map(str::to_string)
        },
        &mut insert,
        &mut replace,
    )?;

    for (line, text) in &replace {
        lines.lines[line - 1] = text.clone();
    }
    // Bottom-up; inserts after the same line keep their order.
    insert.sort_by_key(|b| std::cmp::Reverse(b.0));
    let mut grouped: Vec<(usize, Vec<String>)> = Vec::new();
    for (after, new) in insert {
        match grouped.last_mut() {
            Some((l, v)) if *l == after => v.extend(new),
            _ => grouped.push((after, new)),
        }
    }
    for (after, new) in grouped {
        let at = after.min(lines.lines.len());
        lines.lines.splice(at..at, new);
    }
    let text = lines.text();
    // Line edits on a document whose layout the editor did not foresee could leave it no
    // longer YAML (found by the apiserver_manifest fuzz target): such an edit is refused,
    // never written over a static-pod manifest.
    if let Err(e) = yaml::parse(&text) {
        return Err(shape(format!(
            "the edited manifest would not be YAML ({e}); edit this layout by hand"
        )));
    }
    Ok(Edit {
        text,
        image_version,
    })
}

/// Plans the items of a `volumeMounts`/`volumes` list of `parent`: adds the missing ones after
/// the list's last item, leaves identical ones, and refuses (or with `force` rewrites the path
/// of) one with kubetrail's name and another path.
#[allow(clippy::too_many_arguments)]
fn plan_list(
    lines: &Lines,
    parent: &Node,
    key: &str,
    mounts: &[Mount],
    force: bool,
    render: impl Fn(&Mount) -> Vec<String>,
    path_of: impl Fn(&Node) -> Option<String>,
    insert: &mut Vec<(usize, Vec<String>)>,
    replace: &mut Vec<(usize, String)>,
) -> Result<(), ManifestError> {
    let list = parent.get(key);
    let items = match list {
        Some(l) => seq(l).ok_or_else(|| shape(format!("{key} is not a list")))?,
        None => &[],
    };
    let mut new_lines = Vec::new();
    let mut added = false;
    let (prefix, after) = match items.last() {
        Some(last) => (lines.item_prefix(last.line)?, last_line(last)),
        None => {
            // No list yet: add the key after the parent's last line, indented as its keys.
            let NodeValue::Map(pairs) = &parent.value else {
                return Err(shape(format!(
                    "cannot add {key}: its parent is not a mapping"
                )));
            };
            let first_key = pairs.first().map(|(k, _)| k.line).unwrap_or(parent.line);
            let text = &lines.lines[first_key - 1];
            let mut indent = text.len() - text.trim_start().len();
            if text.trim_start().starts_with("- ") {
                indent += 2;
            }
            let pad = " ".repeat(indent);
            new_lines.push(format!("{pad}{key}:"));
            (format!("{pad}- "), last_line(parent))
        }
    };
    let continuation = " ".repeat(prefix.len());
    for m in mounts {
        let same_name = items
            .iter()
            .find(|i| i.get("name").and_then(scalar_str) == Some(m.name));
        match same_name {
            Some(item) if path_of(item).as_deref() == Some(m.path.as_str()) => continue,
            Some(item) => {
                let old = path_of(item).unwrap_or_default();
                if !force {
                    return Err(ManifestError::Conflict(format!(
                        "{key} already has {:?} with path {old:?}, not {:?}",
                        m.name, m.path
                    )));
                }
                // Rewrite the path line in place.
                let node = if key == "volumes" {
                    item.get("hostPath").and_then(|h| h.get("path"))
                } else {
                    item.get("mountPath")
                };
                let node = node.ok_or_else(|| shape(format!("{key} {:?} has no path", m.name)))?;
                let text = &lines.lines[node.line - 1];
                let colon = text
                    .find(':')
                    .ok_or_else(|| shape("a path line without a colon"))?;
                replace.push((node.line, format!("{} {}", &text[..=colon], m.path)));
            }
            None => {
                if let Some(other) = items.iter().find(|i| {
                    key == "volumeMounts" && path_of(i).as_deref() == Some(m.path.as_str())
                }) {
                    let name = other.get("name").and_then(scalar_str).unwrap_or("?");
                    if !force {
                        return Err(ManifestError::Conflict(format!(
                            "{} is already mounted as {name:?}",
                            m.path
                        )));
                    }
                }
                added = true;
                for (i, l) in render(m).into_iter().enumerate() {
                    if i == 0 {
                        new_lines.push(format!("{prefix}{l}"));
                    } else {
                        new_lines.push(format!("{continuation}{l}"));
                    }
                }
            }
        }
    }
    if added {
        insert.push((after, new_lines));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_come_from_the_image_tag() {
        assert_eq!(
            version_of_image("registry.k8s.io/kube-apiserver:v1.29.3"),
            Some(KubeVersion::new(29))
        );
        assert_eq!(
            version_of_image("k8s.gcr.io/kube-apiserver:v1.23.17@sha256:abc"),
            Some(KubeVersion::new(23))
        );
        assert_eq!(version_of_image("localhost:5000/kube-apiserver"), None);
        assert_eq!(version_of_image("kube-apiserver:latest"), None);
    }
}
