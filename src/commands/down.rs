//! `twip down ENV [--volumes]`: remove what `up` made and wait until it is gone, holding the
//! stack's deploy lock. Volumes hold data and stay unless `--volumes` is given. Retried once
//! through another manager when its manager goes away (down converges to nothing: a second run
//! removes what is left).

use crate::cli::{DownArgs, GlobalArgs};
use crate::lifecycle::lock::{self, Operation};
use crate::ui::Ui;

pub async fn run(g: &GlobalArgs, args: &DownArgs, ui: &Ui) -> anyhow::Result<i32> {
    crate::context::with_retry(g, &args.env, args.lab.as_deref(), ui, |t| async move {
        let op = Operation::here("down").reason(args.lock.reason.as_deref());
        lock::hold(
            &t,
            op,
            args.lock.lock_wait,
            crate::lifecycle::down::SERVICES_TIMEOUT,
            ui,
            async { crate::lifecycle::down::down(&t.deployment(), args.volumes, ui).await },
        )
        .await
    })
    .await
}
