//! The swarm side of `proxy.tls.acme`: the certificates' and the account's secrets (labelled
//! with the stack, so `twip down` removes them), which one the proxy serves, and delivering a
//! new one to the proxy (its secret reference changed: a rolling update of the proxy).

use std::collections::HashMap;

use base64::Engine as _;

use super::api::{Filters, SwarmApi};
use super::error::EngineError;
use super::model::SecretSpec;
use crate::labels;
use crate::manifest::validate::PROXY_SERVICE;
use crate::render::context::tls::ACME_SECRET_TARGET;

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

/// The name of the secret the proxy service mounts as its ACME certificate, if any.
pub async fn served(api: &dyn SwarmApi, stack: &str) -> Result<Option<String>, EngineError> {
    let proxy = format!("{stack}_{PROXY_SERVICE}");
    let svc = match api.inspect_service(&proxy).await {
        Ok(s) => s,
        Err(e) if e.kind == super::error::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(svc
        .spec
        .and_then(|s| s.task_template)
        .and_then(|t| t.container_spec)
        .and_then(|c| c.secrets)
        .unwrap_or_default()
        .into_iter()
        .find(|r| r.file.as_ref().and_then(|f| f.name.as_deref()) == Some(ACME_SECRET_TARGET))
        .and_then(|r| r.secret_name))
}

/// Delivers a certificate: the proxy service mounts SECRET (name, id) as its ACME certificate
/// from now on, which swarm rolls out as an update of the proxy's tasks. Returns whether the
/// service was changed (false: it already mounts it).
pub async fn deliver(
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
    let mut changed = false;
    let refs = spec
        .task_template
        .as_mut()
        .and_then(|t| t.container_spec.as_mut())
        .and_then(|c| c.secrets.as_mut());
    for r in refs.into_iter().flatten() {
        if r.file.as_ref().and_then(|f| f.name.as_deref()) == Some(ACME_SECRET_TARGET)
            && r.secret_name.as_deref() != Some(secret.name.as_str())
        {
            r.secret_name = Some(secret.name.clone());
            r.secret_id = Some(secret.id.clone());
            changed = true;
        }
    }
    if changed {
        api.update_service(&proxy, spec, version).await?;
    }
    Ok(changed)
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
