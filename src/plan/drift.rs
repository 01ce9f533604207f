//! Drift: what differs between the service spec the engine holds and the one twip would send,
//! field by field, for every field twip sets. Pure.
//!
//! Both specs are read into one canonical view first ([`view`]): a sorted map from
//! (field, key) to a display value. The view is what makes an engine's spec comparable with
//! twip's: the Engine API drops zero values (`Delay: 0`, `ReadOnly: false`), adds defaults
//! (`Isolation`, `Runtime`, `DNSConfig`), names networks by ID, and `docker service update`
//! reorders mounts and appends variables; none of that is a change. What is left out on
//! purpose: the replica count (kept by design: `twip scale` and the autoscaler set it), the
//! force-update counter (kept, as `docker stack deploy` keeps it), config and secret IDs (their
//! names are compared), and twip's bookkeeping labels (`io.twip.spec-hash`,
//! `io.twip.manifest-replicas`, the autoscaler's `io.twip.autoscale.*`). Config and secret contents are never read here: their names
//! carry a hash of the content.

use std::collections::BTreeMap;
use std::fmt;

use crate::engine::model::*;
use serde::Serialize;

use super::desired::{LABEL_MANIFEST_REPLICAS, LABEL_SPEC_HASH};

/// One drifted field: what the engine holds (`old`) and what twip would set (`new`); `None`
/// is "not set".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The kind of field: `image`, `env`, `label`, `container-label`, `mount`, `port`,
    /// `resources`, `network`, `placement`, `update`, `rollback`, `restart`, `healthcheck`,
    /// `command`, `args`, `hostname`, `working-dir`, `user`, `stop-grace-period`, `config`,
    /// `secret`, `mode`, `endpoint-mode`.
    pub field: &'static str,
    /// Which one of that kind (a variable, a label, a mount's target, `8080/tcp`,
    /// `limits.cpus`, ...); `None` for fields that are a single value (`image`).
    pub key: Option<String>,
    pub old: Option<String>,
    pub new: Option<String>,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| match v.as_deref() {
            None => "(unset)".to_string(),
            Some("") => "\"\"".to_string(),
            Some(s) => s.to_string(),
        };
        match &self.key {
            Some(k) => write!(f, "{} {k}: ", self.field)?,
            None => write!(f, "{}: ", self.field)?,
        }
        write!(f, "{} → {}", show(&self.old), show(&self.new))
    }
}

/// The canonical view of a spec: (rank of the field, field, key) → value. Key "" for
/// single-valued fields.
pub type View = BTreeMap<(u8, &'static str, String), String>;

/// The fields twip sets, in the order a plan shows them.
const FIELDS: &[&str] = &[
    "image",
    "command",
    "args",
    "env",
    "mount",
    "port",
    "resources",
    "network",
    "placement",
    "label",
    "container-label",
    "config",
    "secret",
    "healthcheck",
    "update",
    "rollback",
    "restart",
    "hostname",
    "working-dir",
    "user",
    "stop-grace-period",
    "mode",
    "endpoint-mode",
];

/// The field of that name, as [`Change::field`] holds it.
pub fn field_name(name: &str) -> Option<&'static str> {
    FIELDS.iter().find(|f| **f == name).copied()
}

fn rank(field: &'static str) -> (u8, &'static str) {
    let r = FIELDS
        .iter()
        .position(|f| *f == field)
        .unwrap_or(FIELDS.len());
    (r as u8, field)
}

/// What differs between ENGINE (the spec the engine holds) and WANTED (the spec twip would
/// send), in a stable order. NETWORKS maps network IDs to names (the engine names a service's
/// networks by ID; twip by name).
pub fn diff(
    engine: &ServiceSpec,
    wanted: &ServiceSpec,
    networks: &BTreeMap<String, String>,
) -> Vec<Change> {
    let old = view(engine, networks);
    let new = view(wanted, networks);
    let mut keys: Vec<&(u8, &'static str, String)> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| Change {
            field: k.1,
            key: (!k.2.is_empty()).then(|| k.2.clone()),
            old: old.get(k).cloned(),
            new: new.get(k).cloned(),
        })
        .collect()
}

/// A short cause for an update from its changes: `image a → b, env, mount changed`.
pub fn summary(changes: &[Change]) -> String {
    let mut parts = Vec::new();
    if let Some(c) = changes.iter().find(|c| c.field == "image") {
        parts.push(format!(
            "image {} → {}",
            c.old.as_deref().unwrap_or("(unset)"),
            c.new.as_deref().unwrap_or("(unset)")
        ));
    }
    let mut fields: Vec<&str> = changes
        .iter()
        .map(|c| c.field)
        .filter(|f| *f != "image")
        .collect();
    fields.dedup();
    if !fields.is_empty() {
        parts.push(format!("{} changed", fields.join(", ")));
    }
    parts.join(", ")
}

