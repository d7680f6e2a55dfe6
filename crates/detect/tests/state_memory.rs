//! The state the default pack keeps stays bounded: 100,000 pods created privileged (each one
//! an entry of `exec-into-privileged-pod`'s table, the largest state the pack keeps) and an
//! exec into each of the last thousand hold at most 100 MiB, measured by an allocation-counting
//! global allocator around the engine alone. (Its own test binary, so no other test's
//! allocations are counted.)

#![allow(clippy::unwrap_used)]

use kubetrail_detect::{Engine, Overrides, Runtime, load};
use kubetrail_model::{Event, decode_event};

/// Pods tracked.
const PODS: usize = 100_000;

fn privileged_pod(i: usize) -> Event {
    let line = format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"c-{i}","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/ns-{ns}/pods","verb":"create","user":{{"username":"system:serviceaccount:kube-system:replicaset-controller"}},"objectRef":{{"resource":"pods","namespace":"ns-{ns}","name":"pod-{i}","apiVersion":"v1"}},"responseStatus":{{"code":201}},"requestObject":{{"metadata":{{"name":"pod-{i}"}},"spec":{{"containers":[{{"name":"c","image":"busybox","securityContext":{{"privileged":true}}}}]}}}},"requestReceivedTimestamp":"2026-11-01T00:00:00.000000Z","stageTimestamp":"2026-11-01T00:00:00.000000Z"}}"#,
        ns = i % 500
    );
    decode_event(line.as_bytes()).unwrap()
}

fn exec(i: usize) -> Event {
    let line = format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"x-{i}","stage":"ResponseStarted","requestURI":"/api/v1/namespaces/ns-{ns}/pods/pod-{i}/exec?command=sh","verb":"create","user":{{"username":"mallory"}},"objectRef":{{"resource":"pods","namespace":"ns-{ns}","name":"pod-{i}","apiVersion":"v1","subresource":"exec"}},"responseStatus":{{"code":101}},"requestReceivedTimestamp":"2026-11-01T01:00:00.000000Z","stageTimestamp":"2026-11-01T01:00:00.000000Z"}}"#,
        ns = i % 500
    );
    decode_event(line.as_bytes()).unwrap()
}

#[test]
fn a_hundred_thousand_tracked_pods_hold_under_100_mib() {
    let rt = Runtime::new();
    let rules = load(&rt, true, &[], &Overrides::new()).unwrap();
    let mut engine = Engine::new(rt, rules);
    let creates: Vec<Event> = (0..PODS).map(privileged_pod).collect();
    let execs: Vec<Event> = (PODS - 1000..PODS).map(exec).collect();
    let mut alerts = Vec::new();
    let counts = allocation_counter::measure(|| {
        for e in &creates {
            engine.observe(e, "prod", &mut alerts);
        }
        for e in &execs {
            engine.observe(e, "prod", &mut alerts);
        }
        // What the engine holds, not the alerts handed out.
        alerts.clear();
        alerts.shrink_to_fit();
    });
    let raised = engine.counters().per_rule.clone();
    let table = engine
        .rules()
        .iter()
        .position(|r| r.id == "exec-into-privileged-pod")
        .unwrap();
    assert_eq!(
        raised[table].0, 1000,
        "every exec into a tracked privileged pod alerts: the table holds all {PODS} pods"
    );
    let held = counts.bytes_current.max(0) as f64 / 1048576.0;
    eprintln!(
        "state for {PODS} tracked pods: {held:.1} MiB held, {:.1} MiB at most",
        counts.bytes_max as f64 / 1048576.0
    );
    assert!(held <= 100.0, "{held:.1} MiB held for {PODS} pods");
    assert!(held > 1.0, "the counter sees the table ({held:.3} MiB)");
}
