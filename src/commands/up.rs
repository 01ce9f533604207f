//! `twip up ENV`: deploy and wait until the swarm converges, holding the stack's deploy lock. A
//! converge plans against what runs, so when its manager goes away mid-way it is run once more
//! through another manager (the lock this twip took is taken back there).

use crate::cli::{GlobalArgs, UpArgs};
use crate::lifecycle::lock::{self, Operation};
use crate::plan::Options;
use crate::ui::Ui;

pub async fn run(g: &GlobalArgs, args: &UpArgs, ui: &Ui) -> anyhow::Result<i32> {
    let d = &args.deploy;
    crate::context::with_retry(g, &args.env, args.lab.as_deref(), ui, |t| async move {
        let op = Operation::here("up")
            .reason(d.lock.reason.as_deref())
            .hooks(!d.no_hooks);
        lock::hold(&t, op, d.lock.lock_wait, args.timeout, ui, async {
            if let Some(lab) = &t.lab {
                crate::lifecycle::images::prepare_lab(g.host.as_deref(), &t, lab, ui).await?;
            }
            crate::lifecycle::converge::converge(
                &t,
                &Options::default(),
                args.detach,
                args.timeout,
                ui,
            )
            .await
        })
        .await
    })
    .await
}
