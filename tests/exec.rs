//! `twip exec` on a real engine: a single-node swarm (exit codes passed through, the output,
//! stdin piped, user, working directory, variables, a terminal in raw mode that follows a
//! resize, `--all`, the errors), and a 3-node lab (a task on a worker reached through that
//! worker's engine, `--all` over tasks on two nodes). Each test makes its own stack (and lab)
//! and removes it when it ends, also on failure.

mod common;

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use common::lab::*;
use common::*;

static SERIAL: Mutex<()> = Mutex::new(());

/// A service of two long-running tasks of the offline base image (nothing is pulled).
fn exec_env(stack: &str) -> String {
    format!(
        "stack: {stack}\nservices:\n  app:\n    image: twip/base:bookworm\n    replicas: 2\n    command: [\"sleep\", \"infinity\"]\n    stop_grace_period: 1s\n"
    )
}

/// `twip --project-dir P exec ex app ARGS...` with STDIN.
fn exec(p: &TestProject, args: &[&str], stdin: &str) -> std::process::Output {
    let mut cmd = twip();
    cmd.arg("--project-dir")
        .arg(p.path())
        .args(["exec", "ex", "app"])
        .args(args)
        .write_stdin(stdin.as_bytes().to_vec())
        .timeout(Duration::from_secs(120));
    for (k, v) in test_vars() {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// The container of each running task of SERVICE, by slot, as `ENGINE ARGS` (the docker CLI)
/// sees them.
fn containers(engine: &[&str], service: &str) -> Vec<(i64, String, String)> {
    let mut args = engine.to_vec();
    args.extend([
        "service",
        "ps",
        "--filter",
        "desired-state=running",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.Name}} {{.Node}}",
        service,
    ]);
    let mut out: Vec<(i64, String, String)> = list(&args)
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let slot = f[1].rsplit('.').next().unwrap().parse().unwrap();
            let mut a = engine.to_vec();
            a.extend([
                "inspect",
                "--format",
                "{{.Status.ContainerStatus.ContainerID}}",
                f[0],
            ]);
            (slot, list(&a).join(""), f[2].to_string())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn exec_on_a_single_node_swarm() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_swarm();
    let mut p = TestProject::new(&[], "exec");
    let stack = test_stack("exec_ex");
    p.write_env("ex", &exec_env(&stack));
    p.stacks.push(stack.clone());
    let up = p.twip(&["up", "ex", "--timeout", "3m"]);
    assert!(up.status.success(), "twip up: {}", stderr(&up));
    let tasks = containers(&[], &format!("{stack}_app"));
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    let host = tasks[0].2.clone();

    // The command's exit code is twip's; its stdout and stderr are its own, unchanged.
    let out = exec(&p, &["--", "sh", "-c", "exit 3"], "");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let out = exec(
        &p,
        &[
            "--",
            "sh",
            "-c",
            "printf 'out-line\\n\\033[1mbold'; echo err-line >&2",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "out-line\n\u{1b}[1mbold");
    assert_eq!(stderr(&out), "err-line\n");

    // The default task is slot 1; --task 2 is slot 2: `hostname` is the container's id prefix.
    for (args, (slot, container, _)) in [(vec![], &tasks[0]), (vec!["--task", "2"], &tasks[1])] {
        let mut a = args.clone();
        a.extend(["--", "hostname"]);
        let out = exec(&p, &a, "");
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out).trim(), &container[..12], "slot {slot}");
    }

    // -i pipes stdin; its end closes the command's stdin (cat ends).
    let out = exec(&p, &["-i", "--", "cat"], "hello\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello\n");
    let big = "x".repeat(3 << 20);
    let out = exec(&p, &["-i", "--", "wc", "-c"], &big);
    assert_eq!(stdout(&out).trim(), (3 << 20).to_string());
    // Without -i the command's stdin is closed at once.
    let out = exec(&p, &["--", "cat"], "not passed\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");

    // --user, --workdir, --env (a value twip never prints, also with -v).
    let secret = format!("s3cret-{}", run_id());
    let out = exec(
        &p,
        &[
            "-v",
            "--user",
            "nobody",
            "--workdir",
            "/tmp",
            "-e",
            &format!("TOKEN={secret}"),
            "--",
            "sh",
            "-c",
            "id -un; pwd; echo \"$TOKEN\" | wc -c",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("nobody\n/tmp\n{}\n", secret.len() + 1)
    );
    let err = stderr(&out);
    assert!(!err.contains(&secret), "{err}");
    // -v says which task, container, node and engine.
    assert!(
        err.contains(&format!(
            "app.1@{host}: container {} on node {host} through unix://",
            &tasks[0].1[..12]
        )),
        "{err}"
    );

    // A program that is not there is 127, one that cannot be run 126 (the engine's message).
    let out = exec(&p, &["--", "no-such-program"], "");
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("executable file not found"),
        "{}",
        stdout(&out)
    );
    let out = exec(&p, &["--", "/etc/passwd"], "");
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));

    // --all: every task, each line after its task, on stdout or stderr as written; the
    // exit code of the one that failed, and a line saying so.
    let fail_in = &tasks[1].1[..12];
    let script =
        format!("hostname; echo to-stderr >&2; test \"$(hostname)\" != {fail_in} || exit 7");
    let out = exec(&p, &["--all", "--", "sh", "-c", &script], "");
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let mut lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            format!("app.1@{host} | {}", &tasks[0].1[..12]),
            format!("app.2@{host} | {}", &tasks[1].1[..12]),
        ]
    );
    let err = stderr(&out);
    assert!(err.contains(&format!("app.1@{host} | to-stderr")), "{err}");
    assert!(err.contains(&format!("app.2@{host} | to-stderr")), "{err}");
    assert!(err.contains(&format!("app.2@{host}: exit code 7")), "{err}");
    assert!(!err.contains(&format!("app.1@{host}: exit code")), "{err}");
    let out = exec(&p, &["--all", "--", "true"], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // Bad input is exit 2, before anything runs.
    let out = exec(&p, &["--", "true"], "");
    assert!(out.status.success());
    let mut cmd = twip();
    let out = cmd
        .arg("--project-dir")
        .arg(p.path())
        .args(["exec", "ex", "apq", "--", "true"])
        .envs(test_vars())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("ex: no service `apq` (did you mean `app`?); services: app"),
        "{}",
        stderr(&out)
    );
    let out = exec(&p, &["--task", "9", "--", "true"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("app has no task in slot 9; its slots: 1, 2"),
        "{}",
        stderr(&out)
    );
    let out = exec(&p, &["--node", "no-such-node", "--", "true"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no node `no-such-node`"),
        "{}",
        stderr(&out)
    );
    let out = exec(&p, &["-it", "--", "true"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not one: drop -t"),
        "{}",
        stderr(&out)
    );
    let out = exec(&p, &["-e", &format!("=x{secret}"), "--", "true"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr(&out).contains(&secret), "{}", stderr(&out));
    let out = exec(&p, &["--workdir", "tmp", "--", "true"], "");
    assert_eq!(out.status.code(), Some(2));
    let out = exec(&p, &["hostname"], "");
    assert_eq!(out.status.code(), Some(2), "CMD comes after --");

    terminal_follows_a_resize(&p);

    // No running task: exit 1, and it says so.
    let sc = p.twip(&["scale", "ex", "app=0"]);
    assert!(sc.status.success(), "{}", stderr(&sc));
    let out = exec(&p, &["--", "true"], "");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ex: app has no running task"),
        "{}",
        stderr(&out)
    );
    // Nor when it is not deployed at all.
    let down = p.twip(&["down", "ex"]);
    assert!(down.status.success(), "{}", stderr(&down));
    let out = exec(&p, &["--", "true"], "");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ex: app has no running task (is it up?"),
        "{}",
        stderr(&out)
    );
}

fn lflag(fd: i32) -> libc::tcflag_t {
    // SAFETY: reads the terminal's settings into a termios the test owns.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(fd, &mut t), 0);
        t.c_lflag
    }
}

fn set_size(fd: i32, cols: u16, rows: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads the winsize the test owns.
    assert_eq!(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) }, 0);
}

