//! Scalar types with their own syntax: durations, sizes, CPU amounts, strings or lists,
//! scalars read as text, environment variables as a mapping or a list.

use std::collections::BTreeMap;
use std::fmt;

use schemars::gen::SchemaGenerator;
use schemars::schema::Schema;
use schemars::JsonSchema;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

fn schema_from(v: serde_json::Value) -> Schema {
    serde_json::from_value(v).expect("hand-written schema fragments are valid")
}

/// A duration such as `500ms`, `10s`, `5m`, `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub fn secs(s: u64) -> Self {
        Duration(std::time::Duration::from_secs(s))
    }

    /// The form compose files use: `1m30s`, `500ms`, `0s`.
    pub fn compose(&self) -> String {
        let d = self.0;
        if d.is_zero() {
            return "0s".into();
        }
        let ms = d.as_millis();
        if ms % 1000 != 0 {
            return format!("{ms}ms");
        }
        let mut s = ms / 1000;
        let mut out = String::new();
        if s >= 3600 {
            out.push_str(&format!("{}h", s / 3600));
            s %= 3600;
        }
        if s >= 60 {
            out.push_str(&format!("{}m", s / 60));
            s %= 60;
        }
        if s > 0 {
            out.push_str(&format!("{s}s"));
        }
        out
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim().chars().all(|c| c.is_ascii_digit()) && !s.trim().is_empty() {
            return Err(de::Error::custom(format!(
                "`{s}` has no unit; write e.g. {s}s or {s}ms"
            )));
        }
        humantime::parse_duration(s.trim())
            .map(Duration)
            .map_err(|_| {
                de::Error::custom(format!(
                    "`{s}` is not a duration; use e.g. 500ms, 10s, 5m, 1h30m"
                ))
            })
    }
}

impl Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.compose())
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> String {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schema_from(serde_json::json!({
            "type": "string",
            "description": "A duration: 500ms, 10s, 5m, 1h30m",
            "pattern": "^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h|d) ?)+$"
        }))
    }
}

/// A size in bytes, written `256M`, `1G`, `512MiB` or a plain number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl Size {
    pub fn parse(s: &str) -> Option<u64> {
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: f64 = num.parse().ok()?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            "t" | "tb" | "tib" => 1 << 40,
            _ => return None,
        };
        let v = n * mult as f64;
        (v.is_finite() && v >= 0.0).then_some(v as u64)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as 256M or 1G")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                Size::parse(v).map(Size).ok_or_else(|| {
                    E::custom(format!(
                        "`{v}` is not a size; use bytes or a unit: 512K, 256M, 1G"
                    ))
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Size {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl JsonSchema for Size {
    fn schema_name() -> String {
        "Size".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schema_from(serde_json::json!({
            "description": "A size: bytes, or with a unit (K, M, G, T; KiB, MiB, ...)",
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)? ?([kKmMgGtT]([iI]?[bB])?|[bB])?$"}
            ]
        }))
    }
}

/// An amount of CPU, in cores: `0.5`, `2`, or `"1.5"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cpus(pub f64);

impl<'de> Deserialize<'de> for Cpus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Cpus;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number of CPUs such as 0.5 or 2")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Cpus, E> {
                if v > 0.0 && v <= 1024.0 {
                    Ok(Cpus(v))
                } else {
                    Err(E::custom(format!(
                        "{v} is not a CPU amount; it must be more than 0 (e.g. 0.25, 1, 2)"
                    )))
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Cpus, E> {
                self.visit_f64(v as f64)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Cpus, E> {
                self.visit_f64(v as f64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Cpus, E> {
                match v.trim().parse::<f64>() {
                    Ok(f) => self.visit_f64(f),
                    Err(_) => Err(E::custom(format!(
                        "`{v}` is not a CPU amount; write a number of cores such as 0.5 or 2"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Cpus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

impl JsonSchema for Cpus {
    fn schema_name() -> String {
        "Cpus".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schema_from(serde_json::json!({
            "description": "CPU cores, e.g. 0.5",
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$"}
            ]
        }))
    }
}

/// A string, or a list of strings (`command: ["a", "b"]` or `command: a b`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum StringOrList {
    String(String),
    List(Vec<String>),
}

impl StringOrList {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            StringOrList::String(s) => vec![s.clone()],
            StringOrList::List(l) => l.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for StringOrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringOrList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StringOrList, E> {
                Ok(StringOrList::String(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StringOrList, E> {
                Ok(StringOrList::String(v.to_string()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<StringOrList, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = a.next_element::<ScalarString>()? {
                    out.push(s.0);
                }
                Ok(StringOrList::List(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for StringOrList {
    fn schema_name() -> String {
        "StringOrList".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schema_from(serde_json::json!({
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
        }))
    }
}

/// Any scalar read as its text (`1.0`, `true`, `8080` stay as written).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ScalarString(pub String);

impl<'de> Deserialize<'de> for ScalarString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ScalarString;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<ScalarString, E> {
                Ok(ScalarString(String::new()))
            }
        }
        // deserialize_str: every scalar reads as its text.
        d.deserialize_str(V)
    }
}

impl JsonSchema for ScalarString {
    fn schema_name() -> String {
        "ScalarString".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schema_from(serde_json::json!({"type": ["string", "number", "boolean", "null"]}))
    }
}

/// Environment variables: a mapping (`KEY: value`) or a list (`- KEY=value`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct EnvMap(pub BTreeMap<String, String>);

impl<'de> Deserialize<'de> for EnvMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EnvMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of NAME: value, or a list of NAME=value")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<EnvMap, A::Error> {
                let mut m = BTreeMap::new();
                while let Some((k, v)) = a.next_entry::<String, ScalarString>()? {
                    m.insert(k, v.0);
                }
                Ok(EnvMap(m))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<EnvMap, A::Error> {
                let mut m = BTreeMap::new();
                while let Some(s) = a.next_element::<String>()? {
                    match s.split_once('=') {
                        Some((k, v)) if !k.is_empty() => {
                            m.insert(k.to_string(), v.to_string());
                        }
                        _ => return Err(de::Error::custom(format!("`{s}` is not NAME=value"))),
                    }
                }
                Ok(EnvMap(m))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for EnvMap {
    fn schema_name() -> String {
        "EnvMap".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schema_from(serde_json::json!({
            "anyOf": [
                {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean", "null"]}},
                {"type": "array", "items": {"type": "string", "pattern": "^[^=]+=.*$"}}
            ]
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(Size::parse("256M"), Some(256 << 20));
        assert_eq!(Size::parse("1G"), Some(1 << 30));
        assert_eq!(Size::parse("512KiB"), Some(512 << 10));
        assert_eq!(Size::parse("100"), Some(100));
        assert_eq!(Size::parse("12 parsecs"), None);
    }

    #[test]
    fn durations_print_like_compose() {
        assert_eq!(Duration::secs(90).compose(), "1m30s");
        assert_eq!(
            Duration(std::time::Duration::from_millis(500)).compose(),
            "500ms"
        );
        assert_eq!(Duration::secs(0).compose(), "0s");
        assert_eq!(Duration::secs(3600).compose(), "1h");
    }
}
