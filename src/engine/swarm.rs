//! Swarm membership through the Engine API, shared by `twip swarm`, `twip lab` and
//! `twip bootstrap`: init, join (managers one at a time, workers at once), node labels, the
//! wait until nodes are Ready, and drain/leave/remove.
//!
//! Join tokens are read from the manager's API when a join needs them, kept in memory in a
//! [`Secret`] (whose `Debug` and `Display` print nothing of it) and sent only in the body of
//! the join request to the joining node's engine. They are never printed, logged or written.
//! Engine error messages are passed through [`Secret::scrub`] before they are shown.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

use bollard::models::{
    LocalNodeState, NodeSpecAvailabilityEnum, NodeSpecRoleEnum, NodeState, SwarmInitRequest,
    SwarmJoinRequest, TaskState,
};
use bollard::query_parameters::{
    DeleteNodeOptions, LeaveSwarmOptions, ListNodesOptions, ListTasksOptions, UpdateNodeOptions,
};
use bollard::Docker;
use serde::Serialize;

use super::error::{EngineResult, ErrorKind};
use crate::manifest::model::Role;

/// What joining and removing nodes reports as it goes: a step done, a warning, a detail for
/// `-v`. The engine layer prints nothing; the caller shows these (`Ui` implements it, in
/// `lifecycle::progress`).
pub trait Notes: Sync {
    fn ok(&self, line: &str);
    fn warn(&self, line: &str);
    fn debug(&self, line: &str);
}

/// A value that must never be shown: join tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(s)
    }

    /// The value, for the one place that sends it (the join request).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the secret replaced.
    pub fn scrub(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_string()
        } else {
            text.replace(&self.0, "<redacted>")
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where a node stands relative to a swarm (pure classification of its engine's info).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// In no swarm: it can join.
    Free,
    /// A node of the swarm we manage.
    Member { node_id: String },
    /// Active in a swarm whose managers do not know it.
    OtherSwarm { node_id: String },
    /// Joining, locked or in error: a person must look at it.
    Unsettled { state: String, error: String },
}

/// Classifies a node from its engine's swarm info and the node ids the manager knows.
pub fn classify(
    state: Option<LocalNodeState>,
    node_id: Option<&str>,
    error: Option<&str>,
    known: &HashSet<String>,
) -> Membership {
    let id = node_id.unwrap_or_default().to_string();
    match state {
        None | Some(LocalNodeState::INACTIVE) | Some(LocalNodeState::EMPTY) => Membership::Free,
        Some(LocalNodeState::ACTIVE) if known.contains(&id) => Membership::Member { node_id: id },
        Some(LocalNodeState::ACTIVE) => Membership::OtherSwarm { node_id: id },
        Some(other) => Membership::Unsettled {
            state: other.to_string(),
            error: error.unwrap_or_default().to_string(),
        },
    }
}

/// A swarm manager and what joining it needs. Tokens are read lazily and kept here only.
pub struct Manager {
    pub docker: Docker,
    /// Its engine URL, for messages.
    pub url: String,
    /// Management addresses (`ip:2377`) of the swarm's managers.
    pub addrs: Vec<String>,
    pub node_id: String,
    worker_token: Secret,
    manager_token: Secret,
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("url", &self.url)
            .field("addrs", &self.addrs)
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl Manager {
    /// Connects to a manager's engine (already connected: `docker`) and reads the swarm's
    /// manager addresses and join tokens.
    pub async fn open(docker: Docker, url: &str) -> anyhow::Result<Manager> {
        let info = docker.info().await.engine("read engine info", url)?;
        let swarm = info.swarm.unwrap_or_default();
        if swarm.local_node_state != Some(LocalNodeState::ACTIVE)
            || swarm.control_available != Some(true)
        {
            anyhow::bail!(
                "the engine at {url} is not a swarm manager (state: {}); initialise the swarm first (`twip swarm init ENV`)",
                swarm
                    .local_node_state
                    .map_or("inactive".to_string(), |s| s.to_string())
            );
        }
        let inspect = docker
            .inspect_swarm()
            .await
            .engine("inspect the swarm", url)?;
        let tokens = inspect.join_tokens.unwrap_or_default();
        let mut addrs: Vec<String> = swarm
            .remote_managers
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| p.addr)
            .collect();
        if addrs.is_empty() {
            if let Some(a) = swarm.node_addr.clone() {
                addrs.push(format!("{a}:2377"));
            }
        }
        addrs.sort();
        Ok(Manager {
            docker,
            url: url.to_string(),
            addrs,
            node_id: swarm.node_id.unwrap_or_default(),
            worker_token: Secret::new(tokens.worker.unwrap_or_default()),
            manager_token: Secret::new(tokens.manager.unwrap_or_default()),
        })
    }

    /// The join token for `role`. Only for a join request, or for the script of
    /// `twip bootstrap --join-token` (asked for explicitly).
    pub fn token(&self, role: Role) -> &Secret {
        match role {
            Role::Manager => &self.manager_token,
            Role::Worker => &self.worker_token,
        }
    }

    /// Removes both tokens from a message.
    pub fn scrub(&self, text: &str) -> String {
        self.manager_token.scrub(&self.worker_token.scrub(text))
    }

    /// The ids of the nodes this swarm knows.
    pub async fn node_ids(&self) -> anyhow::Result<HashSet<String>> {
        Ok(self
            .docker
            .list_nodes(None::<ListNodesOptions>)
            .await
            .engine("list nodes", "")?
            .into_iter()
            .filter_map(|n| n.id)
            .collect())
    }
}

/// What `init` found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitOutcome {
    Initialised,
    AlreadyManager,
}

