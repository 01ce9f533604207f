//! The floating entrypoint (`proxy.vip`): keepalived's config and the global service twip adds
//! beside the proxy, on the proxy's placement, on the host's network, with the capabilities
//! VRRP needs.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::image_ref;
use super::service::{base_labels, placement_parts, restart_ctx, update_ctx};
use super::types::{NetworkCtx, RefCtx, ServiceCtx};
use crate::manifest::model::{NodeSpec, Proxy, Role, Vip};
use crate::manifest::validate::VIP_SERVICE;
use crate::manifest::Environment;
use crate::render::{Raw, VIP_CONFIG_KEY};

/// Where the rendered config is mounted in keepalived's container.
pub const VIP_CONFIG_PATH: &str = "/etc/keepalived/keepalived.conf";
/// The file name of the VRRP password under /run/secrets.
pub const VIP_PASSWORD_FILE: &str = "twip_vrrp_password";
/// The stack network that is the node's own (keepalived holds the address on the node).
pub const HOST_NETWORK: &str = "host";
/// What keepalived needs to add an address, send gratuitous ARP and VRRP adverts.
pub const VIP_CAPABILITIES: &[&str] = &["NET_ADMIN", "NET_BROADCAST", "NET_RAW"];

/// What keepalived.conf.j2 sees.
#[derive(Debug, Serialize)]
pub struct VipCtx {
    pub env: String,
    pub address: String,
    pub router_id: u64,
    /// 3 without a password (sub-second adverts), 2 with one (VRRPv3 has no authentication).
    pub version: u8,
    /// Seconds between adverts: `0.5` (v3) or `1` (v2, whole seconds only).
    pub advert: Raw,
    /// The proxy's published port, which the health check connects to.
    pub check_port: u16,
}

/// The router id: the manifest's, else one from the stack's name (1-255), so two environments
/// on one network do not collide by default.
pub fn router_id(env: &Environment, v: &Vip) -> u64 {
    v.router_id.unwrap_or_else(|| {
        let d = Sha256::digest(env.stack().as_bytes());
        1 + u64::from(d[0]) % 255
    })
}

pub fn vip_ctx(env: &Environment, v: &Vip) -> VipCtx {
    let port = env
        .manifest
        .proxy
        .as_ref()
        .and_then(|p| p.port)
        .unwrap_or(80);
    let password = v.password_secret.is_some();
    VipCtx {
        env: env.name.clone(),
        address: v.address.clone(),
        router_id: router_id(env, v),
        version: if password { 2 } else { 3 },
        advert: Raw::float(if password { 1.0 } else { 0.5 }),
        check_port: port,
    }
}

/// The floating address, when `proxy.vip` is declared.
pub fn vip_address(env: &Environment) -> Option<String> {
    Some(env.manifest.proxy.as_ref()?.vip.as_ref()?.address.clone())
}

/// The URL of the floating entrypoint: `http://VIP[:PORT]/` when `proxy.vip` is declared and
/// `proxy.url` is not (an explicit url wins).
pub fn vip_url(env: &Environment) -> Option<String> {
    let p = env.manifest.proxy.as_ref()?;
    let v = p.vip.as_ref()?;
    if p.url.is_some() {
        return None;
    }
    Some(match p.port.unwrap_or(80) {
        80 => format!("http://{}/", v.address),
        port => format!("http://{}:{port}/", v.address),
    })
}

/// Whether node N may run a task under CONSTRAINTS, as far as the manifest can tell: `==` and
/// `!=` on `node.role`, `node.hostname`, `node.labels.KEY`, `node.platform.os` and
/// `node.platform.arch`; any other constraint is taken as met (the swarm decides).
pub fn node_may_run(n: &NodeSpec, constraints: &[String]) -> bool {
    constraints.iter().all(|c| {
        let (key, want, equal) = match (c.split_once("!="), c.split_once("==")) {
            (Some((k, v)), _) => (k.trim(), v.trim(), false),
            (None, Some((k, v))) => (k.trim(), v.trim(), true),
            _ => return true,
        };
        let platform = n.platform.as_deref().unwrap_or("linux/amd64");
        let mut parts = platform.split('/');
        let (os, arch) = (
            parts.next().unwrap_or("linux"),
            parts.next().unwrap_or("amd64"),
        );
        let have = match key {
            "node.role" => match n.role {
                Role::Manager => "manager".to_string(),
                Role::Worker => "worker".to_string(),
            },
            "node.hostname" => n.name.clone(),
            "node.platform.os" => os.to_string(),
            "node.platform.arch" => match arch {
                "amd64" => "x86_64".to_string(),
                "arm64" => "aarch64".to_string(),
                other => other.to_string(),
            },
            k => match k.strip_prefix("node.labels.") {
                Some(label) => match n.labels.get(label) {
                    Some(v) => v.0.clone(),
                    None => return !equal,
                },
                None => return true,
            },
        };
        (have == want) == equal
    })
}

