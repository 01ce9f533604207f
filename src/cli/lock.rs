//! Arguments of the deploy lock, the release history and hooks: `twip lock`, `twip history`,
//! `twip rollback`, and the options every command that changes a stack takes.

use std::time::Duration;

use clap::{Args, Subcommand};

use super::parse;

/// The deploy lock's options, on every command that changes a stack.
#[derive(Debug, Clone, Args)]
pub struct LockArgs {
    /// When another operator holds the stack's deploy lock, wait up to DUR for it (default:
    /// fail at once with exit 6)
    #[arg(long, value_name = "DUR", value_parser = parse::duration)]
    pub lock_wait: Option<Duration>,
    /// Why: shown to whoever finds the stack locked, and recorded with the release
    #[arg(long, value_name = "TEXT", value_parser = reason)]
    pub reason: Option<String>,
}

/// The lock's options and `--no-hooks`, on commands that deploy (`up`, `scale`, `update`,
/// `rollback`).
#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub lock: LockArgs,
    /// Do not run the project's hooks/ (pre-deploy, post-deploy, ...)
    #[arg(long)]
    pub no_hooks: bool,
}

/// A reason is one line a person reads: printable, at most 200 characters.
pub fn reason(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("a reason is some words".into());
    }
    if s.chars().count() > 200 {
        return Err("a reason is at most 200 characters".into());
    }
    if s.chars().any(char::is_control) {
        return Err("a reason is one line without control characters".into());
    }
    Ok(s.trim().to_string())
}

#[derive(Debug, Subcommand)]
pub enum LockCommand {
    /// Who holds the environment's deploy lock, since when, and why
    #[command(
        after_help = "Examples:\n  twip lock status production\n  twip lock status production --json"
    )]
    Status(LockStatusArgs),
    /// Take the deploy lock by hand (e.g. during an incident): deploys by others fail with exit 6
    #[command(
        after_help = "Examples:\n  twip lock acquire production --reason \"incident 42: database failover\"\n  twip lock acquire production --reason \"migration\" --for 2h"
    )]
    Acquire(LockAcquireArgs),
    /// Release the deploy lock: your own, a stale one, or with --force anyone's
    #[command(
        after_help = "Examples:\n  twip lock release production\n  twip lock release production --force   # a lock left by a killed twip"
    )]
    Release(LockReleaseArgs),
}

#[derive(Debug, Args)]
pub struct LockStatusArgs {
    /// The environment
    #[arg(value_name = "ENV")]
    pub env: String,
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
    /// Use the lab of this name instead of the manifest's engine
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,
}

#[derive(Debug, Args)]
pub struct LockAcquireArgs {
    /// The environment
    #[arg(value_name = "ENV")]
    pub env: String,
    /// Why the stack is locked (shown to whoever finds it locked)
    #[arg(long, value_name = "TEXT", value_parser = reason)]
    pub reason: String,
    /// How long the lock is good for; after that it is stale and the next command takes it over
    #[arg(long = "for", value_name = "DUR", default_value = "30m", value_parser = parse::duration)]
    pub ttl: Duration,
    /// When another operator holds it, wait up to DUR for it
    #[arg(long, value_name = "DUR", value_parser = parse::duration)]
    pub lock_wait: Option<Duration>,
    /// Use the lab of this name instead of the manifest's engine
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,
}

#[derive(Debug, Args)]
pub struct LockReleaseArgs {
    /// The environment
    #[arg(value_name = "ENV")]
    pub env: String,
    /// Release it even when someone else holds it
    #[arg(long)]
    pub force: bool,
    /// Use the lab of this name instead of the manifest's engine
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The environment
    #[arg(value_name = "ENV")]
    pub env: String,
    /// One release: its plan and what changed since the release before it
    #[arg(value_name = "N")]
    pub release: Option<u64>,
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
    /// Use the lab of this name instead of the manifest's engine
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The environment
    #[arg(value_name = "ENV")]
    pub env: String,
    /// Only this service
    #[arg(value_name = "SVC")]
    pub service: Option<String>,
    /// The release to return to (`twip history ENV` lists them; default: the last one that
    /// differs from what runs)
    #[arg(long, value_name = "N")]
    pub to: Option<u64>,
    /// How long to wait for convergence
    #[arg(long, value_name = "DUR", default_value = "10m", value_parser = parse::duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub deploy: DeployArgs,
    /// Use the lab of this name instead of the manifest's engine
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,
}
