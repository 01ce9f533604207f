//! The certificates controller: obtains and renews the `proxy.tls.acme` certificate (RFC 8555,
//! HTTP-01 through the proxy, with instant-acme) and delivers it to the proxies.
//!
//! Each round observes the certificate the proxy serves (the labels of its secret: domains,
//! validity, serial), decides (pure: [`decide`]) and, when a certificate is due, runs one
//! order. A new certificate becomes a secret of the stack (named by its serial, labelled with
//! the stack so `twip down` removes it) and is delivered to the proxies:
//!
//! - live, when the agent holds the runtime API's credentials (the proxy has a runtime API
//!   whenever it has an ACME certificate): swapped into every proxy task through HAProxy's
//!   runtime API with the hot-swap controller's code ([`super::hot_swap::RuntimeAccess`]),
//!   no task replaced, no connection refused. The proxy SERVICE's label
//!   [`labels::ACME_SERVED`] then names the served secret (a service label: swarm restarts
//!   nothing); the proxy's task template keeps the secret it mounted. Each later round swaps
//!   the served certificate into any task that does not serve it (one swarm started later
//!   mounts the older secret), and the agent's own service is made to mount the served secret
//!   at [`ACME_AGENT_TARGET`] (the agent restarts once and then holds its data: the engine
//!   never returns a secret's value), so a restarted agent still re-swaps;
//! - else (no agent: the CLI's `twip certs renew`; or no proxy task reachable on the runtime
//!   API) by a rolling update of the proxy ([`swarm::deliver`]), which loses requests when the
//!   proxy publishes in host mode.
//!
//! A failure is the round's decision (the directory's reason, never a secret) and is retried
//! with backoff; the certificate served before keeps serving.
//!
//! What the agent's service needs for it: port [`ACME_CHALLENGE_PORT`] reachable on the
//! stack's proxy network (the proxy sends challenges to `tasks.STACK_agent:8402`), outbound
//! HTTPS to the directory, the Docker socket of a manager. The account's credentials are kept
//! in a secret of the stack (label `io.twip.acme.account`); when the agent's service mounts
//! it at [`ACCOUNT_FILE`] the account is reused across restarts, else a restarted agent
//! registers a new account (allowed, but counted by the CA's rate limits).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::certs_acme::{self, Challenges};
use super::hot_swap::{self, RuntimeAccess};
use super::{AgentConfig, AgentContext, Controller, Round};
use crate::engine::acme::{self as swarm, AcmeSecret};
use crate::labels;
use crate::manifest::Environment;
use crate::render::context::agent::SecretNeed;
pub use crate::render::context::tls::ACME_CHALLENGE_PORT;
use crate::render::context::tls::{
    ACME_AGENT_TARGET, ACME_SECRET_KEY, ACME_SECRET_TARGET, CONTROL_NETWORK, SECRETS_DIR,
};

/// Where the agent's service may mount the account's secret.
pub const ACCOUNT_FILE: &str = "/run/secrets/acme-account.json";

/// A round's outcome, recorded for `twip certs renew`: a certificate was obtained and delivered.
pub const OUTCOME_RENEWED: &str = "renewed";
/// The served certificate is kept (not due, and no renewal forced).
pub const OUTCOME_NOT_DUE: &str = "not-due";
/// Obtaining a certificate failed; the one served keeps serving.
pub const OUTCOME_FAILED: &str = "failed";

/// This controller's part of [`AgentConfig`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertsConfig {
    /// The ACME directory URL; empty: no ACME certificate (the controller is off).
    #[serde(default)]
    pub directory: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub domains: Vec<String>,
    /// Roots the directory's HTTPS chains to (PEM), when not the system's.
    #[serde(default)]
    pub ca_bundle: Option<String>,
    /// Where the challenge listener binds (default `0.0.0.0:8402`).
    #[serde(default)]
    pub listen: Option<String>,
    /// Labels of the stack, put on every secret made (so `twip down` removes them).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl CertsConfig {
    /// This part, made from the environment (empty when the manifest asks nothing of it).
    pub fn for_environment(env: &Environment, project_dir: &Path) -> anyhow::Result<Self> {
        let Some(a) = env
            .manifest
            .proxy
            .as_ref()
            .and_then(|p| p.tls.as_ref())
            .and_then(|t| t.acme.as_ref())
        else {
            return Ok(Self::default());
        };
        let ca_bundle = match &a.ca_bundle {
            Some(f) => Some(std::fs::read_to_string(project_dir.join(f))?),
            None => None,
        };
        Ok(CertsConfig {
            directory: a.directory_url(),
            email: a.email.clone(),
            domains: a.domains.clone(),
            ca_bundle,
            listen: None,
            labels: crate::plan::desired::stack_labels(env)
                .into_iter()
                .collect(),
        })
    }

    /// Whether there is nothing for this controller to do.
    pub fn is_empty(&self) -> bool {
        self.directory.is_empty() || self.domains.is_empty()
    }
}

