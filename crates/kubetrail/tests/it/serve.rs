//! `serve` refuses unsafe or contradictory settings with a clear message, and
//! `webhook-config` writes a kubeconfig the apiserver can use as it is.

use crate::{file, kubetrail, stdout};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn serve_needs_authentication_or_an_explicit_opt_out() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let o = kubetrail(
        &["serve", "--data-dir", data, "--listen", "127.0.0.1:0"],
        "",
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--tokens-file"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--insecure-no-auth"), "{}", stderr(&o));

    let (_d, tokens) = file("tokens.yaml", "- {name: a, token: short, role: read}\n");
    let o = kubetrail(
        &[
            "serve",
            "--data-dir",
            data,
            "--tokens-file",
            tokens.to_str().unwrap(),
        ],
        "",
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("tokens.yaml") && e.contains("shorter than 16"),
        "{e}"
    );

    let o = kubetrail(
        &[
            "serve",
            "--data-dir",
            data,
            "--insecure-no-auth",
            "--client-ca",
            "ca.pem",
        ],
        "",
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--client-ca needs HTTPS"),
        "{}",
        stderr(&o)
    );

    let (_c, config) = file("serve.yaml", "listen: 127.0.0.1:0\nlisen: typo\n");
    let o = kubetrail(&["serve", "--config", config.to_str().unwrap()], "");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("lisen"), "{}", stderr(&o));
}

#[test]
fn webhook_config_embeds_what_the_apiserver_needs() {
    let (dir, token) = file("token", "ingest-token-0123456789\n");
    let ca = dir.path().join("ca.pem");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let o = kubetrail(
        &[
            "webhook-config",
            "--server",
            "https://kubetrail.example:8443/",
            "--cluster",
            "prod eu",
            "--token-file",
            token.to_str().unwrap(),
            "--ca",
            ca.to_str().unwrap(),
        ],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains(
            "server: https://kubetrail.example:8443/api/v1/audit/webhook?cluster=prod+eu"
        ),
        "{text}"
    );
    assert!(text.contains("token: ingest-token-0123456789"), "{text}");
    assert!(
        text.contains("certificate-authority-data: LS0tLS1CRUdJTi"),
        "{text}"
    );
    assert!(text.contains("current-context: kubetrail"), "{text}");

    // Written to a file: owner-only, since it holds the token.
    let out = dir.path().join("webhook.kubeconfig");
    let o = kubetrail(
        &[
            "webhook-config",
            "--server",
            "https://kubetrail.example:8443",
            "--cluster",
            "prod",
            "--token-file",
            token.to_str().unwrap(),
            // The agent's name for the same flag (--ca above is kept as an alias).
            "--ca-file",
            ca.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(
        written.contains("certificate-authority-data: LS0tLS1CRUdJTi"),
        "{written}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let o = kubetrail(
        &[
            "webhook-config",
            "--server",
            "kubetrail:8443",
            "--cluster",
            "prod",
            "--token-file",
            token.to_str().unwrap(),
        ],
        "",
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("http:// or https://"), "{}", stderr(&o));
}

/// Defaults < file < environment < flags, as `--print-config` shows the merge; the agent's
/// layers likewise, and a file key that does not exist is refused with its line.
#[test]
fn configuration_layers_merge_in_order() {
    let (_d, config) = file(
        "serve.yaml",
        "dataDir: /from/file\nmaxConnections: 64\nstore: duckdb\nretentionMaxAge: 30d\n",
    );
    let config = config.to_str().unwrap();
    let print = |env: &[(&str, &str)], flags: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_kubetrail"));
        cmd.args(["serve", "--print-config", "--config", config])
            .args(flags)
            .env_remove("KUBETRAIL_DATA_DIR")
            .env_remove("KUBETRAIL_STORE")
            .env_remove("KUBETRAIL_CLICKHOUSE_URL");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_norway::from_str(&stdout(&o)).unwrap();
        v
    };
    let v = print(&[], &[]);
    assert_eq!(v["dataDir"], "/from/file");
    assert_eq!(v["maxConnections"], 64);
    assert_eq!(v["maxUrlBytes"], 8192, "the default");
    assert_eq!(v["retentionMaxAge"], "30d");
    assert_eq!(v["version"], 1);
    let v = print(&[("KUBETRAIL_DATA_DIR", "/from/env")], &[]);
    assert_eq!(v["dataDir"], "/from/env", "the environment over the file");
    let v = print(
        &[("KUBETRAIL_DATA_DIR", "/from/env")],
        &["--data-dir", "/from/flag", "--max-connections", "8"],
    );
    assert_eq!(v["dataDir"], "/from/flag", "the flag over the environment");
    assert_eq!(v["maxConnections"], 8);

    let (_a, agent) = file(
        "agent.yaml",
        "server: http://file:8080\npollIntervalMs: 500\n",
    );
    let o = kubetrail(
        &[
            "agent",
            "--print-config",
            "--config",
            agent.to_str().unwrap(),
            "--poll-interval-ms",
            "250",
        ],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_norway::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["server"], "http://file:8080");
    assert_eq!(v["pollIntervalMs"], 250);
    assert_eq!(v["batchMaxBytes"], 4194304);

    let (_b, bad) = file("serve.yaml", "listen: 127.0.0.1:1\ntokenFile: x\n");
    let o = kubetrail(
        &["serve", "--print-config", "--config", bad.to_str().unwrap()],
        "",
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("unknown field `tokenFile`") && e.contains("line 2"),
        "{e}"
    );
}

#[test]
fn the_cli_beside_a_running_server_says_the_store_is_in_use_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = start_open_server(&data, &[], std::process::Stdio::null());
    let out = kubetrail(&["search", "--data-dir", data.to_str().unwrap()], "");
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("is in use by another process")
            && err.contains(&format!(
                "(PID {}, a running kubetrail serve?)",
                server.id()
            ))
            && err.contains("--server URL"),
        "{err}"
    );
    assert!(
        !err.contains("Conflicting lock"),
        "the engine's words are not the message: {err}"
    );
}

