//! Collection end to end, with real processes on 127.0.0.1: a writer that behaves like
//! kube-apiserver's log backend (lumberjack: rotation at a tiny maxsize, optional gzip of
//! backups, pruning), `kubetrail agent` following it, `kubetrail serve` storing; the agent and
//! the server are killed with SIGKILL at random moments and the server is stopped for a while.
//! Afterwards every (auditID, stage) written is in the store exactly once.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kubetrail_api::{Client, ClientOptions};
use kubetrail_store::Filter;
use kubetrail_tail::backup_name;

use crate::{free_port, wait_port};

const ADMIN: &str = "admin-token-for-collect-tests";
const INGEST: &str = "ingest-token-for-collect-tests";

/// A deterministic generator for the chaos schedule.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// A log writer with lumberjack's behaviour.
struct Writer {
    active: PathBuf,
    file: File,
    size: u64,
    max: u64,
    compress: bool,
    keep: usize,
    last_ms: i64,
    backups: Vec<PathBuf>,
}

impl Writer {
    fn new(active: PathBuf, max: u64, compress: bool, keep: usize) -> Writer {
        std::fs::create_dir_all(active.parent().unwrap()).unwrap();
        let file = File::create(&active).unwrap();
        Writer {
            active,
            file,
            size: 0,
            max,
            compress,
            keep,
            last_ms: 0,
            backups: Vec::new(),
        }
    }

    fn rotate(&mut self) {
        let mut now = chrono::Utc::now();
        while now.timestamp_millis() <= self.last_ms {
            std::thread::sleep(Duration::from_millis(1));
            now = chrono::Utc::now();
        }
        self.last_ms = now.timestamp_millis();
        let backup = backup_name(&self.active, now, false);
        std::fs::rename(&self.active, &backup).unwrap();
        self.file = File::create(&self.active).unwrap();
        self.size = 0;
        let backup = if self.compress {
            // lumberjack's mill: write the .gz, then remove the original.
            let data = std::fs::read(&backup).unwrap();
            let gz = PathBuf::from(format!("{}.gz", backup.display()));
            let mut enc = flate2::write::GzEncoder::new(
                File::create(&gz).unwrap(),
                flate2::Compression::fast(),
            );
            enc.write_all(&data).unwrap();
            enc.finish().unwrap();
            std::fs::remove_file(&backup).unwrap();
            gz
        } else {
            backup
        };
        self.backups.push(backup);
        while self.keep > 0 && self.backups.len() > self.keep {
            std::fs::remove_file(self.backups.remove(0)).unwrap();
        }
    }

    fn write_line(&mut self, line: &str) {
        let len = line.len() as u64 + 1;
        if self.size + len > self.max {
            self.rotate();
        }
        // One write per event, as the log backend does.
        self.file.write_all(format!("{line}\n").as_bytes()).unwrap();
        self.size += len;
    }
}

fn log_file(dir: &Path, name: &str) -> Stdio {
    Stdio::from(
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(name))
            .unwrap(),
    )
}

struct Cluster {
    dir: PathBuf,
    port: u16,
    serve: Option<Child>,
    agent: Option<Child>,
}

impl Cluster {
    fn new(dir: &Path) -> Cluster {
        std::fs::write(
            dir.join("tokens.yaml"),
            format!("- {{name: agent, token: {INGEST}, role: ingest}}\n- {{name: test, token: {ADMIN}, role: admin}}\n"),
        )
        .unwrap();
        std::fs::write(dir.join("ingest.token"), INGEST).unwrap();
        Cluster {
            dir: dir.to_path_buf(),
            port: free_port(),
            serve: None,
            agent: None,
        }
    }

