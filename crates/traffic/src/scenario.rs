//! The mix of requests: who sends what, how often. Weights are per mille of requests, set to
//! resemble a busy production cluster where system components make most of the calls.

use crate::body::BodyKind;
use crate::rng::Pcg32;

/// One request to generate.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub user: String,
    pub groups: Vec<String>,
    pub user_agent: &'static str,
    pub source_ip: String,
    pub method: &'static str,
    pub url: String,
    pub code: u16,
    pub body: Option<BodyKind>,
    pub response: Option<BodyKind>,
    pub body_name: Option<String>,
    pub latency_ms: u32,
    pub impersonate: Option<String>,
    pub binding: &'static str,
}

const NAMESPACES: [&str; 6] = ["prod", "staging", "payments", "web", "data", "monitoring"];
const APPS: [&str; 8] = [
    "api", "web", "worker", "cart", "checkout", "search", "ledger", "gateway",
];
const HUMANS: [&str; 5] = [
    "alice@example.com",
    "bob@example.com",
    "carol@example.com",
    "dave@example.com",
    "erin@example.com",
];

struct Ctx<'a> {
    rng: &'a mut Pcg32,
    cluster: u32,
}

impl Ctx<'_> {
    fn pick<'s>(&mut self, items: &[&'s str]) -> &'s str {
        items[self.rng.below(items.len() as u32) as usize]
    }
    fn node(&mut self) -> String {
        format!(
            "ip-10-{}-{}-{}.ec2.internal",
            self.cluster,
            self.rng.below(4),
            10 + self.rng.below(40)
        )
    }
    fn node_ip(&mut self) -> String {
        format!(
            "10.{}.{}.{}",
            self.cluster,
            self.rng.below(4),
            10 + self.rng.below(40)
        )
    }
    fn human_ip(&mut self) -> String {
        format!("192.168.{}.{}", self.rng.below(8), 2 + self.rng.below(200))
    }
    fn ns(&mut self) -> &'static str {
        self.pick(&NAMESPACES)
    }
    fn app(&mut self) -> &'static str {
        self.pick(&APPS)
    }
    fn pod(&mut self) -> String {
        let app = self.app();
        format!(
            "{app}-{:08x}-{:05x}",
            self.rng.next_u32() & 0x7fff_ffff,
            self.rng.below(0xfffff)
        )
    }
}

fn req(
    user: String,
    groups: &[&str],
    ua: &'static str,
    ip: String,
    method: &'static str,
    url: String,
) -> Request {
    Request {
        user,
        groups: groups.iter().map(|g| g.to_string()).collect(),
        user_agent: ua,
        source_ip: ip,
        method,
        url,
        code: 200,
        body: None,
        response: None,
        body_name: None,
        latency_ms: 3,
        impersonate: None,
        binding: "system:basic-user",
    }
}

const NODE_GROUPS: &[&str] = &["system:nodes", "system:authenticated"];
const SA_GROUPS: &[&str] = &[
    "system:serviceaccounts",
    "system:serviceaccounts:kube-system",
    "system:authenticated",
];
const KUBELET_UA: &str = "kubelet/v1.30.4 (linux/amd64) kubernetes/9ac2d91";
const KUBECTL_UA: &str = "kubectl/v1.30.2 (darwin/arm64) kubernetes/3968350";
const KCM_UA: &str =
    "kube-controller-manager/v1.30.4 (linux/amd64) kubernetes/9ac2d91/leader-election";

