//! The project directory: where `environments/`, `templates/` and `images/` live.

use std::path::{Path, PathBuf};

use crate::exit::invalid;
use crate::manifest::{interp::Vars, Environment, Loader};

#[derive(Debug, Clone)]
pub struct Project {
    pub dir: PathBuf,
    pub loader: Loader,
}

impl Project {
    /// `--project-dir`, else the nearest directory at or above the current one that holds
    /// `environments/`.
    pub fn discover(explicit: Option<&Path>) -> anyhow::Result<Project> {
        let dir = match explicit {
            Some(d) => {
                if !d.join("environments").is_dir() {
                    return Err(invalid(format!(
                        "`{}` has no environments/ directory; is it a twip project? (`twip init {}` makes one)",
                        d.display(),
                        d.display()
                    )));
                }
                d.to_path_buf()
            }
            None => {
                let cwd = std::env::current_dir()?;
                cwd.ancestors()
                    .find(|d| d.join("environments").is_dir())
                    .map(Path::to_path_buf)
                    .ok_or_else(|| {
                        invalid(format!(
                            "no environments/ directory in {} or above it; run twip inside a project, pass --project-dir, or create one with `twip init`",
                            cwd.display()
                        ))
                    })?
            }
        };
        Project::at(dir)
    }

    pub fn at(dir: PathBuf) -> anyhow::Result<Project> {
        let vars = Vars::from_project(&dir)?;
        Ok(Project {
            loader: Loader {
                project_dir: dir.clone(),
                vars,
            },
            dir,
        })
    }

    pub fn environment_names(&self) -> Vec<String> {
        self.loader.environment_names(false)
    }

    /// Loads and validates environment `name`; an unknown name is invalid input with a hint.
    pub fn load(&self, name: &str) -> anyhow::Result<Environment> {
        let file = self
            .loader
            .env_file(name)
            .ok_or_else(|| self.unknown_env(name))?;
        let env = self
            .loader
            .load_file(name, &file)
            .map_err(anyhow::Error::new)?;
        crate::ui::hide_variable_values(env.sources.variable_values());
        Ok(env)
    }

    pub fn unknown_env(&self, name: &str) -> anyhow::Error {
        let known = self.environment_names();
        let hint = crate::manifest::diag::suggest(name, known.iter().map(String::as_str))
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        invalid(format!(
            "no environment `{name}` in {}{hint} (known: {})",
            self.dir.join("environments").display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))
    }
}

/// For unit tests: a project in a temporary folder holding environment `name` (its manifest
/// text) and `files` (path relative to the project, content), loaded and validated.
#[cfg(test)]
pub(crate) fn scratch(
    name: &str,
    manifest: &str,
    files: &[(&str, &[u8])],
) -> (tempfile::TempDir, Environment) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let envs = dir.path().join("environments");
    std::fs::create_dir(&envs).expect("environments/");
    std::fs::write(envs.join(format!("{name}.yaml")), manifest).expect("the manifest");
    for (path, content) in files {
        let p = dir.path().join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("a folder");
        }
        std::fs::write(p, content).expect("a file");
    }
    let project = Project::at(dir.path().to_path_buf()).expect("the project");
    let env = project.load(name).expect("a valid environment");
    (dir, env)
}
