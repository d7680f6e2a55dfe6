//! kubectl-style tables: upper-case headers, columns separated by three spaces, no borders.
//! Cells are made printable: control characters in attacker-controlled values (user agents,
//! names) are escaped so they cannot rewrite the terminal.

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

/// Escapes control characters; an empty value shows as `<none>`.
pub fn printable(s: &str) -> String {
    if s.is_empty() {
        return "<none>".into();
    }
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
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
}
