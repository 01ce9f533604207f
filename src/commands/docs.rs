//! The command reference as Markdown (docs/commands.md), generated from the CLI definition so
//! it always matches `--help`. A test fails when the file in the repository is stale.

use clap::CommandFactory;

use crate::cli::Cli;

pub fn commands_markdown() -> String {
    let mut out = String::from(
        "# Command reference\n\n\
         Generated from `twip --help` by `twip docs-commands > docs/commands.md`; a test keeps\n\
         it in step with the binary.\n",
    );
    let mut root = Cli::command().term_width(100);
    root.build();
    walk(&mut root, "twip", &mut out);
    out
}

fn walk(cmd: &mut clap::Command, path: &str, out: &mut String) {
    if cmd.is_hide_set() {
        return;
    }
    let help = cmd.render_long_help().to_string();
    out.push_str(&format!(
        "\n## `{path}`\n\n```text\n{}\n```\n",
        help.trim_end()
    ));
    let names: Vec<String> = cmd
        .get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
        .map(|c| c.get_name().to_string())
        .collect();
    for name in names {
        if let Some(sub) = cmd.find_subcommand_mut(&name) {
            let sub_path = format!("{path} {name}");
            walk(sub, &sub_path, out);
        }
    }
}

pub fn run() -> anyhow::Result<i32> {
    print!("{}", commands_markdown());
    Ok(crate::exit::SUCCESS)
}
