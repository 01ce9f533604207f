//! A serde `Deserializer` over the spanned YAML tree.
//!
//! Two things set it apart from deserializing a plain value:
//! - every error carries the key path and the position of the node it is about;
//! - unknown keys in structs do not stop deserialization: each is recorded (with a
//!   "did you mean") in a shared list and skipped, so one run reports all of them.

use std::cell::RefCell;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess, Unexpected,
    VariantAccess, Visitor,
};

use super::diag::{join_path, suggest, Problem};
use super::yaml::{Kind, Node, Span};

/// Problems recorded without stopping (unknown keys).
#[derive(Default)]
pub struct Sink {
    pub problems: RefCell<Vec<Problem>>,
}

#[derive(Debug, Clone)]
pub struct Error {
    pub message: String,
    pub located: Option<(String, Span)>,
}

impl Error {
    fn locate(mut self, path: &[String], span: Span) -> Self {
        if self.located.is_none() {
            self.located = Some((join_path(path), span));
        }
        self
    }

    pub fn into_problem(self, fallback: Span) -> Problem {
        let (path, span) = self.located.unwrap_or((String::new(), fallback));
        Problem::at(span, &path, self.message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error {
            message: msg.to_string(),
            located: None,
        }
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::custom(format!(
            "expected {}, found {}",
            expected(exp),
            unexpected(&unexp)
        ))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::custom(format!("{} is not {}", unexpected(&unexp), expected(exp)))
    }

    fn unknown_variant(variant: &str, known: &'static [&'static str]) -> Self {
        let hint = suggest(variant, known.iter().copied())
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        Self::custom(format!(
            "`{variant}` is not one of: {}{hint}",
            known.join(", ")
        ))
    }

    fn missing_field(field: &'static str) -> Self {
        Self::custom(format!("missing required key `{field}`"))
    }
}

fn expected(exp: &dyn de::Expected) -> String {
    let s = exp.to_string();
    match s.as_str() {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number (0 or more)".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a sequence" => "a list".into(),
        "a map" => "a mapping".into(),
        "a string" | "a borrowed string" => "a string".into(),
        _ if s.starts_with("struct ") => "a mapping".into(),
        _ if s.starts_with("a sequence") => "a list".into(),
        _ => s,
    }
}

fn unexpected(u: &Unexpected<'_>) -> String {
    match u {
        Unexpected::Bool(b) => format!("`{b}`"),
        Unexpected::Unsigned(n) => format!("the number {n}"),
        Unexpected::Signed(n) => format!("the number {n}"),
        Unexpected::Float(n) => format!("the number {n}"),
        Unexpected::Str(s) => format!("the string `{s}`"),
        Unexpected::Unit => "nothing (null)".into(),
        Unexpected::Seq => "a list".into(),
        Unexpected::Map => "a mapping".into(),
        other => other.to_string(),
    }
}

/// Deserializes `T` from `node`, recording unknown keys in `sink`.
pub fn from_node<'de, T: de::Deserialize<'de>>(
    node: &Node,
    path: Vec<String>,
    sink: &Sink,
) -> Result<T, Error> {
    T::deserialize(NodeDe { node, path, sink })
}

pub struct NodeDe<'a> {
    pub node: &'a Node,
    pub path: Vec<String>,
    pub sink: &'a Sink,
}

/// What a plain scalar means under the YAML 1.2 core schema.
enum Plain {
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str,
}

fn resolve_plain(s: &str) -> Plain {
    match s {
        "true" | "True" | "TRUE" => return Plain::Bool(true),
        "false" | "False" | "FALSE" => return Plain::Bool(false),
        _ => {}
    }
    if let Ok(u) = s.parse::<u64>() {
        return Plain::UInt(u);
    }
    if let Ok(i) = s.parse::<i64>() {
        return Plain::Int(i);
    }
    let looks_numeric = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || c == '-' || c == '+' || c == '.');
    if looks_numeric && !s.ends_with('.') {
        if let Ok(f) = s.parse::<f64>() {
            if f.is_finite() {
                return Plain::Float(f);
            }
        }
    }
    Plain::Str
}

impl<'a> NodeDe<'a> {
    fn child(&self, node: &'a Node, seg: String) -> NodeDe<'a> {
        let mut path = self.path.clone();
        path.push(seg);
        NodeDe {
            node,
            path,
            sink: self.sink,
        }
    }

    fn wrap<T>(&self, r: Result<T, Error>) -> Result<T, Error> {
        r.map_err(|e| e.locate(&self.path, self.node.span))
    }

    fn scalar(&self) -> Option<(&'a str, bool)> {
        match &self.node.kind {
            Kind::Scalar(s, plain) => Some((s.as_str(), *plain)),
            _ => None,
        }
    }

    fn unexpected(&self) -> Unexpected<'a> {
        match &self.node.kind {
            Kind::Null => Unexpected::Unit,
            Kind::Seq(_) => Unexpected::Seq,
            Kind::Map(_) => Unexpected::Map,
            Kind::Scalar(s, true) => match resolve_plain(s) {
                Plain::Bool(b) => Unexpected::Bool(b),
                Plain::Int(i) => Unexpected::Signed(i),
                Plain::UInt(u) => Unexpected::Unsigned(u),
                Plain::Float(f) => Unexpected::Float(f),
                Plain::Str => Unexpected::Str(s),
            },
            Kind::Scalar(s, false) => Unexpected::Str(s),
        }
    }

