//! The swarm side of `proxy.tls.acme`: the certificates' and the account's secrets (labelled
//! with the stack, so `twip down` removes them), which one the proxy serves (the label
//! [`labels::ACME_SERVED`] of the proxy service when the agent swapped it in live, else the
//! one its tasks mount), recording a live swap, the agent's own mount of the served one, and
//! the fallback delivery (the proxy's secret reference changed: a rolling update).

use std::collections::HashMap;

use base64::Engine as _;

use super::api::{Filters, SwarmApi};
use super::error::EngineError;
use super::model::SecretSpec;
use crate::labels;
use crate::manifest::validate::{AGENT_SERVICE, PROXY_SERVICE};
use crate::render::context::tls::{ACME_AGENT_TARGET, ACME_SECRET_TARGET};

/// A secret of the stack's ACME certificates or account, as listed (no data: the engine
/// never returns a secret's value).
#[derive(Debug, Clone, PartialEq)]
pub struct AcmeSecret {
    pub name: String,
    pub id: String,
    pub labels: HashMap<String, String>,
    /// When it was made (RFC 3339), for ordering.
    pub created: String,
}

impl AcmeSecret {
    pub fn label(&self, k: &str) -> Option<&str> {
        self.labels.get(k).map(String::as_str)
    }
}

