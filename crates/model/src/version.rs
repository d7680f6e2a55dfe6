//! [`ApiVersion`]: which `audit.k8s.io` version an object was written in.

use std::fmt;
use std::str::FromStr;

/// The `audit.k8s.io` group versions kube-apiserver has used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApiVersion {
    /// `audit.k8s.io/v1alpha1` (Kubernetes 1.7; removed in 1.24).
    V1Alpha1,
    /// `audit.k8s.io/v1beta1` (1.8; removed in 1.24).
    V1Beta1,
    /// `audit.k8s.io/v1` (1.12 onwards).
    V1,
}

impl ApiVersion {
    /// Every version, oldest first.
    pub const ALL: [ApiVersion; 3] = [ApiVersion::V1Alpha1, ApiVersion::V1Beta1, ApiVersion::V1];

    /// The full `group/version` string.
    pub const fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1Alpha1 => "audit.k8s.io/v1alpha1",
            ApiVersion::V1Beta1 => "audit.k8s.io/v1beta1",
            ApiVersion::V1 => "audit.k8s.io/v1",
        }
    }

    /// The Kubernetes minor release that introduced this version.
    pub const fn introduced_in(self) -> u32 {
        match self {
            ApiVersion::V1Alpha1 => 7,
            ApiVersion::V1Beta1 => 8,
            ApiVersion::V1 => 12,
        }
    }

    /// The first Kubernetes minor release that no longer accepts this version, if any.
    pub const fn removed_in(self) -> Option<u32> {
        match self {
            ApiVersion::V1Alpha1 | ApiVersion::V1Beta1 => Some(24),
            ApiVersion::V1 => None,
        }
    }
}

impl FromStr for ApiVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ApiVersion::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown apiVersion {s:?}: expected audit.k8s.io/v1, audit.k8s.io/v1beta1 or audit.k8s.io/v1alpha1"
                )
            })
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
