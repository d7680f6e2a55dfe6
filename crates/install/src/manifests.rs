//! What runs kubetrail in a cluster, as Kubernetes objects: the server (a StatefulSet with a
//! volume for the embedded store, or a Deployment of two replicas over ClickHouse) and its
//! Service, the agent as a DaemonSet on control-plane nodes, their ServiceAccounts, a Secret
//! with the tokens, the TLS certificate agents check the server by (HTTPS by default), a
//! NetworkPolicy that lets the agents reach only the server and DNS, and, when asked,
//! ServiceMonitors for Prometheus.
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
    /// The server's certificate and the CA agents trust; `None`: plain HTTP inside the
    /// cluster (tokens travel in the clear).
    pub tls: Option<crate::tls::ServerTls>,
    /// How long events are kept (`--retention-max-age`), e.g. `90d`; `None`: forever.
    pub retention: Option<String>,
    /// The namespace Prometheus scrapes from: the agents' metrics port admits it.
    pub monitoring_namespace: String,
    /// ServiceMonitors (monitoring.coreos.com/v1) for the server and the agents.
    pub service_monitor: bool,
}

const PORT: u16 = 8080;

/// The agents' metrics port.
const AGENT_METRICS_PORT: u16 = 9102;

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
    if o.tls.is_some() {
        args.push("--tls-cert=/etc/kubetrail/tls/tls.crt".into());
        args.push("--tls-key=/etc/kubetrail/tls/tls.key".into());
    }
    if let Some(age) = &o.retention {
        args.push(format!("--retention-max-age={age}"));
    }
    match o.store {
        StoreKind::DuckDb => args.push("--data-dir=/var/lib/kubetrail".into()),
        StoreKind::ClickHouse => {
            args.push("--data-dir=/var/lib/kubetrail".into());
            args.push("--store=clickhouse".into());
            args.push(format!("--clickhouse-url={}", o.clickhouse_url));
            args.push("--clickhouse-database=kubetrail".into());
        }
    }
    let scheme = if o.tls.is_some() { "HTTPS" } else { "HTTP" };
    let probe = |path: &str, delay: u32| json!({"httpGet": {"path": path, "port": "http", "scheme": scheme}, "initialDelaySeconds": delay, "periodSeconds": 10});
    let mut mounts = vec![
        json!({"name": "data", "mountPath": "/var/lib/kubetrail"}),
        json!({"name": "tokens", "mountPath": "/etc/kubetrail/tokens", "readOnly": true}),
        json!({"name": "tmp", "mountPath": "/tmp"}),
    ];
    if o.tls.is_some() {
        mounts.push(json!({"name": "tls", "mountPath": "/etc/kubetrail/tls", "readOnly": true}));
    }
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
        "volumeMounts": mounts,
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
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta("kubetrail-reader-token", "server"), "type": "Opaque",
               "stringData": {"token": o.tokens[2]}}),
    ];
    if let Some(tls) = &o.tls {
        out.push(json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta("kubetrail-tls", "server"),
            "type": "kubernetes.io/tls", "stringData": {"tls.crt": tls.cert_pem, "tls.key": tls.key_pem}}));
        // The CA's certificate is not secret: agents and Prometheus read it from a ConfigMap.
        out.push(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("kubetrail-ca", "server"),
            "data": {"ca.crt": tls.ca_pem}}));
    }
    out.push(json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("kubetrail", "server"), "spec": {
        "selector": labels("server"),
        "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
    }}));
    out.push(json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("kubetrail-agent-metrics", "agent"), "spec": {
        "selector": labels("agent"),
        "clusterIP": "None",
        "ports": [{"name": "metrics", "port": AGENT_METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"}],
    }}));
    let volumes = |data: Option<Value>| {
        let mut v = vec![
            json!({"name": "tokens", "secret": {"secretName": "kubetrail-tokens", "defaultMode": 0o440}}),
            json!({"name": "tmp", "emptyDir": {}}),
        ];
        if o.tls.is_some() {
            v.push(json!({"name": "tls", "secret": {"secretName": "kubetrail-tls", "defaultMode": 0o440}}));
        }
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
    let scheme = if o.tls.is_some() { "https" } else { "http" };
    let mut agent_args = vec![
        "agent".to_string(),
        format!("--path={}", o.log_path),
        format!("--server={scheme}://kubetrail.{ns}.svc:{PORT}"),
        "--token-file=/etc/kubetrail/token/token".into(),
        format!("--cluster={}", o.cluster),
        "--state-dir=/var/lib/kubetrail-agent".into(),
        // On the pod's address, for Prometheus; the NetworkPolicy admits only the monitoring
        // namespace to it.
        format!("--metrics-listen=0.0.0.0:{AGENT_METRICS_PORT}"),
    ];
    let mut agent_mounts = vec![
        json!({"name": "audit-log", "mountPath": log_dir, "readOnly": true}),
        json!({"name": "state", "mountPath": "/var/lib/kubetrail-agent"}),
        json!({"name": "token", "mountPath": "/etc/kubetrail/token", "readOnly": true}),
    ];
    let mut agent_volumes = vec![
        json!({"name": "audit-log", "hostPath": {"path": log_dir, "type": "DirectoryOrCreate"}}),
        json!({"name": "state", "hostPath": {"path": "/var/lib/kubetrail-agent", "type": "DirectoryOrCreate"}}),
        json!({"name": "token", "secret": {"secretName": "kubetrail-agent-token", "defaultMode": 0o400}}),
    ];
    if o.tls.is_some() {
        agent_args.push("--ca-file=/etc/kubetrail/ca/ca.crt".into());
        agent_mounts
            .push(json!({"name": "ca", "mountPath": "/etc/kubetrail/ca", "readOnly": true}));
        agent_volumes.push(json!({"name": "ca", "configMap": {"name": "kubetrail-ca"}}));
    }
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
                        "args": agent_args,
                        "ports": [{"name": "metrics", "containerPort": AGENT_METRICS_PORT, "protocol": "TCP"}],
                        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                        "resources": {
                            "requests": {"cpu": "50m", "memory": "32Mi"},
                            "limits": {"memory": "128Mi"},
                        },
                        "securityContext": restricted_container(),
                        "volumeMounts": agent_mounts,
                    }],
                    "volumes": agent_volumes,
                },
            },
        },
    }));
    out.push(agent_network_policy(o));
    if o.service_monitor {
        out.extend(service_monitors(o));
    }
    out
}