/// What the agent's service needs for this controller: the proxy's network (`default`), on
/// which the proxies send HTTP-01 challenges to `tasks.STACK_agent:8402` (no published port);
/// the control network and the runtime API's client credentials (to swap a new certificate
/// into the proxies live); the served certificate's secret at [`ACME_AGENT_TARGET`] (`twip up`
/// puts the served one there, `plan::desired::adopt_acme`).
impl super::ServiceParts for CertsConfig {
    fn service_needs(&self) -> crate::render::context::agent::ServiceNeeds {
        if self.is_empty() {
            return Default::default();
        }
        let mut secrets = hot_swap::runtime_secret_needs();
        secrets.push(SecretNeed {
            source: ACME_SECRET_KEY.to_string(),
            target: ACME_AGENT_TARGET.to_string(),
        });
        crate::render::context::agent::ServiceNeeds {
            networks: vec!["default".into()],
            internal_networks: vec![CONTROL_NETWORK.to_string()],
            secrets,
            ..Default::default()
        }
    }
}

/// The controller, or `None` when its part of the config is empty.
pub fn controller(config: &AgentConfig) -> Option<Box<dyn Controller>> {
    if config.certs.is_empty() {
        return None;
    }
    Some(Box::new(CertsController::new(config, false)))
}

/// What the served certificate is, from its secret's labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub domains: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
}

impl Served {
    pub fn of(s: &AcmeSecret) -> Option<Served> {
        if s.label(labels::ACME_CERT) != Some("issued") {
            return None;
        }
        Some(Served {
            domains: s
                .label(labels::ACME_DOMAINS)?
                .split(',')
                .map(str::to_string)
                .collect(),
            not_before: s.label(labels::ACME_NOT_BEFORE)?.parse().ok()?,
            not_after: s.label(labels::ACME_NOT_AFTER)?.parse().ok()?,
        })
    }

    /// When renewal starts: two thirds into the lifetime.
    pub fn renew_at(&self) -> i64 {
        self.not_before + (self.not_after - self.not_before) * 2 / 3
    }
}

/// What a round does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Keep the served certificate; the next look is due in that many seconds.
    Keep { renew_in: i64 },
    /// Order a certificate, for this reason.
    Obtain(String),
}

/// The pure decision: obtain when nothing (or a placeholder) is served, the domains changed,
/// two thirds of the lifetime have passed, or a renewal is forced.
pub fn decide(now: i64, served: Option<&Served>, domains: &[String], force: bool) -> Decision {
    let Some(s) = served else {
        return Decision::Obtain("no certificate obtained yet".into());
    };
    let mut want: Vec<String> = domains.iter().map(|d| d.to_ascii_lowercase()).collect();
    let mut have: Vec<String> = s.domains.iter().map(|d| d.to_ascii_lowercase()).collect();
    want.sort();
    have.sort();
    if want != have {
        return Decision::Obtain("the domains changed".into());
    }
    if force {
        return Decision::Obtain("renewal forced".into());
    }
    if now >= s.renew_at() {
        return Decision::Obtain("two thirds of its lifetime have passed".into());
    }
    Decision::Keep {
        renew_in: s.renew_at() - now,
    }
}

/// How long to wait after N failures in a row: 30 s doubling, at most 6 hours.
pub fn backoff(failures: u32) -> Duration {
    let secs = 30u64.saturating_mul(1 << failures.saturating_sub(1).min(12));
    Duration::from_secs(secs.min(6 * 3600))
}

/// The certificates controller (see the module).
pub struct CertsController {
    stack: String,
    cfg: CertsConfig,
    force: bool,
    failures: u32,
    challenges: Challenges,
    listening: bool,
    account: Option<instant_acme::Account>,
    /// How long one order may wait for the directory's validation.
    pub order_wait: Duration,
    /// The proxies' runtime API (used when this process holds its credentials).
    pub access: RuntimeAccess,
    /// The certificate this process made last: its secret's name and its PEM (chain and key),
    /// swapped into proxy tasks until the agent's service mounts it.
    made: Option<(String, String)>,
}