/// The canonical view of SPEC (see the module's documentation).
pub fn view(spec: &ServiceSpec, networks: &BTreeMap<String, String>) -> View {
    let mut v = View::new();
    let mut out = Put(&mut v);
    let tt = spec.task_template.clone().unwrap_or_default();
    let cs = tt.container_spec.clone().unwrap_or_default();
    view_container(&mut out, &cs);
    view_mounts(&mut out, &cs);
    view_ports(&mut out, spec);
    view_resources(&mut out, &tt);
    view_networks(&mut out, &tt, networks);
    view_placement(&mut out, &tt);
    view_labels(&mut out, spec, &cs);
    view_files(&mut out, &cs);
    view_healthcheck(&mut out, &cs);
    view_rollout(&mut out, spec);
    view_restart(&mut out, &tt);
    view_settings(&mut out, spec, &cs);
    v
}

/// Puts values into a view under (rank of the field, field, key); `None` puts nothing.
struct Put<'a>(&'a mut View);

impl Put<'_> {
    fn put(&mut self, field: &'static str, key: &str, value: Option<String>) {
        if let Some(value) = value {
            let (r, f) = rank(field);
            self.0.insert((r, f, key.to_string()), value);
        }
    }
}

/// The container's image, command, arguments and variables.
fn view_container(out: &mut Put, cs: &TaskSpecContainerSpec) {
    out.put("image", "", text(&cs.image));
    out.put("command", "", list(&cs.command));
    out.put("args", "", list(&cs.args));
    // Variables by name (the last one wins, as in a container); `docker service update
    // --env-add` appends, so their order is not compared.
    for e in cs.env.iter().flatten() {
        let (k, val) = e.split_once('=').unwrap_or((e.as_str(), ""));
        out.put("env", k, Some(val.to_string()));
    }
}

/// Mounts by target (the CLI reorders them), with the labels a volume is created with.
fn view_mounts(out: &mut Put, cs: &TaskSpecContainerSpec) {
    for m in cs.mounts.iter().flatten() {
        let target = m.target.clone().unwrap_or_default();
        let typ = enum_text(&m.typ).unwrap_or_else(|| "volume".into());
        let mut value = match m.source.as_deref().filter(|s| !s.is_empty()) {
            Some(src) => format!("{typ} {src}"),
            None => typ,
        };
        if m.read_only == Some(true) {
            value.push_str(", read-only");
        }
        if let Some(size) = m
            .tmpfs_options
            .as_ref()
            .and_then(|t| t.size_bytes)
            .filter(|s| *s > 0)
        {
            value.push_str(&format!(", size {}", bytes(size)));
        }
        out.put("mount", &target, Some(value));
        // Labels a volume is created with.
        for (k, l) in m
            .volume_options
            .as_ref()
            .and_then(|o| o.labels.as_ref())
            .into_iter()
            .flatten()
        {
            out.put(
                "mount",
                &format!("{target} volume-label {k}"),
                Some(l.clone()),
            );
        }
    }
}

/// Ports by target and protocol; one target may be published more than once.
fn view_ports(out: &mut Put, spec: &ServiceSpec) {
    let mut ports: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in spec
        .endpoint_spec
        .as_ref()
        .and_then(|e| e.ports.as_ref())
        .into_iter()
        .flatten()
    {
        let proto = enum_text(&p.protocol).unwrap_or_else(|| "tcp".into());
        let key = format!("{}/{proto}", p.target_port.unwrap_or(0));
        let mode = enum_text(&p.publish_mode).unwrap_or_else(|| "ingress".into());
        let published = p
            .published_port
            .filter(|n| *n > 0)
            .map_or_else(|| "unpublished".to_string(), |n| n.to_string());
        ports
            .entry(key)
            .or_default()
            .push(format!("{published} ({mode})"));
    }
    for (k, mut vals) in ports {
        vals.sort();
        out.put("port", &k, Some(vals.join(", ")));
    }
}

fn view_resources(out: &mut Put, tt: &TaskSpec) {
    if let Some(r) = &tt.resources {
        if let Some(l) = &r.limits {
            out.put("resources", "limits.cpus", cpus(l.nano_cpus));
            out.put("resources", "limits.memory", size(l.memory_bytes));
        }
        if let Some(l) = &r.reservations {
            out.put("resources", "reservations.cpus", cpus(l.nano_cpus));
            out.put("resources", "reservations.memory", size(l.memory_bytes));
        }
    }
}

