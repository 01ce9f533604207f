//! `twip bootstrap ENV [HOST...] [--print | --cloud-init]`: fresh Ubuntu/Debian hosts made
//! into swarm nodes. The script is `templates/bootstrap.sh.j2` rendered from the manifest
//! (a project's `templates/bootstrap.sh.j2` overrides it). `--print` writes it to stdout,
//! `--cloud-init` wraps it in cloud-init user-data; neither holds a join token unless
//! `--join-token` asks for one. Otherwise each host runs it over SSH (the system `ssh`, argv
//! arrays, the script on stdin, output streamed live prefixed with the host), and then joins
//! the swarm through the engine API (its Docker socket forwarded over SSH) with its role and
//! labels, through the same code as `twip swarm join`.

use std::collections::BTreeMap;

use minijinja::Value;

use crate::engine::swarm as membership;
use crate::exec::ssh::{self, SshHost};
use crate::exec::{self, RunOpts};
use crate::exit::{self, invalid};
use crate::manifest::model::{Install, NodeSpec, Role};
use crate::manifest::Environment;
use crate::project::Project;
use crate::render;
use crate::ui::Ui;

/// The swarm's ports (and the engine's TLS port when the environment uses TCP).
pub const SWARM_PORTS: [&str; 4] = ["2377/tcp", "7946/tcp", "7946/udp", "4789/udp"];
pub const TLS_PORT: u16 = 2376;

/// The environment reaches engines over TCP (so they must listen with TLS).
pub fn uses_tcp(env: &Environment) -> bool {
    let m = &env.manifest;
    let plain_ok = m.engine.as_ref().is_some_and(|e| e.allow_plain_tcp);
    let tcp = |u: &str| u.starts_with("tcp://");
    !plain_ok
        && (m
            .engine
            .as_ref()
            .and_then(|e| e.host.as_deref())
            .is_some_and(tcp)
            || m.nodes.iter().any(|n| n.engine.as_deref().is_some_and(tcp)))
}

/// What a host should join with, when the output is to hold a token (`--join-token`).
pub struct JoinSpec {
    pub role: Role,
    pub token: membership::Secret,
    pub managers: Vec<String>,
}

/// The `daemon.json` the script writes: log rotation, and TLS on 2376 for a TCP environment.
pub fn daemon_json(tls: bool) -> String {
    let mut v = serde_json::json!({
        "log-driver": "json-file",
        "log-opts": {"max-size": "10m", "max-file": "3"},
    });
    if tls {
        let o = v.as_object_mut().expect("an object");
        o.insert(
            "hosts".into(),
            serde_json::json!([
                "unix:///var/run/docker.sock",
                format!("tcp://0.0.0.0:{TLS_PORT}")
            ]),
        );
        o.insert("tls".into(), true.into());
        o.insert("tlsverify".into(), true.into());
        o.insert("tlscacert".into(), "/etc/docker/tls/ca.pem".into());
        o.insert("tlscert".into(), "/etc/docker/tls/server-cert.pem".into());
        o.insert("tlskey".into(), "/etc/docker/tls/server-key.pem".into());
    }
    serde_json::to_string_pretty(&v).expect("JSON")
}

/// Renders the bootstrap script for `env`.
pub fn script(
    env: &Environment,
    project_dir: &std::path::Path,
    join: Option<&JoinSpec>,
) -> anyhow::Result<String> {
    let jinja = render::jinja(Some(&project_dir.join("templates")))?;
    let install = env
        .manifest
        .engine
        .as_ref()
        .and_then(|e| e.install)
        .unwrap_or_default();
    let tls = uses_tcp(env);
    let mut ports: Vec<String> = SWARM_PORTS.iter().map(|s| s.to_string()).collect();
    if tls {
        ports.push(format!("{TLS_PORT}/tcp"));
    }
    let join = join.map(|j| {
        let role = match j.role {
            Role::Manager => "manager",
            Role::Worker => "worker",
        };
        BTreeMap::from([
            ("role", Value::from(role)),
            ("token", Value::from(j.token.expose())),
            ("managers", Value::from(j.managers.clone())),
        ])
    });
    let ctx = minijinja::context! {
        env => env.name.clone(),
        install => match install {
            Install::Distribution => "distribution",
            Install::Docker => "docker",
        },
        tls => tls,
        tls_port => TLS_PORT,
        log_max_size => "10m",
        log_max_file => "3",
        // JSON twip writes from constants, inside a quoted here-document: printed as is.
        daemon_json => Value::from_safe_string(daemon_json(tls)),
        ports => ports,
        join => join,
    };
    jinja
        .get_template(render::BOOTSTRAP_TEMPLATE)
        .and_then(|t| t.render(ctx))
        .map_err(|e| anyhow::anyhow!("rendering {}: {e:#}", render::BOOTSTRAP_TEMPLATE))
}

