//! The manifest model: what `environments/NAME.yaml` may say. Every struct refuses unknown
//! keys; the JSON Schema printed by `twip schema` is derived from these same types.

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

// ---------------------------------------------------------------------------------------
// Scalar types with their own syntax
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// The manifest
// ---------------------------------------------------------------------------------------

/// An environment manifest: `environments/NAME.yaml`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Another environment (or `_partial`) whose settings this one starts from; deep-merged.
    #[serde(default)]
    pub extends: Option<String>,
    /// What this environment is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Project name: prefix of image names (default `twip`).
    #[serde(default)]
    pub project: Option<String>,
    /// Stack name on the swarm (default: the environment's name).
    #[serde(default)]
    pub stack: Option<String>,
    /// How to reach the Docker engine (default: the local socket).
    #[serde(default)]
    pub engine: Option<Engine>,
    /// The registry images are pushed to and pulled from.
    #[serde(default)]
    pub registry: Option<Registry>,
    /// The hosts of a multi-node environment.
    #[serde(default)]
    pub nodes: Vec<NodeSpec>,
    /// Images twip builds, by name.
    #[serde(default)]
    pub images: BTreeMap<String, Image>,
    /// The services of the stack, by name.
    pub services: BTreeMap<String, Service>,
    /// Overlay networks (a network `default` is always there).
    #[serde(default)]
    pub networks: BTreeMap<String, Option<Network>>,
    /// Named volumes.
    #[serde(default)]
    pub volumes: BTreeMap<String, Option<Volume>>,
    /// Docker secrets, named by a hash of their content when deployed.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretDef>,
    /// Docker configs, named by a hash of their content when deployed.
    #[serde(default)]
    pub configs: BTreeMap<String, ConfigDef>,
    /// HAProxy in front of named services.
    #[serde(default)]
    pub proxy: Option<Proxy>,
    /// Prometheus scraping the proxy and the services.
    #[serde(default)]
    pub monitoring: Option<Monitoring>,
    /// Directories outside the project that files named here (configs, secrets, env files,
    /// build contexts, Dockerfiles) may come from. Every such path is resolved, symlinks
    /// included, and refused when it leaves the project directory, unless it lies in one of
    /// these (absolute) directories. `/proc`, `/sys` and `/dev` are never allowed.
    #[serde(default)]
    pub allow_paths_outside_project: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Engine {
    /// `unix:///var/run/docker.sock`, `tcp://host:2376` (TLS) or `ssh://user@host`.
    #[serde(default)]
    pub host: Option<String>,
    /// Client certificate, key and CA for `tcp://` (default: `DOCKER_CERT_PATH`).
    #[serde(default)]
    pub tls: Option<Tls>,
    /// Allow plain (unencrypted) TCP to a non-loopback address. For labs only.
    #[serde(default)]
    pub allow_plain_tcp: bool,
    /// Where `twip bootstrap` installs Docker Engine from on fresh hosts: `distribution`
    /// (Debian's or Ubuntu's `docker.io`, the default) or `docker` (Docker's apt repository,
    /// `docker-ce`).
    #[serde(default)]
    pub install: Option<Install>,
}

