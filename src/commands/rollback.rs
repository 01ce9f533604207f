//! `twip rollback ENV [SVC] [--to N]`: return the stack's services (or one) to an earlier
//! release from twip's own history (swarm keeps only one previous spec): release N, or by
//! default the last one that differs from what runs. The replica counts that run now are
//! kept. The rollback is recorded as a release of its own, so rolling back twice returns to
//! where you started. Holds the stack's deploy lock.

use crate::cli::{GlobalArgs, RollbackArgs};
use crate::lifecycle::lock::{self, Operation};
use crate::lifecycle::rollback;
use crate::ui::Ui;

pub async fn run(g: &GlobalArgs, args: &RollbackArgs, ui: &Ui) -> anyhow::Result<i32> {
    let t = crate::context::open_on(g, &args.env, args.lab.as_deref()).await?;
    let mut command = String::from("rollback");
    if let Some(svc) = &args.service {
        command = format!("{command} {svc}");
    }
    if let Some(n) = args.to {
        command = format!("{command} --to {n}");
    }
    let d = &args.deploy;
    let op = Operation::here(&command)
        .reason(d.lock.reason.as_deref())
        .hooks(!d.no_hooks);
    lock::hold(&t, op, d.lock.lock_wait, args.timeout, ui, async {
        let service = args.service.as_deref();
        rollback::rollback(&t.deployment(), service, args.to, args.timeout, ui).await
    })
    .await
}
