//! `twip validate [ENV...]`: load every environment named (default: all) and report every
//! problem of every one. Exit 2 when any is invalid.

use serde::Serialize;

use crate::cli::{GlobalArgs, ValidateArgs};
use crate::exit;
use crate::manifest::{Diagnostic, Diagnostics};
use crate::project::Project;
use crate::ui::Ui;

#[derive(Serialize)]
struct Report {
    valid: bool,
    environments: Vec<EnvReport>,
}

#[derive(Serialize)]
struct EnvReport {
    name: String,
    file: String,
    valid: bool,
    problems: Vec<Diagnostic>,
}

pub fn run(g: &GlobalArgs, args: &ValidateArgs, ui: &Ui) -> anyhow::Result<i32> {
    let project = Project::discover(g.project_dir.as_deref())?;
    let names = if args.envs.is_empty() {
        project.environment_names()
    } else {
        args.envs.clone()
    };
    if names.is_empty() {
        return Err(exit::invalid(format!(
            "no environments in {}; add one (see `twip init`)",
            project.dir.join("environments").display()
        )));
    }
    let mut reports = Vec::new();
    for name in &names {
        let Some(file) = project.loader.env_file(name) else {
            return Err(project.unknown_env(name));
        };
        let shown = file
            .strip_prefix(&project.dir)
            .unwrap_or(&file)
            .display()
            .to_string();
        let (valid, problems) = match project.loader.load_file(name, &file) {
            Ok(env) => {
                for w in &env.warnings {
                    ui.warn(w);
                }
                (true, Vec::new())
            }
            Err(Diagnostics(items)) => (false, items),
        };
        reports.push(EnvReport {
            name: name.clone(),
            file: shown,
            valid,
            problems,
        });
    }
    let all_valid = reports.iter().all(|r| r.valid);
    if args.json {
        let report = Report {
            valid: all_valid,
            environments: reports,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for r in &reports {
            if r.valid {
                ui.ok(&format!("{} ({})", r.name, r.file));
            } else {
                for p in &r.problems {
                    eprintln!("{}", crate::ui::clean(&p.to_string()));
                }
                let n = r.problems.len();
                ui.error(&format!(
                    "{}: {n} problem{} in {}",
                    r.name,
                    if n == 1 { "" } else { "s" },
                    r.file
                ));
            }
        }
    }
    Ok(if all_valid {
        exit::SUCCESS
    } else {
        exit::INVALID_INPUT
    })
}
