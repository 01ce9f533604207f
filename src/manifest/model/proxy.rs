//! HAProxy in front of the services, and Prometheus scraping them.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Duration, Mode, Placement, PublishMode};

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
    /// Endpoint twip uses for `test` and `bench` (default `http://127.0.0.1:PORT`, or the
    /// floating address when `vip` is set).
    #[serde(default)]
    pub url: Option<String>,
    /// HTTPS: certificates, redirect, HSTS, protocol versions and ciphers.
    #[serde(default)]
    pub tls: Option<super::ProxyTls>,
    /// A floating address (VRRP, keepalived) held by one of the nodes that run the proxy:
    /// `ADDRESS`, or `{address, interface, router_id, password_secret, image}`.
    #[serde(default)]
    pub vip: Option<Vip>,
}

/// The floating entrypoint: keepalived beside the proxy moves ADDRESS to another node when the
/// proxy or the node holding it fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    /// An IPv4 address in the nodes' subnet, e.g. `10.0.0.100`.
    pub address: String,
    /// The interface that carries it (default: on each node, the interface whose subnet holds
    /// the address).
    pub interface: Option<String>,
    /// The VRRP router id, 1-255 (default: from the stack's name).
    pub router_id: Option<u64>,
    /// A `secrets` entry holding the VRRP password (at most 8 characters).
    pub password_secret: Option<String>,
    /// keepalived's image: an `images` entry or a full reference (default: `keepalived`).
    pub image: Option<String>,
}

/// The long form of `proxy.vip`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VipSpec {
    /// An IPv4 address in the nodes' subnet, e.g. `10.0.0.100`.
    pub address: String,
    /// The interface that carries it (default: on each node, the interface whose subnet holds
    /// the address).
    #[serde(default)]
    pub interface: Option<String>,
    /// The VRRP router id, 1-255 (default: from the stack's name).
    #[serde(default)]
    pub router_id: Option<u64>,
    /// A `secrets` entry holding the VRRP password (at most 8 characters).
    #[serde(default)]
    pub password_secret: Option<String>,
    /// keepalived's image: an `images` entry or a full reference (default: `keepalived`).
    #[serde(default)]
    pub image: Option<String>,
}

impl From<VipSpec> for Vip {
    fn from(v: VipSpec) -> Vip {
        Vip {
            address: v.address,
            interface: v.interface,
            router_id: v.router_id,
            password_secret: v.password_secret,
            image: v.image,
        }
    }
}

impl<'de> Deserialize<'de> for Vip {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vip;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an IPv4 address or {address, interface, router_id, password_secret}")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Vip, E> {
                Ok(Vip {
                    address: v.to_string(),
                    interface: None,
                    router_id: None,
                    password_secret: None,
                    image: None,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, a: A) -> Result<Vip, A::Error> {
                VipSpec::deserialize(serde::de::value::MapAccessDeserializer::new(a)).map(Vip::from)
            }
        }
        d.deserialize_any(V)
    }
}

/// The schema's view of `proxy.vip`: an address, or the long form.
#[derive(JsonSchema)]
#[allow(dead_code)]
#[serde(untagged)]
enum VipForm {
    Address(String),
    Full(VipSpec),
}

impl JsonSchema for Vip {
    fn schema_name() -> String {
        "Vip".into()
    }
    fn json_schema(g: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
        VipForm::json_schema(g)
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    #[serde(default = "super::yes")]
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
    /// With `proxy.tls`: `false` serves this route over plain HTTP too instead of redirecting
    /// it to HTTPS (default: `proxy.tls.redirect`).
    #[serde(default)]
    pub https_redirect: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Monitoring {
    #[serde(default = "super::yes")]
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
