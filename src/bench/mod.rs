//! `twip bench`: an HTTP load generator. (Being written; see issue #6.)

use clap::Args;

use crate::ui::Ui;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A URL, or an environment name (its proxy entrypoint)
    #[arg(value_name = "URL|ENV")]
    pub target: String,
}

pub async fn run(
    _args: &BenchArgs,
    _global: &crate::cli::GlobalArgs,
    _ui: &Ui,
) -> anyhow::Result<i32> {
    Err(anyhow::anyhow!("twip bench is not implemented yet"))
}
