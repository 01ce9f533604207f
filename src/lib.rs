//! twip: environment manifests in, running Docker Swarm stacks out.
//!
//! The library is split the way the data flows:
//! - [`manifest`]: load, interpolate, merge and validate `environments/*.yaml` (pure);
//! - [`render`]: the stack file, HAProxy and monitoring configs from templates (pure);
//! - [`commands`]: one module per subcommand that wires the pieces together;
//! - [`load`]: the HTTP load generator, and [`http`] its HTTP/1.1 client.

pub mod agent;
pub mod autoscale;
pub mod bootstrap;
pub mod build;
pub mod cli;
pub mod commands;
pub mod context;
pub mod engine;
pub mod exec;
pub mod exit;
pub mod http;
pub mod lab;
pub mod labels;
pub mod lifecycle;
pub mod load;
pub mod managers;
pub mod manifest;
pub mod nodes;
pub mod plan;
pub mod project;
pub mod render;
pub mod session;
pub mod suggest;
pub mod tasks;
pub mod tls;
pub mod ui;

use std::ffi::OsString;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::ui::Ui;

/// The stack of the thread that runs the command (the async runtime's own futures included):
/// room for deep but bounded recursion (the manifest loader has its own limits). Only
/// reserved address space until it is used.
pub const MAIN_STACK_BYTES: usize = 64 << 20;
/// The stack of the async runtime's worker threads.
const WORKER_STACK_BYTES: usize = 8 << 20;

static PANICKED: AtomicBool = AtomicBool::new(false);

/// Whether a panic happened on any thread (the hook ran): the process then exits
/// [`exit::INTERNAL_ERROR`] whatever the command returned.
pub fn panicked() -> bool {
    PANICKED.load(Ordering::SeqCst)
}

/// The line a panic prints, from its message and place: one line (newlines become spaces),
/// made safe for a terminal and without credentials.
pub fn panic_line(message: &str, location: Option<(&str, u32)>) -> String {
    let message = ui::clean(message).replace(['\n', '\t'], " ");
    let at = location
        .map(|(file, line)| format!(" ({file}:{line})"))
        .unwrap_or_default();
    format!(
        "twip: internal error: {message}{at}; please report it to {}",
        exit::REPORT_TO
    )
}

/// Installs the panic hook: the first panic on any thread prints [`panic_line`] to stderr
/// and nothing else (no backtrace, whatever `RUST_BACKTRACE` says); later ones print nothing.
/// The process then exits [`exit::INTERNAL_ERROR`] (see [`panicked`]). A stack overflow is
/// not a panic: the runtime aborts with its own message (SIGSEGV), which no hook can catch.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        if PANICKED.swap(true, Ordering::SeqCst) {
            return;
        }
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        let location = info.location().map(|l| (l.file(), l.line()));
        eprintln!("{}", panic_line(&message, location));
    }));
}

/// The command on a thread with a large stack ([`MAIN_STACK_BYTES`]); a panic there (or on
/// any thread) is exit [`exit::INTERNAL_ERROR`], after the destructors of the command ran
/// (subprocesses are killed, temporary directories removed).
pub fn main_on_large_stack(args: Vec<OsString>) -> i32 {
    let code = match std::thread::Builder::new()
        .name("twip".into())
        .stack_size(MAIN_STACK_BYTES)
        .spawn(move || main_with_args(args))
    {
        Ok(handle) => handle.join().unwrap_or(exit::INTERNAL_ERROR),
        Err(e) => {
            eprintln!("twip: cannot start the main thread: {e}");
            exit::FAILURE
        }
    };
    if panicked() {
        exit::INTERNAL_ERROR
    } else {
        code
    }
}