/// `-it` on a pseudo-terminal: the command sees a terminal of twip's terminal's size, twip's
/// terminal is raw while it runs and restored after, a resize (SIGWINCH) reaches the command,
/// and the command's exit code is twip's.
fn terminal_follows_a_resize(p: &TestProject) {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty fills two descriptors, owned below.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "openpty");
    // SAFETY: the descriptors were just opened and are owned by nothing else.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    set_size(slave.as_raw_fd(), 100, 30);
    let cooked = lflag(slave.as_raw_fd());
    assert_ne!(cooked & libc::ICANON, 0);
    // SAFETY: O_NONBLOCK on the master the test owns, so polls never block.
    unsafe {
        let fl = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(master.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    let script = "stty size; while read x; do s=$(stty size); echo \"size=$s\"; [ \"$s\" = \"40 120\" ] && exit 6; done; exit 9";
    let mut child = Command::new(env!("CARGO_BIN_EXE_twip"))
        .arg("--project-dir")
        .arg(p.path())
        .args(["exec", "ex", "app", "-it", "--", "sh", "-c", script])
        .envs(test_vars())
        .env("NO_COLOR", "1")
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()))
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    let m = std::fs::File::from(master.try_clone().unwrap());
    let read_some = |seen: &mut Vec<u8>| {
        let mut buf = [0u8; 4096];
        while let Ok(n) = (&m).read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(seen).to_string()
    };
    let first = eventually(60, || read_some(&mut seen).contains("30 100").then_some(()));
    let raw_while_running = lflag(slave.as_raw_fd());
    set_size(slave.as_raw_fd(), 120, 40);
    // SAFETY: a signal to the child the test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGWINCH) };
    // Each newline makes the command print the size it sees, until it is the new one.
    let resized = eventually(60, || {
        use std::io::Write;
        let _ = (&m).write_all(b"\n");
        read_some(&mut seen).contains("size=40 120").then_some(())
    });
    let status = eventually(60, || child.try_wait().unwrap());
    if status.is_none() {
        let _ = child.kill();
    }
    let text = read_some(&mut seen);
    assert!(
        first.is_some(),
        "the command did not see a 100x30 terminal: {text:?}"
    );
    assert_eq!(
        raw_while_running & (libc::ICANON | libc::ECHO),
        0,
        "twip's terminal is raw while the command runs"
    );
    assert!(
        resized.is_some(),
        "the resize did not reach the command: {text:?}"
    );
    assert_eq!(status.and_then(|s| s.code()), Some(6), "{text:?}");
    assert_eq!(lflag(slave.as_raw_fd()), cooked, "the terminal is restored");
}

