//! The audit trail: every change to a stack is recorded as a release
//! ([`crate::engine::releases`]) with who made it (the [`Operation`](super::lock::Operation)
//! the command runs as), the plan executed, the images, the manifest's git commit and how it
//! ended; `twip history` lists and shows them, with what changed since the release before
//! (images, configs, secrets, replicas, environment keys: never a value).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, UNIX_EPOCH};

use serde_json::json;

use crate::engine::model::ServiceSpec;
use crate::engine::releases::{self, Release, Step};
use crate::engine::{self, observe};
use crate::exit;
use crate::plan::{self, Plan};
use crate::ui::Ui;

use super::converge::Deployment;
use super::lock;

/// How a change ended, from its result: `converged`, or the exit code's meaning.
pub fn outcome_of<T>(r: &anyhow::Result<T>) -> &'static str {
    match r {
        Ok(_) => "converged",
        Err(e) => match exit::code_for(e) {
            exit::ROLLED_BACK => "rolled back",
            exit::PAUSED => "paused",
            exit::TIMEOUT => "timed out",
            exit::INTERRUPTED => "interrupted",
            _ => "failed",
        },
    }
}

/// Records a failed R (the plan was executed, at least in part) and passes R on.
pub async fn on_failure<T>(
    d: &Deployment<'_>,
    plan: &Plan,
    ui: &Ui,
    r: anyhow::Result<T>,
) -> anyhow::Result<T> {
    if r.is_err() {
        record(d, plan, outcome_of(&r), ui).await;
    }
    r
}

/// Records what runs now, after PLAN was executed, as the stack's newest release, with
/// OUTCOME and the operation. A failure to record is a warning: the change itself is done.
pub async fn record(d: &Deployment<'_>, plan: &Plan, outcome: &str, ui: &Ui) -> Option<u64> {
    let stack = d.stack();
    let op = lock::current().unwrap_or_else(|| lock::Operation::here("unknown"));
    let commit = crate::exec::git::commit_tag_of(d.project_dir).await;
    let result = async {
        let obs = observe::observe(d.api, stack).await?;
        let images = obs
            .services
            .iter()
            .map(|s| (s.name.clone(), image_of(&s.spec)))
            .collect();
        let release = Release {
            services: obs.services.into_iter().map(|s| (s.name, s.spec)).collect(),
            user: op.user,
            host: op.host,
            command: op.command,
            reason: op.reason,
            plan: steps(plan),
            images,
            commit,
            outcome: outcome.to_string(),
            ..Release::default()
        };
        let labels = plan::desired::stack_labels(d.env);
        engine::releases::record(d.api, stack, release, labels).await
    }
    .await;
    match result {
        Ok(seq) => {
            ui.debug(&format!("recorded as release {seq} of {stack} ({outcome})"));
            Some(seq)
        }
        Err(e) => {
            ui.warn(&format!(
                "could not record the release (history and rollback will not see it): {e}"
            ));
            None
        }
    }
}

/// The number the next release of STACK will get.
pub async fn next_number(d: &Deployment<'_>) -> u64 {
    releases::list(d.api, d.stack())
        .await
        .ok()
        .and_then(|l| l.last().map(|(_, r)| r.seq + 1))
        .unwrap_or(1)
}

fn steps(plan: &Plan) -> Vec<Step> {
    plan.actions
        .iter()
        .map(|a| Step {
            op: format!("{:?}", a.op).to_lowercase(),
            resource: format!("{:?}", a.resource).to_lowercase(),
            name: a.name.clone(),
            cause: a.cause.clone(),
        })
        .collect()
}

fn container(s: &ServiceSpec) -> Option<&crate::engine::model::TaskSpecContainerSpec> {
    s.task_template.as_ref()?.container_spec.as_ref()
}

