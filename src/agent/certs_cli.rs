//! The certificates controller seen from the CLI: what `twip certs ENV` shows of the ACME
//! certificate the proxy serves ([`view`]) and `twip certs renew ENV` ([`renew`]): with the
//! in-cluster agent deployed, a request to it (`engine::requests`) and a wait for the record
//! of the round that answers it; without one, one round of the controller run from the CLI.

use std::time::Duration;

use serde::Serialize;

use super::certs::{decide, CertsConfig, CertsController, Decision, Served};
use super::{AgentConfig, AgentContext, Controller};
use crate::engine::acme::{self as swarm, AcmeSecret};
use crate::engine::requests::{self, Request};
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

impl Renewal {
    /// The text of `twip certs renew` (the caller cleans each line for the terminal): the
    /// round's decision, and after a renewal the certificate served.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![self.decision.clone()];
        if let (Some(v), "renewed") = (&self.served, self.outcome) {
            out.extend(v.lines());
        }
        out
    }

    /// Its exit code: 0 renewed or not due, 1 failed (the old certificate keeps serving).
    pub fn exit_code(&self) -> i32 {
        if self.outcome == "failed" {
            crate::exit::FAILURE
        } else {
            crate::exit::SUCCESS
        }
    }
}

/// The controller's name, in requests and records.
const CONTROLLER: &str = "certificates";

/// How often the CLI looks for the agent's answer.
const ANSWER_POLL: Duration = Duration::from_secs(1);

/// `twip certs renew`: renews the certificate of CONFIG when due, or whatever is served with
/// FORCE. Not due (and no FORCE): says until when, and asks nobody. With the in-cluster agent
/// deployed (it answers the HTTP-01 challenges), asks it ([`ask_agent`]); else runs one round
/// of the controller from this process, which may take up to TIMEOUT (the challenges reach
/// this process's listener only where `tasks.STACK_agent:8402` leads here). WAITING is called
/// about every second while the agent's answer is awaited, with the time waited so far.
pub async fn renew(
    docker: Docker,
    config: AgentConfig,
    force: bool,
    timeout: Duration,
    waiting: &dyn Fn(Duration),
) -> anyhow::Result<Renewal> {
    let stack = config.stack.clone();
    let cfg = config.certs.clone();
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
    if let Some(agent) = records::agent_status(&docker, &stack).await? {
        return ask_agent(&docker, &config, &agent.service, force, timeout, waiting).await;
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

/// The outcome of `certs renew` from the record of the agent's round that answered it:
/// `renewed` (a certificate was obtained), `not-due` (kept), else `failed` (the order failed,
/// or the round or the request did). The round records its outcome; a record without one
/// (an agent of an earlier twip) is read by its wording.
pub fn outcome_of(r: &records::Record) -> &'static str {
    use super::certs::{OUTCOME_FAILED, OUTCOME_NOT_DUE, OUTCOME_RENEWED};
    if r.error {
        return OUTCOME_FAILED;
    }
    match r.outcome.as_deref() {
        Some(o) if o == OUTCOME_RENEWED => OUTCOME_RENEWED,
        Some(o) if o == OUTCOME_NOT_DUE => OUTCOME_NOT_DUE,
        Some(_) => OUTCOME_FAILED,
        None if r.decision.starts_with("obtained a certificate") => OUTCOME_RENEWED,
        None if r.decision.starts_with("certificate for ")
            && r.decision.contains(" valid until ") =>
        {
            OUTCOME_NOT_DUE
        }
        None => OUTCOME_FAILED,
    }
}

/// Asks the in-cluster agent (service AGENT) for a round now (`force`: a renewal whatever is
/// served) and waits up to TIMEOUT for the record that answers the request; on no answer the
/// request is removed and the error says so.
async fn ask_agent(
    docker: &Docker,
    config: &AgentConfig,
    agent: &str,
    force: bool,
    timeout: Duration,
    waiting: &dyn Fn(Duration),
) -> anyhow::Result<Renewal> {
    let stack = &config.stack;
    let request = Request::new(CONTROLLER, force);
    let name = requests::ask(docker, stack, &request).await?;
    let started = tokio::time::Instant::now();
    loop {
        let answer = records::list(docker, stack)
            .await?
            .into_iter()
            .find(|r| r.controller == CONTROLLER && r.request.as_ref() == Some(&request.id));
        if let Some(r) = answer {
            return Ok(Renewal {
                outcome: outcome_of(&r),
                decision: r.decision,
                served: view(docker, stack, &config.certs).await?,
            });
        }
        if started.elapsed() >= timeout {
            let removed = match requests::remove(docker, &name).await {
                Ok(()) => "the request was removed",
                Err(_) => "the request could not be removed (the agent drops it when stale)",
            };
            return Err(anyhow::anyhow!(
                "{}: the in-cluster agent ({agent}) did not answer within {}s; {removed}. \
                 See `twip status {}` and `twip logs {} agent`",
                config.env,
                timeout.as_secs(),
                config.env,
                config.env
            ));
        }
        waiting(started.elapsed());
        tokio::time::sleep(ANSWER_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(decision: &str, error: bool) -> records::Record {
        records::Record {
            controller: CONTROLLER.into(),
            decision: decision.into(),
            error,
            at: 0,
            request: Some("01".into()),
            outcome: None,
        }
    }

    #[test]
    fn the_answer_of_the_agent_says_renewed_not_due_or_failed() {
        let cases = [
            (
                "obtained a certificate for a.test (renewal forced), serial 0a, delivered to the proxy",
                false,
                "renewed",
            ),
            (
                "certificate for a.test valid until 2027-03-01; renewal from 2027-01-30",
                false,
                "not-due",
            ),
            (
                "obtaining a certificate for a.test failed (renewal forced; attempt 1): 403; the current certificate keeps serving; next try in 30s",
                false,
                "failed",
            ),
            ("the certificates controller takes no requests", true, "failed"),
            ("engine unreachable", true, "failed"),
        ];
        for (d, e, want) in cases {
            assert_eq!(outcome_of(&rec(d, e)), want, "{d}");
        }
    }

    /// The recorded outcome decides, whatever the wording says.
    #[test]
    fn a_recorded_outcome_wins_over_the_wording() {
        let with = |d: &str, o: &str| records::Record {
            outcome: Some(o.into()),
            ..rec(d, false)
        };
        assert_eq!(outcome_of(&with("anything at all", "renewed")), "renewed");
        assert_eq!(
            outcome_of(&with("obtained a certificate", "not-due")),
            "not-due"
        );
        assert_eq!(
            outcome_of(&with("obtained a certificate", "failed")),
            "failed"
        );
        assert_eq!(
            outcome_of(&with("certificate for x valid until y", "odd")),
            "failed"
        );
        let mut errored = with("x", "renewed");
        errored.error = true;
        assert_eq!(outcome_of(&errored), "failed");
    }
}
