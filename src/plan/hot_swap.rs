//! Certificates swapped live instead of a rolling update of the proxy.
//!
//! A changed certificate file is a new secret (named by its content), so the proxy's spec
//! changes and swarm would replace its tasks; a proxy that publishes in host mode is stopped
//! before its successor binds the port, and connections are refused meanwhile. When the stack
//! runs the agent (which swaps certificates through HAProxy's runtime API,
//! `agent::hot_swap`), and the certificates' secrets are the *only* difference in the proxy's
//! spec, the update sent keeps the proxy's tasks as they are (the secrets it mounts
//! unchanged) and only records the desired certificates' secret names in a service label
//! ([`TLS_HOT_SWAP`]): a label of the service, not of its tasks, so swarm restarts nothing.
//! The agent mounts the new secrets (its own spec changes, it restarts) and swaps them in.

use crate::engine::model::ServiceSpec;
use crate::labels::TLS_HOT_SWAP;
use crate::manifest::validate::PROXY_SERVICE;

use super::{DesiredService, ObservedService};

/// The agent's short service name: a stack that has it gets hot swaps.
pub use crate::manifest::validate::AGENT_SERVICE;
/// The cause the plan prints for a hot swap.
pub const CAUSE: &str = "certificates: hot swap by the agent";

/// The proxy's certificate secrets: (file name in the container, secret name), by file name.
fn tls_refs(spec: &ServiceSpec) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = secrets(spec)
        .iter()
        .filter_map(|s| {
            let target = s.file.as_ref()?.name.clone()?;
            is_certificate(&target).then(|| (target, s.secret_name.clone().unwrap_or_default()))
        })
        .collect();
    out.sort();
    out
}

/// A certificate file of `proxy.tls.certificates` (the ACME certificate is the certificates
/// controller's: `twip up` keeps what the proxy mounts, `desired::adopt_acme`).
fn is_certificate(target: &str) -> bool {
    target.starts_with("tls-") && target != crate::render::context::tls::ACME_SECRET_TARGET
}

fn secrets(spec: &ServiceSpec) -> &[crate::engine::model::TaskSpecContainerSpecSecrets] {
    spec.task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.secrets.as_deref())
        .unwrap_or(&[])
}

/// The spec to send to the proxy so that its certificates are swapped live: `spec` (what a
/// normal update would send) with the certificate secrets the proxy mounts now, and the
/// desired ones named in [`TLS_HOT_SWAP`]. `None` when `d` is not the proxy, or when the set
/// of certificate files differs (a new SNI name needs a new proxy config: a rolling update).
/// Whether the candidate differs from what runs in nothing else is the caller's check.
pub fn candidate(
    d: &DesiredService,
    o: &ObservedService,
    spec: &ServiceSpec,
) -> Option<ServiceSpec> {
    if d.short != PROXY_SERVICE {
        return None;
    }
    let want = tls_refs(spec);
    let have = tls_refs(&o.spec);
    let targets = |v: &[(String, String)]| v.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>();
    if want.is_empty() || targets(&want) != targets(&have) {
        return None;
    }
    let mut c = spec.clone();
    let observed: Vec<_> = secrets(&o.spec)
        .iter()
        .filter(|s| {
            s.file
                .as_ref()
                .and_then(|f| f.name.as_deref())
                .is_some_and(is_certificate)
        })
        .cloned()
        .collect();
    let cs = c.task_template.as_mut()?.container_spec.as_mut()?;
    let mut refs: Vec<_> = cs
        .secrets
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|s| {
            !s.file
                .as_ref()
                .and_then(|f| f.name.as_deref())
                .is_some_and(is_certificate)
        })
        .collect();
    refs.extend(observed);
    refs.sort_by(|a, b| {
        let name = |s: &crate::engine::model::TaskSpecContainerSpecSecrets| {
            s.file.as_ref().and_then(|f| f.name.clone())
        };
        name(a).cmp(&name(b))
    });
    cs.secrets = Some(refs);
    let names: Vec<String> = want.into_iter().map(|(_, n)| n).collect();
    c.labels
        .get_or_insert_with(Default::default)
        .insert(TLS_HOT_SWAP.to_string(), names.join(","));
    Some(c)
}

/// The secret names a spec refers to (kept while a hot-swapped proxy still mounts them).
pub fn secret_names(spec: &ServiceSpec) -> Vec<String> {
    secrets(spec)
        .iter()
        .filter_map(|s| s.secret_name.clone())
        .collect()
}
