//! A deterministic mix of the requests a busy cluster's apiserver sees, as policy attributes:
//! control-plane watches and heartbeats, health probes, workloads and users. Benchmarks and
//! tests evaluate policies over it.

use crate::checker::RequestAttributes;

/// One kind of request in the mix and its weight.
struct Kind {
    weight: u32,
    make: fn(u32) -> RequestAttributes,
}

fn resource(
    user: &str,
    groups: &[&str],
    verb: &str,
    group: &str,
    resource: &str,
    namespace: &str,
    name: &str,
) -> RequestAttributes {
    let (res, sub) = resource.split_once('/').unwrap_or((resource, ""));
    RequestAttributes {
        user: Some(user.to_string()),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        verb: verb.to_string(),
        resource_request: true,
        api_group: group.to_string(),
        api_version: "v1".to_string(),
        namespace: namespace.to_string(),
        resource: res.to_string(),
        subresource: sub.to_string(),
        name: name.to_string(),
        path: String::new(),
    }
}

fn non_resource(user: Option<&str>, groups: &[&str], verb: &str, path: &str) -> RequestAttributes {
    RequestAttributes {
        user: user.map(str::to_string),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        verb: verb.to_string(),
        path: path.to_string(),
        ..RequestAttributes::default()
    }
}

const NODES: &[&str] = &["system:nodes", "system:authenticated"];
const SA: &[&str] = &[
    "system:serviceaccounts",
    "system:serviceaccounts:kube-system",
    "system:authenticated",
];
const DEV: &[&str] = &["dev", "system:authenticated"];

