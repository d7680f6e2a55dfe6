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
}
