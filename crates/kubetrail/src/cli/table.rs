//! kubectl-style tables: upper-case headers, columns separated by three spaces, no borders.
//! Cells are made printable: control characters, bidi controls and invisible format characters
//! in attacker-controlled values (user agents, names) are escaped so they cannot rewrite the
//! terminal or make a name read other than it is. Everything else the command line prints that
//! holds such values goes through [`escape`] too; `-o json` output is JSON-escaped instead.

use kubetrail_model::is_invisible_format;

/// Renders `rows` under `headers`.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let clean: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| printable(c)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &clean {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let n = cells.len();
        for (i, cell) in cells.into_iter().enumerate() {
            out.push_str(cell);
            if i + 1 < n {
                let pad = widths[i] - cell.chars().count() + 3;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    };
    line(headers.to_vec(), &mut out);
    for row in &clean {
        line(row.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

/// Escapes what could rewrite or disguise the terminal line: control characters (ESC, NUL,
/// newlines; as `\u{1b}`, `\n`), Unicode bidi controls (U+061C, U+200E, U+200F,
/// U+202A–U+202E, U+2066–U+2069, which make text read reversed), the other invisible format
/// characters (zero-width U+200B–U+200D, U+2060–U+2064, U+FEFF, the soft hyphen, tags) and the
/// line and paragraph separators U+2028/U+2029, as `\u{202e}`. Everything else is kept.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else if is_invisible_format(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// A table cell: [`escape`]d; an empty value shows as `<none>`.
pub fn printable(s: &str) -> String {
    if s.is_empty() {
        return "<none>".into();
    }
    escape(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_and_escapes() {
        let t = render(
            &["A", "BB"],
            &[
                vec!["xyz".into(), "1".into()],
                vec!["\u{1b}[2J".into(), "".into()],
            ],
        );
        assert_eq!(t, "A           BB\nxyz         1\n\\u{1b}[2J   <none>\n");
    }

    #[test]
    fn bidi_controls_are_escaped() {
        // A name that a terminal would show as "exe.txt" reversed into "txt.exe".
        assert_eq!(printable("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        for c in [
            '\u{61c}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}',
            '\u{202e}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        ] {
            assert_eq!(
                printable(&format!("a{c}b")),
                format!("a\\u{{{:x}}}b", c as u32),
                "U+{:04X}",
                c as u32
            );
        }
    }

    #[test]
    fn invisible_format_characters_and_separators_are_escaped() {
        for (c, escaped) in [
            ('\u{200b}', "\\u{200b}"),
            ('\u{200c}', "\\u{200c}"),
            ('\u{200d}', "\\u{200d}"),
            ('\u{2060}', "\\u{2060}"),
            ('\u{feff}', "\\u{feff}"),
            ('\u{ad}', "\\u{ad}"),
            ('\u{2028}', "\\u{2028}"),
            ('\u{2029}', "\\u{2029}"),
            ('\u{e0041}', "\\u{e0041}"),
        ] {
            assert_eq!(printable(&format!("x{c}y")), format!("x{escaped}y"));
        }
        // Escapes keep table columns aligned: the escape is what is measured and printed.
        let t = render(&["NAME", "X"], &[vec!["a\u{200b}b".into(), "1".into()]]);
        assert_eq!(t, "NAME         X\na\\u{200b}b   1\n");
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for s in [
            "system:serviceaccount:kube-system:replicaset-controller",
            "kubectl/v1.31.0 (linux/amd64) kubernetes/abc1234",
            "café ☕ 名前 عربي עברית",
            "back\\slash",
        ] {
            assert_eq!(printable(s), s);
        }
    }

    #[test]
    fn escape_is_for_lines_outside_tables() {
        assert_eq!(escape(""), "");
        // A crafted value cannot start a line of its own that looks like kubetrail's.
        assert_eq!(
            escape("x\npolicy.yaml:1: would load\u{2028}"),
            "x\\npolicy.yaml:1: would load\\u{2028}"
        );
    }
}
