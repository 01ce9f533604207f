//! Reaching the swarm through any manager that answers. The candidates, in order: `--host`
//! alone when given; else the lab's managers with `--lab`; else the manifest's engine
//! (`engine.host`, or `DOCKER_HOST`) when set, then the manifest's manager nodes' engines
//! (`nodes[].engine`, else `ssh://USER@ADDRESS`), and the local socket only when none of those
//! exists. Each is pinged with a short timeout ([`PING_TIMEOUT`], [`SSH_PING_TIMEOUT`]); the
//! first that answers and is a swarm manager is used, and when the swarm's leader is another
//! candidate twip moves to it (writes go to the leader anyway: a follower forwards them; the
//! leader spares that hop and has the freshest view). `-v` says which manager answered and why
//! the others were skipped. [`lost_manager`] tells an operation interrupted by its manager going
//! away, which idempotent commands retry once on the next manager.

use std::time::Duration;

use crate::engine::{self, Docker, Endpoint, EngineError};
use crate::exit;
use crate::lab::Lab;
use crate::manifest::model::Role;
use crate::manifest::Environment;
use crate::ui::Ui;

/// How long a manager reached over TCP or a local socket has to answer its version request
/// and its ping (each). A live engine answers in milliseconds; a dead host costs at most this.
pub const PING_TIMEOUT: Duration = Duration::from_secs(3);
/// The same over SSH, where the first request also starts the ssh client and its handshake.
pub const SSH_PING_TIMEOUT: Duration = Duration::from_secs(10);

/// One manager twip may talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// For messages: the node's name, `--host`, `engine.host`, `DOCKER_HOST`, `local engine`.
    pub name: String,
    pub endpoint: Endpoint,
    /// The address the swarm knows it by, when known (to find the leader among candidates).
    pub address: Option<String>,
}

impl Candidate {
    fn label(&self) -> String {
        if self.name == self.endpoint.url {
            self.name.clone()
        } else {
            format!("{} ({})", self.name, self.endpoint.url)
        }
    }

    fn timeout(&self) -> Duration {
        if self.endpoint.url.starts_with("ssh://") {
            SSH_PING_TIMEOUT
        } else {
            PING_TIMEOUT
        }
    }
}

/// The lab of `--lab NAME`, loaded after checking that `--host` was not given too (a usage error
/// that must not depend on whether the lab exists).
pub fn load_lab(host: Option<&str>, lab: Option<&str>) -> anyhow::Result<Option<Lab>> {
    if host.is_some() && lab.is_some() {
        return Err(exit::invalid(
            "--host and --lab both say where the engine is; give one of them",
        ));
    }
    lab.map(Lab::load).transpose()
}

/// The managers to try, in order (see the module's documentation). `--host` with `--lab` is a
/// usage error.
pub fn candidates(
    host: Option<&str>,
    env: Option<&Environment>,
    lab: Option<&Lab>,
) -> anyhow::Result<Vec<Candidate>> {
    if let Some(h) = host {
        if lab.is_some() {
            return Err(exit::invalid(
                "--host and --lab both say where the engine is; give one of them",
            ));
        }
        return Ok(vec![Candidate {
            name: "--host".into(),
            endpoint: Endpoint::resolve(Some(h), env),
            address: None,
        }]);
    }
    if let Some(l) = lab {
        let out: Vec<Candidate> = l
            .nodes
            .iter()
            .filter(|n| n.role == Role::Manager)
            .map(|n| Candidate {
                name: n.name.clone(),
                endpoint: n.endpoint(),
                address: Some(n.address.clone()),
            })
            .collect();
        if out.is_empty() {
            anyhow::bail!("lab `{}` has no manager", l.name);
        }
        return Ok(out);
    }
    let mut out = Vec::new();
    let explicit = env
        .and_then(|e| e.manifest.engine.as_ref())
        .and_then(|e| e.host.as_ref())
        .map(|_| "engine.host")
        .or_else(|| {
            std::env::var("DOCKER_HOST")
                .ok()
                .filter(|s| !s.is_empty())
                .map(|_| "DOCKER_HOST")
        });
    if let Some(name) = explicit {
        let endpoint = Endpoint::resolve(None, env);
        out.push(Candidate {
            name: name.into(),
            address: host_of(&endpoint.url),
            endpoint,
        });
    }
    for n in env
        .iter()
        .flat_map(|e| e.manifest.nodes.iter())
        .filter(|n| n.role == Role::Manager)
    {
        let url = crate::nodes::node_engine_url(n);
        if out.iter().any(|c| c.endpoint.url == url) {
            continue;
        }
        out.push(Candidate {
            name: n.name.clone(),
            endpoint: Endpoint::resolve(Some(&url), env),
            address: Some(n.address.clone()),
        });
    }
    if out.is_empty() {
        out.push(Candidate {
            name: "local engine".into(),
            endpoint: Endpoint::resolve(None, env),
            address: None,
        });
    }
    Ok(out)
}

/// The host of a `tcp://HOST:PORT` or `ssh://USER@HOST:PORT` URL.
fn host_of(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("tcp://")
        .or_else(|| url.strip_prefix("http://"))
        .or_else(|| url.strip_prefix("ssh://"))?;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let rest = rest.split('/').next().unwrap_or(rest);
    let host = match rest.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => rest,
    };
    Some(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    )
}

/// The candidate that is the leader, by the leader's raft address.
pub fn leader_candidate(cands: &[Candidate], leader_address: &str) -> Option<usize> {
    cands
        .iter()
        .position(|c| c.address.as_deref() == Some(leader_address))
}

/// A manager that answered.
pub struct Reached {
    pub candidate: Candidate,
    pub docker: Docker,
}

