//! The certificates controller seen from the CLI: what `twip certs ENV` shows of the ACME
//! certificate the proxy serves ([`view`]) and `twip certs renew ENV` (one round of the
//! controller run from the CLI, [`renew`]).

use std::time::Duration;

use serde::Serialize;

use super::certs::{decide, CertsConfig, CertsController, Decision, Served};
use super::{AgentConfig, AgentContext, Controller};
use crate::engine::acme::{self as swarm, AcmeSecret};
use crate::engine::{records, Docker};
use crate::labels;

/// The ACME certificate the proxy serves, as `twip certs` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AcmeView {
    /// `issued`, or `placeholder` (nothing obtained yet), or `none` (not deployed).
    pub state: &'static str,
    /// The secret the proxy mounts.
    pub secret: Option<String>,
    pub domains: Vec<String>,
    pub issuer: Option<String>,
    pub serial: Option<String>,
    pub not_after: Option<String>,
    pub not_after_unix: Option<i64>,
    /// When renewal is due (two thirds into the lifetime).
    pub renew_from: Option<String>,
    /// One line: when the controller renews it, or why nothing is obtained yet.
    pub renewal: String,
    /// The certificates controller's last recorded decision, if any.
    pub last_decision: Option<String>,
}

impl AcmeView {
    /// The text of `twip certs` for it (the caller cleans each line for the terminal).
    pub fn lines(&self) -> Vec<String> {
        let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
        let mut out = vec![
            format!("[acme] {} ({})", self.domains.join(", "), self.state),
            format!("    issuer     {}", dash(&self.issuer)),
            format!("    not after  {}", dash(&self.not_after)),
            format!("    serial     {}", dash(&self.serial)),
            format!("    renewal    {}", self.renewal),
        ];
        if let Some(d) = &self.last_decision {
            out.push(format!("    last round {d}"));
        }
        out
    }
}

/// The served secret of STACK and its labels, if the proxy mounts one.
async fn served(docker: &Docker, stack: &str) -> anyhow::Result<Option<AcmeSecret>> {
    let Some(name) = swarm::served(docker, stack).await? else {
        return Ok(None);
    };
    let all = swarm::certificates(docker, stack).await?;
    Ok(all.into_iter().find(|s| s.name == name))
}

/// What the proxy of STACK serves for CFG's domains (`None` when CFG asks for no ACME).
pub async fn view(
    docker: &Docker,
    stack: &str,
    cfg: &CertsConfig,
) -> anyhow::Result<Option<AcmeView>> {
    if cfg.is_empty() {
        return Ok(None);
    }
    let secret = served(docker, stack).await?;
    let last = records::list(docker, stack)
        .await?
        .into_iter()
        .find(|r| r.controller == "certificates")
        .map(|r| r.decision);
    let label = |k: &str| secret.as_ref().and_then(|s| s.label(k)).map(str::to_string);
    let issued = secret.as_ref().and_then(Served::of);
    let (state, renewal, renew_from) = match (&secret, &issued) {
        (None, _) => ("none", "not deployed: `twip up` first".to_string(), None),
        (Some(_), None) => (
            "placeholder",
            "placeholder: not obtained yet".to_string(),
            None,
        ),
        (Some(_), Some(s)) => {
            let from = crate::tls::date(s.renew_at());
            (
                "issued",
                format!("acme: renewed by the agent from {from}"),
                Some(from),
            )
        }
    };
    Ok(Some(AcmeView {
        state,
        secret: secret.as_ref().map(|s| s.name.clone()),
        domains: match &issued {
            Some(s) => s.domains.clone(),
            None => cfg.domains.clone(),
        },
        issuer: label(labels::ACME_ISSUER),
        serial: label(labels::ACME_SERIAL),
        not_after: issued.as_ref().map(|s| crate::tls::date(s.not_after)),
        not_after_unix: issued.as_ref().map(|s| s.not_after),
        renew_from,
        renewal,
        last_decision: last,
    }))
}

/// How `twip certs renew` ended.
#[derive(Debug, Clone, Serialize)]
pub struct Renewal {
    /// `renewed`, `not-due`, `failed`.
    pub outcome: &'static str,
    /// The round's decision, one line (a failure's reason; never a secret).
    pub decision: String,
    /// The certificate served afterwards.
    pub served: Option<AcmeView>,
}

/// One round of the certificates controller of CONFIG from this process: renews when due,
/// or whatever is served with FORCE; the round may take up to TIMEOUT. The HTTP-01
/// challenges reach this process's listener only where `tasks.STACK_agent:8402` leads here.
pub async fn renew(
    docker: Docker,
    config: AgentConfig,
    force: bool,
    timeout: Duration,
) -> anyhow::Result<Renewal> {
    let stack = config.stack.clone();
    let cfg = config.certs.clone();
    // The proxy sends every HTTP-01 challenge to the agent's service: with the in-cluster
    // agent running, an order placed from here could never be validated (it would fail
    // after a minute with a misleading 404), so say so at once.
    if let Some(agent) = records::agent_status(&docker, &stack).await? {
        return Err(crate::exit::invalid(format!(
            "{}: the in-cluster agent ({}) answers the ACME challenges and renews this \
             certificate itself (at two thirds of its lifetime, see `twip certs {}`); \
             a renewal from this machine cannot be validated while it runs",
            config.env, agent.service, config.env
        )));
    }
    let before = served(&docker, &stack).await?;
    if !force {
        let s = before.as_ref().and_then(Served::of);
        if let Decision::Keep { renew_in } =
            decide(crate::tls::now(), s.as_ref(), &cfg.domains, false)
        {
            return Ok(Renewal {
                outcome: "not-due",
                decision: format!(
                    "not due until {} (`--force` renews now)",
                    crate::tls::date(crate::tls::now() + renew_in)
                ),
                served: view(&docker, &stack, &cfg).await?,
            });
        }
    }
    let mut c = CertsController::new(&config, force);
    c.order_wait = timeout;
    let cx = AgentContext { docker, config };
    let round = tokio::time::timeout(timeout + Duration::from_secs(30), c.tick(&cx))
        .await
        .map_err(|_| anyhow::anyhow!("the renewal did not end within {}s", timeout.as_secs()))??;
    let after = served(&cx.docker, &stack).await?;
    let changed = after.as_ref().map(|s| &s.name) != before.as_ref().map(|s| &s.name);
    Ok(Renewal {
        outcome: if changed { "renewed" } else { "failed" },
        decision: round.decision,
        served: view(&cx.docker, &stack, &cfg).await?,
    })
}
