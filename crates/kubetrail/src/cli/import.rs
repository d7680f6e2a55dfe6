//! `kubetrail import`: load audit log files, as kube-apiserver writes them, into the local
//! store. One thread reads and decodes, the caller's thread appends batches as one bulk load
//! ([`Store::bulk`](kubetrail_store::Store::bulk)); malformed lines are counted, reported with
//! `file:line`, and skipped. With `--server`, the lines go to a running server's ingest API
//! instead (a backfill while it runs), which decodes, redacts and stores them as an agent's.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use kubetrail_store::Record;
use kubetrail_store::intake::{Rejections, decode_line};
use kubetrail_tail::{LineReader, order_paths};
use serde::Serialize;

use super::common::SourceArgs;

mod remote;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The local store, or (`--server URL` with an ingest token) a running server.
    #[command(flatten)]
    source: SourceArgs,
    /// Cluster the events belong to.
    #[arg(long, default_value = "default")]
    cluster: String,
    /// Events per transaction.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..))]
    batch_size: u32,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Also run the detection rules over what is imported and store their alerts.
    #[arg(long)]
    detect: bool,
    #[command(flatten)]
    rules: super::detect::RuleArgs,
    /// Store the events as they are, Secret values, tokens and passwords included. Without it,
    /// they are replaced by keyed-hash markers (the key is `redaction.key` in --data-dir).
    #[arg(long)]
    no_redact: bool,
    /// The key that signs the hash chain over what is imported (made when absent) [default:
    /// signing.key in --data-dir].
    #[arg(long, value_name = "FILE")]
    signing_key: Option<PathBuf>,
    /// Audit log files (plain or .gz), or directories of them (a rotated set is read oldest
    /// backup first, the active file last).
    #[arg(required = true, value_name = "FILE|DIR")]
    paths: Vec<PathBuf>,
}

/// What an import did.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub(crate) files: usize,
    pub(crate) lines: u64,
    pub(crate) events: u64,
    pub(crate) stored: u64,
    pub(crate) duplicates: u64,
    /// Stored events that claim the identity (auditID, stage, time) of a different event.
    pub(crate) conflicts: u64,
    pub(crate) malformed: u64,
    pub(crate) malformed_reasons: Vec<String>,
    /// Files that could not be read to their end (a `.gz` cut short): where, and why.
    pub(crate) damaged_files: Vec<String>,
    /// With `--detect`: alerts the rules raised, and of those the ones not stored before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) alerts_raised: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) alerts_stored: Option<u64>,
    pub(crate) seconds: f64,
}

enum Message {
    Batch(Vec<Record>),
    /// A line that is not an audit event: its place (`file:line`) and why.
    Malformed(String, String),
    Damaged(String),
}

/// A file's modification time in microseconds since the epoch.
fn modified_micros(path: &std::path::Path) -> Option<i64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    let since = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(since.as_micros()).ok()
}

/// Lists the files to read, directories expanded (not recursively).
pub(crate) fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("reading {}", p.display()))?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(p).with_context(|| format!("listing {}", p.display()))? {
                let path = entry?.path();
                if path.is_file() {
                    files.push(path);
                }
            }
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

