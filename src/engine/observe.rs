//! Reads what the engine holds for a stack into an [`Observed`] snapshot (by labels: no state
//! file), and a few other reads the commands share.
//!
//! Services and tasks are read as JSON by the API client's side of the seam
//! ([`super::api`]): bollard's model names a container spec's healthcheck `HealthCheck`, but
//! the engine sends `Healthcheck`, so a `Service` (or `Task`) bollard decodes never has one
//! (writes work: the engine matches keys without regard to case). The JSON is therefore
//! decoded here, with the key put right first.

use std::collections::HashMap;

use serde_json::Value;

use super::api::{Filters, SwarmApi};
use super::error::EngineError;
use super::model::{Service, Task};
use crate::plan::desired::LABEL_NAMESPACE;
use crate::plan::{Observed, ObservedObject, ObservedService};

pub fn namespace_filter(stack: &str) -> Filters {
    HashMap::from([(
        "label".to_string(),
        vec![format!("{LABEL_NAMESPACE}={stack}")],
    )])
}

pub async fn observe(api: &dyn SwarmApi, stack: &str) -> Result<Observed, EngineError> {
    let f = namespace_filter(stack);
    let (services, networks, all_networks, configs, secrets) = tokio::try_join!(
        list_services(api, &f, "list services of stack", stack),
        async {
            api.list_networks(Some(&f))
                .await
                .map_err(|e| e.during("list networks of stack", stack))
        },
        // Every network (a service's spec names its networks by ID, external ones too).
        api.list_networks(None),
        async {
            api.list_configs(Some(&f))
                .await
                .map_err(|e| e.during("list configs of stack", stack))
        },
        async {
            api.list_secrets(Some(&f))
                .await
                .map_err(|e| e.during("list secrets of stack", stack))
        },
    )?;
    let mut obs = Observed::default();
    for s in services {
        let Some(spec) = s.spec else { continue };
        obs.services.push(ObservedService {
            name: spec.name.clone().unwrap_or_default(),
            id: s.id.unwrap_or_default(),
            version: s.version.and_then(|v| v.index).unwrap_or(0),
            spec,
        });
    }
    for n in networks {
        obs.networks.push(ObservedObject {
            name: n.name.unwrap_or_default(),
            id: n.id.unwrap_or_default(),
        });
    }
    obs.network_names = all_networks
        .into_iter()
        .filter_map(|n| Some((n.id?, n.name?)))
        .collect();
    for c in configs {
        obs.configs.push(ObservedObject {
            name: c.spec.and_then(|s| s.name).unwrap_or_default(),
            id: c.id.unwrap_or_default(),
        });
    }
    for c in secrets {
        obs.secrets.push(ObservedObject {
            name: c.spec.and_then(|s| s.name).unwrap_or_default(),
            id: c.id.unwrap_or_default(),
        });
    }
    obs.services.sort_by(|a, b| a.name.cmp(&b.name));
    obs.retained = super::releases::retained_objects(api, stack).await?;
    obs.retained
        .extend(super::records::names(api, stack).await?);
    obs.retained
        .extend(super::requests::names(api, stack).await?);
    Ok(obs)
}

/// Tasks of one service (all states), each spec with its healthcheck.
pub async fn tasks(api: &dyn SwarmApi, service: &str) -> Result<Vec<Task>, EngineError> {
    api.list_tasks(service).await
}

/// The services matching FILTERS (as `GET /services`), each spec with its healthcheck.
pub async fn list_services(
    api: &dyn SwarmApi,
    filters: &Filters,
    op: &str,
    resource: &str,
) -> Result<Vec<Service>, EngineError> {
    api.list_services(filters)
        .await
        .map_err(|e| e.during(op, resource))
}

/// One service by name or ID (as `GET /services/{id}`), its spec with its healthcheck.
pub async fn inspect_service(api: &dyn SwarmApi, service: &str) -> Result<Service, EngineError> {
    api.inspect_service(service).await
}

/// The log of one task, as text chunks (`follow`: until the task ends or the stream is
/// dropped; `tail`: only the last N lines).
pub fn task_logs(
    docker: &super::Docker,
    task: &str,
    follow: bool,
    tail: Option<u64>,
) -> impl futures_util::Stream<Item = Result<String, EngineError>> + Send + 'static {
    use futures_util::StreamExt;
    let mut opts = bollard::query_parameters::LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .follow(follow);
    if let Some(n) = tail {
        opts = opts.tail(&n.to_string());
    }
    let task_id = task.to_string();
    docker
        .task_logs(task, Some(opts.build()))
        .map(move |r| match r {
            Ok(out) => Ok(out.to_string()),
            Err(e) => Err(EngineError::new("read logs of task", &task_id, e)),
        })
}

/// Decodes the engine's answer to `GET /services` (or `docker service inspect`'s output).
pub fn services_from_json(text: &str) -> Result<Vec<Service>, serde_json::Error> {
    let mut v: Value = serde_json::from_str(text)?;
    if let Value::Array(list) = &mut v {
        list.iter_mut()
            .for_each(|s| healthcheck_key(s, SERVICE_SPECS));
    }
    serde_json::from_value(v)
}

