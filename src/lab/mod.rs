//! A lab: a local swarm of docker-in-docker nodes (privileged containers on a private bridge
//! with fixed addresses), and the endpoints file that lets any environment use it.
//!
//! Everything a lab is made of carries the label `io.twip.lab=NAME` on the local engine
//! (containers, volumes, network): that is how `lab status` and `lab down` find it, also after a
//! failed `up`. The only other state is the endpoints file, written last by `lab up`:
//! `$TWIP_LAB_DIR/NAME.json`, default `$XDG_STATE_HOME/twip/labs/NAME.json`
//! (`~/.local/state/twip/labs/NAME.json`). `--lab NAME` on environment commands reads it.

pub mod images;
pub mod provision;

pub use provision::deliver;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::engine::Endpoint;
use crate::exit::invalid;
use crate::manifest::model::{NodeSpec, Role};

pub use crate::labels::{LAB as LABEL_LAB, LAB_INDEX as LABEL_INDEX, LAB_ROLE as LABEL_ROLE};

/// The offline node image (scripts/make-lab-node.sh builds it).
pub const OFFLINE_IMAGE: &str = "twip/lab-node:bookworm";
/// The public docker-in-docker image, used when the offline one is not there.
pub const PUBLIC_IMAGE: &str = "docker:27-dind";
/// The node engines' API port (plain TCP, on the lab's private bridge only).
pub const ENGINE_PORT: u16 = 2375;

/// What the endpoints file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lab {
    pub name: String,
    /// The local engine's network the nodes are on.
    pub network: String,
    pub subnet: String,
    pub image: String,
    pub nodes: Vec<LabNode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabNode {
    /// Hostname and container name: `NAME-manager-1`, `NAME-worker-1`, ...
    pub name: String,
    pub role: Role,
    pub address: String,
    /// `tcp://ADDRESS:2375`.
    pub engine: String,
}

impl LabNode {
    /// The node's engine: plain TCP, allowed because it is a lab's own private address.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            url: self.engine.clone(),
            tls: None,
            allow_plain_tcp: true,
        }
    }
}

impl Lab {
    /// The lab's first manager (a lab always has one).
    pub fn manager(&self) -> anyhow::Result<&LabNode> {
        self.nodes
            .iter()
            .find(|n| n.role == Role::Manager)
            .ok_or_else(|| anyhow::anyhow!("lab `{}` has no manager", self.name))
    }

    /// Reads the endpoints file of lab `name`.
    pub fn load(name: &str) -> anyhow::Result<Lab> {
        check_name(name)?;
        let path = endpoints_file(name);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                invalid(format!(
                    "no lab `{name}`: {} does not exist; start it with `twip lab up --name {name}`",
                    path.display()
                ))
            } else {
                anyhow::anyhow!("cannot read {}: {e}", path.display())
            }
        })?;
        serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not a lab endpoints file: {e}", path.display()))
    }

    pub fn save(&self) -> anyhow::Result<PathBuf> {
        let path = endpoints_file(&self.name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        }
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(self)? + "\n")
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    }
}

/// The directory of endpoints files.
pub fn labs_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("TWIP_LAB_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("state")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    state.join("twip").join("labs")
}

pub fn endpoints_file(name: &str) -> PathBuf {
    labs_dir().join(format!("{name}.json"))
}

/// The local engine's network of lab `name`.
pub fn network_name(name: &str) -> String {
    format!("twip-lab-{name}")
}

/// Lab names become host names, container and network names: lower-case letters, digits and
/// `-`, starting with a letter, at most 24 characters.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 24
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "`{name}` is not a lab name: use lower-case letters, digits and `-`, starting with a letter, at most 24 characters"
        )))
    }
}

