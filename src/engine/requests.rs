//! Requests to the in-cluster agent: `twip certs renew ENV` with an agent running asks the
//! agent to run a controller's round now, instead of running it itself. A request is one swarm
//! config of the stack, `STACK_req_CONTROLLER_ID` (the id: microseconds, 16 hex digits),
//! labelled with the stack's namespace, `io.twip.request=CONTROLLER` and
//! `io.twip.request.id=ID`, holding a [`Request`] as JSON (what to do: the controller, force
//! yes/no; never a secret).
//!
//! Bounded: [`ask`] removes the controller's earlier requests before it writes its own (the
//! CLI asks under the stack's deploy lock, so an earlier one was left by a CLI that stopped
//! before it could remove it), so at most one is pending per controller; the agent removes a
//! request once it has recorded the round's outcome (a [`super::records::Record`] that carries
//! the request's id), and drops one older than [`MAX_AGE`] unanswered. A plan keeps them (see
//! [`names`]); `twip down` removes them with the rest of the stack.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::api::SwarmApi;
use super::error::EngineError;
use super::model::ConfigSpec;
use crate::labels::{MANAGED, NAMESPACE, REQUEST, REQUEST_ID};

/// A request older than this is dropped by the agent unanswered (its CLI gave up long ago).
pub const MAX_AGE: Duration = Duration::from_secs(15 * 60);

/// What a request asks of a controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The controller asked (`certificates`).
    pub controller: String,
    /// Its id (16 hex digits): the record of the round that answers it carries it.
    pub id: String,
    /// Whether the round acts even when nothing is due (`--force`).
    #[serde(default)]
    pub force: bool,
    /// When it was made, in Unix seconds.
    pub at: u64,
}

impl Request {
    /// A new request to CONTROLLER, with a fresh id.
    pub fn new(controller: &str, force: bool) -> Request {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Request {
            controller: controller.to_string(),
            id: format!("{:016x}", now.as_micros() as u64),
            force,
            at: now.as_secs(),
        }
    }

    /// Whether it is older than [`MAX_AGE`] at NOW (Unix seconds).
    pub fn stale(&self, now: u64) -> bool {
        now.saturating_sub(self.at) > MAX_AGE.as_secs()
    }
}

/// A request as found in the swarm: its config's name and what it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub name: String,
    pub request: Request,
}

fn filters(stack: &str, controller: Option<&str>) -> HashMap<String, Vec<String>> {
    let request = match controller {
        Some(c) => format!("{REQUEST}={c}"),
        None => REQUEST.to_string(),
    };
    HashMap::from([(
        "label".to_string(),
        vec![format!("{NAMESPACE}={stack}"), request],
    )])
}

/// The engine's longest config name.
const MAX_NAME: usize = 64;

/// `STACK_req_CONTROLLER_ID`, the stack's name cut to fit.
fn config_name(stack: &str, r: &Request) -> String {
    let safe: String = r
        .controller
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let id: String =
        r.id.chars()
            .filter(char::is_ascii_alphanumeric)
            .take(16)
            .collect();
    let tail = format!("_req_{safe}_{id}");
    let room = MAX_NAME.saturating_sub(tail.len());
    let head: String = stack.chars().take(room).collect();
    format!("{head}{tail}")
}

/// Writes R as STACK's one pending request to its controller: the controller's earlier
/// requests are removed first. Returns the config's name.
pub async fn ask(api: &dyn SwarmApi, stack: &str, r: &Request) -> Result<String, EngineError> {
    for old in list(api, stack, Some(&r.controller)).await? {
        let _ = api.remove_config(&old.name).await;
    }
    let name = config_name(stack, r);
    let labels = HashMap::from([
        (NAMESPACE.to_string(), stack.to_string()),
        (MANAGED.to_string(), "true".to_string()),
        (REQUEST.to_string(), r.controller.clone()),
        (REQUEST_ID.to_string(), r.id.clone()),
    ]);
    api.create_config(ConfigSpec {
        name: Some(name.clone()),
        labels: Some(labels),
        data: Some(
            base64::engine::general_purpose::STANDARD
                .encode(serde_json::to_vec(r).unwrap_or_default()),
        ),
        ..Default::default()
    })
    .await
    .map_err(|e| e.during("write the request to", &r.controller))?;
    Ok(name)
}

