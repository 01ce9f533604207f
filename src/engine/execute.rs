//! Executes a [`Plan`]: one API call per action, the actions of a phase concurrently, phases
//! in order. No decisions here beyond mechanics: config and secret names are resolved to the
//! IDs the API wants, and an update refused as "out of sequence" is retried on a fresh read.
//! Prints nothing: each finished action is an [`Event`] for the caller's sink.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use futures_util::future::join_all;

use super::api::SwarmApi;
use super::error::{EngineError, ErrorKind};
use super::events::{Event, Sink};
use super::model::{ConfigSpec, NetworkCreateRequest, SecretSpec, ServiceSpec};
use super::observe;
use crate::plan::{Action, Desired, Op, Plan, Resource};

pub async fn execute(
    docker: &dyn SwarmApi,
    plan: &Plan,
    desired: &Desired,
    sink: &mut dyn Sink,
) -> anyhow::Result<()> {
    let phases: Vec<u8> = {
        let mut p: Vec<u8> = plan.actions.iter().map(|a| a.phase).collect();
        p.dedup();
        p
    };
    for phase in phases {
        let ids = if phase == 1 {
            Some(object_ids(docker, &plan.stack).await?)
        } else {
            None
        };
        let actions: Vec<&Action> = plan.actions.iter().filter(|a| a.phase == phase).collect();
        let results = join_all(
            actions
                .iter()
                .map(|a| run(docker, a, desired, ids.as_ref())),
        )
        .await;
        // The engine's warnings come first (they arrived while the phase ran), then what
        // was done.
        for (a, r) in actions.iter().zip(&results) {
            for message in r.iter().flatten() {
                sink.emit(Event::Warning {
                    service: a.name.clone(),
                    message: message.clone(),
                });
            }
        }
        let mut errors = Vec::new();
        for (a, r) in actions.iter().zip(results) {
            match r {
                Ok(_) => sink.emit(Event::Applied {
                    op: a.op,
                    resource: a.resource,
                    name: a.name.clone(),
                }),
                Err(e) => errors.push(e),
            }
        }
        if let Some(first) = errors.into_iter().next() {
            return Err(first);
        }
    }
    Ok(())
}

/// What a finished action is called: `created`, `updated`, `scaled`, `removed`.
pub fn verb(op: Op) -> &'static str {
    match op {
        Op::Create => "created",
        Op::Update => "updated",
        Op::Scale => "scaled",
        Op::Remove => "removed",
    }
}

pub fn resource_name(r: Resource) -> &'static str {
    match r {
        Resource::Network => "network",
        Resource::Config => "config",
        Resource::Secret => "secret",
        Resource::Service => "service",
    }
}

struct Ids {
    configs: HashMap<String, String>,
    secrets: HashMap<String, String>,
}

/// Name → ID of every config and secret (the stack's and external ones).
async fn object_ids(docker: &dyn SwarmApi, _stack: &str) -> Result<Ids, EngineError> {
    let configs = docker.list_configs(None).await?;
    let secrets = docker.list_secrets(None).await?;
    Ok(Ids {
        configs: configs
            .into_iter()
            .filter_map(|c| Some((c.spec?.name?, c.id?)))
            .collect(),
        secrets: secrets
            .into_iter()
            .filter_map(|c| Some((c.spec?.name?, c.id?)))
            .collect(),
    })
}

/// Fills in the IDs of the configs and secrets SPEC names (what a service made outside a plan,
/// a one-off task, needs).
pub async fn resolve_object_ids(
    docker: &dyn SwarmApi,
    spec: &mut ServiceSpec,
) -> anyhow::Result<()> {
    fill_ids(spec, &object_ids(docker, "").await?)
}

fn fill_ids(spec: &mut ServiceSpec, ids: &Ids) -> anyhow::Result<()> {
    let Some(cs) = spec
        .task_template
        .as_mut()
        .and_then(|t| t.container_spec.as_mut())
    else {
        return Ok(());
    };
    for c in cs.configs.iter_mut().flatten() {
        let name = c.config_name.clone().unwrap_or_default();
        c.config_id = Some(
            ids.configs
                .get(&name)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("config `{name}` does not exist on the swarm"))?,
        );
    }
    for s in cs.secrets.iter_mut().flatten() {
        let name = s.secret_name.clone().unwrap_or_default();
        s.secret_id = Some(
            ids.secrets
                .get(&name)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("secret `{name}` does not exist on the swarm (external secrets must be created first)"))?,
        );
    }
    Ok(())
}

