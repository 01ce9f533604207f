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
        self.loader
            .load_file(name, &file)
            .map_err(anyhow::Error::new)
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
