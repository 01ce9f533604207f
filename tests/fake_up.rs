//! `up`, `plan` and `scale` through the in-memory swarm (no daemon): create, update, unchanged,
//! drift put back, scale kept, releases recorded.

mod fake_support;

use fake_support::{calls_of, code, fixtures, stack_calls, World, APP, WORKER};
use twip::plan::{Op, Resource};

#[tokio::test]
async fn up_creates_objects_before_the_services_that_use_them() {
    let w = World::new();
    let env = w.env();
    assert_eq!(code(&w.up(&env).await), 0);
    let creates = calls_of(&w.fake, "create");
    assert_eq!(
        creates,
        vec![
            "create network driftfixture_back".to_string(),
            "create network driftfixture_default".into(),
            "create config driftfixture_motd_45ca0b75bc".into(),
            "create secret driftfixture_token_1ff8c6e44c".into(),
            format!("create service {APP}"),
            format!("create service {WORKER}"),
            // Once converged, the release is recorded.
            "create config driftfixture_twip-release-000001".into(),
        ]
    );
}

#[tokio::test]
async fn up_waits_until_every_task_runs() {
    let w = World::new();
    let env = w.env();
    assert_eq!(code(&w.up(&env).await), 0);
    assert_eq!(w.running(APP), 1);
    assert_eq!(w.running(WORKER), 1);
}

#[tokio::test]
async fn up_detached_returns_before_the_tasks_run() {
    let w = World::new();
    let env = w.env();
    let d = w.deployment(&env);
    let desired = twip::lifecycle::desired_for(&env, w.dir.path()).unwrap();
    let r = twip::lifecycle::converge_on(
        &d,
        &Default::default(),
        desired,
        true,
        fake_support::TIMEOUT,
        &w.ui,
    )
    .await;
    assert_eq!(code(&r), 0);
    assert_eq!(w.running(APP), 0);
    assert_eq!(w.fake.tasks_of(APP).len(), 1);
    // Recorded, as a change that was not waited for.
    assert_eq!(w.outcomes().await, vec!["not waited"]);
}

#[tokio::test]
async fn up_again_changes_nothing() {
    let w = World::new();
    let env = w.env();
    w.up(&env).await.unwrap();
    let version = w.version(APP);
    w.fake.clear_calls();
    assert_eq!(code(&w.up(&env).await), 0);
    assert_eq!(w.fake.calls(), Vec::<String>::new());
    assert_eq!(w.version(APP), version);
    let plan = w.plan(&env).await;
    assert!(plan.is_empty(), "{plan}");
    assert_eq!(plan.unchanged, vec![APP.to_string(), WORKER.to_string()]);
}

#[tokio::test]
async fn a_new_image_updates_both_services_and_bumps_their_versions() {
    let w = World::new();
    w.up(&w.env()).await.unwrap();
    let (app, worker) = (w.version(APP), w.version(WORKER));
    w.fake.clear_calls();
    let v2 = w.env_with(&[("TWIP_DRIFT_IMAGE", "twip/base:v2")]);
    assert_eq!(code(&w.up(&v2).await), 0);
    assert_eq!(
        stack_calls(&w.fake),
        vec![
            format!("update service {APP}"),
            format!("update service {WORKER}")
        ]
    );
    assert_eq!(w.image(APP), "twip/base:v2");
    assert!(w.version(APP) > app && w.version(WORKER) > worker);
    // The old task was replaced by one of the new spec, which runs.
    assert_eq!(w.running(APP), 1);
    assert_eq!(w.fake.tasks_of(APP).len(), 2);
}

