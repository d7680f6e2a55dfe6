//! kubetrail's recommended audit policy, and writing a policy in the apiVersion a given
//! kube-apiserver accepts.

use kubetrail_model::ApiVersion;
use kubetrail_policy::lint::lint_str;
use kubetrail_policy::{KubeVersion, LoadOptions};

/// The recommended policy (audit.k8s.io/v1): the tiered policy our users run, brought up to
/// date for current API groups, with a reason on every rule.
pub const RECOMMENDED: &str = include_str!("recommended-policy.yaml");

/// The apiVersion to write for `version`: `audit.k8s.io/v1` from 1.12 (where it became
/// available; 1.24 removed the others), `audit.k8s.io/v1beta1` before.
pub fn api_version_for(version: Option<KubeVersion>) -> ApiVersion {
    match version {
        Some(v) if v.minor < 12 => ApiVersion::V1Beta1,
        _ => ApiVersion::V1,
    }
}

/// A policy that would not load, with the reasons.
#[derive(Debug, thiserror::Error)]
#[error("the policy would not load{}: {}", .version.map(|v| format!(" on Kubernetes {v}")).unwrap_or_default(), .errors.join("; "))]
pub struct PolicyError {
    /// The version it was checked for.
    pub version: Option<KubeVersion>,
    /// The apiserver's reasons.
    pub errors: Vec<String>,
}

/// `text` in the apiVersion `version` accepts, after checking that it loads there; also
/// returns the lint warnings.
pub fn prepare(
    text: &str,
    version: Option<KubeVersion>,
) -> Result<(String, Vec<String>), PolicyError> {
    let target = api_version_for(version);
    let converted = kubetrail_policy::convert::convert(text, target).map_err(|e| PolicyError {
        version,
        errors: vec![e.to_string()],
    })?;
    let (_, report) = lint_str(
        &converted,
        LoadOptions {
            kube_version: version,
        },
    );
    if !report.valid {
        return Err(PolicyError {
            version,
            errors: report
                .errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.detail))
                .collect(),
        });
    }
    let warnings = report
        .warnings
        .iter()
        .map(|w| format!("{}: {}", w.field, w.message))
        .collect();
    Ok((converted, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recommended_policy_lints_clean_from_1_24_to_the_newest() {
        for minor in 24..=36 {
            let v = KubeVersion::new(minor);
            let (text, warnings) = prepare(RECOMMENDED, Some(v)).unwrap();
            assert!(warnings.is_empty(), "1.{minor}: {warnings:?}");
            assert!(text.starts_with("apiVersion: audit.k8s.io/v1\n"));
        }
        let (old, _) = prepare(RECOMMENDED, Some(KubeVersion::new(11))).unwrap();
        assert!(old.starts_with("apiVersion: audit.k8s.io/v1beta1\n"));
        // Every rule carries its reason.
        let rules = RECOMMENDED.matches("\n  - level:").count();
        let reasons = RECOMMENDED.matches("\n  # Reason:").count();
        assert_eq!(rules, reasons);
    }

    #[test]
    fn a_policy_that_would_not_load_is_refused_with_the_reason() {
        let e = prepare(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n",
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("would not load"), "{e}");
    }
}