/// The nodes of a lab of `nodes` nodes, `managers` of them managers, on `10.99.OCTET.0/24`:
/// managers first (`NAME-manager-1` at .11), then workers.
pub fn layout(name: &str, nodes: u32, managers: u32, octet: u8) -> anyhow::Result<Vec<LabNode>> {
    if nodes == 0 || nodes > 200 {
        return Err(invalid(format!(
            "--nodes {nodes}: a lab has 1 to 200 nodes"
        )));
    }
    if managers == 0 || managers > nodes {
        return Err(invalid(format!(
            "--managers {managers}: a lab of {nodes} node{} has 1 to {nodes} managers",
            if nodes == 1 { "" } else { "s" }
        )));
    }
    Ok((0..nodes)
        .map(|i| {
            let (role, k) = if i < managers {
                (Role::Manager, i + 1)
            } else {
                (Role::Worker, i - managers + 1)
            };
            let role_name = if role == Role::Manager {
                "manager"
            } else {
                "worker"
            };
            let address = format!("10.99.{octet}.{}", 11 + i);
            LabNode {
                name: format!("{name}-{role_name}-{k}"),
                role,
                engine: format!("tcp://{address}:{ENGINE_PORT}"),
                address,
            }
        })
        .collect())
}

/// `a.b.c.d/n` as (address, prefix length).
pub fn parse_cidr(s: &str) -> Option<(u32, u8)> {
    let (ip, len) = s.split_once('/').unwrap_or((s, "32"));
    let ip: std::net::Ipv4Addr = ip.parse().ok()?;
    let len: u8 = len.parse().ok().filter(|l| *l <= 32)?;
    Some((u32::from(ip), len))
}

fn overlaps(a: (u32, u8), b: (u32, u8)) -> bool {
    let len = a.1.min(b.1);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    a.0 & mask == b.0 & mask
}

/// The third octet of the lab's subnet `10.99.X.0/24`: from a hash of the name (so a lab keeps
/// its addresses across `down`/`up`), moved on past subnets that are taken (other networks and
/// routes of this host, given as CIDRs).
pub fn pick_subnet(name: &str, taken: &[String]) -> Option<u8> {
    let taken: Vec<(u32, u8)> = taken.iter().filter_map(|s| parse_cidr(s)).collect();
    // FNV-1a: stable across builds and platforms.
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let start = (h % 250) as u8 + 1;
    (0..250u16)
        .map(|i| ((u16::from(start) - 1 + i) % 250 + 1) as u8)
        .find(|&x| {
            let net = (u32::from(std::net::Ipv4Addr::new(10, 99, x, 0)), 24);
            !taken.iter().any(|t| t.1 > 0 && overlaps(net, *t))
        })
}

/// The host's IPv4 routes as CIDRs (from /proc/net/route), except the default route.
pub fn host_routes() -> Vec<String> {
    let Ok(text) = std::fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            let len = mask.count_ones();
            (len > 0).then(|| {
                // The kernel prints the address as a host-order (little-endian) number.
                format!("{}/{len}", std::net::Ipv4Addr::from(dest.to_le_bytes()))
            })
        })
        .collect()
}

/// Manifest nodes paired with the lab nodes that stand in for them: the manifest's managers
/// with the lab's managers in order, its workers with the lab's workers in order. Lab nodes
/// left over are not used; a manifest with more nodes of a role than the lab is an error.
pub fn map_nodes<'a>(
    manifest: &'a [NodeSpec],
    lab: &'a Lab,
) -> anyhow::Result<Vec<(&'a NodeSpec, &'a LabNode)>> {
    let mut out = Vec::new();
    for role in [Role::Manager, Role::Worker] {
        let want: Vec<&NodeSpec> = manifest.iter().filter(|n| n.role == role).collect();
        let have: Vec<&LabNode> = lab.nodes.iter().filter(|n| n.role == role).collect();
        if want.len() > have.len() {
            let r = if role == Role::Manager {
                "manager"
            } else {
                "worker"
            };
            return Err(invalid(format!(
                "the environment has {} {r}s but lab `{}` has {}: start a bigger lab (`twip lab up --name {} --nodes N --managers M`)",
                want.len(),
                lab.name,
                have.len(),
                lab.name
            )));
        }
        out.extend(want.into_iter().zip(have));
    }
    // Keep the manifest's order.
    out.sort_by_key(|(spec, _)| {
        manifest
            .iter()
            .position(|n| std::ptr::eq(n, *spec))
            .unwrap_or(usize::MAX)
    });
    Ok(out)
}

