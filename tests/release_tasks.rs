//! One-off tasks, release tasks and ordered rollouts on a real engine in swarm mode: `twip
//! run` passes the exit code through and leaves nothing behind; a failing `before_deploy`
//! changes no service; a passing one runs before the new version starts; `depends_on` with
//! `healthy` starts the dependent only after the dependency's health check passed. Tests run
//! one after another and remove what they made, also when they fail.

mod common;

use std::sync::Mutex;

use common::*;

static SERIAL: Mutex<()> = Mutex::new(());

/// One-offs of STACK still on the engine (their services carry `io.twip.oneoff`).
fn oneoffs(stack: &str) -> Vec<String> {
    list(&[
        "service",
        "ls",
        "--filter",
        "label=io.twip.oneoff",
        "--format",
        "{{.Name}}",
    ])
    .into_iter()
    .filter(|n| n.starts_with(stack))
    .collect()
}

/// Removes the one-offs of the stacks when dropped (they carry no stack label, so
/// `remove_stacks` would not see one a failed test left).
struct RemoveOneoffs(Vec<String>);

impl Drop for RemoveOneoffs {
    fn drop(&mut self) {
        for s in &self.0 {
            let left = oneoffs(s);
            if !left.is_empty() {
                docker(&["service", "rm"]).args(&left).output().ok();
            }
        }
    }
}

fn project(name: &str, manifest: impl Fn(&str) -> String) -> (TestProject, String) {
    let mut p = TestProject::new(&[], "rel");
    let stack = test_stack(&format!("rel_{name}"));
    p.write_env(name, &manifest(&stack));
    p.stacks.push(stack.clone());
    (p, stack)
}

#[test]
fn run_passes_the_exit_code_through_and_leaves_nothing_behind() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_swarm();
    let (p, stack) = project("oneoff", |stack| {
        format!(
            "stack: {stack}\nservices:\n  app:\n    image: twip/base:bookworm\n    command: [sleep, infinity]\n    environment:\n      GREETING: hello-from-env\n    configs:\n      - source: motd\n        target: /etc/motd\nconfigs:\n  motd:\n    content: motd-from-config\n"
        )
    });
    let _rm = RemoveOneoffs(vec![stack.clone()]);
    // Before the stack is up: the config is made first, no service is.
    let out = p.twip(&[
        "run",
        "oneoff",
        "app",
        "--",
        "sh",
        "-c",
        "echo \"$GREETING\"; cat /etc/motd; echo; exit 3",
    ]);
    let (o, e) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(3), "{o}\n{e}");
    assert!(o.contains("hello-from-env"), "{o}\n{e}");
    assert!(o.contains("motd-from-config"), "{o}\n{e}");
    assert_eq!(oneoffs(&stack), Vec::<String>::new());
    assert_eq!(
        list(&["service", "ls", "-q", "--filter", &format!("name={stack}")]),
        Vec::<String>::new()
    );

    // Once the stack is up, the same; exit 0 is 0.
    let up = p.twip(&["up", "oneoff", "--timeout", "120s"]);
    assert_eq!(up.status.code(), Some(0), "{}", stderr(&up));
    let out = p.twip(&["run", "oneoff", "app", "--", "cat", "/etc/motd"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("motd-from-config"));
    assert_eq!(oneoffs(&stack), Vec::<String>::new());

    // A one-off that outlives its --timeout is removed too: exit 3.
    let out = p.twip(&[
        "run",
        "oneoff",
        "app",
        "--timeout",
        "3s",
        "--",
        "sleep",
        "600",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("did not end within"),
        "{}",
        stderr(&out)
    );
    assert_eq!(oneoffs(&stack), Vec::<String>::new());
}
