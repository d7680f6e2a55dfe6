//! Secrets are taken out before anything is stored: after `import` and after the webhook and
//! agent ingest of `serve`, no credential of `testdata/redaction/secrets.jsonl` is in the data
//! directory's files, any CLI output, any API answer, any page or the server's log.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::{free_port, kubetrail, stdout, testdata};

/// Every credential in the fixture starts with `S3CRET`; base64 of any starts with `UzNDUkVU`.
const LEAKS: [&str; 2] = ["S3CRET", "UzNDUkVU"];
const RANGE: [&str; 4] = [
    "--from",
    "2024-05-01T00:00:00Z",
    "--to",
    "2024-05-02T00:00:00Z",
];

fn assert_clean(what: &str, text: &str) {
    for leak in LEAKS {
        if let Some(at) = text.find(leak) {
            let from = text[..at]
                .char_indices()
                .rev()
                .nth(200)
                .map_or(0, |(i, _)| i);
            panic!(
                "{what} shows a credential: …{}…",
                &text[from..(at + 40).min(text.len())]
            );
        }
    }
}

/// No file under `dir` holds a credential's bytes.
fn assert_files_clean(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            assert_files_clean(&path);
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        for leak in LEAKS {
            assert!(
                !bytes.windows(leak.len()).any(|w| w == leak.as_bytes()),
                "{} holds {leak}",
                path.display()
            );
        }
    }
}

fn run(args: &[&str]) -> String {
    let out = kubetrail(args, "");
    assert!(
        out.status.success(),
        "kubetrail {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_clean(
        &format!("stderr of {args:?}"),
        &String::from_utf8_lossy(&out.stderr),
    );
    stdout(&out)
}

/// The JSON lines of `search -o json` over the fixture's day.
fn events(data: &str) -> Vec<Value> {
    let mut args = vec![
        "search",
        "--data-dir",
        data,
        "-o",
        "json",
        "--limit",
        "1000",
    ];
    args.extend(RANGE);
    run(&args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn import_stores_and_shows_no_credential() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let fixture = testdata("redaction/secrets.jsonl");
    let fixture = fixture.to_str().unwrap();
    let raw = std::fs::read_to_string(fixture).unwrap();
    assert!(
        raw.contains("S3CRET"),
        "the fixture holds what the test looks for"
    );

    let out = kubetrail(&["import", "--data-dir", data, "--json", fixture], "");
    assert!(out.status.success());
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["stored"], 8, "{summary}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("made a new redaction key"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = Path::new(data).join("redaction.key");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key is the owner's only");
    }

    let stored = events(data);
    assert_eq!(stored.len(), 8);
    for e in &stored {
        assert_clean("search -o json", &e.to_string());
    }
    let by_id = |n: u32| {
        stored
            .iter()
            .find(|e| e["auditID"] == format!("5ec1e700-0000-4000-8000-{n:012}"))
            .unwrap()
    };
    // The same value, as stringData in the request and as data in the response, in the
    // last-applied annotation too: one marker.
    let create = by_id(1);
    let marker = create["requestObject"]["stringData"]["password"]
        .as_str()
        .unwrap();
    assert!(marker.starts_with("redacted:hmac-sha256:"), "{marker}");
    assert_eq!(create["responseObject"]["data"]["password"], marker);
    let applied: Value = serde_json::from_str(
        create["responseObject"]["metadata"]["annotations"]
            ["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(applied["stringData"]["password"], marker);
    // A changed value: another marker. The rest of the object is as the apiserver wrote it.
    let patched = by_id(2);
    assert_ne!(patched["responseObject"]["data"]["password"], marker);
    assert_eq!(
        patched["responseObject"]["metadata"]["resourceVersion"],
        "1002"
    );
    assert_eq!(
        by_id(5)["responseObject"]["status"]["user"]["username"],
        "system:serviceaccount:shop:web"
    );
    let uri = by_id(7)["requestURI"].as_str().unwrap();
    assert!(
        uri.starts_with(
            "/api/v1/namespaces/shop/pods/web-0/log?access_token=redacted:hmac-sha256:"
        ) && uri.ends_with("&container=web"),
        "{uri}"
    );

    // Every way a person asks shows markers, not values.
    for args in [
        vec!["search", "--data-dir", data],
        vec!["search", "--data-dir", data, "-o", "wide"],
        vec!["history", "secrets/db", "-n", "shop", "--data-dir", data],
        vec![
            "history",
            "secrets/db",
            "-n",
            "shop",
            "--data-dir",
            data,
            "-o",
            "json",
        ],
        vec![
            "who",
            "create",
            "secrets",
            "-n",
            "shop",
            "--data-dir",
            data,
            "-o",
            "wide",
        ],
        vec!["report", "overview", "--data-dir", data, "-o", "json"],
        vec!["report", "resources", "--data-dir", data],
    ] {
        let mut args = args;
        args.extend(RANGE);
        let text = run(&args);
        assert!(!text.trim().is_empty(), "{args:?} answered nothing");
        assert_clean(&format!("{args:?}"), &text);
    }
    assert_files_clean(Path::new(data));

    // The key stays: importing the file again finds the same events.
    let again = kubetrail(&["import", "--data-dir", data, "--json", fixture], "");
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["stored"], 0, "{again}");
    assert_eq!(again["duplicates"], 8, "{again}");

    // Without redaction the same check finds the values: it can fail.
    let open = dir.path().join("open");
    let open = open.to_str().unwrap();
    let out = kubetrail(&["import", "--no-redact", "--data-dir", open, fixture], "");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-redact"));
    let leaked: String = events(open).iter().map(|e| e.to_string()).collect();
    assert!(leaked.contains("S3CRET-db-password-1") && leaked.contains("S3CRET-uri-token"));
}

