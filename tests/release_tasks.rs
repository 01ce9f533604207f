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

/// The spec version index of each service of STACK, by name.
fn versions(stack: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = list(&[
        "service",
        "ls",
        "--filter",
        &format!("label=com.docker.stack.namespace={stack}"),
        "--format",
        "{{.Name}}",
    ])
    .into_iter()
    .map(|name| {
        let index = list(&[
            "service",
            "inspect",
            "--format",
            "{{.Version.Index}}",
            &name,
        ]);
        (name, index.concat())
    })
    .collect();
    v.sort();
    v
}

/// A stack whose `app` has a release task that records when it ran in a shared volume, and
/// records at its own start when it started and which migration it saw.
fn release_manifest(stack: &str, version: u32, migrate_exit: u32) -> String {
    format!(
        r#"stack: {stack}
services:
  app:
    image: twip/base:bookworm
    command: [sh, -c, "date +%s%N > /data/app-start-$$VERSION; cat /data/migrated-$$VERSION > /data/app-saw-$$VERSION; exec sleep infinity"]
    environment:
      VERSION: "{version}"
      MIGRATE_EXIT: "{migrate_exit}"
    volumes: [shared:/data]
    stop_grace_period: 1s
    before_deploy: [sh, -c, "echo migrating to $$VERSION; date +%s%N > /data/migrated-$$VERSION; exit $$MIGRATE_EXIT"]
  other:
    image: twip/base:bookworm
    command: [sleep, infinity]
    environment:
      VERSION: "{version}"
    stop_grace_period: 1s
volumes:
  shared:
"#
    )
}

#[test]
fn a_failing_release_task_changes_nothing_and_a_passing_one_runs_before_the_new_version() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_swarm();
    let (p, stack) = project("release", |s| release_manifest(s, 1, 0));
    let _rm = RemoveOneoffs(vec![stack.clone()]);
    let up = p.twip(&["up", "release", "--timeout", "120s"]);
    assert_eq!(up.status.code(), Some(0), "{}", stderr(&up));
    assert!(
        stderr(&up).contains("app:before_deploy | migrating to 1"),
        "the task's lines are streamed with a prefix: {}",
        stderr(&up)
    );
    let before = versions(&stack);
    assert_eq!(before.len(), 2, "{before:?}");

    // Version 2 with a migration that exits 3: exit 1, its output shown, nothing changed.
    p.write_env("release", &release_manifest(&stack, 2, 3));
    let plan = p.twip(&["plan", "release"]);
    assert!(
        stdout(&plan).contains("before_deploy: sh -c"),
        "{}",
        stdout(&plan)
    );
    let up = p.twip(&["up", "release", "--timeout", "120s"]);
    let err = stderr(&up);
    assert_eq!(up.status.code(), Some(1), "{err}");
    assert!(err.contains("exited with code 3"), "{err}");
    assert!(err.contains("no service was changed"), "{err}");
    assert!(err.contains("migrating to 2"), "{err}");
    assert_eq!(versions(&stack), before);
    assert_eq!(oneoffs(&stack), Vec::<String>::new());

    // Version 2 with a migration that passes: it ran before the new version's task started,
    // and the new version saw it when it started.
    p.write_env("release", &release_manifest(&stack, 2, 0));
    let up = p.twip(&["up", "release", "--timeout", "120s"]);
    assert_eq!(up.status.code(), Some(0), "{}", stderr(&up));
    assert_ne!(versions(&stack), before);
    let out = p.twip(&[
        "run",
        "release",
        "app",
        "--",
        "sh",
        "-c",
        "cat /data/migrated-2 /data/app-start-2 /data/app-saw-2",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let o = stdout(&out);
    let stamps: Vec<u128> = o.lines().filter_map(|l| l.trim().parse().ok()).collect();
    assert_eq!(stamps.len(), 3, "{o}");
    let (migrated, app_start, app_saw) = (stamps[0], stamps[1], stamps[2]);
    assert!(
        migrated < app_start,
        "the migration ended after v2 started: {o}"
    );
    assert_eq!(app_saw, migrated, "v2 saw another migration: {o}");
    assert_eq!(oneoffs(&stack), Vec::<String>::new());
}

/// Times of SERVICE's tasks as the engine recorded them: (created, state, state's time).
fn task_times(service: &str) -> Vec<(std::time::SystemTime, String, std::time::SystemTime)> {
    let parse = |ts: &str| {
        humantime::parse_rfc3339_weak(ts.trim().trim_matches('"').trim_end_matches('Z'))
            .unwrap_or_else(|e| panic!("{ts}: {e}"))
    };
    list(&["service", "ps", "-q", "--no-trunc", service])
        .into_iter()
        .map(|id| {
            let line = list(&[
                "inspect",
                "--format",
                "{{json .CreatedAt}}|{{.Status.State}}|{{json .Status.Timestamp}}",
                &id,
            ])
            .concat();
            let parts: Vec<&str> = line.split('|').collect();
            assert_eq!(parts.len(), 3, "{line}");
            (parse(parts[0]), parts[1].to_string(), parse(parts[2]))
        })
        .collect()
}

#[test]
fn depends_on_healthy_starts_the_dependent_after_the_health_check_passed() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_swarm();
    let (p, stack) = project("order", |stack| {
        format!(
            r#"stack: {stack}
services:
  web:
    image: twip/base:bookworm
    command: [sleep, infinity]
    stop_grace_period: 1s
    depends_on:
      db: {{condition: healthy}}
  db:
    image: twip/base:bookworm
    command: [sh, -c, "sleep 4; touch /tmp/ready; exec sleep infinity"]
    stop_grace_period: 1s
    healthcheck:
      test: [CMD, test, -f, /tmp/ready]
      interval: 1s
      timeout: 1s
      retries: 60
"#
        )
    });
    let up = p.twip(&["up", "order", "--timeout", "120s"]);
    let err = stderr(&up);
    assert_eq!(up.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!("waiting for {stack}_db to be healthy")),
        "{err}"
    );
    let db = task_times(&format!("{stack}_db"));
    let web = task_times(&format!("{stack}_web"));
    assert_eq!(db.len(), 1, "{db:?}");
    assert_eq!(web.len(), 1, "{web:?}");
    let (db_created, db_state, db_running) = &db[0];
    assert_eq!(db_state, "running");
    // The db's task counts as running only once its health check passed.
    assert!(db_created < db_running);
    let (web_created, _, _) = &web[0];
    assert!(
        db_running < web_created,
        "web's task was made before db was healthy: {db:?} {web:?}"
    );
}
