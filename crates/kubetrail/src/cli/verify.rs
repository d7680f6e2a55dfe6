//! `kubetrail verify`: recomputes the store's hash chains and names every problem; exit 0 when
//! the trail is intact, 1 when it is not. `--export-checkpoint` writes the signed heads for
//! safekeeping elsewhere.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use kubetrail_store::text::parse_time;
use kubetrail_trust::{Checkpoint, Options, PublicKey, Report, checkpoint, verify};

use super::common::SourceArgs;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum VerifyOutput {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The local store, or (`--server URL` with a token not bound to a cluster) the store of
    /// a running server, which verifies it.
    #[command(flatten)]
    source: SourceArgs,
    /// Only this cluster's chains.
    #[arg(long)]
    cluster: Option<String>,
    /// Only the events of links that reach this time or later (RFC 3339).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    from: Option<DateTime<Utc>>,
    /// Only the events of links that start at this time or earlier.
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    to: Option<DateTime<Utc>>,
    /// A public key (PEM) to check the signatures with, kept apart from the store; may be
    /// given several times. Without it, the keys the store keeps are used, which whoever can
    /// edit the store can replace too.
    #[arg(long, value_name = "FILE")]
    public_key: Vec<PathBuf>,
    /// A checkpoint written earlier by --export-checkpoint: shows a chain rewritten and
    /// re-signed, or cut short, since.
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// Write the signed head of every chain to FILE (for safekeeping outside the cluster), as
    /// read before verifying; not written when the trail is not intact.
    #[arg(long, value_name = "FILE")]
    export_checkpoint: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    output: VerifyOutput,
}

/// Exit 0 intact, 1 not intact, 2 when the store could not be verified (an error).
pub fn run(args: VerifyArgs) -> Result<ExitCode> {
    match checked(args) {
        Ok(code) => Ok(code),
        Err(err) => {
            let text = format!("{err:#}");
            let lines: Vec<String> = text.lines().map(super::table::escape).collect();
            eprintln!("error: {}", lines.join("\n"));
            Ok(ExitCode::from(2))
        }
    }
}

fn checked(args: VerifyArgs) -> Result<ExitCode> {
    let keys = args
        .public_key
        .iter()
        .map(|p| PublicKey::read(p).context("--public-key"))
        .collect::<Result<Vec<_>>>()?;
    let checkpoint_in = match &args.checkpoint {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("--checkpoint: reading {}", p.display()))?;
            let cp: Checkpoint = serde_json::from_str(&text)
                .with_context(|| format!("--checkpoint: {} is not a checkpoint", p.display()))?;
            if cp.kind != kubetrail_trust::CHECKPOINT_KIND {
                anyhow::bail!(
                    "--checkpoint: {} is a {:?}, not a {}",
                    p.display(),
                    cp.kind,
                    kubetrail_trust::CHECKPOINT_KIND
                );
            }
            Some(cp)
        }
        None => None,
    };
    if let Some(client) = args.source.client()? {
        return remote(&args, &client, checkpoint_in);
    }
    let store = args.source.store.open_existing()?;
    if let Some(cluster) = &args.cluster
        && let Some(why) = kubetrail_trust::verify::unknown_cluster(store.as_ref(), cluster)?
    {
        anyhow::bail!("--cluster {why}");
    }
    let options = Options {
        cluster: args.cluster.clone(),
        from_micros: args.from.map(|t| t.timestamp_micros()),
        to_micros: args.to.map(|t| t.timestamp_micros()),
        created_from_micros: None,
        // A server may be writing: a commit's newest rows may wait a moment for their link.
        settled_before_micros: Some(Utc::now().timestamp_micros() - 120_000_000),
        keys,
        checkpoint: checkpoint_in,
    };
    // The heads are read before verifying: every link the checkpoint names is verified.
    let cp = match &args.export_checkpoint {
        Some(_) => Some(checkpoint(store.as_ref(), Utc::now().timestamp_micros())?),
        None => None,
    };
    let report = verify(store.as_ref(), &options).context("verifying the store")?;
    finish(&args, &report, cp)
}

