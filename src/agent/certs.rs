//! The certificates controller: obtains and renews the `proxy.tls.acme` certificate (RFC 8555,
//! HTTP-01 through the proxy, with instant-acme) and delivers it to the proxies.
//!
//! Each round observes the certificate the proxy serves (the labels of its secret: domains,
//! validity, serial), decides (pure: [`decide`]) and, when a certificate is due, runs one
//! order. A new certificate becomes a secret of the stack (named by its serial, labelled with
//! the stack so `twip down` removes it) and is delivered by [`deliver`]. A failure is the
//! round's decision (the directory's reason, never a secret) and is retried with backoff; the
//! certificate served before keeps serving.
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
use super::{AgentConfig, AgentContext, Controller, Round};
use crate::engine::acme::{self as swarm, AcmeSecret};
use crate::labels;
use crate::manifest::Environment;
pub use crate::render::context::tls::ACME_CHALLENGE_PORT;

/// Where the agent's service may mount the account's secret.
pub const ACCOUNT_FILE: &str = "/run/secrets/acme-account.json";

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
/// which the proxies send HTTP-01 challenges to `tasks.STACK_agent:8402` (no published port).
impl super::ServiceParts for CertsConfig {
    fn service_needs(&self) -> crate::render::context::agent::ServiceNeeds {
        if self.is_empty() {
            return Default::default();
        }
        crate::render::context::agent::ServiceNeeds {
            networks: vec!["default".into()],
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

    /// Obtains a certificate and makes it a secret of the stack.
    async fn obtain(&mut self, cx: &AgentContext) -> anyhow::Result<AcmeSecret> {
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
        made.into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| anyhow::anyhow!("the secret {name} was made but is not listed"))
    }
}

/// Delivers SECRET to the proxies: one small step, so that another way (the proxy's runtime
/// API) can take its place. Today: the proxy service mounts the new secret (a rolling update).
pub async fn deliver(cx: &AgentContext, stack: &str, secret: &AcmeSecret) -> anyhow::Result<()> {
    swarm::deliver(&cx.docker, stack, secret).await?;
    Ok(())
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
        let all = swarm::certificates(&cx.docker, &self.stack).await?;
        let served = served_name
            .as_ref()
            .and_then(|n| all.iter().find(|s| &s.name == n))
            .and_then(Served::of);
        let now = crate::tls::now();
        let names = self.cfg.domains.join(", ");
        let reason = match decide(now, served.as_ref(), &self.cfg.domains, self.force) {
            Decision::Keep { renew_in } => {
                if let Some(n) = &served_name {
                    swarm::prune(&cx.docker, &self.stack, &[n.as_str()]).await;
                }
                let s = served.as_ref().map_or(0, |s| s.not_after);
                return Ok(Round {
                    decision: format!(
                        "certificate for {names} valid until {}; renewal from {}",
                        crate::tls::date(s),
                        crate::tls::date(now + renew_in)
                    ),
                    next: Duration::from_secs(renew_in.clamp(60, 3600) as u64),
                });
            }
            Decision::Obtain(why) => why,
        };
        match self.obtain(cx).await {
            Ok(secret) => {
                deliver(cx, &self.stack, &secret).await?;
                self.force = false;
                self.failures = 0;
                Ok(Round {
                    decision: format!(
                        "obtained a certificate for {names} ({reason}), serial {}, delivered to the proxy",
                        secret.label(labels::ACME_SERIAL).unwrap_or("?")
                    ),
                    next: Duration::from_secs(60),
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
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn backoff_doubles_up_to_six_hours() {
        assert_eq!(backoff(1), Duration::from_secs(30));
        assert_eq!(backoff(2), Duration::from_secs(60));
        assert_eq!(backoff(3), Duration::from_secs(120));
        assert_eq!(backoff(40), Duration::from_secs(6 * 3600));
    }
}
