//! twip: environment manifests in, running Docker Swarm stacks out.
//!
//! The library is split the way the data flows:
//! - [`manifest`]: load, interpolate, merge and validate `environments/*.yaml` (pure);
//! - [`render`]: the stack file, HAProxy and monitoring configs from templates (pure);
//! - [`commands`]: one module per subcommand that wires the pieces together;
//! - [`bench`]: the HTTP load generator.

pub mod autoscale;
pub mod bench;
pub mod cli;
pub mod commands;
pub mod engine;
pub mod exec;
pub mod exit;
pub mod manifest;
pub mod plan;
pub mod project;
pub mod render;
pub mod ui;

use std::ffi::OsString;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::ui::Ui;

/// Parses `args` (including the program name), runs the command and returns the exit code.
/// Errors are printed here, once: a person-readable message, the cause chain only with `-v`.
pub fn main_with_args(args: Vec<OsString>) -> i32 {
    let args = cli::expand_shortcuts(args);
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::INVALID_INPUT
            } else {
                exit::SUCCESS
            };
            let _ = e.print();
            return code;
        }
    };
    let ui = Ui::new(&cli.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            ui.error(&format!("cannot start the async runtime: {e}"));
            return exit::FAILURE;
        }
    };
    match runtime.block_on(run(cli, &ui)) {
        Ok(code) => code,
        Err(err) => {
            ui.report_error(&err);
            exit::code_for(&err)
        }
    }
}

/// Runs one parsed command. Returns the exit code for outcomes that are not errors
/// (e.g. `render --check` finding stale files).
pub async fn run(cli: Cli, ui: &Ui) -> anyhow::Result<i32> {
    let g = &cli.global;
    match cli.command {
        Command::Init(args) => commands::init::run(&args, ui),
        Command::Validate(args) => commands::validate::run(g, &args, ui),
        Command::Render(args) => commands::render::run(g, &args, ui),
        Command::Schema => commands::schema::run(),
        Command::Completions(args) => commands::completions::run(&args),
        Command::DocsCommands => commands::docs::run(),
        Command::Bench(args) => bench::run(&args, g, ui).await,
        Command::Plan(a) => commands::plan::run(g, &a, ui).await,
        Command::Build(a) => commands::build::run_build(g, &a, ui).await,
        Command::Push(a) => commands::build::run_push(g, &a, ui).await,
        Command::Images(cli::ImagesCommand::Load(a)) => commands::images::run_load(g, &a, ui).await,
        Command::Up(a) => commands::up::run(g, &a, ui).await,
        Command::Down(a) => commands::down::run(g, &a, ui).await,
        Command::Scale(a) => commands::scale::run(g, &a, ui).await,
        Command::Update(a) => commands::update::run(g, &a, ui).await,
        Command::Rollback(a) => commands::rollback::run(g, &a, ui).await,
        Command::Status(a) => commands::status::run(g, &a, ui).await,
        Command::Logs(a) => commands::logs::run(g, &a, ui).await,
        Command::Test(a) => commands::smoke::run(g, &a, ui).await,
        Command::Clean(a) => commands::clean::run(g, &a, ui).await,
        Command::Swarm(cli::SwarmCommand::Init(a)) => commands::swarm::init(g, &a, ui).await,
        Command::Swarm(cli::SwarmCommand::Nodes(a)) => commands::swarm::nodes(g, &a, ui).await,
        Command::Swarm(cli::SwarmCommand::Join(a)) => {
            commands::not_yet("swarm join", &a.env, g, "#5")
        }
        Command::Swarm(cli::SwarmCommand::Leave(a)) => {
            commands::not_yet("swarm leave", &a.env, g, "#5")
        }
        Command::Bootstrap(a) => commands::not_yet("bootstrap", &a.env, g, "#5"),
        Command::Lab(_) => commands::not_yet("lab", "", g, "#5"),
        Command::Autoscale(a) => commands::autoscale::run(g, &a, ui).await,
    }
}
