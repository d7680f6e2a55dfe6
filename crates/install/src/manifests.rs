//! What runs kubetrail in a cluster, as Kubernetes objects: the server (a StatefulSet with a
//! volume for the embedded store, or a Deployment of two replicas over ClickHouse) and its
//! Service, the agent as a DaemonSet on control-plane nodes, their ServiceAccounts, and a
//! Secret with the tokens.
//!
//! kubetrail never calls the Kubernetes API, so least privilege is no RBAC rules at all:
//! the ServiceAccounts exist only to carry no token (`automountServiceAccountToken: false`).

use serde_json::{Value, json};

/// Which store the server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// The embedded store, on a PersistentVolumeClaim.
    DuckDb,
    /// A ClickHouse server.
    ClickHouse,
}

/// Settings of the rendered objects.
#[derive(Debug, Clone)]
pub struct ManifestOptions {
    /// Namespace of everything.
    pub namespace: String,
    /// The store.
    pub store: StoreKind,
    /// Cluster name stamped on the agents' events.
    pub cluster: String,
    /// Container image.
    pub image: String,
    /// The apiserver's `--audit-log-path` on control-plane nodes.
    pub log_path: String,
    /// ClickHouse HTTP URL (ClickHouse store).
    pub clickhouse_url: String,
    /// Size of the embedded store's volume.
    pub storage: String,
    /// Tokens: (agent ingest, apiserver webhook ingest, reader).
    pub tokens: [String; 3],
}

const PORT: u16 = 8080;

fn labels(component: &str) -> Value {
    json!({"app.kubernetes.io/name": "kubetrail", "app.kubernetes.io/component": component})
}

fn restricted_container() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "capabilities": {"drop": ["ALL"]},
    })
}

