//! The in-memory swarm's state and how it moves: spec normalisation, tasks scheduled from
//! specs, time passing.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use super::super::api::Filters;
use super::super::error::{EngineError, ErrorKind};
use super::super::model::*;
use super::{Behaviour, UpdateEnd};

#[derive(Debug, Clone)]
pub(super) struct FakeService {
    pub(super) id: String,
    pub(super) version: u64,
    pub(super) spec: ServiceSpec,
    pub(super) previous: Option<ServiceSpec>,
    pub(super) update_status: Option<ServiceUpdateStatus>,
    /// How the update in progress ends, once time passes.
    pub(super) pending_end: Option<UpdateEnd>,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) clock: u64,
    pub(super) index: u64,
    pub(super) services: BTreeMap<String, FakeService>,
    pub(super) tasks: Vec<Task>,
    pub(super) networks: Vec<Network>,
    pub(super) configs: Vec<Config>,
    pub(super) secrets: Vec<Secret>,
    pub(super) volumes: BTreeMap<String, Volume>,
    pub(super) behaviour: HashMap<String, Behaviour>,
    pub(super) next_update_end: HashMap<String, UpdateEnd>,
    pub(super) logs: HashMap<String, Vec<String>>,
    pub(super) image_ids: HashMap<String, String>,
    pub(super) digests: HashMap<String, String>,
    pub(super) calls: Vec<String>,
    /// How one-off jobs end: (name prefix, exit code, log lines).
    pub(super) jobs: Vec<(String, i64, Vec<String>)>,
    /// Every spec a service was created with, in order (one-offs are gone once they ran).
    pub(super) created: Vec<ServiceSpec>,
}

/// The fake's clock starts here (2026-01-01T00:00:00Z), in milliseconds after it.
const EPOCH_S: u64 = 1_767_225_600;

pub(super) fn not_found(op: &str, name: &str, what: &str) -> EngineError {
    EngineError::of(
        op,
        name,
        ErrorKind::NotFound,
        Some(404),
        &format!("{what} {name} not found"),
    )
}

pub(super) fn in_use(op: &str, name: &str, by: &str) -> EngineError {
    EngineError::of(
        op,
        name,
        ErrorKind::Other,
        Some(400),
        &format!("{name} is in use by {by}"),
    )
}

