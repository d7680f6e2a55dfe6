//! kubeadm regenerates the apiserver's static-pod manifest from its ClusterConfiguration on
//! `kubeadm upgrade` (and `kubeadm init phase control-plane`), dropping flags and volumes that
//! were only edited into the manifest. What an install adds is therefore also written as a
//! ClusterConfiguration fragment to merge into `kube-system/kubeadm-config`: the same flags as
//! `apiServer.extraArgs`, the same host paths as `apiServer.extraVolumes`.
//!
//! kubeadm's `v1beta3` (until 1.30) writes `extraArgs` as a map; `v1beta4` (1.31 on) as a list of
//! `{name, value}`.

use kubetrail_policy::KubeVersion;
use serde_json::{Value, json};

use crate::apiserver::AuditSettings;

/// The annotation kubeadm puts on the static pods it writes.
pub const KUBEADM_ANNOTATION: &str =
    "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint";

/// Whether a kube-apiserver manifest was written by kubeadm.
pub fn is_kubeadm_manifest(manifest: &str) -> bool {
    manifest.contains(KUBEADM_ANNOTATION)
}

/// The endpoint kubeadm recorded for the apiserver (`10.0.0.10:6443`), from its annotation.
pub fn advertised_endpoint(manifest: &str) -> Option<String> {
    manifest.lines().find_map(|l| {
        let rest = l
            .trim()
            .strip_prefix(KUBEADM_ANNOTATION)?
            .strip_prefix(':')?;
        let v = rest.trim().trim_matches(|c| c == '"' || c == '\'');
        (!v.is_empty()).then(|| v.to_string())
    })
}

/// The first kubeadm release whose configuration API is `v1beta4`.
const V1BETA4_FROM: u32 = 31;

/// The ClusterConfiguration fragment for `settings`, for kubeadm `version` (`None`: unknown,
/// written as `v1beta3`, which kubeadm 1.31 on still reads and `kubeadm config migrate`
/// converts). Returns the YAML text, with a comment saying how to apply it.
pub fn cluster_configuration_patch(
    settings: &AuditSettings,
    version: Option<KubeVersion>,
) -> String {
    let v1beta4 = version.is_some_and(|v| v.minor >= V1BETA4_FROM);
    let flags = settings.flags();
    let extra_args: Value = if v1beta4 {
        flags
            .iter()
            .map(|(k, v)| json!({"name": k.trim_start_matches("--"), "value": v}))
            .collect()
    } else {
        flags
            .iter()
            .map(|(k, v)| (k.trim_start_matches("--").to_string(), json!(v)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let volumes: Vec<Value> = settings
        .mounts()
        .iter()
        .map(|m| {
            json!({
                "name": m.name,
                "hostPath": m.path,
                "mountPath": m.path,
                "readOnly": m.read_only,
                "pathType": m.host_type,
            })
        })
        .collect();
    let doc = json!({
        "apiVersion": if v1beta4 { "kubeadm.k8s.io/v1beta4" } else { "kubeadm.k8s.io/v1beta3" },
        "kind": "ClusterConfiguration",
        "apiServer": {"extraArgs": extra_args, "extraVolumes": volumes},
    });
    let yaml = serde_norway::to_string(&doc).expect("a JSON value serializes as YAML");
    format!(
        "# kubetrail: the audit settings `kubetrail install apiserver` put in the kube-apiserver\n\
         # manifest, as kubeadm ClusterConfiguration. Merge apiServer.extraArgs and\n\
         # apiServer.extraVolumes into the ClusterConfiguration of the kube-system/kubeadm-config\n\
         # ConfigMap (kubectl -n kube-system edit configmap kubeadm-config), keeping everything\n\
         # else in it: kubeadm upgrade regenerates the manifest from there. This is a fragment,\n\
         # not a whole configuration: do not pass it to kubeadm as one.\n{yaml}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::LogBackend;

    fn settings() -> AuditSettings {
        AuditSettings {
            policy_path: "/etc/kubernetes/audit-policy.yaml".into(),
            log: Some(LogBackend {
                path: "/var/log/kubernetes/kubernetes.audit".into(),
                max_age: 30,
                max_backup: 10,
                max_size: 100,
                compress: false,
            }),
            webhook_config: None,
        }
    }

    #[test]
    fn the_patch_speaks_the_configuration_api_of_the_release() {
        let old: Value = serde_norway::from_str(&cluster_configuration_patch(
            &settings(),
            Some(KubeVersion::new(29)),
        ))
        .unwrap();
        assert_eq!(old["apiVersion"], "kubeadm.k8s.io/v1beta3");
        assert_eq!(
            old["apiServer"]["extraArgs"]["audit-log-path"],
            "/var/log/kubernetes/kubernetes.audit"
        );
        assert_eq!(old["apiServer"]["extraArgs"]["audit-log-maxage"], "30");
        let vols = old["apiServer"]["extraVolumes"].as_array().unwrap();
        assert_eq!(vols.len(), 2);
        assert_eq!(vols[0]["pathType"], "FileOrCreate");
        assert_eq!(vols[1]["hostPath"], "/var/log/kubernetes");
        assert_eq!(vols[1]["readOnly"], false);

        let new: Value = serde_norway::from_str(&cluster_configuration_patch(
            &settings(),
            Some(KubeVersion::new(31)),
        ))
        .unwrap();
        assert_eq!(new["apiVersion"], "kubeadm.k8s.io/v1beta4");
        let args = new["apiServer"]["extraArgs"].as_array().unwrap();
        assert!(args.contains(
            &json!({"name": "audit-policy-file", "value": "/etc/kubernetes/audit-policy.yaml"})
        ));
    }

    #[test]
    fn kubeadm_manifests_are_told_by_their_annotation() {
        let m = "metadata:\n  annotations:\n    kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint: 10.0.0.10:6443\n";
        assert!(is_kubeadm_manifest(m));
        assert_eq!(advertised_endpoint(m).as_deref(), Some("10.0.0.10:6443"));
        assert!(!is_kubeadm_manifest("kind: Pod\n"));
        assert_eq!(advertised_endpoint("kind: Pod\n"), None);
    }
}