/// The proxy's addresses, for a load balancer or DNS with health checks where no floating
/// address is possible: `http://ADDRESS[:PORT]/` of each manifest node that may run the proxy.
pub fn entrypoints(env: &Environment) -> Vec<String> {
    let m = &env.manifest;
    let Some(p) = &m.proxy else {
        return Vec::new();
    };
    let (constraints, _, _) = placement_parts(p.placement.as_ref());
    let port = p.port.unwrap_or(80);
    m.nodes
        .iter()
        .filter(|n| node_may_run(n, &constraints))
        .filter(|n| crate::manifest::names::host_name(&n.address).is_ok())
        .map(|n| {
            let host = if n.address.contains(':') && !n.address.starts_with('[') {
                format!("[{}]", n.address)
            } else {
                n.address.clone()
            };
            match port {
                80 => format!("http://{host}/"),
                port => format!("http://{host}:{port}/"),
            }
        })
        .collect()
}

/// `entrypoints.txt`: the proxy's addresses, one URL a line, under a comment saying what they
/// are for. `None` when the environment names no nodes or has no proxy.
pub fn entrypoints_file(env: &Environment) -> Option<String> {
    let list = entrypoints(env);
    if list.is_empty() {
        return None;
    }
    let health = env
        .manifest
        .proxy
        .as_ref()
        .and_then(|p| p.routes.iter().find_map(|r| r.health.clone()))
        .unwrap_or_else(|| "/healthz".into());
    let mut out = format!(
        "# The proxy's addresses for environment {}: the targets of a load balancer or of DNS\n\
         # with health checks in front of the nodes (docs/reliability.md). Health check: GET\n\
         # {} answers 200. Rendered by twip; one URL a line.\n",
        crate::render::escape::comment(&env.name),
        crate::render::escape::comment(&health)
    );
    for e in list {
        out.push_str(&e);
        out.push('\n');
    }
    Some(out)
}

/// The `host` network, external: the stack attaches keepalived to the node's own network.
pub fn host_network() -> NetworkCtx {
    NetworkCtx {
        key: HOST_NETWORK.to_string(),
        driver: "host".to_string(),
        attachable: false,
        internal: false,
        external: true,
    }
}

