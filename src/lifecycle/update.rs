//! `update` and `scale` as changes to the desired state, before the one converge path:
//! `update --image` gives one service another image, `update` alone rolls services again (the
//! force-update counter goes up), `scale` sets replica counts. Input that cannot be met is
//! refused here (exit 2), before the engine is touched.

use std::collections::BTreeMap;

use crate::exit;
use crate::manifest::model::Mode;
use crate::manifest::validate::PROXY_SERVICE;
use crate::manifest::Environment;
use crate::plan::{Desired, Options};
use crate::ui::Ui;

/// Whether SVC names a service of the environment (the proxy included).
fn known(env: &Environment, svc: &str) -> bool {
    env.manifest.services.contains_key(svc)
        || (svc == PROXY_SERVICE && env.manifest.proxy.is_some())
}

fn no_service(env: &Environment, svc: &str) -> anyhow::Error {
    let names: Vec<&str> = env.manifest.services.keys().map(String::as_str).collect();
    exit::invalid(crate::suggest::no_service(&env.name, svc, &names))
}

/// Checks `update`'s arguments: a known service, an image reference that is one word.
pub fn check_update(
    env: &Environment,
    service: Option<&str>,
    image: Option<&str>,
) -> anyhow::Result<()> {
    if let Some(svc) = service.filter(|s| !known(env, s)) {
        return Err(no_service(env, svc));
    }
    if let Some(image) = image {
        if image.trim().is_empty() || image.contains(char::is_whitespace) {
            return Err(exit::invalid(format!(
                "`{image}` is not an image reference"
            )));
        }
    }
    Ok(())
}

/// The change `update` makes: SERVICE moves to IMAGE (in DESIRED), or SERVICE is rolled
/// again, or (no SERVICE) every service whose image twip builds is.
pub fn update(
    env: &Environment,
    desired: &mut Desired,
    service: Option<&str>,
    image: Option<&str>,
    ui: &Ui,
) -> Options {
    let m = &env.manifest;
    let mut opts = Options::default();
    match (service, image) {
        (Some(svc), Some(image)) => {
            desired.set_image(svc, image);
            ui.info(&format!(
                "rolling {svc} to {image} (a later `twip up` returns to the manifest's image)"
            ));
        }
        (Some(svc), None) => {
            opts.force.insert(svc.to_string());
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
    opts
}

/// The replica counts `scale` asks for, checked: known, replicated services (a global one
/// runs one task per node). A count outside a service's autoscale range is a warning.
pub fn scale(env: &Environment, scales: &[(String, u64)], ui: &Ui) -> anyhow::Result<Options> {
    let mut counts = BTreeMap::new();
    for (svc, n) in scales {
        if !known(env, svc) {
            return Err(no_service(env, svc));
        }
        let mode = if svc == PROXY_SERVICE {
            env.manifest.proxy.as_ref().map(|p| p.mode)
        } else {
            env.manifest.services.get(svc).map(|s| s.mode)
        };
        if mode == Some(Mode::Global) {
            return Err(exit::invalid(format!(
                "`{svc}` is a global service: it runs one task on every node and cannot be scaled; change placement or nodes instead"
            )));
        }
        if let Some(a) = env
            .manifest
            .services
            .get(svc)
            .and_then(|s| s.autoscale.as_ref())
        {
            if *n < a.min || *n > a.max {
                ui.warn(&format!("{svc}={n} is outside its autoscale range {}..{}; the autoscaler will move it back", a.min, a.max));
            }
        }
        counts.insert(svc.clone(), *n);
    }
    Ok(Options {
        scale: counts,
        ..Options::default()
    })
}
