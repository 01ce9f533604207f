//! The project's hooks: executables in `hooks/` (`pre-build`, `pre-deploy`, `post-deploy`,
//! `post-rollback`) that twip runs on the operator's machine, as an argv of one element (no
//! shell), in the project's folder, with `TWIP_*` variables in their environment.

use std::path::Path;

use super::Cmd;
use crate::exit;

/// The hooks twip runs, in the order a deploy meets them.
pub const NAMES: [&str; 4] = ["pre-build", "pre-deploy", "post-deploy", "post-rollback"];

/// The command that runs hook NAME of the project at PROJECT_DIR with VARS in its
/// environment; `None` when the project has no such hook. A hook that is not a file, is not
/// executable, or (through a link) lies outside the project is an input error (exit 2)
/// that says how to fix it.
pub fn command(
    project_dir: &Path,
    name: &str,
    vars: &[(&str, String)],
) -> anyhow::Result<Option<Cmd>> {
    debug_assert!(NAMES.contains(&name));
    let shown = format!("hooks/{name}");
    let path = project_dir.join("hooks").join(name);
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(None);
    }
    let (Ok(real), Ok(root)) = (path.canonicalize(), project_dir.canonicalize()) else {
        return Err(exit::invalid(format!(
            "{shown} cannot be read (a link to nothing?)"
        )));
    };
    if !real.starts_with(&root) {
        return Err(exit::invalid(format!(
            "{shown} points outside the project ({}); hooks live in the project",
            real.display()
        )));
    }
    let meta = std::fs::metadata(&real)?;
    if !meta.is_file() {
        return Err(exit::invalid(format!("{shown} is not a file")));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(exit::invalid(format!(
                "{shown} is not executable; make it so with `chmod +x {shown}` (or remove it)"
            )));
        }
    }
    let mut cmd = Cmd::new(real.display().to_string()).current_dir(&root);
    for (k, v) in vars {
        cmd = cmd.env(*k, v.clone());
    }
    Ok(Some(cmd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hook_is_an_argv_of_one_in_the_project_with_its_variables() {
        let dir = tempfile::tempdir().unwrap();
        assert!(command(dir.path(), "pre-deploy", &[]).unwrap().is_none());
        std::fs::create_dir(dir.path().join("hooks")).unwrap();
        let hook = dir.path().join("hooks/pre-deploy");
        std::fs::write(&hook, "#!/bin/sh\nexit 0\n").unwrap();
        let e = command(dir.path(), "pre-deploy", &[]).unwrap_err();
        assert_eq!(crate::exit::code_for(&e), 2);
        assert_eq!(
            e.to_string(),
            "hooks/pre-deploy is not executable; make it so with `chmod +x hooks/pre-deploy` (or remove it)"
        );
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        let c = command(dir.path(), "pre-deploy", &[("TWIP_ENV", "prod".into())])
            .unwrap()
            .unwrap();
        let root = dir.path().canonicalize().unwrap();
        assert_eq!(
            c.program,
            root.join("hooks/pre-deploy").display().to_string()
        );
        assert!(c.args.is_empty());
        assert_eq!(c.cwd.as_deref(), Some(root.as_path()));
        assert_eq!(c.env, vec![("TWIP_ENV".to_string(), "prod".to_string())]);
        // A link out of the project is refused.
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("x");
        std::fs::write(&target, "").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("hooks/post-deploy")).unwrap();
        let e = command(dir.path(), "post-deploy", &[]).unwrap_err();
        assert!(e.to_string().contains("points outside the project"), "{e}");
    }
}
