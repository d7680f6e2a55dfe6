//! Collection figures, printed as `name<TAB>value` lines for `scripts/bench-collect`:
//!
//! - webhook ingest: `EventList` batches of 400 generated events posted by four clients to an
//!   in-process server over the embedded store (events/s, MB/s, ack latency p50/p99);
//! - the agent (`kubetrail agent`, a separate process) tailing a fast writer, shipping to a
//!   sink that acknowledges at once — the agent's own throughput, CPU seconds and peak RSS;
//! - the same agent into the real server and store (events/s);
//! - write-to-queryable latency through the agent: a probe event appended to the live log every
//!   50 ms, polled for in the store until it answers (p50/p99).
//!
//! Not a criterion bench: the figures are throughputs of whole processes. Run it through the
//! script (it builds with the profile CI uses).

/// The allocator the `kubetrail` binary uses, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::routing::post;
use kubetrail_server::{AppState, Authenticator, Limits, router};
use kubetrail_store::{Filter, Store};
use kubetrail_store_duckdb::DuckDbStore;
use kubetrail_tail::backup_name;

const TOKEN: &str = "bench-token-0123456789";

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
        .expect("kubetrail gen runs");
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .map(str::to_string)
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Serves `app` on a fresh port in a background runtime.
fn spawn_http(app: axum::Router) -> SocketAddr {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        rt.block_on(async move { axum::serve(listener, app).await.expect("serve") })
    });
    addr
}

/// The default pack, for a server that detects.
fn default_rules() -> kubetrail_server::RuleLoader {
    Arc::new(|| {
        let rt = kubetrail_detect::Runtime::new();
        let rules = kubetrail_detect::load(&rt, true, &[], &kubetrail_detect::Overrides::new())
            .map_err(|e| format!("{e:?}"))?;
        Ok((rt, rules))
    })
}

/// What a benchmarked server does besides storing: nothing, redaction (serve's default), or
/// redaction and live detection.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Plain,
    /// Plain, each commit linked into the signed hash chain.
    Chained,
    Redacting,
    Detecting,
}

fn server(
    dir: &Path,
    mode: Mode,
) -> (
    SocketAddr,
    Arc<dyn Store>,
    Option<Arc<kubetrail_server::Detector>>,
) {
    let store: Arc<dyn Store> = Arc::new(DuckDbStore::open(dir).expect("store"));
    if mode == Mode::Chained {
        let (key, _) = kubetrail_trust::SigningKey::generate().expect("key");
        let chain = kubetrail_store::chain::Chain::new(Box::new(key));
        store.set_chain(Arc::new(chain)).expect("chain");
    }
    let tokens = kubetrail_server::auth::parse_tokens(&format!(
        "- {{name: bench, token: {TOKEN}, role: admin}}"
    ))
    .expect("tokens");
    let state = AppState::new(
        store.clone(),
        Authenticator::Tokens(tokens),
        Limits::default(),
        Some(dir.to_path_buf()),
    )
    .expect("state");
    let state = if matches!(mode, Mode::Plain | Mode::Chained) {
        state
    } else {
        let key = kubetrail_redact::Key::load_or_create(dir).expect("redaction key");
        let redactor = kubetrail_redact::Redactor::new(&key.key, &[]).expect("redactor");
        state.with_redaction(Arc::new(redactor))
    };
    let state = if mode == Mode::Detecting {
        state
            .with_detection(default_rules())
            .expect("the pack loads")
    } else {
        state
    };
    let detector = state.detector.clone();
    (spawn_http(router(Arc::new(state))), store, detector)
}

/// The server's `/metrics` text (empty when it does not answer).
fn metrics_text(addr: SocketAddr) -> String {
    ureq::Agent::new_with_defaults()
        .get(&format!("http://{addr}/metrics"))
        .header("authorization", &format!("Bearer {TOKEN}"))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .unwrap_or_default()
}

