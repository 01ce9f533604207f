//! The reconciler, pure: desired state from the project's environments against hand-built
//! observed states. The plan's text is the oracle (snapshots), and the decisions that matter
//! (replicas kept after a scale, digest pins and force-update counters kept, old configs
//! removed) are asserted directly.

mod common;

use common::{load, repo};
use twip::plan::desired::{desired, Desired, LABEL_MANIFEST_REPLICAS};
use twip::plan::{
    reconcile, Change, Observed, ObservedObject, ObservedService, Op, Options, Resource,
};
use twip::render::inputs::gather;
use twip::render::render;

fn desired_of(name: &str) -> Desired {
    let env = load(&repo(), name);
    let out = render(&env, &repo(), &repo().join("build").join(name)).unwrap();
    desired(&env, &out, &gather(&env, &repo()).unwrap()).unwrap()
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
        network_names: Default::default(),
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
    // The running proxy uses the old config (what the engine would hold).
    container(&mut proxy.spec).configs.as_mut().unwrap()[0].config_name =
        Some("training_haproxy_0000000000".into());
    let plan = reconcile(&d, &o, &Options::default());
    insta::assert_snapshot!("plan__training_config_change", plan.to_string());
    let proxy_update = &plan.actions[1];
    assert_eq!(proxy_update.changes.len(), 1, "{plan}");
    assert_eq!(proxy_update.changes[0].field, "config");
    assert_eq!(
        proxy_update.changes[0].new.as_deref(),
        Some(format!("{new_name} (uid 0, gid 0, mode 0444)").as_str())
    );
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
    // Config data never shows in Debug output, in any form `{:?}` could print it.
    let data = &d.configs[0].data;
    assert!(data.len() > 100, "the HAProxy config is rendered");
    let debug = format!("{d:?}");
    assert!(debug.contains(&d.configs[0].name), "{debug}");
    assert!(!leaks(&debug, data), "config data leaked into Debug");
    // The check finds the data wherever `{:?}` prints it: as bytes, as text, as a line.
    assert!(leaks(&format!("{:?}", data), data));
    assert!(leaks(&format!("{:?}", String::from_utf8_lossy(data)), data));
    let text = String::from_utf8_lossy(data);
    let line = text.lines().find(|l| l.trim().len() >= 12).unwrap();
    assert!(leaks(&format!("{:?}", Some(line)), data));
}

/// Whether DEBUG shows any of DATA: its bytes as `{:?}` lists them, or one of its lines of
/// some length, escaped as `{:?}` escapes text.
fn leaks(debug: &str, data: &[u8]) -> bool {
    let bytes = format!("{:?}", &data[..data.len().min(24)]);
    if debug.contains(bytes.trim_end_matches(']')) {
        return true;
    }
    String::from_utf8_lossy(data)
        .lines()
        .filter(|l| l.trim().len() >= 12)
        .any(|l| debug.contains(format!("{:?}", l.trim()).trim_matches('"')))
}

// Specs as a real engine returns them. tests/fixtures/engine/ holds `docker service inspect`
// of the services `twip up` made from tests/fixtures/engine/project (environment
// driftfixture), and of its `app` service after each of six `docker service update` commands
// (`app-after-KIND.json`, each on the deployed service; see tests/drift.rs for the commands).
// The engine drops zero values, adds its own defaults, names networks by ID and reorders
// mounts: none of that may plan a change, and every change made outside twip must.

fn fixture_dir() -> std::path::PathBuf {
    repo().join("tests/fixtures/engine")
}

fn fixture_desired() -> Desired {
    let dir = fixture_dir().join("project");
    let env = load(&dir, "driftfixture");
    let out = render(&env, &dir, &dir.join("build/driftfixture")).unwrap();
    desired(&env, &out, &gather(&env, &dir).unwrap()).unwrap()
}

fn engine_services(file: &str) -> Vec<ObservedService> {
    let text = std::fs::read_to_string(fixture_dir().join(file)).unwrap();
    let list = twip::engine::observe::services_from_json(&text).unwrap();
    list.into_iter()
        .map(|s| {
            let spec = s.spec.expect("a spec");
            ObservedService {
                name: spec.name.clone().unwrap(),
                id: s.id.unwrap(),
                version: s.version.and_then(|v| v.index).unwrap(),
                spec,
            }
        })
        .collect()
}

