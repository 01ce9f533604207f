//! `twip rollback ENV [SVC]`: return the stack's services (or one) to the release before the
//! one that runs, from twip's own release history (swarm keeps only one previous spec). The
//! replica counts that run now are kept. The rollback is recorded as a release of its own, so
//! rolling back twice returns to where you started.

use crate::cli::{GlobalArgs, ServiceTargetArgs};
use crate::lifecycle::rollback;
use crate::ui::Ui;

pub async fn run(g: &GlobalArgs, args: &ServiceTargetArgs, ui: &Ui) -> anyhow::Result<i32> {
    let t = crate::context::open_on(g, &args.env, args.lab.as_deref()).await?;
    rollback::rollback(
        &t.deployment(),
        args.service.as_deref(),
        None,
        rollback::TIMEOUT,
        ui,
    )
    .await
}