fn webhook(lines: &[String], work: &Path, mode: Mode) {
    let name = match mode {
        Mode::Plain => "webhook",
        Mode::Chained => "webhook+chain",
        Mode::Redacting => "webhook+redaction",
        Mode::Detecting => "webhook+redaction+detection",
    };
    // A fresh store each run, also for a mode run twice.
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let (addr, store, detector) = server(&work.join(format!("{name}-store-{run}")), mode);
    let bodies: Vec<Vec<u8>> = lines
        .chunks(400)
        .map(|batch| {
            let items: Vec<&str> = batch.iter().map(String::as_str).collect();
            format!(
                "{{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"items\":[{}]}}",
                items.join(",")
            )
            .into_bytes()
        })
        .collect();
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let bodies = bodies.clone();
            let next = next.clone();
            std::thread::spawn(move || {
                let agent = ureq::Agent::new_with_defaults();
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(body) = bodies.get(i) else {
                        return latencies;
                    };
                    let t = Instant::now();
                    agent
                        .post(&format!("http://{addr}/api/v1/audit/webhook?cluster=bench"))
                        .header("authorization", &format!("Bearer {TOKEN}"))
                        .header("content-type", "application/json")
                        .send(&body[..])
                        .expect("the batch is accepted");
                    latencies.push(t.elapsed());
                }
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client"))
        .collect();
    let secs = started.elapsed().as_secs_f64();
    latencies.sort();
    let stored = store.count().expect("count");
    assert_eq!(stored, lines.len() as u64, "every event stored");
    println!(
        "{name} events/s (acknowledged)\t{:.0}",
        lines.len() as f64 / secs
    );
    if let Some(d) = &detector {
        while !d.caught_up() {
            std::thread::sleep(Duration::from_millis(5));
        }
        let all = started.elapsed().as_secs_f64();
        println!(
            "{name} events/s (evaluated, alerts stored)\t{:.0}",
            lines.len() as f64 / all
        );
        println!(
            "{name} detection caught up after the last ack\t{:.2} s",
            all - secs
        );
        let metrics = metrics_text(addr);
        for l in metrics.lines().filter(|l| {
            l.starts_with("kubetrail_alerts_stored_total")
                || l.starts_with("kubetrail_store_operation_seconds_count{operation=\"append\"")
                || l.starts_with("kubetrail_store_operation_seconds_sum{operation=\"append\"")
        }) {
            let (k, v) = l.rsplit_once(' ').unwrap_or((l, ""));
            println!("{name} {k}\t{v}");
        }
        return;
    }
    println!("{name} MB/s\t{:.1}", bytes as f64 / 1048576.0 / secs);
    let metrics = metrics_text(addr);
    let value = |prefix: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let commits = value("kubetrail_batch_commit_seconds_count{source=\"webhook\"}");
    let commit_secs = value("kubetrail_batch_commit_seconds_sum{source=\"webhook\"}");
    println!(
        "{name} store commit per batch (mean)\t{:.1} ms",
        1000.0 * commit_secs / commits.max(1.0)
    );
    println!(
        "{name} ack p50 / p99 (400-event batch)\t{} / {} ms",
        percentile(&latencies, 0.5).as_millis(),
        percentile(&latencies, 0.99).as_millis()
    );
}

/// A sink that acknowledges agent batches at once (counting their lines).
fn null_sink(lines: Arc<AtomicU64>) -> SocketAddr {
    let app = axum::Router::new().route(
        "/api/v1/audit/events",
        post(move |body: Bytes| {
            let lines = lines.clone();
            async move {
                use std::io::Read;
                let mut plain = Vec::new();
                let _ = flate2::read::MultiGzDecoder::new(&body[..]).read_to_end(&mut plain);
                let n = plain.iter().filter(|b| **b == b'\n').count() as u64;
                lines.fetch_add(n, Ordering::Relaxed);
                axum::Json(serde_json::json!({"received": n, "stored": n, "duplicates": 0, "rejected": 0}))
            }
        }),
    )
    .route("/api/v1/agents/status", post(|| async { axum::Json(serde_json::json!({"newGaps": 0})) }));
    spawn_http(app)
}

/// Writes `lines` into `dir/kubernetes.audit` as lumberjack would, rotating at `max` bytes.
fn write_rotated(dir: &Path, lines: &[String], max: u64) {
    let active = dir.join("kubernetes.audit");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&active).expect("create"));
    let mut size = 0u64;
    let mut last = 0i64;
    for l in lines {
        let len = l.len() as u64 + 1;
        if size + len > max {
            file.flush().expect("flush");
            let mut now = chrono::Utc::now();
            while now.timestamp_millis() <= last {
                std::thread::sleep(Duration::from_millis(1));
                now = chrono::Utc::now();
            }
            last = now.timestamp_millis();
            std::fs::rename(&active, backup_name(&active, now, false)).expect("rotate");
            file = std::io::BufWriter::new(std::fs::File::create(&active).expect("create"));
            size = 0;
        }
        file.write_all(l.as_bytes()).expect("write");
        file.write_all(b"\n").expect("write");
        size += len;
    }
    file.flush().expect("flush");
}

fn spawn_agent(server: SocketAddr, logs: &Path, state: &Path, token_file: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_kubetrail"))
        .arg("agent")
        .arg("--path")
        .arg(logs.join("kubernetes.audit"))
        .args([
            "--server",
            &format!("http://{server}"),
            "--node",
            "bench",
            "--cluster",
            "bench",
        ])
        .arg("--token-file")
        .arg(token_file)
        .arg("--state-dir")
        .arg(state)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the agent starts")
}

