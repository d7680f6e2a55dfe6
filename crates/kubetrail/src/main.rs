//! `kubetrail`: the command line. Parses arguments, reads files, calls the library crates and
//! prints their answers; errors leave through `anyhow` with their whole chain.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than the system allocator: decoding and storing events allocates and frees
/// many small strings across threads, where glibc's malloc cost import ~15% of its time.
/// Built without transparent huge pages (`no_thp`): with them the agent's peak RSS is 25-31 MiB
/// rather than 19, and import is no faster beyond the noise of this machine.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Load audit log files (plain or .gz, v1 or v1beta1, rotated sets) into the local store.
    Import(cli::import::ImportArgs),
    /// Find events: by user, group, verb, resource, namespace, name, code, decision, text, time.
    Search(Box<cli::question::SearchArgs>),
    /// Who did VERB to RESOURCE[/NAME], e.g. `who delete deployments/nginx -n prod`.
    Who(cli::question::WhoArgs),
    /// Every write to one object, oldest first.
    History(cli::question::HistoryArgs),
    /// The audit centre's reports: overview, resources, users, failures.
    Report(cli::report::ReportArgs),
    /// Generate realistic audit traffic (JSON lines, or a rotated set of log files).
    Gen(cli::generate::GenArgs),
    /// Run the server: webhook receiver, agent ingest, query and report API, metrics.
    Serve(Box<cli::serve::ServeArgs>),
    /// Follow the apiserver's audit log and its rotated backups; ship them to serve.
    Agent(Box<cli::agent::AgentArgs>),
    /// Turn auditing on in kube-apiserver (policy, flags, volumes); deploy kubetrail.
    #[command(subcommand)]
    Install(cli::install::InstallCommand),
    /// Write the kubeconfig for the apiserver's --audit-webhook-config-file.
    WebhookConfig(cli::serve::WebhookConfigArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Commands that print answers stop quietly when their reader goes away (`| head`), as
    // command-line tools do. The long-running network commands keep Rust's default (SIGPIPE
    // ignored), so a peer closing a socket is an error to handle, not the end of the process.
    if !matches!(cli.command, Command::Serve(_) | Command::Agent(_)) {
        sigpipe::reset();
    }
    let result = match cli.command {
        Command::Policy(cmd) => cli::policy::run(cmd),
        Command::Import(args) => cli::import::run(args),
        Command::Search(args) => cli::question::search(*args),
        Command::Who(args) => cli::question::who(args),
        Command::History(args) => cli::question::history(args),
        Command::Report(args) => cli::report::run(args),
        Command::Gen(args) => cli::generate::run(args),
        Command::Serve(args) => cli::serve::run(*args),
        Command::Agent(args) => cli::agent::run(*args),
        Command::Install(cmd) => cli::install::run(cmd),
        Command::WebhookConfig(args) => cli::serve::webhook_config(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // Errors quote what they were given (a server's answer, a file's text): each line
            // is escaped as table cells are.
            let text = format!("{err:#}");
            let lines: Vec<String> = text.lines().map(cli::table::escape).collect();
            eprintln!("error: {}", lines.join("\n"));
            ExitCode::FAILURE
        }
    }
}
