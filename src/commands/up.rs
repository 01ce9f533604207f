//! `twip up ENV`: deploy and wait until the swarm converges. A converge plans against what
//! runs, so when its manager goes away mid-way it is run once more through another manager.

use crate::cli::{GlobalArgs, UpArgs};
use crate::plan::Options;
use crate::ui::Ui;

pub async fn run(g: &GlobalArgs, args: &UpArgs, ui: &Ui) -> anyhow::Result<i32> {
    crate::context::with_retry(g, &args.env, args.lab.as_deref(), ui, |t| async move {
        if let Some(lab) = &t.lab {
            crate::lifecycle::images::prepare_lab(g.host.as_deref(), &t, lab, ui).await?;
        }
        crate::lifecycle::converge::converge(&t, &Options::default(), args.detach, args.timeout, ui)
            .await
    })
    .await
}
