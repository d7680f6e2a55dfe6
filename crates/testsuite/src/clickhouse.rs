//! A throwaway ClickHouse server for tests: Debian's `clickhouse-server` started on free
//! ports in a temporary directory, with the users file kept in the repository
//! (`.ci/clickhouse/users.xml`), and stopped when dropped. Tests that need one call
//! [`TestServer::start`], which says it skipped when no server is installed — unless
//! `KUBETRAIL_REQUIRE_CLICKHOUSE` is set, as `.ci/run` does, and then it fails.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server binary Debian's package installs.
pub const SERVER: &str = "/usr/sbin/clickhouse-server";

/// The users file (the `default` user, no password, local access only).
const USERS: &str = include_str!("../../../.ci/clickhouse/users.xml");

/// A running server.
pub struct TestServer {
    child: Option<Child>,
    /// Its HTTP URL.
    pub url: String,
    dir: tempfile::TempDir,
    http: u16,
    tcp: u16,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

impl TestServer {
    /// Starts a server, or `None` (after saying so) when none is installed.
    ///
    /// # Panics
    /// When the server is missing but required, or does not come up within a minute.
    #[allow(clippy::expect_used)]
    pub fn start() -> Option<TestServer> {
        if !std::path::Path::new(SERVER).exists() {
            assert!(
                std::env::var_os("KUBETRAIL_REQUIRE_CLICKHOUSE").is_none(),
                "{SERVER} is not installed but KUBETRAIL_REQUIRE_CLICKHOUSE is set"
            );
            eprintln!("skipped: {SERVER} is not installed (apt-get install clickhouse-server)");
            return None;
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut s = TestServer {
            child: None,
            url: String::new(),
            dir,
            http: free_port(),
            tcp: free_port(),
        };
        s.url = format!("http://127.0.0.1:{}", s.http);
        s.restart();
        Some(s)
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Stops the server (SIGKILL), keeping its data.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same ports and data, and waits until it answers.
    ///
    /// # Panics
    /// When it does not answer within a minute.
    #[allow(clippy::expect_used)]
    pub fn restart(&mut self) {
        self.stop();
        let d = self.path().display().to_string();
        std::fs::write(self.path().join("users.xml"), USERS).expect("users.xml");
        let config = format!(
            "<?xml version=\"1.0\"?>\n<yandex>\n  <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/error.log</errorlog><size>10M</size><count>1</count></logger>\n  <listen_host>127.0.0.1</listen_host>\n  <http_port>{}</http_port>\n  <tcp_port>{}</tcp_port>\n  <path>{d}/data/</path>\n  <tmp_path>{d}/tmp/</tmp_path>\n  <user_files_path>{d}/user_files/</user_files_path>\n  <format_schema_path>{d}/format_schemas/</format_schema_path>\n  <users_config>{d}/users.xml</users_config>\n  <default_profile>default</default_profile>\n  <default_database>default</default_database>\n  <mark_cache_size>268435456</mark_cache_size>\n</yandex>\n",
            self.http, self.tcp
        );
        std::fs::write(self.path().join("config.xml"), config).expect("config.xml");
        let child = Command::new(SERVER)
            .arg(format!("--config-file={d}/config.xml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("clickhouse-server starts");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(60);
        while ureq::get(&format!("{}/ping", self.url)).call().is_err() {
            assert!(
                Instant::now() < until,
                "clickhouse-server did not answer on {}",
                self.url
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
