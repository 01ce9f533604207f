//! Subprocesses (the docker CLI, buildx, git): commands are argv arrays, never a shell line;
//! they print as a line a person can paste into a shell; running one captures its output, and
//! a failure carries the pasteable command and the end of that output.
//!
//! Builders ([`buildx`], [`docker`], [`git`], [`ssh`]) are pure functions that return a
//! [`Cmd`]; only [`run`] starts processes. No command twip builds carries a registry
//! credential: pushes and pulls use the user's Docker config and its credential helpers, read
//! by the docker CLI.
//!
//! Option injection: a manifest is untrusted input, and validation checks every name's
//! grammar; the builders check again, behind it. Every value from a manifest or the command
//! line goes either after `--` (operands: contexts, image references, ssh destinations), or
//! attached to its option (`--tag=REF`), and the builders refuse (exit 2) a value that starts
//! with `-` or holds a control character where a program could read it as an option
//! ([`checked`]). No twip command line passes anything through a shell.

pub mod buildx;
pub mod docker;
pub mod git;
pub mod hooks;
pub mod preflight;
pub mod ssh;

use std::collections::VecDeque;
use std::fmt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;

/// How many lines of a failed command's output its error shows.
pub const ERROR_TAIL_LINES: usize = 40;

/// A value from a manifest or the command line, about to become an element of an argv: refused
/// (an input error, exit 2) when it is empty, starts with `-` (a program would read it as an
/// option) or holds a control character. `what` names it for the message (`the ssh user`).
pub fn checked<'a>(program: &str, what: &str, value: &'a str) -> anyhow::Result<&'a str> {
    let why = if value.is_empty() {
        "is empty"
    } else if value.starts_with('-') {
        "starts with `-`, so it would be read as an option"
    } else if value.chars().any(char::is_control) {
        "holds a control character"
    } else {
        return Ok(value);
    };
    Err(crate::exit::invalid(format!(
        "refusing to run {program}: {what} {:?} {why}",
        crate::ui::redact_foreign(value)
    )))
}

/// A command: program, arguments, and extra environment variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
    /// Set for the child only, on top of the inherited environment.
    pub env: Vec<(String, String)>,
    /// The directory it runs in (default: twip's own).
    pub cwd: Option<std::path::PathBuf>,
}

impl Cmd {
    pub fn new(program: impl Into<String>) -> Self {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
        }
    }

    pub fn current_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// The argv, program first.
    pub fn argv(&self) -> Vec<&str> {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect()
    }
}

/// A shell-pasteable line: `K=V program arg 'arg with space'`.
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut word = |f: &mut fmt::Formatter<'_>, w: &str| -> fmt::Result {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            f.write_str(w)
        };
        for (k, v) in &self.env {
            word(f, &format!("{k}={}", quote(v)))?;
        }
        word(f, &quote(&self.program))?;
        for a in &self.args {
            word(f, &quote(a))?;
        }
        Ok(())
    }
}

/// Quotes a word for a POSIX shell, only when it needs it.
pub fn quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./:=,@%+^".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// How to run a command.
#[derive(Debug, Clone, Default)]
pub struct RunOpts {
    /// Copy each output line to stderr as it arrives, after `prefix`.
    pub stream: bool,
    pub prefix: String,
}

impl RunOpts {
    pub fn quiet() -> Self {
        RunOpts::default()
    }

    pub fn streamed(prefix: impl Into<String>) -> Self {
        RunOpts {
            stream: true,
            prefix: prefix.into(),
        }
    }
}

/// What a finished command printed.
#[derive(Debug, Clone)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    /// Both streams, interleaved in arrival order (the last lines only).
    pub tail: Vec<String>,
    pub duration: Duration,
}

/// A command that could not start or that failed. Displays the pasteable command, the exit
/// status and the last lines of its output (unless they were already streamed to the user).
#[derive(Debug)]
pub struct RunError {
    pub command: String,
    /// `None`: it could not start, or a signal ended it.
    pub status: Option<i32>,
    pub not_started: Option<String>,
    pub tail: Vec<String>,
    /// Its output was already shown live.
    pub streamed: bool,
    /// A sentence that says what to do, when the output was recognised.
    pub hint: Option<String>,
}

