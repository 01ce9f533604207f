//! `twip update ENV [SVC] [--image REF]`: a rolling update, per the manifest's update config
//! (by default start-first, one task at a time, health-gated, rolled back on failure). With
//! `--image`, SVC moves to that image; without, the services are rolled again (a forced update)
//! so images rebuilt under the same tag are picked up. The end state is reported truthfully:
//! completed (exit 0), rolled back by swarm (exit 4), or paused (exit 5). Holds the stack's
//! deploy lock.

use crate::cli::{GlobalArgs, UpdateArgs};
use crate::lifecycle;
use crate::lifecycle::lock::{self, Operation};
use crate::ui::Ui;

pub async fn run(g: &GlobalArgs, args: &UpdateArgs, ui: &Ui) -> anyhow::Result<i32> {
    let t = crate::context::open_on(g, &args.env, args.lab.as_deref()).await?;
    let (service, image) = (args.service.as_deref(), args.image.as_deref());
    lifecycle::update::check_update(&t.env, service, image)?;
    let mut command = String::from("update");
    for part in [service, image.map(|_| "--image"), image]
        .into_iter()
        .flatten()
    {
        command = format!("{command} {part}");
    }
    let d = &args.deploy;
    let op = Operation::here(&command)
        .reason(d.lock.reason.as_deref())
        .hooks(!d.no_hooks);
    lock::hold(&t, op, d.lock.lock_wait, args.timeout, ui, async {
        if let Some(lab) = &t.lab {
            // The lab's nodes get the images from this machine's engine, --image's too.
            lifecycle::images::prepare_lab(g.host.as_deref(), &t, lab, ui).await?;
            if let Some(image) = &args.image {
                crate::lab::deliver(lab, std::slice::from_ref(image), ui).await?;
            }
        }
        let mut desired = lifecycle::desired(&t)?;
        let opts = lifecycle::update::update(&t.env, &mut desired, service, image, ui);
        lifecycle::converge_to(&t, &opts, desired, false, args.timeout, ui).await
    })
    .await
}