impl CertsController {
    /// FORCE: the first round renews whatever is served (`twip certs renew --force`).
    pub fn new(config: &AgentConfig, force: bool) -> CertsController {
        CertsController {
            stack: config.stack.clone(),
            cfg: config.certs.clone(),
            force,
            failures: 0,
            challenges: Arc::new(std::sync::Mutex::new(HashMap::new())),
            listening: false,
            account: None,
            order_wait: Duration::from_secs(90),
            access: RuntimeAccess::for_stack(&config.stack),
            made: None,
        }
    }

    /// The next round renews whatever is served (`twip certs renew --force`).
    pub fn force_next(&mut self) {
        self.force = true;
    }

    /// Starts the challenge listener (once; the first round does).
    pub async fn start_listener(&mut self) -> anyhow::Result<()> {
        if !self.listening {
            certs_acme::serve(&self.listen(), self.challenges.clone()).await?;
            self.listening = true;
        }
        Ok(())
    }

    /// Where the challenge listener binds.
    pub fn listen(&self) -> String {
        self.cfg
            .listen
            .clone()
            .unwrap_or_else(|| format!("0.0.0.0:{ACME_CHALLENGE_PORT}"))
    }

    /// The account: the stored one when this process can read it, else a new one (kept as
    /// a secret of the stack).
    async fn account(&mut self, cx: &AgentContext) -> anyhow::Result<instant_acme::Account> {
        if let Some(a) = &self.account {
            return Ok(a.clone());
        }
        let stored = std::fs::read_to_string(ACCOUNT_FILE).ok();
        let (acct, new_creds) = certs_acme::account(
            &self.cfg.directory,
            &self.cfg.email,
            self.cfg.ca_bundle.as_deref(),
            stored.as_deref(),
        )
        .await?;
        if let Some(json) = new_creds {
            let mut l: HashMap<String, String> = self.cfg.labels.clone().into_iter().collect();
            l.insert(labels::ACME_ACCOUNT.into(), self.cfg.directory.clone());
            let name = format!(
                "{}_acme-account-{}",
                self.stack,
                crate::render::content_hash(json.as_bytes())
            );
            swarm::create(&cx.docker, &name, json.as_bytes(), l).await?;
        }
        self.account = Some(acct.clone());
        Ok(acct)
    }

