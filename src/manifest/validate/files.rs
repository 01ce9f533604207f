//! Files the manifest names (configs, secrets, env files) exist, and the paths to them stay
//! in the project.

use std::path::Path;

use super::{dockerfile_key, Checker};
use crate::manifest::model::*;

pub(super) fn check_files(m: &Manifest, project_dir: &Path, c: &mut Checker) {
    for (name, s) in &m.secrets {
        let n = name.as_str();
        match (&s.file, &s.environment, s.external) {
            (_, _, true) => {}
            (Some(_), Some(_), _) => c.err(
                &["secrets", n],
                "give one of `file` or `environment`, not both",
            ),
            (None, None, _) => c.err(
                &["secrets", n],
                "a secret needs `file`, `environment`, or `external: true`",
            ),
            (Some(f), None, _) if !project_dir.join(f).is_file() => c.err(
                &["secrets", n, "file"],
                format!("no file `{f}` (relative to the project directory)"),
            ),
            _ => {}
        }
    }
    for (name, s) in &m.configs {
        let n = name.as_str();
        match (&s.file, &s.content, s.external) {
            (_, _, true) => {}
            (Some(_), Some(_), _) => {
                c.err(&["configs", n], "give one of `file` or `content`, not both")
            }
            (None, None, _) => c.err(
                &["configs", n],
                "a config needs `file`, `content`, or `external: true`",
            ),
            (Some(f), None, _) if !project_dir.join(f).is_file() => c.err(
                &["configs", n, "file"],
                format!("no file `{f}` (relative to the project directory)"),
            ),
            _ => {}
        }
    }
    for (name, s) in &m.services {
        if let Some(files) = &s.env_file {
            for (i, f) in files.to_vec().iter().enumerate() {
                if !project_dir.join(f).is_file() {
                    let idx = i.to_string();
                    let path: Vec<&str> = match files {
                        StringOrList::String(_) => vec!["services", name, "env_file"],
                        StringOrList::List(_) => vec!["services", name, "env_file", &idx],
                    };
                    c.err(
                        &path,
                        format!("no env file `{f}` (relative to the project directory)"),
                    );
                }
            }
        }
    }
}

/// Directories never read, whatever `allow_paths_outside_project` says.
const NEVER: &[&str] = &["/proc", "/sys", "/dev"];

/// Resolves `rel` (relative to `base`, symlinks included) and says whether it stays in the
/// project directory or in one of the allowed directories. A path that does not exist is
/// left to the checks that look for it.
pub fn stays_in_project(
    project_dir: &Path,
    base: &Path,
    rel: &str,
    allowed: &[String],
) -> Result<(), String> {
    let Ok(target) = base.join(rel).canonicalize() else {
        return Ok(());
    };
    let never = NEVER.iter().any(|n| target.starts_with(n));
    if never {
        return Err("resolves into /proc, /sys or /dev, which twip never reads".to_string());
    }
    let project = project_dir
        .canonicalize()
        .unwrap_or_else(|_| project_dir.to_path_buf());
    if target.starts_with(&project) {
        return Ok(());
    }
    for a in allowed {
        if let Ok(dir) = Path::new(a).canonicalize() {
            if Path::new(a).is_absolute() && target.starts_with(&dir) {
                return Ok(());
            }
        }
    }
    Err("leaves the project directory (symlinks are followed); move it into the project, or list its directory in allow_paths_outside_project".to_string())
}

pub(super) fn check_paths(m: &Manifest, project_dir: &Path, c: &mut Checker) {
    let allowed = &m.allow_paths_outside_project;
    for (i, a) in allowed.iter().enumerate() {
        if !Path::new(a).is_absolute() {
            let idx = i.to_string();
            c.err(
                &["allow_paths_outside_project", &idx],
                "write an absolute directory (paths inside the project need no entry)",
            );
        }
    }
    let one = |c: &mut Checker, path: &[&str], base: &Path, rel: &str| {
        if let Err(e) = stays_in_project(project_dir, base, rel, allowed) {
            c.err(path, format!("the path {e}"));
        }
    };
    for (name, s) in &m.secrets {
        if let Some(f) = &s.file {
            one(c, &["secrets", name, "file"], project_dir, f);
        }
    }
    for (name, s) in &m.configs {
        if let Some(f) = &s.file {
            one(c, &["configs", name, "file"], project_dir, f);
        }
    }
    for (name, s) in &m.services {
        if let Some(files) = &s.env_file {
            for (i, f) in files.to_vec().iter().enumerate() {
                let idx = i.to_string();
                let path: Vec<&str> = match files {
                    StringOrList::String(_) => vec!["services", name, "env_file"],
                    StringOrList::List(_) => vec!["services", name, "env_file", &idx],
                };
                one(c, &path, project_dir, f);
            }
        }
    }
    // Build contexts (sent to the builder, not to the swarm) may also come from the git
    // repository the project is in: a monorepo's shared image directories.
    let repo = project_dir.canonicalize().ok().and_then(|p| {
        p.ancestors()
            .find(|a| a.join(".git").exists())
            .map(|a| a.to_string_lossy().to_string())
    });
    let mut build_allowed = allowed.clone();
    build_allowed.extend(repo);
    let one = |c: &mut Checker, path: &[&str], base: &Path, rel: &str| {
        if let Err(e) = stays_in_project(project_dir, base, rel, &build_allowed) {
            c.err(path, format!("the path {e}"));
        }
    };
    for (name, img) in &m.images {
        if let Some(b) = &img.build {
            one(
                c,
                &["images", name, "build", "context"],
                project_dir,
                &b.context,
            );
            let ctx = project_dir.join(&b.context);
            let df = b.dockerfile.as_deref().unwrap_or("Dockerfile");
            one(c, &["images", name, "build", dockerfile_key(b)], &ctx, df);
        }
    }
}
