//! A YAML document as a tree of nodes that remember where they came from (file, line,
//! column), so every problem found after overlays are merged can still point at its source.
//! Parsing uses yaml-rust2's event API, which gives a position for every event.

use std::collections::HashMap;

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

/// Parses one YAML document. An empty document (only comments) is `Ok(None)`.
pub fn parse(text: &str, file: FileId) -> Result<Option<Node>, Problem> {
    let mut builder = Builder {
        file,
        stack: Vec::new(),
        anchors: HashMap::new(),
        docs: Vec::new(),
        error: None,
    };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, true) {
        let m = e.marker();
        return Err(Problem::at(
            span(file, m),
            "",
            format!("invalid YAML: {}", e.info()),
        ));
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

enum Frame {
    Seq(Vec<Node>, Span, usize),
    Map(Vec<(Key, Node)>, Span, usize, Option<Key>, Vec<String>),
}

struct Builder {
    file: FileId,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    docs: Vec<Node>,
    error: Option<Problem>,
}

impl Builder {
    /// The key path of the value being built (for messages found while parsing).
    fn path(&self) -> Vec<String> {
        self.stack
            .iter()
            .filter_map(|f| match f {
                Frame::Seq(items, ..) => Some(items.len().to_string()),
                Frame::Map(_, _, _, pending, _) => pending.as_ref().map(|k| k.name.clone()),
            })
            .collect()
    }

    fn push_value(&mut self, node: Node, anchor: usize) {
        let parent_path = self.path();
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(items, ..)) => items.push(node),
            Some(Frame::Map(entries, _, _, pending, merged)) => match pending.take() {
                None => {
                    // This node is a key.
                    let name = match &node.kind {
                        Kind::Scalar(s, _) => s.clone(),
                        Kind::Null => "null".to_string(),
                        _ => {
                            if self.error.is_none() {
                                self.error = Some(Problem::at(
                                    node.span,
                                    "",
                                    "mapping keys must be plain strings, not lists or mappings",
                                ));
                            }
                            String::new()
                        }
                    };
                    if let Some(i) = merged.iter().position(|m| *m == name) {
                        // An explicit key overrides one brought in by `<<`.
                        merged.remove(i);
                        entries.retain(|(k, _)| k.name != name);
                    } else if name != "<<" {
                        if let Some((first, _)) = entries.iter().find(|(k, _)| k.name == name) {
                            if self.error.is_none() {
                                let mut path = parent_path.clone();
                                path.push(name.clone());
                                self.error = Some(Problem::at(
                                    node.span,
                                    &super::diag::join_path(&path),
                                    format!(
                                        "duplicate key `{name}` (first defined at line {})",
                                        first.line()
                                    ),
                                ));
                            }
                        }
                    }
                    *pending = Some(Key {
                        name,
                        span: node.span,
                    });
                }
                Some(key) => {
                    if key.name == "<<" {
                        merged.extend(merge_keys(entries, node));
                    } else {
                        entries.push((key, node));
                    }
                }
            },
        }
    }
}

impl Key {
    fn line(&self) -> usize {
        self.span.line
    }
}

/// YAML merge keys (`<<: *defaults`): keys of the merged mapping(s) that the mapping does
/// not set itself are added.
fn merge_keys(entries: &mut Vec<(Key, Node)>, node: Node) -> Vec<String> {
    let mut added = Vec::new();
    let sources = match node.kind {
        Kind::Map(m) => vec![m],
        Kind::Seq(items) => items
            .into_iter()
            .filter_map(|n| match n.kind {
                Kind::Map(m) => Some(m),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    for src in sources {
        for (k, v) in src {
            if !entries.iter().any(|(e, _)| e.name == k.name) {
                added.push(k.name.clone());
                entries.push((k, v));
            }
        }
    }
    added
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let sp = span(self.file, &mark);
        match ev {
            Event::Scalar(value, style, anchor, tag) => {
                let plain =
                    style == TScalarStyle::Plain && tag.as_ref().is_none_or(|t| t.suffix != "str");
                let kind = if plain && matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL")
                {
                    Kind::Null
                } else {
                    Kind::Scalar(value, plain)
                };
                self.push_value(Node { kind, span: sp }, anchor);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq(Vec::new(), sp, anchor)),
            Event::MappingStart(anchor, _) => {
                self.stack
                    .push(Frame::Map(Vec::new(), sp, anchor, None, Vec::new()))
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq(items, s, anchor)) = self.stack.pop() {
                    self.push_value(
                        Node {
                            kind: Kind::Seq(items),
                            span: s,
                        },
                        anchor,
                    );
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map(entries, s, anchor, _, _)) = self.stack.pop() {
                    // A block mapping is where its first key is.
                    let s = entries.first().map_or(s, |(k, _)| k.span.min(s));
                    self.push_value(
                        Node {
                            kind: Kind::Map(entries),
                            span: s,
                        },
                        anchor,
                    );
                }
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(mut node) => {
                    relocate(&mut node, sp);
                    self.push_value(node, 0);
                }
                None => {
                    if self.error.is_none() {
                        self.error = Some(Problem::at(sp, "", "alias to an unknown anchor"));
                    }
                }
            },
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
