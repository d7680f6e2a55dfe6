//! Alerts from `serve` reach a real Alertmanager (Debian's `prometheus-alertmanager`, started
//! here on loopback) with their labels and a link; an Alertmanager outage, and a `serve` killed
//! during it, lose nothing and repeat nothing: the outbox delivers every alert once.
//!
//! Without the binary the test is skipped, unless `KUBETRAIL_REQUIRE_ALERTMANAGER` is set
//! (`.ci/run` sets it and installs the package).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::free_port;

const TOKEN: &str = "alertmanager-test-admin-token";
const BIN: &str = "/usr/bin/prometheus-alertmanager";

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let until = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < until, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent()
}

fn alertmanager(dir: &Path, port: u16) -> Process {
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: none\nreceivers:\n  - name: none\n",
    )
    .unwrap();
    let child = Command::new(BIN)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.join("am-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        // No gossip: one Alertmanager, nothing else listening.
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("alertmanager.log")).unwrap())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/-/ready");
    wait_until(
        "alertmanager did not become ready",
        Duration::from_secs(30),
        || {
            agent()
                .get(&url)
                .call()
                .is_ok_and(|r| r.status().as_u16() == 200)
        },
    );
    Process(child)
}

fn serve(dir: &Path, port: u16, am_port: u16) -> Process {
    let tokens = dir.join("tokens.yaml");
    std::fs::write(
        &tokens,
        format!("- {{name: t, token: {TOKEN}, role: admin}}\n"),
    )
    .unwrap();
    let config = dir.join("serve.yaml");
    std::fs::write(
        &config,
        format!(
            "notify:\n  - name: am\n    type: alertmanager\n    url: http://127.0.0.1:{am_port}\nexternalUrl: https://kubetrail.test\n"
        ),
    )
    .unwrap();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("serve.log"))
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_kubetrail"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--config")
        .arg(&config)
        .arg("--tokens-file")
        .arg(&tokens)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    wait_until("serve did not listen", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    Process(child)
}

fn exec(id: &str, user: &str) -> Value {
    let t = "2026-11-01T10:00:01.000000Z";
    json!({
        "level": "Metadata", "auditID": id, "stage": "ResponseStarted",
        "requestURI": "/api/v1/namespaces/prod/pods/web/exec?command=sh&container=web&stdin=true",
        "verb": "create", "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.0.7"],
        "objectRef": {"resource": "pods", "namespace": "prod", "name": "web", "apiVersion": "v1", "subresource": "exec"},
        "responseStatus": {"metadata": {}, "code": 101},
        "requestReceivedTimestamp": t, "stageTimestamp": t
    })
}

fn post(port: u16, items: Vec<Value>) {
    let list = json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items});
    let mut r = agent()
        .post(&format!(
            "http://127.0.0.1:{port}/api/v1/audit/webhook?cluster=lab"
        ))
        .header("authorization", &format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .send(serde_json::to_vec(&list).unwrap().as_slice())
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "{}",
        r.body_mut().read_to_string().unwrap()
    );
}

/// The pod-exec alerts Alertmanager holds, by auditID.
fn received(am_port: u16) -> Vec<Value> {
    let Ok(mut r) = agent()
        .get(&format!(
            "http://127.0.0.1:{am_port}/api/v2/alerts?filter=alertname%3D%22pod-exec%22"
        ))
        .call()
    else {
        return Vec::new();
    };
    let alerts: Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap_or_default();
    let mut out: Vec<Value> = alerts.as_array().cloned().unwrap_or_default();
    out.sort_by_key(|a| a["labels"]["auditID"].as_str().unwrap_or("").to_string());
    out
}

fn ids(alerts: &[Value]) -> Vec<String> {
    alerts
        .iter()
        .map(|a| a["labels"]["auditID"].as_str().unwrap_or("").to_string())
        .collect()
}

fn metric(port: u16, name: &str) -> f64 {
    let mut r = agent()
        .get(&format!("http://127.0.0.1:{port}/metrics"))
        .header("authorization", &format!("Bearer {TOKEN}"))
        .call()
        .unwrap();
    let text = r.body_mut().read_to_string().unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

fn available() -> bool {
    if PathBuf::from(BIN).exists() {
        return true;
    }
    assert!(
        std::env::var_os("KUBETRAIL_REQUIRE_ALERTMANAGER").is_none(),
        "{BIN} is missing and KUBETRAIL_REQUIRE_ALERTMANAGER is set"
    );
    eprintln!("skipped: {BIN} is not installed (apt-get install prometheus-alertmanager)");
    false
}

#[test]
fn alerts_reach_alertmanager_once_through_an_outage_and_a_restart() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (am_port, port) = (free_port(), free_port());
    let am = alertmanager(dir.path(), am_port);
    let server = serve(dir.path(), port, am_port);
    post(port, vec![exec("e1", "alice"), exec("e2", "bob")]);
    wait_until(
        "the first alerts did not reach Alertmanager",
        Duration::from_secs(30),
        || received(am_port).len() == 2,
    );
    let got = received(am_port);
    assert_eq!(ids(&got), ["e1", "e2"]);
    let a = &got[0];
    assert_eq!(a["labels"]["rule"], "pod-exec");
    assert_eq!(a["labels"]["severity"], "medium");
    assert_eq!(a["labels"]["cluster"], "lab");
    assert_eq!(a["labels"]["namespace"], "prod");
    assert!(
        a["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("alice on pods/exec prod/web"),
        "{a}"
    );
    assert!(
        a["annotations"]["link"]
            .as_str()
            .unwrap()
            .starts_with("https://kubetrail.test/alerts?cluster=lab&rule=pod-exec&auditID=e1"),
        "{a}"
    );

    // Alertmanager goes away; alerts raised meanwhile wait in the outbox.
    drop(am);
    post(
        port,
        vec![exec("e3", "carol"), exec("e4", "dave"), exec("e5", "erin")],
    );
    wait_until(
        "the outbox did not hold the alerts",
        Duration::from_secs(30),
        || {
            metric(port, "kubetrail_notify_pending{sink=\"am\"}") == 3.0
                && metric(port, "kubetrail_notify_failures_total{sink=\"am\"}") >= 1.0
        },
    );
    // serve is killed too, and started again: the outbox is on disk, and the alerts its
    // replay raises again are stored already, so none is announced twice.
    drop(server);
    let server = serve(dir.path(), port, am_port);
    let _am = alertmanager(dir.path(), am_port);
    wait_until(
        "the outbox was not delivered after the outage",
        Duration::from_secs(60),
        || received(am_port).len() >= 3,
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        ids(&received(am_port)),
        ["e3", "e4", "e5"],
        "each alert raised during the outage arrives, and the ones delivered before are not sent again"
    );
    assert_eq!(
        metric(port, "kubetrail_notify_delivered_total{sink=\"am\"}"),
        3.0
    );
    assert_eq!(metric(port, "kubetrail_notify_pending{sink=\"am\"}"), 0.0);
    drop(server);
}
