//! `kubetrail verify` over the embedded store: an imported trail verifies; rows edited,
//! deleted and inserted in a copy of the database file are named with their auditIDs (exit
//! 1); a chain rewritten and re-signed with the store's own key verifies alone, and is caught
//! against a checkpoint exported before.

use std::path::Path;
use std::sync::Arc;

use kubetrail_store::Store;
use kubetrail_store::chain::Chain;
use kubetrail_store_duckdb::{DuckDbStore, testing};
use kubetrail_trust::SigningKey;

use crate::kubetrail;

fn event(id: &str, second: u32) -> String {
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"{id}","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/prod/secrets/{id}","verb":"get","user":{{"username":"alice","groups":["dev"]}},"sourceIPs":["10.0.0.1"],"objectRef":{{"resource":"secrets","namespace":"prod","name":"{id}","apiVersion":"v1"}},"responseStatus":{{"metadata":{{}},"code":200}},"requestReceivedTimestamp":"2026-12-01T10:00:{second:02}.000000Z","stageTimestamp":"2026-12-01T10:00:{second:02}.100000Z"}}"#
    )
}

fn write_log(path: &Path, ids: std::ops::Range<u32>) {
    let lines: Vec<String> = ids.map(|i| event(&format!("ev-{i:02}"), i)).collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

fn verify(dir: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["verify", "--data-dir", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = kubetrail(&args, "");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code().is_some(),
        "verify was killed: {stdout}{stderr}"
    );
    (out.status.code().unwrap(), format!("{stdout}{stderr}"))
}

#[test]
fn verify_finds_what_was_edited_deleted_inserted_or_rewritten() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data_s = data.to_str().unwrap();
    let (first, second) = (tmp.path().join("a.log"), tmp.path().join("b.log"));
    write_log(&first, 0..20);
    write_log(&second, 20..40);
    for file in [&first, &second] {
        let out = kubetrail(
            &[
                "import",
                "--data-dir",
                data_s,
                "--cluster",
                "prod",
                file.to_str().unwrap(),
            ],
            "",
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        data.join("signing.key").exists(),
        "the key is made on first import"
    );
    // The public key, kept apart, as an operator would.
    let public = tmp.path().join("public.pem");
    let key = SigningKey::load_or_create(&data.join("signing.key"))
        .unwrap()
        .key;
    std::fs::write(&public, key.public_key().to_pem()).unwrap();
    let public_s = public.to_str().unwrap();
    let checkpoint = tmp.path().join("checkpoint.json");
    let (code, out) = verify(
        &data,
        &[
            "--public-key",
            public_s,
            "--export-checkpoint",
            checkpoint.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("40 events verified"), "{out}");
    assert!(out.contains("intact"), "{out}");
    let cp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&checkpoint).unwrap()).unwrap();
    let head = cp["heads"][0]["seq"].as_u64().unwrap();
    assert!(head >= 2, "{cp}");

    // Edited, deleted and inserted rows, in a copy of the file.
    let edited = tmp.path().join("edited");
    copy_dir(&data, &edited);
    testing::execute(
        &edited,
        "UPDATE events SET username = 'nobody' WHERE audit_id = 'ev-03';
         DELETE FROM events WHERE audit_id = 'ev-25';
         INSERT INTO events SELECT * REPLACE ('forged' AS audit_id, ts + 1 AS ts) FROM events WHERE audit_id = 'ev-30';",
    )
    .unwrap();
    let (code, out) = verify(&edited, &["--public-key", public_s]);
    assert_eq!(code, 1, "{out}");
    for (kind, id) in [
        ("changed", "ev-03"),
        ("deleted", "ev-25"),
        ("inserted", "forged"),
    ] {
        let line = out
            .lines()
            .find(|l| l.contains(&format!("auditID {id}:")))
            .unwrap_or_else(|| panic!("{id} is not named: {out}"));
        assert!(line.starts_with(&format!("{kind}: prod link ")), "{line}");
    }
    assert!(out.contains("NOT INTACT: 3 problems"), "{out}");
    let (_, json) = verify(&edited, &["--public-key", public_s, "-o", "json"]);
    let report: serde_json::Value = serde_json::from_str(
        json.lines()
            .take_while(|l| !l.is_empty())
            .collect::<String>()
            .as_str(),
    )
    .unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(report["intact"], false);
    assert_eq!(report["problemsTotal"], 3);

    // A link changed by hand: its signature no longer holds.
    let resigned = tmp.path().join("relinked");
    copy_dir(&data, &resigned);
    testing::execute(
        &resigned,
        "UPDATE chain SET events = events + 1 WHERE seq = 1;",
    )
    .unwrap();
    let (code, out) = verify(&resigned, &["--public-key", public_s]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("bad-signature: prod link 1:"), "{out}");

    // The chain rewritten from the second import on, re-signed with the store's own key.
    let rewritten = tmp.path().join("rewritten");
    copy_dir(&data, &rewritten);
    let (kept, later) = {
        let store = DuckDbStore::open(&rewritten).unwrap();
        let links = store.chain_links().unwrap();
        let later: Vec<i64> = links
            .iter()
            .filter(|l| l.last_micros >= later_start())
            .map(|l| l.batch)
            .collect();
        let mut rows = Vec::new();
        store
            .chain_events("prod", &later, &mut |_, r| rows.push(r))
            .unwrap();
        (links.len() - later.len(), (later, rows))
    };
    let (batches, mut rows) = later;
    assert_eq!(rows.len(), 20);
    let ids: Vec<String> = batches.iter().map(i64::to_string).collect();
    testing::execute(
        &rewritten,
        &format!(
            "DELETE FROM events WHERE chain_batch IN ({0}); DELETE FROM chain WHERE batch IN ({0});",
            ids.join(", ")
        ),
    )
    .unwrap();
    rows.retain(|r| r.audit_id != "ev-33");
    rows.sort_by_key(|r| r.ts_micros);
    {
        let store = DuckDbStore::open(&rewritten).unwrap();
        let key = SigningKey::load_or_create(&rewritten.join("signing.key"))
            .unwrap()
            .key;
        store
            .set_chain(Arc::new(Chain::new(Box::new(key))))
            .unwrap();
        // As many links as there were, so that the checkpoint's head is among them.
        let parts = head as usize - kept;
        let per = rows.len().div_ceil(parts);
        for part in rows.chunks(per) {
            store.append(part).unwrap();
        }
        assert_eq!(store.chain_links().unwrap().len() as u64, head);
    }
    let (code, out) = verify(&rewritten, &["--public-key", public_s]);
    assert_eq!(code, 0, "a consistent rewrite verifies alone: {out}");
    let (code, out) = verify(
        &rewritten,
        &[
            "--public-key",
            public_s,
            "--checkpoint",
            checkpoint.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("rewritten: prod link {head}:")),
        "{out}"
    );
    // A typo in --cluster is an error, not an empty answer.
    let (code, out) = verify(&data, &["--cluster", "prd"]);
    assert_eq!(code, 2);
    assert!(
        out.contains("no chain of that cluster") && out.contains("prod"),
        "{out}"
    );
}

/// The time of the second log's first event.
fn later_start() -> i64 {
    chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:20Z")
        .unwrap()
        .timestamp_micros()
}