/// A child process killed when the test ends, also when it fails.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const INGEST: &str = "ingest-token-0123456789";
const ADMIN: &str = "admin-token-0123456789a";

fn request(port: u16, method: &str, path: &str, token: &str, body: &[u8]) -> (u16, String) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let url = format!("http://127.0.0.1:{port}{path}");
    let auth = format!("Bearer {token}");
    let mut r = if method == "POST" {
        agent
            .post(&url)
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .send(body)
            .unwrap()
    } else {
        agent
            .get(&url)
            .header("authorization", &auth)
            .call()
            .unwrap()
    };
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

#[test]
fn serve_redacts_webhook_and_agent_ingest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tokens.yaml"),
        format!(
            "- {{name: apiserver, token: {INGEST}, role: ingest}}\n- {{name: ops, token: {ADMIN}, role: admin}}\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let log = dir.path().join("serve.log");
    let mut serve = Killed(
        Command::new(env!("CARGO_BIN_EXE_kubetrail"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--tokens-file")
            .arg(dir.path().join("tokens.yaml"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env("KUBETRAIL_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    crate::wait_port(port);
    let text = std::fs::read_to_string(testdata("redaction/secrets.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // The first half as the webhook's EventList (v1beta1, as older apiservers send it), the
    // rest as an agent's NDJSON batch.
    let items: Vec<Value> = lines[..4]
        .iter()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("kind");
            o.remove("apiVersion");
            v
        })
        .collect();
    let list = serde_json::json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1beta1", "items": items});
    let (status, reply) = request(
        port,
        "POST",
        "/api/v1/audit/webhook?cluster=prod",
        INGEST,
        list.to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{reply}");
    let agent_batch = lines[4..].join("\n");
    let (status, reply) = request(
        port,
        "POST",
        "/api/v1/audit/events?node=cp-1&cluster=prod",
        INGEST,
        agent_batch.as_bytes(),
    );
    assert_eq!(status, 200, "{reply}");

    let from = "from=2024-05-01T00:00:00Z&to=2024-05-02T00:00:00Z";
    let (status, answer) = request(
        port,
        "GET",
        &format!("/api/v1/audit/events?{from}&limit=100"),
        ADMIN,
        b"",
    );
    assert_eq!(status, 200, "{answer}");
    let page: Value = serde_json::from_str(&answer).unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 8, "{answer}");
    assert!(answer.contains("redacted:hmac-sha256:"));
    let mut paths = vec![
        format!("/api/v1/audit/history?resource=secrets&namespace=shop&name=db&{from}"),
        format!("/api/v1/audit/reports/overview?{from}"),
        format!("/resources?{from}"),
        format!("/user?user=alice&{from}"),
        format!("/?{from}"),
        format!("/search?{from}"),
        format!("/search?{from}&resource=secrets"),
        format!("/history?resource=secrets&namespace=shop&name=db&{from}"),
    ];
    for item in items {
        paths.push(format!(
            "/event?cluster=prod&auditID={}",
            item["event"]["auditID"].as_str().unwrap()
        ));
    }
    for path in &paths {
        let (status, body) = request(port, "GET", path, ADMIN, b"");
        assert_eq!(status, 200, "{path}: {body:.300}");
        assert_clean(path, &body);
    }
    serve.0.kill().unwrap();
    serve.0.wait().unwrap();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("made a new redaction key"), "{log}");
    assert_clean("serve's log", &log);
    assert_files_clean(&dir.path().join("data"));
}