impl State {
    pub(super) fn time(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH_S) + Duration::from_millis(self.clock)
    }

    pub(super) fn stamp(&self) -> String {
        humantime::format_rfc3339_nanos(self.time()).to_string()
    }

    pub(super) fn bump(&mut self) -> u64 {
        self.index += 1;
        self.index
    }

    pub(super) fn id(&mut self, prefix: &str) -> String {
        format!("{prefix}{:06}", self.bump())
    }

    pub(super) fn network_id(&self, name_or_id: &str) -> Option<String> {
        self.networks
            .iter()
            .find(|n| n.name.as_deref() == Some(name_or_id) || n.id.as_deref() == Some(name_or_id))
            .and_then(|n| n.id.clone())
    }

    /// The spec as the engine stores it, or the error it answers.
    pub(super) fn normalise(
        &self,
        op: &str,
        mut spec: ServiceSpec,
    ) -> Result<ServiceSpec, EngineError> {
        let name = spec.name.clone().unwrap_or_default();
        let tt = spec.task_template.get_or_insert_with(Default::default);
        for n in tt.networks.iter_mut().flatten() {
            let target = n.target.clone().unwrap_or_default();
            n.target = Some(
                self.network_id(&target)
                    .ok_or_else(|| not_found(op, &name, &format!("network {target} for")))?,
            );
        }
        tt.force_update.get_or_insert(0);
        tt.runtime.get_or_insert_with(|| "container".into());
        let cs = tt.container_spec.get_or_insert_with(Default::default);
        cs.isolation
            .get_or_insert(TaskSpecContainerSpecIsolationEnum::DEFAULT);
        cs.dns_config.get_or_insert_with(Default::default);
        for m in cs.mounts.iter_mut().flatten() {
            if m.read_only == Some(false) {
                m.read_only = None;
            }
        }
        for c in cs.configs.iter().flatten() {
            let id = c.config_id.clone().unwrap_or_default();
            let known = self.configs.iter().find(|x| x.id.as_deref() == Some(&id));
            if known.and_then(|x| x.spec.as_ref()?.name.clone()) != c.config_name {
                return Err(not_found(op, &name, &format!("config {id} for")));
            }
        }
        for s in cs.secrets.iter().flatten() {
            let id = s.secret_id.clone().unwrap_or_default();
            let known = self.secrets.iter().find(|x| x.id.as_deref() == Some(&id));
            if known.and_then(|x| x.spec.as_ref()?.name.clone()) != s.secret_name {
                return Err(not_found(op, &name, &format!("secret {id} for")));
            }
        }
        if let Some(c) = spec.update_config.as_mut().filter(|c| c.delay == Some(0)) {
            c.delay = None;
        }
        if let Some(c) = spec.rollback_config.as_mut().filter(|c| c.delay == Some(0)) {
            c.delay = None;
        }
        Ok(spec)
    }

    /// Tasks of SERVICE that are meant to run.
    pub(super) fn live(&self, service_id: &str) -> impl Iterator<Item = &Task> {
        let id = service_id.to_string();
        self.tasks.iter().filter(move |t| {
            t.service_id.as_deref() == Some(id.as_str())
                && t.desired_state == Some(TaskState::RUNNING)
        })
    }

    pub(super) fn start_task(&mut self, service: &str, slot: i64) {
        let Some(s) = self.services.get(service) else {
            return;
        };
        let (service_id, template) = (s.id.clone(), s.spec.task_template.clone());
        // The engine makes a named volume the first time a task mounts it.
        let mounts = template
            .as_ref()
            .and_then(|t| t.container_spec.as_ref())
            .and_then(|c| c.mounts.clone())
            .unwrap_or_default();
        for m in mounts.iter().filter(|m| m.typ == Some(MountType::VOLUME)) {
            let name = m.source.clone().unwrap_or_default();
            let labels = m
                .volume_options
                .as_ref()
                .and_then(|o| o.labels.clone())
                .unwrap_or_default();
            self.volumes.entry(name.clone()).or_insert_with(|| Volume {
                name,
                driver: "local".into(),
                labels,
                ..Default::default()
            });
        }
        let id = self.id("task");
        let stamp = self.stamp();
        self.tasks.push(Task {
            id: Some(id),
            service_id: Some(service_id),
            slot: Some(slot),
            desired_state: Some(TaskState::RUNNING),
            spec: template,
            created_at: Some(stamp.clone()),
            updated_at: Some(stamp.clone()),
            status: Some(TaskStatus {
                timestamp: Some(stamp),
                state: Some(TaskState::STARTING),
                message: Some("starting".into()),
                ..Default::default()
            }),
            ..Default::default()
        });
    }

    pub(super) fn stop_task(t: &mut Task, stamp: &str) {
        t.desired_state = Some(TaskState::SHUTDOWN);
        if let Some(st) = t.status.as_mut() {
            if !matches!(st.state, Some(TaskState::FAILED | TaskState::REJECTED)) {
                st.state = Some(TaskState::SHUTDOWN);
                st.message = Some("shutdown".into());
                st.timestamp = Some(stamp.to_string());
            }
        }
        t.updated_at = Some(stamp.to_string());
    }

    /// Makes the tasks of SERVICE match its spec: one per slot (one for a global service on
    /// this one node), made from the current template. With ROLL, every task is replaced.
    pub(super) fn schedule(&mut self, service: &str, roll: bool) {
        let Some(s) = self.services.get(service) else {
            return;
        };
        let id = s.id.clone();
        let want = match s.spec.mode.as_ref().and_then(|m| m.replicated.as_ref()) {
            Some(r) => r.replicas.unwrap_or(1).max(0),
            None => 1,
        };
        let stamp = self.stamp();
        for t in self.tasks.iter_mut().filter(|t| {
            t.service_id.as_deref() == Some(id.as_str())
                && t.desired_state == Some(TaskState::RUNNING)
                && (roll || t.slot.unwrap_or(0) > want)
        }) {
            Self::stop_task(t, &stamp);
        }
        let running: Vec<i64> = self.live(&id).filter_map(|t| t.slot).collect();
        for slot in 1..=want {
            if !running.contains(&slot) {
                self.start_task(service, slot);
            }
        }
    }

    /// Lets MS milliseconds pass: tasks move on as their service's behaviour says, updates
    /// finish.
    pub(super) fn advance(&mut self, ms: u64) {
        self.clock += ms;
        let stamp = self.stamp();
        let names: Vec<String> = self.services.keys().cloned().collect();
        for name in names {
            let behaviour = self.behaviour.get(&name).cloned().unwrap_or_default();
            let id = self.services[&name].id.clone();
            if self.is_job(&name) {
                self.advance_job(&name, &id, &stamp);
                continue;
            }
            let mut restart = Vec::new();
            for t in self.tasks.iter_mut().filter(|t| {
                t.service_id.as_deref() == Some(id.as_str())
                    && t.desired_state == Some(TaskState::RUNNING)
            }) {
                let st = t.status.get_or_insert_with(Default::default);
                let state = st.state;
                match (&behaviour, state) {
                    (Behaviour::Healthy, Some(TaskState::STARTING)) => {
                        st.state = Some(TaskState::RUNNING);
                        st.message = Some("started".into());
                        st.timestamp = Some(stamp.clone());
                    }
                    (Behaviour::CrashLoop { exit_code }, Some(TaskState::STARTING)) => {
                        st.state = Some(TaskState::FAILED);
                        st.err = Some(format!("task: non-zero exit ({exit_code})"));
                        st.container_status = Some(ContainerStatus {
                            exit_code: Some(*exit_code),
                            ..Default::default()
                        });
                        st.timestamp = Some(stamp.clone());
                        t.desired_state = Some(TaskState::SHUTDOWN);
                        restart.push(t.slot.unwrap_or(1));
                    }
                    (Behaviour::Pending(why), _) => {
                        st.state = Some(TaskState::PENDING);
                        st.message = Some("pending task scheduling".into());
                        st.err = Some(why.clone());
                    }
                    _ => {}
                }
                t.updated_at = Some(stamp.clone());
            }
            for slot in restart {
                self.start_task(&name, slot);
            }
            self.finish_update(&name, &stamp);
        }
    }

    fn is_job(&self, name: &str) -> bool {
        self.services[name]
            .spec
            .mode
            .as_ref()
            .is_some_and(|m| m.replicated_job.is_some())
    }

    /// A job's task starts, runs, then ends as the matching [`State::jobs`] rule says (exit 0
    /// without one): `complete`, or `failed` with its exit code. Its task is not restarted.
    fn advance_job(&mut self, name: &str, id: &str, stamp: &str) {
        let exit = self
            .jobs
            .iter()
            .find(|(prefix, _, _)| name.starts_with(prefix.as_str()))
            .map_or(0, |(_, code, _)| *code);
        for t in self.tasks.iter_mut().filter(|t| {
            t.service_id.as_deref() == Some(id) && t.desired_state == Some(TaskState::RUNNING)
        }) {
            let st = t.status.get_or_insert_with(Default::default);
            match st.state {
                Some(TaskState::STARTING) => {
                    st.state = Some(TaskState::RUNNING);
                    st.message = Some("started".into());
                }
                Some(TaskState::RUNNING) => {
                    st.state = Some(if exit == 0 {
                        TaskState::COMPLETE
                    } else {
                        TaskState::FAILED
                    });
                    st.message = Some("finished".into());
                    if exit != 0 {
                        st.err = Some(format!("task: non-zero exit ({exit})"));
                    }
                    st.container_status = Some(ContainerStatus {
                        exit_code: Some(exit),
                        ..Default::default()
                    });
                    t.desired_state = Some(TaskState::COMPLETE);
                }
                _ => continue,
            }
            st.timestamp = Some(stamp.to_string());
            t.updated_at = Some(stamp.to_string());
        }
    }

    pub(super) fn finish_update(&mut self, name: &str, stamp: &str) {
        let next = self.index + 1;
        let Some(s) = self.services.get_mut(name) else {
            return;
        };
        let Some(status) = s.update_status.as_mut() else {
            return;
        };
        if status.state != Some(ServiceUpdateStatusStateEnum::UPDATING) {
            return;
        }
        status.completed_at = Some(stamp.to_string());
        match s.pending_end.take() {
            None => {
                status.state = Some(ServiceUpdateStatusStateEnum::COMPLETED);
                status.message = Some("update completed".into());
            }
            Some(UpdateEnd::Paused(why)) => {
                status.state = Some(ServiceUpdateStatusStateEnum::PAUSED);
                status.message = Some(why);
            }
            Some(UpdateEnd::RolledBack(why)) => {
                status.state = Some(ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED);
                status.message = Some(why);
                if let Some(prev) = s.previous.take() {
                    s.previous = Some(std::mem::replace(&mut s.spec, prev));
                }
                s.version = next;
                self.index = next;
                self.schedule(name, true);
                // The rolled-back tasks start, too.
                self.advance_tasks_only(name, stamp);
            }
        }
    }

    pub(super) fn advance_tasks_only(&mut self, name: &str, stamp: &str) {
        let Some(id) = self.services.get(name).map(|s| s.id.clone()) else {
            return;
        };
        for t in self.tasks.iter_mut().filter(|t| {
            t.service_id.as_deref() == Some(id.as_str())
                && t.desired_state == Some(TaskState::RUNNING)
        }) {
            if let Some(st) = t.status.as_mut() {
                st.state = Some(TaskState::RUNNING);
                st.timestamp = Some(stamp.to_string());
            }
        }
    }

    pub(super) fn service_id_or_name(&self, key: &str) -> Option<String> {
        if self.services.contains_key(key) {
            return Some(key.to_string());
        }
        self.services
            .iter()
            .find(|(_, s)| s.id == key)
            .map(|(n, _)| n.clone())
    }

    pub(super) fn service(&self, name: &str) -> Service {
        let s = &self.services[name];
        Service {
            id: Some(s.id.clone()),
            version: Some(ObjectVersion {
                index: Some(s.version),
            }),
            spec: Some(s.spec.clone()),
            update_status: s.update_status.clone(),
            ..Default::default()
        }
    }

    /// Whether any service's spec refers to an object by this ID.
    pub(super) fn used_by(&self, pred: impl Fn(&TaskSpecContainerSpec) -> bool) -> Option<String> {
        self.services
            .iter()
            .find(|(_, s)| {
                s.spec
                    .task_template
                    .as_ref()
                    .and_then(|t| t.container_spec.as_ref())
                    .is_some_and(&pred)
            })
            .map(|(n, _)| n.clone())
    }
}

/// Whether LABELS match the `label` filters (`k=v` or `k`).
pub(super) fn labels_match(
    labels: Option<&HashMap<String, String>>,
    filters: Option<&Filters>,
) -> bool {
    let Some(wanted) = filters.and_then(|f| f.get("label")) else {
        return true;
    };
    wanted.iter().all(|w| {
        let (k, v) = w
            .split_once('=')
            .map_or((w.as_str(), None), |(k, v)| (k, Some(v)));
        match (labels.and_then(|l| l.get(k)), v) {
            (Some(have), Some(v)) => have == v,
            (Some(_), None) => true,
            (None, _) => false,
        }
    })
}
