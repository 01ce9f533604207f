//! `twip agent` (hidden): the in-cluster agent, run by the stack's `agent` service. Reads its
//! config (JSON, mounted by the stack at `agent::CONFIG_PATH`), connects to the local engine
//! and runs the controllers until SIGTERM or SIGINT (exit 0).

use anyhow::Context as _;

use crate::agent::{self, AgentConfig, AgentContext};
use crate::cli::{AgentArgs, GlobalArgs};
use crate::engine::{self, Endpoint};
use crate::ui::Ui;

pub async fn run(g: &GlobalArgs, args: &AgentArgs, ui: &Ui) -> anyhow::Result<i32> {
    let path = args
        .config
        .clone()
        .unwrap_or_else(|| agent::CONFIG_PATH.into());
    let text = std::fs::read_to_string(&path)
        .map_err(|e| crate::exit::invalid(format!("the agent's config {}: {e}", path.display())))?;
    let config: AgentConfig = serde_json::from_str(&text)
        .map_err(|e| crate::exit::invalid(format!("the agent's config {}: {e}", path.display())))?;
    let docker = engine::connect(&Endpoint::resolve(g.host.as_deref(), None))
        .await
        .context("connecting to the local engine")?;
    ui.info(&format!(
        "twip agent {} for stack {} (environment {})",
        env!("CARGO_PKG_VERSION"),
        config.stack,
        config.env
    ));
    let controllers = agent::controllers(&config);
    let cx = AgentContext { docker, config };
    let log = |line: &str| ui.info(line);
    agent::runner::run(&cx, controllers, stopped(), &log).await;
    Ok(crate::exit::SUCCESS)
}

/// Completes on SIGTERM (what the swarm sends to stop a task) or SIGINT.
async fn stopped() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
