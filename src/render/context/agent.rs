//! The in-cluster agent as a service of the stack (`STACK_agent`): `twip agent` in the
//! agent's image, one replica on a manager, with the Docker socket and its [`AgentConfig`]
//! mounted as a swarm config at [`CONFIG_PATH`] (named after its content, so a changed config
//! restarts the agent), on the stack's `default` network.
//!
//! # The extension point: what a controller needs of the agent's service
//!
//! A controller that needs more than the socket and the config (a network to reach the
//! proxy, a secret, a published port) says so with a [`ServiceNeeds`], made from ITS part of
//! the config, by implementing [`crate::agent::ServiceParts`] for its config type in its own
//! file (`src/agent/NAME.rs`):
//!
//! ```ignore
//! impl crate::agent::ServiceParts for AutoscaleConfig {
//!     fn service_needs(&self) -> ServiceNeeds {
//!         ServiceNeeds {
//!             // HAProxy's stats, at tasks.STACK_proxy, on the proxy's network.
//!             networks: vec!["default".into()],
//!             ..ServiceNeeds::default()
//!         }
//!     }
//! }
//! ```
//!
//! and by removing its empty `impl ServiceParts for NameConfig {}` line from
//! `src/agent/mod.rs`. [`AgentConfig::service_needs`](crate::agent::AgentConfig::service_needs)
//! merges every part's needs (duplicates once); [`agent_service`] turns them into the
//! service's networks, secrets, ports and environment, and [`agent_networks`] adds the
//! networks twip makes for the agent to the stack. Everything here is pure: the needs are
//! read back from the rendered config (`agent.json`), so `twip render`, `twip plan` and
//! `twip up` see the same service.

use std::collections::BTreeMap;

use super::image_repository;
use super::service::{base_labels, restart_ctx, update_ctx};
use super::types::{MountCtx, NetworkCtx, PortCtx, RefCtx, ServiceCtx};
use crate::manifest::validate::AGENT_SERVICE;
use crate::manifest::Environment;
use crate::render::Raw;

pub use crate::agent::{AgentConfig, CONFIG_PATH};
pub use crate::labels::AGENT as LABEL_AGENT;

/// The config key of the agent's rendered config in the stack (`STACK_twip_agent_HASH`).
pub const AGENT_CONFIG_KEY: &str = "twip_agent";
/// The engine's socket, mounted into the agent at the same path.
pub const DOCKER_SOCKET: &str = "/var/run/docker.sock";
/// The agent's image's repository name (under the registry and namespace of the project's
/// images: `REGISTRY/NAMESPACE/twip-agent`).
pub const AGENT_IMAGE_NAME: &str = "twip-agent";

/// What the controllers need of the agent's service beyond the socket and its config. Each
/// controller contributes one from its part of [`AgentConfig`] (see the module's
/// documentation); they are merged with [`ServiceNeeds::merge`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceNeeds {
    /// Networks of the stack the agent joins besides `default`, by their manifest key (a key
    /// of `networks:`; the proxy is on `default`). A key the manifest does not declare is
    /// made by twip as an overlay network of the stack (`STACK_KEY`), like `default`.
    pub networks: Vec<String>,
    /// Networks twip adds to the stack for the agent, internal (no way out of the swarm):
    /// e.g. a control network the proxies join too. Their keys also go in the agent's
    /// networks; another service that must join one names it in its own spec.
    pub internal_networks: Vec<String>,
    /// Secrets mounted into the agent: the stack's secret key (a key of `secrets:`, or the
    /// key of a proxy certificate, [`super::tls_secrets`]) or, when no such key exists, an
    /// existing secret's name; the target is the file name under /run/secrets/ (or an
    /// absolute path). Mode 0400.
    pub secrets: Vec<SecretNeed>,
    /// Ports published on the swarm's routing mesh. A port that another service of the
    /// stack reaches at `tasks.STACK_agent:PORT` (ACME's challenge listener) needs no entry:
    /// only a shared network.
    pub ports: Vec<PortNeed>,
    /// Environment variables of the agent's container (never secrets: those are files).
    pub environment: BTreeMap<String, String>,
}

/// A secret mounted into the agent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SecretNeed {
    pub source: String,
    pub target: String,
}

/// A port published on the routing mesh: the container's `target` on the swarm's
/// `published`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortNeed {
    pub target: u16,
    pub published: u16,
}

