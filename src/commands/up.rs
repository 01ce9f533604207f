//! `twip up ENV`: deploy and wait until the swarm converges.

use crate::cli::{GlobalArgs, UpArgs};
use crate::plan::Options;
use crate::ui::Ui;

pub async fn run(g: &GlobalArgs, args: &UpArgs, ui: &Ui) -> anyhow::Result<i32> {
    let t = super::deploy::open(g, &args.env).await?;
    super::deploy::converge(&t, &Options::default(), args.detach, args.timeout, ui).await
}
