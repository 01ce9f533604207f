//! Published ports, in the short form (`"8080:80/udp"`) or the long one.

use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

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

#[cfg(test)]
mod tests {
    use super::*;

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
