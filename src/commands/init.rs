//! `twip init [DIR]`: a project that validates and renders as created: an environment, a
//! template (a copy of the built-in stack template, to edit) and a Dockerfile for the app.

use std::path::Path;

use anyhow::Context as _;

use crate::cli::InitArgs;
use crate::exit;
use crate::render::{BUILTIN, STACK_TEMPLATE};
use crate::ui::Ui;

const ENVIRONMENT: &str = r#"# yaml-language-server: $schema=https://twip.invalid/schema.json (run `twip schema` for it)
#
# The training environment of __NAME__: one app behind HAProxy on one node.
# `twip validate`, `twip render training`, `twip train up`.
description: __NAME__ on one node, behind HAProxy
project: __NAME__

images:
  app:
    build:
      context: images/app
      args:
        BASE: ${TWIP_BASE_IMAGE:-debian:bookworm-slim}
  proxy:
    build:
      context: images/proxy
      args:
        BASE: ${TWIP_BASE_IMAGE:-debian:bookworm-slim}

services:
  app:
    image: app
    replicas: 2
    healthcheck:
      test: ["CMD", "python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/', timeout=2)"]
      interval: 5s

proxy:
  image: proxy
  port: ${HTTP_PORT:-80}
  health:
    path: /
  routes:
    - path: /
      service: app
      port: 8080
"#;

const APP_DOCKERFILE: &str = r#"# The app: replace with your own. It must answer HTTP on :8080.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN command -v python3 >/dev/null || (apt-get update && apt-get install -y --no-install-recommends python3 \
      && rm -rf /var/lib/apt/lists/*)
WORKDIR /srv
RUN echo '<h1>hello from twip</h1>' > index.html
EXPOSE 8080
CMD ["python3", "-m", "http.server", "8080"]
"#;

const PROXY_DOCKERFILE: &str = r#"# HAProxy; twip renders its configuration and mounts it as a swarm config.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN command -v haproxy >/dev/null || (apt-get update && apt-get install -y --no-install-recommends haproxy \
      && rm -rf /var/lib/apt/lists/*)
RUN mkdir -p /usr/local/etc/haproxy && printf 'defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\nfrontend stats\n  bind :1936\n  stats enable\n  stats uri /\n' > /usr/local/etc/haproxy/haproxy.cfg
STOPSIGNAL SIGUSR1
CMD ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
"#;

const GITIGNORE: &str = "/build\n.env\n";

pub fn run(args: &InitArgs, ui: &Ui) -> anyhow::Result<i32> {
    let dir = &args.dir;
    let name = match &args.name {
        Some(n) => n.clone(),
        None => {
            let abs = if dir.is_absolute() {
                dir.clone()
            } else {
                std::env::current_dir()?.join(dir)
            };
            abs.components()
                .filter_map(|c| match c {
                    std::path::Component::Normal(s) => Some(s.to_string_lossy().to_string()),
                    _ => None,
                })
                .next_back()
                .unwrap_or_else(|| "app".into())
        }
    };
    let name: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(exit::invalid(format!(
            "`{name}` cannot be a project name; pass --name with letters and digits"
        )));
    }
    let stack_template = BUILTIN
        .iter()
        .find(|(n, _)| *n == STACK_TEMPLATE)
        .map(|(_, t)| *t)
        .unwrap_or_default();
    let files: Vec<(String, String)> = vec![
        (
            "environments/training.yaml".into(),
            ENVIRONMENT.replace("__NAME__", &name),
        ),
        ("images/app/Dockerfile".into(), APP_DOCKERFILE.into()),
        ("images/proxy/Dockerfile".into(), PROXY_DOCKERFILE.into()),
        (format!("templates/{STACK_TEMPLATE}"), stack_template.into()),
        (".gitignore".into(), GITIGNORE.into()),
    ];
    let existing: Vec<&str> = files
        .iter()
        .filter(|(p, _)| dir.join(p).exists())
        .map(|(p, _)| p.as_str())
        .collect();
    if !existing.is_empty() && !args.force {
        return Err(exit::invalid(format!(
            "{} already has {}; nothing was written (use --force to overwrite)",
            dir.display(),
            existing.join(", ")
        )));
    }
    for (path, content) in &files {
        write(dir, path, content)?;
        println!("{}", dir.join(path).display());
    }
    ui.ok(&format!("created project `{name}` in {}", dir.display()));
    ui.info(&format!(
        "next: cd {} && twip validate && twip render training -o -",
        dir.display()
    ));
    Ok(exit::SUCCESS)
}

fn write(dir: &Path, rel: &str, content: &str) -> anyhow::Result<()> {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))
}