/// A lab environment: the lab's 3 nodes as the manifest's, and 3 tasks on the 2 workers.
const LABEX: &str = "stack: labex
nodes:
  - {name: manager-1, address: 10.10.0.11, role: manager}
  - {name: worker-1, address: 10.10.0.12, role: worker}
  - {name: worker-2, address: 10.10.0.13, role: worker}
services:
  app:
    image: twip/base:bookworm
    replicas: 3
    command: [\"sleep\", \"infinity\"]
    stop_grace_period: 1s
    placement:
      constraints: [\"node.role == worker\"]
";

#[test]
fn exec_on_a_lab_reaches_the_worker_that_holds_the_task() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = TestLab::new("x");
    let project = tempfile::tempdir().unwrap();
    std::fs::create_dir(project.path().join("environments")).unwrap();
    std::fs::write(project.path().join("environments/labex.yaml"), LABEX).unwrap();
    lab.up(3);
    let nodes = nodes_of(&lab.status());
    let manager = nodes[0]["engine"].as_str().unwrap().to_string();
    let engine_of = |name: &str| -> String {
        nodes
            .iter()
            .find(|n| n["name"] == name)
            .map(|n| n["engine"].as_str().unwrap().to_string())
            .unwrap()
    };
    let run = |args: &[&str], stdin: &str| {
        let mut cmd = twip();
        cmd.arg("--project-dir")
            .arg(project.path())
            .args(&args[..2])
            .args(["--lab", &lab.name])
            .args(&args[2..])
            .env("TWIP_LAB_DIR", lab.state_dir())
            .write_stdin(stdin.as_bytes().to_vec())
            .timeout(Duration::from_secs(600));
        cmd.output().unwrap()
    };
    let up = run(&["up", "labex", "--timeout", "5m"], "");
    assert!(up.status.success(), "twip up --lab: {}", stderr(&up));
    let tasks = containers(&["-H", &manager], "labex_app");
    assert_eq!(tasks.len(), 3, "{tasks:?}");
    let mut placed: Vec<&str> = tasks.iter().map(|t| t.2.as_str()).collect();
    placed.sort_unstable();
    placed.dedup();
    let (w1, w2) = (
        format!("{}-worker-1", lab.name),
        format!("{}-worker-2", lab.name),
    );
    assert_eq!(
        placed,
        [w1.as_str(), w2.as_str()],
        "3 tasks on the 2 workers"
    );

    // A task on a worker, named by the manifest's node name: `hostname` is its container,
    // which only that worker's engine runs.
    for (node, lab_node) in [("worker-1", &w1), ("worker-2", &w2)] {
        let out = run(
            &[
                "exec", "labex", "app", "--node", node, "-v", "--", "hostname",
            ],
            "",
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let host = stdout(&out).trim().to_string();
        let task = tasks
            .iter()
            .find(|t| &t.2 == lab_node && t.1.starts_with(&host))
            .unwrap_or_else(|| panic!("{host} is no task's container on {lab_node}: {tasks:?}"));
        assert_eq!(host.len(), 12, "{host}");
        let running = on(&engine_of(lab_node), &["ps", "-q", "--no-trunc"]);
        assert!(running.contains(&task.1), "{running:?}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "on node {lab_node} through {}",
                engine_of(lab_node)
            )),
            "{err}"
        );
    }
    // stdin over a worker's TCP engine: its end closes the command's stdin.
    let out = run(
        &[
            "exec", "labex", "app", "--node", "worker-2", "-i", "--", "cat",
        ],
        "hello\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello\n");
    let out = run(
        &[
            "exec", "labex", "app", "--task", "3", "--", "sh", "-c", "exit 5",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));

    // --all: three results, each after its task and node, each the container of that task.
    let out = run(&["exec", "labex", "app", "--all", "--", "hostname"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let mut lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    lines.sort();
    let want: Vec<String> = tasks
        .iter()
        .map(|(slot, c, node)| format!("app.{slot}@{node} | {}", &c[..12]))
        .collect();
    assert_eq!(lines, want);

    let down = run(&["down", "labex"], "");
    assert!(down.status.success(), "{}", stderr(&down));
}
