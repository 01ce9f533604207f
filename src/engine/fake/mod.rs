//! An in-memory swarm behind [`SwarmApi`], for testing the lifecycle without a daemon. It is
//! meant to be real enough to catch mistakes, so it behaves as the Engine API does where twip
//! depends on it:
//! - specs are normalised as the engine stores them (`tests/fixtures/engine/` has captures):
//!   networks named by ID, config and secret IDs checked, zero values dropped (`Delay: 0`,
//!   `ReadOnly: false`), defaults added (`Isolation`, `DNSConfig`, `Runtime`, `ForceUpdate`);
//! - every change bumps the object's version index, and an update sent with a stale version is
//!   refused as "update out of sequence";
//! - a service's tasks start (`starting`, then `running` once time passes), are replaced when
//!   the task template changes, and stop when the service goes; named volumes are made when a
//!   task mounts them; configs, secrets, networks and volumes in use cannot be removed;
//! - on command, tasks crash and restart, stay pending or never finish starting, and an update
//!   ends `paused` or rolled back (`rollback_completed`, the spec back to the previous one).
//!
//! Time is the fake's own: [`SwarmApi::sleep`] advances it (and the tasks) without sleeping.
//! Every change is logged ([`FakeSwarm::calls`]) so tests can check what was sent, in order.

mod state;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;

use super::api::{Filters, SwarmApi};
use super::error::{EngineError, ErrorKind};
use super::model::*;
use state::{in_use, labels_match, not_found, FakeService, State};

/// How a service's tasks behave.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Behaviour {
    /// Tasks start and keep running.
    #[default]
    Healthy,
    /// Every task exits with this code once it started, and swarm starts another.
    CrashLoop { exit_code: i64 },
    /// Tasks stay pending with this message (`no suitable node ...`).
    Pending(String),
    /// Tasks never finish starting.
    Stuck,
}

/// How the next update of a service ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateEnd {
    /// Swarm pauses the update (`update_config.failure_action: pause`).
    Paused(String),
    /// Swarm rolls the update back to the previous spec.
    RolledBack(String),
}

/// The in-memory swarm: one manager node, empty until told otherwise.
#[derive(Debug, Default)]
pub struct FakeSwarm {
    state: Mutex<State>,
}

impl FakeSwarm {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How SERVICE's tasks behave from now on.
    pub fn behave(&self, service: &str, b: Behaviour) {
        self.lock().behaviour.insert(service.to_string(), b);
    }

    /// How the next update of SERVICE ends.
    pub fn end_next_update(&self, service: &str, end: UpdateEnd) {
        self.lock().next_update_end.insert(service.to_string(), end);
    }

    /// What SERVICE's tasks wrote.
    pub fn set_logs(&self, service: &str, lines: &[&str]) {
        self.lock().logs.insert(
            service.to_string(),
            lines.iter().map(|l| l.to_string()).collect(),
        );
    }

    /// How one-off jobs (`replicated-job` services) whose name starts with PREFIX end: their
    /// task exits with EXIT_CODE after writing LINES. Without a rule a job exits 0.
    pub fn job_outcome(&self, prefix: &str, exit_code: i64, lines: &[&str]) {
        self.lock().jobs.push((
            prefix.to_string(),
            exit_code,
            lines.iter().map(|l| l.to_string()).collect(),
        ));
    }

    /// Every spec a service was created with, in order (also of services removed since).
    pub fn created_specs(&self) -> Vec<ServiceSpec> {
        self.lock().created.clone()
    }

    /// A local image (its id) and what a registry holds for a reference (its digest).
    pub fn set_image(&self, image: &str, id: Option<&str>, digest: Option<&str>) {
        let mut st = self.lock();
        if let Some(id) = id {
            st.image_ids.insert(image.to_string(), id.to_string());
        }
        if let Some(d) = digest {
            st.digests.insert(image.to_string(), d.to_string());
        }
    }

