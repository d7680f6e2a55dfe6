//! [`MicroTime`]: the audit API's timestamps, parsed tolerantly and written exactly as
//! kube-apiserver writes them (RFC 3339, UTC, six fractional digits).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

/// A timestamp with microsecond precision (`metav1.MicroTime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MicroTime(pub DateTime<Utc>);

impl MicroTime {
    /// Microseconds since the Unix epoch.
    pub fn unix_micros(&self) -> i64 {
        self.0.timestamp_micros()
    }
}

impl FromStr for MicroTime {
    type Err = String;

    /// Accepts RFC 3339 with any number of fractional digits and any offset, and the
    /// `2022-11-29 00:09:04.38` form (no offset, read as UTC) that some log pipelines write.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(MicroTime(t.with_timezone(&Utc)));
        }
        for layout in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
            if let Ok(t) = NaiveDateTime::parse_from_str(s, layout) {
                return Ok(MicroTime(t.and_utc()));
            }
        }
        Err(format!("invalid timestamp {s:?}: expected RFC 3339"))
    }
}

impl fmt::Display for MicroTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Micros, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_six_fractional_digits_in_utc() {
        let t: MicroTime = "2017-09-11T15:34:21.123+02:00".parse().unwrap();
        assert_eq!(t.to_string(), "2017-09-11T13:34:21.123000Z");
        let t: MicroTime = "2017-09-11T15:34:21Z".parse().unwrap();
        assert_eq!(t.to_string(), "2017-09-11T15:34:21.000000Z");
    }

    #[test]
    fn reads_the_space_separated_form_as_utc() {
        let t: MicroTime = "2022-11-29 00:09:04.38".parse().unwrap();
        assert_eq!(t.to_string(), "2022-11-29T00:09:04.380000Z");
        assert!("yesterday".parse::<MicroTime>().is_err());
    }
}
