//! A command run in tasks' containers, as `twip exec` runs it: attached to twip's own streams
//! for one task ([`attached`]: stdin piped with `-i`, a terminal in raw mode with `-t`, resize
//! following it), or in every task at once with each line prefixed by its task ([`each`]).
//! The command's output is its own and is written unchanged (like `docker exec`); only twip's
//! prefixes and messages go through `ui::clean`.

use std::io::Write;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::engine::attach::{self, Chunk, Exec, ExecSpec};
use crate::engine::Docker;
use crate::exit;
use crate::ui::term::{self, RawMode};
use crate::ui::Ui;

/// One task's container on its node's engine, and how it is named (`web.2@worker-1`).
pub struct Place {
    pub label: String,
    pub docker: Docker,
    pub container: String,
}

/// How much of the start of the output is kept to recognise a command the engine could not
/// start (its message is the output).
const KEPT: usize = 1024;

/// The exit code of a finished exec: the engine's, with a start failure said the way shells
/// and `docker run` say it (127 not found, 126 not executable), 1 when the engine never says.
async fn exit_code(exec: &Exec, head: &[u8]) -> anyhow::Result<i32> {
    let code = exec.exit_code().await?;
    let started = attach::start_failure_code(&String::from_utf8_lossy(head));
    Ok(match (code, started) {
        (Some(126 | 127), Some(c)) => c,
        (Some(c), _) => i32::try_from(c).unwrap_or(exit::FAILURE),
        (None, Some(c)) => c,
        (None, None) => exit::FAILURE,
    })
}

