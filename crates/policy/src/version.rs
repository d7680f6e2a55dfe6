//! [`KubeVersion`]: the kube-apiserver release whose behaviour `lint` reproduces.

use std::fmt;
use std::str::FromStr;

/// A Kubernetes `1.N` release. Only the minor number changes policy behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubeVersion {
    /// The minor release, e.g. 24 for 1.24.
    pub minor: u32,
}

impl KubeVersion {
    /// The release `1.minor`.
    pub const fn new(minor: u32) -> Self {
        KubeVersion { minor }
    }
}

impl FromStr for KubeVersion {
    type Err = String;

    /// Accepts `1.24`, `v1.24`, `1.24.3` and `v1.24.3-eks-1`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid Kubernetes version {s:?}: expected 1.N, e.g. 1.30");
        let rest = s.strip_prefix('v').unwrap_or(s);
        let rest = rest.strip_prefix("1.").ok_or_else(bad)?;
        let digits: &str = rest.split(['.', '-', '+']).next().unwrap_or("");
        let minor: u32 = digits.parse().map_err(|_| bad())?;
        Ok(KubeVersion { minor })
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "1.{}", self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_spellings() {
        assert_eq!("1.24".parse(), Ok(KubeVersion::new(24)));
        assert_eq!("v1.30.2".parse(), Ok(KubeVersion::new(30)));
        assert_eq!("v1.29.1-eks-5".parse(), Ok(KubeVersion::new(29)));
        assert!("2.1".parse::<KubeVersion>().is_err());
        assert!("1.x".parse::<KubeVersion>().is_err());
        assert_eq!(KubeVersion::new(36).to_string(), "1.36");
    }
}