/// Networks by name (the engine names them by ID), with their aliases.
fn view_networks(out: &mut Put, tt: &TaskSpec, networks: &BTreeMap<String, String>) {
    for n in tt.networks.iter().flatten() {
        let target = n.target.clone().unwrap_or_default();
        let name = networks.get(&target).cloned().unwrap_or(target);
        let mut aliases = n.aliases.clone().unwrap_or_default();
        aliases.sort();
        let value = if aliases.is_empty() {
            "attached".to_string()
        } else {
            format!("aliases {}", aliases.join(", "))
        };
        out.put("network", &name, Some(value));
    }
}

fn view_placement(out: &mut Put, tt: &TaskSpec) {
    if let Some(p) = &tt.placement {
        let mut constraints = p.constraints.clone().unwrap_or_default();
        constraints.sort();
        out.put(
            "placement",
            "constraints",
            (!constraints.is_empty()).then(|| constraints.join("; ")),
        );
        let spread: Vec<String> = p
            .preferences
            .iter()
            .flatten()
            .filter_map(|x| x.spread.as_ref()?.spread_descriptor.clone())
            .collect();
        out.put(
            "placement",
            "spread",
            (!spread.is_empty()).then(|| spread.join(", ")),
        );
        out.put(
            "placement",
            "max_replicas_per_node",
            p.max_replicas.filter(|n| *n > 0).map(|n| n.to_string()),
        );
    }
}

/// Service labels, without the ones twip keeps its own books with, and container labels.
fn view_labels(out: &mut Put, spec: &ServiceSpec, cs: &TaskSpecContainerSpec) {
    // Labels, without the ones twip keeps its own books with.
    for (k, l) in spec.labels.iter().flatten() {
        // The autoscaler's state (`io.twip.autoscale.*`) is its own book too.
        if k != LABEL_SPEC_HASH
            && k != LABEL_MANIFEST_REPLICAS
            && !k.starts_with(crate::autoscale::state::LABEL_PREFIX)
        {
            out.put("label", k, Some(l.clone()));
        }
    }
    for (k, l) in cs.labels.iter().flatten() {
        out.put("container-label", k, Some(l.clone()));
    }
}

/// Configs and secrets by the file they become, with the object's name (its content hash).
fn view_files(out: &mut Put, cs: &TaskSpecContainerSpec) {
    for c in cs.configs.iter().flatten() {
        let f = c.file.clone().unwrap_or_default();
        out.put(
            "config",
            f.name.as_deref().unwrap_or("(runtime)"),
            Some(object(&c.config_name, &f.uid, &f.gid, f.mode)),
        );
    }
    for s in cs.secrets.iter().flatten() {
        let f = s.file.clone().unwrap_or_default();
        out.put(
            "secret",
            f.name.as_deref().unwrap_or(""),
            Some(object(&s.secret_name, &f.uid, &f.gid, f.mode)),
        );
    }
}

fn view_healthcheck(out: &mut Put, cs: &TaskSpecContainerSpec) {
    if let Some(h) = &cs.health_check {
        out.put("healthcheck", "test", list(&h.test));
        out.put("healthcheck", "interval", opt_duration(h.interval));
        out.put("healthcheck", "timeout", opt_duration(h.timeout));
        out.put(
            "healthcheck",
            "retries",
            h.retries.filter(|n| *n > 0).map(|n| n.to_string()),
        );
        out.put("healthcheck", "start_period", opt_duration(h.start_period));
    }
}

/// Update and rollback settings.
fn view_rollout(out: &mut Put, spec: &ServiceSpec) {
    if let Some(u) = &spec.update_config {
        out.put(
            "update",
            "parallelism",
            Some(u.parallelism.unwrap_or(0).to_string()),
        );
        out.put("update", "delay", Some(duration(u.delay)));
        out.put("update", "failure_action", enum_text(&u.failure_action));
        out.put("update", "monitor", Some(duration(u.monitor)));
        out.put(
            "update",
            "max_failure_ratio",
            Some(u.max_failure_ratio.unwrap_or(0.0).to_string()),
        );
        out.put("update", "order", enum_text(&u.order));
    }
    if let Some(u) = &spec.rollback_config {
        out.put(
            "rollback",
            "parallelism",
            Some(u.parallelism.unwrap_or(0).to_string()),
        );
        out.put("rollback", "delay", Some(duration(u.delay)));
        out.put("rollback", "failure_action", enum_text(&u.failure_action));
        out.put("rollback", "monitor", Some(duration(u.monitor)));
        out.put(
            "rollback",
            "max_failure_ratio",
            Some(u.max_failure_ratio.unwrap_or(0.0).to_string()),
        );
        out.put("rollback", "order", enum_text(&u.order));
    }
}

fn view_restart(out: &mut Put, tt: &TaskSpec) {
    if let Some(r) = &tt.restart_policy {
        out.put("restart", "condition", enum_text(&r.condition));
        out.put("restart", "delay", Some(duration(r.delay)));
        out.put(
            "restart",
            "max_attempts",
            Some(r.max_attempts.unwrap_or(0).to_string()),
        );
        out.put("restart", "window", Some(duration(r.window)));
    }
}

