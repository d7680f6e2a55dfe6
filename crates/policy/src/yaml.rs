//! A YAML (and so JSON) document as a tree whose nodes know where they are in the file, so that
//! errors and explanations can name a line, and `convert` can edit the text in place.
//!
//! Scalars resolve the way kube-apiserver's YAML reader (go-yaml v2, YAML 1.1) resolves them
//! before JSON decoding: `yes`/`no`/`on`/`off` are booleans, `~` and empty values are null.
//!
//! Every YAML file kubetrail reads through this module (policies, Pod manifests) may come from
//! someone else, so reading is bounded: nesting by [`MAX_DEPTH`], alias expansion by
//! [`MAX_ALIAS_NODES`] and [`MAX_ALIAS_SCALAR_BYTES`]. Past a limit, [`parse`] fails with the
//! line and column of the node that goes past and the limit's value.

mod build;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::Marker;

/// A node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The node's content.
    pub value: NodeValue,
    /// 1-based line of the node's first character.
    pub line: usize,
    /// Byte offset of the node's first character.
    pub offset: usize,
    /// For scalars, how the scalar was written.
    pub quoted: bool,
}

/// Node content.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    /// A scalar, already resolved to its JSON value.
    Scalar(Value),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping; keys in document order. Duplicate keys are kept here (the last one wins in
    /// [`Node::to_json`]) so that they can be reported.
    Map(Vec<(Node, Node)>),
}

/// Most levels of sequences and mappings one document may nest, counting the levels an alias
/// brings in where it is used. Default 128 (the limit serde_yaml and serde_norway use): audit
/// policies and Pod manifests nest fewer than 15, and the tree is walked recursively.
pub const MAX_DEPTH: usize = 128;

/// Most nodes that alias expansion may add to one document: each alias adds the nodes of the
/// subtree it names. Default 100,000. A "billion laughs" document of nine anchors each naming the
/// one before nine times would otherwise expand 400 bytes into 9^9 (387 million) scalars; go-yaml
/// refuses the same with "document contains excessive aliasing".
pub const MAX_ALIAS_NODES: usize = 100_000;

/// Most bytes of scalar text that alias expansion may copy into one document (an alias of a long
/// string copies the string). Default 4 MiB.
pub const MAX_ALIAS_SCALAR_BYTES: usize = 4 << 20;

/// Why a document was not read, and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("yaml: line {line}, column {column}: {kind}")]
pub struct Error {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong.
    pub kind: ErrorKind,
}

/// What is wrong with a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// Not YAML; the parser's message.
    #[error("{0}")]
    Syntax(String),
    /// Aliases would expand past [`MAX_ALIAS_NODES`].
    #[error(
        "document contains excessive aliasing: aliases would expand to more than {MAX_ALIAS_NODES} nodes"
    )]
    AliasNodes,
    /// Aliases would copy more than [`MAX_ALIAS_SCALAR_BYTES`] of scalar text.
    #[error(
        "document contains excessive aliasing: aliases would copy more than {MAX_ALIAS_SCALAR_BYTES} bytes of text"
    )]
    AliasScalarBytes,
    /// Sequences and mappings nest deeper than [`MAX_DEPTH`].
    #[error("document nests too deeply: more than {MAX_DEPTH} levels of sequences and mappings")]
    Depth,
    /// A character YAML does not allow in a stream (C0 controls but tab, LF and CR; DEL; C1
    /// controls but NEL; U+FFFE, U+FFFF). The parser would read on past it and misplace what
    /// follows, so a file holding one is refused rather than edited.
    #[error("character {0:?} is not allowed in YAML")]
    Unprintable(char),
}

impl Error {
    fn at(mark: Marker, kind: ErrorKind) -> Self {
        Error {
            line: mark.line(),
            column: mark.col() + 1,
            kind,
        }
    }
}

/// The result of reading a document.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Parses the first document of `text`. `Ok(None)` for a document with no content.
///
/// Fails on a syntax error, and when the document is past one of the limits ([`MAX_DEPTH`],
/// [`MAX_ALIAS_NODES`], [`MAX_ALIAS_SCALAR_BYTES`]): then it stops at the node that goes past,
/// having used memory in proportion to `text` only.
pub fn parse(text: &str) -> Result<Option<Node>> {
    check_printable(text)?;
    let mut builder = build::Builder::new(text);
    let mut parser = Parser::new_from_str(text);
    loop {
        let (event, mark) = parser.next_token().map_err(|e| {
            let kind = match e.info() {
                // The scanner's own limit of 255 flow levels, reached as it reads ahead.
                "recursion limit exceeded" => ErrorKind::Depth,
                info => ErrorKind::Syntax(info.to_string()),
            };
            Error::at(*e.marker(), kind)
        })?;
        match event {
            // The first document only, as kube-apiserver reads a policy file.
            Event::DocumentEnd | Event::StreamEnd => break,
            event => builder.on_event(event, mark)?,
        }
    }
    Ok(builder.finish_document())
}

