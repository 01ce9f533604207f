//! The narrow seam between twip's lifecycle and a swarm: exactly the calls that observing,
//! executing a plan, waiting for convergence, recording releases, rolling back and taking a
//! stack down need. [`SwarmApi`] is implemented for the Engine API client ([`Docker`]) here and
//! for an in-memory swarm in [`super::fake`], so the lifecycle can be tested without a daemon.
//!
//! The engine's clock is part of the seam ([`SwarmApi::now`], [`SwarmApi::sleep`]): waits and
//! retries run on it, so a fake can let time pass without anyone sleeping.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bollard::query_parameters::{
    ListConfigsOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    ListSecretsOptionsBuilder, ListVolumesOptionsBuilder, LogsOptionsBuilder,
    RemoveVolumeOptionsBuilder, UpdateServiceOptionsBuilder,
};
use bollard::Docker;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;

use super::error::{EngineError, EngineResult};
use super::model::{
    Config, ConfigSpec, Network, NetworkCreateRequest, Secret, SecretSpec, Service, ServiceSpec,
    SystemInfo, Task, Volume,
};
use super::observe::{decode_error, service_from_json, services_from_json, tasks_from_json};

/// Engine API list filters: `{"label": ["k=v"], "service": ["name"]}`.
pub type Filters = HashMap<String, Vec<String>>;

/// What the lifecycle asks of a swarm manager. Errors are classified [`EngineError`]s, so
/// callers branch on their kind (not found, already exists, out of sequence, ...).
#[async_trait]
pub trait SwarmApi: Send + Sync {
    /// The engine's system info (its swarm state says whether it is a manager).
    async fn info(&self) -> Result<SystemInfo, EngineError>;

    /// Services matching FILTERS, each spec with its healthcheck.
    async fn list_services(&self, filters: &Filters) -> Result<Vec<Service>, EngineError>;
    /// One service by name or ID.
    async fn inspect_service(&self, name: &str) -> Result<Service, EngineError>;
    async fn create_service(&self, spec: ServiceSpec) -> Result<(), EngineError>;
    /// Updates a service read at VERSION; a stale version is refused as out of sequence.
    /// Returns the engine's warnings.
    async fn update_service(
        &self,
        name: &str,
        spec: ServiceSpec,
        version: u64,
    ) -> Result<Vec<String>, EngineError>;
    async fn remove_service(&self, name: &str) -> Result<(), EngineError>;
    /// Every task of one service (all states).
    async fn list_tasks(&self, service: &str) -> Result<Vec<Task>, EngineError>;
    /// The last N lines a service's tasks wrote (best effort: none on error).
    async fn service_logs(&self, service: &str, n: usize) -> Vec<String>;
    /// One task's log from its start, followed until the task ends (stdout and stderr, as
    /// text chunks that need not end at a line break).
    fn follow_task_logs(&self, task: &str) -> BoxStream<'static, Result<String, EngineError>>;

    async fn list_networks(&self, filters: Option<&Filters>) -> Result<Vec<Network>, EngineError>;
    async fn create_network(&self, req: NetworkCreateRequest) -> Result<(), EngineError>;
    async fn remove_network(&self, name: &str) -> Result<(), EngineError>;

    async fn list_configs(&self, filters: Option<&Filters>) -> Result<Vec<Config>, EngineError>;
    async fn create_config(&self, spec: ConfigSpec) -> Result<(), EngineError>;
    async fn remove_config(&self, name: &str) -> Result<(), EngineError>;

    async fn list_secrets(&self, filters: Option<&Filters>) -> Result<Vec<Secret>, EngineError>;
    async fn create_secret(&self, spec: SecretSpec) -> Result<(), EngineError>;
    async fn remove_secret(&self, name: &str) -> Result<(), EngineError>;

    async fn list_volumes(&self, filters: &Filters) -> Result<Vec<Volume>, EngineError>;
    async fn remove_volume(&self, name: &str) -> Result<(), EngineError>;

    /// How many containers matching FILTERS are running on this engine.
    async fn running_containers(&self, filters: &Filters) -> Result<usize, EngineError>;
    /// The id of a local image, `None` when the engine does not have it.
    async fn image_id(&self, image: &str) -> Result<Option<String>, EngineError>;
    /// The digest a registry holds for IMAGE (read through the engine).
    async fn registry_digest(&self, image: &str) -> Result<Option<String>, EngineError>;

    /// The engine's clock: what task timestamps are compared with.
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    /// Lets DURATION pass between two looks at the engine.
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await
    }
}

#[async_trait]
impl SwarmApi for Docker {
    async fn info(&self) -> Result<SystemInfo, EngineError> {
        Docker::info(self).await.engine("read engine info", "")
    }

    // Services and tasks are read as JSON: see `observe` for why.
    async fn list_services(&self, filters: &Filters) -> Result<Vec<Service>, EngineError> {
        let op = "list services";
        let filters = serde_json::to_string(filters).unwrap_or_default();
        let body = get(
            self,
            format!("/services?filters={}", query_escape(&filters)),
        )
        .await
        .engine(op, "")?;
        services_from_json(&body).map_err(|e| decode_error(op, "", &e))
    }

    async fn inspect_service(&self, name: &str) -> Result<Service, EngineError> {
        let op = "inspect service";
        let body = get(self, format!("/services/{}", query_escape(name)))
            .await
            .engine(op, name)?;
        service_from_json(&body).map_err(|e| decode_error(op, name, &e))
    }

    async fn create_service(&self, spec: ServiceSpec) -> Result<(), EngineError> {
        let name = spec.name.clone().unwrap_or_default();
        Docker::create_service(self, spec, None)
            .await
            .engine("create service", &name)
            .map(|_| ())
    }

