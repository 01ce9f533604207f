//! Executes a [`Plan`]: one API call per action, the actions of a phase concurrently, phases
//! in order. No decisions here beyond mechanics: config and secret names are resolved to the
//! IDs the API wants, and an update refused as "out of sequence" is retried on a fresh read.

use std::collections::HashMap;

use base64::Engine as _;
use bollard::models::{ConfigSpec, NetworkCreateRequest, SecretSpec, ServiceSpec};
use bollard::query_parameters::UpdateServiceOptionsBuilder;
use bollard::Docker;
use futures_util::future::join_all;

use super::error::{EngineError, EngineResult, ErrorKind};
use super::observe;
use crate::plan::{Action, Desired, Op, Plan, Resource};
use crate::ui::Ui;

pub async fn execute(
    docker: &Docker,
    plan: &Plan,
    desired: &Desired,
    ui: &Ui,
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
        let mut errors = Vec::new();
        for (a, r) in actions.iter().zip(results) {
            match r {
                Ok(()) => ui.ok(&format!(
                    "{} {} {}",
                    verb(a.op),
                    resource_name(a.resource),
                    a.name
                )),
                Err(e) => errors.push(e),
            }
        }
        if let Some(first) = errors.into_iter().next() {
            return Err(first);
        }
    }
    Ok(())
}

fn verb(op: Op) -> &'static str {
    match op {
        Op::Create => "created",
        Op::Update => "updated",
        Op::Scale => "scaled",
        Op::Remove => "removed",
    }
}

fn resource_name(r: Resource) -> &'static str {
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
async fn object_ids(docker: &Docker, _stack: &str) -> Result<Ids, EngineError> {
    let configs = docker.list_configs(None).await.engine("list configs", "")?;
    let secrets = docker.list_secrets(None).await.engine("list secrets", "")?;
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

async fn run(
    docker: &Docker,
    a: &Action,
    desired: &Desired,
    ids: Option<&Ids>,
) -> anyhow::Result<()> {
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
            created(
                docker
                    .create_network(req)
                    .await
                    .engine("create network", &a.name),
            )
        }
        (Resource::Config, Op::Create) => {
            let c = wanted(&desired.configs, &a.name)?;
            let spec = ConfigSpec {
                name: Some(c.name.clone()),
                labels: Some(c.labels.clone()),
                data: Some(base64::engine::general_purpose::STANDARD.encode(&c.data)),
                ..Default::default()
            };
            created(
                docker
                    .create_config(spec)
                    .await
                    .engine("create config", &a.name),
            )
        }
        (Resource::Secret, Op::Create) => {
            let c = wanted(&desired.secrets, &a.name)?;
            let spec = SecretSpec {
                name: Some(c.name.clone()),
                labels: Some(c.labels.clone()),
                data: Some(base64::engine::general_purpose::STANDARD.encode(&c.data)),
                ..Default::default()
            };
            created(
                docker
                    .create_secret(spec)
                    .await
                    .engine("create secret", &a.name),
            )
        }
        (Resource::Service, Op::Create) => {
            let mut spec = *a
                .spec
                .clone()
                .ok_or_else(|| anyhow::anyhow!("no spec for {}", a.name))?;
            if let Some(ids) = ids {
                fill_ids(&mut spec, ids)?;
            }
            docker
                .create_service(spec, None)
                .await
                .engine("create service", &a.name)?;
            Ok(())
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
                let opts = UpdateServiceOptionsBuilder::default()
                    .version(version as i32)
                    .build();
                match docker
                    .update_service(&a.name, spec.clone(), opts, None)
                    .await
                    .engine("update service", &a.name)
                {
                    Ok(resp) => {
                        if let Some(w) = resp.warnings.filter(|w| !w.is_empty()) {
                            for w in w {
                                eprintln!(
                                    "warning: {}",
                                    crate::ui::clean(&format!("{}: {w}", a.name))
                                );
                            }
                        }
                        return Ok(());
                    }
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
        (Resource::Service, Op::Remove) => match docker
            .delete_service(&a.name)
            .await
            .engine("remove service", &a.name)
        {
            Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
            r => r.map_err(Into::into),
        },
        (Resource::Config, Op::Remove) => {
            remove_retrying(|| async {
                docker
                    .delete_config(&a.name)
                    .await
                    .engine("remove config", &a.name)
            })
            .await
        }
        (Resource::Secret, Op::Remove) => {
            remove_retrying(|| async {
                docker
                    .delete_secret(&a.name)
                    .await
                    .engine("remove secret", &a.name)
            })
            .await
        }
        (Resource::Network, Op::Remove) => {
            remove_retrying(|| async {
                docker
                    .remove_network(&a.name)
                    .await
                    .engine("remove network", &a.name)
            })
            .await
        }
        (r, op) => Err(anyhow::anyhow!("no executor for {op:?} {r:?}")),
    }
}

/// A create that finds the object there already (a concurrent run made it) is fine.
fn created<T>(r: Result<T, EngineError>) -> anyhow::Result<()> {
    match r {
        Err(e) if e.kind == ErrorKind::AlreadyExists => Ok(()),
        r => r.map(|_| ()).map_err(Into::into),
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
/// retry for up to 60 seconds.
pub async fn remove_retrying<F, Fut>(f: F) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), EngineError>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match f().await {
            Ok(()) => return Ok(()),
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(()),
            Err(e)
                if std::time::Instant::now() < deadline
                    && matches!(e.kind, ErrorKind::Conflict | ErrorKind::Other) =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Everything of the stack is gone (services first, then what they used).
pub async fn wait_services_gone(
    docker: &Docker,
    stack: &str,
    timeout: std::time::Duration,
) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let obs = observe::observe(docker, stack).await?;
        let f = observe::namespace_filter(stack);
        let containers = docker
            .list_containers(Some(
                bollard::query_parameters::ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&f)
                    .build(),
            ))
            .await
            .engine("list containers of stack", stack)?;
        let running = containers
            .iter()
            .filter(|c| c.state.as_ref().map(|s| s.to_string()) == Some("running".into()))
            .count();
        if obs.services.is_empty() && running == 0 {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(crate::exit::coded(
                crate::exit::TIMEOUT,
                format!(
                    "{stack}: {} services and {running} containers still there after {}s",
                    obs.services.len(),
                    timeout.as_secs()
                ),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}
