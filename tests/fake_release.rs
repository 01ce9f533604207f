//! One-off tasks (`twip run`), release tasks (`before_deploy`) and ordered rollouts
//! (`depends_on`) through the in-memory swarm: what is sent, and in which order.

mod fake_support;

use fake_support::{code, stack_calls, World, APP, TIMEOUT};
use twip::lifecycle::oneoff;

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Services whose name says they are one-offs.
fn oneoffs(w: &World) -> Vec<String> {
    w.fake.names()["service"]
        .iter()
        .filter(|s| s.contains("_run_"))
        .cloned()
        .collect()
}

#[tokio::test]
async fn run_passes_the_exit_code_through_and_leaves_nothing_behind() {
    let w = World::new();
    let env = w.env();
    w.up(&env).await.unwrap();
    w.fake.clear_calls();
    w.fake
        .job_outcome(&format!("{APP}_run_"), 7, &["migrating", "boom"]);
    let d = w.deployment(&env);
    let r = oneoff::run(&d, "app", &args(&["sh", "-c", "exit 7"]), TIMEOUT, &w.ui).await;
    assert_eq!(code(&r), 7);
    assert_eq!(oneoffs(&w), Vec::<String>::new());
    let calls = stack_calls(&w.fake);
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(
        calls[0].starts_with(&format!("create service {APP}_run_")),
        "{calls:?}"
    );
    assert_eq!(calls[1], calls[0].replace("create", "remove"));
    // The one-off's spec: the service's, as a job, with the command replaced and no ports.
    let spec = w.fake.created_specs().pop().unwrap();
    let job = spec.mode.as_ref().unwrap().replicated_job.as_ref().unwrap();
    assert_eq!(job.total_completions, Some(1));
    assert_eq!(spec.endpoint_spec.as_ref().unwrap().ports, None);
    let app = w.fake.inspect(APP).unwrap().spec.unwrap();
    let (cs, app_cs) = (
        spec.task_template.unwrap().container_spec.unwrap(),
        app.task_template.unwrap().container_spec.unwrap(),
    );
    assert_eq!(cs.args, Some(args(&["sh", "-c", "exit 7"])));
    assert_eq!(cs.image, app_cs.image);
    assert_eq!(cs.env, app_cs.env);
    assert_eq!(cs.mounts, app_cs.mounts);
    assert_eq!(cs.secrets.as_ref().map(Vec::len), Some(1));
    assert_eq!(cs.secrets, app_cs.secrets);
    assert_eq!(cs.configs, app_cs.configs);
    assert_eq!(
        spec.labels
            .unwrap()
            .get("io.twip.oneoff")
            .map(String::as_str),
        Some("run")
    );

    // Exit 0 is 0.
    let r = oneoff::run(&d, "worker", &args(&["true"]), TIMEOUT, &w.ui).await;
    assert_eq!(code(&r), 0);
    assert_eq!(oneoffs(&w), Vec::<String>::new());
}

#[tokio::test]
async fn run_before_the_first_up_creates_the_objects_it_needs_and_no_service() {
    let w = World::new();
    let env = w.env();
    let d = w.deployment(&env);
    let r = oneoff::run(&d, "app", &args(&["true"]), TIMEOUT, &w.ui).await;
    assert_eq!(code(&r), 0);
    let calls = stack_calls(&w.fake);
    let creates: Vec<&String> = calls.iter().filter(|c| c.starts_with("create")).collect();
    assert_eq!(creates.len(), 5, "{calls:?}");
    assert!(
        creates[..4]
            .iter()
            .all(|c| !c.starts_with("create service")),
        "{calls:?}"
    );
    assert!(creates[4].starts_with(&format!("create service {APP}_run_")));
    assert_eq!(w.fake.names()["service"], Vec::<String>::new());
}

#[tokio::test]
async fn run_of_an_unknown_service_is_an_input_error_that_changes_nothing() {
    let w = World::new();
    let env = w.env();
    let d = w.deployment(&env);
    let r = oneoff::run(&d, "ap", &args(&["true"]), TIMEOUT, &w.ui).await;
    assert_eq!(code(&r), 2);
    let e = r.unwrap_err().to_string();
    assert!(e.contains("did you mean `app`"), "{e}");
    assert_eq!(w.fake.calls(), Vec::<String>::new());
}

const RELEASE: &str = "    stop_grace_period: 2s\n    before_deploy: [migrate, --all]\n  worker:";
const NO_RELEASE: &str = "    stop_grace_period: 2s\n  worker:";

