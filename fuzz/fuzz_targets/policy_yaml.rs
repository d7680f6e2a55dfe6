//! A policy file (and the YAML loader that also reads configuration): loading gives a policy
//! or errors, never a panic or unbounded memory (aliases and nesting are limited).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let loaded = kubetrail_policy::load_str(text, kubetrail_policy::LoadOptions::default());
    let _ = loaded.is_valid();
    if let Ok(Some(node)) = kubetrail_policy::yaml::parse(text) {
        let _ = node.to_json();
        let _ = node.duplicate_keys();
    }
});
