//! The pure core of the lifecycle: desired state (from the manifest) against observed state
//! (from the engine) gives a plan of actions, each with its cause. No I/O here: the engine
//! layer fills [`Observed`] and executes the [`Plan`] without making decisions of its own.
//! The plan's text is deterministic; it is what `twip plan` prints and what tests compare.

pub mod desired;

use std::collections::BTreeMap;
use std::fmt;

use bollard::models::ServiceSpec;
use serde::Serialize;

pub use desired::{Desired, DesiredService};
use desired::{LABEL_MANIFEST_REPLICAS, LABEL_SPEC_HASH};

/// What the engine holds for a stack (everything labelled with its namespace).
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub networks: Vec<ObservedObject>,
    pub configs: Vec<ObservedObject>,
    pub secrets: Vec<ObservedObject>,
    pub services: Vec<ObservedService>,
    /// Configs and secrets that recorded releases use (twip's release history, and what a
    /// rollback needs): never removed as "no longer used".
    pub retained: std::collections::BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedObject {
    pub name: String,
    pub id: String,
}

#[derive(Debug, Clone)]
pub struct ObservedService {
    pub name: String,
    pub id: String,
    pub version: u64,
    pub spec: ServiceSpec,
}

impl ObservedService {
    fn label(&self, key: &str) -> Option<&str> {
        self.spec.labels.as_ref()?.get(key).map(String::as_str)
    }

    pub fn replicas(&self) -> Option<u64> {
        self.spec
            .mode
            .as_ref()?
            .replicated
            .as_ref()?
            .replicas
            .map(|r| r as u64)
    }

    pub fn image(&self) -> Option<&str> {
        self.spec
            .task_template
            .as_ref()?
            .container_spec
            .as_ref()?
            .image
            .as_deref()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    Network,
    Config,
    Secret,
    Service,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Create,
    Update,
    Scale,
    Remove,
}

#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub resource: Resource,
    pub name: String,
    pub op: Op,
    pub cause: String,
    /// Actions of one phase are independent and run concurrently; phases run in order.
    #[serde(skip)]
    pub phase: u8,
    /// For service creates and updates: the spec to send.
    #[serde(skip)]
    pub spec: Option<Box<ServiceSpec>>,
    /// For updates: the version index read (sent back so concurrent changes are detected).
    #[serde(skip)]
    pub version: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub env: String,
    pub stack: String,
    pub actions: Vec<Action>,
    /// Services that need nothing.
    pub unchanged: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    pub fn count(&self, op: Op) -> usize {
        self.actions.iter().filter(|a| a.op == op).count()
    }

    /// Services the plan creates, updates or scales (what convergence waits for).
    pub fn touched_services(&self) -> Vec<String> {
        self.actions
            .iter()
            .filter(|a| a.resource == Resource::Service && a.op != Op::Remove)
            .map(|a| a.name.clone())
            .collect()
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.actions.is_empty() {
            return writeln!(
                f,
                "{}: up to date ({} service{} unchanged)",
                self.env,
                self.unchanged.len(),
                if self.unchanged.len() == 1 { "" } else { "s" }
            );
        }
        writeln!(f, "plan for {} (stack {}):", self.env, self.stack)?;
        let width = self
            .actions
            .iter()
            .map(|a| a.name.len())
            .chain(self.unchanged.iter().map(String::len))
            .max()
            .unwrap_or(0);
        for a in &self.actions {
            let sign = match a.op {
                Op::Create => "+",
                Op::Update | Op::Scale => "~",
                Op::Remove => "-",
            };
            let res = format!("{:?}", a.resource).to_lowercase();
            let op = format!("{:?}", a.op).to_lowercase();
            writeln!(f, "  {sign} {res:<7} {:<width$}  {op}: {}", a.name, a.cause)?;
        }
        for u in &self.unchanged {
            writeln!(f, "  = service {u:<width$}  unchanged")?;
        }
        writeln!(
            f,
            "{} to create, {} to update, {} to scale, {} to remove, {} unchanged",
            self.count(Op::Create),
            self.count(Op::Update),
            self.count(Op::Scale),
            self.count(Op::Remove),
            self.unchanged.len()
        )
    }
}

/// Options that change desired state on the way (`twip scale`).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Replica counts by short or full service name.
    pub scale: BTreeMap<String, u64>,
    /// Services to roll even when their spec did not change (`twip update`): the
    /// force-update counter goes up by one, so every task is replaced, one at a time.
    pub force: std::collections::BTreeSet<String>,
}

