//! The bounded reader behind [`parse`](super::parse): parser events become a [`Node`] tree while
//! an anchored subtree is shared by its anchor and its aliases, and the copies are made only once
//! the document is known to be within [`MAX_DEPTH`], [`MAX_ALIAS_NODES`] and
//! [`MAX_ALIAS_SCALAR_BYTES`]. It also turns the parser's character positions into byte offsets.
//! It decides nothing about what a document means.

use std::collections::HashMap;
use std::rc::Rc;

use serde_json::Value;
use yaml_rust2::parser::Event;
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::{
    Error, ErrorKind, MAX_ALIAS_NODES, MAX_ALIAS_SCALAR_BYTES, MAX_DEPTH, Node, NodeValue, Result,
    resolve_scalar,
};

/// A node while the document is read. An anchored subtree is shared by its anchor and every
/// alias of it, so reading costs memory in proportion to the text; the copies are made at the
/// end, once the document is known to be within the limits.
struct Shared {
    value: SharedValue,
    quoted: bool,
    /// Nodes in the subtree once expanded, this one included.
    nodes: usize,
    /// Bytes of scalar text in the subtree once expanded.
    scalar_bytes: usize,
    /// Levels of sequences and mappings in the subtree: 0 for a scalar.
    height: usize,
}

enum SharedValue {
    Scalar(Value),
    Seq(Vec<Item>),
    Map(Vec<(Item, Item)>),
}

/// A node where it is written: an alias is its anchor's node at the alias's place.
struct Item {
    node: Rc<Shared>,
    line: usize,
    offset: usize,
}

impl Item {
    /// The expanded node: moved out when this is its only use, copied otherwise.
    fn into_node(self) -> Node {
        match Rc::try_unwrap(self.node) {
            Ok(shared) => {
                let value = match shared.value {
                    SharedValue::Scalar(v) => NodeValue::Scalar(v),
                    SharedValue::Seq(items) => {
                        NodeValue::Seq(items.into_iter().map(Item::into_node).collect())
                    }
                    SharedValue::Map(pairs) => NodeValue::Map(
                        pairs
                            .into_iter()
                            .map(|(k, v)| (k.into_node(), v.into_node()))
                            .collect(),
                    ),
                };
                Node {
                    value,
                    line: self.line,
                    offset: self.offset,
                    quoted: shared.quoted,
                }
            }
            Err(shared) => copy(&shared, self.line, self.offset),
        }
    }
}

fn copy(shared: &Shared, line: usize, offset: usize) -> Node {
    let item = |i: &Item| copy(&i.node, i.line, i.offset);
    let value = match &shared.value {
        SharedValue::Scalar(v) => NodeValue::Scalar(v.clone()),
        SharedValue::Seq(items) => NodeValue::Seq(items.iter().map(item).collect()),
        SharedValue::Map(pairs) => {
            NodeValue::Map(pairs.iter().map(|(k, v)| (item(k), item(v))).collect())
        }
    };
    Node {
        value,
        line,
        offset,
        quoted: shared.quoted,
    }
}

/// Where a sequence or mapping starts.
struct Start {
    line: usize,
    offset: usize,
    anchor: usize,
}

enum Frame {
    Seq(Start, Vec<Item>),
    Map(Start, Vec<(Item, Item)>, Option<Item>),
}

pub(super) struct Builder<'a> {
    offsets: ByteOffsets<'a>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Rc<Shared>>,
    root: Option<Item>,
    /// Nodes added by aliases so far.
    alias_nodes: usize,
    /// Scalar bytes copied by aliases so far.
    alias_scalar_bytes: usize,
}