    /// Obtains a certificate and makes it a secret of the stack: the secret, and its PEM.
    async fn obtain(&mut self, cx: &AgentContext) -> anyhow::Result<(AcmeSecret, String)> {
        let acct = self.account(cx).await?;
        let issued =
            certs_acme::obtain(&acct, &self.cfg.domains, &self.challenges, self.order_wait).await?;
        let chain = crate::tls::certificates(issued.chain_pem.as_bytes())
            .map_err(|e| anyhow::anyhow!("the directory's certificate: {e}"))?;
        let info = crate::tls::inspect(&chain)
            .map_err(|e| anyhow::anyhow!("the directory's certificate: {e}"))?;
        let serial = crate::tls::serial_hex(&chain[0]);
        let mut l: HashMap<String, String> = self.cfg.labels.clone().into_iter().collect();
        l.insert(labels::ACME_CERT.into(), "issued".into());
        l.insert(labels::ACME_DOMAINS.into(), self.cfg.domains.join(","));
        l.insert(labels::ACME_NOT_BEFORE.into(), info.not_before.to_string());
        l.insert(labels::ACME_NOT_AFTER.into(), info.not_after.to_string());
        l.insert(labels::ACME_SERIAL.into(), serial.clone());
        l.insert(labels::ACME_ISSUER.into(), info.issuer.clone());
        let short: String = serial
            .chars()
            .rev()
            .take(12)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let name = format!("{}_acme-{short}", self.stack);
        let bundle = format!("{}{}", issued.chain_pem, issued.key_pem);
        swarm::create(&cx.docker, &name, bundle.as_bytes(), l).await?;
        let made = swarm::certificates(&cx.docker, &self.stack).await?;
        let secret = made
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| anyhow::anyhow!("the secret {name} was made but is not listed"))?;
        Ok((secret, bundle))
    }

    /// Swaps PEM (chain and key) into every proxy task that does not serve it.
    async fn swap_live(&self, pem: &str) -> anyhow::Result<hot_swap::Outcome> {
        let mut want = hot_swap::Desired::default();
        want.add(
            &format!("{SECRETS_DIR}/{ACME_SECRET_TARGET}"),
            pem.as_bytes(),
        )
        .map_err(|e| anyhow::anyhow!("the certificate: {e}"))?;
        self.access.converge(&want).await
    }

    /// Delivers the new SECRET (holding PEM) to the proxies: live through their runtime API
    /// when this process can reach it (and then records it as served), else by a rolling
    /// update of the proxy. Returns how, for the round's decision.
    async fn deliver(
        &mut self,
        cx: &AgentContext,
        secret: &AcmeSecret,
        pem: &str,
    ) -> anyhow::Result<String> {
        self.made = Some((secret.name.clone(), pem.to_string()));
        let why = if self.access.available() {
            match self.swap_live(pem).await {
                Ok(o) if o.serving() > 0 => {
                    swarm::mark_served(&cx.docker, &self.stack, secret).await?;
                    return Ok(format!("swapped live into the proxies: {}", o.line()));
                }
                Ok(o) => o.line(),
                Err(e) => format!("{e:#}"),
            }
        } else {
            "no runtime API credentials in this process".to_string()
        };
        swarm::deliver(&cx.docker, &self.stack, secret).await?;
        Ok(format!(
            "delivered by a rolling update of the proxy (not live: {why})"
        ))
    }

    /// The served certificate's PEM, when this process holds it: the one it made, or the file
    /// the agent's service mounts when that is the served secret's (same serial).
    fn served_pem(&self, served: &AcmeSecret) -> Option<String> {
        if let Some((name, pem)) = &self.made {
            if *name == served.name {
                return Some(pem.clone());
            }
        }
        let text = std::fs::read_to_string(format!("{SECRETS_DIR}/{ACME_AGENT_TARGET}")).ok()?;
        let want = crate::tls::runtime::normal_serial(served.label(labels::ACME_SERIAL)?);
        (crate::tls::runtime::pem_serial(text.as_bytes()).ok()? == want).then_some(text)
    }

    /// Keeps SERVED on every proxy task: swaps it into any task that does not serve it (swarm
    /// started it later, with the older secret its template mounts), then has the agent's own
    /// service mount it (a restart of the agent, once). `None` when there is nothing to keep
    /// live (no runtime API credentials here, or the tasks mount the served secret).
    async fn keep_served(
        &mut self,
        cx: &AgentContext,
        served: &AcmeSecret,
        mounted: Option<&str>,
    ) -> anyhow::Result<Option<(String, bool)>> {
        if !self.access.available() {
            return Ok(None);
        }
        let mut note = None;
        if mounted != Some(served.name.as_str()) {
            note = Some(match self.served_pem(served) {
                Some(pem) => match self.swap_live(&pem).await {
                    Ok(o) => (o.line(), o.settled()),
                    Err(e) => (format!("runtime API: {e:#}"), false),
                },
                None => (
                    format!("this agent does not hold {} yet", served.name),
                    false,
                ),
            });
        }
        // Last: the agent's own service mounts the served secret (swarm restarts the agent).
        if swarm::mount_in_agent(&cx.docker, &self.stack, served).await? {
            let (line, settled) = note.unwrap_or_default();
            let line = format!("{line}; the agent's service now mounts {}", served.name);
            note = Some((line.trim_start_matches("; ").to_string(), settled));
        }
        Ok(note)
    }
}

