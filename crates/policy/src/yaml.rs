//! A YAML (and so JSON) document as a tree whose nodes know where they are in the file, so that
//! errors and explanations can name a line, and `convert` can edit the text in place.
//!
//! Scalars resolve the way kube-apiserver's YAML reader (go-yaml v2, YAML 1.1) resolves them
//! before JSON decoding: `yes`/`no`/`on`/`off` are booleans, `~` and empty values are null.

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

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

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("yaml: line {line}: {message}")]
pub struct SyntaxError {
    /// 1-based line.
    pub line: usize,
    /// What the parser said.
    pub message: String,
}

/// Parses the first document of `text`. `Ok(None)` for a document with no content.
pub fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, false).map_err(|e| SyntaxError {
        line: e.marker().line(),
        message: e.info().to_string(),
    })?;
    Ok(builder.root)
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
        while let Some(end) = rest.find(']') {
            if let Ok(i) = rest[1..end].parse() {
                out.push(Segment::Index(i));
            }
            rest = &rest[end + 1..];
        }
    }
    out
}

enum Frame {
    Seq(Node, Vec<Node>, usize),
    Map(Node, Vec<(Node, Node)>, Option<Node>, usize),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: std::collections::HashMap<usize, Node>,
    root: Option<Node>,
    done: bool,
}

impl Builder {
    fn finish(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            Some(Frame::Seq(_, items, _)) => items.push(node),
            Some(Frame::Map(_, pairs, key, _)) => match key.take() {
                None => *key = Some(node),
                Some(k) => pairs.push((k, node)),
            },
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
                self.done = true;
            }
        }
    }
}

fn start(mark: Marker) -> Node {
    Node {
        value: NodeValue::Scalar(Value::Null),
        line: mark.line(),
        offset: mark.index(),
        quoted: false,
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.done {
            return;
        }
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let quoted = style != TScalarStyle::Plain;
                let value = resolve_scalar(&text, quoted, tag.as_ref());
                let node = Node {
                    value: NodeValue::Scalar(value),
                    quoted,
                    ..start(mark)
                };
                self.finish(node, anchor);
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Frame::Seq(start(mark), Vec::new(), anchor));
            }
            Event::MappingStart(anchor, _) => {
                self.stack
                    .push(Frame::Map(start(mark), Vec::new(), None, anchor));
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq(mut node, items, anchor)) => {
                    node.value = NodeValue::Seq(items);
                    self.finish(node, anchor);
                }
                Some(Frame::Map(mut node, pairs, _, anchor)) => {
                    node.value = NodeValue::Map(pairs);
                    self.finish(node, anchor);
                }
                None => {}
            },
            Event::Alias(id) => {
                let mut node = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| start(mark));
                node.line = mark.line();
                node.offset = mark.index();
                self.finish(node, 0);
            }
            Event::DocumentEnd => self.done = self.root.is_some(),
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart => {}
        }
    }
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
