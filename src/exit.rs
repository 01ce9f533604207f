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
  5  an update was paused by swarm";
