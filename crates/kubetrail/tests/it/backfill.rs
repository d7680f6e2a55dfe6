//! `kubetrail import --server`: old files backfilled into a running server through its ingest
//! API, once however often they are sent, with refused lines named by file and line.

use std::process::{Command, Stdio};

use crate::{free_port, kubetrail, stdout, testdata, wait_port};

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn import_into_a_running_server_stores_each_event_once_and_names_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.yaml");
    std::fs::write(
        &tokens,
        "- {name: backfill, token: ingest-token-0123456789, role: ingest}\n- {name: reader, token: read-token-0123456789ab, role: read}\n",
    )
    .unwrap();
    let ingest = dir.path().join("ingest.token");
    std::fs::write(&ingest, "ingest-token-0123456789\n").unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let _server = Killed(
        Command::new(env!("CARGO_BIN_EXE_kubetrail"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--tokens-file")
            .arg(&tokens)
            .arg("--data-dir")
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(port);
    let url = format!("http://127.0.0.1:{port}");
    let good = testdata("real-audit/falco-k8saudit.jsonl");
    let events = std::fs::read_to_string(&good)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count() as u64;
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"kind\":\"Event\"\nnot json at all\n").unwrap();
    let import = || {
        let o = kubetrail(
            &[
                "import",
                "--server",
                &url,
                "--token-file",
                ingest.to_str().unwrap(),
                "--cluster",
                "backfill",
                "--json",
                good.to_str().unwrap(),
                bad.to_str().unwrap(),
            ],
            "",
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()
    };
    let first = import();
    assert_eq!(first["files"], 2);
    assert_eq!(
        first["stored"].as_u64().unwrap() + first["duplicates"].as_u64().unwrap(),
        events
    );
    assert!(first["stored"].as_u64().unwrap() > 0);
    assert_eq!(first["malformed"], 2, "{first}");
    let reasons = first["malformedReasons"].to_string();
    assert!(reasons.contains("bad.jsonl:2"), "{reasons}");
    // Sent again: nothing new.
    let again = import();
    assert_eq!(again["stored"], 0);
    assert_eq!(again["duplicates"].as_u64().unwrap(), events);
    // The server holds them under the cluster given.
    let o = Command::new(env!("CARGO_BIN_EXE_kubetrail"))
        .args([
            "report",
            "overview",
            "--server",
            &url,
            "--cluster",
            "backfill",
            "-o",
            "json",
            "--from",
            "2000-01-01",
        ])
        .env("KUBETRAIL_TOKEN", "read-token-0123456789ab")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let overview: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(overview["requests"].as_u64().unwrap() > 0, "{overview}");
    // The local store is the server's: the CLI beside it says so instead of failing on a lock.
    let o = kubetrail(
        &[
            "import",
            "--data-dir",
            data.to_str().unwrap(),
            good.to_str().unwrap(),
        ],
        "",
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("in use"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
