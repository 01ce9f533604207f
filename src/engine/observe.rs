//! Reads what the engine holds for a stack into an [`Observed`] snapshot (by labels: no state
//! file), and a few other reads the commands share.

use std::collections::HashMap;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bollard::models::Service;
use bollard::query_parameters::{
    ListConfigsOptionsBuilder, ListNetworksOptionsBuilder, ListSecretsOptionsBuilder,
};
use bollard::Docker;
use serde_json::Value;

use super::error::{EngineError, EngineResult};
use crate::plan::desired::LABEL_NAMESPACE;
use crate::plan::{Observed, ObservedObject, ObservedService};

pub fn namespace_filter(stack: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_string(),
        vec![format!("{LABEL_NAMESPACE}={stack}")],
    )])
}

pub async fn observe(docker: &Docker, stack: &str) -> Result<Observed, EngineError> {
    let f = namespace_filter(stack);
    let (services, networks, all_networks, configs, secrets) = tokio::try_join!(
        list_services(docker, &f, "list services of stack", stack),
        async {
            docker
                .list_networks(Some(
                    ListNetworksOptionsBuilder::default().filters(&f).build(),
                ))
                .await
                .engine("list networks of stack", stack)
        },
        // Every network (a service's spec names its networks by ID, external ones too).
        async {
            docker
                .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
                .await
                .engine("list networks", "")
        },
        async {
            docker
                .list_configs(Some(
                    ListConfigsOptionsBuilder::default().filters(&f).build(),
                ))
                .await
                .engine("list configs of stack", stack)
        },
        async {
            docker
                .list_secrets(Some(
                    ListSecretsOptionsBuilder::default().filters(&f).build(),
                ))
                .await
                .engine("list secrets of stack", stack)
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
    obs.retained = super::releases::retained_objects(docker, stack).await?;
    Ok(obs)
}

/// Tasks of one service (all states), each spec with its healthcheck (see below).
pub async fn tasks(
    docker: &Docker,
    service: &str,
) -> Result<Vec<bollard::models::Task>, EngineError> {
    let op = "list tasks of service";
    let f = HashMap::from([("service".to_string(), vec![service.to_string()])]);
    let filters = serde_json::to_string(&f).unwrap_or_default();
    let body = get(docker, format!("/tasks?filters={}", query_escape(&filters)))
        .await
        .engine(op, service)?;
    tasks_from_json(&body).map_err(|e| decode_error(op, service, &e))
}

// Reading services and tasks. bollard's model names a container spec's healthcheck
// `HealthCheck`, but the engine sends `Healthcheck`, so a `Service` (or `Task`) bollard decodes
// never has one (writes work: the
// engine matches keys without regard to case). Services are therefore read here as JSON, the
// key is put right, and only then decoded into bollard's types.

/// The services matching FILTERS (as `GET /services`), each spec with its healthcheck.
pub async fn list_services(
    docker: &Docker,
    filters: &HashMap<String, Vec<String>>,
    op: &str,
    resource: &str,
) -> Result<Vec<Service>, EngineError> {
    let filters = serde_json::to_string(filters).unwrap_or_default();
    let body = get(
        docker,
        format!("/services?filters={}", query_escape(&filters)),
    )
    .await
    .engine(op, resource)?;
    services_from_json(&body).map_err(|e| decode_error(op, resource, &e))
}

/// One service by name or ID (as `GET /services/{id}`), its spec with its healthcheck.
pub async fn inspect_service(docker: &Docker, service: &str) -> Result<Service, EngineError> {
    let op = "inspect service";
    let body = get(docker, format!("/services/{}", query_escape(service)))
        .await
        .engine(op, service)?;
    service_from_json(&body).map_err(|e| decode_error(op, service, &e))
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
pub fn tasks_from_json(text: &str) -> Result<Vec<bollard::models::Task>, serde_json::Error> {
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

fn decode_error(op: &str, resource: &str, e: &serde_json::Error) -> EngineError {
    EngineError {
        op: op.to_string(),
        resource: resource.to_string(),
        kind: super::error::ErrorKind::Other,
        status: None,
        message: format!("unexpected answer from the engine: {e}"),
    }
}

/// GETs PATH_AND_QUERY (below the API version prefix) from the engine and returns the body.
/// bollard has no public raw request, so this sends its ping through the same client
/// (connection, TLS/SSH, API version, timeout, error handling) with the request's path
/// replaced.
async fn get(docker: &Docker, path_and_query: String) -> Result<String, bollard::errors::Error> {
    let rewritten = Arc::new(AtomicBool::new(false));
    let flag = rewritten.clone();
    let body = docker
        .clone()
        .with_request_modifier(move |mut req| {
            let uri = req.uri().to_string();
            if let Some(base) = uri.strip_suffix("/_ping") {
                if let Ok(u) = format!("{base}{path_and_query}").parse() {
                    *req.uri_mut() = u;
                    flag.store(true, Ordering::SeqCst);
                }
            }
            req
        })
        .ping()
        .await?;
    if !rewritten.load(Ordering::SeqCst) {
        return Err(bollard::errors::Error::IOError {
            err: std::io::Error::other("could not build the request to the engine"),
        });
    }
    Ok(body)
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
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

    #[test]
    fn query_escape_leaves_no_reserved_character() {
        assert_eq!(
            query_escape(r#"{"label":["a=b c"]}"#),
            "%7B%22label%22%3A%5B%22a%3Db%20c%22%5D%7D"
        );
        assert_eq!(query_escape("x_y-1.z~"), "x_y-1.z~");
    }
}
