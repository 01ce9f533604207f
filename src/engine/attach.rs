//! A command run in a running container through the Engine API's exec endpoints (create,
//! start attached, resize, inspect), as `docker exec` does. This module opens the session and
//! hands back its streams; what is read from and written to them is the caller's (the engine
//! prints nothing).

use std::pin::Pin;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;
use bollard::query_parameters::ResizeExecOptionsBuilder;
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWrite;

use super::error::{EngineError, EngineResult, ErrorKind};
use super::Docker;

/// What to run, and how.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecSpec {
    /// The program and its arguments (no shell in between).
    pub cmd: Vec<String>,
    /// `user`, `user:group`, `uid` or `uid:gid` (default: the container's).
    pub user: Option<String>,
    /// An absolute directory in the container (default: the container's).
    pub workdir: Option<String>,
    /// `K=V` entries added to the container's environment.
    pub env: Vec<String>,
    /// Attach the command's stdin.
    pub stdin: bool,
    /// Allocate a pseudo-terminal (one output stream, the terminal's).
    pub tty: bool,
    /// The terminal's size as (columns, rows), when known: set at creation on engines that
    /// take it (API 1.42+), and by [`Exec::resize`] on every engine.
    pub size: Option<(u16, u16)>,
}

/// A piece of the command's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// Its stdout (with a TTY: everything the terminal printed).
    Out(Vec<u8>),
    /// Its stderr.
    Err(Vec<u8>),
}

/// A started exec: its output until the command ends, and its stdin (when attached).
pub struct Exec {
    docker: Docker,
    pub id: String,
    pub output: Pin<Box<dyn Stream<Item = Result<Chunk, EngineError>> + Send>>,
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
}

/// Creates the exec in CONTAINER and starts it attached.
pub async fn start(docker: &Docker, container: &str, spec: &ExecSpec) -> Result<Exec, EngineError> {
    let config = ExecConfig {
        attach_stdin: Some(spec.stdin),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(spec.tty),
        console_size: spec
            .size
            .filter(|_| spec.tty)
            .map(|(w, h)| vec![usize::from(h), usize::from(w)]),
        env: (!spec.env.is_empty()).then(|| spec.env.clone()),
        cmd: Some(spec.cmd.clone()),
        user: spec.user.clone(),
        working_dir: spec.workdir.clone(),
        ..Default::default()
    };
    let created = docker
        .create_exec(container, config)
        .await
        .engine("run a command in container", container)?;
    let started = docker
        .start_exec(
            &created.id,
            Some(StartExecOptions {
                detach: false,
                tty: spec.tty,
                output_capacity: None,
            }),
        )
        .await
        .engine("start a command in container", container)?;
    let StartExecResults::Attached { output, input } = started else {
        return Err(EngineError::of(
            "start a command in container",
            container,
            ErrorKind::Other,
            None,
            "the engine detached the command",
        ));
    };
    let id = created.id.clone();
    let output = output.filter_map(move |r| {
        let id = id.clone();
        async move {
            match r {
                Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                    Some(Ok(Chunk::Out(message.to_vec())))
                }
                Ok(LogOutput::StdErr { message }) => Some(Ok(Chunk::Err(message.to_vec()))),
                Ok(LogOutput::StdIn { .. }) => None,
                Err(e) => Some(Err(EngineError::new("read the output of exec", &id, e))),
            }
        }
    });
    Ok(Exec {
        docker: docker.clone(),
        id: created.id,
        output: Box::pin(output),
        input,
    })
}

impl Exec {
    /// Sets the size of its terminal (columns, rows).
    pub async fn resize(&self, cols: u16, rows: u16) -> Result<(), EngineError> {
        let opts = ResizeExecOptionsBuilder::default()
            .w(i32::from(cols))
            .h(i32::from(rows))
            .build();
        self.docker
            .resize_exec(&self.id, opts)
            .await
            .engine("resize the terminal of exec", &self.id)
    }

    /// The command's exit code, once it has ended (asked after its output ended: the engine
    /// may take a moment to record it). `None` when the engine never says.
    pub async fn exit_code(&self) -> Result<Option<i64>, EngineError> {
        let mut wait = Duration::from_millis(10);
        for _ in 0..20 {
            let r = self
                .docker
                .inspect_exec(&self.id)
                .await
                .engine("inspect exec", &self.id)?;
            if r.running != Some(true) {
                return Ok(r.exit_code);
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_millis(500));
        }
        Ok(None)
    }
}

/// The exit code for a command the engine could not start, from its message: 127 when the
/// program was not found, 126 when it could not be run (not executable, a directory), as
/// shells and `docker run` say.
pub fn start_failure_code(message: &str) -> Option<i32> {
    let m = message.to_ascii_lowercase();
    if !m.contains("exec failed") && !m.contains("unable to start container process") {
        return None;
    }
    if m.contains("not found") || m.contains("no such file or directory") {
        Some(127)
    } else {
        Some(126)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_failures_map_to_shell_codes() {
        let nf = "OCI runtime exec failed: exec failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH: unknown";
        assert_eq!(start_failure_code(nf), Some(127));
        let perm = "OCI runtime exec failed: exec failed: unable to start container process: exec: \"/etc/passwd\": permission denied: unknown";
        assert_eq!(start_failure_code(perm), Some(126));
        let missing = "OCI runtime exec failed: exec failed: unable to start container process: exec: \"/no/such\": stat /no/such: no such file or directory: unknown";
        assert_eq!(start_failure_code(missing), Some(127));
        assert_eq!(start_failure_code("hello world\n"), None);
    }
}