/// Makes the engine a swarm manager, or reports that it already is one. An engine that is a
/// worker of some swarm is an error.
pub async fn init(
    docker: &Docker,
    url: &str,
    advertise: Option<&str>,
) -> anyhow::Result<InitOutcome> {
    let info = docker.info().await.engine("read engine info", url)?;
    let swarm = info.swarm.unwrap_or_default();
    if swarm.local_node_state == Some(LocalNodeState::ACTIVE) {
        if swarm.control_available == Some(true) {
            return Ok(InitOutcome::AlreadyManager);
        }
        anyhow::bail!(
            "{url} is a worker of another swarm; it cannot become this environment's manager (leave that swarm first)"
        );
    }
    docker
        .init_swarm(SwarmInitRequest {
            listen_addr: Some("0.0.0.0:2377".into()),
            advertise_addr: advertise.map(str::to_string),
            ..Default::default()
        })
        .await
        .engine("initialise the swarm on", url)?;
    Ok(InitOutcome::Initialised)
}

/// A node to bring into the swarm: its name for messages, role, engine and labels.
#[derive(Clone)]
pub struct Member {
    /// The manifest's name (or the lab node's), for messages.
    pub name: String,
    pub role: Role,
    /// Its engine URL, for messages.
    pub url: String,
    pub docker: Docker,
    /// The address other nodes reach it at (None: the engine chooses).
    pub advertise: Option<String>,
    /// Labels to set on the node (merged with the ones it has).
    pub labels: BTreeMap<String, String>,
}

/// What happened to one member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Joined {
    pub name: String,
    pub node_id: String,
    /// false: it was a member already and was left as it was.
    pub joined: bool,
    /// Labels were added or changed.
    pub labelled: bool,
}