impl RunError {
    /// Everything the command printed that this error kept (for classification).
    pub fn output(&self) -> String {
        self.tail.join("\n")
    }

    pub fn with_hint(mut self, hint: Option<String>) -> Self {
        if hint.is_some() {
            self.hint = hint;
        }
        self
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(why) = &self.not_started {
            return write!(f, "cannot run `{}`: {why}", self.command);
        }
        let status = match self.status {
            Some(c) => format!("exit status {c}"),
            None => "killed by a signal".to_string(),
        };
        write!(f, "command failed ({status}):\n  {}", self.command)?;
        if let Some(h) = &self.hint {
            write!(f, "\n{h}")?;
        }
        if self.streamed {
            write!(f, "\n(its output is above)")?;
        } else if self.tail.is_empty() {
            write!(f, "\n(it printed nothing)")?;
        } else {
            let n = self.tail.len().min(ERROR_TAIL_LINES);
            write!(f, "\noutput (last {n} lines):")?;
            for line in &self.tail[self.tail.len() - n..] {
                write!(f, "\n  | {line}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for RunError {}

enum Line {
    Out(String),
    Err(String),
}

async fn pump<R: AsyncRead + Unpin>(r: R, tx: mpsc::UnboundedSender<Line>, is_err: bool) {
    let mut r = BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let s = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\n', '\r'])
                    .to_string();
                let _ = tx.send(if is_err { Line::Err(s) } else { Line::Out(s) });
            }
        }
    }
}

/// Writes `bytes` to a child's stdin on a thread of its own that blocks SIGPIPE: twip keeps
/// SIGPIPE's default action (so `twip status | head` ends quietly), and a command that exits
/// without reading all its input (ssh that cannot connect) must not kill twip with it. The
/// write then fails with EPIPE, which is not an error here; a SIGPIPE left pending on the
/// thread ends with it.
fn feed(stdin: tokio::process::ChildStdin, bytes: Vec<u8>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        use std::io::Write;
        // SAFETY: changes this thread's signal mask only, with a set built here.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGPIPE);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
        if let Ok(fd) = stdin.into_owned_fd() {
            let mut f = std::fs::File::from(fd);
            let _ = f.write_all(&bytes);
        }
    })
}

/// The command line as errors show it: pasteable, with credentials replaced.
fn shown(cmd: &Cmd) -> String {
    crate::ui::redact_foreign(&cmd.to_string()).into_owned()
}

/// Lines of combined output kept for errors and classification.
const KEEP_LINES: usize = 400;

/// Runs `cmd` to the end. stdin is empty; stdout and stderr are captured (and copied to
/// stderr line by line when `opts.stream`). A non-zero exit is a [`RunError`].
pub async fn run(cmd: &Cmd, opts: &RunOpts) -> Result<Output, RunError> {
    run_with_input(cmd, None, opts).await
}

