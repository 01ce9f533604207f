//! Exit codes that scripts can rely on, and the error kinds that map onto them.

/// The command did what was asked.
pub const SUCCESS: i32 = 0;
/// Any failure that is not the user's input: the engine, the network, a subprocess.
pub const FAILURE: i32 = 1;
/// Invalid input: a usage error or an invalid manifest. Nothing was changed.
pub const INVALID_INPUT: i32 = 2;
/// A wait ran past its `--timeout` before the swarm converged.
pub const TIMEOUT: i32 = 3;
/// An update failed and swarm rolled it back: the old release is still running.
pub const ROLLED_BACK: i32 = 4;
/// An update was paused by swarm (failure action `pause`): a person must decide.
pub const PAUSED: i32 = 5;
/// Another operator holds the stack's deploy lock: nothing was changed.
pub const LOCKED: i32 = 6;
/// Stopped by Ctrl-C (128 + SIGINT, as shells report it).
pub const INTERRUPTED: i32 = 130;
/// A bug in twip: it panicked (`EX_SOFTWARE` of sysexits.h). One line says so, no backtrace.
pub const INTERNAL_ERROR: i32 = 70;

/// Every exit code and what it means: the one table that `--help` ([`EXIT_CODES_HELP`]), the
/// README and docs/commands.md are checked against.
pub const TABLE: &[(i32, &str)] = &[
    (SUCCESS, "success"),
    (
        FAILURE,
        "failure (engine, network, a subprocess, a failed check)",
    ),
    (
        INVALID_INPUT,
        "invalid input: usage error or invalid manifest; nothing was changed",
    ),
    (TIMEOUT, "timed out waiting for the swarm to converge"),
    (ROLLED_BACK, "an update failed and was rolled back"),
    (PAUSED, "an update was paused by swarm"),
    (
        LOCKED,
        "the stack is locked by another operator (twip lock status); nothing was changed",
    ),
    (
        INTERNAL_ERROR,
        "internal error: a bug in twip (one line says where to report it)",
    ),
    (
        INTERRUPTED,
        "interrupted (Ctrl-C); a deploy lock held was released",
    ),
];

/// Where the panic message sends a person who met a bug.
pub const REPORT_TO: &str =
    "the twip maintainers (see \"Reporting a problem\" in docs/security.md)";

/// An error caused by what the user typed or wrote, reported without a chain and with exit
/// code 2. Manifest problems have their own type ([`crate::manifest::Diagnostics`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

/// Helper to build an [`InvalidInput`] error wrapped in `anyhow`.
pub fn invalid(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(InvalidInput(msg.into()))
}

/// An error that carries its own exit code (timeouts, rollbacks, failed gates).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CodedError {
    pub code: i32,
    pub message: String,
}

pub fn coded(code: i32, msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(CodedError {
        code,
        message: msg.into(),
    })
}

/// The exit code for an error: 2 for input errors, the carried code for coded errors, else 1.
pub fn code_for(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if cause.is::<InvalidInput>() || cause.is::<crate::manifest::Diagnostics>() {
            return INVALID_INPUT;
        }
        if let Some(c) = cause.downcast_ref::<CodedError>() {
            return c.code;
        }
    }
    FAILURE
}

/// The text of the exit-code table, shared by `--help` and the docs.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  failure (engine, network, a subprocess, a failed check)
  2  invalid input: usage error or invalid manifest; nothing was changed
  3  timed out waiting for the swarm to converge
  4  an update failed and was rolled back
  5  an update was paused by swarm
  6  the stack is locked by another operator (twip lock status); nothing was changed
 70  internal error: a bug in twip (one line says where to report it)
130  interrupted (Ctrl-C); a deploy lock held was released";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_text_is_the_table() {
        let mut text = String::from("Exit codes:");
        for (code, meaning) in TABLE {
            text.push_str(&format!("\n{code:>3}  {meaning}"));
        }
        assert_eq!(EXIT_CODES_HELP, text);
    }
}