/// Joins every member (managers one at a time, then workers at once), applies labels and
/// waits until every member is Ready. Members already in this swarm are reported and
/// skipped; a member of another swarm is an error that names it, before anything changes.
pub async fn join_all(
    mgr: &Manager,
    members: &[Member],
    timeout: Duration,
    ui: &dyn Notes,
) -> anyhow::Result<Vec<Joined>> {
    let known = mgr.node_ids().await?;
    // 1. Where does each stand? (All checked before the first change.)
    let states = futures_util::future::join_all(members.iter().map(|m| async {
        let info = m.docker.info().await.engine("read engine info", &m.url)?;
        let s = info.swarm.unwrap_or_default();
        Ok::<_, anyhow::Error>(classify(
            s.local_node_state,
            s.node_id.as_deref(),
            s.error.as_deref(),
            &known,
        ))
    }))
    .await;
    let mut problems = Vec::new();
    let mut plan: Vec<(usize, Membership)> = Vec::new();
    for (i, st) in states.into_iter().enumerate() {
        let m = &members[i];
        match st {
            Err(e) => problems.push(format!("{} ({}): {e}", m.name, m.url)),
            Ok(Membership::OtherSwarm { node_id }) => problems.push(format!(
                "{} ({}) is in another swarm (node {}); leave it there first (`docker swarm leave` on that host) or remove it from the manifest",
                m.name, m.url, short(&node_id)
            )),
            Ok(Membership::Unsettled { state, error }) => problems.push(format!(
                "{} ({}) is in swarm state `{state}`{}; fix or leave that first",
                m.name,
                m.url,
                if error.is_empty() { String::new() } else { format!(" ({error})") }
            )),
            Ok(s) => plan.push((i, s)),
        }
    }
    if !problems.is_empty() {
        anyhow::bail!("cannot join:\n  {}", problems.join("\n  "));
    }
    // 2. Join: managers one at a time (each changes the raft membership), then workers at once.
    let mut ids: Vec<Option<(String, bool)>> = vec![None; members.len()];
    for (i, st) in &plan {
        if let Membership::Member { node_id } = st {
            ui.ok(&format!(
                "{} is already in this swarm (node {}); skipped",
                members[*i].name,
                short(node_id)
            ));
            ids[*i] = Some((node_id.clone(), false));
        }
    }
    let free: Vec<(usize, Role)> = plan
        .iter()
        .filter(|(_, s)| *s == Membership::Free)
        .map(|(i, _)| (*i, members[*i].role))
        .collect();
    let (managers, workers) = super::managers::join_order(&free);
    for i in managers {
        let id = join_one(mgr, &members[i]).await?;
        ui.ok(&format!(
            "{} joined as a manager (node {})",
            members[i].name,
            short(&id)
        ));
        ids[i] = Some((id, true));
    }
    let results =
        futures_util::future::join_all(workers.iter().map(|&i| join_one(mgr, &members[i]))).await;
    let mut failed = Vec::new();
    for (&i, r) in workers.iter().zip(results) {
        match r {
            Ok(id) => {
                ui.ok(&format!(
                    "{} joined as a worker (node {})",
                    members[i].name,
                    short(&id)
                ));
                ids[i] = Some((id, true));
            }
            Err(e) => failed.push(format!("{}: {e:#}", members[i].name)),
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("joining failed:\n  {}", failed.join("\n  "));
    }
    // 3. Labels, then 4. the wait until every member is Ready.
    let mut out = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let (node_id, joined) = ids[i].clone().expect("every member is placed");
        let labelled = apply_labels(&mgr.docker, &node_id, &m.labels).await?;
        if labelled {
            ui.ok(&format!("{}: labels {}", m.name, show_labels(&m.labels)));
        }
        out.push(Joined {
            name: m.name.clone(),
            node_id,
            joined,
            labelled,
        });
    }
    let wanted: Vec<(String, String)> = out
        .iter()
        .map(|j| (j.name.clone(), j.node_id.clone()))
        .collect();
    wait_ready(&mgr.docker, &wanted, timeout).await?;
    Ok(out)
}

