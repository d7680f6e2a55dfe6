//! Golden tests of the kube-apiserver manifest edit over real-shaped manifests (kubeadm's for
//! releases around 1.24, one with its flags in `args`, one already set up by someone else, and
//! ones that are not an apiserver at all), and of install → revert leaving the original bytes.
//!
//! `KUBETRAIL_BLESS=1 cargo test` rewrites the `.expected.yaml` files; review their diff.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use kubetrail_install::apiserver::{AuditSettings, LogBackend, ManifestError, apply};
use kubetrail_install::backup;

fn dir() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap()).join("testdata/manifests")
}

fn log_settings() -> AuditSettings {
    AuditSettings {
        policy_path: "/etc/kubernetes/audit-policy.yaml".into(),
        log: Some(LogBackend {
            path: "/var/log/kubernetes/kubernetes.audit".into(),
            max_age: 30,
            max_backup: 10,
            max_size: 100,
            compress: false,
        }),
        webhook_config: None,
    }
}

fn golden(name: &str, settings: &AuditSettings, suffix: &str) {
    let input = std::fs::read_to_string(dir().join(format!("{name}.yaml"))).unwrap();
    let edit = apply(&input, settings, false).unwrap();
    let expected_path = dir().join(format!("{name}.{suffix}.expected.yaml"));
    if std::env::var_os("KUBETRAIL_BLESS").is_some() {
        std::fs::write(&expected_path, &edit.text).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap();
    assert_eq!(
        edit.text,
        expected,
        "{name}: differs from {}",
        expected_path.display()
    );
    // The inputs carry no audit settings, so lines were only added: every original line is
    // still there, unchanged and in order.
    let mut out = edit.text.lines();
    for line in input.lines() {
        assert!(out.any(|l| l == line), "{name}: lost or changed {line:?}");
    }
    // A second run changes nothing.
    let again = apply(&edit.text, settings, false).unwrap();
    assert_eq!(again.text, edit.text, "{name}: not idempotent");
    // The result is still YAML with everything where the kubelet looks for it.
    let root = kubetrail_policy::yaml::parse(&edit.text)
        .unwrap()
        .unwrap()
        .to_json();
    let c = &root["spec"]["containers"][0];
    let flags: Vec<&str> = c["command"]
        .as_array()
        .into_iter()
        .chain(c["args"].as_array())
        .flatten()
        .filter_map(|v| v.as_str())
        .collect();
    for (flag, value) in settings.flags() {
        assert!(
            flags.contains(&format!("{flag}={value}").as_str()),
            "{name}: no {flag}"
        );
    }
    let mounts = c["volumeMounts"].as_array().unwrap();
    assert!(mounts.iter().any(|m| m["name"] == "audit-policy"
        && m["mountPath"] == "/etc/kubernetes/audit-policy.yaml"
        && m["readOnly"] == true));
    let volumes = root["spec"]["volumes"].as_array().unwrap();
    assert!(
        volumes
            .iter()
            .any(|v| v["name"] == "audit-policy" && v["hostPath"]["type"] == "FileOrCreate")
    );
    if settings.log.is_some() {
        assert!(volumes.iter().any(|v| v["name"] == "audit-log"
            && v["hostPath"]["path"] == "/var/log/kubernetes"
            && v["hostPath"]["type"] == "DirectoryOrCreate"));
        assert!(
            mounts
                .iter()
                .any(|m| m["name"] == "audit-log" && m["readOnly"].is_null())
        );
    }
}

#[test]
fn kubeadm_manifests_get_the_log_backend() {
    for name in ["kubeadm-1.23", "kubeadm-1.24", "kubeadm-1.29", "args-1.30"] {
        golden(name, &log_settings(), "log");
    }
}

#[test]
fn the_webhook_backend_and_both_at_once() {
    let webhook = AuditSettings {
        log: None,
        webhook_config: Some("/etc/kubernetes/audit-webhook.kubeconfig".into()),
        ..log_settings()
    };
    golden("kubeadm-1.29", &webhook, "webhook");
    let both = AuditSettings {
        webhook_config: Some("/etc/kubernetes/audit-webhook.kubeconfig".into()),
        ..log_settings()
    };
    golden("kubeadm-1.29", &both, "both");
}

#[test]
fn changed_sizes_are_updated_in_place() {
    let input = std::fs::read_to_string(dir().join("kubeadm-1.29.yaml")).unwrap();
    let first = apply(&input, &log_settings(), false).unwrap();
    let mut bigger = log_settings();
    if let Some(l) = bigger.log.as_mut() {
        l.max_size = 200;
        l.compress = true;
    }
    let second = apply(&first.text, &bigger, false).unwrap();
    assert!(second.text.contains("    - --audit-log-maxsize=200\n"));
    assert!(second.text.contains("    - --audit-log-compress=true\n"));
    assert!(!second.text.contains("--audit-log-maxsize=100"));
    assert_eq!(second.text.lines().count(), first.text.lines().count() + 1);
}

#[test]
fn someone_elses_audit_setup_is_refused_unless_forced() {
    let input = std::fs::read_to_string(dir().join("conflicting-1.29.yaml")).unwrap();
    match apply(&input, &log_settings(), false) {
        Err(ManifestError::Conflict(m)) => {
            assert!(
                m.contains("--audit-log-path") || m.contains("--audit-policy-file"),
                "{m}"
            )
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let forced = apply(&input, &log_settings(), true).unwrap();
    assert!(
        forced
            .text
            .contains("- --audit-policy-file=/etc/kubernetes/audit-policy.yaml\n")
    );
    assert!(!forced.text.contains("their-policy"));
    assert_eq!(forced.text.matches("--audit-policy-file").count(), 1);
}

#[test]
fn what_is_not_an_apiserver_manifest_is_refused_with_the_reason() {
    let err = |name: &str| {
        let input = std::fs::read_to_string(dir().join(name)).unwrap();
        apply(&input, &log_settings(), false)
            .unwrap_err()
            .to_string()
    };
    assert!(err("not-apiserver.yaml").contains("no kube-apiserver container"));
    assert!(err("malformed.yaml").contains("not YAML"));
    // Found by fuzzing: control characters in a flag made the edit land inside `command`.
    let e = err("fuzz-nul-in-command.yaml");
    assert!(e.contains("is not allowed in YAML"), "{e}");
    // Found by fuzzing: a layout whose edit would not be YAML any more is refused.
    let input = std::fs::read_to_string(dir().join("fuzz-edit-breaks-yaml.yaml")).unwrap();
    match apply(&input, &log_settings(), false) {
        Err(e) => assert!(e.to_string().contains("would not be YAML"), "{e}"),
        Ok(edit) => {
            let again = apply(&edit.text, &log_settings(), false).expect("an edit applies again");
            assert_eq!(again.text, edit.text);
        }
    }
    // Found by fuzzing: a mangled `volumes:` key made the edit put the mounts where the next
    // run did not find them, so each run added them again; such an edit is refused.
    let e = err("fuzz-edit-not-idempotent.yaml");
    assert!(e.contains("edit this layout by hand"), "{e}");
    let e = apply("kind: Deployment\n", &log_settings(), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a Pod"), "{e}");
    let flow = "kind: Pod\nspec:\n  containers:\n  - name: kube-apiserver\n    command: [kube-apiserver, --secure-port=6443]\n";
    let e = apply(flow, &log_settings(), false).unwrap_err().to_string();
    assert!(e.contains("flow-style"), "{e}");
}

#[test]
fn install_then_revert_restores_the_original_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let manifests = tmp.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    let manifest = manifests.join("kube-apiserver.yaml");
    let original = std::fs::read(dir().join("args-1.30.yaml")).unwrap();
    std::fs::write(&manifest, &original).unwrap();
    let policy = tmp.path().join("audit-policy.yaml");
    let backups = tmp.path().join("backups");
    assert!(backup::check_location(&manifests.join("old"), &manifest).is_err());
    backup::check_location(&backups, &manifest).unwrap();

    let record = backup::save(&backups, &[&manifest, &policy]).unwrap();
    let edit = apply(
        std::str::from_utf8(&original).unwrap(),
        &log_settings(),
        false,
    )
    .unwrap();
    backup::write_atomically(&manifest, edit.text.as_bytes()).unwrap();
    backup::write_atomically(&policy, b"apiVersion: audit.k8s.io/v1\n").unwrap();
    assert_ne!(std::fs::read(&manifest).unwrap(), original);
    // Nothing but the manifest in the manifests directory.
    assert_eq!(std::fs::read_dir(&manifests).unwrap().count(), 1);

    let (dir, found) = backup::latest(&backups, &manifest).unwrap();
    assert_eq!(found, record);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let copy = found.files[0].copy.as_ref().unwrap();
    assert_eq!(
        std::fs::metadata(copy).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(&policy).unwrap().permissions().mode() & 0o777,
        0o600
    );
    backup::restore(&dir, &found).unwrap();
    assert_eq!(std::fs::read(&manifest).unwrap(), original, "byte for byte");
    assert!(!policy.exists(), "the policy the install created is gone");
    assert!(
        backup::latest(&backups, &manifest).is_err(),
        "reverted once"
    );
}