/// A bar over the bytes of `files`.
pub(crate) fn progress_bar(files: &[kubetrail_tail::LogFile]) -> ProgressBar {
    let total_bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(&f.path).ok())
        .map(|m| m.len())
        .sum();
    let progress = ProgressBar::new(total_bytes);
    progress.set_style(
        ProgressStyle::with_template("{spinner} {bytes}/{total_bytes} {wide_bar} {msg} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    progress
}

pub fn run(args: ImportArgs) -> Result<std::process::ExitCode> {
    if let Some(client) = args.source.client()? {
        return remote::run(&args, &client);
    }
    let started = Instant::now();
    let ordered = order_paths(&expand(&args.paths)?);
    // A rule file that does not load is refused before anything is imported.
    let detection = if args.detect {
        let rt = kubetrail_detect::Runtime::new();
        let rules = args.rules.load(&rt)?;
        Some((rt, rules))
    } else {
        None
    };
    let store = args.source.store.open_for_write()?;
    let (_, notes) = super::common::link_chain(
        store.as_ref(),
        &args.source.store.data_dir,
        args.signing_key.as_deref(),
    )?;
    for note in notes {
        eprintln!("note: {note}");
    }
    let redactor = if args.no_redact {
        eprintln!(
            "warning: --no-redact: Secret values, tokens and passwords in these events are stored as they are"
        );
        None
    } else {
        let (r, notes) = super::common::redactor(&args.source.store.data_dir, &[])?;
        for note in notes {
            eprintln!("note: {note}");
        }
        Some(r)
    };

    let progress = progress_bar(&ordered);
    let done_bytes = Arc::new(AtomicU64::new(0));

    let (tx, rx) = mpsc::sync_channel::<Message>(4);
    let files: Vec<PathBuf> = ordered.iter().map(|f| f.path.clone()).collect();
    let cluster = args.cluster.clone();
    let batch_size = args.batch_size as usize;
    let reader_bytes = done_bytes.clone();
    let reader = std::thread::spawn(move || -> Result<u64> {
        let received = chrono::Utc::now().timestamp_micros();
        let mut lines = 0u64;
        let mut batch = Vec::with_capacity(batch_size);
        for path in &files {
            let mut file = LineReader::open(path)?;
            // Events without timestamps take the file's time: stable, so importing the file
            // again finds the same identities.
            let fallback = modified_micros(path).unwrap_or(received);
            let base = reader_bytes.load(Ordering::Relaxed);
            let counter = file.bytes_read.clone();
            while let Some(line) = file.next_line() {
                lines += 1;
                match decode_line(
                    line.text.as_bytes(),
                    &cluster,
                    received,
                    fallback,
                    redactor.as_ref(),
                ) {
                    Ok(Some(record)) => batch.push(record),
                    Ok(None) => {}
                    Err(e) => {
                        let place = format!("{}:{}", path.display(), line.number);
                        let what = if line.complete {
                            e
                        } else {
                            format!("truncated last line: {e}")
                        };
                        if tx.send(Message::Malformed(place, what)).is_err() {
                            return Ok(lines);
                        }
                    }
                }
                if batch.len() >= batch_size {
                    reader_bytes.store(base + counter.load(Ordering::Relaxed), Ordering::Relaxed);
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                    if tx.send(Message::Batch(full)).is_err() {
                        return Ok(lines);
                    }
                }
            }
            if let Some(damage) = file.damage() {
                // Every complete line before the damage is kept; the other files go on.
                let msg = format!("{}: {damage}", path.display());
                if tx.send(Message::Damaged(msg)).is_err() {
                    return Ok(lines);
                }
            }
            reader_bytes.store(base + counter.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        if !batch.is_empty() {
            let _ = tx.send(Message::Batch(batch));
        }
        Ok(lines)
    });

    let mut summary = Summary {
        files: ordered.len(),
        ..Summary::default()
    };
    let mut malformed = Rejections::default();
    let mut last_draw = Instant::now();
    let mut bulk = store.bulk().context("starting the import")?;
    for message in rx {
        match message {
            Message::Batch(batch) => {
                summary.events += batch.len() as u64;
                let outcome = bulk
                    .append(&batch)
                    .with_context(|| format!("storing a batch of {} events", batch.len()))?;
                summary.stored += outcome.stored;
                summary.duplicates += outcome.duplicates;
                summary.conflicts += outcome.conflicts;
            }
            Message::Damaged(reason) => summary.damaged_files.push(reason),
            Message::Malformed(place, reason) => malformed.reject(place, reason),
        }
        if last_draw.elapsed() > Duration::from_millis(100) {
            progress.set_position(done_bytes.load(Ordering::Relaxed));
            progress.set_message(format!("{} events", summary.events));
            last_draw = Instant::now();
        }
    }
    bulk.finish().context("committing the import")?;
    summary.malformed = malformed.count;
    summary.malformed_reasons = malformed.reasons;
    summary.lines = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reader thread panicked"))??;
    progress.finish_and_clear();
    if let Some((rt, rules)) = detection {
        let paths: Vec<PathBuf> = ordered.iter().map(|f| f.path.clone()).collect();
        let done = super::detect::detect_into(rt, rules, &args.cluster, &paths, store.as_ref())?;
        summary.alerts_raised = Some(done.raised);
        summary.alerts_stored = Some(done.stored);
    }
    // Closing checkpoints the database: part of the work, so part of the time.
    drop(store);
    summary.seconds = started.elapsed().as_secs_f64();

    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print_summary(&summary, &args.source.store.describe());
    }
    Ok(std::process::ExitCode::SUCCESS)
}

pub(crate) fn print_summary(s: &Summary, store: &str) {
    let rate = if s.seconds > 0.0 {
        s.events as f64 / s.seconds
    } else {
        0.0
    };
    println!(
        "imported {} files into {} in {:.2}s ({:.0} events/s)",
        s.files, store, s.seconds, rate
    );
    println!("  events read:  {}", s.events);
    println!("  stored:       {}", s.stored);
    println!("  duplicates:   {}", s.duplicates);
    if s.conflicts > 0 {
        println!(
            "  conflicting:  {} (stored, but their auditID, stage and time were already taken by different events)",
            s.conflicts
        );
    }
    println!("  malformed:    {}", s.malformed);
    if let (Some(raised), Some(stored)) = (s.alerts_raised, s.alerts_stored) {
        println!("  alerts:       {raised} raised, {stored} new");
    }
    for reason in &s.malformed_reasons {
        println!("    {}", super::table::escape(reason));
    }
    if s.malformed as usize > s.malformed_reasons.len() {
        println!(
            "    ... and {} more",
            s.malformed as usize - s.malformed_reasons.len()
        );
    }
    if !s.damaged_files.is_empty() {
        println!(
            "  damaged files: {} (complete lines before the damage were imported)",
            s.damaged_files.len()
        );
        for reason in &s.damaged_files {
            println!("    {}", super::table::escape(reason));
        }
    }
}
