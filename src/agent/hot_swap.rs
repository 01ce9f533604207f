//! Puts new certificates into the running proxies through HAProxy's runtime API, without a
//! restart.
//!
//! `twip up` mounts the desired certificate files (`proxy.tls`) into the agent as swarm
//! secrets and, when they are the only change of the proxy, leaves the proxy's own secrets as
//! they were. Each round, the controller asks every proxy task (`tasks.STACK_proxy` on the
//! stack's internal control network, runtime API over mutual TLS 1.3) which certificate it
//! serves for each file (`show ssl cert FILE`: its serial) and, where that is not the desired
//! one, replaces it (`set ssl cert FILE <<PEM`, then `commit ssl cert FILE`): connections
//! already open keep theirs, new handshakes get the new one, no connection is refused. A task
//! started later by swarm mounts the older files; the next round swaps it too.
//!
//! The observe/decide/swap part is [`RuntimeAccess::converge`], which the certificates
//! controller (`agent::certs`) uses too, for an ACME certificate.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{AgentConfig, AgentContext, Controller, Round};
use crate::manifest::Environment;
use crate::render::context::agent::{SecretNeed, ServiceNeeds};
use crate::render::context::{tls_secrets, CONTROL_NETWORK, RUNTIME_AGENT_SECRETS, SECRETS_DIR};
use crate::tls::runtime;
use decide::{decide, summary, Observed};

// Declared here, not in mod.rs, so that the controllers' files do not collide.
#[path = "hot_swap_decide.rs"]
pub mod decide;

/// Where the agent finds the runtime API's credentials (swarm secrets of the agent service).
pub const RUNTIME_CA: &str = "/run/secrets/twip-runtime-ca.pem";
pub const RUNTIME_CERT: &str = "/run/secrets/twip-runtime-client.pem";
pub const RUNTIME_KEY: &str = "/run/secrets/twip-runtime-client.key";

/// The file name under `/run/secrets` in the agent's container of a proxy certificate file
/// (`tls-0.pem` -> `twip-hot-swap-tls-0.pem`).
pub fn agent_target(proxy_target: &str) -> String {
    format!("twip-hot-swap-{proxy_target}")
}

/// One certificate the proxy serves, and where the agent reads the desired one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwapCert {
    /// The file as the proxy's config names it (`/run/secrets/tls-0.pem`).
    pub proxy_file: String,
    /// The files in the agent's container whose concatenation is the certificate and its key.
    pub files: Vec<String>,
    /// The stack's secret keys of those files, in the same order (`_tls_0_cert`): what the
    /// agent's service mounts.
    #[serde(default)]
    pub keys: Vec<String>,
}

/// This controller's part of [`AgentConfig`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HotSwapConfig {
    /// The proxy's certificates (empty: no `proxy.tls`, nothing to do).
    #[serde(default)]
    pub certificates: Vec<SwapCert>,
    /// The name that resolves to every proxy task (`tasks.STACK_proxy`) and the runtime API's
    /// port.
    #[serde(default)]
    pub proxy: String,
    #[serde(default)]
    pub port: u16,
    /// The runtime API's CA, client certificate and key, as files.
    #[serde(default)]
    pub ca: String,
    #[serde(default)]
    pub cert: String,
    #[serde(default)]
    pub key: String,
}

impl HotSwapConfig {
    /// This part, made from the environment: the proxy's certificate files, when it has some.
    pub fn for_environment(env: &Environment, _project_dir: &Path) -> anyhow::Result<Self> {
        let Some(p) = env.manifest.proxy.as_ref() else {
            return Ok(Self::default());
        };
        let mut by_target: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for s in tls_secrets(p) {
            let base = s.target.trim_end_matches(".key").to_string();
            by_target
                .entry(base)
                .or_default()
                .push((format!("{SECRETS_DIR}/{}", agent_target(&s.target)), s.key));
        }
        if by_target.is_empty() {
            return Ok(Self::default());
        }
        Ok(HotSwapConfig {
            certificates: by_target
                .into_iter()
                .map(|(base, mut files)| {
                    files.sort(); // the certificate (`.pem`) before its key (`.pem.key`)
                    SwapCert {
                        proxy_file: format!("{SECRETS_DIR}/{base}"),
                        keys: files.iter().map(|(_, k)| k.clone()).collect(),
                        files: files.into_iter().map(|(f, _)| f).collect(),
                    }
                })
                .collect(),
            proxy: format!(
                "tasks.{}_{}",
                env.stack(),
                crate::manifest::validate::PROXY_SERVICE
            ),
            port: runtime::PORT,
            ca: RUNTIME_CA.into(),
            cert: RUNTIME_CERT.into(),
            key: RUNTIME_KEY.into(),
        })
    }

    /// Whether there is nothing for this controller to do.
    pub fn is_empty(&self) -> bool {
        self.certificates.is_empty()
    }
}