/// keepalived beside the proxy: global on the proxy's placement, so every node that can carry
/// the proxy can hold the address (a node without a healthy proxy fails the check and never
/// takes it).
pub fn vip_service(env: &Environment, p: &Proxy, v: &Vip) -> ServiceCtx {
    let (constraints, preferences, _) = placement_parts(p.placement.as_ref());
    let mut environment = BTreeMap::from([
        ("TWIP_VIP_ADDRESS".to_string(), v.address.clone()),
        (
            "TWIP_PROXY_PORT".to_string(),
            p.port.unwrap_or(80).to_string(),
        ),
    ]);
    if let Some(i) = &v.interface {
        environment.insert("TWIP_VIP_INTERFACE".into(), i.clone());
    }
    let secrets = v
        .password_secret
        .iter()
        .map(|s| RefCtx {
            source: s.clone(),
            target: Some(VIP_PASSWORD_FILE.to_string()),
            mode: Some(Raw::octal_mode(0o400)),
        })
        .collect();
    ServiceCtx {
        name: VIP_SERVICE.to_string(),
        image: image_ref(env, v.image.as_deref().unwrap_or("keepalived")),
        mode: "global",
        replicas: None,
        command: None,
        entrypoint: None,
        environment,
        env_file: Vec::new(),
        ports: Vec::new(),
        volumes: Vec::new(),
        networks: vec![HOST_NETWORK.to_string()],
        cap_add: VIP_CAPABILITIES.iter().map(|c| c.to_string()).collect(),
        healthcheck: None,
        limits: None,
        reservations: None,
        constraints,
        preferences,
        max_replicas_per_node: None,
        // Stop-first: two keepalived on one node would fight over the address.
        update: update_ctx(None, true, false),
        rollback: update_ctx(None, true, true),
        restart: restart_ctx(None),
        labels: base_labels(env, VIP_SERVICE),
        secrets,
        configs: vec![RefCtx {
            source: VIP_CONFIG_KEY.to_string(),
            target: Some(VIP_CONFIG_PATH.to_string()),
            mode: None,
        }],
        stop_grace_period: "5s".into(),
        endpoint_mode: "dnsrr",
        hostname: None,
        user: None,
        working_dir: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{render, STACK_FILE, VIP_FILE};

    const MANIFEST: &str = "\
services:
  web:
    image: nginx:1.25
proxy:
  image: haproxy:2.6
  port: 8080
  mode: global
  placement:
    constraints: [\"node.labels.tier == edge\"]
  routes:
    - {service: web}
  vip:
    address: 10.0.0.100
    router_id: 42
    password_secret: vrrp
    image: keepalived:2.2
secrets:
  vrrp:
    file: vrrp.txt
";

    #[test]
    fn a_vip_renders_keepalived_beside_the_proxy() {
        let (dir, env) = crate::project::scratch("demo", MANIFEST, &[("vrrp.txt", b"s3cret")]);
        let out = render(&env, dir.path(), &dir.path().join("build")).unwrap();
        let conf = out.get(VIP_FILE).unwrap();
        assert!(conf.contains("virtual_router_id 42\n"), "{conf}");
        assert!(conf.contains("        10.0.0.100\n"), "{conf}");
        assert!(conf.contains("twip-vip-check 8080\""), "{conf}");
        // A password means VRRPv2 with whole-second adverts; the password itself is not here.
        assert!(
            conf.contains("vrrp_version 2\n") && conf.contains("advert_int 1\n"),
            "{conf}"
        );
        assert!(!conf.contains("s3cret"));
        assert!(
            conf.contains("nopreempt") && conf.contains("state BACKUP"),
            "{conf}"
        );
        let stack = out.get(STACK_FILE).unwrap();
        let vip = &stack[stack
            .find("\n  \"vip\":\n")
            .unwrap_or_else(|| panic!("{stack}"))..];
        assert!(vip.contains("image: \"keepalived:2.2\""), "{vip}");
        assert!(vip.contains("networks: [\"host\"]"), "{vip}");
        assert!(
            vip.contains("cap_add: [\"NET_ADMIN\", \"NET_BROADCAST\", \"NET_RAW\"]"),
            "{vip}"
        );
        assert!(vip.contains("mode: global"), "{vip}");
        assert!(vip.contains("\"node.labels.tier == edge\""), "{vip}");
        assert!(vip.contains("target: \"twip_vrrp_password\""), "{vip}");
        assert!(
            stack.contains("\n  \"host\":\n    external: true\n"),
            "{stack}"
        );
        assert!(!stack.contains("s3cret"));
    }

    #[test]
    fn without_a_password_adverts_are_sub_second() {
        let m = MANIFEST
            .replace("    password_secret: vrrp\n", "")
            .replace("    router_id: 42\n", "");
        let (dir, env) = crate::project::scratch("demo", &m, &[("vrrp.txt", b"x")]);
        let out = render(&env, dir.path(), &dir.path().join("build")).unwrap();
        let conf = out.get(VIP_FILE).unwrap();
        assert!(
            conf.contains("vrrp_version 3\n") && conf.contains("advert_int 0.5\n"),
            "{conf}"
        );
        let id = router_id(
            &env,
            env.manifest.proxy.as_ref().unwrap().vip.as_ref().unwrap(),
        );
        assert!((1..=255).contains(&id));
        assert!(
            conf.contains(&format!("virtual_router_id {id}\n")),
            "{conf}"
        );
        assert_eq!(vip_url(&env).as_deref(), Some("http://10.0.0.100:8080/"));
    }

    #[test]
    fn entrypoints_are_the_nodes_that_may_run_the_proxy() {
        let m = format!(
            "{MANIFEST}nodes:
  - {{name: a, address: 10.0.0.1, role: manager, labels: {{tier: edge}}}}
  - {{name: b, address: 10.0.0.2, role: worker, labels: {{tier: app}}}}
  - {{name: c, address: 10.0.0.3, role: worker, labels: {{tier: edge}}}}
"
        );
        let (_dir, env) = crate::project::scratch("demo", &m, &[("vrrp.txt", b"x")]);
        assert_eq!(
            entrypoints(&env),
            ["http://10.0.0.1:8080/", "http://10.0.0.3:8080/"]
        );
        let file = entrypoints_file(&env).unwrap();
        assert!(
            file.ends_with("\nhttp://10.0.0.1:8080/\nhttp://10.0.0.3:8080/\n"),
            "{file}"
        );
        let n = &env.manifest.nodes[1];
        assert!(node_may_run(n, &["node.role == worker".into()]));
        assert!(!node_may_run(n, &["node.role != worker".into()]));
        assert!(node_may_run(n, &["node.labels.zone != x".into()]));
        assert!(!node_may_run(n, &["node.labels.zone == x".into()]));
        assert!(node_may_run(n, &["node.platform.arch == x86_64".into()]));
        assert!(node_may_run(n, &["engine.labels.x == y".into()]));
    }

    #[test]
    fn the_short_form_is_an_address() {
        let m = MANIFEST.replace(
            "  vip:\n    address: 10.0.0.100\n    router_id: 42\n    password_secret: vrrp\n    image: keepalived:2.2\n",
            "  vip: 10.0.0.7\nimages:\n  keepalived:\n    ref: keepalived:2.2\n",
        );
        let (_dir, env) = crate::project::scratch("demo", &m, &[("vrrp.txt", b"x")]);
        let v = env.manifest.proxy.as_ref().unwrap().vip.clone().unwrap();
        assert_eq!(v.address, "10.0.0.7");
        assert_eq!(v.interface, None);
        assert_eq!(vip_address(&env).as_deref(), Some("10.0.0.7"));
    }
}
