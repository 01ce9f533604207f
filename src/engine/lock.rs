//! The deploy lock of a stack, kept in the swarm: one config object named
//! `twip-lock-STACK`. Creating a config is atomic in the swarm's raft store, and a second
//! create of the same name is refused, so whoever creates it holds the lock; removing it
//! releases it. Who holds it (user, host, command, reason, since, how long it is good for) is
//! in its data (JSON) and, for `docker config ls` readers, its labels.
//!
//! The config carries no stack namespace label: the stack's own reconcile, `down` and
//! `docker stack rm` never see it.

use std::collections::HashMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::api::SwarmApi;
use super::error::{EngineError, ErrorKind};
use super::model::ConfigSpec;
use crate::labels;

/// Who holds a lock, and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub user: String,
    pub host: String,
    /// The twip command that took it (`up`, `rollback`, `lock acquire`, ...).
    pub command: String,
    #[serde(default)]
    pub reason: String,
    /// Unix seconds, on the clock of the one who took it.
    pub since: u64,
    /// Seconds after `since` when the lock is stale and may be taken over.
    pub ttl: u64,
    /// Unique to one acquisition: a release removes the lock only while it is still this one.
    pub token: String,
}

/// A lock as the swarm holds it: the config's ID and its holder.
#[derive(Debug, Clone)]
pub struct Found {
    pub id: String,
    pub holder: Holder,
}

/// The config's name for STACK.
pub fn name(stack: &str) -> String {
    format!("twip-lock-{stack}")
}

/// Creates the lock of STACK for HOLDER. `Ok(false)` when someone holds it already (the
/// engine refused a second config of that name); nothing else is a conflict.
pub async fn create(api: &dyn SwarmApi, stack: &str, holder: &Holder) -> Result<bool, EngineError> {
    let data = serde_json::to_vec(holder).unwrap_or_default();
    let labels = HashMap::from([
        (labels::LOCK.to_string(), stack.to_string()),
        (labels::MANAGED.to_string(), "true".to_string()),
        (
            labels::LOCK_HOLDER.to_string(),
            format!("{}@{}", holder.user, holder.host),
        ),
        (labels::LOCK_COMMAND.to_string(), holder.command.clone()),
    ]);
    let spec = ConfigSpec {
        name: Some(name(stack)),
        labels: Some(labels),
        data: Some(base64::engine::general_purpose::STANDARD.encode(data)),
        ..Default::default()
    };
    match api.create_config(spec).await {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.kind, ErrorKind::AlreadyExists | ErrorKind::Conflict) => Ok(false),
        Err(e) => Err(e.during("take the deploy lock of", stack)),
    }
}

/// The lock of STACK, if anyone holds it. A lock whose data cannot be read (written by hand)
/// is held by an unknown holder that is already stale.
pub async fn read(api: &dyn SwarmApi, stack: &str) -> Result<Option<Found>, EngineError> {
    let f = HashMap::from([(
        "label".to_string(),
        vec![format!("{}={stack}", labels::LOCK)],
    )]);
    let configs = api
        .list_configs(Some(&f))
        .await
        .map_err(|e| e.during("read the deploy lock of", stack))?;
    let wanted = name(stack);
    for c in configs {
        let Some(spec) = c.spec else { continue };
        if spec.name.as_deref() != Some(wanted.as_str()) {
            continue;
        }
        let data = spec
            .data
            .as_deref()
            .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
            .unwrap_or_default();
        let holder = serde_json::from_slice::<Holder>(&data).unwrap_or_else(|_| Holder {
            user: "unknown".into(),
            host: "unknown".into(),
            command: "unknown".into(),
            reason: String::new(),
            since: 0,
            ttl: 0,
            token: String::new(),
        });
        return Ok(Some(Found {
            id: c.id.unwrap_or(wanted),
            holder,
        }));
    }
    Ok(None)
}

/// Removes the lock config of this ID (not by name: a lock taken over in between is another
/// config and stays). `Ok(false)` when it is already gone.
pub async fn remove(api: &dyn SwarmApi, stack: &str, id: &str) -> Result<bool, EngineError> {
    match api.remove_config(id).await {
        Ok(()) => Ok(true),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e.during("release the deploy lock of", stack)),
    }
}
