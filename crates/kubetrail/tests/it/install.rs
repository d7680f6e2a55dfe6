//! `kubetrail install apiserver` through the binary, on a copy of a kubeadm control plane's
//! manifest: dry run, install, a second install that changes nothing, revert to the original
//! bytes; and `install manifests`.

use crate::{kubetrail, stdout};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn install_is_a_diff_first_idempotent_and_reverts_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let manifests = tmp.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    let manifest = manifests.join("kube-apiserver.yaml");
    let original = std::fs::read(
        std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap())
            .join("../install/testdata/manifests/kubeadm-1.24.yaml"),
    )
    .unwrap();
    std::fs::write(&manifest, &original).unwrap();
    let policy = tmp.path().join("etc/audit-policy.yaml");
    let backups = tmp.path().join("backups");
    let patch = tmp.path().join("etc/kubetrail-kubeadm-patch.yaml");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "install",
            "apiserver",
            "--manifest",
            manifest.to_str().unwrap(),
            "--policy-path",
            policy.to_str().unwrap(),
            "--backup-dir",
            backups.to_str().unwrap(),
            "--kubeadm-patch",
            patch.to_str().unwrap(),
            // No apiserver here to wait for (wait_for_the_apiserver... tests the wait).
            "--no-wait",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |extra: &[&str]| {
        let a = args(extra);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        kubetrail(&refs, "")
    };

    let dry = run(&["--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    let diff = stdout(&dry);
    assert!(diff.contains("+    - --audit-policy-file="), "{diff}");
    assert!(diff.contains("+      type: DirectoryOrCreate"), "{diff}");
    assert!(diff.contains("+apiVersion: audit.k8s.io/v1\n"), "{diff}");
    // kubeadm wrote this manifest: its ClusterConfiguration gets the same settings.
    assert!(diff.contains("+kind: ClusterConfiguration"), "{diff}");
    assert!(
        diff.contains("+    audit-log-path: /var/log/kubernetes/kubernetes.audit"),
        "{diff}"
    );
    assert_eq!(
        std::fs::read(&manifest).unwrap(),
        original,
        "a dry run writes nothing"
    );
    assert!(!policy.exists());

    let first = run(&[]);
    assert!(first.status.success(), "{}", stderr(&first));
    let installed = std::fs::read_to_string(&manifest).unwrap();
    assert!(installed.contains("--audit-log-path=/var/log/kubernetes/kubernetes.audit"));
    assert!(
        std::fs::read_to_string(&policy)
            .unwrap()
            .starts_with("apiVersion: audit.k8s.io/v1\n")
    );
    assert_eq!(
        std::fs::read_dir(&manifests).unwrap().count(),
        1,
        "no copies next to the manifest"
    );
    let kubeadm: serde_json::Value =
        serde_norway::from_str(&std::fs::read_to_string(&patch).unwrap()).unwrap();
    assert_eq!(kubeadm["apiVersion"], "kubeadm.k8s.io/v1beta3", "1.24");
    assert_eq!(
        kubeadm["apiServer"]["extraArgs"]["audit-policy-file"],
        policy.to_str().unwrap()
    );

    let second = run(&[]);
    assert!(second.status.success());
    assert!(
        stdout(&second).contains("nothing to change"),
        "{}",
        stdout(&second)
    );
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), installed);

    let revert = run(&["--revert"]);
    assert!(revert.status.success(), "{}", stderr(&revert));
    assert_eq!(std::fs::read(&manifest).unwrap(), original, "byte for byte");
    assert!(!policy.exists());
    assert!(
        !patch.exists(),
        "the install created it: the revert removes it"
    );

    // A backup directory next to the manifest would become a second apiserver: refused.
    let a = args(&[]);
    let mut refs: Vec<&str> = a.iter().map(String::as_str).collect();
    let inside = manifests.join("backups");
    refs[7] = inside.to_str().unwrap();
    let o = kubetrail(&refs, "");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("inside the manifests directory"),
        "{}",
        stderr(&o)
    );

    // A policy that would not load on this apiserver (1.24 rejects v1beta1 only after
    // conversion fails: an empty rule list never loads).
    let bad = tmp.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n",
    )
    .unwrap();
    let o = run(&["--policy", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("bad.yaml"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(&manifest).unwrap(),
        original,
        "nothing written"
    );
}

/// An apiserver that answers `/readyz` with `codes` in turn (the last one from then on).
fn fake_apiserver(codes: Vec<u16>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/readyz", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut i = 0;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let code = codes[i.min(codes.len() - 1)];
            i += 1;
            let _ = write!(
                stream,
                "HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            );
        }
    });
    url
}

