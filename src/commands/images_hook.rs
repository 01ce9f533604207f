//! Until `twip build` lands in this tree: images built by twip must already be in the engine.

use std::path::Path;

use bollard::Docker;

use crate::manifest::Environment;
use crate::render::context::image_ref;
use crate::ui::Ui;

pub async fn ensure_images(
    env: &Environment,
    docker: &Docker,
    _project_dir: &Path,
    _ui: &Ui,
) -> anyhow::Result<()> {
    let m = &env.manifest;
    let mut names: Vec<&str> = m.services.values().map(|s| s.image.as_str()).collect();
    if let Some(p) = &m.proxy {
        names.push(p.image.as_deref().unwrap_or("proxy"));
    }
    for name in names {
        if m.images.get(name).is_some_and(|i| i.build.is_some()) {
            let r = image_ref(env, name);
            if docker.inspect_image(&r).await.is_err() {
                return Err(anyhow::anyhow!(
                    "image {r} is not in the engine; build it first (`twip build {}`)",
                    env.name
                ));
            }
        }
    }
    Ok(())
}