/// cloud-init user-data that writes the script and runs it once at first boot. The script goes
/// into a YAML literal block, so it must hold no character that cloud-init's YAML 1.1 reader
/// takes for a line break other than LF (CR, NEL, LS, PS) and no other control character but
/// tab: every line then stays inside the block (shell words in the script refuse them, so
/// this only fails for a project's own template that prints such a character itself). The
/// environment's name reaches a comment only, neutralised.
pub fn cloud_init(env: &str, script: &str) -> anyhow::Result<String> {
    if let Some((n, c)) = script.split('\n').enumerate().find_map(|(n, l)| {
        l.chars()
            .find(|&c| (c.is_control() && c != '\t') || matches!(c, '\u{2028}' | '\u{2029}'))
            .map(|c| (n, c))
    }) {
        return Err(invalid(format!(
            "the bootstrap script's line {} holds the control character U+{:04X}, which cloud-init's YAML cannot carry inside a literal block",
            n + 1,
            c as u32
        )));
    }
    let env = render::escape::comment(env);
    let mut out = String::from("#cloud-config\n");
    out.push_str(&format!(
        "# twip bootstrap for environment {env} (twip bootstrap {env} --cloud-init)\n"
    ));
    out.push_str("write_files:\n  - path: /usr/local/sbin/twip-bootstrap\n    owner: root:root\n    permissions: \"0700\"\n    content: |\n");
    for line in script.lines() {
        if line.is_empty() {
            out.push('\n');
        } else {
            out.push_str("      ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str("runcmd:\n  - [sh, /usr/local/sbin/twip-bootstrap]\n");
    Ok(out)
}

/// The nodes named on the command line (by name or address), or all of them.
fn select<'a>(env: &'a Environment, hosts: &[String]) -> anyhow::Result<Vec<&'a NodeSpec>> {
    let nodes = &env.manifest.nodes;
    if nodes.is_empty() {
        return Err(invalid(format!(
            "environment `{}` lists no nodes: there is no host to bootstrap (add them under `nodes:`)",
            env.name
        )));
    }
    if hosts.is_empty() {
        return Ok(nodes.iter().collect());
    }
    hosts
        .iter()
        .map(|h| {
            nodes
                .iter()
                .find(|n| &n.name == h || &n.address == h)
                .ok_or_else(|| {
                    invalid(format!(
                        "no node `{h}` in environment `{}` (nodes: {})",
                        env.name,
                        nodes
                            .iter()
                            .map(|n| format!("{} ({})", n.name, n.address))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })
        })
        .collect()
}

/// The number in the script's last line, `twip-bootstrap: done: N change(s)`.
pub fn changes(output: &str) -> Option<u32> {
    output
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("twip-bootstrap: done: "))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// What `twip bootstrap` was asked: the environment, its hosts (none: every node) and how.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// `--project-dir`, and `--host` (the engine of the swarm's manager, when given).
    pub project_dir: Option<&'a std::path::Path>,
    pub host: Option<&'a str>,
    pub env: &'a str,
    pub hosts: &'a [String],
    pub print: bool,
    pub cloud_init: bool,
    pub join_token: bool,
    pub timeout: std::time::Duration,
}

/// Runs the bootstrap script on every selected host over SSH, then joins, labels and waits
/// for them (or, with `print`/`cloud_init`, prints the script instead).
pub async fn run(args: &Request<'_>, ui: &Ui) -> anyhow::Result<i32> {
    let project = Project::discover(args.project_dir)?;
    let env = project.load(args.env)?;
    let nodes = select(&env, args.hosts)?;
    if args.print || args.cloud_init {
        return print_script(args, &env, &project, &nodes, ui).await;
    }
    if args.join_token {
        return Err(invalid(
            "--join-token goes with --print or --cloud-init; over SSH, twip joins each host through its engine's API",
        ));
    }
    let ssh_program = ssh::ssh_program()?;
    let text = script(&env, &project.dir, None)?;

    // Every host's ssh command first: a value ssh could read as an option stops it before
    // any host is touched.
    let cmds = nodes
        .iter()
        .map(|n| {
            let host = SshHost::from_node(n, &project.dir);
            let cmd = host.script(&ssh_program)?;
            Ok((host, cmd))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

    // 1. The script on every host at once, output streamed with the host's name.
    let runs = futures_util::future::join_all(nodes.iter().zip(cmds).map(|(n, (host, cmd))| {
        let text = text.clone();
        let prefix = format!("{} | ", n.name);
        async move {
            ui.info(&format!(
                "{}: running the bootstrap script over SSH ({})",
                n.name,
                host.destination()
            ));
            let r = exec::run_with_input(&cmd, Some(text.into_bytes()), &RunOpts::streamed(prefix))
                .await;
            (host, r)
        }
    }))
    .await;
    let mut failed = Vec::new();
    let mut changed: BTreeMap<String, u32> = BTreeMap::new();
    for (n, (host, r)) in nodes.iter().zip(runs) {
        match r {
            Ok(out) => {
                let c = changes(&out.stdout).unwrap_or(0);
                changed.insert(n.name.clone(), c);
            }
            Err(e) => {
                let hint = ssh::hint(&host, &e.output());
                let e = e.with_hint(hint);
                failed.push(format!("{}: {e}", n.name));
            }
        }
    }
    if !failed.is_empty() {
        return Err(exit::coded(
            exit::FAILURE,
            format!("bootstrap failed:\n{}", failed.join("\n")),
        ));
    }

    // 2. Join, label, wait until Ready: the same code as `twip swarm join`.
    let mgr = crate::nodes::open_manager(args.host, &env, None, ui).await?;
    let targets: Vec<crate::nodes::NodeTarget> = crate::nodes::node_targets(&env, None)?
        .into_iter()
        .filter(|t| nodes.iter().any(|n| n.name == t.spec.name))
        .collect();
    let mut members = Vec::new();
    let mut tunnels = Vec::new();
    for t in &targets {
        let (docker, tunnel) = crate::nodes::connect_node(t, &project.dir).await?;
        tunnels.extend(tunnel);
        members.push(t.member(docker));
    }
    let done = membership::join_all(&mgr, &members, args.timeout, ui).await?;
    drop(tunnels);
    for j in &done {
        let c = changed.get(&j.name).copied().unwrap_or(0);
        if c == 0 && !j.joined && !j.labelled {
            ui.ok(&format!(
                "{}: nothing to do (Docker installed and running, in the swarm, labelled, Ready)",
                j.name
            ));
        } else {
            ui.ok(&format!(
                "{}: {c} change{} on the host{}{}, Ready",
                j.name,
                if c == 1 { "" } else { "s" },
                if j.joined { ", joined the swarm" } else { "" },
                if j.labelled { ", labelled" } else { "" },
            ));
        }
    }
    Ok(exit::SUCCESS)
}

/// `--print` / `--cloud-init`: the script (or a cloud-init file running it) on stdout, with a
/// join token only when asked.
async fn print_script(
    args: &Request<'_>,
    env: &Environment,
    project: &Project,
    nodes: &[&NodeSpec],
    ui: &Ui,
) -> anyhow::Result<i32> {
    let join = if args.join_token {
        let roles: Vec<Role> = nodes.iter().map(|n| n.role).collect();
        let role = roles[0];
        if roles.iter().any(|r| *r != role) {
            return Err(invalid(
                "--join-token: the hosts have different roles; name hosts of one role (a token is for managers or for workers)",
            ));
        }
        let mgr = crate::nodes::open_manager(args.host, env, None, ui).await?;
        Some(JoinSpec {
            role,
            token: mgr.token(role).clone(),
            managers: mgr.addrs.clone(),
        })
    } else {
        None
    };
    let text = script(env, &project.dir, join.as_ref())?;
    if args.join_token {
        ui.warn("the output holds a swarm join token: keep it private");
    }
    if args.cloud_init {
        print!("{}", cloud_init(&env.name, &text)?);
    } else {
        print!("{text}");
    }
    Ok(exit::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_json_rotates_logs_and_adds_tls_for_tcp() {
        let plain: serde_json::Value = serde_json::from_str(&daemon_json(false)).unwrap();
        assert_eq!(plain["log-opts"]["max-size"], "10m");
        assert!(plain.get("tls").is_none());
        let tls: serde_json::Value = serde_json::from_str(&daemon_json(true)).unwrap();
        assert_eq!(tls["tlsverify"], true);
        assert_eq!(tls["hosts"][1], "tcp://0.0.0.0:2376");
    }

    #[test]
    fn the_done_line_is_parsed() {
        assert_eq!(changes("a\ntwip-bootstrap: done: 3 change(s)\n"), Some(3));
        assert_eq!(changes("twip-bootstrap: done: 0 change(s)"), Some(0));
        assert_eq!(changes("nothing"), None);
    }

    #[test]
    fn cloud_init_wraps_the_script() {
        let c = cloud_init("scaled", "#!/bin/sh\n\necho hi\n").unwrap();
        assert!(c.starts_with("#cloud-config\n"));
        assert!(c.contains("    content: |\n      #!/bin/sh\n\n      echo hi\n"));
        assert!(c.ends_with("runcmd:\n  - [sh, /usr/local/sbin/twip-bootstrap]\n"));
    }
}
