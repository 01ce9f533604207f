//! `twip autoscale ENV [--once] [--dry-run] [--interval DUR] [--json] [--lab NAME]`: wiring to
//! [`crate::lifecycle::autoscale`].

use crate::cli::{AutoscaleArgs, GlobalArgs};
use crate::lifecycle::autoscale::{self, Settings};
use crate::ui::Ui;

pub async fn run(g: &GlobalArgs, args: &AutoscaleArgs, ui: &Ui) -> anyhow::Result<i32> {
    let t = crate::context::open_on(g, &args.env, args.lab.as_deref()).await?;
    let settings = Settings {
        once: args.once,
        dry_run: args.dry_run,
        json: args.json,
        interval: args.interval,
        lock_wait: args.lock.lock_wait,
        reason: args.lock.reason.clone(),
    };
    autoscale::run(&t, &settings, ui).await
}
