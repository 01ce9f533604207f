//! The `images` section, and references to it from services and the proxy.

use std::path::Path;

use super::{did_you_mean, dockerfile_key, is_full_reference, valid_name, Checker, PLATFORMS};
use crate::manifest::model::*;
use crate::manifest::names;

pub(super) fn check_images(m: &Manifest, project_dir: &Path, c: &mut Checker) {
    for (name, img) in &m.images {
        let p = ["images", name.as_str()];
        if !valid_name(name) || name.chars().any(|ch| ch.is_ascii_uppercase()) {
            c.err(&p, format!("`{name}` is not a valid image name: use lowercase letters, digits, `-`, `_`, `.`"));
        }
        match (&img.build, &img.reference) {
            (None, None) => c.err(&p, format!("image `{name}` has neither `build` (to build it) nor `ref` (to use an image from a registry)")),
            (Some(_), Some(_)) => c.err(&["images", name, "ref"], format!("image `{name}` has both `build` and `ref`; keep one")),
            _ => {}
        }
        if let Some(r) = &img.reference {
            if r.is_empty() || r.contains(' ') {
                c.err(
                    &["images", name, "ref"],
                    format!("`{r}` is not an image reference"),
                );
            }
        }
        for (i, plat) in img.platforms.iter().enumerate() {
            if !PLATFORMS.contains(&plat.as_str()) {
                let idx = i.to_string();
                c.err(
                    &["images", name, "platforms", &idx],
                    format!(
                        "`{plat}` is not a platform{}",
                        did_you_mean(plat, PLATFORMS.iter().copied())
                    ),
                );
            }
        }
        if let Some(b) = &img.build {
            let ctx = project_dir.join(&b.context);
            if !ctx.is_dir() {
                c.err(&["images", name, "build", "context"], format!("the build context `{}` is not a directory (paths are relative to the project directory)", b.context));
            } else {
                let df = b.dockerfile.as_deref().unwrap_or("Dockerfile");
                if !ctx.join(df).is_file() {
                    c.err(
                        &["images", name, "build", dockerfile_key(b)],
                        format!("no Dockerfile `{df}` in `{}`", b.context),
                    );
                }
            }
        }
        for (i, t) in img.tags.iter().enumerate() {
            let ok = names::image_tag(&t.0).is_ok();
            if !ok {
                let idx = i.to_string();
                c.err(
                    &["images", name, "tags", &idx],
                    format!(
                        "`{}` is not a valid tag (letters, digits, `_`, `.`, `-`; at most 128)",
                        t.0
                    ),
                );
            }
        }
    }
}

pub(super) fn check_image_ref(m: &Manifest, image: &str, path: &[&str], c: &mut Checker) {
    if m.images.contains_key(image) || is_full_reference(image) {
        return;
    }
    let hint = did_you_mean(image, m.images.keys().map(String::as_str));
    c.err(path, format!("undefined image `{image}`{hint}; name an `images` entry, or a registry image with its tag (`{image}:TAG`)"));
}
