//! One module per subcommand. Each only wires the pure core and the effects together.

pub mod agent;
pub mod autoscale;
pub mod bench;
pub mod bootstrap;
pub mod build;
pub mod certs;
pub mod clean;
pub mod completions;
pub mod docs;
pub mod down;
pub mod exec;
pub mod history;
pub mod images;
pub mod init;
pub mod jobs;
pub mod lab;
pub mod lock;
pub mod logs;
pub mod plan;
pub mod render;
pub mod rollback;
pub mod run;
pub mod scale;
pub mod schema;
pub mod smoke;
pub mod status;
pub mod swarm;
pub mod up;
pub mod update;
pub mod validate;

use crate::cli::GlobalArgs;

/// Commands whose engine side lands with a later issue: validate the manifest first (so
/// input errors are reported as they will be), then say plainly that the command is not
/// available yet. Exit code 1.
pub fn not_yet(cmd: &str, env: &str, g: &GlobalArgs, issue: &str) -> anyhow::Result<i32> {
    if !env.is_empty() {
        let project = crate::project::Project::discover(g.project_dir.as_deref())?;
        project.load(env)?;
    }
    anyhow::bail!("`twip {cmd}` is not available in this version yet (tracked in issue {issue})")
}