#[tokio::test]
async fn a_changed_config_is_created_used_and_the_old_one_kept_for_rollback() {
    let w = World::new();
    w.up(&w.env()).await.unwrap();
    let before = w.fake.names()["config"].clone();
    w.edit("hello from twip", "hello again");
    w.fake.clear_calls();
    let env = w.env();
    let plan = w.plan(&env).await;
    let create = plan
        .actions
        .iter()
        .find(|a| a.resource == Resource::Config)
        .unwrap();
    assert_eq!(create.op, Op::Create);
    assert!(create
        .cause
        .starts_with("content changed (was driftfixture_motd_"));
    assert_eq!(code(&w.up(&env).await), 0);
    let calls = stack_calls(&w.fake);
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls[0].starts_with("create config driftfixture_motd_"));
    assert_eq!(calls[1], format!("update service {APP}"));
    // The old config is what the first release uses: kept.
    let after = w.fake.names()["config"].clone();
    assert!(before.iter().all(|c| after.contains(c)), "{after:?}");
}

#[tokio::test]
async fn a_service_no_longer_in_the_manifest_is_removed() {
    let w = World::new();
    w.up(&w.env()).await.unwrap();
    let text =
        std::fs::read_to_string(w.dir.path().join("environments/driftfixture.yaml")).unwrap();
    let start = text.find("  worker:").unwrap();
    let end = text.find("\nvolumes:").unwrap();
    let edited = format!("{}{}", &text[..start], &text[end + 1..]);
    std::fs::write(w.dir.path().join("environments/driftfixture.yaml"), edited).unwrap();
    w.fake.clear_calls();
    assert_eq!(code(&w.up(&w.env()).await), 0);
    assert_eq!(
        stack_calls(&w.fake),
        vec![format!("remove service {WORKER}")]
    );
    assert_eq!(w.fake.names()["service"], vec![APP.to_string()]);
}

#[tokio::test]
async fn drift_behind_twips_back_is_planned_and_put_back() {
    let w = World::new();
    let env = w.env();
    w.up(&env).await.unwrap();
    w.fake.tamper(APP, |spec| {
        let cs = spec
            .task_template
            .as_mut()
            .unwrap()
            .container_spec
            .as_mut()
            .unwrap();
        cs.env.as_mut().unwrap().push("EXTRA=1".into());
        cs.image = Some("twip/base:0.9".into());
    });
    let plan = w.plan(&env).await;
    assert_eq!(plan.actions.len(), 1, "{plan}");
    let a = &plan.actions[0];
    assert_eq!((a.name.as_str(), a.op), (APP, Op::Update));
    assert!(a.cause.starts_with("changed outside twip: "), "{}", a.cause);
    let fields: Vec<(&str, Option<&str>)> = a
        .changes
        .iter()
        .map(|c| (c.field, c.key.as_deref()))
        .collect();
    assert_eq!(fields, vec![("image", None), ("env", Some("EXTRA"))]);
    w.fake.clear_calls();
    assert_eq!(code(&w.up(&env).await), 0);
    assert_eq!(stack_calls(&w.fake), vec![format!("update service {APP}")]);
    assert_eq!(w.image(APP), "twip/base:bookworm");
    assert!(w.plan(&env).await.is_empty());
}

#[tokio::test]
async fn a_label_added_outside_twip_is_drift_too() {
    let w = World::new();
    let env = w.env();
    w.up(&env).await.unwrap();
    w.fake.tamper(APP, |spec| {
        spec.labels
            .as_mut()
            .unwrap()
            .insert("owner".into(), "ops".into());
    });
    let plan = w.plan(&env).await;
    assert_eq!(plan.actions.len(), 1, "{plan}");
    assert_eq!(plan.actions[0].changes[0].field, "label");
    assert_eq!(plan.actions[0].changes[0].key.as_deref(), Some("owner"));
}