/// [`run`] with `input` written to the command's stdin (then closed).
pub async fn run_with_input(
    cmd: &Cmd,
    input: Option<Vec<u8>>,
    opts: &RunOpts,
) -> Result<Output, RunError> {
    let started = Instant::now();
    let mut c = tokio::process::Command::new(&cmd.program);
    c.args(&cmd.args)
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = &cmd.cwd {
        c.current_dir(dir);
    }
    let mut child = c.spawn().map_err(|e| RunError {
        command: shown(cmd),
        status: None,
        not_started: Some(if e.kind() == std::io::ErrorKind::NotFound {
            format!("`{}` is not on PATH", cmd.program)
        } else {
            e.to_string()
        }),
        tail: Vec::new(),
        streamed: false,
        hint: None,
    })?;
    let writer = match (input, child.stdin.take()) {
        (Some(bytes), Some(stdin)) => Some(feed(stdin, bytes)),
        _ => None,
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let out = child.stdout.take().expect("stdout is piped");
    let err = child.stderr.take().expect("stderr is piped");
    let t1 = tokio::spawn(pump(out, tx.clone(), false));
    let t2 = tokio::spawn(pump(err, tx, true));
    let mut stdout = String::new();
    let mut stderr = String::new();
    let mut tail: VecDeque<String> = VecDeque::new();
    while let Some(line) = rx.recv().await {
        let text = match line {
            Line::Out(s) => {
                stdout.push_str(&s);
                stdout.push('\n');
                s
            }
            Line::Err(s) => {
                stderr.push_str(&s);
                stderr.push('\n');
                s
            }
        };
        if opts.stream {
            // A subprocess's lines are shown live: without credentials or terminal controls.
            eprintln!("{}{}", opts.prefix, crate::ui::clean_foreign(&text));
        }
        if tail.len() == KEEP_LINES {
            tail.pop_front();
        }
        tail.push_back(text);
    }
    let _ = t1.await;
    let _ = t2.await;
    if let Some(w) = writer {
        let _ = tokio::task::spawn_blocking(move || w.join()).await;
    }
    let status = child.wait().await.map_err(|e| RunError {
        command: shown(cmd),
        status: None,
        not_started: Some(e.to_string()),
        tail: Vec::new(),
        streamed: false,
        hint: None,
    })?;
    if !status.success() {
        // What the error keeps is printed later: without credentials.
        let tail: Vec<String> = tail
            .into_iter()
            .map(|l| crate::ui::redact_foreign(&l).into_owned())
            .collect();
        return Err(RunError {
            command: shown(cmd),
            status: status.code(),
            not_started: None,
            tail,
            streamed: opts.stream,
            hint: None,
        });
    }
    let tail: Vec<String> = tail.into_iter().collect();
    Ok(Output {
        stdout,
        stderr,
        tail,
        duration: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_what_needs_it() {
        let c = Cmd::new("docker")
            .args(["buildx", "build", "--build-arg", "GREETING=hello world"])
            .arg("-t")
            .arg("localhost:5000/twip/web:1.0.0")
            .arg("it's")
            .arg("")
            .env("DOCKER_HOST", "unix:///var/run/docker.sock");
        assert_eq!(
            c.to_string(),
            "DOCKER_HOST=unix:///var/run/docker.sock docker buildx build --build-arg 'GREETING=hello world' \
             -t localhost:5000/twip/web:1.0.0 'it'\\''s' ''"
        );
    }

    #[test]
    fn quote_handles_shell_metacharacters() {
        assert_eq!(quote("a$b"), "'a$b'");
        assert_eq!(quote("a;b"), "'a;b'");
        assert_eq!(quote("linux/amd64,linux/arm64"), "linux/amd64,linux/arm64");
        assert_eq!(quote("type=local,dest=/tmp/c"), "type=local,dest=/tmp/c");
        assert_eq!(quote("*"), "'*'");
    }

    #[tokio::test]
    async fn run_captures_output_and_status() {
        let ok = run(
            &Cmd::new("sh").args(["-c", "echo out; echo err >&2"]),
            &RunOpts::quiet(),
        )
        .await
        .unwrap();
        assert_eq!(ok.stdout, "out\n");
        assert_eq!(ok.stderr, "err\n");
        assert_eq!(ok.tail.len(), 2);

        let script = "for i in $(seq 1 50); do echo line$i; done; exit 3";
        let e = run(&Cmd::new("sh").args(["-c", script]), &RunOpts::quiet())
            .await
            .unwrap_err();
        assert_eq!(e.status, Some(3));
        let text = e.to_string();
        assert!(text.starts_with("command failed (exit status 3):\n  sh -c 'for i in"));
        assert!(text.contains("output (last 40 lines):\n  | line11\n"));
        assert!(text.ends_with("  | line50"));
        assert!(!text.contains("| line10\n"));
    }

    #[tokio::test]
    async fn a_missing_program_is_reported_with_its_name() {
        let e = run(&Cmd::new("twip-no-such-program"), &RunOpts::quiet())
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot run `twip-no-such-program`: `twip-no-such-program` is not on PATH"
        );
    }

    /// Hostile values a manifest or a command line could hand to a builder.
    pub(crate) const HOSTILE: &[&str] = &[
        "-oProxyCommand=touch /tmp/twip-pwned",
        "-oProxyCommand=touch${IFS}/tmp/twip-pwned",
        "--output=type=local,dest=/",
        "-t",
        "--",
        "-",
        "--help",
    ];

    /// Asserts that every element of `cmd`'s argv that starts with `-` is one of twip's own
    /// (`own`), and that `value`, when it is in the argv, comes after `--` or attached to an
    /// option (`--tag=VALUE`).
    pub(crate) fn assert_no_injected_option(cmd: &Cmd, own: &[&str], value: &str) {
        let dashes = cmd.args.iter().position(|a| a == "--");
        for (i, a) in cmd.args.iter().enumerate() {
            if dashes.is_some_and(|d| i > d) {
                continue;
            }
            if a.starts_with('-') {
                let name = a.split('=').next().unwrap_or(a);
                assert!(own.contains(&name), "`{a}` in {cmd:?} is not twip's own");
            }
            if a == value {
                // A separate value is only allowed as the value of one of twip's options.
                let prev = i.checked_sub(1).map(|p| cmd.args[p].as_str());
                assert!(
                    prev.is_some_and(|p| own.contains(&p) && p != "--"),
                    "`{value}` is an operand before `--` in {cmd:?}"
                );
            }
        }
    }

    /// An error from a builder's refusal: an input error (exit 2) that names what was wrong.
    pub(crate) fn assert_refused(r: anyhow::Result<Cmd>, names: &str) {
        let e = r.expect_err("a hostile value must be refused");
        assert_eq!(crate::exit::code_for(&e), crate::exit::INVALID_INPUT, "{e}");
        let msg = e.to_string();
        assert!(msg.starts_with("refusing to run "), "{msg}");
        assert!(msg.contains(names), "`{names}` is not in: {msg}");
    }

    #[test]
    fn checked_refuses_options_empty_values_and_control_characters() {
        assert_eq!(checked("p", "the x", "web:1").unwrap(), "web:1");
        assert_eq!(checked("p", "the x", "a-b").unwrap(), "a-b");
        for bad in HOSTILE
            .iter()
            .copied()
            .chain(["", "a\nb", "a\u{1b}[2Jb", "a\rb"])
        {
            let e = checked("docker push", "the image reference", bad).unwrap_err();
            assert_eq!(crate::exit::code_for(&e), crate::exit::INVALID_INPUT);
            assert!(
                e.to_string()
                    .starts_with("refusing to run docker push: the image reference "),
                "{e}"
            );
        }
        // The refused value is shown escaped and without credentials.
        let e = checked("p", "the x", "-https://u:secret@h\u{1b}]0;t\u{7}").unwrap_err();
        let msg = e.to_string();
        assert!(!msg.contains("secret"), "{msg}");
        assert!(!msg.contains('\u{1b}'), "{msg}");
    }

    #[tokio::test]
    async fn a_failed_command_shows_no_credentials() {
        let script = "echo 'pushing to https://ci:hunter2@registry.example.com/v2/'; \
                      echo 'docker login --password hunter2 -u ci' >&2; exit 1";
        let e = run(
            &Cmd::new("sh")
                .args(["-c", script])
                .arg("https://ci:hunter2@registry.example.com"),
            &RunOpts::quiet(),
        )
        .await
        .unwrap_err();
        let text = e.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.contains("https://***@registry.example.com/v2/"),
            "{text}"
        );
        assert!(text.contains("--password *** -u ci"), "{text}");
        // The command line is redacted as well.
        let line = text.lines().nth(1).unwrap();
        assert!(
            line.ends_with(" https://***@registry.example.com"),
            "{line}"
        );
        // Classification still sees what it needs.
        assert_eq!(e.tail.len(), 2);
    }

    #[tokio::test]
    async fn a_command_that_does_not_read_its_input_does_not_kill_twip() {
        // More than a pipe holds, to a command that exits at once: the write meets EPIPE.
        // With SIGPIPE's default action (as the binary sets it) that would end this process.
        // SAFETY: a signal disposition set to its default, as main does.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
        let big = vec![b'x'; 4 << 20];
        for _ in 0..3 {
            let e = run_with_input(
                &Cmd::new("sh").args(["-c", "exit 3"]),
                Some(big.clone()),
                &RunOpts::quiet(),
            )
            .await
            .unwrap_err();
            assert_eq!(e.status, Some(3));
        }
        let ok = run_with_input(&Cmd::new("wc").arg("-c"), Some(big), &RunOpts::quiet())
            .await
            .unwrap();
        assert_eq!(ok.stdout.trim(), (4 << 20).to_string());
        // Back to what the test harness set, for the other tests of this process.
        // SAFETY: as above.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
    }
}
