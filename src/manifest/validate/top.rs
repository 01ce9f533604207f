//! The top of a manifest: stack and project names, the engine endpoint, the registry, and
//! the nodes of a multi-node environment.

use std::collections::BTreeMap;

use super::{did_you_mean, Checker, PLATFORMS};
use crate::manifest::model::*;
use crate::manifest::names;

pub(super) fn check_top(m: &Manifest, env_name: &str, c: &mut Checker) {
    if super::agent_runs(m) && m.services.contains_key(super::AGENT_SERVICE) {
        c.err(
            &["services", super::AGENT_SERVICE],
            format!(
                "`{}` is the name of the service twip adds for its in-cluster agent (this \
                 environment has jobs, autoscaling, certificates or `agent.enabled: true`); \
                 rename this one",
                super::AGENT_SERVICE
            ),
        );
    }
    check_stack(m, env_name, c);
    if let Some(project) = &m.project {
        if names::project_name(project).is_err() {
            c.err(&["project"], format!("`{project}` is not a valid project name: use lowercase letters, digits, `-`, `_`, `.` (it prefixes image names)"));
        }
    }
    if let Some(engine) = &m.engine {
        if let Some(host) = &engine.host {
            check_endpoint(
                host,
                engine.tls.is_some(),
                engine.allow_plain_tcp,
                &["engine", "host"],
                c,
            );
        }
    }
    if let Some(reg) = &m.registry {
        if reg.url.contains("://") {
            c.err(
                &["registry", "url"],
                format!(
                    "write the registry as host[:port], without a scheme: `{}`",
                    reg.url.split("://").nth(1).unwrap_or("")
                ),
            );
        } else if let Err(e) = names::registry_address(&reg.url) {
            if names::check_line(&reg.url).is_ok() {
                c.err(&["registry", "url"], format!("`{}` {e}", reg.url));
            } else {
                c.err(&["registry", "url"], e);
            }
        }
    }
    if m.services.is_empty() {
        c.err(
            &["services"],
            "no services: an environment needs at least one",
        );
    }
}

/// The stack's name (`stack`, else the environment's): swarm names each service
/// `STACK_NAME`, a DNS name component of at most 63 characters, so the stack name follows the
/// services' grammar and every `STACK_NAME` fits.
fn check_stack(m: &Manifest, env_name: &str, c: &mut Checker) {
    let stack = match &m.stack {
        Some(stack) => {
            if let Err(rule) = names::service_name(stack) {
                c.err(
                    &["stack"],
                    format!("`{stack}` is not a valid stack name: {rule}"),
                );
                return;
            }
            stack.as_str()
        }
        None => {
            if names::service_name(env_name).is_err() {
                c.err(
                    &[],
                    format!(
                        "the environment's name `{env_name}` is its stack's name, and swarm \
                         makes each service's name `{env_name}_SERVICE` a DNS name: set `stack:` \
                         to a name of letters and digits with `-` or `_` between them"
                    ),
                );
                return;
            }
            env_name
        }
    };
    let mut named: Vec<(Vec<&str>, &str)> = Vec::new();
    named.extend(
        m.services
            .keys()
            .map(|n| (vec!["services", n.as_str()], n.as_str())),
    );
    named.extend(
        m.jobs
            .keys()
            .map(|n| (vec!["jobs", n.as_str()], n.as_str())),
    );
    // The services twip adds: their names are fixed, so a problem is the stack's name.
    let top: Vec<&str> = if m.stack.is_some() {
        vec!["stack"]
    } else {
        Vec::new()
    };
    named.extend(
        super::added_services(m)
            .into_iter()
            .map(|n| (top.clone(), n)),
    );
    for (path, name) in named {
        let full = stack.len() + 1 + name.len();
        if full > 63 {
            c.err(
                &path,
                format!(
                    "the service `{stack}_{name}` has a name of {full} characters; swarm allows \
                     63: shorten the stack's name or this one"
                ),
            );
        }
    }
}

