//! The pure core of the lifecycle: desired state (from the manifest) against observed state
//! (from the engine) gives a plan of actions, each with its cause. No I/O here: the engine
//! layer fills [`Observed`] and executes the [`Plan`] without making decisions of its own.
//! The plan's text is deterministic; it is what `twip plan` prints and what tests compare.

pub mod desired;
pub mod drift;
pub mod hot_swap;
pub mod order;

use std::collections::BTreeMap;
use std::fmt;

use crate::engine::model::ServiceSpec;
use serde::Serialize;

pub use desired::{Desired, DesiredService};
use desired::{LABEL_MANIFEST_REPLICAS, LABEL_SPEC_HASH};
pub use drift::Change;

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
    /// Network ID → name, for every network the engine knows: a service's spec names its
    /// networks by ID.
    pub network_names: BTreeMap<String, String>,
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
    /// For service updates: each field that differs, with what the engine holds and what the
    /// update sets (also when the change was made outside twip).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub env: String,
    pub stack: String,
    pub actions: Vec<Action>,
    /// Services that need nothing.
    pub unchanged: Vec<String>,
    /// Release tasks (`before_deploy`) to run once the networks, configs and secrets exist
    /// and before any service changes ([`order::release_steps`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub release: Vec<order::ReleaseStep>,
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
        let mut release_shown = self.release.is_empty();
        for a in &self.actions {
            if !release_shown && a.phase > 0 {
                self.fmt_release(f, width)?;
                release_shown = true;
            }
            let sign = match a.op {
                Op::Create => "+",
                Op::Update | Op::Scale => "~",
                Op::Remove => "-",
            };
            let res = format!("{:?}", a.resource).to_lowercase();
            let op = format!("{:?}", a.op).to_lowercase();
            writeln!(f, "  {sign} {res:<7} {:<width$}  {op}: {}", a.name, a.cause)?;
            for c in &a.changes {
                writeln!(f, "      {c}")?;
            }
        }
        if !release_shown {
            self.fmt_release(f, width)?;
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

impl Plan {
    fn fmt_release(&self, f: &mut fmt::Formatter<'_>, width: usize) -> fmt::Result {
        for r in &self.release {
            writeln!(
                f,
                "  > task    {:<width$}  before_deploy: {} (before any service changes)",
                r.service,
                r.command.join(" ")
            )?;
        }
        Ok(())
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
    // Phase 0: networks, configs, secrets the services need.
    let mut actions = object_creates(desired, observed);
    let mut unchanged = Vec::new();

    // Phase 1: services. With the agent, a certificate-only change of the proxy is a hot swap.
    let agent = desired
        .services
        .iter()
        .any(|s| s.short == hot_swap::AGENT_SERVICE);
    for d in &desired.services {
        match service_action(d, observed, opts, agent) {
            Some(action) => actions.push(action),
            None => unchanged.push(d.name.clone()),
        }
    }

    // Phase 2: services no longer in the manifest. Phase 3: what nothing uses any more
    // (but a hot-swapped proxy still mounts its older certificates).
    let kept: Vec<String> = actions
        .iter()
        .filter(|a| a.cause == hot_swap::CAUSE)
        .filter_map(|a| a.spec.as_deref())
        .flat_map(hot_swap::secret_names)
        .collect();
    actions.extend(
        removals(desired, observed)
            .into_iter()
            .filter(|a| !(a.resource == Resource::Secret && kept.contains(&a.name))),
    );

    actions.sort_by(|a, b| (a.phase, a.resource, &a.name).cmp(&(b.phase, b.resource, &b.name)));
    unchanged.sort();
    Plan {
        env: desired.env.clone(),
        stack: desired.stack.clone(),
        actions,
        unchanged,
        release: Vec::new(),
    }
}

/// Phase 0: the networks, configs and secrets the engine lacks (a config or secret whose
/// content changed has a new name, so it is created beside the old one).
fn object_creates(desired: &Desired, observed: &Observed) -> Vec<Action> {
    let mut actions = Vec::new();
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
    actions
}

/// Phase 1, one service: create, update, scale, or `None` when it needs nothing.
fn service_action(
    d: &DesiredService,
    observed: &Observed,
    opts: &Options,
    agent: bool,
) -> Option<Action> {
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
        return Some(service(
            d,
            Op::Create,
            "not found".into(),
            spec,
            None,
            Vec::new(),
        ));
    };
    let replicas = replicas_to_keep(d, o, wanted_override);
    let managed = o.label(LABEL_SPEC_HASH).is_some();
    let hash_same = o.label(LABEL_SPEC_HASH) == Some(d.spec_hash.as_str());
    let forced = opts.force.contains(&d.short) || opts.force.contains(&d.name);
    let mut spec = spec_to_send(d, o, replicas);
    // Every field twip sets, compared with what the engine holds: the spec-hash label
    // says what twip last sent, not what runs (`docker service update` keeps the label).
    let mut changes = drift::diff(&o.spec, &spec, &observed.network_names);
    let mut hot = false;
    if let Some(c) = hot_swap::candidate(d, o, &spec).filter(|_| agent && !forced) {
        let only_label = drift::diff(&o.spec, &c, &observed.network_names);
        if only_label
            .iter()
            .all(|x| x.field == "label" && x.key.as_deref() == Some(crate::labels::TLS_HOT_SWAP))
        {
            hot = !only_label.is_empty();
            // Sent: the engine's own spec with the new labels, so that its task template is
            // exactly what the tasks run (a field twip does not compare, an empty `Resources`
            // or a secret's place in the list, would make swarm replace them).
            let mut sent = o.spec.clone();
            sent.labels = c.labels;
            spec = sent;
            changes = only_label;
        }
    }
    if forced {
        if let Some(tt) = spec.task_template.as_mut() {
            tt.force_update = Some(tt.force_update.unwrap_or(0) + 1);
        }
    }
    if !hash_same || !changes.is_empty() || forced {
        let cause = if hot {
            hot_swap::CAUSE.to_string()
        } else {
            update_cause(managed, hash_same, &changes)
        };
        Some(service(
            d,
            Op::Update,
            cause,
            spec,
            Some(o.version),
            changes,
        ))
    } else if replicas.is_some() && replicas != o.replicas() {
        let cause = format!(
            "replicas {} → {}",
            o.replicas().map_or("?".into(), |r| r.to_string()),
            replicas.unwrap_or_default()
        );
        Some(service(
            d,
            Op::Scale,
            cause,
            spec,
            Some(o.version),
            Vec::new(),
        ))
    } else {
        None
    }
}

/// Replicas: an explicit scale wins; else keep what runs (set by `scale` or the autoscaler)
/// unless the manifest's own count changed.
fn replicas_to_keep(
    d: &DesiredService,
    o: &ObservedService,
    wanted_override: Option<u64>,
) -> Option<u64> {
    let observed_manifest = o
        .label(LABEL_MANIFEST_REPLICAS)
        .and_then(|s| s.parse::<u64>().ok());
    match (wanted_override, d.manifest_replicas) {
        (Some(n), _) => Some(n),
        (None, Some(m)) if observed_manifest == Some(m) => o.replicas().or(Some(m)),
        (None, m) => m,
    }
}

/// The desired spec with `replicas`, and what `docker stack deploy` keeps: the force-update
/// counter, and the digest-pinned image when the tag did not change. The autoscaler's state
/// (labels `io.twip.autoscale.*`, kept by the in-cluster agent) stays too.
fn spec_to_send(d: &DesiredService, o: &ObservedService, replicas: Option<u64>) -> ServiceSpec {
    let mut spec = d.spec.clone();
    let kept: Vec<(String, String)> = o
        .spec
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| k.starts_with(crate::autoscale::state::LABEL_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !kept.is_empty() {
        spec.labels
            .get_or_insert_with(Default::default)
            .extend(kept);
    }
    if let Some(r) = replicated(&mut spec) {
        *r = replicas.map(|n| n as i64);
    }
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
    spec
}

/// Why a service is updated, as the plan prints it.
fn update_cause(managed: bool, hash_same: bool, changes: &[Change]) -> String {
    if !managed {
        "not yet managed by twip".to_string()
    } else if changes.is_empty() {
        if hash_same {
            "rolling restart (forced)".to_string()
        } else {
            "spec changed".to_string()
        }
    } else if hash_same {
        format!("changed outside twip: {}", drift::summary(changes))
    } else {
        drift::summary(changes)
    }
}

/// A phase-1 action on service `d`.
fn service(
    d: &DesiredService,
    op: Op,
    cause: String,
    spec: ServiceSpec,
    version: Option<u64>,
    changes: Vec<Change>,
) -> Action {
    Action {
        resource: Resource::Service,
        name: d.name.clone(),
        op,
        cause,
        phase: 1,
        spec: Some(Box::new(spec)),
        version,
        changes,
    }
}

/// Phase 2: services no longer in the manifest. Phase 3: configs, secrets and networks that
/// nothing uses any more (configs and secrets of recorded releases are kept).
fn removals(desired: &Desired, observed: &Observed) -> Vec<Action> {
    let mut actions = Vec::new();
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
    actions
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
        changes: Vec::new(),
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
