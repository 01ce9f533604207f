//! The plan for a changed certificate file (pure reconcile against the state the engine would
//! hold after the previous `up`): with an agent in the stack, a hot swap (the proxy's tasks
//! kept, a label names the desired certificates, the old secrets kept while mounted); without
//! one, the rolling update as before; and nothing to do once the label says it.

mod common;

use std::path::Path;

use common::load;
use twip::plan::desired::{desired, Desired};
use twip::plan::hot_swap::CAUSE;
use twip::plan::{reconcile, Observed, ObservedObject, ObservedService, Op, Options, Resource};
use twip::render::inputs::gather;
use twip::render::render;

fn manifest(agent: bool) -> String {
    format!(
        "services:\n  web: {{image: nginx:1.25}}\n{}proxy:\n  image: haproxy:2.6\n  \
         routes:\n    - {{path: /, service: web, port: 80}}\n  tls:\n    certificates:\n      \
         - {{cert: certs/a.crt, key: certs/a.key}}\n",
        if agent {
            "" // the agent is deployed for the hot-swap controller
        } else {
            "agent: {enabled: false}\n"
        }
    )
}

fn cert(serial: u64) -> (String, String) {
    let mut p = rcgen::CertificateParams::new(vec!["a.example.test".to_string()]).unwrap();
    p.serial_number = Some(rcgen::SerialNumber::from(serial));
    let key = rcgen::KeyPair::generate().unwrap();
    (p.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

fn project(agent: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for d in ["environments", "certs", ".twip"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    std::fs::write(dir.path().join(".twip/name-key"), [7u8; 32]).unwrap();
    std::fs::write(dir.path().join("environments/demo.yaml"), manifest(agent)).unwrap();
    write_cert(dir.path(), 1);
    dir
}

fn write_cert(dir: &Path, serial: u64) {
    let (c, k) = cert(serial);
    std::fs::write(dir.join("certs/a.crt"), c).unwrap();
    std::fs::write(dir.join("certs/a.key"), k).unwrap();
}

fn desired_of(dir: &Path) -> Desired {
    let env = load(dir, "demo");
    let out = render(&env, dir, &dir.join("build/demo")).unwrap();
    desired(&env, &out, &gather(&env, dir).unwrap()).unwrap()
}

/// What the engine holds right after `d` was deployed.
fn deployed(d: &Desired) -> Observed {
    let obj = |name: &String| ObservedObject {
        name: name.clone(),
        id: format!("id-{name}"),
    };
    Observed {
        networks: d.networks.iter().map(|n| obj(&n.name)).collect(),
        configs: d.configs.iter().map(|c| obj(&c.name)).collect(),
        secrets: d.secrets.iter().map(|c| obj(&c.name)).collect(),
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

fn secret_names(spec: &twip::engine::model::ServiceSpec) -> Vec<String> {
    twip::plan::hot_swap::secret_names(spec)
}

/// (old desired, new desired, the plan for the new against the old deployed).
fn changed(agent: bool) -> (Desired, Desired, twip::plan::Plan) {
    let dir = project(agent);
    let before = desired_of(dir.path());
    write_cert(dir.path(), 2);
    let after = desired_of(dir.path());
    assert_eq!(
        after.services.iter().any(|s| s.short == "agent"),
        agent,
        "the agent is in the stack exactly when it is not turned off"
    );
    let plan = reconcile(&after, &deployed(&before), &Options::default());
    (before, after, plan)
}

fn tls_secret(d: &Desired) -> String {
    d.secrets
        .iter()
        .find(|s| s.key == "_tls_0_cert")
        .unwrap()
        .name
        .clone()
}

#[test]
fn with_an_agent_a_certificate_change_is_a_hot_swap() {
    let (before, after, plan) = changed(true);
    let (old, new) = (tls_secret(&before), tls_secret(&after));
    assert_ne!(old, new);
    let proxy = plan
        .actions
        .iter()
        .find(|a| a.name == "demo_proxy")
        .unwrap_or_else(|| panic!("no proxy action: {plan}"));
    assert_eq!(proxy.op, Op::Update);
    assert_eq!(proxy.cause, CAUSE, "{plan}");
    let spec = proxy.spec.as_deref().unwrap();
    // The tasks keep the secrets they mount; the label names the new ones.
    let mounted = secret_names(spec);
    assert!(
        mounted.contains(&old) && !mounted.contains(&new),
        "{mounted:?}"
    );
    // Swarm replaces a task whose spec differs in anything (an empty `Resources`, a secret's
    // place in the list): the task template sent is the one the engine holds, as it is.
    let held = &before
        .services
        .iter()
        .find(|s| s.name == "demo_proxy")
        .unwrap()
        .spec;
    assert_eq!(spec.task_template, held.task_template);
    assert_eq!(spec.endpoint_spec, held.endpoint_spec);
    let label = &spec.labels.as_ref().unwrap()[twip::labels::TLS_HOT_SWAP];
    assert!(label.split(',').any(|n| n == new), "{label}");
    // The new secrets are created; the old ones, still mounted, are not removed.
    assert!(
        plan.actions
            .iter()
            .any(|a| a.resource == Resource::Secret && a.op == Op::Create && a.name == new),
        "{plan}"
    );
    assert!(
        !plan
            .actions
            .iter()
            .any(|a| a.op == Op::Remove && a.name == old),
        "{plan}"
    );
    assert!(plan.to_string().contains(CAUSE), "{plan}");

    // After that update, the next plan has nothing to do for the proxy.
    let mut now = deployed(&after);
    now.secrets.push(ObservedObject {
        name: old.clone(),
        id: "id-old".into(),
    });
    let p = now
        .services
        .iter_mut()
        .find(|s| s.name == "demo_proxy")
        .unwrap();
    p.spec = spec.clone();
    let again = reconcile(&after, &now, &Options::default());
    assert!(
        again.unchanged.contains(&"demo_proxy".to_string()),
        "{again}"
    );
}

#[test]
fn without_an_agent_a_certificate_change_rolls_the_proxy() {
    let (before, after, plan) = changed(false);
    let proxy = plan
        .actions
        .iter()
        .find(|a| a.name == "demo_proxy")
        .unwrap_or_else(|| panic!("no proxy action: {plan}"));
    assert_eq!(proxy.op, Op::Update);
    assert_ne!(proxy.cause, CAUSE, "{plan}");
    let mounted = secret_names(proxy.spec.as_deref().unwrap());
    assert!(mounted.contains(&tls_secret(&after)), "{mounted:?}");
    assert!(!mounted.contains(&tls_secret(&before)), "{mounted:?}");
}

#[test]
fn another_change_beside_the_certificate_rolls_the_proxy() {
    let dir = project(true);
    let before = desired_of(dir.path());
    write_cert(dir.path(), 2);
    let text = manifest(true).replace("  image: haproxy:2.6\n", "  image: haproxy:2.7\n");
    std::fs::write(dir.path().join("environments/demo.yaml"), text).unwrap();
    let after = desired_of(dir.path());
    let plan = reconcile(&after, &deployed(&before), &Options::default());
    let proxy = plan
        .actions
        .iter()
        .find(|a| a.name == "demo_proxy")
        .unwrap();
    assert_ne!(proxy.cause, CAUSE, "{plan}");
    assert!(secret_names(proxy.spec.as_deref().unwrap()).contains(&tls_secret(&after)));
}

/// An ACME certificate the agent swapped in live: the proxy mounts the placeholder, its
/// service's label names the served secret, the agent's service mounts that one.
fn acme_project() -> tempfile::TempDir {
    let dir = project(true);
    std::fs::write(
        dir.path().join("environments/demo.yaml"),
        "services:\n  web: {image: nginx:1.25}\nproxy:\n  image: haproxy:2.6\n  \
         routes:\n    - {path: /, service: web, port: 80}\n  tls:\n    acme:\n      \
         email: ops@example.com\n      domains: [a.example.test]\n",
    )
    .unwrap();
    dir
}

fn acme_ref(spec: &twip::engine::model::ServiceSpec, target: &str) -> Option<String> {
    twip::engine::model::secret_at(spec, target)?
        .secret_name
        .clone()
}

#[test]
fn a_deploy_keeps_an_acme_certificate_swapped_live_and_rolls_nothing_for_it() {
    use twip::render::context::tls::{ACME_AGENT_TARGET, ACME_SECRET_TARGET};
    let dir = acme_project();
    let first = desired_of(dir.path());
    let svc = |d: &Desired, short: &str| {
        d.services
            .iter()
            .find(|s| s.short == short)
            .unwrap_or_else(|| panic!("no {short}"))
            .spec
            .clone()
    };
    let placeholder = acme_ref(&svc(&first, "proxy"), ACME_SECRET_TARGET).unwrap();
    assert_eq!(
        acme_ref(&svc(&first, "agent"), ACME_AGENT_TARGET).as_deref(),
        Some(placeholder.as_str()),
        "the agent mounts the ACME certificate too"
    );
    // What the engine holds after the agent swapped `demo_acme-served` in live.
    let served = "demo_acme-served".to_string();
    let mut held = deployed(&first);
    held.secrets.push(ObservedObject {
        name: served.clone(),
        id: "id-served".into(),
    });
    for s in held.services.iter_mut() {
        if s.name == "demo_proxy" {
            s.spec
                .labels
                .get_or_insert_with(Default::default)
                .insert(twip::labels::ACME_SERVED.into(), served.clone());
        }
        if s.name == "demo_agent" {
            let refs = s.spec.task_template.as_mut().unwrap();
            for r in refs
                .container_spec
                .as_mut()
                .unwrap()
                .secrets
                .as_mut()
                .unwrap()
            {
                if r.file.as_ref().and_then(|f| f.name.as_deref()) == Some(ACME_AGENT_TARGET) {
                    r.secret_name = Some(served.clone());
                }
            }
        }
    }
    // A new deploy (its own new placeholder) changes nothing and removes neither secret.
    let mut next = desired_of(dir.path());
    twip::plan::desired::adopt_acme(&mut next, &held);
    let plan = reconcile(&next, &held, &Options::default());
    for s in ["demo_proxy", "demo_agent"] {
        assert!(plan.unchanged.contains(&s.to_string()), "{s}: {plan}");
    }
    assert!(
        !plan
            .actions
            .iter()
            .any(|a| a.resource == Resource::Secret && [&placeholder, &served].contains(&&a.name)),
        "{plan}"
    );
    assert_eq!(
        acme_ref(&svc(&next, "proxy"), ACME_SECRET_TARGET).as_deref(),
        Some(placeholder.as_str())
    );
    assert_eq!(
        acme_ref(&svc(&next, "agent"), ACME_AGENT_TARGET).as_deref(),
        Some(served.as_str())
    );

    // An agent that does not mount the served one yet: the deploy updates the agent (it
    // restarts, harmless), never the proxy.
    let mut behind = held.clone();
    let a = behind
        .services
        .iter_mut()
        .find(|s| s.name == "demo_agent")
        .unwrap();
    a.spec = svc(&first, "agent");
    let mut next = desired_of(dir.path());
    twip::plan::desired::adopt_acme(&mut next, &behind);
    let plan = reconcile(&next, &behind, &Options::default());
    assert!(plan.unchanged.contains(&"demo_proxy".to_string()), "{plan}");
    assert!(
        plan.actions
            .iter()
            .any(|x| x.name == "demo_agent" && x.op == Op::Update),
        "{plan}"
    );
}
