//! The derived facts of `DETECTION-PACK.md` §1.2–§1.4 that rules share: who counts as a
//! system principal, where a pod's spec is, its containers and images, the exec command of a
//! connect request.

use std::sync::Arc;

use cel::Value;
use cel::objects::Key;
use kubetrail_model::Event;

/// Managed-cloud identities that act for the control plane.
const MANAGED_NAMES: &[&str] = &["aksService", "masterclient", "nodeclient", "acsService"];

/// A control-plane identity: kube-system service accounts, `system:` users that are not
/// service accounts, `eks:` users and the managed names. Service accounts outside kube-system
/// are not.
pub fn system_principal(u: &str) -> bool {
    if u.is_empty() || u == "system:anonymous" || u == "system:unauthenticated" {
        return false;
    }
    u.starts_with("system:serviceaccount:kube-system:")
        || (u.starts_with("system:") && !u.starts_with("system:serviceaccount:"))
        || u.starts_with("eks:")
        || MANAGED_NAMES.contains(&u)
}

/// A person (or a credential a person holds): named, not `system:`, `eks:` or managed.
pub fn human(u: &str) -> bool {
    !u.is_empty()
        && !u.starts_with("system:")
        && !u.starts_with("eks:")
        && !MANAGED_NAMES.contains(&u)
}

/// The namespaces the platform itself runs in.
pub fn system_ns(ns: &str) -> bool {
    matches!(
        ns,
        "kube-system" | "kube-public" | "kube-node-lease" | "gke-system"
    )
}

fn field<'v>(v: &'v Value, name: &str) -> Option<&'v Value> {
    match v {
        Value::Map(m) => m.map.get(&Key::from(name)),
        _ => None,
    }
}

fn text(v: Option<&Value>) -> Option<&str> {
    match v {
        Some(Value::String(s)) if !s.is_empty() => Some(s.as_str()),
        _ => None,
    }
}

/// The pod's spec: the request's when it has an object `spec`, else the response's, else
/// `null` (a Metadata-level event has none).
pub fn spec(request: &Value, response: &Value) -> Value {
    for body in [request, response] {
        if let Some(spec @ Value::Map(_)) = field(body, "spec") {
            return spec.clone();
        }
    }
    Value::Null
}

/// The object's name: the objectRef's, then the response's, then the request's metadata (a
/// pod created with `generateName` is named only in the response).
pub fn pod_name(event: &Event, request: &Value, response: &Value) -> String {
    if let Some(n) = event.object_ref.as_ref().and_then(|o| o.name.as_deref())
        && !n.is_empty()
    {
        return n.to_string();
    }
    for body in [response, request] {
        if let Some(n) = text(field(body, "metadata").and_then(|m| field(m, "name"))) {
            return n.to_string();
        }
    }
    String::new()
}

/// `containers`, `initContainers` and `ephemeralContainers` of a spec, in that order.
pub fn containers(spec: &Value) -> Value {
    let mut all = Vec::new();
    for kind in ["containers", "initContainers", "ephemeralContainers"] {
        if let Some(Value::List(list)) = field(spec, kind) {
            all.extend(list.iter().filter(|c| matches!(c, Value::Map(_))).cloned());
        }
    }
    Value::List(Arc::new(all))
}

/// Every container's image repository (tag and digest dropped).
pub fn images(containers: &Value) -> Value {
    let Value::List(list) = containers else {
        return Value::List(Arc::default());
    };
    Value::List(Arc::new(
        list.iter()
            .map(|c| Value::from(image_repo(text(field(c, "image")).unwrap_or(""))))
            .collect(),
    ))
}

/// `quay.io/calico/node:v3.27.2@sha256:…` → `quay.io/calico/node`.
pub fn image_repo(image: &str) -> &str {
    let image = image.split_once('@').map_or(image, |(i, _)| i);
    match (image.rfind(':'), image.rfind('/')) {
        (Some(colon), Some(slash)) if colon > slash => &image[..colon],
        (Some(colon), None) => &image[..colon],
        _ => image,
    }
}

/// Every `spec.volumes[].hostPath.path`, normalized.
pub fn hostpaths(spec: &Value) -> Value {
    let mut paths = Vec::new();
    if let Some(Value::List(volumes)) = field(spec, "volumes") {
        for v in volumes.iter() {
            if let Some(p) = text(field(v, "hostPath").and_then(|h| field(h, "path"))) {
                paths.push(Value::from(normpath(p)));
            }
        }
    }
    Value::List(Arc::new(paths))
}