#[tokio::test]
async fn the_fake_stores_specs_as_the_engine_does() {
    // Every key the engine returned for the deployed services (tests/fixtures/engine), and no
    // other: the fake fills in and drops what the engine fills in and drops.
    let w = World::new();
    w.up(&w.env()).await.unwrap();
    let text = std::fs::read_to_string(fixtures().join("services.json")).unwrap();
    let captured = twip::engine::observe::services_from_json(&text).unwrap();
    assert_eq!(captured.len(), 2);
    for c in captured {
        let spec = c.spec.unwrap();
        let name = spec.name.clone().unwrap();
        let ours = w.fake.inspect(&name).unwrap().spec.unwrap();
        let keys = |s: &twip::engine::model::ServiceSpec| {
            let mut out = Vec::new();
            paths(&serde_json::to_value(s).unwrap(), String::new(), &mut out);
            out
        };
        assert_eq!(keys(&ours), keys(&spec), "{name}");
        let tt = ours.task_template.unwrap();
        // Networks by ID, as the engine names them.
        for n in tt.networks.unwrap() {
            assert!(n.target.unwrap().starts_with("net"));
        }
    }
}

/// Every JSON pointer to a leaf of V.
fn paths(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                paths(x, format!("{at}/{k}"), out)
            }
        }
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                paths(x, format!("{at}/{i}"), out)
            }
        }
        _ => out.push(at),
    }
    out.sort();
}

#[tokio::test]
async fn scale_changes_the_count_and_a_later_up_keeps_it() {
    let w = World::new();
    let env = w.env();
    w.up(&env).await.unwrap();
    w.fake.clear_calls();
    assert_eq!(code(&w.scale(&env, "app", 3).await), 0);
    assert_eq!(stack_calls(&w.fake), vec![format!("update service {APP}")]);
    assert_eq!(w.replicas(APP), Some(3));
    assert_eq!(w.running(APP), 3);
    w.fake.clear_calls();
    assert_eq!(code(&w.up(&env).await), 0);
    assert!(w.fake.calls().is_empty(), "{:?}", w.fake.calls());
    assert_eq!(w.replicas(APP), Some(3));
}

#[tokio::test]
async fn scale_plans_a_scale_not_an_update() {
    let w = World::new();
    let env = w.env();
    w.up(&env).await.unwrap();
    let d = w.deployment(&env);
    let desired = twip::lifecycle::desired_for(&env, w.dir.path()).unwrap();
    let opts = twip::plan::Options {
        scale: [("app".to_string(), 2)].into(),
        ..Default::default()
    };
    let (_, plan) = twip::lifecycle::converge::make_plan_with(&d, &opts, desired)
        .await
        .unwrap();
    assert_eq!(plan.actions.len(), 1, "{plan}");
    assert_eq!(plan.actions[0].op, Op::Scale);
    assert_eq!(plan.actions[0].cause, "replicas 1 → 2");
}

#[tokio::test]
async fn scale_down_stops_the_highest_slots() {
    let w = World::new();
    let env = w.env();
    w.up(&env).await.unwrap();
    w.scale(&env, "app", 3).await.unwrap();
    assert_eq!(code(&w.scale(&env, "app", 1).await), 0);
    assert_eq!(w.running(APP), 1);
    use twip::engine::model::TaskState;
    let slots: Vec<i64> = w
        .fake
        .tasks_of(APP)
        .iter()
        .filter(|t| t.desired_state == Some(TaskState::RUNNING))
        .filter_map(|t| t.slot)
        .collect();
    assert_eq!(slots, vec![1]);
}

#[tokio::test]
async fn each_converged_change_is_recorded_once() {
    let w = World::new();
    w.up(&w.env()).await.unwrap();
    assert_eq!(w.releases().await, vec![1]);
    w.up(&w.env()).await.unwrap();
    assert_eq!(w.releases().await, vec![1]);
    w.up(&w.env_with(&[("TWIP_DRIFT_IMAGE", "twip/base:v2")]))
        .await
        .unwrap();
    assert_eq!(w.releases().await, vec![1, 2]);
}

