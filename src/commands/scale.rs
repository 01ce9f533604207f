//! `twip scale ENV SVC=N...`: change desired replica counts and converge through the same path
//! as `up`. The manifest is not edited; a later `up` keeps these counts until the manifest's
//! own count changes.

use std::collections::BTreeMap;

use crate::cli::{GlobalArgs, ScaleArgs};
use crate::exit;
use crate::manifest::model::Mode;
use crate::plan::Options;
use crate::ui::Ui;

pub async fn run(g: &GlobalArgs, args: &ScaleArgs, ui: &Ui) -> anyhow::Result<i32> {
    let project = crate::project::Project::discover(g.project_dir.as_deref())?;
    let env = project.load(&args.env)?;
    let mut scale = BTreeMap::new();
    for (svc, n) in &args.scales {
        let (mode, known) = if svc == crate::manifest::validate::PROXY_SERVICE {
            (
                env.manifest.proxy.as_ref().map(|p| p.mode),
                env.manifest.proxy.is_some(),
            )
        } else {
            (
                env.manifest.services.get(svc).map(|s| s.mode),
                env.manifest.services.contains_key(svc),
            )
        };
        if !known {
            let names: Vec<&str> = env.manifest.services.keys().map(String::as_str).collect();
            return Err(exit::invalid(crate::suggest::no_service(
                &env.name, svc, &names,
            )));
        }
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
        scale.insert(svc.clone(), *n);
    }
    let t = crate::context::open_on(g, &args.env, args.lab.as_deref()).await?;
    let opts = Options {
        scale,
        ..Options::default()
    };
    crate::lifecycle::converge::converge(&t, &opts, false, args.timeout, ui).await
}
