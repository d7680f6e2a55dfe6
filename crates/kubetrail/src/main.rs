//! `kubetrail`: the command line. Parses arguments, reads files, calls the library crates and
//! prints their answers; errors leave through `anyhow` with their whole chain.

mod cli;
mod config;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser};

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
    /// How serve and agent write their logs (to standard error).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: cli::serve::LogFormat,
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
    /// What the newest writes changed, newest first: `changes -n prod --since 1h`.
    Changes(cli::diff::ChangesArgs),
    /// The audit centre's reports: overview, resources, users, failures.
    Report(cli::report::ReportArgs),
    /// Run the detection rules over audit log files and print the alerts, in event-time order.
    ///
    /// Exit status: 0 when it ran (alerts or not), 3 with --fail-on when an alert of that
    /// severity or above fired.
    Detect(Box<cli::detect::DetectArgs>),
    /// The detection rules: list them, lint rule files, run their examples.
    #[command(subcommand)]
    Rules(cli::detect::RulesCommand),
    /// RBAC from the trail: least-privilege roles from observed requests, granted versus used.
    #[command(subcommand)]
    Rbac(cli::rbac::RbacCommand),
    /// Check the store's hash chains: every event changed, deleted or inserted since it was
    /// stored, every link missing, reordered or badly signed.
    ///
    /// Exit status: 0 when the trail is intact, 1 when it is not, 2 when it could not be
    /// verified.
    Verify(Box<cli::verify::VerifyArgs>),
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
    /// Print the shell completion script: `source <(kubetrail completion bash)`.
    Completion {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the manual pages: kubetrail(1) and one per command (kubetrail-search(1), ...).
    Man {
        /// The directory to write them into (e.g. /usr/local/share/man/man1).
        #[arg(long, value_name = "DIR")]
        dir: std::path::PathBuf,
    },
}

/// Writes `cmd`'s manual page as `DIR/NAME.1`, and its subcommands' as `NAME-SUB.1`; returns
/// how many it wrote.
fn write_man(cmd: &clap::Command, name: &str, dir: &std::path::Path) -> anyhow::Result<usize> {
    use anyhow::Context;
    let mut text = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .title(name.to_string())
        .render(&mut text)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    let mut n = 1;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        n += write_man(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(n)
}

/// The command line, with the help of `serve`'s and `agent`'s flags taken from their
/// configuration's documentation.
fn command() -> clap::Command {
    let serve = config::reference::schema::<config::ServeConfig>();
    let agent = config::reference::schema::<config::AgentConfig>();
    Cli::command()
        .mut_subcommand("serve", |c| config::document_flags(c, &serve))
        .mut_subcommand("agent", |c| config::document_flags(c, &agent))
}

fn main() -> ExitCode {
    let cli = Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit());
    // Commands that print answers stop quietly when their reader goes away (`| head`), as
    // command-line tools do. The long-running network commands keep Rust's default (SIGPIPE
    // ignored), so a peer closing a socket is an error to handle, not the end of the process.
    if !matches!(cli.command, Command::Serve(_) | Command::Agent(_)) {
        sigpipe::reset();
    }
    let _ = cli::serve::LOG_FORMAT.set(cli.log_format);
    let result = match cli.command {
        Command::Policy(cmd) => cli::policy::run(cmd),
        Command::Import(args) => cli::import::run(args),
        Command::Search(args) => cli::question::search(*args),
        Command::Who(args) => cli::question::who(args),
        Command::History(args) => cli::question::history(args),
        Command::Changes(args) => cli::diff::changes(args),
        Command::Report(args) => cli::report::run(args),
        Command::Detect(args) => cli::detect::detect(*args),
        Command::Rules(cmd) => cli::detect::rules(cmd),
        Command::Rbac(cmd) => cli::rbac::run(cmd),
        Command::Verify(args) => cli::verify::run(*args),
        Command::Gen(args) => cli::generate::run(args),
        Command::Serve(args) => cli::serve::run(*args),
        Command::Agent(args) => cli::agent::run(*args),
        Command::Install(cmd) => cli::install::run(cmd),
        Command::WebhookConfig(args) => cli::serve::webhook_config(args),
        Command::Completion { shell } => {
            clap_complete::generate(shell, &mut command(), "kubetrail", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { dir } => std::fs::create_dir_all(&dir)
            .map_err(anyhow::Error::from)
            .and_then(|()| {
                let mut cmd = command();
                cmd.build();
                write_man(&cmd, "kubetrail", &dir)
            })
            .map(|n| {
                println!("wrote {n} manual pages into {}", dir.display());
                ExitCode::SUCCESS
            }),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every flag of `serve` and `agent` is a key of its configuration and the other way
    /// round, and its help is the key's documentation.
    #[test]
    fn flags_and_configuration_keys_are_the_same_set() {
        let mut cmd = command();
        cmd.build();
        for (sub, schema, own) in [
            (
                "serve",
                config::reference::schema::<config::ServeConfig>(),
                &[
                    "config",
                    "print-config",
                    "demo",
                    "demo-events",
                    "help",
                    "version",
                ][..],
            ),
            (
                "agent",
                config::reference::schema::<config::AgentConfig>(),
                &["config", "print-config", "help", "version"][..],
            ),
        ] {
            let sub = cmd.find_subcommand(sub).unwrap();
            let mut flags: Vec<String> = sub
                .get_arguments()
                // Global flags (--log-format) belong to every command, not to a configuration.
                .filter(|a| !a.is_global_set())
                .filter_map(|a| a.get_long())
                .filter(|l| !own.contains(l))
                .map(config::reference::key_of_flag)
                .collect();
            let mut keys: Vec<String> = schema["properties"]
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "version")
                // Maps and lists of objects have no flag: they are written in the file.
                .filter(|k| !config::FILE_ONLY_KEYS.contains(&k.as_str()))
                .cloned()
                .collect();
            flags.sort();
            keys.sort();
            assert_eq!(flags, keys, "{}", sub.get_name());
            for a in sub.get_arguments() {
                let Some(long) = a.get_long() else { continue };
                let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
                assert!(!help.is_empty(), "--{long} has no help");
            }
        }
        let serve = cmd.find_subcommand("serve").unwrap();
        let help = |long: &str| {
            let arg = serve.get_arguments().find(|a| a.get_long() == Some(long));
            arg.unwrap().get_help().unwrap().to_string()
        };
        assert_eq!(
            help("listen"),
            "Address and port to listen on. [default: 127.0.0.1:8080]"
        );
        assert_eq!(help("version"), "Print version");
    }
}
