//! `twip completions SHELL`: a completion script on stdout.

use clap::CommandFactory;
use clap_complete::{generate, Shell as CShell};

use crate::cli::{Cli, CompletionsArgs, Shell};

pub fn run(args: &CompletionsArgs) -> anyhow::Result<i32> {
    let shell = match args.shell {
        Shell::Bash => CShell::Bash,
        Shell::Zsh => CShell::Zsh,
        Shell::Fish => CShell::Fish,
        Shell::Elvish => CShell::Elvish,
        Shell::Powershell => CShell::PowerShell,
    };
    let mut cmd = Cli::command();
    generate(shell, &mut cmd, "twip", &mut std::io::stdout());
    Ok(crate::exit::SUCCESS)
}
