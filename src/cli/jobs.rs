//! `twip jobs`' arguments.

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct JobsArgs {
    #[command(subcommand)]
    pub command: Option<JobsCommand>,
    /// The environment
    #[arg(value_name = "ENV")]
    pub env: Option<String>,
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
    /// Use the lab of this name instead of the manifest's engine
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Run a job now (slot `manual-<time>`), stream its output, exit with its exit code
    #[command(
        after_help = "Examples:\n  twip jobs run production report\n  twip jobs run production report --timeout 10m\n\nExit code: the job's; 3 when it did not end within --timeout (it is removed\nand recorded as timed out)."
    )]
    Run(JobsRunArgs),
}

#[derive(Debug, Args)]
pub struct JobsRunArgs {
    /// The environment
    #[arg(value_name = "ENV")]
    pub env: String,
    /// The job (a key of the manifest's `jobs:`)
    #[arg(value_name = "NAME")]
    pub name: String,
    /// How long the run may take (default: the job's `timeout`, else 1h)
    #[arg(long, value_name = "DUR", value_parser = super::parse::duration)]
    pub timeout: Option<std::time::Duration>,
    /// Use the lab of this name instead of the manifest's engine
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,
}
