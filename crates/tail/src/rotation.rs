//! Lumberjack's rotation naming, as kube-apiserver uses it: the active file `<name><ext>` is
//! renamed on rotation to `<name>-<UTC time as 2006-01-02T15-04-05.000><ext>`, and compressed
//! backups get a further `.gz`. `<ext>` is Go's `filepath.Ext`: from the last dot of the file
//! name (`kubernetes.audit` → `kubernetes` + `.audit`; `audit` has none).

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};

/// Lumberjack's `backupTimeFormat` (`2006-01-02T15-04-05.000`) in chrono's terms.
const TIME_FORMAT: &str = "%Y-%m-%dT%H-%M-%S%.3f";
/// Length of a formatted backup time.
const TIME_LEN: usize = "2006-01-02T15-04-05.000".len();

/// One file of a rotated set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    /// Where it is.
    pub path: PathBuf,
    /// The rotation time in its name; `None` for the active file (or a file of no set).
    pub rotated_at: Option<DateTime<Utc>>,
    /// Whether it is gzip-compressed.
    pub compressed: bool,
}

/// Go's `filepath.Ext`: the suffix from the last dot of the final element, or `""`.
fn split_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) => (&name[..i], &name[i..]),
        None => (name, ""),
    }
}

/// The backup name lumberjack gives `active` when rotating it at `at`.
pub fn backup_name(active: &Path, at: DateTime<Utc>, compressed: bool) -> PathBuf {
    let name = active.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let (stem, ext) = split_ext(name);
    let gz = if compressed { ".gz" } else { "" };
    active.with_file_name(format!("{stem}-{}{ext}{gz}", at.format(TIME_FORMAT)))
}

/// If `file_name` is a backup of some active file, that active file's name, the rotation time
/// and whether it is compressed.
pub fn parse_backup_name(file_name: &str) -> Option<(String, DateTime<Utc>, bool)> {
    let (name, compressed) = match file_name.strip_suffix(".gz") {
        Some(n) => (n, true),
        None => (file_name, false),
    };
    // The time sits after the last '-' that is followed by a parseable time.
    for (i, _) in name
        .match_indices('-')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        let rest = &name[i + 1..];
        let Some(ts) = rest.get(..TIME_LEN) else {
            continue;
        };
        let Ok(time) = NaiveDateTime::parse_from_str(ts, TIME_FORMAT) else {
            continue;
        };
        let ext = &rest[TIME_LEN..];
        if !ext.is_empty() && !ext.starts_with('.') {
            continue;
        }
        if ext.len() > 1 && ext[1..].contains('.') {
            continue;
        }
        let active = format!("{}{ext}", &name[..i]);
        return Some((active, time.and_utc(), compressed));
    }
    None
}

/// Orders files for reading: each rotated set oldest backup first and its active file last;
/// sets, and files of no set, by name. A `.log` and `.log.gz` of the same time (a backup
/// caught while lumberjack compresses it) are both kept; the caller's deduplication handles
/// the repeat.
pub fn order_paths(paths: &[PathBuf]) -> Vec<LogFile> {
    let mut keyed: Vec<(PathBuf, Option<DateTime<Utc>>, u8, LogFile)> = paths
        .iter()
        .map(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            match parse_backup_name(name) {
                Some((active, at, compressed)) => (
                    p.with_file_name(active),
                    Some(at),
                    0,
                    LogFile {
                        path: p.clone(),
                        rotated_at: Some(at),
                        compressed,
                    },
                ),
                None => (
                    p.clone(),
                    None,
                    1,
                    LogFile {
                        path: p.clone(),
                        rotated_at: None,
                        compressed: name.ends_with(".gz"),
                    },
                ),
            }
        })
        .collect();
    keyed.sort_by(|a, b| {
        (&a.0, a.2, a.1, !a.3.compressed, &a.3.path).cmp(&(
            &b.0,
            b.2,
            b.1,
            !b.3.compressed,
            &b.3.path,
        ))
    });
    keyed.into_iter().map(|k| k.3).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(ms).single().unwrap()
    }

    #[test]
    fn names_follow_lumberjack() {
        let t = at(1_714_558_830_123);
        assert_eq!(
            backup_name(Path::new("/var/log/kubernetes/kubernetes.audit"), t, false),
            PathBuf::from("/var/log/kubernetes/kubernetes-2024-05-01T10-20-30.123.audit")
        );
        assert_eq!(
            backup_name(Path::new("/var/log/audit.log"), t, true),
            PathBuf::from("/var/log/audit-2024-05-01T10-20-30.123.log.gz")
        );
        assert_eq!(
            backup_name(Path::new("audit"), t, false),
            PathBuf::from("audit-2024-05-01T10-20-30.123")
        );
    }

    #[test]
    fn backups_parse_back() {
        assert_eq!(
            parse_backup_name("kubernetes-2024-05-01T10-20-30.123.audit"),
            Some(("kubernetes.audit".into(), at(1_714_558_830_123), false))
        );
        assert_eq!(
            parse_backup_name("kube-apiserver-audit-2024-05-01T10-20-30.123.log.gz"),
            Some((
                "kube-apiserver-audit.log".into(),
                at(1_714_558_830_123),
                true
            ))
        );
        assert_eq!(
            parse_backup_name("audit-2024-05-01T10-20-30.123"),
            Some(("audit".into(), at(1_714_558_830_123), false))
        );
        for not_backup in [
            "kubernetes.audit",
            "audit-2024-05-01.log",
            "audit-2024-13-01T10-20-30.123.log",
            "x-2024-05-01T10-20-30.123.log.old.log",
        ] {
            assert_eq!(parse_backup_name(not_backup), None, "{not_backup}");
        }
    }

    #[test]
    fn sets_read_oldest_first_active_last() {
        let paths: Vec<PathBuf> = [
            "d/kubernetes.audit",
            "d/kubernetes-2024-05-02T00-00-00.000.audit",
            "d/kubernetes-2024-05-01T00-00-00.000.audit.gz",
            "d/kubernetes-2024-05-03T00-00-00.000.audit",
            "d/zzz.jsonl",
            "d/aaa.jsonl",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        let order: Vec<String> = order_paths(&paths)
            .iter()
            .map(|f| f.path.display().to_string())
            .collect();
        assert_eq!(
            order,
            [
                "d/aaa.jsonl",
                "d/kubernetes-2024-05-01T00-00-00.000.audit.gz",
                "d/kubernetes-2024-05-02T00-00-00.000.audit",
                "d/kubernetes-2024-05-03T00-00-00.000.audit",
                "d/kubernetes.audit",
                "d/zzz.jsonl",
            ]
        );
    }
}