    fn type_error<T>(&self, exp: &dyn de::Expected) -> Result<T, Error> {
        Err(de::Error::invalid_type(self.unexpected(), exp))
    }
}

macro_rules! deserialize_number {
    ($method:ident, $visit:ident, $ty:ty) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            let r = match self.scalar() {
                Some((s, true)) => match s.parse::<$ty>() {
                    Ok(n) => visitor.$visit(n),
                    Err(_) => self.type_error(&visitor),
                },
                _ => self.type_error(&visitor),
            };
            self.wrap(r)
        }
    };
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let r = match &self.node.kind {
            Kind::Null => visitor.visit_unit(),
            Kind::Scalar(s, false) => visitor.visit_str(s),
            Kind::Scalar(s, true) => match resolve_plain(s) {
                Plain::Bool(b) => visitor.visit_bool(b),
                Plain::Int(i) => visitor.visit_i64(i),
                Plain::UInt(u) => visitor.visit_u64(u),
                Plain::Float(f) => visitor.visit_f64(f),
                Plain::Str => visitor.visit_str(s),
            },
            Kind::Seq(items) => visitor.visit_seq(Seq {
                de: &self,
                items,
                index: 0,
            }),
            Kind::Map(entries) => visitor.visit_map(Map {
                de: &self,
                entries,
                index: 0,
                fields: None,
                value: None,
            }),
        };
        self.wrap(r)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let r = match self.scalar() {
            Some((s, true)) => match resolve_plain(s) {
                Plain::Bool(b) => visitor.visit_bool(b),
                _ => self.type_error(&visitor),
            },
            _ => self.type_error(&visitor),
        };
        self.wrap(r)
    }

    deserialize_number!(deserialize_i8, visit_i8, i8);
    deserialize_number!(deserialize_i16, visit_i16, i16);
    deserialize_number!(deserialize_i32, visit_i32, i32);
    deserialize_number!(deserialize_i64, visit_i64, i64);
    deserialize_number!(deserialize_u8, visit_u8, u8);
    deserialize_number!(deserialize_u16, visit_u16, u16);
    deserialize_number!(deserialize_u32, visit_u32, u32);
    deserialize_number!(deserialize_u64, visit_u64, u64);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let r = match self.scalar() {
            Some((s, true)) => match resolve_plain(s) {
                Plain::Float(f) => visitor.visit_f64(f),
                Plain::Int(i) => visitor.visit_f64(i as f64),
                Plain::UInt(u) => visitor.visit_f64(u as f64),
                _ => self.type_error(&visitor),
            },
            _ => self.type_error(&visitor),
        };
        self.wrap(r)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    /// Any scalar reads as a string (`tag: 1.0` is the tag "1.0"), as compose does.
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let r = match self.scalar() {
            Some((s, _)) => visitor.visit_str(s),
            None => self.type_error(&visitor),
        };
        self.wrap(r)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let r = match &self.node.kind {
            Kind::Null => visitor.visit_none(),
            _ => {
                let node = self.node;
                let path = self.path.clone();
                visitor.visit_some(NodeDe {
                    node,
                    path,
                    sink: self.sink,
                })
            }
        };
        self.wrap(r)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let r = match &self.node.kind {
            Kind::Null => visitor.visit_unit(),
            _ => self.type_error(&visitor),
        };
        self.wrap(r)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let r = match &self.node.kind {
            Kind::Seq(items) => visitor.visit_seq(Seq {
                de: &self,
                items,
                index: 0,
            }),
            _ => self.type_error(&visitor),
        };
        self.wrap(r)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let r = match &self.node.kind {
            Kind::Map(entries) => visitor.visit_map(Map {
                de: &self,
                entries,
                index: 0,
                fields: None,
                value: None,
            }),
            _ => self.type_error(&visitor),
        };
        self.wrap(r)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let r = match &self.node.kind {
            Kind::Map(entries) => visitor.visit_map(Map {
                de: &self,
                entries,
                index: 0,
                fields: Some(fields),
                value: None,
            }),
            _ => self.type_error(&visitor),
        };
        self.wrap(r)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let r = match &self.node.kind {
            Kind::Scalar(s, _) => visitor.visit_enum(s.as_str().into_deserializer()),
            Kind::Map(entries) if entries.len() == 1 => visitor.visit_enum(Enum { de: &self }),
            _ => self.type_error(&visitor),
        };
        self.wrap(r)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