fn server_container(o: &ManifestOptions) -> Value {
    let mut args = vec![
        "serve".to_string(),
        format!("--listen=0.0.0.0:{PORT}"),
        "--tokens-file=/etc/kubetrail/tokens/tokens.yaml".into(),
    ];
    match o.store {
        StoreKind::DuckDb => args.push("--data-dir=/var/lib/kubetrail".into()),
        StoreKind::ClickHouse => {
            args.push("--data-dir=/var/lib/kubetrail".into());
            args.push("--store=clickhouse".into());
            args.push(format!("--clickhouse-url={}", o.clickhouse_url));
            args.push("--clickhouse-database=kubetrail".into());
        }
    }
    let probe = |path: &str, delay: u32| json!({"httpGet": {"path": path, "port": "http"}, "initialDelaySeconds": delay, "periodSeconds": 10});
    json!({
        "name": "kubetrail",
        "image": o.image,
        "args": args,
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "livenessProbe": probe("/healthz", 10),
        "readinessProbe": probe("/readyz", 5),
        "resources": {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            "limits": {"memory": "4Gi"},
        },
        "securityContext": restricted_container(),
        "volumeMounts": [
            {"name": "data", "mountPath": "/var/lib/kubetrail"},
            {"name": "tokens", "mountPath": "/etc/kubetrail/tokens", "readOnly": true},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    })
}

fn pod_security() -> Value {
    json!({
        "runAsNonRoot": true,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "fsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

/// The objects, in the order to apply them.
pub fn objects(o: &ManifestOptions) -> Vec<Value> {
    let ns = &o.namespace;
    let meta = |name: &str, component: &str| json!({"name": name, "namespace": ns, "labels": labels(component)});
    // Serialized, not spliced: no cluster name or token can write another key or entry.
    let tokens_yaml = to_yaml(&json!([
        {"name": "agents", "token": o.tokens[0], "role": "ingest", "cluster": o.cluster},
        {"name": "apiserver-webhook", "token": o.tokens[1], "role": "ingest", "cluster": o.cluster},
        {"name": "reader", "token": o.tokens[2], "role": "read"},
    ]));
    let mut out = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {
            "app.kubernetes.io/name": "kubetrail",
            // The agent reads the apiserver's log files from the host.
            "pod-security.kubernetes.io/enforce": "privileged",
        }}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("kubetrail-server", "server"), "automountServiceAccountToken": false}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("kubetrail-agent", "agent"), "automountServiceAccountToken": false}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta("kubetrail-tokens", "server"), "type": "Opaque",
               "stringData": {"tokens.yaml": tokens_yaml}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta("kubetrail-agent-token", "agent"), "type": "Opaque",
               "stringData": {"token": o.tokens[0]}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("kubetrail", "server"), "spec": {
            "selector": labels("server"),
            "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
        }}),
    ];
    let volumes = |data: Option<Value>| {
        let mut v = vec![
            json!({"name": "tokens", "secret": {"secretName": "kubetrail-tokens", "defaultMode": 0o440}}),
            json!({"name": "tmp", "emptyDir": {}}),
        ];
        if let Some(d) = data {
            v.insert(0, d);
        }
        v
    };
    let pod = |data: Option<Value>| {
        json!({
            "metadata": {"labels": labels("server")},
            "spec": {
                "serviceAccountName": "kubetrail-server",
                "automountServiceAccountToken": false,
                "securityContext": pod_security(),
                "containers": [server_container(o)],
                "volumes": volumes(data),
            },
        })
    };
    out.push(match o.store {
        StoreKind::DuckDb => json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta("kubetrail", "server"),
            "spec": {
                // The embedded store has one writer: one replica.
                "replicas": 1,
                "serviceName": "kubetrail",
                "selector": {"matchLabels": labels("server")},
                "template": pod(None),
                "volumeClaimTemplates": [{
                    "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": o.storage}}},
                }],
            },
        }),
        StoreKind::ClickHouse => json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("kubetrail", "server"),
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels("server")},
                "template": pod(Some(json!({"name": "data", "emptyDir": {}}))),
            },
        }),
    });
    let log_dir = match o.log_path.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => o.log_path[..i].to_string(),
    };
    out.push(json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta("kubetrail-agent", "agent"),
        "spec": {
            "selector": {"matchLabels": labels("agent")},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": labels("agent")},
                "spec": {
                    "serviceAccountName": "kubetrail-agent",
                    "automountServiceAccountToken": false,
                    "nodeSelector": {"node-role.kubernetes.io/control-plane": ""},
                    "tolerations": [
                        {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
                        {"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"},
                    ],
                    "priorityClassName": "system-node-critical",
                    // The apiserver writes its audit log as root, mode 0600: read as its owner.
                    "securityContext": {"runAsUser": 0, "runAsGroup": 0, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "agent",
                        "image": o.image,
                        "args": [
                            "agent",
                            format!("--path={}", o.log_path),
                            format!("--server=http://kubetrail.{ns}.svc:{PORT}"),
                            "--token-file=/etc/kubetrail/token/token",
                            format!("--cluster={}", o.cluster),
                            "--state-dir=/var/lib/kubetrail-agent",
                            "--metrics-listen=127.0.0.1:9102",
                        ],
                        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                        "resources": {
                            "requests": {"cpu": "50m", "memory": "32Mi"},
                            "limits": {"memory": "128Mi"},
                        },
                        "securityContext": restricted_container(),
                        "volumeMounts": [
                            {"name": "audit-log", "mountPath": log_dir, "readOnly": true},
                            {"name": "state", "mountPath": "/var/lib/kubetrail-agent"},
                            {"name": "token", "mountPath": "/etc/kubetrail/token", "readOnly": true},
                        ],
                    }],
                    "volumes": [
                        {"name": "audit-log", "hostPath": {"path": log_dir, "type": "DirectoryOrCreate"}},
                        {"name": "state", "hostPath": {"path": "/var/lib/kubetrail-agent", "type": "DirectoryOrCreate"}},
                        {"name": "token", "secret": {"secretName": "kubetrail-agent-token", "defaultMode": 0o400}},
                    ],
                },
            },
        },
    }));
    out
}

/// The objects as one multi-document YAML stream.
pub fn render(o: &ManifestOptions) -> String {
    let mut text = String::from(
        "# kubetrail: server, agent DaemonSet on control-plane nodes, tokens.\n# Generated by `kubetrail install manifests`. kubetrail calls no Kubernetes API: no RBAC rules.\n",
    );
    for obj in objects(o) {
        text.push_str("---\n");
        text.push_str(&to_yaml(&obj));
    }
    text
}

/// A JSON value as YAML. Every JSON value has a YAML form (strings, numbers, lists and maps
/// with string keys), so this cannot fail; if it ever did, rendering stops rather than write
/// an empty object that `kubectl apply` would take.
fn to_yaml(value: &Value) -> String {
    serde_norway::to_string(value).expect("a JSON value serializes as YAML")
}

/// Checks a cluster name: a DNS-1123 label (lower-case letters, digits and `-`, starting and
/// ending with a letter or digit, at most 63 characters), as Kubernetes names objects, so it
/// is the same word in tokens, kubeconfigs, labels and URLs.
pub fn cluster_name(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(name.to_string())
    } else {
        Err(format!(
            "invalid cluster name {name:?}: expected a DNS-1123 label (lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters), e.g. prod-eu"
        ))
    }
}

