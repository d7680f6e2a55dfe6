//! A duration as people write it in flags and files (`90d`, `1h30m`), kept as its text form
//! when the configuration is written back (`--print-config`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use kubetrail_store::text::parse_duration;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `30s`, `15m`, `24h`, `7d`, `2w`, and sums such as `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        parse_duration(s).map(HumanDuration)
    }
}

impl fmt::Display for HumanDuration {
    /// Whole days, hours, minutes and seconds that sum to exactly this duration (`36h` is
    /// `1d12h`; weeks are written as days).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut left = self.0.as_secs();
        if left == 0 {
            return f.write_str("0s");
        }
        for (unit, secs) in [("d", 86_400), ("h", 3600), ("m", 60)] {
            if left >= secs {
                write!(f, "{}{unit}", left / secs)?;
                left %= secs;
            }
        }
        if left > 0 {
            write!(f, "{left}s")?;
        }
        Ok(())
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn text_round_trips() {
        for (text, secs, shown) in [
            ("90d", 90 * 86_400, "90d"),
            ("2w", 14 * 86_400, "14d"),
            ("1h30m", 5400, "1h30m"),
            ("36h", 36 * 3600, "1d12h"),
            ("45s", 45, "45s"),
        ] {
            let d: HumanDuration = text.parse().unwrap();
            assert_eq!(d.0, Duration::from_secs(secs));
            assert_eq!(d.to_string(), shown);
            assert_eq!(shown.parse::<HumanDuration>().unwrap(), d);
        }
        assert!("90x".parse::<HumanDuration>().is_err());
    }
}