impl ServiceNeeds {
    /// Adds OTHER's needs to these, each once (the first value of an environment variable
    /// wins, in the order of [`crate::agent::controllers`]).
    pub fn merge(&mut self, other: ServiceNeeds) {
        fn add<T: PartialEq>(into: &mut Vec<T>, from: Vec<T>) {
            for x in from {
                if !into.contains(&x) {
                    into.push(x);
                }
            }
        }
        add(&mut self.networks, other.networks);
        add(&mut self.internal_networks, other.internal_networks);
        add(&mut self.secrets, other.secrets);
        add(&mut self.ports, other.ports);
        for (k, v) in other.environment {
            self.environment.entry(k).or_insert(v);
        }
    }
}

/// The agent's image as the stack file names it: `REPO/twip-agent:VERSION`. `twip up`
/// deploys the image it builds from its own binary instead, tagged by the binary's content
/// hash (`lifecycle::agent_image`), so a new binary restarts the agent.
pub fn agent_image(env: &Environment) -> String {
    format!(
        "{}:{}",
        image_repository(env, AGENT_IMAGE_NAME),
        env!("CARGO_PKG_VERSION")
    )
}

/// The stack's networks the agent joins, `default` first.
fn service_networks(needs: &ServiceNeeds) -> Vec<String> {
    let mut out = vec!["default".to_string()];
    for n in needs.networks.iter().chain(&needs.internal_networks) {
        if !out.contains(n) {
            out.push(n.clone());
        }
    }
    out
}

/// Networks the stack lacks that the agent joins: the undeclared keys of its networks
/// (overlay) and its internal networks. `declared` holds the stack's network keys.
pub fn agent_networks(needs: &ServiceNeeds, declared: &[String]) -> Vec<NetworkCtx> {
    let mut out: Vec<NetworkCtx> = Vec::new();
    for n in service_networks(needs) {
        if declared.contains(&n) || out.iter().any(|o| o.key == n) {
            continue;
        }
        out.push(NetworkCtx {
            internal: needs.internal_networks.contains(&n),
            key: n,
            driver: "overlay".into(),
            attachable: false,
            external: false,
        });
    }
    out
}

/// The agent's service: `twip agent`, one replica on a manager, restarted whatever the
/// reason it ended, stopped before a new one starts (two agents would act twice).
pub fn agent_service(env: &Environment, needs: &ServiceNeeds) -> ServiceCtx {
    let mut labels = base_labels(env, AGENT_SERVICE);
    labels.insert(LABEL_AGENT.to_string(), "true".to_string());
    ServiceCtx {
        name: AGENT_SERVICE.to_string(),
        image: agent_image(env),
        mode: "replicated",
        replicas: Some(1),
        command: Some(vec!["agent".to_string()]),
        entrypoint: Some(vec!["twip".to_string()]),
        environment: needs.environment.clone(),
        env_file: Vec::new(),
        ports: needs
            .ports
            .iter()
            .map(|p| PortCtx {
                target: p.target,
                published: Some(p.published),
                protocol: "tcp",
                mode: "ingress",
            })
            .collect(),
        volumes: vec![MountCtx {
            kind: "bind",
            source: Some(DOCKER_SOCKET.to_string()),
            target: DOCKER_SOCKET.to_string(),
            read_only: false,
        }],
        networks: service_networks(needs),
        cap_add: Vec::new(),
        healthcheck: None,
        limits: None,
        reservations: None,
        constraints: vec!["node.role == manager".to_string()],
        preferences: Vec::new(),
        max_replicas_per_node: None,
        update: update_ctx(None, true, false),
        rollback: update_ctx(None, true, true),
        restart: restart_ctx(None),
        labels,
        secrets: needs
            .secrets
            .iter()
            .map(|s| RefCtx {
                source: s.source.clone(),
                target: Some(s.target.clone()),
                mode: Some(Raw::octal_mode(0o400)),
            })
            .collect(),
        configs: vec![RefCtx {
            source: AGENT_CONFIG_KEY.to_string(),
            target: Some(CONFIG_PATH.to_string()),
            mode: Some(Raw::octal_mode(0o444)),
        }],
        stop_grace_period: "10s".into(),
        endpoint_mode: "vip",
        hostname: None,
        user: None,
        working_dir: None,
    }
}

/// The agent's config as the file `agent.json` holds it (and the swarm config mounted at
/// [`CONFIG_PATH`]): pretty JSON, one trailing newline.
pub fn config_text(config: &AgentConfig) -> String {
    let mut s = serde_json::to_string_pretty(config).unwrap_or_default();
    s.push('\n');
    s
}

