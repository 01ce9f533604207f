//! `twip render ENV [-o DIR|-] [--check]`: write the stack file and the proxy and monitoring
//! configs (default into build/ENV/), print the stack (`-o -`), or check that the files on
//! disk are up to date (exit 1 when they are not).

use std::path::PathBuf;

use crate::cli::{GlobalArgs, RenderArgs};
use crate::exit;
use crate::project::Project;
use crate::render::{self, STACK_FILE};
use crate::ui::Ui;

pub fn run(g: &GlobalArgs, args: &RenderArgs, ui: &Ui) -> anyhow::Result<i32> {
    let project = Project::discover(g.project_dir.as_deref())?;
    let env = project.load(&args.env)?;
    let to_stdout = args.output.as_deref() == Some("-");
    if to_stdout && args.check {
        return Err(exit::invalid(
            "--check compares files on disk; it cannot be used with -o -",
        ));
    }
    let out_dir: PathBuf = match args.output.as_deref() {
        Some("-") => project.dir.clone(),
        Some(dir) => PathBuf::from(dir),
        None => project.dir.join("build").join(&env.name),
    };
    let output = render::render(&env, &project.dir, &out_dir)?;
    if to_stdout {
        print!("{}", output.get(STACK_FILE).unwrap_or_default());
        return Ok(exit::SUCCESS);
    }
    if args.check {
        let mut stale = Vec::new();
        for f in &output.files {
            crate::render::escape::file_name(&f.name).map_err(|e| exit::invalid(e.to_string()))?;
            let path = out_dir.join(&f.name);
            match std::fs::read_to_string(&path) {
                Ok(on_disk) if on_disk == f.content => {}
                Ok(_) => stale.push(format!("{} differs", path.display())),
                Err(_) => stale.push(format!("{} is missing", path.display())),
            }
        }
        if stale.is_empty() {
            ui.ok(&format!("{}: rendered files are up to date", env.name));
            return Ok(exit::SUCCESS);
        }
        for s in &stale {
            println!("{s}");
        }
        ui.error(&format!(
            "{}: rendered files are out of date; run `twip render {}`",
            env.name, env.name
        ));
        return Ok(exit::FAILURE);
    }
    for path in render::write_output(&out_dir, &output)? {
        println!("{}", path.display());
    }
    ui.ok(&format!(
        "rendered {} ({} file{}) into {}",
        env.name,
        output.files.len(),
        if output.files.len() == 1 { "" } else { "s" },
        out_dir.display()
    ));
    Ok(exit::SUCCESS)
}