/// CPU seconds and peak RSS (KiB) of a running process.
fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    (ticks / 100.0, hwm)
}

fn agent_to_sink(lines: &[String], work: &Path, token_file: &Path) {
    let logs = work.join("agent-logs");
    std::fs::create_dir_all(&logs).expect("dir");
    let received = Arc::new(AtomicU64::new(0));
    let sink = null_sink(received.clone());
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    let started = Instant::now();
    let mut agent = spawn_agent(sink, &logs, &work.join("agent-state"), token_file);
    // The fast writer: as fast as the disk takes it, rotating every 64 MB.
    let writer = {
        let lines = lines.to_vec();
        let logs = logs.clone();
        std::thread::spawn(move || write_rotated(&logs, &lines, 64 << 20))
    };
    while received.load(Ordering::Relaxed) < lines.len() as u64 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let secs = started.elapsed().as_secs_f64();
    let (cpu, rss) = usage(agent.id());
    writer.join().expect("writer");
    let _ = agent.kill();
    let _ = agent.wait();
    println!(
        "agent MB/s (to an acknowledging sink)\t{:.0}",
        bytes as f64 / 1048576.0 / secs
    );
    println!(
        "agent events/s (to an acknowledging sink)\t{:.0}",
        lines.len() as f64 / secs
    );
    println!(
        "agent CPU seconds for {:.0} MB\t{cpu:.2}",
        bytes as f64 / 1048576.0
    );
    println!(
        "agent MB/s per CPU second\t{:.0}",
        bytes as f64 / 1048576.0 / cpu.max(0.01)
    );
    println!("agent peak RSS\t{:.1} MiB", rss as f64 / 1024.0);
}

fn agent_to_store(lines: &[String], work: &Path, token_file: &Path) {
    let (addr, store, _) = server(&work.join("agent-store"), Mode::Redacting);
    let logs = work.join("agent-store-logs");
    std::fs::create_dir_all(&logs).expect("dir");
    write_rotated(&logs, lines, 64 << 20);
    let started = Instant::now();
    let mut agent = spawn_agent(addr, &logs, &work.join("agent-store-state"), token_file);
    while store.count().expect("count") < lines.len() as u64 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "agent -> serve -> store events/s\t{:.0}",
        lines.len() as f64 / secs
    );

    // Write-to-queryable: probes appended to the live log while the agent follows it.
    let template: serde_json::Value = serde_json::from_str(&lines[0]).expect("JSON");
    let active = logs.join("kubernetes.audit");
    let mut latencies = Vec::new();
    for i in 0..200 {
        let mut probe = template.clone();
        let name = format!("latency-probe-{i}");
        probe["auditID"] = serde_json::json!(format!("probe-{i}"));
        probe["objectRef"] = serde_json::json!({"resource": "configmaps", "namespace": "bench", "name": name, "apiVersion": "v1"});
        let text = format!("{probe}\n");
        let t = Instant::now();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&active)
            .expect("open")
            .write_all(text.as_bytes())
            .expect("append");
        let filter = Filter {
            names: vec![name],
            ..Filter::default()
        };
        while store
            .query(&filter, None, 1)
            .expect("query")
            .records
            .is_empty()
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        latencies.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = agent.kill();
    let _ = agent.wait();
    latencies.sort();
    println!(
        "write-to-queryable via agent p50 / p99\t{} / {} ms",
        percentile(&latencies, 0.5).as_millis(),
        percentile(&latencies, 0.99).as_millis()
    );
}

fn main() {
    let events: u64 = std::env::var("KUBETRAIL_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let work = tempfile::tempdir().expect("temporary directory");
    let token_file: PathBuf = work.path().join("token");
    std::fs::write(&token_file, TOKEN).expect("token");
    let lines = generated(events, 42);
    println!("events\t{}", lines.len());
    println!(
        "raw MB\t{:.0}",
        lines.iter().map(|l| l.len() + 1).sum::<usize>() as f64 / 1048576.0
    );
    // `KUBETRAIL_BENCH_ONLY=webhook` (or `agent`) runs one part.
    let only = std::env::var("KUBETRAIL_BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only == "webhook" {
        // Each run gets its own server and store; the order is alternated so that what one
        // run leaves behind (the store's background work) weighs on both kinds alike.
        webhook(&lines, work.path(), Mode::Detecting);
        webhook(&lines, work.path(), Mode::Plain);
        webhook(&lines, work.path(), Mode::Chained);
        webhook(&lines, work.path(), Mode::Redacting);
        webhook(&lines, work.path(), Mode::Chained);
        webhook(&lines, work.path(), Mode::Plain);
    }
    if only.is_empty() || only == "agent" {
        agent_to_sink(&lines, work.path(), &token_file);
        agent_to_store(&lines, work.path(), &token_file);
    }
}