/// A service's image as deployed: `REF@sha256:...`, or `REF (image sha256:...)` when the
/// local image's id pins it.
pub fn image_of(s: &ServiceSpec) -> String {
    let Some(c) = container(s) else {
        return String::new();
    };
    let image = c.image.clone().unwrap_or_default();
    match c
        .labels
        .as_ref()
        .and_then(|l| l.get(crate::labels::IMAGE_ID))
    {
        Some(id) if !image.contains('@') => format!("{image} (image {id})"),
        _ => image,
    }
}

fn short_image(s: &str) -> String {
    let s = s.split(" (image").next().unwrap_or(s);
    match s.split_once('@') {
        Some((r, d)) => format!("{r}@{}", &d[..d.len().min(19)]),
        None => s.to_string(),
    }
}

fn when(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() {
        "unknown"
    } else {
        s
    }
}

/// Every kept release of the stack, oldest first.
pub async fn list(d: &Deployment<'_>) -> anyhow::Result<Vec<Release>> {
    Ok(releases::list(d.api, d.stack())
        .await?
        .into_iter()
        .map(|(_, r)| r)
        .collect())
}

/// A release as one JSON object (without its specs); with PREVIOUS, its diff too.
pub fn to_json(r: &Release, previous: Option<&Release>, full: bool) -> serde_json::Value {
    let mut v = json!({
        "number": r.seq, "time": when(r.created), "user": or_unknown(&r.user),
        "host": or_unknown(&r.host), "command": or_unknown(&r.command), "reason": r.reason,
        "outcome": or_unknown(&r.outcome), "commit": r.commit, "images": r.images_or_specs(),
    });
    if full {
        v["plan"] = serde_json::to_value(&r.plan).unwrap_or_default();
        v["diff"] = json!(diff(previous, r));
        v["previous"] = json!(previous.map(|p| p.seq));
    }
    v
}

trait Images {
    fn images_or_specs(&self) -> BTreeMap<String, String>;
}

impl Images for Release {
    /// The recorded images, or (records from before they were) the specs' images.
    fn images_or_specs(&self) -> BTreeMap<String, String> {
        if !self.images.is_empty() {
            return self.images.clone();
        }
        self.services
            .iter()
            .map(|(n, s)| (n.clone(), image_of(s)))
            .collect()
    }
}

