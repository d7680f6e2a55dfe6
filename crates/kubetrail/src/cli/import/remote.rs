//! `kubetrail import --server URL`: a backfill into a running server. The lines go, as read,
//! to the ingest API agents use (gzip NDJSON batches with an idempotency key, retried while
//! the server is unavailable), so the server decodes, redacts and stores them exactly as it
//! does an agent's, and a batch sent twice is stored once. Lines the server refuses are named
//! with their `file:line`.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kubetrail_api::Client;
use kubetrail_store::intake::Rejections;
use kubetrail_tail::{LineReader, order_paths};

use super::{ImportArgs, Summary, expand, print_summary, progress_bar};

/// Most lines in one batch.
const BATCH_LINES: usize = 2_000;
/// Most bytes of lines in one batch (before compression), well under the server's body limit.
const BATCH_BYTES: usize = 4 << 20;
/// Attempts of one batch while the server answers that it is unavailable.
const ATTEMPTS: u32 = 6;

/// The lines of one batch, and where each came from.
#[derive(Default)]
struct Batch {
    ndjson: Vec<u8>,
    places: Vec<String>,
}

pub fn run(args: &ImportArgs, client: &Client) -> Result<std::process::ExitCode> {
    if args.detect {
        bail!(
            "--detect runs the rules on the local store; a server runs its own on what it stores"
        );
    }
    if args.no_redact {
        bail!("--no-redact is the server's setting (serve --no-redact), not the import's");
    }
    let started = Instant::now();
    let ordered = order_paths(&expand(&args.paths)?);
    let progress = progress_bar(&ordered);
    // One run's keys: a batch retried after a lost answer is recognised, another run's is not.
    let run_id = kubetrail_store::text::random_hex(8)?;
    let mut summary = Summary {
        files: ordered.len(),
        ..Summary::default()
    };
    let mut refused = Rejections::default();
    let mut sent = 0u64;
    let mut done_bytes = 0u64;
    let paths: Vec<PathBuf> = ordered.iter().map(|f| f.path.clone()).collect();
    let mut batch = Batch::default();
    for path in &paths {
        let mut file = LineReader::open(path)?;
        while let Some(line) = file.next_line() {
            summary.lines += 1;
            if line.text.trim().is_empty() {
                continue;
            }
            batch.ndjson.extend_from_slice(line.text.as_bytes());
            batch.ndjson.push(b'\n');
            batch
                .places
                .push(format!("{}:{}", path.display(), line.number));
            if batch.places.len() >= BATCH_LINES || batch.ndjson.len() >= BATCH_BYTES {
                let full = std::mem::take(&mut batch);
                send(
                    client,
                    args,
                    &run_id,
                    sent,
                    full,
                    &mut summary,
                    &mut refused,
                )?;
                sent += 1;
                progress.set_position(
                    done_bytes + file.bytes_read.load(std::sync::atomic::Ordering::Relaxed),
                );
                progress.set_message(format!("{} events", summary.events));
            }
        }
        if let Some(damage) = file.damage() {
            summary
                .damaged_files
                .push(format!("{}: {damage}", path.display()));
        }
        done_bytes += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    }
    if !batch.places.is_empty() {
        send(
            client,
            args,
            &run_id,
            sent,
            batch,
            &mut summary,
            &mut refused,
        )?;
    }
    progress.finish_and_clear();
    summary.malformed = refused.count;
    summary.malformed_reasons = refused.reasons;
    summary.seconds = started.elapsed().as_secs_f64();
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print_summary(&summary, client.base());
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Posts one batch, retrying while the server is unavailable, and adds its answer up.
fn send(
    client: &Client,
    args: &ImportArgs,
    run_id: &str,
    n: u64,
    batch: Batch,
    summary: &mut Summary,
    refused: &mut Rejections,
) -> Result<()> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&batch.ndjson)?;
    let body = gz.finish()?;
    let key = format!("import-{run_id}-{n}");
    let mut wait = Duration::from_millis(500);
    let reply = loop {
        match client.post_events(&body, Some(&args.cluster), "kubetrail-import", &key) {
            Ok(reply) => break reply,
            Err(e) if e.is_retryable() && wait < Duration::from_millis(500 << ATTEMPTS) => {
                eprintln!("the server did not take a batch ({e}); again in {wait:?}");
                std::thread::sleep(wait);
                wait *= 2;
            }
            Err(e) => return Err(e).context("sending a batch"),
        }
    };
    summary.events += reply.received;
    summary.stored += reply.stored;
    summary.duplicates += reply.duplicates;
    summary.conflicts += reply.conflicts;
    // Counted by the server, named by its first reasons (`line N: why`, N within the batch).
    let mut named = 0;
    for reason in &reply.rejected_reasons {
        let (place, why) = reason
            .strip_prefix("line ")
            .and_then(|r| r.split_once(": "))
            .and_then(|(n, why)| {
                let n: usize = n.parse().ok()?;
                Some((
                    batch.places.get(n.checked_sub(1)?)?.clone(),
                    why.to_string(),
                ))
            })
            .unwrap_or_else(|| ("a batch".to_string(), reason.clone()));
        refused.reject(place, why);
        named += 1;
    }
    for _ in named..reply.rejected {
        refused.count += 1;
    }
    Ok(())
}
