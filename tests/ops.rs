//! Day-2 operations on a real engine in swarm mode: the deploy lock between two operators,
//! the release history and `rollback --to`. A one-service project on the prebuilt base image
//! (nothing to build), under a stack name unique to the run; removed also when a test fails.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use common::*;

static SERIAL: Mutex<()> = Mutex::new(());

struct Ops {
    dir: tempfile::TempDir,
    stack: String,
}

impl Ops {
    fn new(tag: &str) -> Ops {
        let dir = tempfile::tempdir().unwrap();
        let stack = test_stack(tag);
        std::fs::create_dir(dir.path().join("environments")).unwrap();
        let base =
            std::env::var("TWIP_TEST_BASE_IMAGE").unwrap_or_else(|_| "twip/base:bookworm".into());
        std::fs::write(
            dir.path().join("environments/ops.yaml"),
            format!(
                "stack: {stack}\nservices:\n  app:\n    image: {base}\n    entrypoint: [\"sleep\"]\n    command: [\"infinity\"]\n    stop_grace_period: 1s\n    update:\n      delay: 0s\n      monitor: 1s\n    environment:\n      VERSION: \"${{TWIP_OPS_VERSION:-1}}\"\n"
            ),
        )
        .unwrap();
        Ops { dir, stack }
    }

    fn cmd(&self, user: &str, version: &str, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_twip"));
        c.arg("--project-dir")
            .arg(self.dir.path())
            .args(args)
            .env("TWIP_USER", user)
            .env("TWIP_OPS_VERSION", version)
            .env("NO_COLOR", "1")
            .env_remove("TWIP_HOST")
            .env_remove("TWIP_PROJECT_DIR");
        c
    }

    fn run(&self, user: &str, version: &str, args: &[&str]) -> std::process::Output {
        self.cmd(user, version, args).output().unwrap()
    }