fn keep(head: &mut Vec<u8>, bytes: &[u8]) {
    let room = KEPT.saturating_sub(head.len());
    head.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

/// Waits for the next signal of S, or forever when there is none.
async fn next(s: &mut Option<Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Reads twip's stdin on a thread of its own, in chunks, until EOF (then the channel closes).
/// Not the runtime's blocking pool: a read that never returns (a terminal nobody types in
/// after the command ended) must not keep twip from exiting.
fn read_stdin() -> tokio::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match std::io::Read::read(&mut stdin, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// Sets the exec's terminal to the size of twip's, retried briefly: right after the start
/// the engine may not have the process yet.
async fn resize(exec: &Exec, ui: &Ui) {
    let Some((w, h)) = term::size(term::STDOUT).or_else(|| term::size(term::STDIN)) else {
        return;
    };
    let mut wait = Duration::from_millis(10);
    for attempt in 0..5 {
        match exec.resize(w, h).await {
            Ok(()) => return,
            Err(e) if attempt == 4 => ui.debug(&format!("resize: {e}")),
            Err(_) => {
                tokio::time::sleep(wait).await;
                wait *= 3;
            }
        }
    }
}

/// Runs SPEC in one container attached to twip's stdin (with `spec.stdin`), stdout and
/// stderr, in a terminal of its own (with `spec.tty`: twip's terminal in raw mode meanwhile,
/// its size followed); returns the command's exit code. SIGTERM and SIGHUP end twip (128 +
/// the signal) with the terminal restored, as does every other way out.
pub async fn attached(place: &Place, mut spec: ExecSpec, ui: &Ui) -> anyhow::Result<i32> {
    if spec.tty {
        spec.size = term::size(term::STDOUT).or_else(|| term::size(term::STDIN));
    }
    let mut exec = attach::start(&place.docker, &place.container, &spec).await?;
    // Raw only once the command runs, so errors before it print on a normal terminal.
    let raw = match spec.tty && spec.stdin {
        true => Some(RawMode::enter(term::STDIN)?),
        false => None,
    };
    let mut winch = spec
        .tty
        .then(|| signal(SignalKind::window_change()).ok())
        .flatten();
    let mut term_sig = signal(SignalKind::terminate()).ok();
    let mut hup = signal(SignalKind::hangup()).ok();
    if spec.tty {
        resize(&exec, ui).await;
    }
    // stdin is copied on a task of its own: a command that does not read it must not stop
    // its output from being read. At EOF the write side is closed: the command sees EOF.
    let input = std::mem::replace(&mut exec.input, Box::pin(tokio::io::sink()));
    let pump = spec.stdin.then(|| {
        let mut rx = read_stdin();
        let mut input = input;
        tokio::spawn(async move {
            while let Some(chunk) = rx.recv().await {
                if input.write_all(&chunk).await.is_err() || input.flush().await.is_err() {
                    return;
                }
            }
            let _ = input.shutdown().await;
        })
    });
    let mut head = Vec::new();
    let ended_by = loop {
        tokio::select! {
            item = exec.output.next() => match item {
                Some(Ok(Chunk::Out(b))) => {
                    keep(&mut head, &b);
                    let mut out = std::io::stdout().lock();
                    out.write_all(&b)?;
                    out.flush()?;
                }
                Some(Ok(Chunk::Err(b))) => {
                    keep(&mut head, &b);
                    let mut err = std::io::stderr().lock();
                    err.write_all(&b)?;
                    err.flush()?;
                }
                Some(Err(e)) => return Err(e.into()),
                None => break None,
            },
            _ = next(&mut winch) => resize(&exec, ui).await,
            _ = next(&mut term_sig) => break Some(libc::SIGTERM),
            _ = next(&mut hup) => break Some(libc::SIGHUP),
        }
    };
    if let Some(p) = pump {
        p.abort();
    }
    drop(raw);
    if let Some(sig) = ended_by {
        ui.debug(&format!("ended by signal {sig}; the command may still run"));
        return Ok(128 + sig);
    }
    exit_code(&exec, &head).await
}

/// Writes whole lines of BUF to OUT, each after PREFIX, and keeps what follows the last
/// newline in BUF (all of it when FLUSH: the end of the stream, a last line without one).
fn write_lines(
    prefix: &str,
    buf: &mut Vec<u8>,
    flush: bool,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let end = if flush {
        buf.len()
    } else {
        match buf.iter().rposition(|b| *b == b'\n') {
            Some(i) => i + 1,
            None => return Ok(()),
        }
    };
    for line in buf[..end].split_inclusive(|b| *b == b'\n') {
        out.write_all(prefix.as_bytes())?;
        out.write_all(line)?;
        if !line.ends_with(b"\n") {
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    buf.drain(..end);
    Ok(())
}

/// One task's run for [`each`]: its output, line by line behind its prefix; its exit code.
async fn one(place: &Place, spec: &ExecSpec, prefix: &str) -> anyhow::Result<i32> {
    let mut exec = attach::start(&place.docker, &place.container, spec).await?;
    let (mut out, mut err, mut head) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(item) = exec.output.next().await {
        match item? {
            Chunk::Out(b) => {
                keep(&mut head, &b);
                out.extend_from_slice(&b);
                write_lines(prefix, &mut out, false, &mut std::io::stdout().lock())?;
            }
            Chunk::Err(b) => {
                keep(&mut head, &b);
                err.extend_from_slice(&b);
                write_lines(prefix, &mut err, false, &mut std::io::stderr().lock())?;
            }
        }
    }
    write_lines(prefix, &mut out, true, &mut std::io::stdout().lock())?;
    write_lines(prefix, &mut err, true, &mut std::io::stderr().lock())?;
    exit_code(&exec, &head).await
}

/// Runs SPEC (without stdin or a terminal) in every place at once, each line of output after
/// its task (`web.2@worker-1 | `, on stdout or stderr as the command wrote it). Returns 0 when
/// every run exited 0, else the exit code of the first failed one in the order given (1 when
/// twip could not run it there); each failure is also said on stderr.
pub async fn each(places: &[Place], spec: &ExecSpec, ui: &Ui) -> i32 {
    let width = places.iter().map(|p| p.label.len()).max().unwrap_or(0);
    let runs = places.iter().map(|p| async move {
        let prefix = format!("{:<width$} | ", crate::ui::clean(&p.label));
        one(p, spec, &prefix).await
    });
    let results = futures_util::future::join_all(runs).await;
    let mut first_failure = None;
    for (p, r) in places.iter().zip(results) {
        let code = match r {
            Ok(code) => code,
            Err(e) => {
                ui.error(&format!("{}: {e:#}", p.label));
                exit::FAILURE
            }
        };
        if code != exit::SUCCESS {
            ui.info(&format!("{}: exit code {code}", p.label));
            first_failure.get_or_insert(code);
        }
    }
    first_failure.unwrap_or(exit::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(chunks: &[&str]) -> String {
        let (mut buf, mut out) = (Vec::new(), Vec::new());
        for c in chunks {
            buf.extend_from_slice(c.as_bytes());
            write_lines("web.1@n | ", &mut buf, false, &mut out).unwrap();
        }
        write_lines("web.1@n | ", &mut buf, true, &mut out).unwrap();
        assert!(buf.is_empty());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn lines_are_prefixed_whole_whatever_the_chunks() {
        assert_eq!(
            lines(&["he", "llo\nwor", "ld\n"]),
            "web.1@n | hello\nweb.1@n | world\n"
        );
        // A last line without a newline gets one; an empty line keeps its prefix.
        assert_eq!(lines(&["a\n\nb"]), "web.1@n | a\nweb.1@n | \nweb.1@n | b\n");
        assert_eq!(lines(&[]), "");
    }

    #[test]
    fn only_the_start_of_the_output_is_kept() {
        let mut head = Vec::new();
        keep(&mut head, &[b'x'; 1000]);
        keep(&mut head, &[b'y'; 1000]);
        assert_eq!(head.len(), KEPT);
        assert_eq!(head[KEPT - 1], b'y');
    }
}