/// One join request, then the node's id as its own engine reports it.
async fn join_one(mgr: &Manager, m: &Member) -> anyhow::Result<String> {
    let token = mgr.token(m.role);
    let req = SwarmJoinRequest {
        listen_addr: Some("0.0.0.0:2377".into()),
        advertise_addr: m.advertise.clone(),
        remote_addrs: Some(mgr.addrs.clone()),
        join_token: Some(token.expose().to_string()),
        ..Default::default()
    };
    if let Err(e) = m.docker.join_swarm(req).await {
        let e = super::EngineError::new("join the swarm from", &m.url, e);
        anyhow::bail!("{}", mgr.scrub(&e.to_string()));
    }
    let info = m.docker.info().await.engine("read engine info", &m.url)?;
    Ok(info.swarm.and_then(|s| s.node_id).unwrap_or_default())
}

/// Sets `labels` on the node (keeping labels it has that are not in `labels`). Returns whether
/// anything changed. Retries when the node changed between read and write.
pub async fn apply_labels(
    docker: &Docker,
    node_id: &str,
    labels: &BTreeMap<String, String>,
) -> anyhow::Result<bool> {
    if labels.is_empty() {
        return Ok(false);
    }
    for attempt in 0..5 {
        let node = docker
            .inspect_node(node_id)
            .await
            .engine("inspect node", node_id)?;
        let mut spec = node.spec.unwrap_or_default();
        let mut have: HashMap<String, String> = spec.labels.clone().unwrap_or_default();
        let before = have.clone();
        for (k, v) in labels {
            have.insert(k.clone(), v.clone());
        }
        if have == before {
            return Ok(false);
        }
        spec.labels = Some(have);
        let version = node.version.and_then(|v| v.index).unwrap_or_default() as i64;
        match docker
            .update_node(node_id, spec, UpdateNodeOptions { version })
            .await
            .engine("label node", node_id)
        {
            Ok(()) => return Ok(true),
            Err(e) if e.kind == ErrorKind::OutOfSequence && attempt < 4 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

/// Waits until every `(name, node id)` is Ready in the manager's node list.
pub async fn wait_ready(
    docker: &Docker,
    nodes: &[(String, String)],
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let list = docker
            .list_nodes(None::<ListNodesOptions>)
            .await
            .engine("list nodes", "")?;
        let state: HashMap<String, Option<NodeState>> = list
            .iter()
            .filter_map(|n| Some((n.id.clone()?, n.status.as_ref().and_then(|s| s.state))))
            .collect();
        let waiting: Vec<String> = nodes
            .iter()
            .filter(|(_, id)| state.get(id).copied().flatten() != Some(NodeState::READY))
            .map(|(name, id)| {
                format!(
                    "{name} ({})",
                    state
                        .get(id)
                        .copied()
                        .flatten()
                        .map_or("unknown".to_string(), |s| s.to_string())
                )
            })
            .collect();
        if waiting.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(crate::exit::coded(
                crate::exit::TIMEOUT,
                format!(
                    "nodes not Ready after {}s: {}",
                    timeout.as_secs(),
                    waiting.join(", ")
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Drains a node, waits until its tasks have stopped and the services it ran have their
/// replicas running elsewhere (or cannot be placed: reported, not waited for), makes it leave
/// through its own engine (when reachable), waits until the manager sees it down and removes it.
pub async fn drain_and_remove(
    mgr: &Docker,
    node_id: &str,
    name: &str,
    own: Option<&Docker>,
    timeout: Duration,
    ui: &dyn Notes,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let node = mgr
        .inspect_node(node_id)
        .await
        .engine("inspect node", name)?;
    let mut spec = node.spec.clone().unwrap_or_default();
    let is_manager = spec.role == Some(NodeSpecRoleEnum::MANAGER);
    if is_manager {
        let managers = mgr
            .list_nodes(None::<ListNodesOptions>)
            .await
            .engine("list nodes", "")?
            .iter()
            .filter(|n| n.spec.as_ref().and_then(|s| s.role) == Some(NodeSpecRoleEnum::MANAGER))
            .count();
        if managers <= 1 {
            anyhow::bail!(
                "{name} is the swarm's only manager; removing it would end the swarm (use `docker swarm leave --force` on it if that is what you want)"
            );
        }
    }
    // The services it runs, read before the drain changes their tasks' desired state.
    let services = services_on(mgr, node_id).await?;
    // 1. Drain.
    if spec.availability != Some(NodeSpecAvailabilityEnum::DRAIN) {
        spec.availability = Some(NodeSpecAvailabilityEnum::DRAIN);
        if is_manager {
            // A manager leaves the raft group as a worker: demote in the same update.
            spec.role = Some(NodeSpecRoleEnum::WORKER);
        }
        update_spec(mgr, node_id, name, spec).await?;
        ui.ok(&format!(
            "{name}: drained (no new tasks; its tasks are moving)"
        ));
    }
    // 2. Wait until nothing runs there and the services it ran are whole again.
    super::nodes::wait_node_empty(mgr, node_id, name, deadline, timeout).await?;
    ui.ok(&format!("{name}: no tasks run there any more"));
    let stuck = wait_services_whole(mgr, &services, deadline).await?;
    for s in stuck {
        ui.warn(&format!(
            "{s} cannot place all its replicas on the other nodes (placement constraints); it runs short"
        ));
    }
    // 3. Leave through its own engine, 4. remove through the manager.
    if let Some(own) = own {
        match own
            .leave_swarm(Some(LeaveSwarmOptions { force: false }))
            .await
            .engine("leave the swarm on", name)
        {
            Ok(()) => ui.ok(&format!("{name}: left the swarm")),
            Err(e) if e.message.contains("not part of a swarm") => {}
            Err(e) => return Err(e.into()),
        }
    }
    loop {
        let n = match mgr.inspect_node(node_id).await {
            Ok(n) => n,
            Err(e) => {
                let e = super::EngineError::new("inspect node", name, e);
                if e.kind == ErrorKind::NotFound {
                    break;
                }
                return Err(e.into());
            }
        };
        let down = n.status.as_ref().and_then(|s| s.state) == Some(NodeState::DOWN);
        let last_chance = Instant::now() > deadline;
        if down || last_chance || own.is_none() {
            let force = !down;
            match mgr
                .delete_node(node_id, Some(DeleteNodeOptions { force }))
                .await
                .engine("remove node", name)
            {
                Ok(()) => break,
                Err(e) if !last_chance && own.is_none() => {
                    ui.debug(&format!("{e}; retrying"));
                }
                Err(e) if !last_chance && !force => ui.debug(&format!("{e}; retrying")),
                Err(e) => return Err(e.into()),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    ui.ok(&format!("{name}: removed from the swarm"));
    Ok(())
}

async fn update_spec(
    docker: &Docker,
    node_id: &str,
    name: &str,
    spec: bollard::models::NodeSpec,
) -> anyhow::Result<()> {
    for attempt in 0..5 {
        let node = docker
            .inspect_node(node_id)
            .await
            .engine("inspect node", name)?;
        let version = node.version.and_then(|v| v.index).unwrap_or_default() as i64;
        match docker
            .update_node(node_id, spec.clone(), UpdateNodeOptions { version })
            .await
            .engine("update node", name)
        {
            Ok(()) => return Ok(()),
            Err(e) if e.kind == ErrorKind::OutOfSequence && attempt < 4 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Replicated services with a task meant to run on the node.
async fn services_on(docker: &Docker, node_id: &str) -> anyhow::Result<Vec<String>> {
    let tasks = docker
        .list_tasks(Some(ListTasksOptions {
            filters: Some(HashMap::from([
                ("node".to_string(), vec![node_id.to_string()]),
                ("desired-state".to_string(), vec!["running".to_string()]),
            ])),
        }))
        .await
        .engine("list tasks", node_id)?;
    let mut ids: Vec<String> = tasks.into_iter().filter_map(|t| t.service_id).collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Waits until each service runs as many tasks as it wants, or its missing tasks are pending
/// because no node fits (those services are returned).
async fn wait_services_whole(
    docker: &Docker,
    services: &[String],
    deadline: Instant,
) -> anyhow::Result<Vec<String>> {
    if services.is_empty() {
        return Ok(Vec::new());
    }
    loop {
        let list = docker
            .list_services(Some(bollard::query_parameters::ListServicesOptions {
                status: Some(true),
                ..Default::default()
            }))
            .await
            .engine("list services", "")?;
        let mut short = Vec::new();
        let mut stuck = Vec::new();
        for s in list.iter().filter(|s| {
            s.id.as_ref().is_some_and(|id| services.contains(id))
                && s.spec
                    .as_ref()
                    .and_then(|sp| sp.mode.as_ref())
                    .is_some_and(|m| m.replicated.is_some())
        }) {
            let st = s.service_status.clone().unwrap_or_default();
            let (run, want) = (st.running_tasks.unwrap_or(0), st.desired_tasks.unwrap_or(0));
            if run >= want {
                continue;
            }
            let name = s
                .spec
                .as_ref()
                .and_then(|sp| sp.name.clone())
                .unwrap_or_default();
            let pending = docker
                .list_tasks(Some(ListTasksOptions {
                    filters: Some(HashMap::from([
                        (
                            "service".to_string(),
                            vec![s.id.clone().unwrap_or_default()],
                        ),
                        ("desired-state".to_string(), vec!["running".to_string()]),
                    ])),
                }))
                .await
                .engine("list tasks", &name)?;
            let unplaceable = pending.iter().any(|t| {
                t.status.as_ref().and_then(|x| x.state) == Some(TaskState::PENDING)
                    && t.status
                        .as_ref()
                        .and_then(|x| x.err.clone())
                        .is_some_and(|e| e.contains("no suitable node"))
            });
            if unplaceable {
                stuck.push(name);
            } else {
                short.push(name);
            }
        }
        if short.is_empty() {
            return Ok(stuck);
        }
        if Instant::now() > deadline {
            return Err(crate::exit::coded(
                crate::exit::TIMEOUT,
                format!("services not whole again in time: {}", short.join(", ")),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The first 12 characters of an id (the engine's are hex; whatever it sends, this cannot
/// cut a character in two).
pub fn short(id: &str) -> &str {
    id.char_indices().nth(12).map_or(id, |(i, _)| &id[..i])
}

pub fn show_labels(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_never_cut_a_character() {
        assert_eq!(short("0123456789abcdef"), "0123456789ab");
        assert_eq!(short("abc"), "abc");
        assert_eq!(short("ééééééééééééé"), "éééééééééééé");
        assert_eq!(short("aaaaaaaaaaa\u{1f600}x"), "aaaaaaaaaaa\u{1f600}");
    }

    #[test]
    fn secrets_never_show() {
        let s = Secret::new("SWMTKN-1-abc".into());
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(
            s.scrub("bad token SWMTKN-1-abc given"),
            "bad token <redacted> given"
        );
        assert_eq!(Secret::new(String::new()).scrub("x"), "x");
    }

    #[test]
    fn membership_is_classified() {
        let known: HashSet<String> = ["a".to_string()].into();
        assert_eq!(classify(None, None, None, &known), Membership::Free);
        assert_eq!(
            classify(Some(LocalNodeState::INACTIVE), Some(""), None, &known),
            Membership::Free
        );
        assert_eq!(
            classify(Some(LocalNodeState::ACTIVE), Some("a"), None, &known),
            Membership::Member {
                node_id: "a".into()
            }
        );
        assert_eq!(
            classify(Some(LocalNodeState::ACTIVE), Some("b"), None, &known),
            Membership::OtherSwarm {
                node_id: "b".into()
            }
        );
        assert!(matches!(
            classify(Some(LocalNodeState::ERROR), Some("b"), Some("x"), &known),
            Membership::Unsettled { .. }
        ));
    }
}