/// A random token (from the operating system's generator), 32 hex characters.
pub fn random_token() -> std::io::Result<String> {
    kubetrail_store::text::random_hex(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(store: StoreKind) -> ManifestOptions {
        ManifestOptions {
            namespace: "audit".into(),
            store,
            cluster: "prod".into(),
            image: "ghcr.io/kubetrail/kubetrail:0.1.0".into(),
            log_path: "/var/log/kubernetes/kubernetes.audit".into(),
            clickhouse_url: "http://clickhouse:8123".into(),
            storage: "20Gi".into(),
            tokens: ["a".repeat(32), "b".repeat(32), "c".repeat(32)],
        }
    }

    #[test]
    fn the_embedded_store_runs_as_one_replica_with_a_volume_and_the_agent_on_control_planes() {
        let objs = objects(&options(StoreKind::DuckDb));
        let kinds: Vec<&str> = objs.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "Namespace",
                "ServiceAccount",
                "ServiceAccount",
                "Secret",
                "Secret",
                "Service",
                "StatefulSet",
                "DaemonSet"
            ]
        );
        let sts = &objs[6];
        assert_eq!(sts["spec"]["replicas"], 1);
        assert_eq!(
            sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
            "20Gi"
        );
        let ds = &objs[7]["spec"]["template"]["spec"];
        assert_eq!(
            ds["nodeSelector"]["node-role.kubernetes.io/control-plane"],
            ""
        );
        assert_eq!(ds["volumes"][0]["hostPath"]["path"], "/var/log/kubernetes");
        assert_eq!(ds["containers"][0]["volumeMounts"][0]["readOnly"], true);
        assert_eq!(
            ds["containers"][0]["env"][0]["valueFrom"]["fieldRef"]["fieldPath"],
            "spec.nodeName"
        );
        assert!(
            ds["containers"][0]["args"]
                .as_array()
                .unwrap()
                .contains(&json!("--server=http://kubetrail.audit.svc:8080"))
        );
        for o in &objs {
            if let Some(spec) = o["spec"]["template"]["spec"].as_object() {
                assert_eq!(spec["automountServiceAccountToken"], false);
                let c = &spec["containers"][0]["securityContext"];
                assert_eq!(c["readOnlyRootFilesystem"], true);
                assert_eq!(c["capabilities"]["drop"][0], "ALL");
            }
        }
        let text = render(&options(StoreKind::DuckDb));
        assert_eq!(text.matches("\n---\n").count(), 8);
    }

    /// The tokens file is serialized: whatever the cluster is called, the server reads back
    /// the three tokens, their roles and their clusters, and nothing else.
    #[test]
    fn the_tokens_file_reads_back_whatever_the_cluster_name() {
        for cluster in [
            "prod",
            "prod, role: admin",
            "x}\n- {name: evil, token: t, role: admin",
        ] {
            let o = ManifestOptions {
                cluster: cluster.into(),
                ..options(StoreKind::DuckDb)
            };
            let secret = objects(&o)
                .into_iter()
                .find(|x| x["metadata"]["name"] == "kubetrail-tokens")
                .unwrap();
            let text = secret["stringData"]["tokens.yaml"].as_str().unwrap();
            let entries: Vec<serde_json::Value> = serde_norway::from_str(text).unwrap();
            assert_eq!(entries.len(), 3, "{text}");
            let roles: Vec<&str> = entries
                .iter()
                .map(|e| e["role"].as_str().unwrap())
                .collect();
            assert_eq!(roles, ["ingest", "ingest", "read"], "{text}");
            assert_eq!(entries[0]["cluster"], cluster);
            assert_eq!(entries[0]["token"], "a".repeat(32));
            assert!(entries[2].get("cluster").is_none());
        }
    }

    #[test]
    fn cluster_names_are_dns_labels() {
        for ok in ["prod", "prod-eu-1", "a", &"x".repeat(63)] {
            assert_eq!(cluster_name(ok).as_deref(), Ok(ok));
        }
        for bad in [
            "",
            "Prod",
            "prod eu",
            "prod, role: admin",
            "-prod",
            "prod-",
            "a.b",
            &"x".repeat(64),
        ] {
            let e = cluster_name(bad).unwrap_err();
            assert!(e.contains("DNS-1123"), "{e}");
        }
    }

    #[test]
    fn clickhouse_runs_two_replicas() {
        let objs = objects(&options(StoreKind::ClickHouse));
        let d = objs.iter().find(|o| o["kind"] == "Deployment").unwrap();
        assert_eq!(d["spec"]["replicas"], 2);
        let args = d["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap();
        assert!(args.contains(&json!("--clickhouse-url=http://clickhouse:8123")));
        assert_eq!(random_token().unwrap().len(), 32);
        assert_ne!(random_token().unwrap(), random_token().unwrap());
    }
}