    fn start_serve(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_kubetrail"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{}", self.port),
                "--tokens-file",
            ])
            .arg(self.dir.join("tokens.yaml"))
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .stdout(Stdio::null())
            .stderr(log_file(&self.dir, "serve.log"))
            .spawn()
            .unwrap();
        self.serve = Some(child);
        wait_port(self.port);
    }

    fn start_agent(&mut self, extra: &[&str]) {
        let child = Command::new(env!("CARGO_BIN_EXE_kubetrail"))
            .arg("agent")
            .arg("--path")
            .arg(self.dir.join("logs/kubernetes.audit"))
            .args([
                "--server",
                &format!("http://127.0.0.1:{}", self.port),
                "--cluster",
                "e2e",
                "--node",
                "cp-1",
            ])
            .arg("--token-file")
            .arg(self.dir.join("ingest.token"))
            .arg("--state-dir")
            .arg(self.dir.join("agent-state"))
            .args(["--poll-interval-ms", "50", "--batch-max-bytes", "65536"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log_file(&self.dir, "agent.log"))
            .spawn()
            .unwrap();
        self.agent = Some(child);
    }

    fn kill(child: &mut Option<Child>) {
        if let Some(mut c) = child.take() {
            c.kill().unwrap(); // SIGKILL
            c.wait().unwrap();
        }
    }

    fn client(&self) -> Client {
        let options = ClientOptions {
            token: Some(ADMIN.into()),
            ..ClientOptions::default()
        };
        Client::new(&format!("http://127.0.0.1:{}", self.port), &options).unwrap()
    }

    /// Every stored (auditID, stage, stageTimestamp), and how many rows there were.
    fn stored(&self) -> (BTreeSet<(String, String, String)>, usize) {
        let client = self.client();
        let mut set = BTreeSet::new();
        let mut rows = 0;
        let mut cursor = None;
        loop {
            let page = client
                .events(&Filter::default(), cursor.as_ref(), 5000)
                .unwrap();
            for item in &page.items {
                let e: serde_json::Value = serde_json::from_str(item.event.get()).unwrap();
                rows += 1;
                set.insert(identity(&e));
            }
            match page.next {
                Some(c) => cursor = Some(c.parse().unwrap()),
                None => return (set, rows),
            }
        }
    }

    fn stored_count(&self) -> u64 {
        let reply = self
            .client()
            .aggregate(&Filter::default(), &["cluster"], None);
        reply
            .map(|r| r.groups.iter().map(|g| g.count).sum())
            .unwrap_or(0)
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        Cluster::kill(&mut self.agent);
        Cluster::kill(&mut self.serve);
    }
}

fn identity(e: &serde_json::Value) -> (String, String, String) {
    let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
    (s("auditID"), s("stage"), s("stageTimestamp"))
}

