//! `kubetrail import` on damaged and unusual input: a `.gz` cut short keeps every complete
//! line and the other files of the run; events without timestamps are placed at the file's
//! time, the same on every import.

use std::io::Read;

use serde_json::Value;

use super::{kubetrail, stdout};

/// `import --json` of `paths` into `data_dir`, which must succeed.
fn import_json(data_dir: &str, paths: &[&str]) -> Value {
    let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
    super::store::import(data_dir, &paths)
}

/// Complete lines a gzip decoder gets out of `bytes` before it fails.
fn recoverable_lines(bytes: &[u8]) -> u64 {
    let mut decoder = flate2::read::MultiGzDecoder::new(bytes);
    let mut out = Vec::new();
    let mut buf = [0u8; 1 << 16];
    loop {
        match decoder.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out.iter().filter(|&&b| b == b'\n').count() as u64
}

fn lines_of_gz(bytes: &[u8]) -> u64 {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_string(&mut text)
        .unwrap();
    text.lines().count() as u64
}

#[test]
fn a_cut_gzip_keeps_its_complete_lines_and_the_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let out = kubetrail(
        &[
            "gen",
            "--events",
            "30000",
            "--seed",
            "5",
            "--start",
            "2024-05-01T00:00:00Z",
            "--out",
            logs.to_str().unwrap(),
            "--maxsize",
            "4",
            "--compress",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0));
    let mut backups: Vec<_> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "gz"))
        .collect();
    backups.sort();
    assert!(backups.len() >= 2, "{backups:?}");
    let active = logs.join("kubernetes.audit");
    let active_lines = std::fs::read_to_string(&active).unwrap().lines().count() as u64;

    // The first backup cut in half; the others (gzip and plain) intact.
    let cut = &backups[0];
    let whole = std::fs::read(cut).unwrap();
    let half = &whole[..whole.len() / 2];
    std::fs::write(cut, half).unwrap();
    let recoverable = recoverable_lines(half);
    assert!(recoverable > 1000, "{recoverable}");
    let intact: u64 = backups[1..]
        .iter()
        .map(|p| lines_of_gz(&std::fs::read(p).unwrap()))
        .sum();

    let data = dir.path().join("data");
    let s = import_json(data.to_str().unwrap(), &[logs.to_str().unwrap()]);
    assert_eq!(s["stored"], recoverable + intact + active_lines, "{s}");
    let damaged = s["damagedFiles"].as_array().unwrap();
    assert_eq!(damaged.len(), 1, "{s}");
    let reason = damaged[0].as_str().unwrap();
    assert!(
        reason.starts_with(&cut.display().to_string()) && reason.contains("unreadable after byte"),
        "{reason}"
    );

    // Importing the same files again stores nothing new.
    let again = import_json(data.to_str().unwrap(), &[logs.to_str().unwrap()]);
    assert_eq!(again["stored"], 0, "{again}");
}

#[test]
fn events_without_timestamps_take_the_file_time_and_import_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hand-written.jsonl");
    std::fs::write(
        &log,
        concat!(
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"abc-123","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods/x","verb":"delete","user":{"username":"mallory"},"objectRef":{"resource":"pods","namespace":"default","name":"x","apiVersion":"v1"},"responseStatus":{"code":200}}"#,
            "\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let s = import_json(d, &[log.to_str().unwrap()]);
    assert_eq!(s["stored"], 1);
    // Found by the default range of `who`, which a 1970 time would miss.
    let out = kubetrail(
        &["who", "delete", "pods/x", "--data-dir", d, "-o", "json"],
        "",
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&out).contains("mallory"), "{}", stdout(&out));
    let again = import_json(d, &[log.to_str().unwrap()]);
    assert_eq!(again["stored"], 0, "re-import is idempotent: {again}");
}