/// YAML 1.2's `c-printable` (plus a leading byte-order mark), checked before parsing.
fn check_printable(text: &str) -> Result<()> {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{85}')
            || ('\u{a0}'..='\u{fffd}').contains(&c)
            || c >= '\u{10000}'
    };
    let Some((at, c)) = text.char_indices().find(|&(_, c)| !allowed(c)) else {
        return Ok(());
    };
    if at == 0 && c == '\u{feff}' {
        return check_printable(&text[c.len_utf8()..]);
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Err(Error {
        line,
        column,
        kind: ErrorKind::Unprintable(c),
    })
}

impl Node {
    /// The node as JSON, as go-yaml → JSON conversion would produce it.
    pub fn to_json(&self) -> Value {
        match &self.value {
            NodeValue::Scalar(v) => v.clone(),
            NodeValue::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Map(pairs) => {
                let mut map = Map::new();
                for (k, v) in pairs {
                    map.insert(k.key_string(), v.to_json());
                }
                Value::Object(map)
            }
        }
    }

    /// A mapping key as the string JSON will use.
    pub fn key_string(&self) -> String {
        match &self.value {
            NodeValue::Scalar(Value::String(s)) => s.clone(),
            NodeValue::Scalar(Value::Null) => "null".into(),
            NodeValue::Scalar(v) => v.to_string(),
            _ => self.to_json().to_string(),
        }
    }

    /// The value under `key` in a mapping (the last one, if the key repeats).
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            NodeValue::Map(pairs) => pairs
                .iter()
                .rev()
                .find(|(k, _)| k.key_string() == key)
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Item `index` of a sequence.
    pub fn index(&self, index: usize) -> Option<&Node> {
        match &self.value {
            NodeValue::Seq(items) => items.get(index),
            _ => None,
        }
    }

    /// The line of the deepest node on a field path such as `rules[3].nonResourceURLs[0]`.
    /// Stops at the last segment that exists (a missing field is reported at its parent).
    pub fn line_of(&self, path: &str) -> usize {
        let mut node = self;
        for segment in path_segments(path) {
            let next = match segment {
                Segment::Key(k) => node.get(k),
                Segment::Index(i) => node.index(i),
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node.line
    }

    /// Every duplicate key in the tree, as (field path, line).
    pub fn duplicate_keys(&self) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        self.collect_duplicates("", &mut out);
        out
    }

    fn collect_duplicates(&self, path: &str, out: &mut Vec<(String, usize)>) {
        match &self.value {
            NodeValue::Scalar(_) => {}
            NodeValue::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    item.collect_duplicates(&format!("{path}[{i}]"), out);
                }
            }
            NodeValue::Map(pairs) => {
                let mut seen = std::collections::HashSet::new();
                for (k, v) in pairs {
                    let key = k.key_string();
                    let child = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    if !seen.insert(key) {
                        out.push((child.clone(), k.line));
                    }
                    v.collect_duplicates(&child, out);
                }
            }
        }
    }
}

/// One step of a field path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment<'a> {
    /// `.name`
    Key(&'a str),
    /// `[3]`
    Index(usize),
}

/// Splits `rules[3].resources[0].group` into its steps.
pub fn path_segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        // `[N]` steps; anything else after a key (a key spelled with brackets, found by the
        // policy_yaml fuzz target: `]]]]`) ends the part rather than slicing out of order.
        while let Some(inner) = rest.strip_prefix('[') {
            let Some(end) = inner.find(']') else {
                break;
            };
            if let Ok(i) = inner[..end].parse() {
                out.push(Segment::Index(i));
            }
            rest = &inner[end + 1..];
        }
    }
    out
}

