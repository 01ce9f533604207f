//! `twip down ENV [--volumes]`: remove what `up` made and wait until it is gone. Volumes hold
//! data and stay unless `--volumes` is given.

use crate::cli::{DownArgs, GlobalArgs};
use crate::ui::Ui;

pub async fn run(g: &GlobalArgs, args: &DownArgs, ui: &Ui) -> anyhow::Result<i32> {
    let t = crate::context::open_on(g, &args.env, args.lab.as_deref()).await?;
    crate::lifecycle::down::down(&t.deployment(), args.volumes, ui).await
}
