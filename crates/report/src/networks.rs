//! Which source addresses are internal, and the requests from anywhere else: the overview's
//! "from outside" section.

use std::net::IpAddr;

use ipnet::IpNet;
use kubetrail_store::{Aggregation, Field, Filter, GroupCount, Result, Store};

use crate::{Section, TOP, base};

/// Address ranges counted as internal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Networks(Vec<IpNet>);

/// The default internal ranges: loopback, private (RFC 1918, RFC 4193), link-local and shared
/// address space (RFC 6598, used for pod and service networks by several distributions).
pub const DEFAULT_INTERNAL: [&str; 9] = [
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "169.254.0.0/16",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
];

impl Default for Networks {
    fn default() -> Self {
        Networks::parse(DEFAULT_INTERNAL).expect("the default ranges are valid")
    }
}

impl Networks {
    /// Ranges in CIDR notation (`10.0.0.0/8`, `fd00::/8`); a bare address is a range of one.
    pub fn parse<S: AsRef<str>>(ranges: impl IntoIterator<Item = S>) -> Result<Self, String> {
        let mut out = Vec::new();
        for r in ranges {
            let r = r.as_ref().trim();
            let net = r
                .parse::<IpNet>()
                .or_else(|_| r.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!("invalid network {r:?}: expected CIDR notation such as 10.0.0.0/8")
                })?;
            out.push(net);
        }
        Ok(Networks(out))
    }

    /// Whether `ip` (as the event records it) is outside every internal range. Requests
    /// without a source address are not external; an address that does not parse is.
    pub fn is_external(&self, ip: &str) -> bool {
        if ip.is_empty() {
            return false;
        }
        match ip.parse::<IpAddr>() {
            Ok(addr) => {
                let addr = match addr {
                    IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
                    v4 => v4,
                };
                !self.0.iter().any(|n| n.contains(&addr))
            }
            Err(_) => true,
        }
    }

    /// The ranges, as written.
    pub fn describe(&self) -> String {
        self.0
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Requests of `scope` from outside the internal networks: the total, and the largest
/// (address, user) pairs. Addresses are counted first (one cheap grouping); users only for the
/// largest external addresses.
pub fn from_outside(store: &dyn Store, scope: &Filter, networks: &Networks) -> Result<Section> {
    let count_by = |filter: &Filter, fields: Vec<Field>| {
        store
            .aggregate(
                filter,
                &Aggregation::CountBy {
                    fields,
                    limit: None,
                },
            )
            .map(|a| a.groups().to_vec())
    };
    let base = base(scope);
    let outside: Vec<GroupCount> = count_by(&base, vec![Field::SourceIp])?
        .into_iter()
        .filter(|g| networks.is_external(&g.keys[0]))
        .collect();
    let total = outside.iter().map(|g| g.count).sum();
    if outside.is_empty() {
        return Ok(Section {
            total: 0,
            top: Vec::new(),
        });
    }
    let narrowed = Filter {
        source_ips: outside
            .iter()
            .take(TOP)
            .map(|g| g.keys[0].clone())
            .collect(),
        ..base
    };
    let mut top = count_by(&narrowed, vec![Field::SourceIp, Field::User])?;
    top.truncate(TOP);
    Ok(Section { total, top })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges_are_internal() {
        let n = Networks::default();
        for ip in [
            "10.1.2.3",
            "172.31.255.255",
            "192.168.0.1",
            "127.0.0.1",
            "::1",
            "fd12::1",
            "::ffff:10.0.0.1",
            "",
        ] {
            assert!(!n.is_external(ip), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "172.32.0.1",
            "2001:db8::1",
            "::ffff:1.2.3.4",
            "not-an-ip",
        ] {
            assert!(n.is_external(ip), "{ip}");
        }
    }

    #[test]
    fn custom_ranges_parse_and_errors_name_the_value() {
        let n = Networks::parse(["203.0.113.0/24", "198.51.100.7"]).unwrap();
        assert!(!n.is_external("203.0.113.9"));
        assert!(!n.is_external("198.51.100.7"));
        assert!(n.is_external("198.51.100.8"));
        assert!(n.is_external("10.0.0.1"));
        let e = Networks::parse(["10.0.0.0/33"]).unwrap_err();
        assert!(e.contains("\"10.0.0.0/33\""), "{e}");
    }
}