/// Asks the server to verify its store, with the given keys and checkpoint.
fn remote(
    args: &VerifyArgs,
    client: &kubetrail_api::Client,
    checkpoint_in: Option<Checkpoint>,
) -> Result<ExitCode> {
    let keys = args
        .public_key
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .with_context(|| format!("--public-key: reading {}", p.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut body = serde_json::json!({ "publicKeys": keys });
    if let Some(c) = &args.cluster {
        body["cluster"] = c.clone().into();
    }
    let rfc = |t: &DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    if let Some(t) = &args.from {
        body["from"] = rfc(t).into();
    }
    if let Some(t) = &args.to {
        body["to"] = rfc(t).into();
    }
    if let Some(cp) = checkpoint_in {
        body["checkpoint"] = serde_json::to_value(cp)?;
    }
    let cp = match &args.export_checkpoint {
        Some(_) => Some(
            client
                .get_json::<Checkpoint>(kubetrail_api::paths::CHAIN_CHECKPOINT, Vec::new())
                .context("reading the server's checkpoint")?,
        ),
        None => None,
    };
    let report: Report = client
        .post_json(kubetrail_api::paths::VERIFY, &body)
        .context("verifying the server's store")?;
    finish(args, &report, cp)
}

/// Prints the report, writes the checkpoint, and gives the exit status.
fn finish(args: &VerifyArgs, report: &Report, cp: Option<Checkpoint>) -> Result<ExitCode> {
    match args.output {
        VerifyOutput::Json => println!("{}", serde_json::to_string_pretty(report)?),
        VerifyOutput::Text => print!("{}", text(report)),
    }
    if let (Some(path), Some(_)) = (&args.export_checkpoint, &cp)
        && !report.intact
    {
        eprintln!(
            "not writing {}: a checkpoint vouches for the chain, which is not intact",
            path.display()
        );
    } else if let (Some(path), Some(cp)) = (&args.export_checkpoint, cp) {
        let text = serde_json::to_string_pretty(&cp)?;
        std::fs::write(path, format!("{text}\n"))
            .with_context(|| format!("--export-checkpoint: writing {}", path.display()))?;
        eprintln!(
            "wrote the heads of {} chains to {}",
            cp.heads.len(),
            path.display()
        );
    }
    Ok(if report.intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The report for a terminal.
fn text(report: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for c in &report.chains {
        let _ = writeln!(
            out,
            "chain {} key {}: {} links, head {} ({}…), {} events verified{}",
            c.cluster,
            c.key_id,
            c.links,
            c.head,
            &c.head_hash[..16.min(c.head_hash.len())],
            c.events_verified,
            if c.events_pruned > 0 {
                format!(", {} taken by retention", c.events_pruned)
            } else {
                String::new()
            }
        );
    }
    if report.chains.is_empty() {
        let _ = writeln!(out, "no chain in the store");
    }
    if report.keys == "store" {
        let _ = writeln!(
            out,
            "note: signatures checked with the public keys the store keeps; pass --public-key to check with yours"
        );
    }
    for p in &report.problems {
        let mut place = p.cluster.clone();
        if let Some(l) = p.link {
            let _ = write!(place, " link {l}");
        }
        if let Some(a) = &p.audit_id {
            let _ = write!(place, " auditID {a}");
        }
        let kind = serde_json::to_value(p.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(out, "{kind}: {place}: {}", p.detail);
    }
    let listed = report.problems.len() as u64;
    if report.problems_total > listed {
        let _ = writeln!(
            out,
            "... and {} more problems",
            report.problems_total - listed
        );
    }
    let _ = writeln!(
        out,
        "{}",
        if report.intact {
            "intact".to_string()
        } else {
            format!("NOT INTACT: {} problems", report.problems_total)
        }
    );
    out
}