const KINDS: &[Kind] = &[
    Kind {
        weight: 12,
        make: |i| {
            resource(
                &format!("system:node:node-{}", i % 50),
                NODES,
                "update",
                "coordination.k8s.io",
                "leases",
                "kube-node-lease",
                &format!("node-{}", i % 50),
            )
        },
    },
    Kind {
        weight: 10,
        make: |i| {
            resource(
                &format!("system:node:node-{}", i % 50),
                NODES,
                "get",
                "",
                "nodes",
                "",
                &format!("node-{}", i % 50),
            )
        },
    },
    Kind {
        weight: 6,
        make: |i| {
            resource(
                &format!("system:node:node-{}", i % 50),
                NODES,
                "patch",
                "",
                "nodes/status",
                "",
                &format!("node-{}", i % 50),
            )
        },
    },
    Kind {
        weight: 8,
        make: |_| {
            resource(
                "system:kube-proxy",
                &["system:authenticated"],
                "watch",
                "",
                "endpoints",
                "",
                "",
            )
        },
    },
    Kind {
        weight: 4,
        make: |_| {
            resource(
                "system:kube-proxy",
                &["system:authenticated"],
                "watch",
                "discovery.k8s.io",
                "endpointslices",
                "",
                "",
            )
        },
    },
    Kind {
        weight: 8,
        make: |_| {
            non_resource(
                Some("system:anonymous"),
                &["system:unauthenticated"],
                "get",
                "/healthz",
            )
        },
    },
    Kind {
        weight: 4,
        make: |_| {
            non_resource(
                Some("system:serviceaccount:monitoring:prometheus"),
                SA,
                "get",
                "/metrics",
            )
        },
    },
    Kind {
        weight: 2,
        make: |_| {
            non_resource(
                Some("kubernetes-admin"),
                &["system:masters"],
                "get",
                "/version",
            )
        },
    },
    Kind {
        weight: 2,
        make: |_| {
            non_resource(
                Some("kubernetes-admin"),
                &["system:masters"],
                "get",
                "/apis/apps/v1",
            )
        },
    },
    Kind {
        weight: 6,
        make: |_| {
            resource(
                "system:kube-controller-manager",
                &["system:authenticated"],
                "get",
                "",
                "endpoints",
                "kube-system",
                "kube-controller-manager",
            )
        },
    },
    Kind {
        weight: 4,
        make: |_| {
            resource(
                "system:kube-scheduler",
                &["system:authenticated"],
                "update",
                "coordination.k8s.io",
                "leases",
                "kube-system",
                "kube-scheduler",
            )
        },
    },
    Kind {
        weight: 6,
        make: |i| {
            resource(
                &format!("system:node:node-{}", i % 50),
                NODES,
                "create",
                "",
                "events",
                "default",
                "",
            )
        },
    },
    Kind {
        weight: 5,
        make: |i| {
            resource(
                "system:serviceaccount:kube-system:replicaset-controller",
                SA,
                "update",
                "apps",
                "replicasets/status",
                "prod",
                &format!("web-{}", i % 20),
            )
        },
    },
    Kind {
        weight: 5,
        make: |_| {
            resource(
                "system:serviceaccount:kube-system:deployment-controller",
                SA,
                "list",
                "apps",
                "deployments",
                "",
                "",
            )
        },
    },
    Kind {
        weight: 4,
        make: |i| {
            resource(
                &format!("system:node:node-{}", i % 50),
                NODES,
                "get",
                "",
                "secrets",
                "prod",
                &format!("db-credentials-{}", i % 5),
            )
        },
    },
    Kind {
        weight: 3,
        make: |i| {
            resource(
                &format!("system:node:node-{}", i % 50),
                NODES,
                "get",
                "",
                "configmaps",
                "prod",
                "app-config",
            )
        },
    },
    Kind {
        weight: 3,
        make: |_| resource("alice", DEV, "list", "", "pods", "prod", ""),
    },
    Kind {
        weight: 2,
        make: |i| {
            resource(
                "alice",
                DEV,
                "get",
                "",
                "pods/log",
                "prod",
                &format!("web-{}", i % 20),
            )
        },
    },
    Kind {
        weight: 1,
        make: |i| {
            resource(
                "alice",
                DEV,
                "create",
                "",
                "pods/exec",
                "prod",
                &format!("web-{}", i % 20),
            )
        },
    },
    Kind {
        weight: 1,
        make: |_| resource("bob", DEV, "create", "apps", "deployments", "prod", ""),
    },
    Kind {
        weight: 1,
        make: |i| {
            resource(
                "bob",
                DEV,
                "patch",
                "apps",
                "deployments",
                "prod",
                &format!("web-{}", i % 3),
            )
        },
    },
    Kind {
        weight: 1,
        make: |i| {
            resource(
                "bob",
                DEV,
                "delete",
                "",
                "pods",
                "prod",
                &format!("web-{}", i % 20),
            )
        },
    },
    Kind {
        weight: 1,
        make: |_| {
            resource(
                "kubernetes-admin",
                &["system:masters"],
                "create",
                "rbac.authorization.k8s.io",
                "clusterrolebindings",
                "",
                "",
            )
        },
    },
    Kind {
        weight: 2,
        make: |i| {
            resource(
                "system:serviceaccount:cert-manager:cert-manager",
                SA,
                "update",
                "cert-manager.io",
                "certificates/status",
                "prod",
                &format!("tls-{}", i % 4),
            )
        },
    },
    Kind {
        weight: 2,
        make: |_| {
            resource(
                "system:serviceaccount:kube-system:generic-garbage-collector",
                SA,
                "watch",
                "apiextensions.k8s.io",
                "customresourcedefinitions",
                "",
                "",
            )
        },
    },
    Kind {
        weight: 1,
        make: |_| {
            resource(
                "system:serviceaccount:kube-system:token-reviewer",
                SA,
                "create",
                "authentication.k8s.io",
                "tokenreviews",
                "",
                "",
            )
        },
    },
];

/// `n` requests drawn from the mix with a fixed seed: the same list every time.
pub fn realistic_mix(n: usize) -> Vec<RequestAttributes> {
    let total: u32 = KINDS.iter().map(|k| k.weight).sum();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|i| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let mut pick = ((state >> 33) % u64::from(total)) as u32;
            let kind = KINDS
                .iter()
                .find(|k| {
                    if pick < k.weight {
                        true
                    } else {
                        pick -= k.weight;
                        false
                    }
                })
                .expect("pick is below the total weight");
            (kind.make)(i as u32)
        })
        .collect()
}