type Make = fn(&mut Ctx<'_>) -> Request;

const SCENARIOS: &[(u32, Make)] = &[
    (190, |c| {
        let node = c.node();
        let mut r = req(
            format!("system:node:{node}"),
            NODE_GROUPS,
            KUBELET_UA,
            c.node_ip(),
            "PUT",
            format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}"),
        );
        r.body = Some(BodyKind::Lease);
        r.binding = "system:node";
        r
    }),
    (80, |c| {
        let node = c.node();
        let mut r = req(
            format!("system:node:{node}"),
            NODE_GROUPS,
            KUBELET_UA,
            c.node_ip(),
            "PATCH",
            format!("/api/v1/nodes/{node}/status?timeout=10s"),
        );
        r.body = Some(BodyKind::Patch);
        r.response = Some(BodyKind::Node);
        r.latency_ms = 8;
        r
    }),
    (40, |c| {
        let node = c.node();
        req(
            format!("system:node:{node}"),
            NODE_GROUPS,
            KUBELET_UA,
            c.node_ip(),
            "GET",
            format!("/api/v1/nodes/{node}?resourceVersion=0"),
        )
    }),
    (40, |c| {
        let node = c.node();
        let mut r = req(
            format!("system:node:{node}"),
            NODE_GROUPS,
            KUBELET_UA,
            c.node_ip(),
            "GET",
            format!(
                "/api/v1/pods?allowWatchBookmarks=true&fieldSelector=spec.nodeName%3D{node}&resourceVersion=1&timeoutSeconds=436&watch=true"
            ),
        );
        r.latency_ms = 436_000;
        r
    }),
    (40, |c| {
        let node = c.node();
        let (ns, app) = (c.ns(), c.app());
        req(
            format!("system:node:{node}"),
            NODE_GROUPS,
            KUBELET_UA,
            c.node_ip(),
            "GET",
            format!("/api/v1/namespaces/{ns}/secrets/{app}-credentials"),
        )
    }),
    (40, |c| {
        let node = c.node();
        let (ns, app) = (c.ns(), c.app());
        req(
            format!("system:node:{node}"),
            NODE_GROUPS,
            KUBELET_UA,
            c.node_ip(),
            "GET",
            format!("/api/v1/namespaces/{ns}/configmaps/{app}-config"),
        )
    }),
    (50, |c| {
        let node = c.node();
        let ns = c.ns();
        let mut r = req(
            format!("system:node:{node}"),
            NODE_GROUPS,
            KUBELET_UA,
            c.node_ip(),
            "POST",
            format!("/api/v1/namespaces/{ns}/events"),
        );
        r.body = Some(BodyKind::Event);
        r.code = 201;
        r
    }),
    (50, |c| {
        let mut r = req("system:kube-proxy".into(), &["system:authenticated"], "kube-proxy/v1.30.4 (linux/amd64) kubernetes/9ac2d91", c.node_ip(), "GET",
            "/apis/discovery.k8s.io/v1/endpointslices?allowWatchBookmarks=true&labelSelector=%21service.kubernetes.io%2Fheadless&resourceVersion=8812&timeoutSeconds=512&watch=true".into());
        r.latency_ms = 512_000;
        r
    }),
    (20, |c| {
        req(
            "system:kube-proxy".into(),
            &["system:authenticated"],
            "kube-proxy/v1.30.4",
            c.node_ip(),
            "GET",
            "/api/v1/services?watch=true&resourceVersion=8812".into(),
        )
    }),
    (40, |_| {
        let mut r = req("system:kube-controller-manager".into(), &["system:authenticated"], KCM_UA, "10.0.0.10".into(), "PUT",
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-controller-manager?timeout=5s".into());
        r.body = Some(BodyKind::Lease);
        r
    }),
    (30, |_| {
        req(
            "system:kube-scheduler".into(),
            &["system:authenticated"],
            "kube-scheduler/v1.30.4",
            "10.0.0.10".into(),
            "GET",
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-scheduler?timeout=5s"
                .into(),
        )
    }),
    (25, |c| {
        let (ns, pod) = (c.ns(), c.pod());
        let mut r = req(
            "system:kube-scheduler".into(),
            &["system:authenticated"],
            "kube-scheduler/v1.30.4",
            "10.0.0.10".into(),
            "POST",
            format!("/api/v1/namespaces/{ns}/pods/{pod}/binding"),
        );
        r.body = Some(BodyKind::Binding);
        r.code = 201;
        r
    }),
    (40, |c| {
        let (ns, app) = (c.ns(), c.app());
        let mut r = req(
            "system:serviceaccount:kube-system:replicaset-controller".into(),
            SA_GROUPS,
            KCM_UA,
            "10.0.0.10".into(),
            "PUT",
            format!("/apis/apps/v1/namespaces/{ns}/replicasets/{app}-7d4b9c8f6/status"),
        );
        r.body = Some(BodyKind::ReplicaSet);
        r
    }),
    (20, |_| {
        req(
            "system:serviceaccount:kube-system:deployment-controller".into(),
            SA_GROUPS,
            KCM_UA,
            "10.0.0.10".into(),
            "GET",
            "/apis/apps/v1/deployments?limit=500&resourceVersion=0".into(),
        )
    }),
    (25, |c| {
        let (ns, app) = (c.ns(), c.app());
        let mut r = req(
            "system:serviceaccount:kube-system:endpointslice-controller".into(),
            SA_GROUPS,
            KCM_UA,
            "10.0.0.10".into(),
            "PUT",
            format!("/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices/{app}-x7k2p"),
        );
        r.body = Some(BodyKind::EndpointSlice);
        r
    }),
    (60, |c| {
        req(
            "system:anonymous".into(),
            &["system:unauthenticated"],
            "kube-probe/1.30",
            c.node_ip(),
            "GET",
            c.pick(&["/healthz", "/livez", "/readyz"]).into(),
        )
    }),
    (20, |c| {
        req(
            "system:serviceaccount:monitoring:prometheus".into(),
            &[
                "system:serviceaccounts",
                "system:serviceaccounts:monitoring",
                "system:authenticated",
            ],
            "Prometheus/2.53.0",
            c.node_ip(),
            "GET",
            "/metrics".into(),
        )
    }),
    (20, |c| {
        let ip = c.human_ip();
        req(
            c.pick(&HUMANS).into(),
            &["dev", "system:authenticated"],
            KUBECTL_UA,
            ip,
            "GET",
            c.pick(&["/api", "/apis", "/apis/apps/v1", "/openapi/v3"])
                .into(),
        )
    }),
    (40, |c| {
        let ip = c.human_ip();
        let ns = c.ns();
        req(
            c.pick(&HUMANS).into(),
            &["dev", "system:authenticated"],
            KUBECTL_UA,
            ip,
            "GET",
            format!("/api/v1/namespaces/{ns}/pods?limit=500"),
        )
    }),
    (10, |c| {
        let ip = c.human_ip();
        let (ns, pod) = (c.ns(), c.pod());
        let mut r = req(
            c.pick(&HUMANS).into(),
            &["dev", "system:authenticated"],
            KUBECTL_UA,
            ip,
            "GET",
            format!("/api/v1/namespaces/{ns}/pods/{pod}/log?container=app&tailLines=100"),
        );
        r.latency_ms = 400;
        r
    }),
    (3, |c| {
        let ip = c.human_ip();
        let (ns, pod) = (c.ns(), c.pod());
        let mut r = req(
            c.pick(&HUMANS[..3]).into(),
            &["ops", "system:authenticated"],
            KUBECTL_UA,
            ip,
            "POST",
            format!(
                "/api/v1/namespaces/{ns}/pods/{pod}/exec?command=sh&container=app&stdin=true&stdout=true&tty=true"
            ),
        );
        r.code = 101;
        r.latency_ms = 95_000;
        r
    }),
    (1, |c| {
        let ip = c.human_ip();
        let (ns, pod) = (c.ns(), c.pod());
        let mut r = req(
            c.pick(&HUMANS[..3]).into(),
            &["ops", "system:authenticated"],
            KUBECTL_UA,
            ip,
            "POST",
            format!(
                "/api/v1/namespaces/{ns}/pods/{pod}/attach?container=app&stdin=true&stdout=true"
            ),
        );
        r.code = 101;
        r.latency_ms = 30_000;
        r
    }),
    (1, |c| {
        let ip = c.human_ip();
        let (ns, pod) = (c.ns(), c.pod());
        let mut r = req(
            c.pick(&HUMANS).into(),
            &["dev", "system:authenticated"],
            KUBECTL_UA,
            ip,
            "POST",
            format!("/api/v1/namespaces/{ns}/pods/{pod}/portforward"),
        );
        r.code = 101;
        r.latency_ms = 120_000;
        r
    }),
    (10, |c| {
        let (ns, app) = (c.ns(), c.app());
        let mut r = req(
            "system:serviceaccount:ci:deployer".into(),
            &[
                "system:serviceaccounts",
                "system:serviceaccounts:ci",
                "system:authenticated",
            ],
            "argocd-application-controller/v2.11",
            "10.0.5.20".into(),
            "PATCH",
            format!("/apis/apps/v1/namespaces/{ns}/deployments/{app}?fieldManager=argocd"),
        );
        r.body = Some(BodyKind::Patch);
        r.response = Some(BodyKind::Deployment);
        r.binding = "ci-deployer";
        r.latency_ms = 15;
        r
    }),
    (4, |c| {
        let (ns, app) = (c.ns(), c.app());
        let mut r = req(
            "system:serviceaccount:ci:deployer".into(),
            &[
                "system:serviceaccounts",
                "system:serviceaccounts:ci",
                "system:authenticated",
            ],
            "argocd-application-controller/v2.11",
            "10.0.5.20".into(),
            "POST",
            format!("/apis/apps/v1/namespaces/{ns}/deployments"),
        );
        r.body = Some(BodyKind::Deployment);
        r.body_name = Some(format!("{app}-canary"));
        r.code = 201;
        r.binding = "ci-deployer";
        r
    }),
    (4, |c| {
        let (ns, app) = (c.ns(), c.app());
        let mut r = req(
            "system:serviceaccount:ci:deployer".into(),
            &[
                "system:serviceaccounts",
                "system:serviceaccounts:ci",
                "system:authenticated",
            ],
            "argocd-application-controller/v2.11",
            "10.0.5.20".into(),
            "PUT",
            format!("/api/v1/namespaces/{ns}/configmaps/{app}-config"),
        );
        r.body = Some(BodyKind::ConfigMap);
        r.binding = "ci-deployer";
        r
    }),
    (2, |c| {
        let (ns, app) = (c.ns(), c.app());
        let mut r = req(
            "system:serviceaccount:ci:deployer".into(),
            &[
                "system:serviceaccounts",
                "system:serviceaccounts:ci",
                "system:authenticated",
            ],
            "argocd-application-controller/v2.11",
            "10.0.5.20".into(),
            "PUT",
            format!("/api/v1/namespaces/{ns}/secrets/{app}-credentials"),
        );
        r.body = Some(BodyKind::Secret);
        r.binding = "ci-deployer";
        r
    }),
    (3, |c| {
        let ip = c.human_ip();
        let (ns, pod) = (c.ns(), c.pod());
        req(
            c.pick(&HUMANS).into(),
            &["dev", "system:authenticated"],
            KUBECTL_UA,
            ip,
            "DELETE",
            format!("/api/v1/namespaces/{ns}/pods/{pod}"),
        )
    }),
    (1, |c| {
        let ip = c.human_ip();
        let (ns, app) = (c.ns(), c.app());
        let mut r = req(
            c.pick(&HUMANS[..2]).into(),
            &["ops", "system:authenticated"],
            KUBECTL_UA,
            ip,
            "DELETE",
            format!("/apis/apps/v1/namespaces/{ns}/deployments/{app}"),
        );
        r.response = Some(BodyKind::Status);
        r
    }),
    (1, |c| {
        let ip = c.human_ip();
        let ns = c.ns();
        let mut r = req(
            "kubernetes-admin".into(),
            &["system:masters", "system:authenticated"],
            KUBECTL_UA,
            ip,
            "POST",
            format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"),
        );
        r.body = Some(BodyKind::RoleBinding);
        r.body_name = Some(format!("{ns}-editors"));
        r.code = 201;
        r.binding = "cluster-admin";
        r
    }),
    (1, |c| {
        let ip = c.human_ip();
        let mut r = req(
            "kubernetes-admin".into(),
            &["system:masters", "system:authenticated"],
            KUBECTL_UA,
            ip,
            "PATCH",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/oncall-admin".into(),
        );
        r.body = Some(BodyKind::Patch);
        r.response = Some(BodyKind::ClusterRoleBinding);
        r.binding = "cluster-admin";
        r
    }),
    (10, |c| {
        let ns = c.ns();
        let mut r = req(
            format!("system:serviceaccount:{ns}:default"),
            &["system:serviceaccounts", "system:authenticated"],
            "python-requests/2.32",
            c.node_ip(),
            "GET",
            "/api/v1/secrets".into(),
        );
        r.code = 403;
        r
    }),
    (6, |c| {
        let ip = c.human_ip();
        let ns = c.ns();
        let mut r = req(
            c.pick(&HUMANS[2..]).into(),
            &["dev", "system:authenticated"],
            KUBECTL_UA,
            ip,
            "GET",
            format!("/api/v1/namespaces/{ns}/secrets"),
        );
        r.code = 403;
        r
    }),
    (10, |c| {
        let (ns, app) = (c.ns(), c.app());
        let mut r = req(
            "system:serviceaccount:kube-system:generic-garbage-collector".into(),
            SA_GROUPS,
            KCM_UA,
            "10.0.0.10".into(),
            "GET",
            format!("/api/v1/namespaces/{ns}/configmaps/{app}-old"),
        );
        r.code = 404;
        r
    }),
    (5, |c| {
        let (ns, app) = (c.ns(), c.app());
        let mut r = req(
            "system:serviceaccount:kube-system:replicaset-controller".into(),
            SA_GROUPS,
            KCM_UA,
            "10.0.0.10".into(),
            "PUT",
            format!("/apis/apps/v1/namespaces/{ns}/replicasets/{app}-7d4b9c8f6"),
        );
        r.body = Some(BodyKind::ReplicaSet);
        r.code = 409;
        r
    }),
    (2, |c| {
        let ip = format!("203.0.113.{}", 1 + c.rng.below(250));
        let mut r = req(
            String::new(),
            &[],
            "Mozilla/5.0 zgrab/0.x",
            ip,
            "GET",
            c.pick(&["/api/v1/namespaces", "/api/v1/secrets", "/.env", "/version"])
                .into(),
        );
        r.code = 401;
        r
    }),
    (1, |c| {
        let ip = c.human_ip();
        let mut r = req(
            "kubernetes-admin".into(),
            &["system:masters", "system:authenticated"],
            KUBECTL_UA,
            ip,
            "GET",
            format!("/api/v1/namespaces/{}/pods", c.ns()),
        );
        r.impersonate = Some(c.pick(&HUMANS).into());
        r
    }),
    (15, |c| {
        let (ns, app) = (c.ns(), c.app());
        let mut r = req(
            "system:serviceaccount:cert-manager:cert-manager".into(),
            &[
                "system:serviceaccounts",
                "system:serviceaccounts:cert-manager",
                "system:authenticated",
            ],
            "cert-manager-certificates/v1.15.1",
            "10.0.3.40".into(),
            "PUT",
            format!("/apis/cert-manager.io/v1/namespaces/{ns}/certificates/{app}-tls/status"),
        );
        r.body = Some(BodyKind::Certificate);
        r
    }),
    (5, |c| {
        let mut r = req(
            "system:serviceaccount:kube-system:metrics-server".into(),
            SA_GROUPS,
            "metrics-server/v0.7.1",
            c.node_ip(),
            "POST",
            "/apis/authentication.k8s.io/v1/tokenreviews".into(),
        );
        r.body = Some(BodyKind::TokenReview);
        r.code = 201;
        r
    }),
];

/// The next request of the mix.
pub(crate) fn pick(rng: &mut Pcg32, cluster: u32) -> Request {
    let total: u32 = SCENARIOS.iter().map(|s| s.0).sum();
    let mut n = rng.below(total);
    let make = SCENARIOS
        .iter()
        .find(|(w, _)| {
            if n < *w {
                true
            } else {
                n -= w;
                false
            }
        })
        .map_or(SCENARIOS[0].1, |s| s.1);
    make(&mut Ctx { rng, cluster })
}
