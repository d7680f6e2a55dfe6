//! The text forms of query values, as the command line and the HTTP API both take them:
//! durations (`24h`, `7d`, `1h30m`), RFC 3339 times, and field names (`user`, `verb`, ...).
//! Errors say what was expected, so callers only prefix the flag or parameter name.

use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::Field;

pub use kubetrail_model::parse_duration;

pub use kubetrail_model::{hex, unhex};

/// A secret of `bytes` random bytes from the operating system's generator, as hex: tokens,
/// session ids.
pub fn random_hex(bytes: usize) -> std::io::Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(hex(&buf))
}

/// An RFC 3339 time.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    // A date alone is its midnight, UTC: `--from 2024-05-01 --to 2024-05-02` is that day.
    // Exactly YYYY-MM-DD: chrono's %Y also reads signed years (`-06022-5-5`), which no RFC 3339
    // time can write back (found by the query_params fuzz target).
    let is_date = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    if is_date && let Ok(day) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(day.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!(
                "invalid time {s:?}: {e}; expected RFC 3339 (2024-05-01T10:00:00Z) or a date (2024-05-01, midnight UTC)"
            )
        })
}

/// Microseconds since the epoch as RFC 3339 with microseconds, UTC.
pub fn format_micros(micros: i64) -> String {
    DateTime::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_else(|| micros.to_string())
}

impl Field {
    /// Every field, in the order the names are listed in errors.
    pub const ALL: [Field; 14] = [
        Field::Cluster,
        Field::User,
        Field::ImpersonatedUser,
        Field::Verb,
        Field::Resource,
        Field::ApiGroup,
        Field::Namespace,
        Field::Name,
        Field::Code,
        Field::Decision,
        Field::Stage,
        Field::Level,
        Field::UserAgent,
        Field::SourceIp,
    ];

    /// The field's name in the API and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Cluster => "cluster",
            Field::User => "user",
            Field::ImpersonatedUser => "impersonatedUser",
            Field::Verb => "verb",
            Field::Resource => "resource",
            Field::ApiGroup => "apiGroup",
            Field::Namespace => "namespace",
            Field::Name => "name",
            Field::Code => "code",
            Field::Decision => "decision",
            Field::Stage => "stage",
            Field::Level => "level",
            Field::UserAgent => "userAgent",
            Field::SourceIp => "sourceIp",
        }
    }
}

impl FromStr for Field {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Field::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Field::ALL.iter().map(|f| f.as_str()).collect();
                format!("unknown field {s:?}: expected one of {}", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn hex_round_trips_and_secrets_differ() {
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(unhex("00ab10"), Some(vec![0, 0xab, 0x10]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
        let (a, b) = (random_hex(16).unwrap(), random_hex(16).unwrap());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn a_date_alone_is_its_midnight_utc() {
        let t = |s: &str| parse_time(s).map(|t| t.timestamp());
        assert_eq!(t("2024-05-01"), Ok(1_714_521_600));
        assert_eq!(t("2024-05-01T00:00:00Z"), Ok(1_714_521_600));
        assert_eq!(t("2024-05-01T02:00:00+02:00"), Ok(1_714_521_600));
        for bad in [
            "2024-5-1",
            "2024-05-32",
            "yesterday",
            "2024-05-01 10:00",
            "-06022-5-5",
            "+2024-5-01",
        ] {
            let e = t(bad).unwrap_err();
            assert!(e.contains("or a date (2024-05-01"), "{bad}: {e}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(14 * 86_400)));
        for bad in ["", "7", "d", "7y", "-1h", "0s", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fields_round_trip_their_names() {
        for f in Field::ALL {
            assert_eq!(f.as_str().parse::<Field>(), Ok(f));
            // The serde name is the same text.
            assert_eq!(
                serde_json::to_string(&f).unwrap(),
                format!("\"{}\"", f.as_str())
            );
        }
        assert!("users".parse::<Field>().unwrap_err().contains("userAgent"));
    }

    #[test]
    fn times() {
        let t = parse_time("2024-05-01T10:00:00Z").unwrap();
        assert_eq!(
            format_micros(t.timestamp_micros()),
            "2024-05-01T10:00:00.000000Z"
        );
        assert!(parse_time("yesterday").unwrap_err().contains("RFC 3339"));
    }
}