/// STACK's pending requests (to CONTROLLER, or to any), oldest first. A config whose content
/// is not a request is listed with an empty controller, so that it can be removed.
pub async fn list(
    api: &dyn SwarmApi,
    stack: &str,
    controller: Option<&str>,
) -> Result<Vec<Pending>, EngineError> {
    let configs = api
        .list_configs(Some(&filters(stack, controller)))
        .await
        .map_err(|e| e.during("list the agent's requests of stack", stack))?;
    let mut out: Vec<Pending> = configs
        .into_iter()
        .filter_map(|c| {
            let spec = c.spec?;
            let name = spec.name?;
            let request = spec
                .data
                .as_deref()
                .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
                .and_then(|d| serde_json::from_slice::<Request>(&d).ok())
                .unwrap_or(Request {
                    controller: String::new(),
                    id: String::new(),
                    force: false,
                    at: 0,
                });
            Some(Pending { name, request })
        })
        .collect();
    out.sort_by(|a, b| (a.request.at, &a.name).cmp(&(b.request.at, &b.name)));
    Ok(out)
}

/// Removes a request (answered, stale or given up); one already gone is no error.
pub async fn remove(api: &dyn SwarmApi, name: &str) -> Result<(), EngineError> {
    match api.remove_config(name).await {
        Err(e) if e.kind != super::error::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Names of STACK's request configs: a plan keeps them (`up` does not remove a pending one).
pub async fn names(api: &dyn SwarmApi, stack: &str) -> Result<BTreeSet<String>, EngineError> {
    Ok(list(api, stack, None)
        .await?
        .into_iter()
        .map(|p| p.name)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fake::FakeSwarm;

    fn req(controller: &str, id: &str, at: u64) -> Request {
        Request {
            controller: controller.into(),
            id: id.into(),
            force: true,
            at,
        }
    }

    #[tokio::test]
    async fn a_request_replaces_the_earlier_one_of_its_controller_only() {
        let fake = FakeSwarm::new();
        ask(&fake, "demo", &req("certificates", "01", 1))
            .await
            .unwrap();
        ask(&fake, "demo", &req("jobs", "02", 2)).await.unwrap();
        ask(&fake, "other", &req("certificates", "03", 3))
            .await
            .unwrap();
        let name = ask(&fake, "demo", &req("certificates", "04", 4))
            .await
            .unwrap();
        assert_eq!(name, "demo_req_certificates_04");
        let got: Vec<Request> = list(&fake, "demo", None)
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.request)
            .collect();
        assert_eq!(got, [req("jobs", "02", 2), req("certificates", "04", 4)]);
        let mine = list(&fake, "demo", Some("certificates")).await.unwrap();
        assert_eq!(mine.len(), 1);
        remove(&fake, &mine[0].name).await.unwrap();
        // Gone already: no error.
        remove(&fake, &mine[0].name).await.unwrap();
        assert_eq!(names(&fake, "demo").await.unwrap().len(), 1);
        assert_eq!(names(&fake, "other").await.unwrap().len(), 1);
    }

    #[test]
    fn names_fit_and_requests_age() {
        let r = Request::new("certificates", false);
        assert_eq!(r.id.len(), 16);
        let name = config_name(&"s".repeat(80), &r);
        assert_eq!(name.len(), MAX_NAME);
        assert!(name.ends_with(&format!("_req_certificates_{}", r.id)));
        assert!(!r.stale(r.at + MAX_AGE.as_secs()));
        assert!(r.stale(r.at + MAX_AGE.as_secs() + 1));
        // A clock behind the request's is not staleness.
        assert!(!r.stale(0));
    }
}
