//! What a service mounts: volumes, binds and tmpfs, and the secrets and configs it is given.

use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// A mount: `"data:/data"`, `"data:/data:ro"`, `"./conf:/etc/x:ro"` (bind), or the long form.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    /// `volume` (default), `bind` or `tmpfs`.
    #[serde(default, rename = "type")]
    pub kind: Option<MountKind>,
    /// A named volume (from `volumes`) or, for bind, a host path.
    #[serde(default)]
    pub source: Option<String>,
    pub target: String,
    #[serde(default)]
    pub read_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Volume,
    Bind,
    Tmpfs,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MountLong {
    #[serde(default, rename = "type")]
    kind: Option<MountKind>,
    #[serde(default)]
    source: Option<String>,
    target: String,
    #[serde(default)]
    read_only: bool,
}

impl Mount {
    pub fn kind(&self) -> MountKind {
        self.kind.unwrap_or_else(|| match &self.source {
            Some(s) if s.starts_with('/') || s.starts_with('.') || s.starts_with('~') => {
                MountKind::Bind
            }
            _ => MountKind::Volume,
        })
    }
}

impl<'de> Deserialize<'de> for Mount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Mount;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mount: \"SOURCE:TARGET[:ro]\" or a mapping with target")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Mount, E> {
                let parts: Vec<&str> = v.split(':').collect();
                let (source, target, ro) = match parts.as_slice() {
                    [t] => (None, *t, false),
                    [s, t] => (Some(*s), *t, false),
                    [s, t, "ro"] => (Some(*s), *t, true),
                    [s, t, "rw"] => (Some(*s), *t, false),
                    [_, _, o] => {
                        return Err(E::custom(format!(
                            "`{o}` in `{v}` is not an access mode; use ro or rw"
                        )))
                    }
                    _ => return Err(E::custom(format!("`{v}` is not SOURCE:TARGET[:ro]"))),
                };
                if !target.starts_with('/') {
                    return Err(E::custom(format!(
                        "the target `{target}` in `{v}` must be an absolute path"
                    )));
                }
                Ok(Mount {
                    kind: None,
                    source: source.map(str::to_string),
                    target: target.to_string(),
                    read_only: ro,
                })
            }
            fn visit_map<A: de::MapAccess<'de>>(self, a: A) -> Result<Mount, A::Error> {
                let l = MountLong::deserialize(de::value::MapAccessDeserializer::new(a))?;
                Ok(Mount {
                    kind: l.kind,
                    source: l.source,
                    target: l.target,
                    read_only: l.read_only,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// A secret or config given to a service: its name, or `{source, target, mode}`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct FileRef {
    pub source: String,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub mode: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRefLong {
    source: String,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    mode: Option<u32>,
}

impl<'de> Deserialize<'de> for FileRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FileRef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a name, or a mapping with source")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FileRef, E> {
                Ok(FileRef {
                    source: v.to_string(),
                    target: None,
                    mode: None,
                })
            }
            fn visit_map<A: de::MapAccess<'de>>(self, a: A) -> Result<FileRef, A::Error> {
                let l = FileRefLong::deserialize(de::value::MapAccessDeserializer::new(a))?;
                Ok(FileRef {
                    source: l.source,
                    target: l.target,
                    mode: l.mode,
                })
            }
        }
        d.deserialize_any(V)
    }
}
