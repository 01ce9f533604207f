//! `twip run ENV SVC [--timeout DUR] -- CMD...`: a one-off task from the service's spec; the
//! exit code is the command's.

use crate::cli::{GlobalArgs, RunArgs};
use crate::ui::Ui;

pub async fn run(g: &GlobalArgs, args: &RunArgs, ui: &Ui) -> anyhow::Result<i32> {
    let t = crate::context::open_on(g, &args.env, args.lab.as_deref()).await?;
    // Input first: nothing is built or made for a service the stack does not have.
    let desired = crate::lifecycle::desired(&t)?;
    crate::lifecycle::oneoff::check_service(&desired, &args.service)?;
    if let Some(lab) = &t.lab {
        crate::lifecycle::images::prepare_lab(g.host.as_deref(), &t, lab, ui).await?;
    }
    crate::lifecycle::converge::ensure_images(&t, ui).await?;
    crate::lifecycle::oneoff::run(
        &t.deployment(),
        &args.service,
        &args.command,
        args.timeout,
        ui,
    )
    .await
}