/// Parses `args` (including the program name), runs the command and returns the exit code.
/// Errors are printed here, once: a person-readable message, the cause chain only with `-v`.
pub fn main_with_args(args: Vec<OsString>) -> i32 {
    let args = cli::expand_shortcuts(args);
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            if !e.use_stderr() {
                // --help, --version: clap's own text, on stdout.
                let _ = e.print();
                return exit::SUCCESS;
            }
            // A usage error quotes what was typed: made safe for a terminal (without colour).
            eprint!("{}", ui::clean(&e.render().to_string()));
            return exit::INVALID_INPUT;
        }
    };
    let ui = Ui::from(&cli.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(WORKER_STACK_BYTES)
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
    #[cfg(debug_assertions)]
    test_panic().await;
    let g = &cli.global;
    match cli.command {
        Command::Init(args) => commands::init::run(&args, ui),
        Command::Validate(args) => commands::validate::run(g, &args, ui),
        Command::Render(args) => commands::render::run(g, &args, ui),
        Command::Schema => commands::schema::run(),
        Command::Completions(args) => commands::completions::run(&args),
        Command::DocsCommands => commands::docs::run(),
        Command::Agent(a) => commands::agent::run(g, &a, ui).await,
        Command::Bench(args) => commands::bench::run(&args, g, ui).await,
        Command::Certs(a) => commands::certs::run(g, &a, ui).await,
        Command::Plan(a) => commands::plan::run(g, &a, ui).await,
        Command::Build(a) => commands::build::run_build(g, &a, ui).await,
        Command::Push(a) => commands::build::run_push(g, &a, ui).await,
        Command::Images(cli::ImagesCommand::Load(a)) => commands::images::run_load(g, &a, ui).await,
        Command::Up(a) => commands::up::run(g, &a, ui).await,
        Command::Down(a) => commands::down::run(g, &a, ui).await,
        Command::Scale(a) => commands::scale::run(g, &a, ui).await,
        Command::Update(a) => commands::update::run(g, &a, ui).await,
        Command::Rollback(a) => commands::rollback::run(g, &a, ui).await,
        Command::History(a) => commands::history::run(g, &a, ui).await,
        Command::Lock(c) => commands::lock::run(g, &c, ui).await,
        Command::Status(a) => commands::status::run(g, &a, ui).await,
        Command::Logs(a) => commands::logs::run(g, &a, ui).await,
        Command::Exec(a) => commands::exec::run(g, &a, ui).await,
        Command::Run(a) => commands::run::run(g, &a, ui).await,
        Command::Jobs(a) => commands::jobs::run(g, &a, ui).await,
        Command::Test(a) => commands::smoke::run(g, &a, ui).await,
        Command::Clean(a) => commands::clean::run(g, &a, ui).await,
        Command::Swarm(cli::SwarmCommand::Init(a)) => commands::swarm::init(g, &a, ui).await,
        Command::Swarm(cli::SwarmCommand::Nodes(a)) => commands::swarm::nodes(g, &a, ui).await,
        Command::Swarm(cli::SwarmCommand::Join(a)) => commands::swarm::join(g, &a, ui).await,
        Command::Swarm(cli::SwarmCommand::Leave(a)) => commands::swarm::leave(g, &a, ui).await,
        Command::Bootstrap(a) => commands::bootstrap::run(g, &a, ui).await,
        Command::Lab(cli::LabCommand::Up(a)) => commands::lab::up(g, &a, ui).await,
        Command::Lab(cli::LabCommand::Down(a)) => commands::lab::down(g, &a, ui).await,
        Command::Lab(cli::LabCommand::Status(a)) => commands::lab::status(g, &a, ui).await,
        Command::Autoscale(a) => commands::autoscale::run(g, &a, ui).await,
    }
}

/// Debug builds only: `TWIP_TEST_PANIC=1` panics on the command's thread, `=task` in a task
/// of the async runtime (whose end is ignored), so tests can see what a bug looks like.
#[cfg(debug_assertions)]
async fn test_panic() {
    match std::env::var("TWIP_TEST_PANIC").as_deref() {
        Ok("1") => panic!("TWIP_TEST_PANIC is set\nsecond line \u{1b}[2J"),
        Ok("task") => {
            let _ = tokio::spawn(async { panic!("TWIP_TEST_PANIC=task is set") }).await;
        }
        _ => {}
    }
}