    /// A change made behind twip's back (`docker service update`): the spec is changed as F
    /// says, normalised, and its version bumped; twip's labels stay.
    pub fn tamper(&self, service: &str, f: impl FnOnce(&mut ServiceSpec)) {
        let mut st = self.lock();
        let mut spec = st.services[service].spec.clone();
        f(&mut spec);
        let spec = st.normalise("tamper", spec).expect("a valid change");
        let version = st.bump();
        let s = st.services.get_mut(service).expect("the service");
        s.previous = Some(std::mem::replace(&mut s.spec, spec));
        s.version = version;
        st.schedule(service, true);
    }

    /// A service's current state as `GET /services/{id}` returns it.
    pub fn inspect(&self, service: &str) -> Option<Service> {
        let st = self.lock();
        st.services
            .contains_key(service)
            .then(|| st.service(service))
    }

    /// Names of the services, networks, configs, secrets and volumes there are.
    pub fn names(&self) -> BTreeMap<&'static str, Vec<String>> {
        let st = self.lock();
        let mut out = BTreeMap::new();
        out.insert("service", st.services.keys().cloned().collect());
        out.insert(
            "network",
            st.networks.iter().filter_map(|n| n.name.clone()).collect(),
        );
        out.insert(
            "config",
            st.configs
                .iter()
                .filter_map(|c| c.spec.as_ref()?.name.clone())
                .collect(),
        );
        out.insert(
            "secret",
            st.secrets
                .iter()
                .filter_map(|c| c.spec.as_ref()?.name.clone())
                .collect(),
        );
        out.insert("volume", st.volumes.keys().cloned().collect());
        out
    }

    /// Every change sent, in order: `create service x`, `update service x`, `remove config y`.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// Forgets the calls logged so far.
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// Tasks of SERVICE (all states).
    pub fn tasks_of(&self, service: &str) -> Vec<Task> {
        let st = self.lock();
        let Some(id) = st.services.get(service).map(|s| s.id.clone()) else {
            return Vec::new();
        };
        st.tasks
            .iter()
            .filter(|t| t.service_id.as_deref() == Some(id.as_str()))
            .cloned()
            .collect()
    }

    /// The fake's clock now.
    pub fn now_for_tests(&self) -> SystemTime {
        self.lock().time()
    }

    /// Lets time pass (as a wait's sleep does).
    pub fn pass(&self, d: Duration) {
        self.lock().advance(d.as_millis() as u64);
    }

    fn log(&self, call: String) {
        self.lock().calls.push(call);
    }
}

