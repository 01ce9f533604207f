//! `twip update ENV [SVC] [--image REF]`: a rolling update, per the manifest's update config
//! (by default start-first, one task at a time, health-gated, rolled back on failure). With
//! `--image`, SVC moves to that image; without, the services are rolled again (a forced update)
//! so images rebuilt under the same tag are picked up. The end state is reported truthfully:
//! completed (exit 0), rolled back by swarm (exit 4), or paused (exit 5).

use crate::cli::{GlobalArgs, UpdateArgs};
use crate::exit;
use crate::plan::Options;
use crate::ui::Ui;

pub async fn run(g: &GlobalArgs, args: &UpdateArgs, ui: &Ui) -> anyhow::Result<i32> {
    let t = crate::context::open_on(g, &args.env, args.lab.as_deref()).await?;
    let m = &t.env.manifest;
    let known = |s: &str| {
        m.services.contains_key(s)
            || (s == crate::manifest::validate::PROXY_SERVICE && m.proxy.is_some())
    };
    if let Some(svc) = &args.service {
        if !known(svc) {
            let names: Vec<&str> = m.services.keys().map(String::as_str).collect();
            return Err(exit::invalid(crate::suggest::no_service(
                &t.env.name,
                svc,
                &names,
            )));
        }
    }
    if let Some(image) = &args.image {
        if image.trim().is_empty() || image.contains(char::is_whitespace) {
            return Err(exit::invalid(format!(
                "`{image}` is not an image reference"
            )));
        }
    }
    if let Some(lab) = &t.lab {
        // The lab's nodes get the images from this machine's engine, --image's too.
        super::lab::prepare(g, &t, lab, ui).await?;
        if let Some(image) = &args.image {
            super::lab::deliver(lab, std::slice::from_ref(image), ui).await?;
        }
    }
    let mut desired = crate::lifecycle::converge::desired(&t)?;
    let mut opts = Options::default();
    match (&args.service, &args.image) {
        (Some(svc), Some(image)) => {
            desired.set_image(svc, image);
            ui.info(&format!(
                "rolling {svc} to {image} (a later `twip up` returns to the manifest's image)"
            ));
        }
        (Some(svc), None) => {
            opts.force.insert(svc.clone());
        }
        (None, _) => {
            // Every service whose image twip builds: those are the ones a rebuild changes.
            for (name, s) in &m.services {
                if m.images.get(&s.image).is_some_and(|i| i.build.is_some()) {
                    opts.force.insert(name.clone());
                }
            }
            if opts.force.is_empty() {
                ui.info("no service uses an image twip builds; rolling out what the manifest says");
            }
        }
    }
    crate::lifecycle::converge::converge_to(&t, &opts, desired, false, args.timeout, ui).await
}