/// `unix://`, `tcp://` (TLS, or plain to loopback or when allowed), `ssh://`.
fn check_endpoint(host: &str, tls: bool, allow_plain: bool, path: &[&str], c: &mut Checker) {
    let Some((scheme, rest)) = host.split_once("://") else {
        c.err(path, format!("`{host}` is not an engine endpoint; use unix:///var/run/docker.sock, tcp://HOST:2376 or ssh://USER@HOST"));
        return;
    };
    match scheme {
        "unix" => {}
        "ssh" => {
            let authority = rest.split('/').next().unwrap_or("");
            let (user, hostport) = match authority.rsplit_once('@') {
                Some((u, h)) => (Some(u), h),
                None => (None, authority),
            };
            if let Some(u) = user {
                if names::ssh_user(u).is_err() {
                    c.err(path, "the user in ssh://USER@HOST is not a valid user name (letters, digits, `_`, `.`, `-`, not starting with `-`)");
                }
            }
            if names::host_port(hostport).is_err() {
                c.err(
                    path,
                    "the host in ssh://USER@HOST[:PORT] is not a host name or IP address",
                );
            }
        }
        "tcp" => {
            let hostpart = rest.rsplit_once(':').map_or(rest, |(h, _)| h);
            let hostpart = hostpart.trim_start_matches('[').trim_end_matches(']');
            let loopback =
                hostpart == "localhost" || hostpart.starts_with("127.") || hostpart == "::1";
            if !tls && !allow_plain && !loopback {
                c.err(path, format!("plain TCP to `{hostpart}` is unencrypted and unauthenticated; add engine.tls (cert, key, ca), use ssh://, or set allow_plain_tcp: true for a lab"));
            }
        }
        other => c.err(
            path,
            format!("`{other}://` is not a supported engine scheme; use unix://, tcp:// or ssh://"),
        ),
    }
}

pub(super) fn check_nodes(m: &Manifest, c: &mut Checker) {
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, n) in m.nodes.iter().enumerate() {
        let idx = i.to_string();
        if let Some(first) = names.insert(n.name.as_str(), i) {
            c.err(
                &["nodes", &idx, "name"],
                format!("node name `{}` is already used by nodes[{first}]", n.name),
            );
        }
        if n.address.is_empty() || n.address.contains(['/', ' ']) {
            c.err(
                &["nodes", &idx, "address"],
                format!("`{}` is not a host address", n.address),
            );
        }
        if let Some(p) = &n.platform {
            if !PLATFORMS.contains(&p.as_str()) {
                c.err(
                    &["nodes", &idx, "platform"],
                    format!(
                        "`{p}` is not a platform{}",
                        did_you_mean(p, PLATFORMS.iter().copied())
                    ),
                );
            }
        }
        if let Some(e) = &n.engine {
            let engine = m.engine.as_ref();
            check_endpoint(
                e,
                engine.is_some_and(|x| x.tls.is_some()),
                engine.is_some_and(|x| x.allow_plain_tcp),
                &["nodes", &idx, "engine"],
                c,
            );
        }
    }
    if !m.nodes.is_empty() && !m.nodes.iter().any(|n| n.role == Role::Manager) {
        c.err(
            &["nodes"],
            "no node has role: manager; a swarm needs at least one",
        );
    }
}

#[cfg(test)]
mod tests {
    /// What loading MANIFEST as environment ENV reports (empty when it is valid).
    fn problems(env: &str, manifest: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("environments")).unwrap();
        std::fs::write(
            dir.path().join(format!("environments/{env}.yaml")),
            manifest,
        )
        .unwrap();
        let project = crate::project::Project::at(dir.path().to_path_buf()).unwrap();
        match project.load(env) {
            Ok(_) => String::new(),
            Err(e) => format!("{e:#}"),
        }
    }

    const WEB: &str = "services:\n  web:\n    image: nginx:1.25\n";

    #[test]
    fn the_stack_name_is_a_dns_name_component_and_stack_service_fits_in_63() {
        assert_eq!(problems("prod-eu", WEB), "");
        assert_eq!(problems("prod.eu", &format!("stack: prod-eu\n{WEB}")), "");
        let e = problems("prod.eu", WEB);
        assert!(
            e.contains("`prod.eu` is its stack's name") && e.contains("set `stack:`"),
            "{e}"
        );
        let e = problems("x", &format!("stack: web..\n{WEB}"));
        assert!(
            e.contains("stack: `web..` is not a valid stack name"),
            "{e}"
        );
        let long = "s".repeat(59);
        assert_eq!(problems("x", &format!("stack: {long}\n{WEB}")), "");
        let e = problems(
            "x",
            &format!("stack: {long}\nservices:\n  webs:\n    image: nginx:1.25\n"),
        );
        assert!(
            e.contains("services.webs: the service") && e.contains("64 characters"),
            "{e}"
        );
        // A service twip adds (the agent, for a job) counts too: the stack's name is at fault.
        let job = format!(
            "stack: {}\n{WEB}jobs:\n  r:\n    schedule: \"0 * * * *\"\n    image: nginx:1.25\n",
            "s".repeat(58)
        );
        let e = problems("x", &job);
        assert!(
            e.contains("stack: the service") && e.contains("_agent"),
            "{e}"
        );
    }
}