struct Seq<'a, 'b> {
    de: &'b NodeDe<'a>,
    items: &'a [Node],
    index: usize,
}

impl<'de> SeqAccess<'de> for Seq<'_, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some(item) = self.items.get(self.index) else {
            return Ok(None);
        };
        let child = self.de.child(item, self.index.to_string());
        self.index += 1;
        let span = item.span;
        let path = child.path.clone();
        seed.deserialize(child)
            .map(Some)
            .map_err(|e| e.locate(&path, span))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len() - self.index)
    }
}

struct Map<'a, 'b> {
    de: &'b NodeDe<'a>,
    entries: &'a [(super::yaml::Key, Node)],
    index: usize,
    /// For structs: the known fields. Unknown keys are recorded in the sink and skipped.
    fields: Option<&'static [&'static str]>,
    value: Option<(&'a Node, String)>,
}

impl<'de> MapAccess<'de> for Map<'_, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        while let Some((key, value)) = self.entries.get(self.index) {
            self.index += 1;
            if let Some(fields) = self.fields {
                if !fields.contains(&key.name.as_str()) {
                    let mut path = self.de.path.clone();
                    path.push(key.name.clone());
                    let hint = match suggest(&key.name, fields.iter().copied()) {
                        Some(s) => format!("; did you mean `{s}`?"),
                        None => format!("; expected one of: {}", fields.join(", ")),
                    };
                    self.de.sink.problems.borrow_mut().push(Problem::at(
                        key.span,
                        &join_path(&path),
                        format!("unknown key `{}`{hint}", key.name),
                    ));
                    continue;
                }
            }
            self.value = Some((value, key.name.clone()));
            let mut path = self.de.path.clone();
            path.push(key.name.clone());
            return seed
                .deserialize(de::value::StrDeserializer::<Error>::new(&key.name))
                .map(Some)
                .map_err(|e| e.locate(&path, key.span));
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let (node, name) = self
            .value
            .take()
            .ok_or_else(|| <Error as de::Error>::custom("value without a key"))?;
        let child = self.de.child(node, name);
        let path = child.path.clone();
        seed.deserialize(child)
            .map_err(|e| e.locate(&path, node.span))
    }
}

struct Enum<'a, 'b> {
    de: &'b NodeDe<'a>,
}

impl<'de, 'a, 'b> EnumAccess<'de> for Enum<'a, 'b> {
    type Error = Error;
    type Variant = NodeDe<'a>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, NodeDe<'a>), Error> {
        let Kind::Map(entries) = &self.de.node.kind else {
            return Err(de::Error::custom("expected a mapping"));
        };
        let (key, value) = &entries[0];
        let v = seed.deserialize(de::value::StrDeserializer::<Error>::new(&key.name))?;
        Ok((v, self.de.child(value, key.name.clone())))
    }
}

impl<'de> VariantAccess<'de> for NodeDe<'_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_tuple(self, len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_struct(self, "", fields, visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::yaml::parse;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Svc {
        image: String,
        #[serde(default)]
        replicas: Option<u64>,
        #[serde(default)]
        ports: Vec<u16>,
    }

    #[test]
    fn unknown_keys_are_all_recorded_and_skipped() {
        let n = parse("image: web\nimag: x\nreplica: 2\n", 0)
            .unwrap()
            .unwrap();
        let sink = Sink::default();
        let s: Svc = from_node(&n, vec!["services".into(), "web".into()], &sink).unwrap();
        assert_eq!(s.image, "web");
        let p = sink.problems.borrow();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].path, "services.web.imag");
        assert!(p[0].message.contains("did you mean `image`"));
        assert_eq!((p[1].span.line, p[1].span.col), (3, 1));
    }

    #[test]
    fn type_errors_point_at_the_value() {
        let n = parse("image: web\nports: [80, eighty]\n", 0)
            .unwrap()
            .unwrap();
        let sink = Sink::default();
        let e = from_node::<Svc>(&n, vec![], &sink).unwrap_err();
        let p = e.into_problem(n.span);
        assert_eq!(p.path, "ports[1]");
        assert_eq!((p.span.line, p.span.col), (2, 13));
        assert!(
            p.message.contains("expected a whole number"),
            "{}",
            p.message
        );
    }

    #[test]
    fn missing_keys_point_at_the_mapping() {
        let n = parse("replicas: 2\n", 0).unwrap().unwrap();
        let sink = Sink::default();
        let e = from_node::<Svc>(&n, vec!["services".into(), "web".into()], &sink).unwrap_err();
        let p = e.into_problem(n.span);
        assert_eq!(p.path, "services.web");
        assert!(p.message.contains("missing required key `image`"));
    }

    #[test]
    fn quoted_numbers_are_strings() {
        let n = parse("image: web\nreplicas: '2'\n", 0).unwrap().unwrap();
        let sink = Sink::default();
        let e = from_node::<Svc>(&n, vec![], &sink).unwrap_err();
        assert!(e.message.contains("found the string `2`"), "{}", e.message);
    }
}
