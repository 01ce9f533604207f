//! Everything twip says to a person goes through here: stderr only, colour only on a terminal
//! and never when `NO_COLOR` is set or `--no-color` is given. Data goes to stdout elsewhere.

use console::{Style, Term};

use crate::cli::GlobalArgs;

#[derive(Debug, Clone)]
pub struct Ui {
    pub verbose: u8,
    pub quiet: bool,
    pub color: bool,
    /// stderr is a terminal: live progress (spinners, tables) is allowed.
    pub interactive: bool,
}

impl Ui {
    pub fn new(g: &GlobalArgs) -> Self {
        let term = Term::stderr();
        let interactive = term.is_term();
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = interactive && !g.no_color && !no_color_env;
        console::set_colors_enabled_stderr(color);
        console::set_colors_enabled(color && Term::stdout().is_term());
        Ui {
            verbose: g.verbose,
            quiet: g.quiet,
            color,
            interactive,
        }
    }

    /// A plain UI for tests and library callers: no colour, not interactive.
    pub fn plain() -> Self {
        Ui {
            verbose: 0,
            quiet: false,
            color: false,
            interactive: false,
        }
    }

    fn style(&self, s: Style) -> Style {
        if self.color {
            s.force_styling(true)
        } else {
            s.force_styling(false)
        }
    }

    /// A finished step: `✓ message`.
    pub fn ok(&self, msg: &str) {
        if !self.quiet {
            let mark = self.style(Style::new().green()).apply_to("✓");
            eprintln!("{mark} {msg}");
        }
    }

    /// Progress or information.
    pub fn info(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }

    /// Detail shown with `-v`.
    pub fn debug(&self, msg: &str) {
        if self.verbose > 0 && !self.quiet {
            let s = self.style(Style::new().dim()).apply_to(msg);
            eprintln!("{s}");
        }
    }

    pub fn warn(&self, msg: &str) {
        if !self.quiet {
            let w = self
                .style(Style::new().yellow().bold())
                .apply_to("warning:");
            eprintln!("{w} {msg}");
        }
    }

    pub fn error(&self, msg: &str) {
        let e = self.style(Style::new().red().bold()).apply_to("error:");
        eprintln!("{e} {msg}");
    }

    /// Prints an error: its message, then (with `-v`) the chain of causes. Never a backtrace.
    pub fn report_error(&self, err: &anyhow::Error) {
        if let Some(d) = err.downcast_ref::<crate::manifest::Diagnostics>() {
            for line in d.lines() {
                eprintln!("{line}");
            }
            let e = self.style(Style::new().red().bold()).apply_to("error:");
            eprintln!("{e} {}", d.summary());
            return;
        }
        let mut msg = err.to_string();
        let causes: Vec<String> = err.chain().skip(1).map(|c| c.to_string()).collect();
        if self.verbose > 0 {
            self.error(&msg);
            for c in causes {
                eprintln!("  caused by: {c}");
            }
        } else {
            // Without -v, still say the innermost cause when it adds something.
            if let Some(last) = causes.last() {
                if !msg.contains(last.as_str()) {
                    msg = format!("{msg}: {last}");
                }
            }
            self.error(&msg);
        }
    }
}