/// The table `twip history ENV` prints.
pub fn table(env: &str, stack: &str, list: &[Release]) -> String {
    if list.is_empty() {
        return format!("{env}: no releases recorded (twip records one for each change)\n");
    }
    let mut rows = vec![[
        "#".to_string(),
        "time".into(),
        "user".into(),
        "command".into(),
        "outcome".into(),
        "images".into(),
    ]];
    for r in list.iter().rev() {
        let images: BTreeSet<String> = r
            .images_or_specs()
            .values()
            .map(|i| short_image(i))
            .collect();
        rows.push([
            r.seq.to_string(),
            when(r.created),
            or_unknown(&r.user).to_string(),
            or_unknown(&r.command).to_string(),
            or_unknown(&r.outcome).to_string(),
            images.into_iter().collect::<Vec<_>>().join(", "),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = format!("releases of {env} (stack {stack}), newest first:\n");
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i == 5 {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// What `twip history ENV N` prints: the release, its plan, and the diff to PREVIOUS.
pub fn show(r: &Release, previous: Option<&Release>) -> String {
    let mut out = format!(
        "release {}: {} by {}@{}\n  command: {}\n  outcome: {}\n",
        r.seq,
        when(r.created),
        or_unknown(&r.user),
        or_unknown(&r.host),
        or_unknown(&r.command),
        or_unknown(&r.outcome)
    );
    if !r.reason.is_empty() {
        out.push_str(&format!("  reason: {}\n", r.reason));
    }
    out.push_str(&format!(
        "  commit: {}\n",
        r.commit.as_deref().unwrap_or("unknown")
    ));
    out.push_str("  images:\n");
    for (svc, image) in r.images_or_specs() {
        out.push_str(&format!("    {svc}: {image}\n"));
    }
    out.push_str("plan:\n");
    if r.plan.is_empty() {
        out.push_str("  (not recorded)\n");
    }
    for s in &r.plan {
        out.push_str(&format!(
            "  {} {} {}: {}\n",
            s.op, s.resource, s.name, s.cause
        ));
    }
    match previous {
        Some(p) => out.push_str(&format!("changes since release {}:\n", p.seq)),
        None => out.push_str("changes (no earlier release is kept):\n"),
    }
    let d = diff(previous, r);
    if d.is_empty() {
        out.push_str("  none in images, configs, secrets, replicas or environment keys\n");
    }
    for line in d {
        out.push_str(&format!("  {line}\n"));
    }
    out
}

fn env_keys(s: &ServiceSpec) -> BTreeMap<String, String> {
    container(s)
        .and_then(|c| c.env.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv, String::new()),
        })
        .collect()
}

fn objects(s: &ServiceSpec) -> (BTreeSet<String>, BTreeSet<String>) {
    let c = container(s);
    let configs = c
        .and_then(|c| c.configs.clone())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| c.config_name)
        .collect();
    let secrets = c
        .and_then(|c| c.secrets.clone())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| c.secret_name)
        .collect();
    (configs, secrets)
}

fn replicas(s: &ServiceSpec) -> Option<i64> {
    s.mode.as_ref()?.replicated.as_ref()?.replicas
}

fn sets(what: &str, svc: &str, a: &BTreeSet<String>, b: &BTreeSet<String>, out: &mut Vec<String>) {
    for gone in a.difference(b) {
        out.push(format!("{svc}: {what} {gone} removed"));
    }
    for new in b.difference(a) {
        out.push(format!("{svc}: {what} {new} added"));
    }
}

/// What changed from A to B, service by service: images, configs and secrets (by name),
/// replicas, environment keys (added, removed, changed: never their values).
pub fn diff(a: Option<&Release>, b: &Release) -> Vec<String> {
    let empty = BTreeMap::new();
    let before = a.map_or(&empty, |a| &a.services);
    let mut out = Vec::new();
    for name in before.keys().filter(|n| !b.services.contains_key(*n)) {
        out.push(format!("{name}: service removed"));
    }
    for (name, spec) in &b.services {
        let Some(old) = before.get(name) else {
            out.push(format!("{name}: service added ({})", image_of(spec)));
            continue;
        };
        let (i0, i1) = (image_of(old), image_of(spec));
        if i0 != i1 {
            out.push(format!("{name}: image {i0} → {i1}"));
        }
        let ((c0, s0), (c1, s1)) = (objects(old), objects(spec));
        sets("config", name, &c0, &c1, &mut out);
        sets("secret", name, &s0, &s1, &mut out);
        if replicas(old) != replicas(spec) {
            let r = |r: Option<i64>| r.map_or("-".to_string(), |n| n.to_string());
            out.push(format!(
                "{name}: replicas {} → {}",
                r(replicas(old)),
                r(replicas(spec))
            ));
        }
        let (e0, e1) = (env_keys(old), env_keys(spec));
        let k0: BTreeSet<String> = e0.keys().cloned().collect();
        let k1: BTreeSet<String> = e1.keys().cloned().collect();
        sets("environment key", name, &k0, &k1, &mut out);
        for k in k0.intersection(&k1).filter(|k| e0[*k] != e1[*k]) {
            out.push(format!("{name}: environment key {k} changed"));
        }
    }
    out
}

/// Release N of the list and the kept release before it; exit 2 when N is not kept.
pub fn find(env: &str, list: &[Release], n: u64) -> anyhow::Result<(Release, Option<Release>)> {
    let Some(i) = list.iter().position(|r| r.seq == n) else {
        let kept: Vec<String> = list.iter().map(|r| r.seq.to_string()).collect();
        return Err(exit::invalid(format!(
            "{env}: no release {n} (kept: {})",
            if kept.is_empty() {
                "none".to_string()
            } else {
                kept.join(", ")
            }
        )));
    };
    Ok((list[i].clone(), i.checked_sub(1).map(|p| list[p].clone())))
}
