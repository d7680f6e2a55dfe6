//! The command line's fixed contracts, exercised through the real binary: exit codes, output
//! shapes and the JSON lines protocol of `policy eval`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod alertmanager;
mod backfill;
mod clickhouse;
mod collect;
mod detect;
mod diff;
mod import;
mod install;
mod policy;
mod rbac;
mod redaction;
mod reports;
mod serve;
mod store;
mod verify;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// Path of a file under the repository's `testdata/`.
pub fn testdata(rel: &str) -> PathBuf {
    // Read at run time: a shared target directory may hold this binary from another checkout.
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(rel)
}

/// Runs `kubetrail ARGS` with `stdin` as standard input.
pub fn kubetrail(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubetrail"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (at most 30 s) until something listens on `port` of 127.0.0.1.
pub fn wait_port(port: u16) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < until,
            "nothing listens on {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// A file with `content` in a fresh temporary directory (kept alive by the returned guard).
pub fn file(name: &str, content: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    (dir, path)
}