/// Hostname, working directory, user, stop grace period, mode and endpoint mode.
fn view_settings(out: &mut Put, spec: &ServiceSpec, cs: &TaskSpecContainerSpec) {
    out.put("hostname", "", text(&cs.hostname));
    out.put("working-dir", "", text(&cs.dir));
    out.put("user", "", text(&cs.user));
    out.put("stop-grace-period", "", opt_duration(cs.stop_grace_period));
    let mode = spec.mode.as_ref().map(|m| {
        if m.global.is_some() {
            "global"
        } else if m.replicated_job.is_some() {
            "replicated-job"
        } else if m.global_job.is_some() {
            "global-job"
        } else {
            "replicated"
        }
    });
    out.put("mode", "", mode.map(str::to_string));
    out.put(
        "endpoint-mode",
        "",
        spec.endpoint_spec
            .as_ref()
            .and_then(|e| enum_text(&e.mode))
            .or_else(|| Some("vip".into())),
    );
}

fn text(s: &Option<String>) -> Option<String> {
    s.clone().filter(|s| !s.is_empty())
}

fn list(l: &Option<Vec<String>>) -> Option<String> {
    l.as_ref()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::to_string(l).unwrap_or_default())
}

/// An Engine API enum as its wire text (`any`, `start-first`); the empty variant is unset.
fn enum_text<T: Serialize>(e: &Option<T>) -> Option<String> {
    match serde_json::to_value(e.as_ref()?).ok()? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s),
        _ => None,
    }
}

/// A duration in nanoseconds, absent meaning zero (the engine drops zeros).
fn duration(ns: Option<i64>) -> String {
    let ns = ns.unwrap_or(0).max(0) as u64;
    if ns == 0 {
        return "0s".into();
    }
    humantime::format_duration(std::time::Duration::from_nanos(ns)).to_string()
}

/// A duration where zero means "the engine's default".
fn opt_duration(ns: Option<i64>) -> Option<String> {
    ns.filter(|n| *n > 0).map(|n| duration(Some(n)))
}

fn cpus(nano: Option<i64>) -> Option<String> {
    nano.filter(|n| *n > 0)
        .map(|n| format!("{}", n as f64 / 1e9))
}

fn size(b: Option<i64>) -> Option<String> {
    b.filter(|n| *n > 0).map(bytes)
}

fn bytes(b: i64) -> String {
    for (unit, n) in [("G", 1i64 << 30), ("M", 1 << 20), ("K", 1 << 10)] {
        if b % n == 0 {
            return format!("{}{unit}", b / n);
        }
    }
    b.to_string()
}

fn object(
    name: &Option<String>,
    uid: &Option<String>,
    gid: &Option<String>,
    mode: Option<u32>,
) -> String {
    format!(
        "{} (uid {}, gid {}, mode {:04o})",
        name.as_deref().unwrap_or(""),
        uid.as_deref().unwrap_or("0"),
        gid.as_deref().unwrap_or("0"),
        mode.unwrap_or(0o444)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_a_person_writes_them() {
        assert_eq!(duration(None), "0s");
        assert_eq!(duration(Some(1_500_000_000)), "1s 500ms");
        assert_eq!(opt_duration(Some(0)), None);
        assert_eq!(cpus(Some(500_000_000)).as_deref(), Some("0.5"));
        assert_eq!(cpus(Some(0)), None);
        assert_eq!(size(Some(64 << 20)).as_deref(), Some("64M"));
        assert_eq!(size(Some(1 << 30)).as_deref(), Some("1G"));
        assert_eq!(size(Some(1000)).as_deref(), Some("1000"));
        assert_eq!(
            enum_text(&Some(TaskSpecRestartPolicyConditionEnum::ON_FAILURE)).as_deref(),
            Some("on-failure")
        );
        assert_eq!(
            enum_text(&Some(TaskSpecRestartPolicyConditionEnum::EMPTY)),
            None
        );
    }

    #[test]
    fn env_is_compared_by_name_and_a_missing_one_is_unset() {
        let spec = |env: &[&str]| ServiceSpec {
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    env: Some(env.iter().map(|s| s.to_string()).collect()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let none = BTreeMap::new();
        assert!(diff(&spec(&["B=2", "A=1"]), &spec(&["A=1", "B=2"]), &none).is_empty());
        let d = diff(&spec(&["A=1", "C=x=y"]), &spec(&["A=2", "B="]), &none);
        let shown: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "env A: 1 → 2",
                "env B: (unset) → \"\"",
                "env C: x=y → (unset)"
            ]
        );
        assert_eq!(summary(&d), "env changed");
    }
}