fn generated(events: u64, seed: u64) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_kubetrail"))
        .args([
            "gen",
            "--events",
            &events.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn chaos(compress: bool, seed: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::new(tmp.path());
    let lines = generated(12_000, seed);
    let written: BTreeSet<_> = lines
        .iter()
        .map(|l| identity(&serde_json::from_str(l).unwrap()))
        .collect();
    assert_eq!(
        written.len(),
        lines.len(),
        "generated identities are unique"
    );

    cluster.start_serve();
    cluster.start_agent(&[]);
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let done = done.clone();
        let active = tmp.path().join("logs/kubernetes.audit");
        std::thread::spawn(move || {
            // 256 KiB files: dozens of rotations, several in a row while the agent is down.
            let mut w = Writer::new(active, 256 << 10, compress, 0);
            for burst in lines.chunks(150) {
                for l in burst {
                    w.write_line(l);
                }
                std::thread::sleep(Duration::from_millis(40));
            }
            done.store(true, Ordering::Relaxed);
        })
    };
    let mut rng = Lcg(seed);
    let mut actions = Vec::new();
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200 + rng.next(600)));
        match rng.next(4) {
            0 | 1 => {
                Cluster::kill(&mut cluster.agent);
                cluster.start_agent(&[]);
                actions.push("kill -9 agent");
            }
            2 => {
                Cluster::kill(&mut cluster.serve);
                cluster.start_serve();
                actions.push("kill -9 serve");
            }
            _ => {
                Cluster::kill(&mut cluster.serve);
                std::thread::sleep(Duration::from_millis(1500));
                cluster.start_serve();
                actions.push("serve down 1.5 s");
            }
        }
    }
    writer.join().unwrap();
    let until = Instant::now() + Duration::from_secs(90);
    while cluster.stored_count() < written.len() as u64 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(200));
    }
    let (stored, rows) = cluster.stored();
    let missing: Vec<_> = written.difference(&stored).take(5).collect();
    assert!(
        missing.is_empty(),
        "{} events missing, e.g. {missing:?}; after {actions:?}\nagent log:\n{}\nserve warnings:\n{}",
        written.len() - stored.len().min(written.len()),
        cluster.log("agent.log"),
        cluster
            .log("serve.log")
            .lines()
            .filter(|l| !l.contains("INFO"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(stored.len(), written.len(), "nothing extra");
    assert_eq!(rows, written.len(), "each event exactly once");
    assert!(actions.len() >= 3, "the chaos did something: {actions:?}");
}

#[test]
fn kill_9_and_outages_lose_and_duplicate_nothing() {
    chaos(false, 7);
}

#[test]
fn kill_9_and_outages_lose_and_duplicate_nothing_with_gzip_backups() {
    chaos(true, 8);
}

#[test]
fn backups_pruned_while_the_agent_is_down_are_reported_as_gaps() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::new(tmp.path());
    cluster.start_serve();
    let lines = generated(3000, 5);
    let mut w = Writer::new(
        tmp.path().join("logs/kubernetes.audit"),
        128 << 10,
        false,
        2,
    );
    // The agent reads the first file, then is down while the writer rotates and prunes.
    for l in &lines[..100] {
        w.write_line(l);
    }
    cluster.start_agent(&[]);
    let until = Instant::now() + Duration::from_secs(30);
    while cluster.stored_count() < 100 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(cluster.stored_count(), 100);
    Cluster::kill(&mut cluster.agent);
    for l in &lines[100..] {
        w.write_line(l);
    }
    cluster.start_agent(&[]);
    // What survived on disk arrives; what was pruned is a gap the server shows.
    let on_disk: usize = std::fs::read_dir(tmp.path().join("logs"))
        .unwrap()
        .map(|e| {
            std::fs::read_to_string(e.unwrap().path())
                .unwrap()
                .lines()
                .count()
        })
        .sum();
    let until = Instant::now() + Duration::from_secs(30);
    let gaps = loop {
        let (status, body) = get(cluster.port, "/api/v1/agents/gaps");
        assert_eq!(status, 200, "{body}");
        let gaps: serde_json::Value = serde_json::from_str(&body).unwrap();
        if !gaps.as_array().unwrap().is_empty() || Instant::now() > until {
            break gaps;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let gap = &gaps[0];
    assert_eq!(gap["cluster"], "e2e");
    assert_eq!(gap["node"], "cp-1");
    assert!(
        gap["reason"]
            .as_str()
            .unwrap()
            .contains("before it was read to its end"),
        "{gap}"
    );
    assert!(
        gap["file"].as_str().unwrap().contains("kubernetes"),
        "{gap}"
    );
    let until = Instant::now() + Duration::from_secs(30);
    while cluster.stored_count() < (100 + on_disk) as u64 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    let stored = cluster.stored_count();
    assert!(
        stored >= (100 + on_disk) as u64,
        "{stored} < 100 + {on_disk}"
    );
    assert!(stored < lines.len() as u64, "some data really was pruned");
    let (_, metrics) = get(cluster.port, "/metrics");
    assert!(
        metrics.contains("kubetrail_agent_status_gaps_total{cluster=\"e2e\",node=\"cp-1\"}"),
        "{metrics}"
    );
}

/// A GET with the admin token, over a plain socket-level client.
fn get(port: u16, path: &str) -> (u16, String) {
    let client = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut r = client
        .get(&format!("http://127.0.0.1:{port}{path}"))
        .header("authorization", &format!("Bearer {ADMIN}"))
        .call()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_string().unwrap())
}

#[test]
fn search_through_a_server_pages_past_the_api_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::new(dir.path());
    let log = dir.path().join("gen.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_kubetrail"))
        .args(["gen", "--events", "12000", "--seed", "11"])
        .args(["--start", "2024-05-01T00:00:00Z"])
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::write(&log, &out.stdout).unwrap();
    let import = Command::new(env!("CARGO_BIN_EXE_kubetrail"))
        .arg("import")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg(&log)
        .output()
        .unwrap();
    assert!(import.status.success());
    cluster.start_serve();
    std::fs::write(dir.path().join("admin.token"), ADMIN).unwrap();
    let search = |limit: &str| {
        Command::new(env!("CARGO_BIN_EXE_kubetrail"))
            .args([
                "search",
                "--server",
                &format!("http://127.0.0.1:{}", cluster.port),
            ])
            .arg("--token-file")
            .arg(dir.path().join("admin.token"))
            .args([
                "--from",
                "2024-04-01T00:00:00Z",
                "--to",
                "2024-07-01T00:00:00Z",
            ])
            .args(["--limit", limit, "-o", "json"])
            .output()
            .unwrap()
    };
    let all = search("20000");
    assert!(
        all.status.success(),
        "{}",
        String::from_utf8_lossy(&all.stderr)
    );
    let all = String::from_utf8(all.stdout).unwrap();
    let all: Vec<&str> = all.lines().collect();
    assert_eq!(all.len(), 12000, "every event, past the API's page size");
    let distinct: BTreeSet<&str> = all.iter().copied().collect();
    assert_eq!(distinct.len(), 12000);

    let part = search("7000");
    assert!(part.status.success());
    let text = String::from_utf8(part.stdout).unwrap();
    let part: Vec<&str> = text.lines().collect();
    assert_eq!(part, all[..7000], "the same order as one long answer");
    assert!(String::from_utf8_lossy(&search("7000").stderr).contains("--after"));
}
