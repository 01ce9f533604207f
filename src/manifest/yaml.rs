//! A YAML document as a tree of nodes that remember where they came from (file, line,
//! column), so every problem found after overlays are merged can still point at its source.
//! Parsing uses yaml-rust2's event API, which gives a position for every event.

use std::collections::{HashMap, HashSet};

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::diag::Problem;

/// Index of a file in the [`super::diag::Sources`] table.
pub type FileId = usize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Span {
    pub file: FileId,
    /// 1-based.
    pub line: usize,
    /// 1-based.
    pub col: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    /// The text, and whether it was plain (unquoted): only plain scalars are read as
    /// numbers, booleans or null.
    Scalar(String, bool),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub span: Span,
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn key_span(&self, key: &str) -> Option<Span> {
        match &self.kind {
            Kind::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.name == key)
                .map(|(k, _)| k.span),
            _ => None,
        }
    }

    /// Follows a path of map keys and list indices (`["services", "web", "ports", "0"]`).
    pub fn at(&self, path: &[String]) -> Option<&Node> {
        let mut node = self;
        for seg in path {
            node = match &node.kind {
                Kind::Map(_) => node.get(seg)?,
                Kind::Seq(items) => items.get(seg.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// The span of the deepest node on `path` that exists: a problem about a missing key
    /// points at the mapping that should hold it.
    pub fn span_of(&self, path: &[String]) -> Span {
        let mut node = self;
        for seg in path {
            let next = match &node.kind {
                Kind::Map(_) => node.get(seg),
                Kind::Seq(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node.span
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(s, _) => Some(s),
            _ => None,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            Kind::Null => "null",
            Kind::Scalar(..) => "a scalar",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// Removes a key from a mapping, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Node> {
        match &mut self.kind {
            Kind::Map(entries) => {
                let pos = entries.iter().position(|(k, _)| k.name == key)?;
                Some(entries.remove(pos).1)
            }
            _ => None,
        }
    }
}

/// Bounds on what one manifest file may hold, so that no input (a YAML bomb, a deep nesting,
/// a huge file) can exhaust the stack, the memory or the time of `twip validate`.
pub mod limits {
    /// Largest manifest file read, in bytes.
    pub const MAX_FILE_BYTES: u64 = 1 << 20;
    /// Deepest nesting of lists and mappings.
    pub const MAX_DEPTH: usize = 64;
    /// Most nodes in one file's tree, counting each node an alias copies.
    pub const MAX_NODES: usize = 100_000;
    /// Most aliases (`*name`) in one file.
    pub const MAX_ALIASES: usize = 10_000;
    /// Longest scalar (or key), in bytes, before and after `${VAR}` interpolation.
    pub const MAX_SCALAR_BYTES: usize = 256 << 10;
}

/// Parses one YAML document. An empty document (only comments) is `Ok(None)`.
///
/// The parser's events are pulled one at a time (yaml-rust2's own `load` recurses once per
/// nesting level), and the first problem stops the parse: depth, node count (alias copies
/// included) and scalar size are bounded before anything grows.
pub fn parse(text: &str, file: FileId) -> Result<Option<Node>, Problem> {
    let mut builder = Builder {
        file,
        stack: Vec::new(),
        anchors: HashMap::new(),
        docs: Vec::new(),
        error: None,
        nodes: 0,
        aliases: 0,
    };
    let mut parser = Parser::new_from_str(text);
    loop {
        let (ev, mark) = match parser.next_token() {
            Ok(x) => x,
            Err(e) => {
                let m = e.marker();
                return Err(Problem::at(
                    span(file, m),
                    "",
                    format!("invalid YAML: {}", e.info()),
                ));
            }
        };
        if ev == Event::StreamEnd {
            break;
        }
        builder.on_event(ev, mark);
        if builder.error.is_some() || builder.docs.len() > 1 {
            break;
        }
    }
    if let Some(p) = builder.error {
        return Err(p);
    }
    match builder.docs.len() {
        0 => Ok(None),
        1 => Ok(builder.docs.pop()),
        _ => Err(Problem::at(
            builder.docs[1].span,
            "",
            "a manifest holds one YAML document; found a second one (`---`)",
        )),
    }
}

fn span(file: FileId, m: &Marker) -> Span {
    Span {
        file,
        line: m.line().max(1),
        col: m.col() + 1,
    }
}

/// A mapping being built: its entries, an index of their keys (so that duplicate and merge
/// checks are linear), and the keys that came from `<<` merges (an explicit key overrides
/// those).
struct MapFrame {
    entries: Vec<(Key, Node)>,
    index: HashMap<String, usize>,
    merged: HashSet<String>,
    pending: Option<Key>,
    span: Span,
    anchor: usize,
    start: usize,
}

enum Frame {
    /// Items, span, anchor, node count at the start.
    Seq(Vec<Node>, Span, usize, usize),
    Map(MapFrame),
}

struct Builder {
    file: FileId,
    stack: Vec<Frame>,
    /// Anchored nodes and their sizes (in nodes).
    anchors: HashMap<usize, (Node, usize)>,
    docs: Vec<Node>,
    error: Option<Problem>,
    /// Nodes made so far, alias copies included.
    nodes: usize,
    aliases: usize,
}

impl Builder {
    /// The key path of the value being built (for messages found while parsing).
    fn path(&self) -> Vec<String> {
        self.stack
            .iter()
            .filter_map(|f| match f {
                Frame::Seq(items, ..) => Some(items.len().to_string()),
                Frame::Map(m) => m.pending.as_ref().map(|k| k.name.clone()),
            })
            .collect()
    }

    fn fail(&mut self, span: Span, msg: impl Into<String>) {
        if self.error.is_none() {
            let path = super::diag::join_path(&self.path());
            self.error = Some(Problem::at(span, &path, msg));
        }
    }

    /// Counts `n` more nodes; false (with the problem recorded) past the limit.
    fn count(&mut self, n: usize, sp: Span, what: &str) -> bool {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > limits::MAX_NODES {
            self.fail(
                sp,
                format!(
                    "the manifest is too large: more than {} values{what}",
                    limits::MAX_NODES
                ),
            );
            return false;
        }
        true
    }

    fn push_value(&mut self, node: Node, anchor: usize, size: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        let file_error = match self.stack.last_mut() {
            None => {
                self.docs.push(node);
                None
            }
            Some(Frame::Seq(items, ..)) => {
                items.push(node);
                None
            }
            Some(Frame::Map(m)) => match m.pending.take() {
                None => {
                    // This node is a key.
                    let name = match &node.kind {
                        Kind::Scalar(s, _) => s.clone(),
                        Kind::Null => "null".to_string(),
                        _ => {
                            return self.fail(
                                node.span,
                                "mapping keys must be plain strings, not lists or mappings",
                            );
                        }
                    };
                    let mut err = None;
                    if m.merged.remove(&name) {
                        // An explicit key overrides one brought in by `<<`: it replaces
                        // that entry when its value comes.
                    } else if name != "<<" {
                        if let Some(&i) = m.index.get(&name) {
                            err = Some((
                                node.span,
                                name.clone(),
                                format!(
                                    "duplicate key `{name}` (first defined at line {})",
                                    m.entries[i].0.span.line
                                ),
                            ));
                        }
                    }
                    m.pending = Some(Key {
                        name,
                        span: node.span,
                    });
                    err
                }
                Some(key) => {
                    if key.name == "<<" {
                        merge_keys(m, node);
                    } else if let Some(&i) = m.index.get(&key.name) {
                        m.entries[i] = (key, node);
                    } else {
                        m.index.insert(key.name.clone(), m.entries.len());
                        m.entries.push((key, node));
                    }
                    None
                }
            },
        };
        if let Some((sp, _name, msg)) = file_error {
            // The path names the duplicate key itself (it is pending now).
            self.fail(sp, msg);
        }
    }
}

/// YAML merge keys (`<<: *defaults`): keys of the merged mapping(s) that the mapping does
/// not set itself are added.
fn merge_keys(m: &mut MapFrame, node: Node) {
    let sources = match node.kind {
        Kind::Map(entries) => vec![entries],
        Kind::Seq(items) => items
            .into_iter()
            .filter_map(|n| match n.kind {
                Kind::Map(entries) => Some(entries),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    for src in sources {
        for (k, v) in src {
            if !m.index.contains_key(&k.name) {
                m.merged.insert(k.name.clone());
                m.index.insert(k.name.clone(), m.entries.len());
                m.entries.push((k, v));
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let sp = span(self.file, &mark);
        match ev {
            Event::Scalar(value, style, anchor, tag) => {
                if value.len() > limits::MAX_SCALAR_BYTES {
                    return self.fail(
                        sp,
                        format!(
                            "this value is {} bytes long; the limit is {} (put large content in a file)",
                            value.len(),
                            limits::MAX_SCALAR_BYTES
                        ),
                    );
                }
                if !self.count(1, sp, "") {
                    return;
                }
                let plain =
                    style == TScalarStyle::Plain && tag.as_ref().is_none_or(|t| t.suffix != "str");
                let kind = if plain && matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL")
                {
                    Kind::Null
                } else {
                    Kind::Scalar(value, plain)
                };
                self.push_value(Node { kind, span: sp }, anchor, 1);
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.stack.len() >= limits::MAX_DEPTH {
                    return self.fail(
                        sp,
                        format!(
                            "lists and mappings are nested more than {} deep",
                            limits::MAX_DEPTH
                        ),
                    );
                }
                if !self.count(1, sp, "") {
                    return;
                }
                let start = self.nodes;
                if matches!(ev, Event::SequenceStart(..)) {
                    self.stack.push(Frame::Seq(Vec::new(), sp, anchor, start));
                } else {
                    self.stack.push(Frame::Map(MapFrame {
                        entries: Vec::new(),
                        index: HashMap::new(),
                        merged: HashSet::new(),
                        pending: None,
                        span: sp,
                        anchor,
                        start,
                    }));
                }
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq(items, s, anchor, start)) = self.stack.pop() {
                    let size = self.nodes - start + 1;
                    self.push_value(
                        Node {
                            kind: Kind::Seq(items),
                            span: s,
                        },
                        anchor,
                        size,
                    );
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map(m)) = self.stack.pop() {
                    // A block mapping is where its first key is.
                    let s = m
                        .entries
                        .first()
                        .map_or(m.span, |(k, _)| k.span.min(m.span));
                    let size = self.nodes - m.start + 1;
                    self.push_value(
                        Node {
                            kind: Kind::Map(m.entries),
                            span: s,
                        },
                        m.anchor,
                        size,
                    );
                }
            }
            Event::Alias(id) => {
                self.aliases += 1;
                if self.aliases > limits::MAX_ALIASES {
                    return self.fail(
                        sp,
                        format!("more than {} aliases (`*name`)", limits::MAX_ALIASES),
                    );
                }
                let Some(size) = self.anchors.get(&id).map(|(_, size)| *size) else {
                    return self.fail(sp, "alias to an unknown anchor");
                };
                // Counted before the copy is made: an alias bomb stops here.
                if !self.count(size, sp, " once aliases are expanded") {
                    return;
                }
                if let Some(mut node) = self.anchors.get(&id).map(|(n, _)| n.clone()) {
                    relocate(&mut node, sp);
                    self.push_value(node, 0, size);
                }
            }
            Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd
            | Event::Nothing => {}
        }
    }
}

/// An aliased node is reported at the alias, not at the anchor (only its root).
fn relocate(node: &mut Node, sp: Span) {
    node.span = sp;
}

/// The position of the first byte that is not UTF-8, for files that are not text.
pub fn utf8_error_span(bytes: &[u8], valid_up_to: usize, file: FileId) -> Span {
    let before = &bytes[..valid_up_to];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let col = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    Span { file, line, col }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let n = parse("a: 1\nb:\n  c: x\n", 0).unwrap().unwrap();
        let b = n.get("b").unwrap();
        let c = b.get("c").unwrap();
        assert_eq!((c.span.line, c.span.col), (3, 6));
        assert_eq!(n.key_span("b").map(|s| (s.line, s.col)), Some((2, 1)));
    }

    #[test]
    fn quoted_and_plain_scalars_are_told_apart() {
        let n = parse("a: '3'\nb: 3\nc: ~\nd:\n", 0).unwrap().unwrap();
        assert_eq!(n.get("a").unwrap().kind, Kind::Scalar("3".into(), false));
        assert_eq!(n.get("b").unwrap().kind, Kind::Scalar("3".into(), true));
        assert_eq!(n.get("c").unwrap().kind, Kind::Null);
        assert_eq!(n.get("d").unwrap().kind, Kind::Null);
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let e = parse("a: 1\nb: 2\na: 3\n", 0).unwrap_err();
        assert!(e.message.contains("duplicate key `a`"), "{}", e.message);
        assert_eq!(e.span.line, 3);
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let n = parse("x: &d {a: 1, b: 2}\ny:\n  <<: *d\n  b: 3\n", 0)
            .unwrap()
            .unwrap();
        let y = n.get("y").unwrap();
        assert_eq!(y.get("a").unwrap().as_str(), Some("1"));
        assert_eq!(y.get("b").unwrap().as_str(), Some("3"));
    }

    #[test]
    fn empty_documents_are_none() {
        assert!(parse("", 0).unwrap().is_none());
        assert!(parse("# only a comment\n", 0).unwrap().is_none());
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("a: [1, 2\nb: 3\n", 0).unwrap_err();
        assert!(e.message.starts_with("invalid YAML"), "{}", e.message);
        assert!(e.span.line >= 1);
    }
}
