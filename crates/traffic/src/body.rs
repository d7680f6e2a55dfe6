//! Request and response bodies of realistic shape and size, and response statuses.

use serde_json::{Value, json};

use crate::rng::Pcg32;

/// What a body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    Lease,
    Node,
    Patch,
    Event,
    Binding,
    ReplicaSet,
    EndpointSlice,
    Deployment,
    ConfigMap,
    Secret,
    RoleBinding,
    ClusterRoleBinding,
    Certificate,
    TokenReview,
    Status,
}

fn meta(name: &str, ns: &str, rng: &mut Pcg32) -> Value {
    let mut m = json!({
        "name": name,
        "uid": rng.uuid(),
        "resourceVersion": (1_000_000 + rng.below(9_000_000)).to_string(),
        "creationTimestamp": "2024-04-02T08:15:00Z",
        "labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "shop"},
    });
    if !ns.is_empty() {
        m["namespace"] = json!(ns);
    }
    m
}

/// A body of `kind` for object `name` in `ns`.
pub(crate) fn object(kind: Option<BodyKind>, name: &str, ns: &str, rng: &mut Pcg32) -> Value {
    let Some(kind) = kind else { return Value::Null };
    match kind {
        BodyKind::Lease => {
            json!({"kind": "Lease", "apiVersion": "coordination.k8s.io/v1", "metadata": meta(name, ns, rng),
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": "2024-05-01T10:20:30.123456Z"}})
        }
        BodyKind::Patch => {
            json!({"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2024-05-01T10:20:30Z"}},
            "status": {"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2024-05-01T10:20:30Z"}]}})
        }
        BodyKind::Node => {
            json!({"kind": "Node", "apiVersion": "v1", "metadata": meta(name, "", rng),
            "status": {"capacity": {"cpu": "8", "memory": "32780444Ki", "pods": "110"},
                "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "DiskPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                "nodeInfo": {"kubeletVersion": "v1.30.4", "containerRuntimeVersion": "containerd://1.7.20", "osImage": "Amazon Linux 2023"}}})
        }
        BodyKind::Event => {
            json!({"kind": "Event", "apiVersion": "v1", "metadata": {"name": format!("{name}.17c9d2b1a6e8f4c3"), "namespace": ns},
            "involvedObject": {"kind": "Pod", "namespace": ns, "name": name}, "reason": "Pulled", "message": "Container image \"registry.example.com/shop/api:v2.14.3\" already present on machine",
            "type": "Normal", "count": 1})
        }
        BodyKind::Binding => {
            json!({"kind": "Binding", "apiVersion": "v1", "metadata": {"name": name, "namespace": ns}, "target": {"kind": "Node", "name": "ip-10-0-1-23.ec2.internal"}})
        }
        BodyKind::ReplicaSet => {
            json!({"kind": "ReplicaSet", "apiVersion": "apps/v1", "metadata": meta(name, ns, rng),
            "spec": {"replicas": 3}, "status": {"replicas": 3, "readyReplicas": 3, "availableReplicas": 3, "observedGeneration": 12}})
        }
        BodyKind::EndpointSlice => {
            json!({"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1", "metadata": meta(name, ns, rng), "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.1.4.17"], "conditions": {"ready": true}}, {"addresses": ["10.1.7.3"], "conditions": {"ready": true}}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]})
        }
        BodyKind::Deployment => {
            let container = json!({"name": "app", "image": format!("registry.example.com/shop/{name}:v2.14.{}", rng.below(20)),
                "ports": [{"containerPort": 8080, "name": "http"}],
                "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "DB_HOST", "value": "postgres.data.svc"}, {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": format!("{name}-credentials"), "key": "password"}}}],
                "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 5}});
            json!({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": meta(name, ns, rng),
                "spec": {"replicas": 3, "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
                    "template": {"metadata": {"labels": {"app.kubernetes.io/name": name}}, "spec": {"serviceAccountName": name, "containers": [container]}}},
                "status": {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "observedGeneration": 41}})
        }
        BodyKind::ConfigMap => {
            json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": meta(name, ns, rng),
            "data": {"application.yaml": "server:\n  port: 8080\nfeatures:\n  checkout-v2: true\n  search-ranking: experimental\ncache:\n  ttl: 300s\n"}})
        }
        BodyKind::Secret => {
            json!({"kind": "Secret", "apiVersion": "v1", "metadata": meta(name, ns, rng), "type": "Opaque",
            "data": {"username": "c2hvcA==", "password": "czNjcjN0LXBhc3N3b3JkLWRvLW5vdC1sb2c="}})
        }
        BodyKind::RoleBinding => {
            json!({"kind": "RoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": meta(name, ns, rng),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
            "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "dev"}]})
        }
        BodyKind::ClusterRoleBinding => {
            json!({"kind": "ClusterRoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": meta(name, "", rng),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "erin@example.com"}]})
        }
        BodyKind::Certificate => {
            json!({"kind": "Certificate", "apiVersion": "cert-manager.io/v1", "metadata": meta(name, ns, rng),
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}], "notAfter": "2024-07-30T08:15:00Z", "revision": 7}})
        }
        BodyKind::TokenReview => {
            json!({"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1", "metadata": {"creationTimestamp": null},
            "spec": {"token": "eyJhbGciOiJSUzI1NiIsImtpZCI6IkRFTU8ifQ.REDACTED"}})
        }
        BodyKind::Status => {
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": {"name": name, "group": "apps", "kind": "deployments"}})
        }
    }
}

/// `responseStatus` for a code.
pub(crate) fn status(code: u16, resource: &str, name: &str, user: &str) -> Value {
    let (reason, message) = match code {
        401 => ("Unauthorized", "Unauthorized".to_string()),
        403 => (
            "Forbidden",
            format!(
                "{resource} is forbidden: User \"{user}\" cannot list resource \"{resource}\" in API group \"\" at the cluster scope"
            ),
        ),
        404 => ("NotFound", format!("{resource} \"{name}\" not found")),
        409 => (
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
        ),
        _ => return json!({"metadata": {}, "code": code}),
    };
    json!({"metadata": {}, "status": "Failure", "message": message, "reason": reason, "details": {"name": name, "kind": resource}, "code": code})
}
