//! The seed policy (the classic tiered policy our first users run): the level of representative
//! requests, resolved through RequestInfo as the apiserver would.

use kubetrail_model::{Level, Stage};
use kubetrail_policy::requestinfo::resolve;

use super::*;

const SEED: &str = include_str!("../../../../testdata/policy/seed-audit-policy.yaml");

fn http(user: Option<&str>, groups: &[&str], method: &str, url: &str) -> RequestAttributes {
    let i = resolve(method, url).unwrap();
    RequestAttributes {
        user: user.map(str::to_string),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        verb: i.verb,
        resource_request: i.is_resource_request,
        api_group: i.api_group,
        api_version: i.api_version,
        namespace: i.namespace,
        resource: i.resource,
        subresource: i.subresource,
        name: i.name,
        path: i.path,
    }
}

#[test]
fn representative_requests_get_their_levels() {
    let p = policy(SEED);
    let nodes = &["system:nodes", "system:authenticated"][..];
    let none: &[&str] = &[];
    // (what, request, level, rule)
    let cases: Vec<(&str, RequestAttributes, Level, Option<usize>)> = vec![
        (
            "kube-proxy watches endpoints",
            http(
                Some("system:kube-proxy"),
                none,
                "GET",
                "/api/v1/endpoints?watch=true",
            ),
            Level::None,
            Some(0),
        ),
        (
            "kube-proxy watches services",
            http(
                Some("system:kube-proxy"),
                none,
                "GET",
                "/api/v1/watch/services",
            ),
            Level::None,
            Some(0),
        ),
        (
            "kube-proxy lists endpoints",
            http(Some("system:kube-proxy"), none, "GET", "/api/v1/endpoints"),
            Level::Request,
            Some(9),
        ),
        (
            "system:unsecured reads a kube-system configmap",
            http(
                Some("system:unsecured"),
                none,
                "GET",
                "/api/v1/namespaces/kube-system/configmaps/x",
            ),
            Level::None,
            Some(1),
        ),
        (
            "system:unsecured reads a default configmap",
            http(
                Some("system:unsecured"),
                none,
                "GET",
                "/api/v1/namespaces/default/configmaps/x",
            ),
            Level::Metadata,
            Some(8),
        ),
        (
            "legacy kubelet gets its node",
            http(Some("kubelet"), none, "GET", "/api/v1/nodes/n1"),
            Level::None,
            Some(2),
        ),
        (
            "a node gets its node",
            http(Some("system:node:n1"), nodes, "GET", "/api/v1/nodes/n1"),
            Level::None,
            Some(3),
        ),
        (
            "a node patches its status",
            http(
                Some("system:node:n1"),
                nodes,
                "PATCH",
                "/api/v1/nodes/n1/status",
            ),
            Level::RequestResponse,
            Some(10),
        ),
        (
            "controller-manager gets kube-system endpoints",
            http(
                Some("system:kube-controller-manager"),
                none,
                "GET",
                "/api/v1/namespaces/kube-system/endpoints/kube-controller-manager",
            ),
            Level::None,
            Some(4),
        ),
        (
            "controller-manager updates default endpoints",
            http(
                Some("system:kube-controller-manager"),
                none,
                "PUT",
                "/api/v1/namespaces/default/endpoints/web",
            ),
            Level::RequestResponse,
            Some(10),
        ),
        (
            "apiserver gets a namespace",
            http(
                Some("system:apiserver"),
                none,
                "GET",
                "/api/v1/namespaces/default",
            ),
            Level::None,
            Some(5),
        ),
        (
            "GET /healthz",
            http(
                Some("system:anonymous"),
                &["system:unauthenticated"],
                "GET",
                "/healthz",
            ),
            Level::None,
            Some(6),
        ),
        (
            "GET /healthz/etcd",
            http(Some("system:anonymous"), none, "GET", "/healthz/etcd"),
            Level::None,
            Some(6),
        ),
        (
            "GET /version",
            http(Some("alice"), none, "GET", "/version"),
            Level::None,
            Some(6),
        ),
        (
            "GET /version/ is not /version",
            http(Some("alice"), none, "GET", "/version/"),
            Level::Metadata,
            Some(11),
        ),
        (
            "GET /swagger.json",
            http(Some("alice"), none, "GET", "/swagger.json"),
            Level::None,
            Some(6),
        ),
        (
            "a node creates an event",
            http(
                Some("system:node:n1"),
                nodes,
                "POST",
                "/api/v1/namespaces/default/events",
            ),
            Level::None,
            Some(7),
        ),
        (
            "get a secret",
            http(
                Some("alice"),
                none,
                "GET",
                "/api/v1/namespaces/default/secrets/db",
            ),
            Level::Metadata,
            Some(8),
        ),
        (
            "list secrets across namespaces",
            http(Some("alice"), none, "GET", "/api/v1/secrets"),
            Level::Metadata,
            Some(8),
        ),
        (
            "update a configmap",
            http(
                Some("alice"),
                none,
                "PUT",
                "/api/v1/namespaces/default/configmaps/cfg",
            ),
            Level::Metadata,
            Some(8),
        ),
        (
            "create a tokenreview",
            http(
                Some("system:kube-apiserver"),
                none,
                "POST",
                "/apis/authentication.k8s.io/v1/tokenreviews",
            ),
            Level::Metadata,
            Some(8),
        ),
        (
            "list pods",
            http(
                Some("alice"),
                none,
                "GET",
                "/api/v1/namespaces/default/pods",
            ),
            Level::Request,
            Some(9),
        ),
        (
            "watch deployments",
            http(
                Some("alice"),
                none,
                "GET",
                "/apis/apps/v1/deployments?watch=1",
            ),
            Level::Request,
            Some(9),
        ),
        (
            "read pod logs",
            http(
                Some("alice"),
                none,
                "GET",
                "/api/v1/namespaces/default/pods/web/log",
            ),
            Level::Request,
            Some(9),
        ),
        (
            "create a deployment",
            http(
                Some("bob"),
                none,
                "POST",
                "/apis/apps/v1/namespaces/prod/deployments",
            ),
            Level::RequestResponse,
            Some(10),
        ),
        (
            "delete a pod",
            http(
                Some("bob"),
                none,
                "DELETE",
                "/api/v1/namespaces/prod/pods/web-1",
            ),
            Level::RequestResponse,
            Some(10),
        ),
        (
            "exec into a pod",
            http(
                Some("bob"),
                none,
                "POST",
                "/api/v1/namespaces/prod/pods/web-1/exec?command=sh",
            ),
            Level::RequestResponse,
            Some(10),
        ),
        (
            "bind cluster-admin",
            http(
                Some("bob"),
                none,
                "POST",
                "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            ),
            Level::RequestResponse,
            Some(10),
        ),
        (
            "a CRD write",
            http(
                Some("bob"),
                none,
                "POST",
                "/apis/cert-manager.io/v1/namespaces/prod/certificates",
            ),
            Level::Metadata,
            Some(11),
        ),
        (
            "a lease renewal (group not listed)",
            http(
                Some("system:node:n1"),
                nodes,
                "PUT",
                "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1",
            ),
            Level::Metadata,
            Some(11),
        ),
        (
            "events.k8s.io events are not core events",
            http(
                Some("alice"),
                none,
                "POST",
                "/apis/events.k8s.io/v1/namespaces/default/events",
            ),
            Level::Metadata,
            Some(11),
        ),
        (
            "GET /metrics",
            http(Some("prometheus"), none, "GET", "/metrics"),
            Level::Metadata,
            Some(11),
        ),
        (
            "unauthenticated list of pods",
            http(None, none, "GET", "/api/v1/pods"),
            Level::Request,
            Some(9),
        ),
    ];
    assert!(cases.len() >= 20);
    for (what, request, level, rule) in cases {
        let d = p.evaluate(&request.as_attributes());
        assert_eq!((d.level, d.rule), (level, rule), "{what}");
        assert_eq!(
            d.omit_stages.iter().collect::<Vec<_>>(),
            [Stage::RequestReceived],
            "{what}"
        );
        assert!(!d.omit_managed_fields, "{what}");
    }
}

#[test]
fn seed_rules_have_their_lines() {
    let p = policy(SEED);
    let lines: Vec<Option<usize>> = p.rules().iter().map(|r| r.line).collect();
    assert_eq!(lines[0], Some(9));
    assert_eq!(lines[6], Some(51));
    assert_eq!(lines[11], Some(105));
}
