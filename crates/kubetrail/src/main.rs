//! `kubetrail`: the command line. Parses arguments, reads files, calls the library crates and
//! prints their answers; errors leave through `anyhow` with their whole chain.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// Kubernetes API-server audit: who did what, to which resource, when.
#[derive(Debug, Parser)]
#[command(name = "kubetrail", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Audit policy tooling: lint, explain, eval, convert, simulate.
    #[command(subcommand)]
    Policy(cli::policy::PolicyCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Policy(cmd) => cli::policy::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
