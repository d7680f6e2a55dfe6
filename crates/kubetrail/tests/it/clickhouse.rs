//! `kubetrail serve --store clickhouse` against a real ClickHouse (started by the test; see
//! `kubetrail_testsuite::clickhouse`): the same answers as the embedded store on the same
//! data; two servers ingesting overlapping, retried batches into one database without
//! duplicates or loss; and ClickHouse restarted mid-ingest (503, then the retry lands).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kubetrail_testsuite::clickhouse::TestServer;

use crate::{kubetrail, stdout, testdata};

const ADMIN: &str = "admin-token-for-clickhouse-tests";

struct Serve {
    child: std::sync::Mutex<Child>,
    url: String,
    /// Where its stderr goes: shown when it stops answering.
    log: std::path::PathBuf,
}

impl Serve {
    /// Whether it still runs, and what it logged: for a failure's message.
    fn state(&self) -> String {
        let status = match self.child.lock().unwrap().try_wait() {
            Ok(Some(status)) => format!("serve exited: {status}"),
            Ok(None) => "serve still runs".to_string(),
            Err(e) => format!("serve's state is unknown: {e}"),
        };
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!("{status}; its log:\n{log}")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn serve(dir: &Path, name: &str, clickhouse: &str, database: &str, extra: &[&str]) -> Serve {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tokens = dir.join("tokens.yaml");
    std::fs::write(
        &tokens,
        format!("- {{name: test, token: {ADMIN}, role: admin}}\n"),
    )
    .unwrap();
    let log = dir.join(format!("{name}.log"));
    let child = Command::new(env!("CARGO_BIN_EXE_kubetrail"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--tokens-file")
        .arg(&tokens)
        .arg("--data-dir")
        .arg(dir.join(name))
        .args(["--store", "clickhouse", "--clickhouse-url", clickhouse])
        .args(["--clickhouse-database", database])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    crate::wait_port(port);
    Serve {
        child: std::sync::Mutex::new(child),
        url: format!("http://127.0.0.1:{port}"),
        log,
    }
}

fn post(server: &Serve, body: &[u8]) -> (u16, String) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut r = agent
        .post(&format!("{}/api/v1/audit/webhook?cluster=ch", server.url))
        .header("authorization", &format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .send(body)
        .unwrap_or_else(|e| panic!("posting a batch: {e}; {}", server.state()));
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_string().unwrap())
}

fn get_json(url: &str, path: &str) -> serde_json::Value {
    let mut r = ureq::get(&format!("{url}{path}"))
        .header("authorization", &format!("Bearer {ADMIN}"))
        .call()
        .unwrap();
    serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
}

/// Every stored event's identity, through the API, paging.
fn identities(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut path = "/api/v1/audit/events?limit=1000".to_string();
    loop {
        let page = get_json(url, &path);
        for item in page["items"].as_array().unwrap() {
            let e = &item["event"];
            out.push(format!(
                "{}/{}/{}",
                e["auditID"], e["stage"], e["stageTimestamp"]
            ));
        }
        match page["next"].as_str() {
            Some(c) => path = format!("/api/v1/audit/events?limit=1000&cursor={c}"),
            None => return out,
        }
    }
}

/// Webhook bodies of `per` generated events each.
fn batches(events: u64, per: usize) -> Vec<Vec<u8>> {
    let out = kubetrail(&["gen", "--events", &events.to_string(), "--seed", "9"], "");
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    lines
        .chunks(per)
        .map(|c| {
            format!(
                "{{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"items\":[{}]}}",
                c.join(",")
            )
            .into_bytes()
        })
        .collect()
}

#[test]
fn clickhouse_answers_as_the_embedded_store_does() {
    let Some(ch) = TestServer::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let files: Vec<String> = [
        "real-audit/audit2rbac-v1.jsonl",
        "real-audit/audit2rbac-v1beta1.jsonl",
        "real-audit/falco-k8saudit.jsonl",
        "real-audit/panther.jsonl",
    ]
    .iter()
    .map(|f| testdata(f).display().to_string())
    .collect();
    let local = tmp.path().join("local");
    let mut import_local = vec![
        "import",
        "--cluster",
        "real",
        "--data-dir",
        local.to_str().unwrap(),
    ];
    import_local.extend(files.iter().map(String::as_str));
    assert!(kubetrail(&import_local, "").status.success());
    // The data directory holds only the redaction key when the store is ClickHouse.
    let key_dir = tmp.path().join("ch-key");
    let mut import_ch = vec![
        "import",
        "--cluster",
        "real",
        "--data-dir",
        key_dir.to_str().unwrap(),
        "--store",
        "clickhouse",
        "--clickhouse-url",
        &ch.url,
        "--clickhouse-database",
        "same",
    ];
    import_ch.extend(files.iter().map(String::as_str));
    let o = kubetrail(&import_ch, "");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Without live detection: the embedded copy it is compared with holds no alerts either.
    let server = serve(tmp.path(), "serve", &ch.url, "same", &["--no-detection"]);
    let token = tmp.path().join("token");
    std::fs::write(&token, ADMIN).unwrap();
    let remote = [
        "--server",
        &server.url,
        "--token-file",
        token.to_str().unwrap(),
    ];
    let questions: Vec<Vec<&str>> = vec![
        vec!["report", "overview", "-o", "json"],
        vec!["report", "resources", "-o", "json"],
        vec!["report", "users", "-o", "json"],
        vec!["report", "failures", "-o", "json"],
        vec!["search", "--limit", "5000", "-o", "wide"],
        vec![
            "search",
            "--user",
            "system:admin",
            "--code",
            "4xx",
            "-o",
            "wide",
        ],
        vec!["who", "create", "clusterrolebindings"],
        vec![
            "history",
            "clusterrolebindings.rbac.authorization.k8s.io/some-reader-binding",
        ],
    ];
    for q in questions {
        let mut l = q.clone();
        l.extend(["--data-dir", local.to_str().unwrap()]);
        let mut r = q.clone();
        r.extend(remote);
        let (a, b) = (kubetrail(&l, ""), kubetrail(&r, ""));
        assert!(
            a.status.success() && b.status.success(),
            "{q:?}: {}",
            String::from_utf8_lossy(&b.stderr)
        );
        assert!(!stdout(&a).trim().is_empty(), "{q:?} answered nothing");
        assert_eq!(
            stdout(&a),
            stdout(&b),
            "{q:?}: embedded and ClickHouse differ"
        );
    }

    // Every web page, served over ClickHouse, is the page rendered over the embedded store.
    let store = kubetrail_store_duckdb::DuckDbStore::open(&local).unwrap();
    let viewer = kubetrail_ui::Viewer {
        name: "test".into(),
        cluster: None,
        session: false,
    };
    // The server's cluster picker lists the clusters its store holds.
    let clusters: Vec<String> = {
        use kubetrail_store::Store;
        store
            .aggregate(
                &kubetrail_store::Filter::default(),
                &kubetrail_store::Aggregation::CountBy {
                    fields: vec![kubetrail_store::Field::Cluster],
                    limit: None,
                },
            )
            .unwrap()
            .groups()
            .iter()
            .map(|g| g.keys[0].clone())
            .collect()
    };
    let ctx = kubetrail_ui::Context {
        store: &store,
        now_micros: chrono::Utc::now().timestamp_micros(),
        viewer: &viewer,
        networks: &kubetrail_ui::Networks::default(),
        gaps: &[],
        agents: &[],
        rules: None,
        rbac: None,
        clusters: &clusters,
        resources: &kubetrail_report::ResourceCache::default(),
        integrity: None,
    };
    let all = "range=custom&from=2000-01-01T00:00:00Z&to=2030-01-01T00:00:00Z";
    for (page, query) in [
        (kubetrail_ui::Page::Overview, all.to_string()),
        (kubetrail_ui::Page::Overview, format!("{all}&by=code")),
        (kubetrail_ui::Page::Resources, all.to_string()),
        (kubetrail_ui::Page::Search, all.to_string()),
        (
            kubetrail_ui::Page::Search,
            format!("{all}&code=4xx&verb=get"),
        ),
        (
            kubetrail_ui::Page::User,
            format!("{all}&user=system%3Aadmin"),
        ),
        (
            kubetrail_ui::Page::History,
            "resource=clusterrolebindings.rbac.authorization.k8s.io&name=some-reader-binding"
                .into(),
        ),
    ] {
        let local_html = kubetrail_ui::render(page, &ctx, &query).unwrap();
        let mut r = ureq::get(&format!("{}{}?{query}", server.url, page.path()))
            .header("authorization", &format!("Bearer {ADMIN}"))
            .call()
            .unwrap();
        let served = without_integrity(&r.body_mut().read_to_string().unwrap());
        let local_html = without_integrity(&local_html);
        assert!(local_html.len() > 2000, "{page:?} rendered little");
        assert!(
            local_html == served,
            "{page:?}?{query}: embedded and ClickHouse pages differ:\n{}",
            first_difference(&local_html, &served)
        );
    }
}

/// Where two texts part, with some context.
fn first_difference(a: &str, b: &str) -> String {
    let at = a
        .bytes()
        .zip(b.bytes())
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let from = at.saturating_sub(200);
    let window = |s: &str| {
        s.get(from..(at + 200).min(s.len()))
            .unwrap_or("")
            .to_string()
    };
    format!("embedded: ...{}\nclickhouse: ...{}", window(a), window(b))
}

#[test]
fn two_servers_and_retried_batches_store_each_event_once() {
    let Some(ch) = TestServer::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let a = serve(tmp.path(), "a", &ch.url, "shared", &[]);
    let b = serve(tmp.path(), "b", &ch.url, "shared", &[]);
    let bodies = batches(4000, 400);
    // Every batch to both servers at once, then once more to each (the apiserver's retries).
    std::thread::scope(|s| {
        for server in [&a, &b, &a, &b] {
            let bodies = &bodies;
            s.spawn(move || {
                for body in bodies {
                    let (status, reply) = post(server, body);
                    assert_eq!(status, 200, "{reply}");
                }
            });
        }
    });
    let seen = identities(&a.url);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 4000, "nothing lost");
    assert_eq!(seen.len(), 4000, "nothing twice");
    assert_eq!(identities(&b.url), seen, "both servers answer alike");
    // And the command line asks either server the same.
    let token = tmp.path().join("token");
    std::fs::write(&token, ADMIN).unwrap();
    let t = token.to_str().unwrap();
    let ask = |url: &str| {
        stdout(&kubetrail(
            &[
                "search",
                "--server",
                url,
                "--token-file",
                t,
                "--limit",
                "5000",
                "-o",
                "json",
            ],
            "",
        ))
    };
    let (from_a, from_b) = (ask(&a.url), ask(&b.url));
    assert_eq!(from_a.lines().count(), 4000);
    assert_eq!(from_a, from_b);
}

#[test]
fn clickhouse_down_mid_ingest_answers_503_and_the_retry_lands() {
    let Some(mut ch) = TestServer::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let server = serve(tmp.path(), "serve", &ch.url, "restart", &[]);
    let bodies = batches(1200, 400);
    assert_eq!(post(&server, &bodies[0]).0, 200);
    ch.stop();
    let (status, reply) = post(&server, &bodies[1]);
    assert_eq!(status, 503, "{reply}");
    ch.restart();
    // The sender retries with backoff, as the apiserver does.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = post(&server, &bodies[1]);
        if status == 200 {
            break;
        }
        assert!(Instant::now() < until, "ClickHouse never came back");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(post(&server, &bodies[2]).0, 200);
    let seen = identities(&server.url);
    assert_eq!(seen.len(), 1200);
}

/// The page without the overview's integrity panel: the server's comes from its own checks of
/// the chain, which a page rendered over the store alone does not have.
fn without_integrity(html: &str) -> String {
    let start = r#"<section class="panel wide" id="integrity">"#;
    match html.find(start) {
        Some(at) => {
            let end = html[at..]
                .find("</section>")
                .map_or(html.len(), |e| at + e + 10);
            format!("{}{}", &html[..at], &html[end..])
        }
        None => html.to_string(),
    }
}
