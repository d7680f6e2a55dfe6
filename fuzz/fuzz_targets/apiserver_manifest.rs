//! `install apiserver` on a static-pod manifest: edited or refused, never a panic, and an edit
//! applied again changes nothing.
#![no_main]

use kubetrail_install::apiserver::{AuditSettings, LogBackend, apply};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let settings = AuditSettings {
        policy_path: "/etc/kubernetes/audit-policy.yaml".into(),
        log: Some(LogBackend {
            path: "/var/log/kubernetes/kubernetes.audit".into(),
            max_age: 7,
            max_backup: 10,
            max_size: 100,
            compress: true,
        }),
        webhook_config: None,
    };
    if let Ok(edit) = apply(text, &settings, false) {
        let again = apply(&edit.text, &settings, false)
            .unwrap_or_else(|e| panic!("an edited manifest is refused: {e}"));
        assert_eq!(again.text, edit.text, "idempotent");
    }
});