/// A manifest node's labels as strings.
pub fn node_labels(n: &NodeSpec) -> BTreeMap<String, String> {
    n.labels
        .iter()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, role: Role) -> NodeSpec {
        NodeSpec {
            name: name.into(),
            address: "10.0.0.1".into(),
            role,
            engine: None,
            ssh: None,
            labels: BTreeMap::new(),
            platform: None,
        }
    }

    #[test]
    fn names_are_checked() {
        for ok in ["lab", "a", "lab-2", "t12345"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Lab",
            "2lab",
            "lab-",
            "a_b",
            "a.b",
            "abcdefghijklmnopqrstuvwxyz",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn layout_puts_managers_first_at_fixed_addresses() {
        let l = layout("lab", 3, 1, 7).unwrap();
        let got: Vec<String> = l
            .iter()
            .map(|n| format!("{} {:?} {} {}", n.name, n.role, n.address, n.engine))
            .collect();
        assert_eq!(
            got,
            [
                "lab-manager-1 Manager 10.99.7.11 tcp://10.99.7.11:2375",
                "lab-worker-1 Worker 10.99.7.12 tcp://10.99.7.12:2375",
                "lab-worker-2 Worker 10.99.7.13 tcp://10.99.7.13:2375",
            ]
        );
        let l = layout("x", 5, 3, 1).unwrap();
        assert_eq!(l[2].name, "x-manager-3");
        assert_eq!(l[3].name, "x-worker-1");
        assert!(layout("x", 0, 1, 1).is_err());
        assert!(layout("x", 2, 3, 1).is_err());
        assert!(layout("x", 2, 0, 1).is_err());
    }

    #[test]
    fn subnets_are_stable_and_skip_taken_ones() {
        let a = pick_subnet("lab", &[]).unwrap();
        assert_eq!(pick_subnet("lab", &[]), Some(a));
        let taken = vec![format!("10.99.{a}.0/24")];
        let b = pick_subnet("lab", &taken).unwrap();
        assert_ne!(a, b);
        // A wide route over all of 10.0.0.0/8 leaves nothing.
        assert_eq!(pick_subnet("lab", &["10.0.0.0/8".to_string()]), None);
        // Unrelated networks do not matter.
        assert_eq!(
            pick_subnet("lab", &["172.17.0.0/16".into(), "0.0.0.0/0".into()]),
            Some(a)
        );
    }

    #[test]
    fn manifest_nodes_map_onto_lab_nodes_by_role_in_order() {
        let lab = Lab {
            name: "lab".into(),
            network: "twip-lab-lab".into(),
            subnet: "10.99.7.0/24".into(),
            image: OFFLINE_IMAGE.into(),
            nodes: layout("lab", 4, 1, 7).unwrap(),
        };
        let m = vec![
            spec("worker-1", Role::Worker),
            spec("manager-1", Role::Manager),
            spec("worker-2", Role::Worker),
        ];
        let pairs: Vec<String> = map_nodes(&m, &lab)
            .unwrap()
            .iter()
            .map(|(s, l)| format!("{}={}", s.name, l.name))
            .collect();
        assert_eq!(
            pairs,
            [
                "worker-1=lab-worker-1",
                "manager-1=lab-manager-1",
                "worker-2=lab-worker-2"
            ]
        );
        let two_managers = vec![spec("m1", Role::Manager), spec("m2", Role::Manager)];
        let e = map_nodes(&two_managers, &lab).unwrap_err().to_string();
        assert!(e.contains("2 managers but lab `lab` has 1"), "{e}");
    }

    #[test]
    fn lab_endpoints_allow_plain_tcp() {
        let n = &layout("lab", 1, 1, 3).unwrap()[0];
        assert!(n.endpoint().allow_plain_tcp);
        assert_eq!(n.endpoint().url, "tcp://10.99.3.11:2375");
    }
}