/// Tries the candidates in order, skipping the URLs in `skip`; the first reachable manager
/// wins, and the leader is preferred when it is another candidate. A problem with the input
/// (an endpoint twip refuses) stops at once (exit 2). When none answers: one candidate, its own
/// error; several, each candidate and why it was skipped.
pub async fn reach(cands: &[Candidate], skip: &[String], ui: &Ui) -> anyhow::Result<Reached> {
    let mut skipped: Vec<String> = skip
        .iter()
        .map(|u| format!("{u}: went away during the last attempt"))
        .collect();
    let mut last: Option<anyhow::Error> = None;
    for (i, c) in cands.iter().enumerate() {
        if skip.contains(&c.endpoint.url) {
            continue;
        }
        let docker = match try_one(c).await {
            Ok(d) => d,
            Err(e) if exit::code_for(&e) == exit::INVALID_INPUT => return Err(e),
            Err(e) => {
                ui.debug(&format!("manager {}: skipped: {e}", c.label()));
                skipped.push(format!("{}: {e}", c.label()));
                last = Some(e);
                continue;
            }
        };
        let chosen = prefer_leader(cands, i, docker, skip, ui).await;
        ui.debug(&format!(
            "manager {} answered{}",
            chosen.candidate.label(),
            if skipped.is_empty() {
                String::new()
            } else {
                format!(" (skipped: {})", skipped.join("; "))
            }
        ));
        return Ok(chosen);
    }
    match (cands.len(), last) {
        (1, Some(e)) => Err(e),
        _ => Err(anyhow::anyhow!(
            "no swarm manager answered (each had {}s):\n  {}",
            PING_TIMEOUT.as_secs(),
            skipped.join("\n  ")
        )),
    }
}

/// [`reach`] over the [`candidates`] of an environment (or of `--host`/`--lab` alone).
pub async fn reach_env(
    host: Option<&str>,
    env: Option<&Environment>,
    lab: Option<&Lab>,
    ui: &Ui,
) -> anyhow::Result<Reached> {
    reach(&candidates(host, env, lab)?, &[], ui).await
}

/// Connects within the candidate's timeout and checks it is a manager.
async fn try_one(c: &Candidate) -> anyhow::Result<Docker> {
    let docker = engine::connect_within(&c.endpoint, c.timeout()).await?;
    tokio::time::timeout(c.timeout(), engine::require_manager(&docker, &c.endpoint))
        .await
        .map_err(|_| anyhow::anyhow!("no swarm info within {}s", c.timeout().as_secs()))??;
    Ok(docker)
}

/// The leader when it is a candidate other than `i` and answers; else candidate `i`.
async fn prefer_leader(
    cands: &[Candidate],
    i: usize,
    docker: Docker,
    skip: &[String],
    ui: &Ui,
) -> Reached {
    let here = Reached {
        candidate: cands[i].clone(),
        docker,
    };
    if cands.len() == 1 {
        return here;
    }
    let managers = match engine::managers::list_managers(&here.docker).await {
        Ok(m) => m,
        Err(e) => {
            ui.debug(&format!(
                "no leader known ({e}); staying on {}",
                cands[i].name
            ));
            return here;
        }
    };
    let Some(leader) = managers.iter().find(|m| m.leader) else {
        ui.debug(&format!(
            "the swarm has no leader now; staying on {}",
            cands[i].name
        ));
        return here;
    };
    match leader_candidate(cands, &leader.address) {
        Some(j) if j == i => here,
        Some(j) if !skip.contains(&cands[j].endpoint.url) => match try_one(&cands[j]).await {
            Ok(d) => {
                ui.debug(&format!(
                    "{} is the leader: using it instead of {}",
                    cands[j].name, cands[i].name
                ));
                Reached {
                    candidate: cands[j].clone(),
                    docker: d,
                }
            }
            Err(e) => {
                ui.debug(&format!(
                    "the leader {} does not answer ({e})",
                    cands[j].name
                ));
                here
            }
        },
        _ => {
            ui.debug(&format!(
                "the leader {} ({}) is not among the managers twip knows; {} forwards writes to it",
                leader.name, leader.address, cands[i].name
            ));
            here
        }
    }
}

/// Whether an operation failed because the manager it talked to went away (refused, reset,
/// unreachable, no answer) rather than because the engine said no. Only transport errors count:
/// an engine's answer (a status code) never does, whatever its text says.
pub fn lost_manager(e: &anyhow::Error) -> bool {
    const LOST: [&str; 13] = [
        "client error (connect)",
        "client error (sendrequest)",
        "timeout error",
        "no answer within",
        "connection refused",
        "connection reset",
        "broken pipe",
        "no route to host",
        "host is unreachable",
        "error trying to connect",
        "connection closed",
        "timed out",
        "unexpected eof",
    ];
    let transport = |m: &str| {
        let m = m.to_ascii_lowercase();
        LOST.iter().any(|l| m.contains(l))
    };
    e.chain().any(|c| {
        c.downcast_ref::<EngineError>()
            .is_some_and(|ee| ee.status.is_none() && transport(&ee.message))
    }) || e.chain().any(|c| {
        let m = c.to_string();
        m.starts_with("cannot reach the Docker engine") && transport(&m)
    })
}

/// `e` with what "the swarm does not have a leader" means for an operator, when it says that.
pub fn explain_no_leader(e: anyhow::Error) -> anyhow::Error {
    if format!("{e:#}").contains("does not have a leader") {
        anyhow::anyhow!(
            "{e}\nthe swarm has no leader: an election is under way (seconds; try again), or fewer than a majority of its managers are reachable (`twip status` on another manager, or bring managers back)"
        )
    } else {
        e
    }
}

#[cfg(test)]
#[path = "managers_tests.rs"]
mod tests;