/// The agents may reach the server's port and DNS, and nothing else; only the monitoring
/// namespace may reach their metrics port. An agent runs as root on control-plane nodes with
/// the audit log mounted: what it can talk to is kept to what it needs.
fn agent_network_policy(o: &ManifestOptions) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "kubetrail-agent", "namespace": o.namespace, "labels": labels("agent")},
        "spec": {
            "podSelector": {"matchLabels": labels("agent")},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{
                "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": o.monitoring_namespace}}}],
                "ports": [{"port": AGENT_METRICS_PORT, "protocol": "TCP"}],
            }],
            "egress": [
                {"to": [{"podSelector": {"matchLabels": labels("server")}}],
                 "ports": [{"port": PORT, "protocol": "TCP"}]},
                // DNS wherever the resolver is (a kube-dns pod, or NodeLocal DNSCache on the
                // node's link-local address, which no selector names).
                {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
            ],
        },
    })
}

/// ServiceMonitors: the server's /metrics with the reader token (over HTTPS, checked against
/// the installation's CA), and the agents' metrics port.
fn service_monitors(o: &ManifestOptions) -> Vec<Value> {
    let mut server_endpoint = json!({
        "port": "http", "path": "/metrics", "interval": "30s",
        "authorization": {"type": "Bearer", "credentials": {"name": "kubetrail-reader-token", "key": "token"}},
    });
    if o.tls.is_some() {
        server_endpoint["scheme"] = "https".into();
        server_endpoint["tlsConfig"] = json!({
            "ca": {"configMap": {"name": "kubetrail-ca", "key": "ca.crt"}},
            "serverName": format!("kubetrail.{}.svc", o.namespace),
        });
    }
    let monitor = |name: &str, component: &str, endpoint: Value| {
        json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
            "metadata": {"name": name, "namespace": o.namespace, "labels": labels(component)},
            "spec": {
                "selector": {"matchLabels": labels(component)},
                "namespaceSelector": {"matchNames": [o.namespace]},
                "endpoints": [endpoint],
            },
        })
    };
    vec![
        monitor("kubetrail", "server", server_endpoint),
        monitor(
            "kubetrail-agent",
            "agent",
            json!({"port": "metrics", "path": "/metrics", "interval": "30s"}),
        ),
    ]
}