/// Compares desired with observed and says what to do. Pure.
pub fn reconcile(desired: &Desired, observed: &Observed, opts: &Options) -> Plan {
    let mut actions = Vec::new();
    let mut unchanged = Vec::new();

    // Phase 0: networks, configs, secrets the services need.
    for n in desired.networks.iter().filter(|n| !n.external) {
        if !observed.networks.iter().any(|o| o.name == n.name) {
            actions.push(simple(
                Resource::Network,
                &n.name,
                Op::Create,
                "not found",
                0,
            ));
        }
    }
    for (res, want, have) in [
        (Resource::Config, &desired.configs, &observed.configs),
        (Resource::Secret, &desired.secrets, &observed.secrets),
    ] {
        for c in want.iter().filter(|c| !c.external) {
            if !have.iter().any(|o| o.name == c.name) {
                let cause = match have.iter().find(|o| same_key(&o.name, &c.name)) {
                    Some(old) => format!("content changed (was {})", old.name),
                    None => "not found".to_string(),
                };
                actions.push(simple(res, &c.name, Op::Create, &cause, 0));
            }
        }
    }

    // Phase 1: services.
    for d in &desired.services {
        let wanted_override = opts
            .scale
            .get(&d.short)
            .or_else(|| opts.scale.get(&d.name))
            .copied();
        let Some(o) = observed.services.iter().find(|o| o.name == d.name) else {
            let mut spec = d.spec.clone();
            if let (Some(n), Some(r)) = (wanted_override, replicated(&mut spec)) {
                *r = Some(n as i64);
            }
            actions.push(Action {
                resource: Resource::Service,
                name: d.name.clone(),
                op: Op::Create,
                cause: "not found".into(),
                phase: 1,
                spec: Some(Box::new(spec)),
                version: None,
            });
            continue;
        };
        // Replicas: an explicit scale wins; else keep what runs (set by `scale` or the
        // autoscaler) unless the manifest's own count changed.
        let observed_manifest = o
            .label(LABEL_MANIFEST_REPLICAS)
            .and_then(|s| s.parse::<u64>().ok());
        let replicas = match (wanted_override, d.manifest_replicas) {
            (Some(n), _) => Some(n),
            (None, Some(m)) if observed_manifest == Some(m) => o.replicas().or(Some(m)),
            (None, m) => m,
        };
        let hash_same = o.label(LABEL_SPEC_HASH) == Some(d.spec_hash.as_str());
        let forced = opts.force.contains(&d.short) || opts.force.contains(&d.name);
        let mut spec = d.spec.clone();
        if let Some(r) = replicated(&mut spec) {
            *r = replicas.map(|n| n as i64);
        }
        // Keep what `docker stack deploy` keeps: the force-update counter, and the
        // digest-pinned image when the tag did not change.
        if let Some(tt) = spec.task_template.as_mut() {
            tt.force_update = o.spec.task_template.as_ref().and_then(|t| t.force_update);
            if let (Some(cs), Some(old)) = (tt.container_spec.as_mut(), o.image()) {
                if let Some(new) = cs.image.clone() {
                    if old.split('@').next() == Some(new.as_str()) && old.contains('@') {
                        cs.image = Some(old.to_string());
                    }
                }
            }
        }
        if forced {
            if let Some(tt) = spec.task_template.as_mut() {
                tt.force_update = Some(tt.force_update.unwrap_or(0) + 1);
            }
        }
        if !hash_same || forced {
            let cause = if hash_same {
                "rolling restart (forced)".to_string()
            } else {
                describe_changes(&o.spec, &d.spec)
            };
            actions.push(Action {
                resource: Resource::Service,
                name: d.name.clone(),
                op: Op::Update,
                cause,
                phase: 1,
                spec: Some(Box::new(spec)),
                version: Some(o.version),
            });
        } else if replicas.is_some() && replicas != o.replicas() {
            actions.push(Action {
                resource: Resource::Service,
                name: d.name.clone(),
                op: Op::Scale,
                cause: format!(
                    "replicas {} → {}",
                    o.replicas().map_or("?".into(), |r| r.to_string()),
                    replicas.unwrap_or_default()
                ),
                phase: 1,
                spec: Some(Box::new(spec)),
                version: Some(o.version),
            });
        } else {
            unchanged.push(d.name.clone());
        }
    }

    // Phase 2: services no longer in the manifest. Phase 3: what nothing uses any more.
    for o in &observed.services {
        if desired.service(&o.name).is_none() {
            actions.push(simple(
                Resource::Service,
                &o.name,
                Op::Remove,
                "no longer in the manifest",
                2,
            ));
        }
    }
    for (res, want, have) in [
        (Resource::Config, &desired.configs, &observed.configs),
        (Resource::Secret, &desired.secrets, &observed.secrets),
    ] {
        for o in have {
            if !want.iter().any(|c| c.name == o.name) && !observed.retained.contains(&o.name) {
                actions.push(simple(res, &o.name, Op::Remove, "no longer used", 3));
            }
        }
    }
    for o in &observed.networks {
        if !desired.networks.iter().any(|n| n.name == o.name) {
            actions.push(simple(
                Resource::Network,
                &o.name,
                Op::Remove,
                "no longer used",
                3,
            ));
        }
    }

    actions.sort_by(|a, b| (a.phase, a.resource, &a.name).cmp(&(b.phase, b.resource, &b.name)));
    unchanged.sort();
    Plan {
        env: desired.env.clone(),
        stack: desired.stack.clone(),
        actions,
        unchanged,
    }
}