#[test]
fn wait_for_the_apiserver_and_put_the_original_back_when_it_does_not_come_back() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("manifests")).unwrap();
    let manifest = tmp.path().join("manifests/kube-apiserver.yaml");
    let original = std::fs::read(
        std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap())
            .join("../install/testdata/manifests/kubeadm-1.29.yaml"),
    )
    .unwrap();
    std::fs::write(&manifest, &original).unwrap();
    let policy = tmp.path().join("audit-policy.yaml");
    let patch = tmp.path().join("kubeadm-patch.yaml");
    let install = |url: &str| {
        kubetrail(
            &[
                "install",
                "apiserver",
                "--manifest",
                manifest.to_str().unwrap(),
                "--policy-path",
                policy.to_str().unwrap(),
                "--backup-dir",
                tmp.path().join("backups").to_str().unwrap(),
                "--kubeadm-patch",
                patch.to_str().unwrap(),
                "--readyz-url",
                url,
                "--wait-timeout",
                "4s",
            ],
            "",
        )
    };
    // Not ready before the change, or not reachable: nothing is changed.
    let o = install(&fake_apiserver(vec![503]));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("before the change: nothing changed"),
        "{}",
        stderr(&o)
    );
    let o = install("http://127.0.0.1:1/readyz");
    assert!(
        stderr(&o).contains("cannot check the apiserver's readiness"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&manifest).unwrap(), original);
    assert!(!policy.exists() && !patch.exists());
    // Ready, restarted (503) and never ready again: everything is put back.
    let o = install(&fake_apiserver(vec![200, 503]));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("did not answer"), "{}", stderr(&o));
    assert!(stderr(&o).contains("put the original"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&manifest).unwrap(), original);
    assert!(!policy.exists() && !patch.exists());
    // Restarted and ready again: the install stands.
    let o = install(&fake_apiserver(vec![200, 503, 503, 200]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("the apiserver is ready again"),
        "{}",
        stdout(&o)
    );
    assert!(
        std::fs::read_to_string(&manifest)
            .unwrap()
            .contains("--audit-policy-file=")
    );
    assert!(patch.exists());
}

#[test]
fn manifests_carry_fresh_tokens_and_the_cluster() {
    let o = kubetrail(
        &["install", "manifests", "--cluster", "prod", "-n", "audit"],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("kind: DaemonSet"));
    assert!(text.contains("--cluster=prod"));
    assert!(text.contains("namespace: audit"));
    let again = stdout(&kubetrail(&["install", "manifests"], ""));
    let token = |t: &str| {
        t.lines()
            .find(|l| l.trim_start().starts_with("token: "))
            .map(str::to_string)
    };
    assert!(token(&text).is_some());
    assert_ne!(
        token(&text),
        token(&again),
        "every run generates new tokens"
    );
    // HTTPS by default, with a certificate made for this installation; --no-tls says so.
    assert!(
        text.contains("--server=https://kubetrail.audit.svc:8080"),
        "{text}"
    );
    assert!(text.contains("kind: NetworkPolicy") && text.contains("--retention-max-age=90d"));
    let ca = |t: &str| t.find("ca.crt: ").map(|i| t[i..i + 200].to_string());
    assert!(ca(&text).is_some());
    assert_ne!(ca(&text), ca(&again), "every run makes its own CA");
    let plain = stdout(&kubetrail(
        &["install", "manifests", "--no-tls", "--retention", "forever"],
        "",
    ));
    assert!(plain.contains("--server=http://kubetrail.kubetrail.svc:8080"));
    assert!(!plain.contains("kubetrail-tls") && !plain.contains("--retention-max-age"));
    let bad = kubetrail(&["install", "manifests", "--retention", "3 months"], "");
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("--retention"), "{}", stderr(&bad));
}