/// Position of the first call starting with PREFIX.
fn at(calls: &[String], prefix: &str) -> usize {
    calls
        .iter()
        .position(|c| c.starts_with(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` in {calls:?}"))
}

#[tokio::test]
async fn a_release_task_runs_before_any_service_is_changed() {
    let w = World::new();
    w.up(&w.env()).await.unwrap();
    w.fake.clear_calls();
    w.edit(NO_RELEASE, RELEASE);
    w.edit("GREETING: hello", "GREETING: hi");
    let env = w.env();
    let plan = w.plan(&env).await;
    assert_eq!(plan.release.len(), 1, "{plan}");
    let text = plan.to_string();
    let lines: Vec<&str> = text.lines().collect();
    // Shown before the service's update it precedes.
    let task = lines
        .iter()
        .position(|l| l.starts_with(&format!("  > task    {APP} ")))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(lines[task].ends_with("before_deploy: migrate --all (before any service changes)"));
    assert!(
        lines[task + 1].starts_with(&format!("  ~ service {APP} ")),
        "{text}"
    );
    assert_eq!(code(&w.up(&env).await), 0);
    let calls = stack_calls(&w.fake);
    let run = at(&calls, &format!("create service {APP}_run_"));
    let removed = at(&calls, &format!("remove service {APP}_run_"));
    let update = at(&calls, "update service");
    assert!(run < removed && removed < update, "{calls:?}");
    // From the new spec: the new environment.
    let job = w
        .fake
        .created_specs()
        .into_iter()
        .find(|s| s.name.as_deref().is_some_and(|n| n.contains("_run_")));
    let cs = job.unwrap().task_template.unwrap().container_spec.unwrap();
    assert_eq!(cs.args, Some(args(&["migrate", "--all"])));
    assert!(cs.env.unwrap().contains(&"GREETING=hi".to_string()));
    assert_eq!(oneoffs(&w), Vec::<String>::new());

    // Up again: nothing changes, so no release task runs.
    w.fake.clear_calls();
    assert_eq!(code(&w.up(&env).await), 0);
    assert_eq!(w.fake.calls(), Vec::<String>::new());
    // Scaling alone runs none either.
    assert_eq!(code(&w.scale(&env, "app", 2).await), 0);
    let calls = stack_calls(&w.fake);
    assert_eq!(calls, vec![format!("update service {APP}")]);
}

#[tokio::test]
async fn a_failing_release_task_changes_no_service() {
    let w = World::new();
    w.up(&w.env()).await.unwrap();
    let versions = (w.version(APP), w.version(fake_support::WORKER));
    w.fake.clear_calls();
    w.edit(NO_RELEASE, RELEASE);
    w.edit("GREETING: hello", "GREETING: hi");
    w.edit("content: \"hello from twip\"", "content: \"hello again\"");
    w.fake.job_outcome(
        &format!("{APP}_run_"),
        3,
        &["applying 0042", "error: relation exists"],
    );
    let env = w.env();
    let r = w.up(&env).await;
    assert_eq!(code(&r), 1);
    let e = format!("{:#}", r.unwrap_err());
    assert!(e.contains("exited with code 3"), "{e}");
    assert!(e.contains("no service was changed"), "{e}");
    assert!(e.contains("error: relation exists"), "{e}");
    assert_eq!((w.version(APP), w.version(fake_support::WORKER)), versions);
    let calls = stack_calls(&w.fake);
    assert!(
        calls.iter().all(|c| !c.starts_with("update service")),
        "{calls:?}"
    );
    // The new config was made (before the task, which sees it); the one-off is gone.
    assert!(at(&calls, "create config") < at(&calls, "create service"));
    assert_eq!(oneoffs(&w), Vec::<String>::new());
}

#[tokio::test]
async fn on_a_first_deploy_the_release_task_runs_after_the_objects_and_before_the_services() {
    let w = World::new();
    w.edit(NO_RELEASE, RELEASE);
    let env = w.env();
    assert_eq!(code(&w.up(&env).await), 0);
    let calls = stack_calls(&w.fake);
    let run = at(&calls, &format!("create service {APP}_run_"));
    assert!(at(&calls, "create secret") < run, "{calls:?}");
    let first_app = calls
        .iter()
        .position(|c| c == &format!("create service {APP}"))
        .unwrap();
    assert!(
        at(&calls, &format!("remove service {APP}_run_")) < first_app,
        "{calls:?}"
    );
}

const DEPENDS: &str =
    "    stop_grace_period: 2s\n    depends_on:\n      worker: {condition: healthy}\n  worker:";

#[tokio::test]
async fn services_are_created_in_waves_after_their_dependencies_run() {
    use twip::engine::model::TaskState;
    let w = World::new();
    w.edit(NO_RELEASE, DEPENDS);
    let env = w.env();
    assert_eq!(code(&w.up(&env).await), 0);
    let calls = stack_calls(&w.fake);
    let worker = at(&calls, &format!("create service {}", fake_support::WORKER));
    let app = at(&calls, &format!("create service {APP}"));
    // Without depends_on the executor creates them together, app first (by name).
    assert!(worker < app, "{calls:?}");
    // The app's first task was made only after the worker's task ran.
    let worker_running = w
        .fake
        .tasks_of(fake_support::WORKER)
        .iter()
        .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING))
        .filter_map(|t| t.status.as_ref()?.timestamp.clone())
        .min()
        .unwrap();
    let app_created = w
        .fake
        .tasks_of(APP)
        .iter()
        .filter_map(|t| t.created_at.clone())
        .min()
        .unwrap();
    assert!(
        worker_running < app_created,
        "{worker_running} !< {app_created}"
    );
    assert_eq!(w.running(APP), 1);

    // An update of both: the same order.
    w.fake.clear_calls();
    w.edit("GREETING: hello", "GREETING: hi");
    w.edit(
        "command: [\"sleep\", \"infinity\"]",
        "command: [\"sleep\", \"99999\"]",
    );
    let env = w.env();
    assert_eq!(code(&w.up(&env).await), 0);
    let calls = stack_calls(&w.fake);
    let worker = at(&calls, &format!("update service {}", fake_support::WORKER));
    let app = at(&calls, &format!("update service {APP}"));
    assert!(worker < app, "{calls:?}");
}

#[tokio::test]
async fn a_dependency_that_does_not_start_stops_the_deploy_before_its_dependents() {
    use twip::engine::fake::Behaviour;
    let w = World::new();
    w.edit(NO_RELEASE, DEPENDS);
    w.fake
        .behave(fake_support::WORKER, Behaviour::CrashLoop { exit_code: 1 });
    let env = w.env();
    let r = w.up(&env).await;
    assert_eq!(code(&r), 1, "{r:?}");
    let calls = stack_calls(&w.fake);
    assert!(calls.contains(&format!("create service {}", fake_support::WORKER)));
    assert!(
        !calls.contains(&format!("create service {APP}")),
        "{calls:?}"
    );
}