/// The runtime API's client credentials as the agent's service mounts them (for every
/// controller that talks to the proxies' runtime API).
pub fn runtime_secret_needs() -> Vec<SecretNeed> {
    RUNTIME_AGENT_SECRETS
        .iter()
        .map(|(key, target, _)| SecretNeed {
            source: key.to_string(),
            target: target.to_string(),
        })
        .collect()
}

/// What the agent's service needs for this controller: the stack's internal control network
/// (where the proxies' runtime API listens), the runtime API's client credentials, and the
/// desired certificate files.
impl super::ServiceParts for HotSwapConfig {
    fn service_needs(&self) -> ServiceNeeds {
        if self.is_empty() {
            return ServiceNeeds::default();
        }
        let mut secrets = runtime_secret_needs();
        for c in &self.certificates {
            for (key, file) in c.keys.iter().zip(&c.files) {
                secrets.push(SecretNeed {
                    source: key.clone(),
                    target: file.clone(),
                });
            }
        }
        ServiceNeeds {
            internal_networks: vec![CONTROL_NETWORK.to_string()],
            secrets,
            ..ServiceNeeds::default()
        }
    }
}

/// The controller, or `None` when its part of the config is empty.
pub fn controller(config: &AgentConfig) -> Option<Box<dyn Controller>> {
    if config.hot_swap.is_empty() {
        return None;
    }
    Some(Box::new(HotSwap::new(config.hot_swap.clone())))
}

/// The hot-swap controller (public so that a test or `twip agent-hot-swap` can run its
/// rounds without an agent service).
pub struct HotSwap {
    config: HotSwapConfig,
}

impl HotSwap {
    pub fn new(config: HotSwapConfig) -> HotSwap {
        HotSwap { config }
    }

    /// One round without an engine: the proxies are found by name.
    pub async fn round(&mut self) -> anyhow::Result<Round> {
        let c = &self.config;
        let mut desired = Desired::default();
        for cert in &c.certificates {
            let mut pem = Vec::new();
            for f in &cert.files {
                pem.extend(read(f)?);
                pem.push(b'\n');
            }
            desired
                .add(&cert.proxy_file, &pem)
                .map_err(|e| anyhow::anyhow!("{}: {e}", cert.files.join(" + ")))?;
        }
        let outcome = self.access().converge(&desired).await?;
        Ok(Round {
            decision: outcome.line(),
            next: if outcome.settled() {
                Duration::from_secs(10)
            } else {
                Duration::from_secs(3)
            },
            outcome: None,
        })
    }

    fn access(&self) -> RuntimeAccess {
        let c = &self.config;
        RuntimeAccess {
            proxy: c.proxy.clone(),
            port: c.port,
            ca: c.ca.clone(),
            cert: c.cert.clone(),
            key: c.key.clone(),
        }
    }
}

/// Where and with what the agent reaches every proxy task's runtime API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeAccess {
    /// The name that resolves to every proxy task (`tasks.STACK_proxy`, control network).
    pub proxy: String,
    pub port: u16,
    /// The runtime API's CA, client certificate and key, as files.
    pub ca: String,
    pub cert: String,
    pub key: String,
}

impl RuntimeAccess {
    /// STACK's proxies, with the credentials where the agent's service mounts them.
    pub fn for_stack(stack: &str) -> RuntimeAccess {
        RuntimeAccess {
            proxy: format!("tasks.{stack}_{}", crate::manifest::validate::PROXY_SERVICE),
            port: runtime::PORT,
            ca: RUNTIME_CA.into(),
            cert: RUNTIME_CERT.into(),
            key: RUNTIME_KEY.into(),
        }
    }

    /// Whether this process holds the credentials (the agent's service mounts them when the
    /// proxy has a runtime API; a process outside the swarm does not).
    pub fn available(&self) -> bool {
        [&self.ca, &self.cert, &self.key]
            .iter()
            .all(|f| Path::new(f.as_str()).is_file())
    }

    /// Makes every proxy task serve DESIRED: asks each task what it serves (`show ssl
    /// cert`), decides ([`decide`]) and swaps the stale ones (`set` + `commit ssl cert`).
    pub async fn converge(&self, desired: &Desired) -> anyhow::Result<Outcome> {
        let tls = runtime::client_config(&read(&self.ca)?, &read(&self.cert)?, &read(&self.key)?)
            .map_err(|e| anyhow::anyhow!("runtime API credentials: {e}"))?;
        let targets = resolve(&self.proxy, self.port).await?;
        let mut observed: BTreeMap<String, Observed> = BTreeMap::new();
        for t in &targets {
            observed.insert(
                t.to_string(),
                observe(*t, tls.clone(), &desired.serials).await,
            );
        }
        let decision = decide(&desired.serials, &observed);
        let mut done = 0;
        let mut errors = Vec::new();
        for s in &decision.swaps {
            let addr: SocketAddr = s.target.parse().context("a target")?;
            match swap(addr, tls.clone(), &s.file, &desired.payloads[&s.file]).await {
                Ok(()) => done += 1,
                Err(e) => errors.push(format!("{}: {e}", s.target)),
            }
        }
        Ok(Outcome {
            decision,
            done,
            errors,
        })
    }
}