#[async_trait]
impl Controller for CertsController {
    fn name(&self) -> &'static str {
        "certificates"
    }

    /// `twip certs renew` asked: the next round (run now) renews when due, or with `force`
    /// whatever is served.
    fn request(&mut self, r: &crate::engine::requests::Request) -> Result<(), String> {
        if r.force {
            self.force_next();
        }
        Ok(())
    }

    async fn tick(&mut self, cx: &AgentContext) -> anyhow::Result<Round> {
        self.start_listener().await?;
        let served_name = swarm::served(&cx.docker, &self.stack).await?;
        let mounted = swarm::mounted(&cx.docker, &self.stack).await?;
        let all = swarm::certificates(&cx.docker, &self.stack).await?;
        let served_secret = served_name
            .as_ref()
            .and_then(|n| all.iter().find(|s| &s.name == n));
        let served = served_secret.and_then(Served::of);
        let now = crate::tls::now();
        let names = self.cfg.domains.join(", ");
        let reason = match decide(now, served.as_ref(), &self.cfg.domains, self.force) {
            Decision::Keep { renew_in } => {
                // Never removed: the served secret and the one the proxy's tasks mount.
                let keep: Vec<&str> = served_name
                    .iter()
                    .chain(&mounted)
                    .map(String::as_str)
                    .collect();
                if !keep.is_empty() {
                    swarm::prune(&cx.docker, &self.stack, &keep).await;
                }
                let s = served.as_ref().map_or(0, |s| s.not_after);
                let mut decision = format!(
                    "certificate for {names} valid until {}; renewal from {}",
                    crate::tls::date(s),
                    crate::tls::date(now + renew_in)
                );
                let mut next = Duration::from_secs(renew_in.clamp(60, 3600) as u64);
                if let Some(secret) = served_secret.cloned() {
                    if let Some((line, settled)) =
                        self.keep_served(cx, &secret, mounted.as_deref()).await?
                    {
                        decision.push_str(&format!("; live: {line}"));
                        next = next.min(Duration::from_secs(if settled { 10 } else { 3 }));
                    } else if self.access.available() {
                        next = next.min(Duration::from_secs(10));
                    }
                }
                return Ok(Round {
                    decision,
                    next,
                    outcome: Some(OUTCOME_NOT_DUE),
                });
            }
            Decision::Obtain(why) => why,
        };
        match self.obtain(cx).await {
            Ok((secret, pem)) => {
                let how = self.deliver(cx, &secret, &pem).await?;
                self.force = false;
                self.failures = 0;
                Ok(Round {
                    decision: format!(
                        "obtained a certificate for {names} ({reason}), serial {}, {how}",
                        secret.label(labels::ACME_SERIAL).unwrap_or("?")
                    ),
                    next: Duration::from_secs(10),
                    outcome: Some(OUTCOME_RENEWED),
                })
            }
            Err(e) => {
                self.failures += 1;
                let wait = backoff(self.failures);
                let kept = if served.is_some() {
                    "the current certificate keeps serving"
                } else {
                    "the placeholder keeps serving"
                };
                Ok(Round {
                    decision: format!(
                        "obtaining a certificate for {names} failed ({reason}; attempt {}): {e:#}; {kept}; next try in {}s",
                        self.failures,
                        wait.as_secs()
                    ),
                    next: wait,
                    outcome: Some(OUTCOME_FAILED),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::context::RUNTIME_AGENT_SECRETS;

    fn served(nb: i64, na: i64) -> Served {
        Served {
            domains: vec!["a.example.com".into(), "b.example.com".into()],
            not_before: nb,
            not_after: na,
        }
    }

    #[test]
    fn renews_at_two_thirds_of_the_lifetime_and_when_asked() {
        let d = vec!["b.example.com".to_string(), "a.example.com".to_string()];
        let s = served(0, 90);
        assert_eq!(
            decide(59, Some(&s), &d, false),
            Decision::Keep { renew_in: 1 }
        );
        assert!(matches!(
            decide(60, Some(&s), &d, false),
            Decision::Obtain(_)
        ));
        assert!(matches!(
            decide(10, Some(&s), &d, true),
            Decision::Obtain(_)
        ));
        assert!(matches!(decide(10, None, &d, false), Decision::Obtain(_)));
        let other = vec!["a.example.com".to_string()];
        assert_eq!(
            decide(10, Some(&s), &other, false),
            Decision::Obtain("the domains changed".into())
        );
    }

    #[test]
    fn the_agent_mounts_the_runtime_credentials_and_the_served_certificate() {
        use crate::agent::ServiceParts;
        let cfg = CertsConfig {
            directory: "https://acme.example/dir".into(),
            domains: vec!["a.example.com".into()],
            ..Default::default()
        };
        let n = cfg.service_needs();
        assert_eq!(n.networks, ["default"]);
        assert_eq!(n.internal_networks, [CONTROL_NETWORK]);
        assert!(n
            .secrets
            .iter()
            .any(|s| s.source == ACME_SECRET_KEY && s.target == ACME_AGENT_TARGET));
        for (key, target, _) in RUNTIME_AGENT_SECRETS {
            assert!(
                n.secrets
                    .iter()
                    .any(|s| s.source == key && s.target == target),
                "{key}"
            );
        }
        assert_eq!(CertsConfig::default().service_needs(), Default::default());
    }

    #[test]
    fn backoff_doubles_up_to_six_hours() {
        assert_eq!(backoff(1), Duration::from_secs(30));
        assert_eq!(backoff(2), Duration::from_secs(60));
        assert_eq!(backoff(3), Duration::from_secs(120));
        assert_eq!(backoff(40), Duration::from_secs(6 * 3600));
    }
}