/// Repeated `/` collapsed, a trailing `/` removed (but `/` stays `/`).
pub fn normpath(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for c in p.chars() {
        if c == '/' && out.ends_with('/') {
            continue;
        }
        out.push(c);
    }
    if out.len() > 1 && out.ends_with('/') {
        out.pop();
    }
    out
}

/// The exec command: the request body's `command` when it is a non-empty list, else every
/// `command` parameter of the URI, in order, form-decoded.
pub fn command(request: &Value, uri: &str) -> Vec<String> {
    if let Some(Value::List(list)) = field(request, "command")
        && !list.is_empty()
    {
        return list
            .iter()
            .map(|v| match v {
                Value::String(s) => s.to_string(),
                _ => String::new(),
            })
            .collect();
    }
    let Some((_, query)) = uri.split_once('?') else {
        return Vec::new();
    };
    form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.into_owned())
        .collect()
}

/// What `kubectl cp pod:/path ./local` runs: an argument containing `tar`, one containing
/// `cf` that is not `-c`, and a `-` after the latter.
pub fn tar_copy_out(command: &[String]) -> bool {
    if !command.iter().any(|a| a.contains("tar")) {
        return false;
    }
    let Some(cf) = command.iter().position(|a| a.contains("cf") && a != "-c") else {
        return false;
    };
    command[cf + 1..].iter().any(|a| a == "-")
}

/// The `rules` of a Role or ClusterRole body: its entries that are maps, `[]` when the body
/// is not an object or has none.
pub fn rules_of(body: &Value) -> Value {
    match field(body, "rules") {
        Some(Value::List(list)) => Value::List(Arc::new(
            list.iter()
                .filter(|r| matches!(r, Value::Map(_)))
                .cloned()
                .collect(),
        )),
        _ => Value::List(Arc::default()),
    }
}

/// A capability as compared: upper-cased, `CAP_` dropped.
pub fn capability(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    upper
        .strip_prefix("CAP_")
        .map(str::to_string)
        .unwrap_or(upper)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_principals_are_the_control_plane_not_every_service_account() {
        assert!(system_principal("system:kube-controller-manager"));
        assert!(system_principal("system:node:n1"));
        assert!(system_principal(
            "system:serviceaccount:kube-system:replicaset-controller"
        ));
        assert!(system_principal("eks:node-manager"));
        assert!(system_principal("aksService"));
        assert!(!system_principal("system:serviceaccount:default:app"));
        assert!(!system_principal("system:anonymous"));
        assert!(!system_principal(""));
        assert!(!system_principal("alice"));
        assert!(human("alice"));
        assert!(!human("system:serviceaccount:default:app"));
        assert!(!human("masterclient"));
    }

    #[test]
    fn image_repositories_drop_tag_and_digest_but_not_a_port() {
        assert_eq!(
            image_repo("quay.io/calico/node:v3.27.2"),
            "quay.io/calico/node"
        );
        assert_eq!(image_repo("nginx"), "nginx");
        assert_eq!(image_repo("nginx:1.25"), "nginx");
        assert_eq!(image_repo("localhost:5000/app"), "localhost:5000/app");
        assert_eq!(
            image_repo("localhost:5000/app:v1@sha256:ab"),
            "localhost:5000/app"
        );
    }

    #[test]
    fn paths_are_normalized() {
        assert_eq!(normpath("//etc///kubernetes/"), "/etc/kubernetes");
        assert_eq!(normpath("/"), "/");
        assert_eq!(normpath("///"), "/");
    }

    #[test]
    fn commands_come_from_the_uri_form_decoded() {
        let uri = "/api/v1/namespaces/d/pods/p/exec?command=cat&command=%2Fetc%2Fshadow&command=a+b&stdout=true";
        assert_eq!(command(&Value::Null, uri), ["cat", "/etc/shadow", "a b"]);
        assert!(command(&Value::Null, "/api/v1/x").is_empty());
    }

    #[test]
    fn kubectl_cp_out_of_a_pod_is_tar_cf_dash() {
        let v = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert!(tar_copy_out(&v("tar cf - /etc/passwd")));
        assert!(!tar_copy_out(&v("tar -xmf - -C /tmp")));
        assert!(!tar_copy_out(&v("tar cf /tmp/out.tar /etc")));
        assert_eq!(capability("cap_sys_admin"), "SYS_ADMIN");
    }
}
