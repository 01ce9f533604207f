//! Checks that types cannot express: references between sections, ports that would collide,
//! counts that contradict each other, files that must exist. Every rule adds a problem with
//! the path of the key it is about; none stops the others.

use std::path::Path;

use super::diag::{join_path, suggest, Problem};
use super::model::*;
use super::names;
use super::yaml::Node;

mod files;
mod grammars;
mod images;
mod jobs;
mod numbers;
mod order;
mod proxy;
mod services;
mod tls;
mod top;

use files::{check_files, check_paths};
use grammars::{check_characters, check_grammars};
use images::check_images;
use jobs::check_jobs;
use numbers::check_numbers;
use order::check_order;
use proxy::{check_monitoring, check_proxy};
use services::{check_ports, check_services};
use tls::check_tls;
use top::{check_nodes, check_top};

pub use files::stays_in_project;
pub use numbers::{MAX_COUNT, MAX_DURATION, MAX_MEMORY};
pub use tls::{warnings, EXPIRY_WARNING_DAYS};

/// Platforms buildx and swarm know.
pub const PLATFORMS: &[&str] = &[
    "linux/amd64",
    "linux/arm64",
    "linux/arm64/v8",
    "linux/arm/v7",
    "linux/arm/v6",
    "linux/386",
    "linux/ppc64le",
    "linux/s390x",
    "linux/riscv64",
];

/// Service names twip adds to the stack itself when the sections are present.
pub const PROXY_SERVICE: &str = "proxy";
pub const MONITORING_SERVICE: &str = "prometheus";
/// The keepalived service twip adds beside the proxy for `proxy.vip`.
pub const VIP_SERVICE: &str = "vip";
/// The in-cluster agent's service (`agent:`, or a controller with work).
pub const AGENT_SERVICE: &str = "agent";

/// Whether the environment runs the agent's service: `agent.enabled` when set, else whether
/// a controller has work (a job, an autoscale policy, a certificate of the proxy). The agent
/// layer decides the same from its config (`agent::for_stack`; a test keeps them equal).
pub fn agent_runs(m: &Manifest) -> bool {
    if let Some(on) = m.agent.as_ref().and_then(|a| a.enabled) {
        return on;
    }
    let tls = m.proxy.as_ref().and_then(|p| p.tls.as_ref());
    !m.jobs.is_empty()
        || m.services.values().any(|s| s.autoscale.is_some())
        || tls.is_some_and(|t| t.acme.is_some() || !t.certificates.is_empty())
}

/// The services twip adds to this environment's stack beside the manifest's own (the proxy,
/// prometheus, the vip's keepalived; the agent when [`agent_runs`]).
pub fn added_services(m: &Manifest) -> Vec<&'static str> {
    [
        (m.proxy.is_some(), PROXY_SERVICE),
        (
            m.monitoring.as_ref().is_some_and(|x| x.enabled),
            MONITORING_SERVICE,
        ),
        (
            m.proxy.as_ref().is_some_and(|p| p.vip.is_some()),
            VIP_SERVICE,
        ),
        (agent_runs(m), AGENT_SERVICE),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect()
}

struct Checker<'a> {
    root: &'a Node,
    out: &'a mut Vec<Problem>,
}

impl Checker<'_> {
    fn err(&mut self, path: &[&str], msg: impl Into<String>) {
        let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        let span = self.root.span_of(&path);
        self.out.push(Problem::at(span, &join_path(&path), msg));
    }
}

fn did_you_mean<'a>(name: &str, known: impl IntoIterator<Item = &'a str> + Clone) -> String {
    match suggest(name, known.clone()) {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => {
            let list: Vec<&str> = known.into_iter().collect();
            if list.is_empty() {
                String::new()
            } else {
                format!(" (defined: {})", list.join(", "))
            }
        }
    }
}

/// Whether a service/proxy image reference is a full registry reference (not an `images` key).
pub fn is_full_reference(image: &str) -> bool {
    image.contains(':') || image.contains('@') || image.contains('/')
}

fn valid_name(s: &str) -> bool {
    names::object_name(s).is_ok()
}

/// The key a problem with an image's Dockerfile is reported at: `dockerfile` when the manifest
/// names one, else `context` (the default `Dockerfile` is looked for there).
fn dockerfile_key(b: &Build) -> &'static str {
    if b.dockerfile.is_some() {
        "dockerfile"
    } else {
        "context"
    }
}

/// Runs every rule. `env_name` is the environment's name (its stack's name unless `stack`
/// says otherwise); `project_dir` is where relative paths (build contexts, files) start.
pub fn check(
    m: &Manifest,
    env_name: &str,
    root: &Node,
    project_dir: &Path,
    out: &mut Vec<Problem>,
) {
    let mut c = Checker { root, out };
    check_top(m, env_name, &mut c);
    check_images(m, project_dir, &mut c);
    check_services(m, project_dir, &mut c);
    check_jobs(m, &mut c);
    check_ports(m, &mut c);
    check_order(m, &mut c);
    check_proxy(m, &mut c);
    check_monitoring(m, &mut c);
    check_tls(m, project_dir, crate::tls::now(), &mut c);
    check_nodes(m, &mut c);
    check_files(m, project_dir, &mut c);
    check_grammars(m, &mut c);
    check_numbers(m, &mut c);
    check_paths(m, project_dir, &mut c);
    check_characters(root, c.out);
}