/// Starts `serve` without authentication over `data` and waits until it listens.
fn start_open_server(
    data: &std::path::Path,
    extra: &[&str],
    stderr: impl Into<std::process::Stdio>,
) -> std::process::Child {
    let port = crate::free_port();
    let server = std::process::Command::new(env!("CARGO_BIN_EXE_kubetrail"))
        .args(["serve", "--insecure-no-auth", "--no-detection", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(data)
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    crate::wait_port(port);
    server
}

/// Starts `serve` with `extra` flags until it listens, stops it, and returns what it logged.
fn serve_log(extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut server = start_open_server(&dir.path().join("data"), extra, file);
    // It binds, then says so.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read_to_string(&log).unwrap().contains("web UI at")
        && std::time::Instant::now() < until
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    server.kill().unwrap();
    server.wait().unwrap();
    std::fs::read_to_string(log).unwrap()
}

#[test]
fn logs_are_plain_off_a_terminal_and_json_when_asked() {
    let text = serve_log(&[]);
    assert!(text.contains("AUTHENTICATION IS OFF"), "{text}");
    assert!(
        !text.contains('\x1b'),
        "no colour codes in a file: {text:?}"
    );
    let json = serve_log(&["--log-format", "json"]);
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.iter().any(|l| {
        l["level"] == "WARN"
            && l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("AUTHENTICATION IS OFF"))
    }));
}

#[test]
fn completion_scripts_name_the_commands() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = kubetrail(&["completion", shell], "");
        assert!(out.status.success(), "{shell}");
        let script = stdout(&out);
        for command in ["history", "changes", "webhook-config", "source-ip"] {
            assert!(script.contains(command), "{shell}: no {command}");
        }
    }
    let out = kubetrail(&["completion", "tcsh"], "");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn man_pages_cover_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let o = kubetrail(&["man", "--dir", dir.path().to_str().unwrap()], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let page = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    assert!(page("kubetrail.1").contains(".TH kubetrail 1"));
    let search = page("kubetrail-search.1");
    assert!(search.contains(".TH kubetrail-search 1"), "{search}");
    assert!(search.contains("source\\-ip"), "{search}");
    // Nested commands get their own pages too.
    assert!(page("kubetrail-install-apiserver.1").contains("readyz\\-url"));
    assert!(!dir.path().join("kubetrail-help.1").exists());
}
