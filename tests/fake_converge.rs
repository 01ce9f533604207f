//! Convergence waits, rollback and down through the in-memory swarm (no daemon). Timeouts run
//! on the fake's clock: nothing sleeps.

mod fake_support;

use std::time::Duration;

use fake_support::{code, stack_calls, World, APP, WORKER};
use twip::engine::events::{Event, Recorder};
use twip::engine::fake::{Behaviour, UpdateEnd};
use twip::plan::Op;

// ---- convergence waits ----

#[tokio::test]
async fn tasks_that_never_start_time_out_with_exit_3() {
    let w = World::new();
    w.fake.behave(APP, Behaviour::Stuck);
    let r = w.up(&w.env()).await;
    assert_eq!(code(&r), 3, "{r:?}");
    let msg = r.unwrap_err().to_string();
    assert!(msg.starts_with("timed out after 2m waiting for: "), "{msg}");
    assert!(
        msg.contains("driftfixture_app (0/1 running, 1 starting)"),
        "{msg}"
    );
    assert!(!msg.contains(WORKER), "{msg}");
    // Recorded as a change that timed out.
    assert_eq!(w.releases().await, vec![1]);
    assert_eq!(w.outcomes().await, vec!["timed out"]);
}

#[tokio::test]
async fn a_crash_loop_fails_fast_with_the_exit_code_and_the_last_log_lines() {
    let w = World::new();
    w.fake.behave(APP, Behaviour::CrashLoop { exit_code: 2 });
    w.fake.set_logs(APP, &["starting", "boom: no config"]);
    let r = w.up(&w.env()).await;
    assert_eq!(code(&r), 1, "{r:?}");
    let msg = r.unwrap_err().to_string();
    assert_eq!(
        msg,
        "driftfixture_app does not start: the container exited with code 2\nlast log lines:\n  starting\n  boom: no config"
    );
    // It failed on the third failed task, well before the timeout.
    let failed = w
        .fake
        .tasks_of(APP)
        .iter()
        .filter(|t| t.status.as_ref().and_then(|s| s.err.as_ref()).is_some())
        .count();
    assert_eq!(failed, 3);
}

#[tokio::test]
async fn a_task_no_node_can_take_fails_after_ten_seconds() {
    let w = World::new();
    w.fake.behave(
        WORKER,
        Behaviour::Pending("no suitable node (scheduling constraints not satisfied)".into()),
    );
    let before = w.fake.now_for_tests();
    let r = w.up(&w.env()).await;
    assert_eq!(code(&r), 1, "{r:?}");
    let msg = r.unwrap_err().to_string();
    assert!(
        msg.starts_with("driftfixture_worker does not start: no suitable node"),
        "{msg}"
    );
    let waited = w.fake.now_for_tests().duration_since(before).unwrap();
    assert!(waited > Duration::from_secs(10), "{waited:?}");
    assert!(waited < fake_support::TIMEOUT, "{waited:?}");
}

#[tokio::test]
async fn an_update_swarm_rolls_back_is_exit_4_and_the_old_spec_runs() {
    let w = World::new();
    w.up(&w.env()).await.unwrap();
    w.fake
        .end_next_update(APP, UpdateEnd::RolledBack("update rolled back".into()));
    let r = w
        .up(&w.env_with(&[("TWIP_DRIFT_IMAGE", "twip/base:broken")]))
        .await;
    assert_eq!(code(&r), 4, "{r:?}");
    let msg = r.unwrap_err().to_string();
    assert_eq!(
        msg,
        "the update of driftfixture_app failed and swarm rolled it back: update rolled back"
    );
    assert_eq!(w.image(APP), "twip/base:bookworm");
    assert_eq!(w.releases().await, vec![1, 2]);
    assert_eq!(w.outcomes().await, vec!["converged", "rolled back"]);
}

#[tokio::test]
async fn an_update_swarm_pauses_is_exit_5() {
    let w = World::new();
    w.up(&w.env()).await.unwrap();
    w.fake
        .end_next_update(WORKER, UpdateEnd::Paused("task failed health check".into()));
    let r = w
        .up(&w.env_with(&[("TWIP_DRIFT_IMAGE", "twip/base:v2")]))
        .await;
    assert_eq!(code(&r), 5, "{r:?}");
    assert!(r
        .unwrap_err()
        .to_string()
        .starts_with("the update of driftfixture_worker is paused: task failed health check;"));
}