fn simple(resource: Resource, name: &str, op: Op, cause: &str, phase: u8) -> Action {
    Action {
        resource,
        name: name.to_string(),
        op,
        cause: cause.to_string(),
        phase,
        spec: None,
        version: None,
    }
}

fn replicated(spec: &mut ServiceSpec) -> Option<&mut Option<i64>> {
    Some(&mut spec.mode.as_mut()?.replicated.as_mut()?.replicas)
}

/// `training_haproxy_0123456789` and `training_haproxy_abcdef0123` are versions of one key.
fn same_key(a: &str, b: &str) -> bool {
    match (a.rsplit_once('_'), b.rsplit_once('_')) {
        (Some((ka, _)), Some((kb, _))) => ka == kb,
        _ => false,
    }
}

/// A short, human reason for an update: which parts of the spec differ.
pub fn describe_changes(old: &ServiceSpec, new: &ServiceSpec) -> String {
    if old
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_SPEC_HASH))
        .is_none()
    {
        return "not yet managed by twip".into();
    }
    let mut parts = Vec::new();
    let cs = |s: &ServiceSpec| {
        s.task_template
            .as_ref()
            .and_then(|t| t.container_spec.clone())
            .unwrap_or_default()
    };
    let (o, n) = (cs(old), cs(new));
    let old_image = o
        .image
        .as_deref()
        .map(|i| i.split('@').next().unwrap_or(i).to_string());
    if old_image != n.image {
        parts.push(format!(
            "image {} → {}",
            old_image.unwrap_or_default(),
            n.image.clone().unwrap_or_default()
        ));
    }
    let json = |v: &dyn erased::Ser| v.to_json();
    let checks: [(&str, serde_json::Value, serde_json::Value); 9] = [
        ("environment", json(&o.env), json(&n.env)),
        (
            "command",
            json(&(o.command.clone(), o.args.clone())),
            json(&(n.command.clone(), n.args.clone())),
        ),
        ("mounts", json(&o.mounts), json(&n.mounts)),
        ("healthcheck", json(&o.health_check), json(&n.health_check)),
        (
            "configs",
            json(&names(
                o.configs.iter().flatten().map(|c| c.config_name.clone()),
            )),
            json(&names(
                n.configs.iter().flatten().map(|c| c.config_name.clone()),
            )),
        ),
        (
            "secrets",
            json(&names(
                o.secrets.iter().flatten().map(|c| c.secret_name.clone()),
            )),
            json(&names(
                n.secrets.iter().flatten().map(|c| c.secret_name.clone()),
            )),
        ),
        (
            "ports",
            json(&old.endpoint_spec.as_ref().and_then(|e| e.ports.clone())),
            json(&new.endpoint_spec.as_ref().and_then(|e| e.ports.clone())),
        ),
        (
            "update config",
            json(&old.update_config),
            json(&new.update_config),
        ),
        (
            "placement",
            json(&old.task_template.as_ref().and_then(|t| t.placement.clone())),
            json(&new.task_template.as_ref().and_then(|t| t.placement.clone())),
        ),
    ];
    for (name, a, b) in checks {
        if !subset(&b, &a) {
            parts.push(format!("{name} changed"));
        }
    }
    if parts.is_empty() {
        "spec changed".into()
    } else {
        parts.join(", ")
    }
}

/// Whether `have` (from the engine) holds everything `want` (what twip sends) says. The engine
/// adds fields and drops zero values, so extra keys in `have` are ignored and a zero value in
/// `want` matches an absent one.
pub fn subset(want: &serde_json::Value, have: &serde_json::Value) -> bool {
    use serde_json::Value as V;
    let zero = |v: &V| match v {
        V::Null => true,
        V::Bool(b) => !b,
        V::Number(n) => n.as_f64() == Some(0.0),
        V::String(s) => s.is_empty(),
        V::Array(a) => a.is_empty(),
        V::Object(o) => o.values().all(|x| matches!(x, V::Null)),
    };
    match (want, have) {
        (V::Object(w), V::Object(h)) => w.iter().all(|(k, wv)| match h.get(k) {
            Some(hv) => subset(wv, hv),
            None => zero(wv),
        }),
        (V::Array(w), V::Array(h)) => {
            w.len() == h.len() && w.iter().zip(h).all(|(a, b)| subset(a, b))
        }
        (w, V::Null) => zero(w),
        (V::Number(a), V::Number(b)) => a.as_f64() == b.as_f64(),
        (w, h) => w == h,
    }
}

fn names(it: impl Iterator<Item = Option<String>>) -> Vec<String> {
    let mut v: Vec<String> = it.flatten().collect();
    v.sort();
    v
}

/// A tiny helper so differently typed parts can be compared as JSON.
mod erased {
    pub trait Ser {
        fn to_json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Ser for T {
        fn to_json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or_default()
        }
    }
}
