//! `twip down ENV [--volumes]`: remove what `up` made and wait until it is gone. Volumes hold
//! data and stay unless `--volumes` is given. Retried once through another manager when its
//! manager goes away (down converges to nothing: a second run removes what is left).

use crate::cli::{DownArgs, GlobalArgs};
use crate::ui::Ui;

pub async fn run(g: &GlobalArgs, args: &DownArgs, ui: &Ui) -> anyhow::Result<i32> {
    crate::context::with_retry(g, &args.env, args.lab.as_deref(), ui, |t| async move {
        crate::lifecycle::down::down(&t.deployment(), args.volumes, ui).await
    })
    .await
}
