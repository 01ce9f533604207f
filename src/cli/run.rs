//! `twip run`'s arguments.

use clap::Args;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The environment
    #[arg(value_name = "ENV")]
    pub env: String,
    /// The service whose spec the task is made from (image, environment, networks, secrets,
    /// configs, mounts)
    #[arg(value_name = "SVC")]
    pub service: String,
    /// How long the task may run before it is stopped and removed (e.g. 90s, 1h)
    #[arg(long, value_name = "DUR", default_value = "1h", value_parser = super::parse::duration)]
    pub timeout: std::time::Duration,
    /// Use the lab of this name instead of the manifest's engine
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,
    /// The command and its arguments (after `--`), replacing the service's command
    #[arg(value_name = "CMD", required = true, last = true)]
    pub command: Vec<String>,
}