/// Decodes the engine's answer to `GET /tasks`.
pub fn tasks_from_json(text: &str) -> Result<Vec<Task>, serde_json::Error> {
    let mut v: Value = serde_json::from_str(text)?;
    if let Value::Array(list) = &mut v {
        list.iter_mut().for_each(|t| healthcheck_key(t, TASK_SPECS));
    }
    serde_json::from_value(v)
}

/// Decodes the engine's answer to `GET /services/{id}`.
pub fn service_from_json(text: &str) -> Result<Service, serde_json::Error> {
    let mut v: Value = serde_json::from_str(text)?;
    healthcheck_key(&mut v, SERVICE_SPECS);
    serde_json::from_value(v)
}

/// Where a service's container specs are (its spec and previous spec).
const SERVICE_SPECS: &[&str] = &[
    "/Spec/TaskTemplate/ContainerSpec",
    "/PreviousSpec/TaskTemplate/ContainerSpec",
];
/// Where a task's container spec is.
const TASK_SPECS: &[&str] = &["/Spec/ContainerSpec"];

/// Renames `Healthcheck` to bollard's `HealthCheck` in the container specs at POINTERS.
fn healthcheck_key(object: &mut Value, pointers: &[&str]) {
    for p in pointers {
        let Some(Value::Object(cs)) = object.pointer_mut(p) else {
            continue;
        };
        if !cs.contains_key("HealthCheck") {
            if let Some(h) = cs.remove("Healthcheck") {
                cs.insert("HealthCheck".to_string(), h);
            }
        }
    }
}

pub(super) fn decode_error(op: &str, resource: &str, e: &serde_json::Error) -> EngineError {
    EngineError::of(
        op,
        resource,
        super::error::ErrorKind::Other,
        None,
        &format!("unexpected answer from the engine: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/engine")
            .join(name);
        std::fs::read_to_string(path).unwrap()
    }

    fn healthcheck(s: &Service) -> Option<&bollard::models::HealthConfig> {
        s.spec
            .as_ref()?
            .task_template
            .as_ref()?
            .container_spec
            .as_ref()?
            .health_check
            .as_ref()
    }

    #[test]
    fn a_service_read_from_the_engine_has_its_healthcheck() {
        let text = fixture("services.json");
        // The capture holds the engine's key; bollard alone loses it.
        assert!(text.contains("\"Healthcheck\""));
        let plain: Vec<Service> = serde_json::from_str(&text).unwrap();
        assert_eq!(plain.len(), 2);
        assert!(plain.iter().all(|s| healthcheck(s).is_none()));

        let services = services_from_json(&text).unwrap();
        assert_eq!(services.len(), 2);
        let app = services
            .iter()
            .find(|s| s.spec.as_ref().and_then(|s| s.name.as_deref()) == Some("driftfixture_app"))
            .unwrap();
        let h = healthcheck(app).expect("the app's healthcheck");
        assert_eq!(h.test, Some(vec!["CMD".to_string(), "true".to_string()]));
        assert_eq!(h.interval, Some(2_000_000_000));
        assert_eq!(h.retries, Some(3));
        // Written back as bollard writes it, the healthcheck survives a round trip.
        let again: Service = serde_json::from_str(&serde_json::to_string(app).unwrap()).unwrap();
        assert_eq!(healthcheck(&again), Some(h));
    }

    #[test]
    fn one_service_read_from_the_engine_has_its_healthcheck() {
        let text = fixture("app-after-env.json");
        let list: Vec<Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(list.len(), 1);
        let one = serde_json::to_string(&list[0]).unwrap();
        let s = service_from_json(&one).unwrap();
        assert!(healthcheck(&s).is_some());
        let plain: Service = serde_json::from_str(&one).unwrap();
        assert!(healthcheck(&plain).is_none());
    }

    #[test]
    fn a_task_read_from_the_engine_has_its_healthcheck() {
        // A task as `GET /tasks` returns it (trimmed): its spec is a task template.
        let text = r#"[{"ID":"t1","Spec":{"ContainerSpec":{"Image":"x",
            "Healthcheck":{"Test":["CMD","true"],"Interval":2000000000}}}}]"#;
        let tasks = tasks_from_json(text).unwrap();
        assert_eq!(tasks.len(), 1);
        let h = tasks[0]
            .spec
            .as_ref()
            .and_then(|s| s.container_spec.as_ref())
            .and_then(|c| c.health_check.as_ref())
            .expect("the task's healthcheck");
        assert_eq!(h.interval, Some(2_000_000_000));
        let plain: Vec<bollard::models::Task> = serde_json::from_str(text).unwrap();
        let cs = plain[0].spec.as_ref().unwrap().container_spec.as_ref();
        assert!(cs.unwrap().health_check.is_none());
    }
}