/// What the engine held right after `twip up driftfixture`, with `app` replaced by the
/// service in APP_FILE when given.
fn engine_observed(d: &Desired, app_file: Option<&str>) -> Observed {
    let text = std::fs::read_to_string(fixture_dir().join("networks.json")).unwrap();
    let networks: Vec<bollard::models::Network> = serde_json::from_str(&text).unwrap();
    let mut services = engine_services("services.json");
    if let Some(f) = app_file {
        let app = engine_services(f).remove(0);
        assert_eq!(app.name, "driftfixture_app");
        services.retain(|s| s.name != app.name);
        services.push(app);
        services.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let objects = |list: &[twip::plan::desired::DesiredObject]| {
        list.iter()
            .map(|c| ObservedObject {
                name: c.name.clone(),
                id: format!("id-{}", c.name),
            })
            .collect()
    };
    Observed {
        networks: networks
            .iter()
            .map(|n| ObservedObject {
                name: n.name.clone().unwrap(),
                id: n.id.clone().unwrap(),
            })
            .collect(),
        configs: objects(&d.configs),
        secrets: objects(&d.secrets),
        services,
        retained: Default::default(),
        network_names: networks
            .iter()
            .map(|n| (n.id.clone().unwrap(), n.name.clone().unwrap()))
            .collect(),
    }
}

fn change(field: &str, key: Option<&str>, old: Option<&str>, new: Option<&str>) -> Change {
    Change {
        field: twip::plan::drift::field_name(field).expect("a field twip compares"),
        key: key.map(str::to_string),
        old: old.map(str::to_string),
        new: new.map(str::to_string),
    }
}

fn app_mut(o: &mut Observed) -> &mut bollard::models::ServiceSpec {
    &mut o
        .services
        .iter_mut()
        .find(|s| s.name == "driftfixture_app")
        .unwrap()
        .spec
}

fn container(
    spec: &mut bollard::models::ServiceSpec,
) -> &mut bollard::models::TaskSpecContainerSpec {
    spec.task_template
        .as_mut()
        .unwrap()
        .container_spec
        .as_mut()
        .unwrap()
}

/// The one action of PLAN, an update of driftfixture_app made outside twip, and its changes.
fn drift_of(plan: &twip::plan::Plan) -> Vec<Change> {
    assert_eq!(plan.actions.len(), 1, "{plan}");
    let a = &plan.actions[0];
    assert_eq!(
        (a.resource, a.op, a.name.as_str()),
        (Resource::Service, Op::Update, "driftfixture_app"),
        "{plan}"
    );
    assert!(
        a.cause.starts_with("changed outside twip: "),
        "the spec-hash label still matches: {}",
        a.cause
    );
    assert_eq!(plan.unchanged, vec!["driftfixture_worker".to_string()]);
    a.changes.clone()
}

#[test]
fn a_spec_as_the_engine_returns_it_plans_nothing() {
    let d = fixture_desired();
    let o = engine_observed(&d, None);
    assert_eq!(o.services.len(), 2);
    // The engine's spec is not a copy of twip's: a comparison of the two as data would fail.
    let app = d.service("app").unwrap();
    let engine_app = &o.services[0].spec;
    assert_eq!(engine_app.name.as_deref(), Some("driftfixture_app"));
    let json = |s: &bollard::models::ServiceSpec| serde_json::to_value(s).unwrap();
    assert_ne!(json(engine_app), json(&app.spec));
    let target = engine_app
        .task_template
        .as_ref()
        .unwrap()
        .networks
        .as_ref()
        .unwrap()[0]
        .target
        .clone()
        .unwrap();
    assert!(
        !target.starts_with("driftfixture_"),
        "the engine names networks by ID: {target}"
    );
    let plan = reconcile(&d, &o, &Options::default());
    assert!(plan.is_empty(), "{plan}");
    assert_eq!(plan.unchanged.len(), 2, "{plan}");
    // The view both sides are read into covers what twip sets (not an empty map that would
    // compare equal whatever the engine holds).
    let view = twip::plan::drift::view(engine_app, &o.network_names);
    let fields: std::collections::BTreeSet<&str> = view.keys().map(|k| k.1).collect();
    for f in [
        "image",
        "command",
        "args",
        "env",
        "mount",
        "port",
        "resources",
        "network",
        "placement",
        "label",
        "container-label",
        "config",
        "secret",
        "update",
        "rollback",
        "restart",
        "hostname",
        "working-dir",
        "user",
        "stop-grace-period",
        "mode",
        "endpoint-mode",
    ] {
        assert!(fields.contains(f), "{f} is not in the view: {view:?}");
    }
    assert!(view.len() > 40, "{view:?}");
    // Negative control: without the engine's network IDs resolved to names, every network
    // looks changed.
    let mut blind = o.clone();
    blind.network_names.clear();
    let plan = reconcile(&d, &blind, &Options::default());
    let changes: Vec<&Change> = plan.actions.iter().flat_map(|a| &a.changes).collect();
    assert_eq!(plan.count(Op::Update), 2, "{plan}");
    assert!(
        changes.len() >= 4 && changes.iter().all(|c| c.field == "network"),
        "{plan}"
    );
}

#[test]
fn changes_made_with_docker_service_update_are_seen_field_by_field() {
    let d = fixture_desired();
    let cases: Vec<(&str, Vec<Change>)> = vec![
        (
            // docker service update --image localhost:5000/twip/base:bookworm-amd64
            "image",
            vec![change(
                "image",
                None,
                Some("localhost:5000/twip/base:bookworm-amd64@sha256:30c2cdfcba70222bd7f01f1cd6147ec43fcdec3106c01fb000a187c7b866ef9c"),
                Some("twip/base:bookworm"),
            )],
        ),
        (
            // --env-add EXTRA=1
            "env",
            vec![change("env", Some("EXTRA"), Some("1"), None)],
        ),
        (
            // --mount-add type=volume,source=driftfixture_data,target=/data,readonly: the
            // mount is replaced, without the labels twip gives the volume.
            "mount",
            {
                let mut v = vec![change(
                    "mount",
                    Some("/data"),
                    Some("volume driftfixture_data, read-only"),
                    Some("volume driftfixture_data"),
                )];
                for (k, val) in [
                    ("com.docker.stack.namespace", "driftfixture"),
                    ("io.twip.environment", "driftfixture"),
                    ("io.twip.managed", "true"),
                    ("io.twip.project", "twip"),
                ] {
                    v.push(change(
                        "mount",
                        Some(&format!("/data volume-label {k}")),
                        None,
                        Some(val),
                    ));
                }
                v
            },
        ),
        (
            // --label-add owner=ops
            "label",
            vec![change("label", Some("owner"), Some("ops"), None)],
        ),
        (
            // --publish-add published=28792,target=9090,mode=host
            "port",
            vec![change("port", Some("9090/tcp"), Some("28792 (host)"), None)],
        ),
        (
            // --limit-cpu 0.25
            "resources",
            vec![change("resources", Some("limits.cpus"), Some("0.25"), Some("0.5"))],
        ),
    ];
    assert_eq!(cases.len(), 6);
    for (kind, want) in cases {
        let o = engine_observed(&d, Some(&format!("app-after-{kind}.json")));
        let plan = reconcile(&d, &o, &Options::default());
        assert_eq!(drift_of(&plan), want, "{kind}: {plan}");
        // The update sends the desired spec (with the replica count that runs).
        let sent = plan.actions[0].spec.as_ref().unwrap();
        let desired_app = &d.service("app").unwrap().spec;
        assert!(
            twip::plan::drift::diff(sent, desired_app, &o.network_names).is_empty(),
            "{kind}: the update does not send the desired spec"
        );
        assert_eq!(plan.actions[0].version, Some(o.services[0].version));
    }
}

#[test]
fn changes_that_keep_the_spec_hash_label_are_seen() {
    let d = fixture_desired();
    type Mutation = Box<dyn Fn(&mut bollard::models::ServiceSpec)>;
    let cases: Vec<(Mutation, Change)> = vec![
        (
            Box::new(|s| {
                for e in container(s).env.as_mut().unwrap() {
                    if e.starts_with("GREETING=") {
                        *e = "GREETING=bye".into();
                    }
                }
            }),
            change("env", Some("GREETING"), Some("bye"), Some("hello")),
        ),
        (
            Box::new(|s| {
                container(s)
                    .labels
                    .as_mut()
                    .unwrap()
                    .insert("extra".into(), "1".into());
            }),
            change("container-label", Some("extra"), Some("1"), None),
        ),
        (
            Box::new(|s| {
                s.labels
                    .as_mut()
                    .unwrap()
                    .insert("team".into(), "other".into());
            }),
            change("label", Some("team"), Some("other"), Some("drift")),
        ),
        (
            Box::new(|s| {
                s.task_template
                    .as_mut()
                    .unwrap()
                    .networks
                    .as_mut()
                    .unwrap()
                    .remove(1);
            }),
            change(
                "network",
                Some("driftfixture_back"),
                None,
                Some("aliases app"),
            ),
        ),
        (
            Box::new(|s| {
                s.task_template
                    .as_mut()
                    .unwrap()
                    .placement
                    .as_mut()
                    .unwrap()
                    .constraints = Some(vec!["node.role == worker".into()]);
            }),
            change(
                "placement",
                Some("constraints"),
                Some("node.role == worker"),
                Some("node.role == manager"),
            ),
        ),
        (
            Box::new(|s| {
                s.task_template
                    .as_mut()
                    .unwrap()
                    .placement
                    .as_mut()
                    .unwrap()
                    .max_replicas = None;
            }),
            change("placement", Some("max_replicas_per_node"), None, Some("1")),
        ),
        (
            Box::new(|s| s.update_config.as_mut().unwrap().parallelism = Some(2)),
            change("update", Some("parallelism"), Some("2"), Some("1")),
        ),
        (
            Box::new(|s| s.rollback_config.as_mut().unwrap().monitor = Some(5_000_000_000)),
            change("rollback", Some("monitor"), Some("5s"), Some("10s")),
        ),
        (
            Box::new(|s| {
                s.task_template
                    .as_mut()
                    .unwrap()
                    .restart_policy
                    .as_mut()
                    .unwrap()
                    .condition =
                    Some(bollard::models::TaskSpecRestartPolicyConditionEnum::ON_FAILURE);
            }),
            change(
                "restart",
                Some("condition"),
                Some("on-failure"),
                Some("any"),
            ),
        ),
        (
            Box::new(|s| container(s).args = Some(vec!["3600".into()])),
            change("args", None, Some("[\"3600\"]"), Some("[\"infinity\"]")),
        ),
        (
            Box::new(|s| container(s).stop_grace_period = Some(30_000_000_000)),
            change("stop-grace-period", None, Some("30s"), Some("2s")),
        ),
        (
            Box::new(|s| container(s).user = None),
            change("user", None, None, Some("root")),
        ),
        (
            Box::new(|s| {
                let r = s
                    .task_template
                    .as_mut()
                    .unwrap()
                    .resources
                    .as_mut()
                    .unwrap();
                r.reservations.as_mut().unwrap().memory_bytes = Some(16 << 20);
            }),
            change(
                "resources",
                Some("reservations.memory"),
                Some("16M"),
                Some("8M"),
            ),
        ),
        (
            Box::new(|s| {
                container(s).configs.as_mut().unwrap()[0].config_name =
                    Some("driftfixture_motd_0000000000".into());
            }),
            change(
                "config",
                Some("/etc/motd"),
                Some("driftfixture_motd_0000000000 (uid 0, gid 0, mode 0444)"),
                Some("driftfixture_motd_45ca0b75bc (uid 0, gid 0, mode 0444)"),
            ),
        ),
        (
            Box::new(|s| {
                let f = container(s).secrets.as_mut().unwrap()[0]
                    .file
                    .as_mut()
                    .unwrap();
                f.mode = Some(0o400);
            }),
            change(
                "secret",
                Some("token"),
                Some("driftfixture_token_1ff8c6e44c (uid 0, gid 0, mode 0400)"),
                Some("driftfixture_token_1ff8c6e44c (uid 0, gid 0, mode 0444)"),
            ),
        ),
        (
            Box::new(|s| {
                let p = &mut s.endpoint_spec.as_mut().unwrap().ports.as_mut().unwrap()[0];
                p.published_port = Some(28799);
            }),
            change(
                "port",
                Some("8080/tcp"),
                Some("28799 (host)"),
                Some("28791 (host)"),
            ),
        ),
        (
            Box::new(|s| container(s).hostname = Some("other".into())),
            change("hostname", None, Some("other"), Some("app-{{.Task.Slot}}")),
        ),
    ];
    assert!(cases.len() >= 15);
    for (mutate, want) in cases {
        let mut o = engine_observed(&d, None);
        let before = app_mut(&mut o).labels.clone();
        mutate(app_mut(&mut o));
        assert_eq!(
            app_mut(&mut o)
                .labels
                .as_ref()
                .unwrap()
                .get("io.twip.spec-hash"),
            before.as_ref().unwrap().get("io.twip.spec-hash"),
            "the label is left as it was"
        );
        let plan = reconcile(&d, &o, &Options::default());
        assert_eq!(drift_of(&plan), vec![want.clone()], "{plan}");
        assert!(
            plan.to_string().contains(&format!("      {want}\n")),
            "{plan}"
        );
    }
}

#[test]
fn a_drifted_or_removed_healthcheck_is_seen() {
    // The engine's spec carries its healthcheck (bollard names the key otherwise than the
    // engine; the engine module puts it right), so it is compared like every other field.
    let d = fixture_desired();
    let engine = engine_observed(&d, None);
    assert_eq!(engine.services[0].name, "driftfixture_app");
    let h = container(&mut engine.services[0].spec.clone())
        .health_check
        .clone()
        .expect("the engine's healthcheck");
    assert_eq!(h.retries, Some(3));
    let mut o = engine_observed(&d, None);
    container(app_mut(&mut o))
        .health_check
        .as_mut()
        .unwrap()
        .retries = Some(9);
    let plan = reconcile(&d, &o, &Options::default());
    assert_eq!(
        drift_of(&plan),
        vec![change("healthcheck", Some("retries"), Some("9"), Some("3"))]
    );
    // Removed on the engine (`docker service update --no-healthcheck`): seen too.
    let mut o = engine_observed(&d, None);
    container(app_mut(&mut o)).health_check = None;
    let plan = reconcile(&d, &o, &Options::default());
    let drift = drift_of(&plan);
    assert!(
        drift.contains(&change("healthcheck", Some("retries"), None, Some("3"))),
        "{drift:?}"
    );
}

#[test]
fn what_drift_ignores_replicas_a_kept_digest_pin_and_engine_defaults() {
    let d = fixture_desired();
    // A scaled count is kept (the manifest's did not change).
    let mut o = engine_observed(&d, None);
    app_mut(&mut o)
        .mode
        .as_mut()
        .unwrap()
        .replicated
        .as_mut()
        .unwrap()
        .replicas = Some(3);
    let plan = reconcile(&d, &o, &Options::default());
    assert!(plan.is_empty(), "{plan}");
    // The same tag pinned to a digest is what `docker stack deploy` keeps too.
    let mut o = engine_observed(&d, None);
    container(app_mut(&mut o)).image = Some("twip/base:bookworm@sha256:abcd".into());
    let plan = reconcile(&d, &o, &Options::default());
    assert!(plan.is_empty(), "{plan}");
    // Another tag pinned to a digest is a change.
    container(app_mut(&mut o)).image = Some("twip/base:trixie@sha256:abcd".into());
    let plan = reconcile(&d, &o, &Options::default());
    assert_eq!(
        drift_of(&plan),
        vec![change(
            "image",
            None,
            Some("twip/base:trixie@sha256:abcd"),
            Some("twip/base:bookworm")
        )]
    );
    // Zero values the engine drops, defaults it adds, and the force-update counter.
    let mut o = engine_observed(&d, None);
    let s = app_mut(&mut o);
    s.task_template.as_mut().unwrap().force_update = Some(4);
    s.task_template.as_mut().unwrap().runtime = Some("container".into());
    s.rollback_config.as_mut().unwrap().delay = None;
    s.task_template
        .as_mut()
        .unwrap()
        .container_spec
        .as_mut()
        .unwrap()
        .mounts
        .as_mut()
        .unwrap()
        .reverse();
    let plan = reconcile(&d, &o, &Options::default());
    assert!(plan.is_empty(), "{plan}");
}

#[test]
fn a_drift_shows_in_text_and_json_with_old_and_new_values() {
    let d = fixture_desired();
    let mut o = engine_observed(&d, Some("app-after-env.json"));
    container(app_mut(&mut o)).image = Some("twip/base:other".into());
    let plan = reconcile(&d, &o, &Options::default());
    insta::assert_snapshot!("plan__driftfixture_drift", plan.to_string());
    let v = serde_json::to_value(&plan).unwrap();
    assert_eq!(
        v["actions"][0]["cause"],
        "changed outside twip: image twip/base:other → twip/base:bookworm, env changed"
    );
    assert_eq!(
        v["actions"][0]["changes"],
        serde_json::json!([
            {"field": "image", "key": null, "old": "twip/base:other", "new": "twip/base:bookworm"},
            {"field": "env", "key": "EXTRA", "old": "1", "new": null}
        ])
    );
    // Creates carry no changes.
    let fresh = reconcile(&d, &Observed::default(), &Options::default());
    let v = serde_json::to_value(&fresh).unwrap();
    assert!(v["actions"].as_array().unwrap().len() >= 5);
    for a in v["actions"].as_array().unwrap() {
        assert!(a.get("changes").is_none(), "{a}");
    }
}