    fn spawn(&self, user: &str, version: &str, args: &[&str]) -> Child {
        self.cmd(user, version, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn service(&self) -> String {
        format!("{}_app", self.stack)
    }

    /// The service's version index and its VERSION variable.
    fn state(&self) -> (u64, String) {
        let out = list(&[
            "service",
            "inspect",
            "--format",
            "{{.Version.Index}} {{range .Spec.TaskTemplate.ContainerSpec.Env}}{{.}} {{end}}",
            &self.service(),
        ]);
        let line = out.first().cloned().unwrap_or_default();
        let mut words = line.split_whitespace();
        let index = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        let version = words
            .find_map(|w| w.strip_prefix("VERSION="))
            .unwrap_or_default()
            .to_string();
        (index, version)
    }

    /// VERSION as a running task's container has it (what the app itself sees).
    fn running_version(&self) -> Option<String> {
        let ids = list(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.swarm.service.name={}", self.service()),
        ]);
        let id = ids.first()?;
        let out = docker(&["exec", id, "printenv", "VERSION"]).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for Ops {
    fn drop(&mut self) {
        remove_stacks(std::slice::from_ref(&self.stack));
        // The lock (outside the stack's namespace), if a failed test left it.
        docker(&["config", "rm", &format!("twip-lock-{}", self.stack)])
            .output()
            .ok();
    }
}

fn out(o: &std::process::Output) -> String {
    format!("exit {:?}\n{}{}", o.status.code(), stdout(o), stderr(o))
}

#[test]
fn two_ups_at_once_one_proceeds_the_other_exits_6_or_waits_its_turn() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_swarm();
    let p = Ops::new("lock");
    let first = p.run("alice", "1", &["up", "ops"]);
    assert!(first.status.success(), "{}", out(&first));
    let (index0, v0) = p.state();
    assert_eq!(v0, "1");

    // Two operators at the same time: exactly one proceeds, the other exits 6, names the
    // holder, and changes nothing (the service was updated once, to the winner's version).
    let a = p.spawn("alice", "2", &["up", "ops"]);
    let b = p.spawn("bob", "3", &["up", "ops"]);
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let codes = [a.status.code(), b.status.code()];
    assert!(
        codes == [Some(0), Some(6)] || codes == [Some(6), Some(0)],
        "alice: {}\nbob: {}",
        out(&a),
        out(&b)
    );
    let (winner, loser, won_version, other) = if codes[0] == Some(0) {
        (&a, &b, "2", "alice")
    } else {
        (&b, &a, "3", "bob")
    };
    assert!(
        stderr(loser).contains(&format!("locked by {other}@")),
        "{}",
        out(loser)
    );
    assert!(
        stderr(loser).contains("nothing was changed"),
        "{}",
        out(loser)
    );
    assert!(stderr(winner).contains("ops is up"), "{}", out(winner));
    let (index1, v1) = p.state();
    assert_eq!(v1, won_version);
    assert!(index1 > index0);
    // The lock is free again: a plan-less `lock status` says so.
    let st = p.run("carol", "1", &["lock", "status", "ops", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(v["locked"], false, "{}", out(&st));

    // With --lock-wait both run, one after the other: the one that waited says so, and its
    // version is the one that runs at the end.
    let a = p.spawn("alice", "4", &["up", "ops", "--lock-wait", "5m"]);
    let b = p.spawn("bob", "5", &["up", "ops", "--lock-wait", "5m"]);
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", out(&a));
    assert!(b.status.success(), "{}", out(&b));
    let waited: Vec<&str> = [("alice", &a, "4"), ("bob", &b, "5")]
        .iter()
        .filter(|(_, o, _)| stderr(o).contains("waiting up to 5m"))
        .map(|(_, _, v)| *v)
        .collect();
    // Both start at once and a deploy takes seconds (it waits for the new task): exactly one
    // found the lock held and waited.
    assert_eq!(waited.len(), 1, "alice: {}\nbob: {}", out(&a), out(&b));
    let (_, v2) = p.state();
    assert_eq!(v2, waited[0], "the one that waited ran last");
}

#[test]
fn five_deploys_are_five_releases_and_rollback_to_2_runs_release_2() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_swarm();
    let p = Ops::new("history");
    let users = ["alice", "bob", "alice", "carol", "bob"];
    for (i, user) in users.iter().enumerate() {
        let version = (i + 1).to_string();
        let up = p.run(
            user,
            &version,
            &["up", "ops", "--reason", &format!("ship {version}")],
        );
        assert!(up.status.success(), "{}", out(&up));
        assert_eq!(p.state().1, version);
    }

    // Five releases, newest first, each with its user, command, plan and outcome.
    let h = p.run("dave", "5", &["history", "ops", "--json"]);
    assert!(h.status.success(), "{}", out(&h));
    let list: serde_json::Value = serde_json::from_slice(&h.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 5, "{list:?}");
    let got: Vec<(u64, String, String, String)> = list
        .iter()
        .map(|r| {
            (
                r["number"].as_u64().unwrap(),
                r["user"].as_str().unwrap().to_string(),
                r["command"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(u64, String, String, String)> = (1..=5u64)
        .rev()
        .map(|n| {
            (
                n,
                users[n as usize - 1].to_string(),
                "up".into(),
                "converged".into(),
            )
        })
        .collect();
    assert_eq!(got, want);
    let table = p.run("dave", "5", &["history", "ops"]);
    assert_eq!(stdout(&table).lines().count(), 7, "{}", out(&table));
    let one = p.run("dave", "5", &["history", "ops", "3"]);
    let text = stdout(&one);
    assert!(one.status.success(), "{}", out(&one));
    assert!(text.contains(" by alice@"), "{text}");
    assert!(text.contains("  reason: ship 3\n"), "{text}");
    assert!(
        text.contains(&format!("plan:\n  update service {}: ", p.service())),
        "{text}"
    );
    assert!(text.contains("changes since release 2:\n"), "{text}");
    assert!(
        text.contains(&format!(
            "  {}: environment key VERSION changed\n",
            p.service()
        )),
        "{text}"
    );

    // Back to release 2: the service and the task that runs have its version; recorded as
    // release 6 by the one who rolled back.
    let rb = p.run("erin", "5", &["rollback", "ops", "--to", "2"]);
    assert!(rb.status.success(), "{}", out(&rb));
    assert!(stderr(&rb).contains("back at release 2"), "{}", out(&rb));
    assert_eq!(p.state().1, "2");
    assert_eq!(
        eventually(60, || p.running_version().filter(|v| v == "2")).as_deref(),
        Some("2")
    );
    let h = p.run("dave", "5", &["history", "ops", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&h.stdout).unwrap();
    assert_eq!(list[0]["number"], 6);
    assert_eq!(list[0]["user"], "erin");
    assert_eq!(list[0]["command"], "rollback --to 2");
}

#[test]
fn ctrl_c_releases_the_lock_and_a_failing_pre_deploy_hook_changes_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_swarm();
    let p = Ops::new("hooks");
    let hooks = p.dir.path().join("hooks");
    std::fs::create_dir(&hooks).unwrap();
    let write_hook = |body: &str| {
        let path = hooks.join("pre-deploy");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };

    // A pre-deploy hook that fails: nothing of the stack is made.
    write_hook("echo \"refusing $TWIP_ENV release $TWIP_RELEASE for $TWIP_USER\" >&2\nexit 1");
    let r = p.run("alice", "1", &["up", "ops"]);
    assert_eq!(r.status.code(), Some(1), "{}", out(&r));
    assert!(
        stderr(&r).contains("refusing ops release 1 for alice"),
        "{}",
        out(&r)
    );
    assert!(
        stderr(&r).contains(
            "the pre-deploy hook (hooks/pre-deploy) exited with code 1; nothing was changed"
        ),
        "{}",
        out(&r)
    );
    assert_eq!(labelled_leftovers(&p.stack), Vec::<String>::new());

    // Ctrl-C while the lock is held (a hook that waits): exit 130, the lock is released, the
    // hook is stopped, and nothing of the stack was made.
    write_hook("touch started\nexec sleep 300");
    let child = p.spawn("alice", "1", &["up", "ops"]);
    let started = eventually(120, || p.dir.path().join("started").exists().then_some(()));
    assert!(started.is_some(), "the hook did not start");
    let locked = p.run("bob", "1", &["lock", "status", "ops", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&locked.stdout).unwrap();
    assert_eq!(v["locked"], true, "{}", out(&locked));
    assert_eq!(v["user"], "alice");
    // SAFETY: sends SIGINT to the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let done = child.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(130), "{}", out(&done));
    let after = p.run("bob", "1", &["lock", "status", "ops", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&after.stdout).unwrap();
    assert_eq!(v["locked"], false, "{}", out(&after));
    assert_eq!(labelled_leftovers(&p.stack), Vec::<String>::new());
    let ps = Command::new("pgrep")
        .args(["-f", "sleep 300"])
        .output()
        .unwrap();
    let still: Vec<String> = String::from_utf8_lossy(&ps.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    // Other processes may sleep 300 too; ours ran in this project's folder.
    let ours: Vec<&String> = still
        .iter()
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd"))
                .map(|d| d.starts_with(p.dir.path()))
                .unwrap_or(false)
        })
        .collect();
    assert!(ours.is_empty(), "the hook still runs: {ours:?}");
}