/// The needs of the agent whose config is TEXT (`agent.json`); `None` when it does not parse.
pub fn needs_of(text: &str) -> Option<ServiceNeeds> {
    serde_json::from_str::<AgentConfig>(text)
        .ok()
        .map(|c| c.service_needs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{render, AGENT_FILE, STACK_FILE};

    const MANIFEST: &str = "\
services:
  web:
    image: nginx:1.25
networks:
  back:
";

    fn needs() -> ServiceNeeds {
        ServiceNeeds {
            networks: vec!["back".into(), "default".into()],
            internal_networks: vec!["control".into()],
            secrets: vec![SecretNeed {
                source: "tls_cert".into(),
                target: "client.pem".into(),
            }],
            ports: vec![PortNeed {
                target: 8402,
                published: 18402,
            }],
            environment: BTreeMap::from([("TWIP_X".to_string(), "1".to_string())]),
        }
    }

    #[test]
    fn the_agent_runs_when_enabled_or_needed_and_never_when_disabled() {
        for (key, want) in [
            ("", false),
            ("agent:\n  enabled: true\n", true),
            ("agent:\n  enabled: false\n", false),
            ("agent: {}\n", false),
        ] {
            let m = format!("{MANIFEST}{key}");
            let (dir, env) = crate::project::scratch("demo", &m, &[]);
            let cfg = crate::agent::for_stack(&env, dir.path()).unwrap();
            assert_eq!(cfg.is_some(), want, "{key}");
            let out = render(&env, dir.path(), &dir.path().join("build")).unwrap();
            assert_eq!(out.get(AGENT_FILE).is_some(), want, "{key}");
            let stack = out.get(STACK_FILE).unwrap();
            assert_eq!(stack.contains("\n  \"agent\":\n"), want, "{stack}");
        }
    }

    #[test]
    fn needs_become_networks_secrets_ports_and_environment() {
        let (_dir, env) = crate::project::scratch("demo", MANIFEST, &[]);
        let s = agent_service(&env, &needs());
        assert_eq!(s.networks, ["default", "back", "control"]);
        assert_eq!(s.secrets.len(), 1);
        assert_eq!(s.secrets[0].source, "tls_cert");
        assert_eq!(s.secrets[0].target.as_deref(), Some("client.pem"));
        assert_eq!(s.ports.len(), 1);
        assert_eq!(
            (s.ports[0].target, s.ports[0].published),
            (8402, Some(18402))
        );
        assert_eq!(s.environment.get("TWIP_X").map(String::as_str), Some("1"));
        assert_eq!(s.labels.get(LABEL_AGENT).map(String::as_str), Some("true"));
        // `back` is declared, `default` is always there: only `control` is added, internal.
        let declared = vec!["default".to_string(), "back".to_string()];
        let added = agent_networks(&needs(), &declared);
        assert_eq!(added.len(), 1);
        assert_eq!(added[0].key, "control");
        assert!(added[0].internal);
        // Nothing needed: the socket, the config and `default` only.
        let plain = agent_service(&env, &ServiceNeeds::default());
        assert_eq!(plain.networks, ["default"]);
        assert!(plain.secrets.is_empty() && plain.ports.is_empty());
        assert_eq!(plain.volumes.len(), 1);
        assert_eq!(plain.volumes[0].target, DOCKER_SOCKET);
        assert_eq!(plain.configs[0].target.as_deref(), Some(CONFIG_PATH));
        assert!(agent_networks(&ServiceNeeds::default(), &declared).is_empty());
    }

    #[test]
    fn merged_needs_hold_each_thing_once() {
        let mut a = needs();
        let mut b = needs();
        b.networks.push("proxy".into());
        b.environment.insert("TWIP_X".into(), "2".into());
        a.merge(b);
        assert_eq!(a.networks, ["back", "default", "proxy"]);
        assert_eq!(a.secrets.len(), 1);
        assert_eq!(a.ports.len(), 1);
        assert_eq!(a.environment["TWIP_X"], "1", "the first value wins");
    }

    #[test]
    fn the_rendered_config_gives_back_the_needs() {
        let cfg = AgentConfig {
            env: "demo".into(),
            stack: "demo".into(),
            ..AgentConfig::default()
        };
        let text = config_text(&cfg);
        assert!(text.ends_with("}\n"));
        assert_eq!(needs_of(&text), Some(cfg.service_needs()));
        assert_eq!(needs_of("{\"nope\": 1}"), None);
    }
}
