//! `twip scale ENV SVC=N...`: change desired replica counts and converge through the same path
//! as `up`, holding the stack's deploy lock. The manifest is not edited; a later `up` keeps
//! these counts until the manifest's own count changes. Retried once through another manager
//! when its manager goes away.

use crate::cli::{GlobalArgs, ScaleArgs};
use crate::lifecycle::lock::{self, Operation};
use crate::ui::Ui;

pub async fn run(g: &GlobalArgs, args: &ScaleArgs, ui: &Ui) -> anyhow::Result<i32> {
    let project = crate::project::Project::discover(g.project_dir.as_deref())?;
    let env = project.load(&args.env)?;
    let opts = crate::lifecycle::update::scale(&env, &args.scales, ui)?;
    let opts = &opts;
    let counts: Vec<String> = args
        .scales
        .iter()
        .map(|(s, n)| format!("{s}={n}"))
        .collect();
    let command = format!("scale {}", counts.join(" "));
    let (d, command) = (&args.deploy, &command);
    crate::context::with_retry(g, &args.env, args.lab.as_deref(), ui, |t| async move {
        let op = Operation::here(command)
            .reason(d.lock.reason.as_deref())
            .hooks(!d.no_hooks);
        lock::hold(&t, op, d.lock.lock_wait, args.timeout, ui, async {
            crate::lifecycle::converge::converge(&t, opts, false, args.timeout, ui).await
        })
        .await
    })
    .await
}