#[tokio::test]
async fn an_earlier_update_status_is_not_this_changes() {
    // A service whose last update was rolled back, then changed again: the old status does
    // not fail the new change.
    let w = World::new();
    w.up(&w.env()).await.unwrap();
    w.fake
        .end_next_update(APP, UpdateEnd::RolledBack("update rolled back".into()));
    let v2 = w.env_with(&[("TWIP_DRIFT_IMAGE", "twip/base:v2")]);
    assert_eq!(code(&w.up(&v2).await), 4);
    // Scaling does not touch the task template: the status stays `rollback_completed`.
    assert_eq!(code(&w.scale(&w.env(), "app", 2).await), 0);
    assert_eq!(w.running(APP), 2);
}

#[tokio::test]
async fn wait_reports_states_as_they_change_then_the_end() {
    let w = World::new();
    let env = w.env();
    let d = w.deployment(&env);
    let desired = twip::lifecycle::desired_for(&env, w.dir.path()).unwrap();
    let (desired, plan) =
        twip::lifecycle::converge::make_plan_with(&d, &Default::default(), desired)
            .await
            .unwrap();
    let mut events = Recorder::default();
    twip::engine::execute::execute(&w.fake, &plan, &desired, &mut events)
        .await
        .unwrap();
    let applied: Vec<(Op, String)> = events
        .0
        .iter()
        .filter_map(|e| match e {
            Event::Applied { op, name, .. } => Some((*op, name.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(applied.len(), 6, "{applied:?}");
    assert!(applied.iter().all(|(op, _)| *op == Op::Create));
    assert_eq!(applied[4].1, APP);

    let mut events = Recorder::default();
    let services = vec![APP.to_string()];
    twip::engine::wait::converge(
        &w.fake,
        &services,
        &Default::default(),
        Duration::from_secs(60),
        &mut events,
    )
    .await
    .unwrap();
    let states: Vec<&str> = events
        .0
        .iter()
        .filter_map(|e| match e {
            Event::State { line, .. } => Some(line.as_str()),
            _ => None,
        })
        .collect();
    // Each state once, in order: starting, running (not yet stable is still 1/1).
    assert_eq!(states, vec!["0/1 running, 1 starting", "1/1 running"]);
    assert_eq!(
        events.0.first(),
        Some(&Event::Waiting {
            services: services.clone()
        })
    );
    assert_eq!(
        events.0.last(),
        Some(&Event::Finished {
            service: APP.into(),
            ok: true
        })
    );
}

#[tokio::test]
async fn a_running_task_must_stay_up_a_while_before_the_service_counts() {
    let w = World::new();
    w.fake.behave(APP, Behaviour::Stuck);
    w.up(&w.env()).await.unwrap_err();
    w.fake.behave(APP, Behaviour::Healthy);
    w.fake.pass(Duration::from_millis(100));
    let st = twip::engine::wait::look(&w.fake, APP, &Default::default())
        .await
        .unwrap();
    assert_eq!((st.running, st.desired), (1, 1));
    assert!(!st.converged(), "{st:?}");
    w.fake.pass(twip::engine::wait::STABLE);
    let st = twip::engine::wait::look(&w.fake, APP, &Default::default())
        .await
        .unwrap();
    assert!(st.converged(), "{st:?}");
}

#[tokio::test]
async fn an_update_sent_with_a_stale_version_is_refused_then_retried_on_a_fresh_read() {
    let w = World::new();
    let env = w.env();
    w.up(&env).await.unwrap();
    let v2 = w.env_with(&[("TWIP_DRIFT_IMAGE", "twip/base:v2")]);
    let d = w.deployment(&v2);
    let desired = twip::lifecycle::desired_for(&v2, w.dir.path()).unwrap();
    let (desired, plan) =
        twip::lifecycle::converge::make_plan_with(&d, &Default::default(), desired)
            .await
            .unwrap();
    let read = w.version(APP);
    // Someone changes the service between the read and the update.
    w.fake.tamper(APP, |s| {
        s.labels.as_mut().unwrap().insert("x".into(), "y".into());
    });
    assert!(w.version(APP) > read);
    let stale = twip::engine::SwarmApi::update_service(
        &w.fake,
        APP,
        (**plan.actions[0].spec.as_ref().unwrap()).clone(),
        read,
    )
    .await
    .unwrap_err();
    assert_eq!(stale.kind, twip::engine::ErrorKind::OutOfSequence);
    w.fake.clear_calls();
    twip::engine::execute::execute(&w.fake, &plan, &desired, &mut Recorder::default())
        .await
        .unwrap();
    assert_eq!(
        w.fake.calls(),
        vec![
            format!("update service {APP}"),
            format!("update service {WORKER}")
        ]
    );
    assert_eq!(w.image(APP), "twip/base:v2");
}

// ---- rollback ----

#[tokio::test]
async fn rollback_without_an_earlier_release_says_so() {
    let w = World::new();
    let env = w.env();
    w.up(&env).await.unwrap();
    let r = w.rollback(&env, None, None).await;
    assert_eq!(code(&r), 1);
    assert!(r
        .unwrap_err()
        .to_string()
        .starts_with("driftfixture: there is no earlier release to return to (1 recorded;"));
}

#[tokio::test]
async fn rollback_returns_to_the_previous_release_and_records_it() {
    let w = World::new();
    w.up(&w.env()).await.unwrap();
    let v2 = w.env_with(&[("TWIP_DRIFT_IMAGE", "twip/base:v2")]);
    w.up(&v2).await.unwrap();
    w.fake.clear_calls();
    assert_eq!(code(&w.rollback(&v2, None, None).await), 0);
    assert_eq!(
        stack_calls(&w.fake),
        vec![
            format!("update service {APP}"),
            format!("update service {WORKER}")
        ]
    );
    assert_eq!(w.image(APP), "twip/base:bookworm");
    assert_eq!(w.image(WORKER), "twip/base:bookworm");
    assert_eq!(w.running(APP), 1);
    assert_eq!(w.releases().await, vec![1, 2, 3]);
    // Rolling back again returns to where we started.
    assert_eq!(code(&w.rollback(&v2, None, None).await), 0);
    assert_eq!(w.image(APP), "twip/base:v2");
}

#[tokio::test]
async fn rollback_to_an_older_release() {
    let w = World::new();
    for tag in ["v1", "v2", "v3"] {
        let image = format!("twip/base:{tag}");
        w.up(&w.env_with(&[("TWIP_DRIFT_IMAGE", &image)]))
            .await
            .unwrap();
    }
    assert_eq!(code(&w.rollback(&w.env(), None, Some(1)).await), 0);
    assert_eq!(w.image(APP), "twip/base:v1");
    let r = w.rollback(&w.env(), None, Some(9)).await;
    assert_eq!(code(&r), 2);
    assert_eq!(
        r.unwrap_err().to_string(),
        "driftfixture: no release 9 (kept: 1, 2, 3, 4)"
    );
}

#[tokio::test]
async fn rollback_to_what_runs_has_nothing_to_do() {
    let w = World::new();
    w.up(&w.env()).await.unwrap();
    w.up(&w.env_with(&[("TWIP_DRIFT_IMAGE", "twip/base:v2")]))
        .await
        .unwrap();
    w.fake.clear_calls();
    assert_eq!(code(&w.rollback(&w.env(), None, Some(2)).await), 0);
    assert!(w.fake.calls().is_empty(), "{:?}", w.fake.calls());
}

#[tokio::test]
async fn rollback_keeps_the_replicas_that_run() {
    let w = World::new();
    w.up(&w.env()).await.unwrap();
    let v2 = w.env_with(&[("TWIP_DRIFT_IMAGE", "twip/base:v2")]);
    w.up(&v2).await.unwrap();
    w.scale(&v2, "app", 3).await.unwrap();
    assert_eq!(code(&w.rollback(&v2, None, Some(1)).await), 0);
    assert_eq!(w.image(APP), "twip/base:bookworm");
    assert_eq!(w.replicas(APP), Some(3));
    assert_eq!(w.running(APP), 3);
}

#[tokio::test]
async fn rollback_of_one_service_leaves_the_others() {
    let w = World::new();
    w.up(&w.env()).await.unwrap();
    let v2 = w.env_with(&[("TWIP_DRIFT_IMAGE", "twip/base:v2")]);
    w.up(&v2).await.unwrap();
    w.fake.clear_calls();
    assert_eq!(code(&w.rollback(&v2, Some("app"), None).await), 0);
    assert_eq!(stack_calls(&w.fake), vec![format!("update service {APP}")]);
    assert_eq!(w.image(APP), "twip/base:bookworm");
    assert_eq!(w.image(WORKER), "twip/base:v2");
    let r = w.rollback(&v2, Some("nope"), None).await;
    assert_eq!(code(&r), 2);
    assert_eq!(
        r.unwrap_err().to_string(),
        "driftfixture: no service `nope` runs in stack driftfixture"
    );
}

#[tokio::test]
async fn rollback_says_where_each_service_goes() {
    let w = World::new();
    w.up(&w.env()).await.unwrap();
    let v2 = w.env_with(&[("TWIP_DRIFT_IMAGE", "twip/base:v2")]);
    w.up(&v2).await.unwrap();
    let d = w.deployment(&v2);
    let history = twip::engine::releases::list(&w.fake, "driftfixture")
        .await
        .unwrap();
    let observed = twip::engine::observe::observe(&w.fake, "driftfixture")
        .await
        .unwrap();
    let desired =
        twip::lifecycle::rollback::release_desired(&d, &history[0].1, &observed, &|_| true, &w.ui);
    let plan = twip::plan::reconcile(&desired, &observed, &Default::default());
    // Only the services change: networks, configs and secrets stay as they are.
    assert_eq!(plan.actions.len(), 2, "{plan}");
    assert!(plan.actions.iter().all(|a| a.op == Op::Update));
    assert_eq!(plan.actions[0].changes[0].field, "image");
}

#[tokio::test]
async fn rollback_after_a_failed_rollout_returns_to_the_last_good_release() {
    let w = World::new();
    w.up(&w.env()).await.unwrap();
    w.up(&w.env_with(&[("TWIP_DRIFT_IMAGE", "twip/base:v2")]))
        .await
        .unwrap();
    w.fake.behave(APP, Behaviour::CrashLoop { exit_code: 1 });
    let r = w
        .up(&w.env_with(&[("TWIP_DRIFT_IMAGE", "twip/base:v3")]))
        .await;
    assert_eq!(code(&r), 1);
    assert_eq!(w.releases().await, vec![1, 2, 3]);
    assert_eq!(w.outcomes().await, vec!["converged", "converged", "failed"]);
    w.fake.behave(APP, Behaviour::Healthy);
    // v3 runs (and failed); the newest release that converged is v2.
    assert_eq!(code(&w.rollback(&w.env(), None, None).await), 0);
    assert_eq!(w.image(APP), "twip/base:v2");
    // A release that failed is no place to return to.
    let r = w.rollback(&w.env(), None, Some(3)).await;
    assert_eq!(code(&r), 2);
    assert!(r
        .unwrap_err()
        .to_string()
        .starts_with("driftfixture: release 3 did not converge (failed)"),);
}

// ---- down ----

#[tokio::test]
async fn down_removes_services_first_then_configs_secrets_networks_and_keeps_volumes() {
    let w = World::new();
    let env = w.env();
    w.up(&env).await.unwrap();
    w.fake.clear_calls();
    assert_eq!(code(&w.down(&env, false).await), 0);
    let calls = w.fake.calls();
    assert_eq!(
        calls,
        vec![
            format!("remove service {APP}"),
            format!("remove service {WORKER}"),
            "remove config driftfixture_motd_45ca0b75bc".into(),
            "remove config driftfixture_twip-release-000001".into(),
            "remove secret driftfixture_token_1ff8c6e44c".into(),
            "remove network driftfixture_back".into(),
            "remove network driftfixture_default".into(),
        ]
    );
    let names = w.fake.names();
    for kind in ["service", "config", "secret", "network"] {
        assert!(names[kind].is_empty(), "{kind}: {:?}", names[kind]);
    }
    assert_eq!(names["volume"], vec!["driftfixture_data".to_string()]);
}

#[tokio::test]
async fn down_with_volumes_removes_them_too() {
    let w = World::new();
    let env = w.env();
    w.up(&env).await.unwrap();
    w.fake
        .add_volume("other_data", &[("com.docker.stack.namespace", "other")]);
    assert_eq!(code(&w.down(&env, true).await), 0);
    assert_eq!(w.fake.names()["volume"], vec!["other_data".to_string()]);
    assert!(w
        .fake
        .calls()
        .contains(&"remove volume driftfixture_data".to_string()));
}

#[tokio::test]
async fn down_with_nothing_there_changes_nothing() {
    let w = World::new();
    assert_eq!(code(&w.down(&w.env(), true).await), 0);
    assert!(w.fake.calls().is_empty());
}

#[tokio::test]
async fn down_plans_every_removal_against_the_empty_state() {
    let w = World::new();
    let env = w.env();
    w.up(&env).await.unwrap();
    let observed = twip::engine::observe::observe(&w.fake, "driftfixture")
        .await
        .unwrap();
    // The release history is retained by `up`, but not by `down`.
    assert!(!observed.retained.is_empty());
    let plan = twip::lifecycle::down::plan(&w.deployment(&env), &observed);
    assert_eq!(plan.actions.len(), 7, "{plan}");
    assert!(plan.actions.iter().all(|a| a.op == Op::Remove));
    assert_eq!(plan.actions[0].name, APP);
}

#[tokio::test]
async fn up_after_down_recreates_everything() {
    let w = World::new();
    let env = w.env();
    w.up(&env).await.unwrap();
    w.down(&env, false).await.unwrap();
    w.fake.clear_calls();
    assert_eq!(code(&w.up(&env).await), 0);
    assert_eq!(fake_support::calls_of(&w.fake, "create").len(), 7);
    assert_eq!(w.running(APP), 1);
}