/// Carries out one action; returns the engine's warnings.
async fn run(
    docker: &dyn SwarmApi,
    a: &Action,
    desired: &Desired,
    ids: Option<&Ids>,
) -> anyhow::Result<Vec<String>> {
    match (a.resource, a.op) {
        (Resource::Network, Op::Create) => {
            let n = desired
                .networks
                .iter()
                .find(|n| n.name == a.name)
                .ok_or_else(|| anyhow::anyhow!("network {} is not desired", a.name))?;
            let req = NetworkCreateRequest {
                name: n.name.clone(),
                driver: Some(n.driver.clone()),
                attachable: Some(n.attachable),
                internal: Some(n.internal),
                labels: Some(n.labels.clone()),
                ..Default::default()
            };
            created(docker.create_network(req).await)
        }
        (Resource::Config, Op::Create) => {
            let c = wanted(&desired.configs, &a.name)?;
            let spec = ConfigSpec {
                name: Some(c.name.clone()),
                labels: Some(c.labels.clone()),
                data: Some(base64::engine::general_purpose::STANDARD.encode(&c.data)),
                ..Default::default()
            };
            created(docker.create_config(spec).await)
        }
        (Resource::Secret, Op::Create) => {
            let c = wanted(&desired.secrets, &a.name)?;
            let spec = SecretSpec {
                name: Some(c.name.clone()),
                labels: Some(c.labels.clone()),
                data: Some(base64::engine::general_purpose::STANDARD.encode(&c.data)),
                ..Default::default()
            };
            created(docker.create_secret(spec).await)
        }
        (Resource::Service, Op::Create) => {
            let mut spec = *a
                .spec
                .clone()
                .ok_or_else(|| anyhow::anyhow!("no spec for {}", a.name))?;
            if let Some(ids) = ids {
                fill_ids(&mut spec, ids)?;
            }
            docker.create_service(spec).await?;
            Ok(Vec::new())
        }
        (Resource::Service, Op::Update | Op::Scale) => {
            let mut spec = *a
                .spec
                .clone()
                .ok_or_else(|| anyhow::anyhow!("no spec for {}", a.name))?;
            if let Some(ids) = ids {
                fill_ids(&mut spec, ids)?;
            }
            let mut version = a.version.unwrap_or(0);
            for attempt in 0..3 {
                match docker.update_service(&a.name, spec.clone(), version).await {
                    Ok(warnings) => return Ok(warnings),
                    Err(e) if e.kind == ErrorKind::OutOfSequence && attempt < 2 => {
                        // Someone changed it since we read it: read again and keep its
                        // force-update counter.
                        let fresh = super::observe::inspect_service(docker, &a.name).await?;
                        version = fresh.version.and_then(|v| v.index).unwrap_or(version);
                        let force = fresh
                            .spec
                            .and_then(|s| s.task_template)
                            .and_then(|t| t.force_update);
                        if let Some(tt) = spec.task_template.as_mut() {
                            tt.force_update = force;
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(anyhow::anyhow!(
                "service {} kept changing while twip updated it; try again",
                a.name
            ))
        }
        (Resource::Service, Op::Remove) => match docker.remove_service(&a.name).await {
            Err(e) if e.kind == ErrorKind::NotFound => Ok(Vec::new()),
            r => r.map(|()| Vec::new()).map_err(Into::into),
        },
        (Resource::Config, Op::Remove) => {
            remove_retrying(docker, || docker.remove_config(&a.name)).await?;
            Ok(Vec::new())
        }
        (Resource::Secret, Op::Remove) => {
            remove_retrying(docker, || docker.remove_secret(&a.name)).await?;
            Ok(Vec::new())
        }
        (Resource::Network, Op::Remove) => {
            remove_retrying(docker, || docker.remove_network(&a.name)).await?;
            Ok(Vec::new())
        }
        (r, op) => Err(anyhow::anyhow!("no executor for {op:?} {r:?}")),
    }
}

/// A create that finds the object there already (a concurrent run made it) is fine.
fn created(r: Result<(), EngineError>) -> anyhow::Result<Vec<String>> {
    match r {
        Err(e) if e.kind == ErrorKind::AlreadyExists => Ok(Vec::new()),
        r => r.map(|()| Vec::new()).map_err(Into::into),
    }
}

/// The desired config or secret an action names.
fn wanted<'a>(
    list: &'a [crate::plan::desired::DesiredObject],
    name: &str,
) -> anyhow::Result<&'a crate::plan::desired::DesiredObject> {
    list.iter()
        .find(|c| c.name == name)
        .ok_or_else(|| anyhow::anyhow!("{name} is not in the desired state"))
}

/// Removing a config, secret or network that a task still uses fails until the task is gone:
/// retry for up to 60 seconds (of the engine's clock).
pub async fn remove_retrying<F, Fut>(api: &dyn SwarmApi, f: F) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), EngineError>>,
{
    let deadline = api.now() + Duration::from_secs(60);
    loop {
        match f().await {
            Ok(()) => return Ok(()),
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(()),
            Err(e)
                if api.now() < deadline
                    && matches!(e.kind, ErrorKind::Conflict | ErrorKind::Other) =>
            {
                api.sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Every service of the stack is gone and none of its containers runs any more.
pub async fn wait_services_gone(
    api: &dyn SwarmApi,
    stack: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = api.now() + timeout;
    let f = observe::namespace_filter(stack);
    loop {
        let obs = observe::observe(api, stack).await?;
        let running = api
            .running_containers(&f)
            .await
            .map_err(|e| e.during("list containers of stack", stack))?;
        if obs.services.is_empty() && running == 0 {
            return Ok(());
        }
        if api.now() > deadline {
            return Err(crate::exit::coded(
                crate::exit::TIMEOUT,
                format!(
                    "{stack}: {} services and {running} containers still there after {}s",
                    obs.services.len(),
                    timeout.as_secs()
                ),
            ));
        }
        api.sleep(Duration::from_millis(300)).await;
    }
}