/// The stack's secrets that carry label KEY (any value), oldest first.
pub async fn secrets_with(
    api: &dyn SwarmApi,
    stack: &str,
    key: &str,
) -> Result<Vec<AcmeSecret>, EngineError> {
    let filters: Filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{}={stack}", labels::NAMESPACE), key.to_string()],
    )]);
    let mut out: Vec<AcmeSecret> = api
        .list_secrets(Some(&filters))
        .await?
        .into_iter()
        .filter_map(|s| {
            let spec = s.spec?;
            let labels = spec.labels.unwrap_or_default();
            // The engine filters already; checked again (a fake or old engine may not).
            if labels.get(labels::NAMESPACE).map(String::as_str) != Some(stack)
                || !labels.contains_key(key)
            {
                return None;
            }
            Some(AcmeSecret {
                name: spec.name?,
                id: s.id.unwrap_or_default(),
                labels,
                created: s.created_at.unwrap_or_default(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
    Ok(out)
}

/// The stack's certificate secrets (placeholder and issued), oldest first.
pub async fn certificates(api: &dyn SwarmApi, stack: &str) -> Result<Vec<AcmeSecret>, EngineError> {
    secrets_with(api, stack, labels::ACME_CERT).await
}

/// Makes a secret NAME holding DATA with LABELS (the stack's labels are the caller's).
pub async fn create(
    api: &dyn SwarmApi,
    name: &str,
    data: &[u8],
    labels: HashMap<String, String>,
) -> Result<(), EngineError> {
    let spec = SecretSpec {
        name: Some(name.to_string()),
        labels: Some(labels),
        data: Some(base64::engine::general_purpose::STANDARD.encode(data)),
        ..Default::default()
    };
    api.create_secret(spec).await
}

/// The secret reference at file TARGET of a service's task template.
fn mounted_at(svc: &super::model::Service, target: &str) -> Option<String> {
    super::model::secret_at(svc.spec.as_ref()?, target)?
        .secret_name
        .clone()
}

/// The stack's proxy service, if it exists.
async fn proxy_service(
    api: &dyn SwarmApi,
    stack: &str,
) -> Result<Option<super::model::Service>, EngineError> {
    match api
        .inspect_service(&format!("{stack}_{PROXY_SERVICE}"))
        .await
    {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind == super::error::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The name of the secret the proxy's tasks mount as their ACME certificate (what a task
/// swarm starts loads), if any.
pub async fn mounted(api: &dyn SwarmApi, stack: &str) -> Result<Option<String>, EngineError> {
    Ok(proxy_service(api, stack)
        .await?
        .and_then(|s| mounted_at(&s, ACME_SECRET_TARGET)))
}

/// The name of the ACME certificate's secret the proxies serve: the one the agent swapped in
/// live (the proxy service's label [`labels::ACME_SERVED`]), else the one they mount.
pub async fn served(api: &dyn SwarmApi, stack: &str) -> Result<Option<String>, EngineError> {
    let Some(svc) = proxy_service(api, stack).await? else {
        return Ok(None);
    };
    let label = svc
        .spec
        .as_ref()
        .and_then(|s| s.labels.as_ref())
        .and_then(|l| l.get(labels::ACME_SERVED))
        .filter(|v| !v.is_empty())
        .cloned();
    Ok(label.or_else(|| mounted_at(&svc, ACME_SECRET_TARGET)))
}

/// Records that the proxies serve SECRET (swapped in live): the proxy service's label
/// [`labels::ACME_SERVED`], a change of the service, not of its task template, so swarm
/// replaces no task. Returns whether the service was changed.
pub async fn mark_served(
    api: &dyn SwarmApi,
    stack: &str,
    secret: &AcmeSecret,
) -> Result<bool, EngineError> {
    let proxy = format!("{stack}_{PROXY_SERVICE}");
    let svc = api.inspect_service(&proxy).await?;
    let version = svc.version.and_then(|v| v.index).unwrap_or(0);
    let Some(mut spec) = svc.spec else {
        return Ok(false);
    };
    let l = spec.labels.get_or_insert_with(Default::default);
    if l.get(labels::ACME_SERVED) == Some(&secret.name) {
        return Ok(false);
    }
    l.insert(labels::ACME_SERVED.to_string(), secret.name.clone());
    api.update_service(&proxy, spec, version).await?;
    Ok(true)
}

/// Re-points the secret reference at file TARGET of SERVICE to SECRET (a new task template:
/// swarm replaces the service's tasks). Returns whether the service was changed (false: it
/// already mounts it, or has no reference there).
async fn repoint(
    api: &dyn SwarmApi,
    service: &str,
    target: &str,
    secret: &AcmeSecret,
    served_label: bool,
) -> Result<bool, EngineError> {
    let svc = api.inspect_service(service).await?;
    let version = svc.version.and_then(|v| v.index).unwrap_or(0);
    let Some(mut spec) = svc.spec else {
        return Ok(false);
    };
    let changed = super::model::point_secret_at(&mut spec, target, &secret.name, Some(&secret.id));
    if changed {
        if served_label {
            spec.labels
                .get_or_insert_with(Default::default)
                .insert(labels::ACME_SERVED.to_string(), secret.name.clone());
        }
        api.update_service(service, spec, version).await?;
    }
    Ok(changed)
}

/// Delivers a certificate by a rolling update (the fallback when it cannot be swapped live):
/// the proxy service mounts SECRET (name, id) as its ACME certificate from now on (and its
/// label [`labels::ACME_SERVED`] names it), which swarm rolls out as an update of the
/// proxy's tasks. Returns whether the service was changed (false: it already mounts it).
pub async fn deliver(
    api: &dyn SwarmApi,
    stack: &str,
    secret: &AcmeSecret,
) -> Result<bool, EngineError> {
    let proxy = format!("{stack}_{PROXY_SERVICE}");
    repoint(api, &proxy, ACME_SECRET_TARGET, secret, true).await
}

/// The agent's service mounts SECRET at [`ACME_AGENT_TARGET`] from now on: after the restart
/// this causes (stop-first, the agent's own update), the agent holds the served certificate's
/// data (the engine never returns a secret's value) and swaps it into proxy tasks swarm starts
/// later. Returns whether the service was changed (false: it mounts it already, or mounts
/// nothing there).
pub async fn mount_in_agent(
    api: &dyn SwarmApi,
    stack: &str,
    secret: &AcmeSecret,
) -> Result<bool, EngineError> {
    let agent = format!("{stack}_{AGENT_SERVICE}");
    match repoint(api, &agent, ACME_AGENT_TARGET, secret, false).await {
        Err(e) if e.kind == super::error::ErrorKind::NotFound => Ok(false),
        other => other,
    }
}

/// Removes the stack's certificate secrets other than KEEP; one still in use (by a task not
/// yet replaced) stays for a later round. Returns how many were removed.
pub async fn prune(api: &dyn SwarmApi, stack: &str, keep: &[&str]) -> usize {
    let Ok(all) = certificates(api, stack).await else {
        return 0;
    };
    let mut n = 0;
    for s in all.iter().filter(|s| !keep.contains(&s.name.as_str())) {
        if api.remove_secret(&s.name).await.is_ok() {
            n += 1;
        }
    }
    n
}