/// go-yaml v2's resolution of an untagged scalar (YAML 1.1 booleans, `~`/`null`/empty as null,
/// decimal, octal and hex integers, floats). Quoted scalars and `!!str` are strings.
fn resolve_scalar(text: &str, quoted: bool, tag: Option<&Tag>) -> Value {
    if let Some(tag) = tag
        && tag.suffix == "str"
    {
        return Value::String(text.to_string());
    }
    if quoted {
        return Value::String(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => {
            return Value::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => {
            return Value::Bool(false);
        }
        _ => {}
    }
    let digits = text.trim_start_matches(['-', '+']);
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
        && let Ok(i) = text.replace('_', "").parse::<i64>()
    {
        return Value::Number(i.into());
    }
    if let Some(hex) = text.strip_prefix("0x")
        && let Ok(i) = i64::from_str_radix(hex, 16)
    {
        return Value::Number(i.into());
    }
    let looks_numeric = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && text.bytes().any(|b| b.is_ascii_digit());
    if looks_numeric && let Some(n) = text.parse::<f64>().ok().and_then(Number::from_f64) {
        return Value::Number(n);
    }
    Value::String(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_take_brackets_in_order_and_never_panic() {
        assert_eq!(
            path_segments("rules[3].resources[0].group"),
            [
                Segment::Key("rules"),
                Segment::Index(3),
                Segment::Key("resources"),
                Segment::Index(0),
                Segment::Key("group")
            ]
        );
        // Keys spelled with brackets (found by the policy_yaml fuzz target).
        assert_eq!(path_segments("a]]]]"), [Segment::Key("a]]]]")]);
        assert_eq!(path_segments("[1]]]x"), [Segment::Index(1)]);
        assert_eq!(path_segments("a[2"), [Segment::Key("a")]);
    }
    use serde_json::json;

    #[test]
    fn tree_has_lines_and_json() {
        let text = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  # comment\n  - level: None\n    users: [\"a\", b]\n  - level: Metadata\n";
        let root = parse(text).unwrap().unwrap();
        assert_eq!(
            root.to_json(),
            json!({"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
                   "rules": [{"level": "None", "users": ["a", "b"]}, {"level": "Metadata"}]})
        );
        assert_eq!(root.line_of("rules[0]"), 5);
        assert_eq!(root.line_of("rules[1].level"), 7);
        assert_eq!(root.line_of("rules[0].users[1]"), 6);
        assert_eq!(root.line_of("rules[1].nonResourceURLs[0]"), 7);
        let api = root.get("apiVersion").unwrap();
        assert_eq!(&text[api.offset..api.offset + 15], "audit.k8s.io/v1");
    }

    #[test]
    fn yaml_1_1_scalars_resolve_like_go_yaml_v2() {
        let root = parse("a: yes\nb: off\nc: ~\nd: 12\ne: '12'\nf: 1.5\ng: None\nh:\ni: !!str 7\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            root.to_json(),
            json!({"a": true, "b": false, "c": null, "d": 12, "e": "12", "f": 1.5, "g": "None", "h": null, "i": "7"})
        );
    }

    #[test]
    fn json_documents_parse_too_and_duplicates_are_found() {
        let root = parse(
            "{\"kind\": \"Policy\", \"rules\": [{\"level\": \"None\", \"level\": \"Metadata\"}]}",
        )
        .unwrap()
        .unwrap();
        assert_eq!(root.to_json()["rules"][0]["level"], json!("Metadata"));
        assert_eq!(
            root.duplicate_keys(),
            vec![("rules[0].level".to_string(), 1)]
        );
    }

    #[test]
    fn anchors_and_aliases_expand() {
        let root = parse("base: &b [get, list]\nother: *b\n").unwrap().unwrap();
        assert_eq!(root.to_json()["other"], json!(["get", "list"]));
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let err = parse("rules:\n  - level: None\n   bad: [\n").unwrap_err();
        assert!(err.line >= 3, "{err}");
        assert!(parse("# only a comment\n").unwrap().is_none());
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let err = parse("a: [b,\nc: d\n").unwrap_err();
        assert!(matches!(err.kind, ErrorKind::Syntax(_)), "{err}");
        assert!(
            err.to_string()
                .starts_with(&format!("yaml: line {}, column {}: ", err.line, err.column))
        );
        assert!(err.column >= 1);
    }

    #[test]
    fn control_characters_are_refused_where_they_stand() {
        // Found by the apiserver_manifest fuzz target: with NUL bytes in a scalar the parser
        // read on and `install apiserver` inserted its volumes in the middle of `command`.
        let err = parse("a: b\nc:\n- --x=1\u{1}\0\0y\n").unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unprintable('\u{1}'));
        assert_eq!((err.line, err.column), (3, 8));
        assert_eq!(
            err.to_string(),
            "yaml: line 3, column 8: character '\\u{1}' is not allowed in YAML"
        );
        assert!(parse("\u{feff}a: b\t# tab, BOM, é, 😀, NEL\u{85}\r\n").is_ok());
        assert!(parse("a: \u{7f}").is_err());
        assert!(parse("a: \u{fffe}").is_err());
    }

    fn nested_mappings(levels: usize) -> String {
        (0..levels)
            .map(|i| format!("{}a:\n", "  ".repeat(i)))
            .collect::<String>()
            + &"  ".repeat(levels)
            + "x\n"
    }

    #[test]
    fn nesting_stops_at_max_depth() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        let flow = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        let err = parse(&flow).unwrap_err();
        assert_eq!(
            (err.line, err.column, &err.kind),
            (1, MAX_DEPTH + 1, &ErrorKind::Depth)
        );

        // Far deeper flow nesting meets the scanner's limit as it reads ahead: the same error.
        let flow = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(parse(&flow).unwrap_err().kind, ErrorKind::Depth);

        assert!(parse(&nested_mappings(MAX_DEPTH)).is_ok());
        let err = parse(&nested_mappings(MAX_DEPTH + 1)).unwrap_err();
        // Mapping number 129 is on line 129; the parser places a block mapping at its first `:`.
        assert_eq!(
            (err.line, err.column, &err.kind),
            (MAX_DEPTH + 1, 2 * MAX_DEPTH + 2, &ErrorKind::Depth)
        );
        assert_eq!(
            err.to_string(),
            "yaml: line 129, column 258: document nests too deeply: more than 128 levels of sequences and mappings"
        );
    }

    #[test]
    fn an_alias_cannot_bring_nesting_past_max_depth() {
        let deep = |n: usize| format!("{}x{}", "[".repeat(n), "]".repeat(n));
        // The anchor has 99 levels (100 under the root mapping). Under the root and 28 more
        // sequences an alias of it reaches level 128; under 29 it would reach 129.
        let text = |n: usize| {
            format!(
                "a: &a {}\nb: {}*a{}\n",
                deep(99),
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        assert!(parse(&text(28)).is_ok());
        let err = parse(&text(29)).unwrap_err();
        assert_eq!(
            (err.line, err.column, &err.kind),
            (2, 4 + 29, &ErrorKind::Depth)
        );
    }

    #[test]
    fn alias_expansion_stops_at_max_alias_nodes() {
        // An anchor of 1,000 nodes (a sequence of 999 scalars), used 100 then 101 times.
        let anchor = format!("a: &a [{}]\n", vec!["x"; 999].join(","));
        let uses = |n: usize| format!("b: [{}]\n", vec!["*a"; n].join(","));
        let root = parse(&(anchor.clone() + &uses(100))).unwrap().unwrap();
        assert_eq!(root.to_json()["b"][99][998], json!("x"));
        let err = parse(&(anchor + &uses(101))).unwrap_err();
        // The 101st alias: `b: [` then 100 times `*a,`.
        assert_eq!(
            (err.line, err.column, &err.kind),
            (2, 5 + 300, &ErrorKind::AliasNodes)
        );
    }

    #[test]
    fn alias_expansion_stops_at_max_alias_scalar_bytes() {
        let long = "x".repeat(64 << 10);
        let text = |n: usize| format!("a: &a {long}\nb: [{}]\n", vec!["*a"; n].join(","));
        assert!(parse(&text(64)).is_ok(), "64 copies of 64 KiB are 4 MiB");
        let err = parse(&text(65)).unwrap_err();
        assert_eq!(
            (err.line, err.column, &err.kind),
            (2, 5 + 64 * 3, &ErrorKind::AliasScalarBytes)
        );
        assert_eq!(
            err.kind.to_string(),
            "document contains excessive aliasing: aliases would copy more than 4194304 bytes of text"
        );
    }

    #[test]
    fn aliases_are_placed_where_they_are_written() {
        let root = parse("base: &b\n  verbs: [get]\nother: *b\nmore: [*b]\n")
            .unwrap()
            .unwrap();
        let other = root.get("other").unwrap();
        assert_eq!(other.line, 3);
        assert_eq!(
            other.get("verbs").unwrap().line,
            2,
            "inside, the anchor's lines"
        );
        assert_eq!(root.line_of("more[0]"), 4);
        assert_eq!(root.to_json()["more"][0], json!({"verbs": ["get"]}));
        // An alias of an anchor that contains it is null, as before.
        assert_eq!(
            parse("a: &a [*a]\n").unwrap().unwrap().to_json(),
            json!({"a": [null]})
        );
    }

    #[test]
    fn offsets_are_bytes_in_non_ascii_text() {
        let text = "# Prüfung ☕\nkind: 'Pölicy'\nname: x\n";
        let root = parse(text).unwrap().unwrap();
        let kind = root.get("kind").unwrap();
        assert_eq!(&text[kind.offset..kind.offset + 9], "'Pölicy'");
        let name = root.get("name").unwrap();
        assert_eq!(&text[name.offset..], "x\n");
    }

    #[test]
    fn path_segments_split_keys_and_indexes() {
        assert_eq!(
            path_segments("rules[3].resources[0].group"),
            vec![
                Segment::Key("rules"),
                Segment::Index(3),
                Segment::Key("resources"),
                Segment::Index(0),
                Segment::Key("group")
            ]
        );
    }
}
