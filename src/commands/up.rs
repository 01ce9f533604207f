//! `twip up ENV`: deploy and wait until the swarm converges.

use crate::cli::{GlobalArgs, UpArgs};
use crate::plan::Options;
use crate::ui::Ui;

pub async fn run(g: &GlobalArgs, args: &UpArgs, ui: &Ui) -> anyhow::Result<i32> {
    let t = crate::context::open_on(g, &args.env, args.lab.as_deref()).await?;
    if let Some(lab) = &t.lab {
        crate::lifecycle::images::prepare_lab(g.host.as_deref(), &t, lab, ui).await?;
    }
    crate::lifecycle::converge::converge(&t, &Options::default(), args.detach, args.timeout, ui)
        .await
}