    async fn update_service(
        &self,
        name: &str,
        spec: ServiceSpec,
        version: u64,
    ) -> Result<Vec<String>, EngineError> {
        let opts = UpdateServiceOptionsBuilder::default()
            .version(version as i32)
            .build();
        let resp = Docker::update_service(self, name, spec, opts, None)
            .await
            .engine("update service", name)?;
        Ok(resp.warnings.unwrap_or_default())
    }

    async fn remove_service(&self, name: &str) -> Result<(), EngineError> {
        Docker::delete_service(self, name)
            .await
            .engine("remove service", name)
    }

    async fn list_tasks(&self, service: &str) -> Result<Vec<Task>, EngineError> {
        let op = "list tasks of service";
        let f = HashMap::from([("service".to_string(), vec![service.to_string()])]);
        let filters = serde_json::to_string(&f).unwrap_or_default();
        let body = get(self, format!("/tasks?filters={}", query_escape(&filters)))
            .await
            .engine(op, service)?;
        tasks_from_json(&body).map_err(|e| decode_error(op, service, &e))
    }

    async fn service_logs(&self, service: &str, n: usize) -> Vec<String> {
        let opts = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&n.to_string())
            .build();
        let mut stream = Docker::service_logs(self, service, Some(opts));
        let mut lines = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, stream.next()).await {
            for l in chunk.to_string().lines() {
                lines.push(l.to_string());
            }
        }
        let skip = lines.len().saturating_sub(n);
        lines.into_iter().skip(skip).collect()
    }

    fn follow_task_logs(&self, task: &str) -> BoxStream<'static, Result<String, EngineError>> {
        super::observe::task_logs(self, task, true, None).boxed()
    }

    async fn list_networks(&self, filters: Option<&Filters>) -> Result<Vec<Network>, EngineError> {
        let opts = filters.map(|f| ListNetworksOptionsBuilder::default().filters(f).build());
        Docker::list_networks(self, opts)
            .await
            .engine("list networks", "")
    }

    async fn create_network(&self, req: NetworkCreateRequest) -> Result<(), EngineError> {
        let name = req.name.clone();
        Docker::create_network(self, req)
            .await
            .engine("create network", &name)
            .map(|_| ())
    }

    async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        Docker::remove_network(self, name)
            .await
            .engine("remove network", name)
    }

    async fn list_configs(&self, filters: Option<&Filters>) -> Result<Vec<Config>, EngineError> {
        let opts = filters.map(|f| ListConfigsOptionsBuilder::default().filters(f).build());
        Docker::list_configs(self, opts)
            .await
            .engine("list configs", "")
    }

    async fn create_config(&self, spec: ConfigSpec) -> Result<(), EngineError> {
        let name = spec.name.clone().unwrap_or_default();
        Docker::create_config(self, spec)
            .await
            .engine("create config", &name)
            .map(|_| ())
    }

    async fn remove_config(&self, name: &str) -> Result<(), EngineError> {
        Docker::delete_config(self, name)
            .await
            .engine("remove config", name)
    }

    async fn list_secrets(&self, filters: Option<&Filters>) -> Result<Vec<Secret>, EngineError> {
        let opts = filters.map(|f| ListSecretsOptionsBuilder::default().filters(f).build());
        Docker::list_secrets(self, opts)
            .await
            .engine("list secrets", "")
    }

    async fn create_secret(&self, spec: SecretSpec) -> Result<(), EngineError> {
        let name = spec.name.clone().unwrap_or_default();
        Docker::create_secret(self, spec)
            .await
            .engine("create secret", &name)
            .map(|_| ())
    }

    async fn remove_secret(&self, name: &str) -> Result<(), EngineError> {
        Docker::delete_secret(self, name)
            .await
            .engine("remove secret", name)
    }

    async fn list_volumes(&self, filters: &Filters) -> Result<Vec<Volume>, EngineError> {
        let opts = ListVolumesOptionsBuilder::default()
            .filters(filters)
            .build();
        Ok(Docker::list_volumes(self, Some(opts))
            .await
            .engine("list volumes", "")?
            .volumes
            .unwrap_or_default())
    }

    async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        let opts = RemoveVolumeOptionsBuilder::default().force(false).build();
        Docker::remove_volume(self, name, Some(opts))
            .await
            .engine("remove volume", name)
    }

    async fn running_containers(&self, filters: &Filters) -> Result<usize, EngineError> {
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(filters)
            .build();
        let containers = Docker::list_containers(self, Some(opts))
            .await
            .engine("list containers", "")?;
        Ok(containers
            .iter()
            .filter(|c| c.state.as_ref().map(|s| s.to_string()) == Some("running".into()))
            .count())
    }

    async fn image_id(&self, image: &str) -> Result<Option<String>, EngineError> {
        match Docker::inspect_image(self, image)
            .await
            .engine("inspect image", image)
        {
            Ok(i) => Ok(i.id),
            Err(e) if e.kind == super::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn registry_digest(&self, image: &str) -> Result<Option<String>, EngineError> {
        let d = Docker::inspect_registry_image(self, image, None)
            .await
            .engine("inspect registry image", image)?;
        Ok(d.descriptor.digest)
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

    #[test]
    fn query_escape_leaves_no_reserved_character() {
        assert_eq!(
            query_escape(r#"{"label":["a=b c"]}"#),
            "%7B%22label%22%3A%5B%22a%3Db%20c%22%5D%7D"
        );
        assert_eq!(query_escape("x_y-1.z~"), "x_y-1.z~");
    }
}
