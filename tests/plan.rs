//! The reconciler, pure: desired state from the project's environments against hand-built
//! observed states. The plan's text is the oracle (snapshots), and the decisions that matter
//! (replicas kept after a scale, digest pins and force-update counters kept, old configs
//! removed) are asserted directly.

mod common;

use common::{load, repo};
use twip::plan::desired::{desired, Desired, LABEL_MANIFEST_REPLICAS};
use twip::plan::{reconcile, Observed, ObservedObject, ObservedService, Op, Options, Resource};
use twip::render::render;

fn desired_of(name: &str) -> Desired {
    let env = load(&repo(), name);
    let out = render(&env, &repo(), &repo().join("build").join(name)).unwrap();
    desired(&env, &repo(), &out).unwrap()
}

/// What the engine would hold right after `desired` was deployed.
fn deployed(d: &Desired) -> Observed {
    Observed {
        networks: d
            .networks
            .iter()
            .map(|n| ObservedObject {
                name: n.name.clone(),
                id: format!("net-{}", n.name),
            })
            .collect(),
        configs: d
            .configs
            .iter()
            .map(|c| ObservedObject {
                name: c.name.clone(),
                id: format!("cfg-{}", c.name),
            })
            .collect(),
        secrets: Vec::new(),
        services: d
            .services
            .iter()
            .map(|s| ObservedService {
                name: s.name.clone(),
                id: format!("svc-{}", s.short),
                version: 10,
                spec: s.spec.clone(),
            })
            .collect(),
        retained: Default::default(),
    }
}

fn set_replicas(o: &mut Observed, name: &str, n: i64) {
    let s = o.services.iter_mut().find(|s| s.name == name).unwrap();
    s.spec
        .mode
        .as_mut()
        .unwrap()
        .replicated
        .as_mut()
        .unwrap()
        .replicas = Some(n);
}

#[test]
fn a_fresh_swarm_gets_everything_created() {
    let d = desired_of("training");
    let plan = reconcile(&d, &Observed::default(), &Options::default());
    assert_eq!(plan.count(Op::Create), 1 + 1 + 3, "{plan}");
    insta::assert_snapshot!("plan__training_fresh", plan.to_string());
}

#[test]
fn an_unchanged_manifest_plans_nothing() {
    for name in ["training", "production", "scaled"] {
        let d = desired_of(name);
        let plan = reconcile(&d, &deployed(&d), &Options::default());
        assert!(plan.is_empty(), "{name}: {plan}");
        assert!(plan.to_string().contains("up to date"), "{plan}");
    }
}

#[test]
fn a_scaled_count_is_kept_until_the_manifest_count_changes() {
    let d = desired_of("training");
    let mut o = deployed(&d);
    set_replicas(&mut o, "training_web", 3); // `twip scale training web=3` happened
    let plan = reconcile(&d, &o, &Options::default());
    assert!(plan.is_empty(), "{plan}");

    // production says web: 3 where training said 1: the manifest's count changed, it wins.
    let prod = desired_of("production");
    let mut o = deployed(&prod);
    for s in &mut o.services {
        if s.name == "production_web" {
            s.spec
                .labels
                .as_mut()
                .unwrap()
                .insert(LABEL_MANIFEST_REPLICAS.into(), "1".into());
            s.spec
                .mode
                .as_mut()
                .unwrap()
                .replicated
                .as_mut()
                .unwrap()
                .replicas = Some(1);
        }
    }
    let plan = reconcile(&prod, &o, &Options::default());
    let a = &plan.actions[0];
    assert_eq!(
        (a.resource, a.op, a.name.as_str()),
        (Resource::Service, Op::Scale, "production_web"),
        "{plan}"
    );
    assert_eq!(a.cause, "replicas 1 → 3");
}

#[test]
fn scale_is_a_change_of_desired_state() {
    let d = desired_of("training");
    let opts = Options {
        scale: [("web".to_string(), 3)].into(),
        ..Options::default()
    };
    let plan = reconcile(&d, &deployed(&d), &opts);
    assert_eq!(plan.actions.len(), 1, "{plan}");
    let a = &plan.actions[0];
    assert_eq!(a.op, Op::Scale);
    let replicas = a
        .spec
        .as_ref()
        .unwrap()
        .mode
        .as_ref()
        .unwrap()
        .replicated
        .as_ref()
        .unwrap()
        .replicas;
    assert_eq!(replicas, Some(3));
    assert_eq!(a.version, Some(10), "updates send the version index read");
}