impl<'a> Builder<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Builder {
            offsets: ByteOffsets::new(text),
            stack: Vec::new(),
            anchors: HashMap::new(),
            root: None,
            alias_nodes: 0,
            alias_scalar_bytes: 0,
        }
    }

    pub(super) fn on_event(&mut self, ev: Event, mark: Marker) -> Result<()> {
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let quoted = style != TScalarStyle::Plain;
                let shared = Shared {
                    value: SharedValue::Scalar(resolve_scalar(&text, quoted, tag.as_ref())),
                    quoted,
                    nodes: 1,
                    scalar_bytes: text.len(),
                    height: 0,
                };
                let item = self.item(Rc::new(shared), mark);
                self.finish(item, anchor);
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    return Err(Error::at(mark, ErrorKind::Depth));
                }
                let start = Start {
                    line: mark.line(),
                    offset: self.offsets.of(mark.index()),
                    anchor,
                };
                self.stack.push(match ev {
                    Event::SequenceStart(..) => Frame::Seq(start, Vec::new()),
                    _ => Frame::Map(start, Vec::new(), None),
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (start, value) = match self.stack.pop() {
                    Some(Frame::Seq(start, items)) => (start, SharedValue::Seq(items)),
                    Some(Frame::Map(start, pairs, _)) => (start, SharedValue::Map(pairs)),
                    None => return Ok(()),
                };
                let children: Vec<&Shared> = match &value {
                    SharedValue::Scalar(_) => Vec::new(),
                    SharedValue::Seq(items) => items.iter().map(|i| &*i.node).collect(),
                    SharedValue::Map(pairs) => pairs
                        .iter()
                        .flat_map(|(k, v)| [&*k.node, &*v.node])
                        .collect(),
                };
                let shared = Shared {
                    nodes: 1 + children.iter().map(|c| c.nodes).sum::<usize>(),
                    scalar_bytes: children.iter().map(|c| c.scalar_bytes).sum(),
                    height: 1 + children.iter().map(|c| c.height).max().unwrap_or(0),
                    value,
                    quoted: false,
                };
                let item = Item {
                    node: Rc::new(shared),
                    line: start.line,
                    offset: start.offset,
                };
                self.finish(item, start.anchor);
            }
            Event::Alias(id) => {
                let Some(target) = self.anchors.get(&id).cloned() else {
                    // An alias of an anchor whose node is not finished (it contains the alias).
                    let item = self.item(Rc::new(null()), mark);
                    self.finish(item, 0);
                    return Ok(());
                };
                self.alias_nodes = self.alias_nodes.saturating_add(target.nodes);
                if self.alias_nodes > MAX_ALIAS_NODES {
                    return Err(Error::at(mark, ErrorKind::AliasNodes));
                }
                self.alias_scalar_bytes =
                    self.alias_scalar_bytes.saturating_add(target.scalar_bytes);
                if self.alias_scalar_bytes > MAX_ALIAS_SCALAR_BYTES {
                    return Err(Error::at(mark, ErrorKind::AliasScalarBytes));
                }
                if self.stack.len() + target.height > MAX_DEPTH {
                    return Err(Error::at(mark, ErrorKind::Depth));
                }
                let item = self.item(target, mark);
                self.finish(item, 0);
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
        Ok(())
    }

    fn item(&mut self, node: Rc<Shared>, mark: Marker) -> Item {
        Item {
            node,
            line: mark.line(),
            offset: self.offsets.of(mark.index()),
        }
    }

    fn finish(&mut self, item: Item, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, Rc::clone(&item.node));
        }
        match self.stack.last_mut() {
            Some(Frame::Seq(_, items)) => items.push(item),
            Some(Frame::Map(_, pairs, key)) => match key.take() {
                None => *key = Some(item),
                Some(k) => pairs.push((k, item)),
            },
            None => {
                if self.root.is_none() {
                    self.root = Some(item);
                }
            }
        }
    }

    /// The document's tree, aliases expanded.
    pub(super) fn finish_document(mut self) -> Option<Node> {
        // Anchored nodes used once are then moved into the tree rather than copied.
        self.anchors.clear();
        self.root.take().map(Item::into_node)
    }
}

fn null() -> Shared {
    Shared {
        value: SharedValue::Scalar(Value::Null),
        quoted: false,
        nodes: 1,
        scalar_bytes: 0,
        height: 0,
    }
}

/// The parser counts positions in characters; [`Node::offset`] is in bytes. Positions arrive
/// mostly in order, so the conversion walks forward from the last one.
struct ByteOffsets<'a> {
    text: &'a str,
    ascii: bool,
    /// The last position converted, in characters and in bytes.
    chars: usize,
    bytes: usize,
}

impl<'a> ByteOffsets<'a> {
    fn new(text: &'a str) -> Self {
        ByteOffsets {
            text,
            ascii: text.is_ascii(),
            chars: 0,
            bytes: 0,
        }
    }

    fn of(&mut self, chars: usize) -> usize {
        if self.ascii {
            return chars;
        }
        if chars < self.chars {
            self.chars = 0;
            self.bytes = 0;
        }
        let rest = &self.text[self.bytes..];
        let advance = rest
            .char_indices()
            .nth(chars - self.chars)
            .map_or(rest.len(), |(i, _)| i);
        self.chars = chars;
        self.bytes += advance;
        self.bytes
    }
}
