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
            "-o",
            out.to_str().unwrap(),
        ],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
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