#[test]
fn an_image_change_updates_and_keeps_the_force_update_counter() {
    let d = desired_of("training");
    let mut o = deployed(&d);
    let web = o
        .services
        .iter_mut()
        .find(|s| s.name == "training_web")
        .unwrap();
    let tt = web.spec.task_template.as_mut().unwrap();
    tt.force_update = Some(7);
    tt.container_spec.as_mut().unwrap().image = Some("twip/web:0.9.0".into());
    web.spec
        .labels
        .as_mut()
        .unwrap()
        .insert("io.twip.spec-hash".into(), "0000".into());
    let plan = reconcile(&d, &o, &Options::default());
    insta::assert_snapshot!("plan__training_image_change", plan.to_string());
    let a = plan
        .actions
        .iter()
        .find(|a| a.name == "training_web")
        .unwrap();
    assert_eq!(a.op, Op::Update);
    assert!(
        a.cause.contains("image twip/web:0.9.0 → twip/web:1.0.0"),
        "{}",
        a.cause
    );
    assert_eq!(
        a.spec
            .as_ref()
            .unwrap()
            .task_template
            .as_ref()
            .unwrap()
            .force_update,
        Some(7)
    );
}

#[test]
fn a_digest_pinned_image_is_kept_when_the_tag_did_not_change() {
    let d = desired_of("training");
    let mut o = deployed(&d);
    let web = o
        .services
        .iter_mut()
        .find(|s| s.name == "training_web")
        .unwrap();
    web.spec
        .task_template
        .as_mut()
        .unwrap()
        .container_spec
        .as_mut()
        .unwrap()
        .image = Some("twip/web:1.0.0@sha256:abcd".into());
    web.spec
        .labels
        .as_mut()
        .unwrap()
        .insert("io.twip.spec-hash".into(), "stale".into());
    let plan = reconcile(&d, &o, &Options::default());
    let a = plan
        .actions
        .iter()
        .find(|a| a.name == "training_web")
        .unwrap();
    let image = a
        .spec
        .as_ref()
        .unwrap()
        .task_template
        .as_ref()
        .unwrap()
        .container_spec
        .as_ref()
        .unwrap()
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("twip/web:1.0.0@sha256:abcd"));
}

#[test]
fn a_changed_proxy_config_rolls_out_under_a_new_name_and_the_old_one_goes() {
    let d = desired_of("training");
    let mut o = deployed(&d);
    let new_name = d.configs[0].name.clone();
    o.configs[0].name = "training_haproxy_0000000000".into();
    let proxy = o
        .services
        .iter_mut()
        .find(|s| s.name == "training_proxy")
        .unwrap();
    proxy
        .spec
        .labels
        .as_mut()
        .unwrap()
        .insert("io.twip.spec-hash".into(), "old".into());
    let plan = reconcile(&d, &o, &Options::default());
    insta::assert_snapshot!("plan__training_config_change", plan.to_string());
    let ops: Vec<(Op, &str)> = plan
        .actions
        .iter()
        .map(|a| (a.op, a.name.as_str()))
        .collect();
    assert_eq!(
        ops,
        vec![
            (Op::Create, new_name.as_str()),
            (Op::Update, "training_proxy"),
            (Op::Remove, "training_haproxy_0000000000"),
        ]
    );
}

#[test]
fn configs_a_kept_release_uses_are_not_removed() {
    let d = desired_of("training");
    let mut o = deployed(&d);
    o.configs.push(ObservedObject {
        name: "training_haproxy_0000000000".into(),
        id: "c0".into(),
    });
    o.configs.push(ObservedObject {
        name: "training_twip-release-000001".into(),
        id: "r1".into(),
    });
    o.retained = [
        "training_haproxy_0000000000".to_string(),
        "training_twip-release-000001".to_string(),
    ]
    .into();
    let plan = reconcile(&d, &o, &Options::default());
    assert!(plan.is_empty(), "{plan}");
    o.retained.clear();
    let plan = reconcile(&d, &o, &Options::default());
    assert_eq!(plan.count(Op::Remove), 2, "{plan}");
}