/// The certificates every proxy task should serve: by the file its config names, the serial
/// and the runtime-API payload (certificate, chain and key).
#[derive(Debug, Clone, Default)]
pub struct Desired {
    serials: BTreeMap<String, String>,
    payloads: BTreeMap<String, String>,
}

impl Desired {
    /// FILE (as the proxy's config names it) should hold PEM (the certificate first).
    pub fn add(&mut self, file: &str, pem: &[u8]) -> Result<(), String> {
        let serial = runtime::pem_serial(pem)?;
        self.serials.insert(file.to_string(), serial);
        self.payloads.insert(file.to_string(), payload(pem));
        Ok(())
    }
}

/// What one [`RuntimeAccess::converge`] did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub decision: decide::Decision,
    /// Swaps that succeeded.
    pub done: usize,
    /// Swaps that failed (`target: why`).
    pub errors: Vec<String>,
}

impl Outcome {
    /// One line for the round's decision.
    pub fn line(&self) -> String {
        let mut line = summary(&self.decision, self.done);
        if let Some(e) = self.errors.first() {
            line.push_str(&format!("; failed: {e}"));
        }
        line
    }

    /// Every task asked serves what is desired (nothing failed, none unreachable).
    pub fn settled(&self) -> bool {
        self.errors.is_empty() && self.decision.unreachable.is_empty()
    }

    /// How many tasks serve the desired certificates now.
    pub fn serving(&self) -> usize {
        let mut failed: Vec<&str> = self
            .errors
            .iter()
            .filter_map(|e| e.split(": ").next())
            .collect();
        failed.sort();
        failed.dedup();
        let mut swapped: Vec<&str> = self
            .decision
            .swaps
            .iter()
            .map(|s| s.target.as_str())
            .collect();
        swapped.sort();
        swapped.dedup();
        self.decision.current + swapped.iter().filter(|t| !failed.contains(t)).count()
    }
}

#[async_trait]
impl Controller for HotSwap {
    fn name(&self) -> &'static str {
        "hot-swap"
    }

    async fn tick(&mut self, _cx: &AgentContext) -> anyhow::Result<Round> {
        self.round().await
    }
}

fn read(path: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {path}"))
}

/// The PEM text as a runtime-API payload: no empty line (an empty line ends the payload).
fn payload(pem: &[u8]) -> String {
    String::from_utf8_lossy(pem)
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every address `name` resolves to (each proxy task's, on the control network).
async fn resolve(name: &str, port: u16) -> anyhow::Result<Vec<SocketAddr>> {
    let mut v: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
        .await
        .with_context(|| format!("resolving {name}"))?
        .collect();
    v.sort();
    v.dedup();
    Ok(v)
}

/// The serial each file of `desired` is served with by the proxy at `addr`.
async fn observe(
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    desired: &BTreeMap<String, String>,
) -> Observed {
    let mut out = BTreeMap::new();
    for file in desired.keys() {
        let answer =
            runtime::command(addr, tls.clone(), &format!("show ssl cert {file}"), None).await?;
        out.insert(file.clone(), runtime::shown_serial(&answer));
    }
    Ok(out)
}

/// Replaces `file`'s certificate in the proxy at `addr` and commits it.
async fn swap(
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    file: &str,
    pem: &str,
) -> Result<(), String> {
    let set = runtime::command(
        addr,
        tls.clone(),
        &format!("set ssl cert {file}"),
        Some(pem),
    )
    .await?;
    if !set.contains("Transaction created") && !set.contains("Transaction updated") {
        // A transaction left open (by a round cut short) blocks the next one: drop it.
        let _ = runtime::command(addr, tls, &format!("abort ssl cert {file}"), None).await;
        return Err(format!("set ssl cert: {}", first_line(&set)));
    }
    let commit =
        runtime::command(addr, tls.clone(), &format!("commit ssl cert {file}"), None).await?;
    if !commit.contains("Success!") {
        return Err(format!("commit ssl cert: {}", first_line(&commit)));
    }
    Ok(())
}

fn first_line(s: &str) -> &str {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(no answer)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_reads_its_credentials_where_the_render_mounts_them() {
        let at = |i: usize| format!("{SECRETS_DIR}/{}", RUNTIME_AGENT_SECRETS[i].1);
        assert_eq!(
            [RUNTIME_CA, RUNTIME_CERT, RUNTIME_KEY].map(String::from),
            [at(0), at(1), at(2)]
        );
    }
}