/// The objects as one multi-document YAML stream.
pub fn render(o: &ManifestOptions) -> String {
    let mut text = String::from(
        "# kubetrail: server, agent DaemonSet on control-plane nodes, tokens, TLS certificate.\n# Generated by `kubetrail install manifests`. kubetrail calls no Kubernetes API: no RBAC rules.\n# It holds tokens and the server's private key: keep it as secret as they are.\n",
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
            tls: None,
            retention: Some("90d".into()),
            monitoring_namespace: "monitoring".into(),
            service_monitor: false,
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
                "Secret",
                "Service",
                "Service",
                "StatefulSet",
                "DaemonSet",
                "NetworkPolicy"
            ]
        );
        let sts = objs.iter().find(|o| o["kind"] == "StatefulSet").unwrap();
        assert_eq!(sts["spec"]["replicas"], 1);
        assert!(
            sts["spec"]["template"]["spec"]["containers"][0]["args"]
                .as_array()
                .unwrap()
                .contains(&json!("--retention-max-age=90d"))
        );
        assert_eq!(
            sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
            "20Gi"
        );
        let ds =
            &objs.iter().find(|o| o["kind"] == "DaemonSet").unwrap()["spec"]["template"]["spec"];
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
        assert_eq!(text.matches("\n---\n").count(), 11);
    }

    /// With TLS (the CLI's default) the server serves HTTPS from the Secret, its probes say
    /// so, and the agents check it against the CA's ConfigMap; ServiceMonitors use the reader
    /// token and the same CA.
    #[test]
    fn with_tls_agents_reach_the_server_over_https_checked_by_the_ca() {
        let tls = crate::tls::generate(crate::tls::service_names("kubetrail", "audit")).unwrap();
        let o = ManifestOptions {
            tls: Some(tls.clone()),
            service_monitor: true,
            ..options(StoreKind::DuckDb)
        };
        let objs = objects(&o);
        let find = |kind: &str, name: &str| {
            objs.iter()
                .find(|x| x["kind"] == kind && x["metadata"]["name"] == name)
                .unwrap_or_else(|| panic!("no {kind} {name}"))
        };
        assert_eq!(find("Secret", "kubetrail-tls")["type"], "kubernetes.io/tls");
        assert_eq!(
            find("Secret", "kubetrail-tls")["stringData"]["tls.key"],
            tls.key_pem.as_str()
        );
        // The CA is public; its key is nowhere.
        assert_eq!(
            find("ConfigMap", "kubetrail-ca")["data"]["ca.crt"],
            tls.ca_pem.as_str()
        );
        let server = &find("StatefulSet", "kubetrail")["spec"]["template"]["spec"]["containers"][0];
        let args = server["args"].as_array().unwrap();
        assert!(args.contains(&json!("--tls-cert=/etc/kubetrail/tls/tls.crt")));
        assert_eq!(server["readinessProbe"]["httpGet"]["scheme"], "HTTPS");
        let agent =
            &find("DaemonSet", "kubetrail-agent")["spec"]["template"]["spec"]["containers"][0];
        let args = agent["args"].as_array().unwrap();
        assert!(args.contains(&json!("--server=https://kubetrail.audit.svc:8080")));
        assert!(args.contains(&json!("--ca-file=/etc/kubetrail/ca/ca.crt")));
        assert!(args.contains(&json!("--metrics-listen=0.0.0.0:9102")));
        let np = &find("NetworkPolicy", "kubetrail-agent")["spec"];
        assert_eq!(np["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(np["egress"][0]["ports"][0]["port"], 8080);
        assert_eq!(np["egress"][1]["ports"][0]["port"], 53);
        assert!(np["egress"][1].get("to").is_none(), "DNS wherever it is");
        assert_eq!(
            np["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
            "monitoring"
        );
        let sm = &find("ServiceMonitor", "kubetrail")["spec"]["endpoints"][0];
        assert_eq!(sm["scheme"], "https");
        assert_eq!(
            sm["authorization"]["credentials"]["name"],
            "kubetrail-reader-token"
        );
        // The PEM texts survive the YAML: read back, the Secret holds the same certificate.
        use serde::Deserialize;
        let docs: Vec<Value> = serde_norway::Deserializer::from_str(&render(&o))
            .map(|d| Value::deserialize(d).unwrap())
            .collect();
        let secret = docs
            .iter()
            .find(|d| d["metadata"]["name"] == "kubetrail-tls")
            .unwrap();
        assert_eq!(secret["stringData"]["tls.crt"], tls.cert_pem.as_str());
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