#[test]
fn services_and_networks_no_longer_in_the_manifest_are_removed_last() {
    let d = desired_of("training");
    let mut o = deployed(&d);
    let mut extra = o.services[0].clone();
    extra.name = "training_old".into();
    o.services.push(extra);
    o.networks.push(ObservedObject {
        name: "training_legacy".into(),
        id: "n2".into(),
    });
    let plan = reconcile(&d, &o, &Options::default());
    let phases: Vec<(u8, Op, &str)> = plan
        .actions
        .iter()
        .map(|a| (a.phase, a.op, a.name.as_str()))
        .collect();
    assert_eq!(
        phases,
        vec![
            (2, Op::Remove, "training_old"),
            (3, Op::Remove, "training_legacy")
        ]
    );
}

#[test]
fn a_forced_update_rolls_an_unchanged_service_and_image_overrides_plan_as_updates() {
    let d = desired_of("training");
    let mut o = deployed(&d);
    o.services
        .iter_mut()
        .find(|s| s.name == "training_web")
        .unwrap()
        .spec
        .task_template
        .as_mut()
        .unwrap()
        .force_update = Some(2);
    let opts = Options {
        force: ["web".to_string()].into(),
        ..Options::default()
    };
    let plan = reconcile(&d, &o, &opts);
    assert_eq!(plan.actions.len(), 1, "{plan}");
    let a = &plan.actions[0];
    assert_eq!(
        (a.op, a.cause.as_str()),
        (Op::Update, "rolling restart (forced)")
    );
    assert_eq!(
        a.spec
            .as_ref()
            .unwrap()
            .task_template
            .as_ref()
            .unwrap()
            .force_update,
        Some(3)
    );

    let mut d2 = d.clone();
    assert!(d2.set_image("web", "twip/web:2.0.0"));
    assert!(!d2.set_image("nope", "x:1"));
    let plan = reconcile(&d2, &deployed(&d), &Options::default());
    assert_eq!(plan.actions.len(), 1, "{plan}");
    assert!(
        plan.actions[0]
            .cause
            .contains("image twip/web:1.0.0 → twip/web:2.0.0"),
        "{plan}"
    );
}

#[test]
fn plans_are_deterministic_and_serialize_to_json() {
    let d = desired_of("scaled");
    let a = reconcile(&d, &Observed::default(), &Options::default());
    let b = reconcile(
        &desired_of("scaled"),
        &Observed::default(),
        &Options::default(),
    );
    assert_eq!(a.to_string(), b.to_string());
    let v = serde_json::to_value(&a).unwrap();
    assert_eq!(v["env"], "scaled");
    assert_eq!(v["actions"][0]["op"], "create");
    assert_eq!(v["actions"][0]["resource"], "network");
    insta::assert_snapshot!(
        "plan__scaled_fresh_json",
        serde_json::to_string_pretty(&v).unwrap()
    );
}

#[test]
fn desired_specs_state_safe_update_defaults_explicitly() {
    let d = desired_of("training");
    let web = d.service("web").unwrap();
    let u = web.spec.update_config.as_ref().unwrap();
    assert_eq!(u.parallelism, Some(1));
    assert_eq!(format!("{:?}", u.order), "Some(START_FIRST)");
    assert_eq!(format!("{:?}", u.failure_action), "Some(ROLLBACK)");
    assert_eq!(u.monitor, Some(10_000_000_000));
    // The proxy binds a host port: two of its tasks cannot share a node, so stop-first.
    let proxy = d.service("proxy").unwrap();
    assert_eq!(
        format!("{:?}", proxy.spec.update_config.as_ref().unwrap().order),
        "Some(STOP_FIRST)"
    );
    let ep = proxy.spec.endpoint_spec.as_ref().unwrap();
    assert_eq!(format!("{:?}", ep.mode), "Some(DNSRR)");
    // Secrets never show in Debug output.
    assert!(
        !format!("{d:?}").contains("global\n    log"),
        "config data leaked into Debug"
    );
}