#[tokio::test]
async fn only_the_last_fifty_releases_are_kept() {
    let w = World::new();
    for i in 0..52 {
        let image = format!("twip/base:v{i}");
        let env = w.env_with(&[("TWIP_DRIFT_IMAGE", &image)]);
        assert_eq!(code(&w.up(&env).await), 0);
    }
    assert_eq!(w.releases().await, (3..=52).collect::<Vec<u64>>());
}

#[tokio::test]
async fn a_digest_from_the_registry_is_pinned_only_with_a_registry() {
    // Without a registry, the local image's id labels the containers instead.
    let w = World::new();
    w.fake.set_image(
        "twip/base:bookworm",
        Some("sha256:local"),
        Some("sha256:remote"),
    );
    let env = w.env();
    w.up(&env).await.unwrap();
    assert_eq!(w.image(APP), "twip/base:bookworm");
}

#[tokio::test]
async fn update_of_one_service_rolls_it_again_with_the_force_counter_up() {
    let w = World::new();
    let env = w.env();
    w.up(&env).await.unwrap();
    let force = |w: &World| {
        w.fake
            .inspect(APP)
            .and_then(|s| s.spec?.task_template?.force_update)
    };
    assert_eq!(force(&w), Some(0));
    let mut desired = twip::lifecycle::desired_for(&env, w.dir.path()).unwrap();
    let opts = twip::lifecycle::update::update(&env, &mut desired, Some("app"), None, &w.ui);
    w.fake.clear_calls();
    let r = twip::lifecycle::converge_on(
        &w.deployment(&env),
        &opts,
        desired,
        false,
        fake_support::TIMEOUT,
        &w.ui,
    )
    .await;
    assert_eq!(code(&r), 0);
    assert_eq!(stack_calls(&w.fake), vec![format!("update service {APP}")]);
    assert_eq!(force(&w), Some(1));
    // Every task was replaced: the first is shut down, a new one runs.
    assert_eq!(w.fake.tasks_of(APP).len(), 2);
    assert_eq!(w.running(APP), 1);
}

#[tokio::test]
async fn update_with_an_image_moves_only_that_service() {
    let w = World::new();
    let env = w.env();
    w.up(&env).await.unwrap();
    let mut desired = twip::lifecycle::desired_for(&env, w.dir.path()).unwrap();
    let opts = twip::lifecycle::update::update(
        &env,
        &mut desired,
        Some("worker"),
        Some("twip/base:hotfix"),
        &w.ui,
    );
    assert!(opts.force.is_empty());
    let r = twip::lifecycle::converge_on(
        &w.deployment(&env),
        &opts,
        desired,
        false,
        fake_support::TIMEOUT,
        &w.ui,
    )
    .await;
    assert_eq!(code(&r), 0);
    assert_eq!(w.image(WORKER), "twip/base:hotfix");
    assert_eq!(w.image(APP), "twip/base:bookworm");
    // A later up returns to the manifest's image.
    w.up(&env).await.unwrap();
    assert_eq!(w.image(WORKER), "twip/base:bookworm");
}

#[test]
fn update_and_scale_refuse_what_cannot_be_met() {
    let w = World::new();
    let env = w.env();
    let update = twip::lifecycle::update::check_update(&env, Some("nope"), None);
    assert_eq!(twip::exit::code_for(&update.unwrap_err()), 2);
    let image = twip::lifecycle::update::check_update(&env, Some("app"), Some("a b"));
    assert_eq!(
        image.unwrap_err().to_string(),
        "`a b` is not an image reference"
    );
    let global = twip::lifecycle::update::scale(&env, &[("worker".into(), 2)], &w.ui);
    let err = global.unwrap_err();
    assert_eq!(twip::exit::code_for(&err), 2);
    assert!(err.to_string().starts_with("`worker` is a global service"));
    let ok = twip::lifecycle::update::scale(&env, &[("app".into(), 2)], &w.ui).unwrap();
    assert_eq!(ok.scale.get("app"), Some(&2));
}
