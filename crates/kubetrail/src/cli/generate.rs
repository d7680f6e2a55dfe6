//! `kubetrail gen`: deterministic, realistic audit traffic as JSON lines on standard output, or
//! written as kube-apiserver's log backend writes it: a rotated set with lumberjack's names.

use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::Args;
use kubetrail_policy::{LoadOptions, Policy, load_str};
use kubetrail_tail::backup_name;
use kubetrail_traffic::{Config, GeneratedEvent, Generator};

use super::common::parse_time;

/// The seed policy: what generated traffic is logged under unless `--policy` says otherwise.
const SEED_POLICY: &str = include_str!("../../../../testdata/policy/seed-audit-policy.yaml");

#[derive(Debug, Args)]
pub struct GenArgs {
    /// Number of events to produce.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    events: u64,
    /// Seed: the same seed and start give the same events.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of clusters (each its own stream; with --out, its own directory).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    clusters: u32,
    /// Time of the first request (RFC 3339); default: so that the last event is about now.
    #[arg(long, value_parser = parse_time)]
    start: Option<DateTime<Utc>>,
    /// Requests per second per cluster.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// The audit policy to log under (default: the bundled seed policy).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Write a rotated set into this directory instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// With --out: rotate when the file would exceed this many MB (1 MB = 1,048,576 bytes).
    #[arg(long, default_value_t = 100, requires = "out")]
    maxsize: u64,
    /// With --out: gzip rotated files, as --audit-log-compress does.
    #[arg(long, requires = "out")]
    compress: bool,
    /// File name of the active log with --out.
    #[arg(long, default_value = "kubernetes.audit", requires = "out")]
    file_name: String,
}

/// A log file that rotates the way lumberjack does.
struct RotatingFile {
    active: PathBuf,
    file: BufWriter<File>,
    size: u64,
    max: u64,
    compress: bool,
    last_rotation_ms: i64,
}

impl RotatingFile {
    fn create(active: PathBuf, max: u64, compress: bool) -> Result<Self> {
        if let Some(dir) = active.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let file =
            File::create(&active).with_context(|| format!("creating {}", active.display()))?;
        Ok(RotatingFile {
            active,
            file: BufWriter::new(file),
            size: 0,
            max,
            compress,
            last_rotation_ms: 0,
        })
    }

    /// Writes one line; rotates first when it would not fit (lumberjack's rule).
    fn write_line(&mut self, line: &str, now_micros: i64) -> Result<()> {
        let len = line.len() as u64 + 1;
        if self.size > 0 && self.size + len > self.max {
            self.rotate(now_micros)?;
        }
        self.file.write_all(line.as_bytes())?;
        self.file.write_all(b"\n")?;
        self.size += len;
        Ok(())
    }

    fn rotate(&mut self, now_micros: i64) -> Result<()> {
        self.file.flush()?;
        // Backup names have millisecond resolution: keep them distinct and increasing.
        let ms = (now_micros / 1000).max(self.last_rotation_ms + 1);
        self.last_rotation_ms = ms;
        let at = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
        let backup = backup_name(&self.active, at, false);
        std::fs::rename(&self.active, &backup)
            .with_context(|| format!("rotating to {}", backup.display()))?;
        if self.compress {
            gzip(&backup)?;
        }
        self.file = BufWriter::new(File::create(&self.active)?);
        self.size = 0;
        Ok(())
    }

    fn finish(mut self) -> Result<()> {
        self.file.flush()?;
        Ok(())
    }
}

fn gzip(path: &Path) -> Result<()> {
    let mut gz_name = path.as_os_str().to_owned();
    gz_name.push(".gz");
    let mut input = File::open(path)?;
    let mut enc = flate2::write::GzEncoder::new(
        BufWriter::new(File::create(&gz_name)?),
        flate2::Compression::default(),
    );
    std::io::copy(&mut input, &mut enc)?;
    enc.finish()?.flush()?;
    std::fs::remove_file(path)?;
    Ok(())
}

/// The next event of each cluster, ordered by time.
struct Pending {
    ts: i64,
    cluster: usize,
    event: GeneratedEvent,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.ts, self.cluster) == (other.ts, other.cluster)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // BinaryHeap is a max-heap: the earliest event first.
        (other.ts, other.cluster).cmp(&(self.ts, self.cluster))
    }
}

/// The bundled seed policy, loaded.
pub fn seed_policy() -> Result<Policy> {
    load_policy(SEED_POLICY)
}

fn load_policy(policy_text: &str) -> Result<Policy> {
    let loaded = load_str(policy_text, LoadOptions::default());
    loaded.policy.with_context(|| {
        format!(
            "the policy would not load: {:?}",
            loaded
                .errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        )
    })
}

pub fn run(args: GenArgs) -> Result<ExitCode> {
    let policy_text = match &args.policy {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        None => SEED_POLICY.to_string(),
    };
    let policy = load_policy(&policy_text)?;
    // Start so the traffic ends near now.
    let start = args.start.unwrap_or_else(|| {
        let seconds = args.events as f64
            / kubetrail_traffic::EVENTS_PER_REQUEST
            / args.rate
            / f64::from(args.clusters);
        Utc::now() - chrono::Duration::milliseconds((seconds * 1000.0) as i64)
    });
    let mut generators: Vec<Generator<'_>> = (0..args.clusters)
        .map(|cluster| {
            Generator::new(
                &policy,
                &Config {
                    seed: args.seed,
                    start,
                    rate: args.rate,
                    cluster,
                },
            )
        })
        .collect();
    let mut buffers: Vec<std::collections::VecDeque<GeneratedEvent>> =
        vec![Default::default(); generators.len()];
    let mut heap = BinaryHeap::new();
    let mut scratch = Vec::new();
    let mut next_of = |i: usize,
                       gens: &mut Vec<Generator<'_>>,
                       bufs: &mut Vec<std::collections::VecDeque<GeneratedEvent>>|
     -> GeneratedEvent {
        // Each generator yields its cluster's events in time order.
        while bufs[i].is_empty() {
            scratch.clear();
            gens[i].next_request(&mut scratch);
            bufs[i].extend(scratch.drain(..));
        }
        bufs[i].pop_front().expect("refilled above")
    };
    for i in 0..generators.len() {
        let event = next_of(i, &mut generators, &mut buffers);
        heap.push(Pending {
            ts: event.ts_micros,
            cluster: i,
            event,
        });
    }

    let mut files: Vec<RotatingFile> = match &args.out {
        Some(dir) => (0..args.clusters)
            .map(|c| {
                let base = if args.clusters == 1 {
                    dir.clone()
                } else {
                    dir.join(format!("cluster-{c}"))
                };
                RotatingFile::create(
                    base.join(&args.file_name),
                    args.maxsize * 1024 * 1024,
                    args.compress,
                )
            })
            .collect::<Result<_>>()?,
        None => Vec::new(),
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    for _ in 0..args.events {
        let Some(Pending { cluster, event, .. }) = heap.pop() else {
            break;
        };
        match files.get_mut(cluster) {
            Some(f) => f.write_line(&event.json, event.ts_micros)?,
            None => {
                out.write_all(event.json.as_bytes())?;
                out.write_all(b"\n")?;
            }
        }
        let next = next_of(cluster, &mut generators, &mut buffers);
        heap.push(Pending {
            ts: next.ts_micros,
            cluster,
            event: next,
        });
    }
    out.flush()?;
    for f in files {
        f.finish()?;
    }
    Ok(ExitCode::SUCCESS)
}