#[async_trait]
impl SwarmApi for FakeSwarm {
    async fn info(&self) -> Result<SystemInfo, EngineError> {
        Ok(SystemInfo {
            swarm: Some(SwarmInfo {
                local_node_state: Some(LocalNodeState::ACTIVE),
                control_available: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    async fn list_services(&self, filters: &Filters) -> Result<Vec<Service>, EngineError> {
        let st = self.lock();
        Ok(st
            .services
            .iter()
            .filter(|(_, s)| labels_match(s.spec.labels.as_ref(), Some(filters)))
            .map(|(n, _)| st.service(n))
            .collect())
    }

    async fn inspect_service(&self, name: &str) -> Result<Service, EngineError> {
        let st = self.lock();
        let key = st
            .service_id_or_name(name)
            .ok_or_else(|| not_found("inspect service", name, "service"))?;
        Ok(st.service(&key))
    }

    async fn create_service(&self, spec: ServiceSpec) -> Result<(), EngineError> {
        let op = "create service";
        let name = spec.name.clone().unwrap_or_default();
        let mut st = self.lock();
        if st.services.contains_key(&name) {
            return Err(EngineError::of(
                op,
                &name,
                ErrorKind::AlreadyExists,
                Some(409),
                &format!("service {name} already exists"),
            ));
        }
        let spec = st.normalise(op, spec)?;
        st.created.push(spec.clone());
        if spec
            .mode
            .as_ref()
            .is_some_and(|m| m.replicated_job.is_some())
        {
            let rule = st
                .jobs
                .iter()
                .find(|(p, _, _)| name.starts_with(p.as_str()));
            if let Some(lines) = rule.map(|(_, _, l)| l.clone()) {
                st.logs.insert(name.clone(), lines);
            }
        }
        let id = st.id("svc");
        let version = st.bump();
        st.services.insert(
            name.clone(),
            FakeService {
                id,
                version,
                spec,
                previous: None,
                update_status: None,
                pending_end: None,
            },
        );
        st.schedule(&name, false);
        st.calls.push(format!("create service {name}"));
        Ok(())
    }

    async fn update_service(
        &self,
        name: &str,
        spec: ServiceSpec,
        version: u64,
    ) -> Result<Vec<String>, EngineError> {
        let op = "update service";
        let mut st = self.lock();
        let key = st
            .service_id_or_name(name)
            .ok_or_else(|| not_found(op, name, "service"))?;
        if st.services[&key].version != version {
            return Err(EngineError::of(
                op,
                name,
                ErrorKind::OutOfSequence,
                Some(500),
                "rpc error: code = Unknown desc = update out of sequence",
            ));
        }
        let spec = st.normalise(op, spec)?;
        let new_version = st.bump();
        let stamp = st.stamp();
        let end = st.next_update_end.remove(&key);
        let s = st.services.get_mut(&key).expect("the service");
        let template = |s: &ServiceSpec| serde_json::to_value(&s.task_template).ok();
        let roll = template(&s.spec) != template(&spec);
        s.previous = Some(std::mem::replace(&mut s.spec, spec));
        s.version = new_version;
        if roll {
            s.update_status = Some(ServiceUpdateStatus {
                state: Some(ServiceUpdateStatusStateEnum::UPDATING),
                started_at: Some(stamp),
                message: Some("update in progress".into()),
                ..Default::default()
            });
            s.pending_end = end;
        }
        st.schedule(&key, roll);
        st.calls.push(format!("update service {key}"));
        Ok(Vec::new())
    }

    async fn remove_service(&self, name: &str) -> Result<(), EngineError> {
        let mut st = self.lock();
        let key = st
            .service_id_or_name(name)
            .ok_or_else(|| not_found("remove service", name, "service"))?;
        let s = st.services.remove(&key).expect("the service");
        let stamp = st.stamp();
        for t in st
            .tasks
            .iter_mut()
            .filter(|t| t.service_id.as_deref() == Some(s.id.as_str()))
        {
            State::stop_task(t, &stamp);
        }
        st.tasks
            .retain(|t| t.service_id.as_deref() != Some(s.id.as_str()));
        st.calls.push(format!("remove service {key}"));
        Ok(())
    }

    async fn list_tasks(&self, service: &str) -> Result<Vec<Task>, EngineError> {
        let st = self.lock();
        let Some(id) = st
            .service_id_or_name(service)
            .map(|k| st.services[&k].id.clone())
        else {
            return Ok(Vec::new());
        };
        Ok(st
            .tasks
            .iter()
            .filter(|t| t.service_id.as_deref() == Some(id.as_str()))
            .cloned()
            .collect())
    }

    async fn service_logs(&self, service: &str, n: usize) -> Vec<String> {
        let lines = self.lock().logs.get(service).cloned().unwrap_or_default();
        let skip = lines.len().saturating_sub(n);
        lines.into_iter().skip(skip).collect()
    }

    fn follow_task_logs(&self, task: &str) -> BoxStream<'static, Result<String, EngineError>> {
        let st = self.lock();
        let service_id = st
            .tasks
            .iter()
            .find(|t| t.id.as_deref() == Some(task))
            .and_then(|t| t.service_id.clone());
        let lines = st
            .services
            .iter()
            .find(|(_, s)| Some(&s.id) == service_id.as_ref())
            .and_then(|(n, _)| st.logs.get(n).cloned())
            .unwrap_or_default();
        futures_util::stream::iter(lines.into_iter().map(|l| Ok(format!("{l}\n")))).boxed()
    }

    async fn list_networks(&self, filters: Option<&Filters>) -> Result<Vec<Network>, EngineError> {
        Ok(self
            .lock()
            .networks
            .iter()
            .filter(|n| labels_match(n.labels.as_ref(), filters))
            .cloned()
            .collect())
    }

    async fn create_network(&self, req: NetworkCreateRequest) -> Result<(), EngineError> {
        let mut st = self.lock();
        if st.network_id(&req.name).is_some() {
            return Err(EngineError::of(
                "create network",
                &req.name,
                ErrorKind::AlreadyExists,
                Some(409),
                &format!("network with name {} already exists", req.name),
            ));
        }
        let id = st.id("net");
        st.calls.push(format!("create network {}", req.name));
        st.networks.push(Network {
            name: Some(req.name),
            id: Some(id),
            driver: req.driver,
            internal: req.internal,
            attachable: req.attachable,
            labels: req.labels,
            ..Default::default()
        });
        Ok(())
    }

    async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        let op = "remove network";
        let mut st = self.lock();
        let id = st
            .network_id(name)
            .ok_or_else(|| not_found(op, name, "network"))?;
        let user = st.services.iter().find(|(_, s)| {
            s.spec
                .task_template
                .as_ref()
                .and_then(|t| t.networks.as_ref())
                .is_some_and(|n| n.iter().any(|n| n.target.as_deref() == Some(id.as_str())))
        });
        if let Some((user, _)) = user {
            return Err(in_use(op, name, &format!("service {user}")));
        }
        st.networks.retain(|n| n.id.as_deref() != Some(id.as_str()));
        st.calls.push(format!("remove network {name}"));
        Ok(())
    }

    async fn list_configs(&self, filters: Option<&Filters>) -> Result<Vec<Config>, EngineError> {
        Ok(self
            .lock()
            .configs
            .iter()
            .filter(|c| labels_match(c.spec.as_ref().and_then(|s| s.labels.as_ref()), filters))
            .cloned()
            .collect())
    }

    async fn create_config(&self, spec: ConfigSpec) -> Result<(), EngineError> {
        let mut st = self.lock();
        let name = spec.name.clone().unwrap_or_default();
        if st
            .configs
            .iter()
            .any(|c| c.spec.as_ref().and_then(|s| s.name.as_deref()) == Some(&name))
        {
            return Err(EngineError::of(
                "create config",
                &name,
                ErrorKind::AlreadyExists,
                Some(409),
                &format!("config {name} already exists"),
            ));
        }
        let id = st.id("cfg");
        let version = st.bump();
        st.calls.push(format!("create config {name}"));
        let stamp = st.stamp();
        st.configs.push(Config {
            id: Some(id),
            version: Some(ObjectVersion {
                index: Some(version),
            }),
            created_at: Some(stamp),
            spec: Some(spec),
            ..Default::default()
        });
        Ok(())
    }

    async fn remove_config(&self, name: &str) -> Result<(), EngineError> {
        let op = "remove config";
        let mut st = self.lock();
        // By name or by ID, as the engine takes either.
        let Some(pos) = st.configs.iter().position(|c| {
            c.spec.as_ref().and_then(|s| s.name.as_deref()) == Some(name)
                || c.id.as_deref() == Some(name)
        }) else {
            return Err(not_found(op, name, "config"));
        };
        let name = &st.configs[pos]
            .spec
            .as_ref()
            .and_then(|s| s.name.clone())
            .unwrap_or_default();
        if let Some(user) = st.used_by(|cs| {
            cs.configs
                .iter()
                .flatten()
                .any(|c| c.config_name.as_deref() == Some(name))
        }) {
            return Err(in_use(op, name, &format!("service {user}")));
        }
        st.configs.remove(pos);
        st.calls.push(format!("remove config {name}"));
        Ok(())
    }

    async fn list_secrets(&self, filters: Option<&Filters>) -> Result<Vec<Secret>, EngineError> {
        Ok(self
            .lock()
            .secrets
            .iter()
            .filter(|c| labels_match(c.spec.as_ref().and_then(|s| s.labels.as_ref()), filters))
            .cloned()
            .collect())
    }

    async fn create_secret(&self, spec: SecretSpec) -> Result<(), EngineError> {
        let mut st = self.lock();
        let name = spec.name.clone().unwrap_or_default();
        if st
            .secrets
            .iter()
            .any(|c| c.spec.as_ref().and_then(|s| s.name.as_deref()) == Some(&name))
        {
            return Err(EngineError::of(
                "create secret",
                &name,
                ErrorKind::AlreadyExists,
                Some(409),
                &format!("secret {name} already exists"),
            ));
        }
        let id = st.id("sec");
        let version = st.bump();
        st.calls.push(format!("create secret {name}"));
        st.secrets.push(Secret {
            id: Some(id),
            version: Some(ObjectVersion {
                index: Some(version),
            }),
            spec: Some(spec),
            ..Default::default()
        });
        Ok(())
    }

    async fn remove_secret(&self, name: &str) -> Result<(), EngineError> {
        let op = "remove secret";
        let mut st = self.lock();
        let Some(pos) = st
            .secrets
            .iter()
            .position(|c| c.spec.as_ref().and_then(|s| s.name.as_deref()) == Some(name))
        else {
            return Err(not_found(op, name, "secret"));
        };
        if let Some(user) = st.used_by(|cs| {
            cs.secrets
                .iter()
                .flatten()
                .any(|c| c.secret_name.as_deref() == Some(name))
        }) {
            return Err(in_use(op, name, &format!("service {user}")));
        }
        st.secrets.remove(pos);
        st.calls.push(format!("remove secret {name}"));
        Ok(())
    }

    async fn list_volumes(&self, filters: &Filters) -> Result<Vec<Volume>, EngineError> {
        Ok(self
            .lock()
            .volumes
            .values()
            .filter(|v| labels_match(Some(&v.labels), Some(filters)))
            .cloned()
            .collect())
    }

    async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        let op = "remove volume";
        let mut st = self.lock();
        if !st.volumes.contains_key(name) {
            return Err(not_found(op, name, "volume"));
        }
        let mounted = st.tasks.iter().any(|t| {
            t.desired_state == Some(TaskState::RUNNING)
                && t.spec
                    .as_ref()
                    .and_then(|s| s.container_spec.as_ref())
                    .and_then(|c| c.mounts.as_ref())
                    .is_some_and(|m| m.iter().any(|m| m.source.as_deref() == Some(name)))
        });
        if mounted {
            return Err(EngineError::of(
                op,
                name,
                ErrorKind::Conflict,
                Some(409),
                "volume is in use",
            ));
        }
        st.volumes.remove(name);
        st.calls.push(format!("remove volume {name}"));
        Ok(())
    }

    async fn running_containers(&self, filters: &Filters) -> Result<usize, EngineError> {
        let st = self.lock();
        Ok(st
            .tasks
            .iter()
            .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING))
            .filter(|t| {
                let labels = t
                    .spec
                    .as_ref()
                    .and_then(|s| s.container_spec.as_ref())
                    .and_then(|c| c.labels.as_ref());
                labels_match(labels, Some(filters))
            })
            .count())
    }

    async fn image_id(&self, image: &str) -> Result<Option<String>, EngineError> {
        Ok(self.lock().image_ids.get(image).cloned())
    }

    async fn registry_digest(&self, image: &str) -> Result<Option<String>, EngineError> {
        Ok(self.lock().digests.get(image).cloned())
    }

    fn now(&self) -> SystemTime {
        self.lock().time()
    }

    async fn sleep(&self, duration: Duration) {
        self.pass(duration);
        tokio::task::yield_now().await;
    }
}

impl FakeSwarm {
    /// A volume made outside any service (as `docker volume create`).
    pub fn add_volume(&self, name: &str, labels: &[(&str, &str)]) {
        self.lock().volumes.insert(
            name.to_string(),
            Volume {
                name: name.to_string(),
                driver: "local".into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Default::default()
            },
        );
    }

    /// Logs a call made by a test itself (to order it among twip's).
    pub fn note(&self, what: &str) {
        self.log(what.to_string());
    }
}