/// Where Docker Engine comes from on a bootstrapped host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Install {
    /// The distribution's own packages (`docker.io`).
    #[default]
    Distribution,
    /// Docker's apt repository (`docker-ce`, `docker-ce-cli`, `containerd.io`).
    Docker,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    #[serde(default = "yes")]
    pub verify: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// `host[:port]`, e.g. `localhost:5000` or `registry.example.com`.
    pub url: String,
    /// Path under the registry (default: the project name).
    #[serde(default)]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Manager,
    Worker,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// The node's hostname in the swarm.
    pub name: String,
    /// Address other nodes reach it at (also the advertise address).
    pub address: String,
    pub role: Role,
    /// Its engine endpoint (default: over SSH to `address`).
    #[serde(default)]
    pub engine: Option<String>,
    /// How to reach it over SSH (bootstrap, ssh:// engines).
    #[serde(default)]
    pub ssh: Option<Ssh>,
    /// Node labels for placement (`node.labels.KEY == VALUE`).
    #[serde(default)]
    pub labels: BTreeMap<String, ScalarString>,
    /// Its platform, e.g. linux/arm64.
    #[serde(default)]
    pub platform: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ssh {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub identity_file: Option<String>,
    /// Refuse unknown host keys (default true).
    #[serde(default = "yes")]
    pub strict_host_key_checking: bool,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// Build it from a context with a Dockerfile.
    #[serde(default)]
    pub build: Option<Build>,
    /// Or use an existing image from a registry (`nginx:1.25`).
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    /// Repository name (default `PROJECT/NAME`, under the registry when there is one).
    #[serde(default)]
    pub repository: Option<String>,
    /// Tags; the first is the one deployed (default `latest`).
    #[serde(default)]
    pub tags: Vec<ScalarString>,
    /// Platforms to build, e.g. [linux/amd64, linux/arm64] (default: the engine's).
    #[serde(default)]
    pub platforms: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Build {
    /// The build context, relative to the project directory.
    pub context: String,
    /// The Dockerfile, relative to the context (default `Dockerfile`).
    #[serde(default)]
    pub dockerfile: Option<String>,
    #[serde(default)]
    pub args: BTreeMap<String, ScalarString>,
    /// Target stage.
    #[serde(default)]
    pub target: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Replicated,
    Global,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EndpointMode {
    Dnsrr,
    Vip,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// An `images` entry by name, or a full reference (`nginx:1.25`).
    pub image: String,
    #[serde(default)]
    pub mode: Mode,
    /// Number of tasks (replicated mode; default 1).
    #[serde(default)]
    pub replicas: Option<u64>,
    #[serde(default)]
    pub command: Option<StringOrList>,
    #[serde(default)]
    pub entrypoint: Option<StringOrList>,
    #[serde(default)]
    pub environment: EnvMap,
    /// Files of NAME=value lines, relative to the project directory.
    #[serde(default)]
    pub env_file: Option<StringOrList>,
    #[serde(default)]
    pub ports: Vec<Port>,
    #[serde(default)]
    pub volumes: Vec<Mount>,
    /// Networks (default: the stack's `default` network).
    #[serde(default)]
    pub networks: Vec<String>,
    #[serde(default)]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default)]
    pub resources: Option<Resources>,
    #[serde(default)]
    pub placement: Option<Placement>,
    /// Rolling update settings (default: start-first, one at a time, rollback on failure).
    #[serde(default)]
    pub update: Option<UpdateConfig>,
    #[serde(default)]
    pub rollback: Option<UpdateConfig>,
    #[serde(default)]
    pub restart: Option<RestartPolicy>,
    /// Service labels.
    #[serde(default)]
    pub labels: BTreeMap<String, ScalarString>,
    #[serde(default)]
    pub secrets: Vec<FileRef>,
    #[serde(default)]
    pub configs: Vec<FileRef>,
    /// Time between SIGTERM and SIGKILL (covers the app's lame-duck time; default 10s).
    #[serde(default)]
    pub stop_grace_period: Option<Duration>,
    /// `dnsrr` (default: works without IPVS and behind the proxy) or `vip`.
    #[serde(default)]
    pub endpoint_mode: Option<EndpointMode>,
    /// May use Swarm placeholders: `web-{{.Task.Slot}}`.
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub autoscale: Option<Autoscale>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PublishMode {
    Host,
    Ingress,
}

/// A published port: `"8080:80"`, `"80"`, `"53:53/udp"`, or the long form.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Port {
    /// The port inside the container.
    pub target: u16,
    /// The port on the host (host mode) or the swarm (ingress mode).
    #[serde(default)]
    pub published: Option<u16>,
    #[serde(default)]
    pub protocol: Protocol,
    /// `host` (default: works without IPVS) or `ingress` (the routing mesh).
    #[serde(default)]
    pub mode: Option<PublishMode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PortLong {
    target: u16,
    #[serde(default)]
    published: Option<u16>,
    #[serde(default)]
    protocol: Protocol,
    #[serde(default)]
    mode: Option<PublishMode>,
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Port;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a port: \"PUBLISHED:TARGET[/udp]\", a number, or a mapping with target",
                )
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Port, E> {
                let target = port_number(&v.to_string()).map_err(E::custom)?;
                Ok(Port {
                    target,
                    published: None,
                    protocol: Protocol::Tcp,
                    mode: None,
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Port, E> {
                parse_port(v).map_err(E::custom)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, a: A) -> Result<Port, A::Error> {
                let l = PortLong::deserialize(de::value::MapAccessDeserializer::new(a))?;
                if l.target == 0 {
                    return Err(de::Error::custom("port 0 is not a valid target port"));
                }
                Ok(Port {
                    target: l.target,
                    published: l.published,
                    protocol: l.protocol,
                    mode: l.mode,
                })
            }
        }
        d.deserialize_any(V)
    }
}

fn port_number(s: &str) -> Result<u16, String> {
    match s.parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
        Ok(n) => Err(format!("{n} is not a port number (1-65535)")),
        Err(_) => Err(format!("`{s}` is not a port number")),
    }
}

fn parse_port(v: &str) -> Result<Port, String> {
    let (spec, protocol) = match v.split_once('/') {
        Some((s, "tcp")) => (s, Protocol::Tcp),
        Some((s, "udp")) => (s, Protocol::Udp),
        Some((_, p)) => return Err(format!("`{p}` in `{v}` is not a protocol; use tcp or udp")),
        None => (v, Protocol::Tcp),
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (published, target) = match parts.as_slice() {
        [t] => (None, port_number(t)?),
        [p, t] => (Some(port_number(p)?), port_number(t)?),
        [_, _, _] => {
            return Err(format!(
                "`{v}`: binding to a host address is not supported by swarm; use PUBLISHED:TARGET"
            ))
        }
        _ => return Err(format!("`{v}` is not PUBLISHED:TARGET")),
    };
    Ok(Port {
        target,
        published,
        protocol,
        mode: None,
    })
}

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

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    /// `["CMD", "curl", "-f", "http://localhost/healthz"]`, or a string run by the shell.
    #[serde(default)]
    pub test: Option<StringOrList>,
    #[serde(default)]
    pub interval: Option<Duration>,
    #[serde(default)]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub retries: Option<u64>,
    #[serde(default)]
    pub start_period: Option<Duration>,
    #[serde(default)]
    pub disable: bool,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default)]
    pub limits: Option<ResourceSpec>,
    #[serde(default)]
    pub reservations: Option<ResourceSpec>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    #[serde(default)]
    pub cpus: Option<Cpus>,
    #[serde(default)]
    pub memory: Option<Size>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// e.g. `node.role == worker`, `node.labels.tier == front`.
    #[serde(default)]
    pub constraints: Vec<String>,
    /// Spread over the values of these node labels (e.g. `node.labels.zone`).
    #[serde(default)]
    pub spread: Vec<String>,
    #[serde(default)]
    pub max_replicas_per_node: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Order {
    StartFirst,
    StopFirst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FailureAction {
    Rollback,
    Pause,
    Continue,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConfig {
    /// Tasks updated at once (0: all at once).
    #[serde(default)]
    pub parallelism: Option<u64>,
    #[serde(default)]
    pub delay: Option<Duration>,
    #[serde(default)]
    pub order: Option<Order>,
    #[serde(default)]
    pub failure_action: Option<FailureAction>,
    /// How long each new task is watched for failure.
    #[serde(default)]
    pub monitor: Option<Duration>,
    #[serde(default)]
    pub max_failure_ratio: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RestartCondition {
    None,
    OnFailure,
    Any,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartPolicy {
    #[serde(default)]
    pub condition: Option<RestartCondition>,
    #[serde(default)]
    pub delay: Option<Duration>,
    #[serde(default)]
    pub max_attempts: Option<u64>,
    #[serde(default)]
    pub window: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// CPU use of the service's tasks, in percent of their reservation (or of one core).
    Cpu,
    /// Requests per second per task, from HAProxy's stats.
    Rps,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Autoscale {
    pub metric: Metric,
    /// Target per task: CPU percent, or requests per second.
    pub target: f64,
    pub min: u64,
    pub max: u64,
    /// Largest change in one decision (default: no limit).
    #[serde(default)]
    pub max_step: Option<u64>,
    /// Relative band around the target where nothing changes (default 0.1).
    #[serde(default)]
    pub tolerance: Option<f64>,
    /// Scale-downs use the highest recommendation of this window (default 300s).
    #[serde(default)]
    pub scale_down_window: Option<Duration>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Default `overlay`.
    #[serde(default)]
    pub driver: Option<String>,
    #[serde(default)]
    pub attachable: Option<bool>,
    #[serde(default)]
    pub internal: bool,
    /// Made outside twip: used, never created or removed.
    #[serde(default)]
    pub external: bool,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    #[serde(default)]
    pub driver: Option<String>,
    #[serde(default)]
    pub external: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, ScalarString>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretDef {
    /// Read from this file (relative to the project directory).
    #[serde(default)]
    pub file: Option<String>,
    /// Read from this environment variable.
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub external: bool,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigDef {
    #[serde(default)]
    pub file: Option<String>,
    /// Inline content.
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub external: bool,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Proxy {
    /// An `images` entry or a full reference (default: `proxy`).
    #[serde(default)]
    pub image: Option<String>,
    /// The published HTTP port (default 80).
    #[serde(default)]
    pub port: Option<u16>,
    /// `host` (default) or `ingress`.
    #[serde(default)]
    pub publish_mode: Option<PublishMode>,
    /// `replicated` (default) or `global` (one per node).
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub replicas: Option<u64>,
    #[serde(default)]
    pub placement: Option<Placement>,
    /// The stats page (`false` to turn it off).
    #[serde(default)]
    pub stats: Option<Stats>,
    /// Keep connections to clients and backends alive (default true).
    #[serde(default)]
    pub keepalive: Option<bool>,
    #[serde(default)]
    pub timeouts: Option<ProxyTimeouts>,
    /// Backend health check (default `GET /healthz` every 1s).
    #[serde(default)]
    pub health: Option<ProxyHealth>,
    /// Routes, tried in order; the first match wins.
    pub routes: Vec<Route>,
    /// Endpoint twip uses for `test` and `bench` (default `http://127.0.0.1:PORT`).
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Default 1936.
    #[serde(default)]
    pub port: Option<u16>,
    /// Default `/`.
    #[serde(default)]
    pub uri: Option<String>,
    #[serde(default)]
    pub refresh: Option<Duration>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyTimeouts {
    #[serde(default)]
    pub connect: Option<Duration>,
    #[serde(default)]
    pub client: Option<Duration>,
    #[serde(default)]
    pub server: Option<Duration>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyHealth {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub interval: Option<Duration>,
    #[serde(default)]
    pub fall: Option<u64>,
    #[serde(default)]
    pub rise: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Path prefix, e.g. `/styles/`.
    #[serde(default)]
    pub path: Option<String>,
    /// Host header, e.g. `news.example.com`.
    #[serde(default)]
    pub host: Option<String>,
    /// The service that answers.
    pub service: String,
    /// Its port inside the container (default 80).
    #[serde(default)]
    pub port: Option<u16>,
    /// Health-check path for this backend (default: the proxy's).
    #[serde(default)]
    pub health: Option<String>,
    /// Path `twip test` requests for this route (default: the route's path).
    #[serde(default)]
    pub probe: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Monitoring {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Prometheus image: an `images` entry or a full reference.
    pub image: String,
    /// Published port of Prometheus (default 9090).
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub scrape_interval: Option<Duration>,
    /// Services exposing metrics (`/metrics` on a port).
    #[serde(default)]
    pub targets: Vec<ScrapeTarget>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScrapeTarget {
    pub service: String,
    pub port: u16,
    #[serde(default)]
    pub path: Option<String>,
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

    #[test]
    fn short_ports_parse() {
        let p = parse_port("8080:80/udp").unwrap();
        assert_eq!(
            (p.published, p.target, p.protocol),
            (Some(8080), 80, Protocol::Udp)
        );
        assert!(parse_port("70000")
            .unwrap_err()
            .contains("not a port number"));
        assert!(parse_port("1.2.3.4:80:80")
            .unwrap_err()
            .contains("host address"));
    }
}
