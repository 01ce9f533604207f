//! The data templates see: derived from a validated environment with every default applied,
//! so templates only loop and print. Serializable, deterministic (sorted maps, fixed order).

use std::collections::BTreeMap;

use crate::manifest::model::*;
use crate::manifest::validate::is_full_reference;
use crate::manifest::Environment;

pub mod agent;
mod proxy;
mod service;
mod tls;
mod types;
pub mod vip;

pub use proxy::{monitoring_ctx, proxy_ctx};
pub use tls::{
    route_redirects, runtime_api, tls_ctx, tls_secrets, RuntimeCtx, RuntimePart, TlsCtx, TlsSecret,
    CONTROL_NETWORK, HTTPS_LISTEN_PORT, RUNTIME_AGENT_SECRETS, RUNTIME_PROXY_SECRETS,
    RUNTIME_SECRETS, SECRETS_DIR,
};
pub use types::*;

use proxy::{monitoring_service, proxy_service};
use service::service_ctx;

pub use crate::labels::{
    ENV as LABEL_ENV, MANAGED as LABEL_MANAGED, PROJECT as LABEL_PROJECT, SERVICE as LABEL_SERVICE,
};

/// Where the proxy container listens (published on `proxy.port`).
pub const PROXY_LISTEN_PORT: u16 = 80;
pub const PROXY_CONFIG_PATH: &str = "/usr/local/etc/haproxy/haproxy.cfg";
pub const PROMETHEUS_CONFIG_PATH: &str = "/etc/prometheus/prometheus.yml";

/// The full reference an `image:` field deploys: an `images` entry resolved, or as written.
pub fn image_ref(env: &Environment, image: &str) -> String {
    let m = &env.manifest;
    let Some(img) = m.images.get(image) else {
        return image.to_string();
    };
    if let Some(r) = &img.reference {
        return r.clone();
    }
    let tag = img.tags.first().map_or("latest", |t| t.0.as_str());
    format!("{}:{tag}", image_repository(env, image))
}

/// The repository (without tag) of an `images` entry built by twip.
pub fn image_repository(env: &Environment, image: &str) -> String {
    let m = &env.manifest;
    let repo = m
        .images
        .get(image)
        .and_then(|i| i.repository.clone())
        .unwrap_or_else(|| {
            let ns = m
                .registry
                .as_ref()
                .and_then(|r| r.namespace.clone())
                .unwrap_or_else(|| env.project().to_string());
            format!("{ns}/{image}")
        });
    match &m.registry {
        Some(r) if !is_full_reference_with_host(&repo) => format!("{}/{repo}", r.url),
        _ => repo,
    }
}

fn is_full_reference_with_host(repo: &str) -> bool {
    repo.split('/').next().is_some_and(|first| {
        repo.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost")
    })
}

fn dur(d: Option<Duration>, default: u64) -> String {
    d.unwrap_or(Duration::secs(default)).compose()
}

fn ms(d: Duration) -> String {
    format!("{}ms", d.0.as_millis())
}

fn cpus(c: Cpus) -> String {
    let s = format!("{:.3}", c.0);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn memory(bytes: u64) -> String {
    for (unit, shift) in [("G", 30), ("M", 20), ("K", 10)] {
        if bytes >= 1 << shift && bytes % (1 << shift) == 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes}")
}

/// Inputs the stack needs from earlier renders and files: content hashes of configs.
pub struct ObjectNames {
    pub configs: Vec<FileObjCtx>,
    pub secrets: Vec<FileObjCtx>,
}

/// The template services of the manifest's jobs (no tasks; labelled with the job's name):
/// what their runs are made from. Not in `stack.yml`: only `twip up` deploys them.
pub fn job_ctxs(env: &Environment) -> Vec<ServiceCtx> {
    env.manifest
        .jobs
        .iter()
        .map(|(name, j)| {
            let mut ctx = service_ctx(env, name, &j.service());
            ctx.labels
                .insert(crate::labels::JOB.to_string(), name.clone());
            ctx
        })
        .collect()
}

pub fn stack_ctx(
    env: &Environment,
    objects: ObjectNames,
    proxy_key: Option<&str>,
    mon_key: Option<&str>,
    agent: Option<&agent::ServiceNeeds>,
) -> StackCtx {
    let m = &env.manifest;
    let mut services: Vec<ServiceCtx> = m
        .services
        .iter()
        .map(|(name, s)| service_ctx(env, name, s))
        .collect();
    if let (Some(p), Some(key)) = (&m.proxy, proxy_key) {
        services.push(proxy_service(env, p, key));
    }
    if let (Some(mon), Some(key)) = (m.monitoring.as_ref().filter(|x| x.enabled), mon_key) {
        services.push(monitoring_service(env, mon, key));
    }
    let vip = m.proxy.as_ref().filter(|_| proxy_key.is_some());
    if let Some((p, v)) = vip.and_then(|p| Some((p, p.vip.as_ref()?))) {
        services.push(vip::vip_service(env, p, v));
    }
    if let Some(needs) = agent {
        services.push(agent::agent_service(env, needs));
    }
    services.sort_by(|a, b| a.name.cmp(&b.name));
    let mut networks: Vec<NetworkCtx> = vec![];
    let default_cfg = m
        .networks
        .get("default")
        .cloned()
        .flatten()
        .unwrap_or_default();
    let net = |key: &str, n: &Network| NetworkCtx {
        key: key.to_string(),
        driver: n.driver.clone().unwrap_or_else(|| "overlay".into()),
        attachable: n.attachable.unwrap_or(true),
        internal: n.internal,
        external: n.external,
    };
    networks.push(net("default", &default_cfg));
    if vip.is_some_and(|p| p.vip.is_some()) {
        networks.push(vip::host_network());
    }
    if m.proxy.as_ref().is_some_and(runtime_api) && proxy_key.is_some() {
        networks.push(NetworkCtx {
            key: CONTROL_NETWORK.to_string(),
            driver: "overlay".into(),
            attachable: false,
            internal: true,
            external: false,
        });
    }
    for (k, n) in &m.networks {
        if k != "default" {
            networks.push(net(k, &n.clone().unwrap_or_default()));
        }
    }
    if let Some(needs) = agent {
        let declared: Vec<String> = networks.iter().map(|n| n.key.clone()).collect();
        networks.extend(agent::agent_networks(needs, &declared));
    }
    let volumes = m
        .volumes
        .iter()
        .map(|(k, v)| {
            let v = v.clone().unwrap_or_default();
            let mut labels: BTreeMap<String, String> = v
                .labels
                .iter()
                .map(|(a, b)| (a.clone(), b.0.clone()))
                .collect();
            labels.insert(LABEL_ENV.into(), env.name.clone());
            labels.insert(LABEL_MANAGED.into(), "true".into());
            labels.insert(LABEL_PROJECT.into(), env.project().into());
            VolumeCtx {
                key: k.clone(),
                driver: v.driver.clone(),
                driver_opts: v
                    .driver_opts
                    .iter()
                    .map(|(a, b)| (a.clone(), b.0.clone()))
                    .collect(),
                external: v.external,
                labels,
            }
        })
        .collect();
    StackCtx {
        env: env.name.clone(),
        stack: env.stack().to_string(),
        project: env.project().to_string(),
        source: env.file.display().to_string(),
        services,
        networks,
        volumes,
        configs: objects.configs,
        secrets: objects.secrets,
    }
}

/// `image:` values resolved for every service, including the proxy and monitoring.
pub fn full_reference(image: &str) -> bool {
    is_full_reference(image)
}
